"""Run the peer under uvicorn with the options given as JSON (djust's, passed by bench/run.py).

bench/.peer/venv/bin/python -m bench.peer_site.serve PORT OPTIONS_JSON
"""

import json
import sys

import uvicorn

if __name__ == "__main__":
    port, options = int(sys.argv[1]), json.loads(sys.argv[2])
    uvicorn.run("bench.peer_site.asgi:application", host="127.0.0.1", port=port, **options)
