"""The bench server's ASGI app: djust's (HTTP and its socket) plus a raw WebSocket sink.

The sink at ``/bench/sink/`` is the transport ceiling: it takes every message and counts its
bytes, nothing else; a text message ``"end"`` is answered with the count so far.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from bench import sinks
from djust.asgi import get_asgi_application

SINK_PATH = "/bench/sink/"

djust_app = get_asgi_application()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket" and scope["path"] == SINK_PATH:
        await sinks.websocket_sink(receive, send)
    elif scope["type"] in ("http", "websocket") and scope["path"].startswith(sinks.PREFIX):
        await sinks.application(scope, receive, send)
    else:
        await djust_app(scope, receive, send)
