"""A second, idle connection that pings its server every ~5 ms and records each round trip.

Run by ``bench/run.py`` in a process of its own, so that the uploading client's work cannot delay
its pongs; both processes stamp with ``time.monotonic()`` (one clock for the whole machine) and
the runner assigns each sample to the phases (upload, consume) its round trip overlaps.

    python -m bench.pinger djust http://127.0.0.1:PORT      # mounts /counter/, {"t":"ping","id":N}
    python -m bench.pinger peer  http://127.0.0.1:PORT      # djust 1.2.6: {"type":"ping"}

It prints ``ready`` once mounted, pings until its stdin closes, then prints the samples as JSON:
``[[sent_at, rtt_seconds], ...]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

from websockets.asyncio.client import connect  # noqa: E402

from djust.testing import token_from_html  # noqa: E402

PERIOD = 0.005
PEER_VIEW = "bench.peer_site.views.PeerUploadView"


async def open_djust(base: str) -> tuple[object, object]:
    with urllib.request.urlopen(base + "/counter/") as response:
        token = token_from_html(response.read().decode())
    ws = await connect(
        base.replace("http", "ws", 1) + "/djust/ws/", origin=base, compression=None, max_size=None
    )
    await ws.send(json.dumps({"t": "mount", "token": token}))
    while json.loads(await ws.recv())["t"] != "mounted":
        pass
    counter = iter(range(1, 1 << 62))

    async def ping() -> None:
        n = next(counter)
        await ws.send(json.dumps({"t": "ping", "id": n}))
        while True:
            message = json.loads(await ws.recv())
            if message.get("t") == "pong" and message.get("id") == n:
                return

    return ws, ping


async def open_peer(base: str) -> tuple[object, object]:
    ws = await connect(
        base.replace("http", "ws", 1) + "/ws/live/", origin=base, compression=None, max_size=None
    )
    await ws.recv()  # {"type": "connect"}
    await ws.send(json.dumps({"type": "mount", "view": PEER_VIEW, "params": {}, "url": "/up/"}))
    while json.loads(await ws.recv()).get("type") != "mount":
        pass

    async def ping() -> None:
        await ws.send('{"type":"ping"}')
        while json.loads(await ws.recv()).get("type") != "pong":
            pass

    return ws, ping


async def main(mode: str, base: str) -> None:
    ws, ping = await (open_djust(base) if mode == "djust" else open_peer(base))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    print("ready", flush=True)
    samples: list[tuple[float, float]] = []
    next_at = time.monotonic()
    while not stop.is_set():
        sent = time.monotonic()
        await ping()
        samples.append((sent, time.monotonic() - sent))
        next_at = max(next_at + PERIOD, time.monotonic())
        await asyncio.sleep(next_at - time.monotonic())
    await ws.close()
    print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
