"""The test project served under a script name, as behind a proxy that forwards ``/sub/``.

A proxy that strips the prefix in front of ``uvicorn --root-path /sub`` hands the application
scopes whose ``root_path`` is ``/sub`` and whose ``path`` still starts with it: this does the same.
"""

import os

from djust.asgi import get_asgi_application

PREFIX = os.environ.get("TEST_SCRIPT_NAME", "/sub")
inner = get_asgi_application()


async def application(scope, receive, send):
    if scope["type"] in ("http", "websocket"):
        if not scope["path"].startswith(PREFIX + "/"):
            if scope["type"] == "http":
                # Outside the prefix the proxy forwards nothing.
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b"not under " + PREFIX.encode()})
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        scope = {**scope, "root_path": PREFIX}
    await inner(scope, receive, send)
