"""Raw ASGI sinks for the per-engine bench: what a page can send, with no framework behind it.

- ``/bench/sinks/ws/``: a WebSocket that counts the bytes of binary messages. A text message
  ``"ack N"`` makes it answer with its count every ``N`` bytes, as djust's acks pace a sender;
  ``"end"`` is answered with the count so far.
- ``/bench/sinks/put/``: any request's body, counted and dropped; answered with the count.

Both are routed by ``bench/asgi.py`` in the bench server's own process, beside djust.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "/bench/sinks/"


async def websocket_sink(receive: Any, send: Any) -> None:
    received, every, next_ack = 0, 0, 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            data = message.get("bytes")
            if data is not None:
                received += len(data)
                if every and received >= next_ack:
                    next_ack = received - received % every + every
                    await send({"type": "websocket.send", "text": str(received)})
                continue
            text = message.get("text") or ""
            if text.startswith("ack "):
                every = next_ack = int(text[4:])
            elif text == "end":
                await send({"type": "websocket.send", "text": str(received)})
        elif kind == "websocket.disconnect":
            return


async def http_sink(receive: Any, send: Any) -> None:
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = json.dumps({"bytes": received}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await websocket_sink(receive, send)
    elif scope["type"] == "http":
        await http_sink(receive, send)
