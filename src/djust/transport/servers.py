"""Which ASGI server runs this process, and what djust adapts to it (docs/deployment.md)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings

logger = logging.getLogger("djust")

# daphne's limit on a WebSocket message and on a frame, by default in its CLI and in ``runserver``
# (its DAPHNE_WEBSOCKET_MAX_*_SIZE settings): it drops a larger message without a close frame.
DAPHNE_MESSAGE_LIMIT = 1024 * 1024

# How to turn permessage-deflate off under each server that negotiates it by default.
DEFLATE_FIXES: dict[str, str] = {
    "uvicorn": (
        "start uvicorn with --ws-per-message-deflate false (ws_per_message_deflate=False in "
        "uvicorn.run), or serve with manage.py djust_serve"
    ),
    "gunicorn": "run gunicorn with djust's worker class: -k djust.workers.UvicornWorker",
    "hypercorn": (
        "hypercorn has no setting for it: serve with manage.py djust_serve or with gunicorn "
        "-k djust.workers.UvicornWorker, or have the proxy in front remove the "
        "Sec-WebSocket-Extensions header from the upgrade request"
    ),
}
ANY_SERVER_FIX = (
    "turn permessage-deflate off in the ASGI server, or have the proxy in front remove the "
    "Sec-WebSocket-Extensions header from the upgrade request"
)
# Servers that carry uploads at half uvicorn's speed or less with their own defaults, deflate
# apart (bench/server_matrix.py, docs/deployment.md "What each does with an upload").
SLOW_SERVERS: dict[str, str] = {
    "gunicorn-asgi": (
        "this process is gunicorn's own asgi worker, whose WebSocket unmasks every received byte "
        "in Python: uploads run at about 6 MB/s and cost 50x the CPU they cost under uvicorn. Run "
        "gunicorn with djust's worker class instead: -k djust.workers.UvicornWorker"
    ),
    "hypercorn": (
        "this process is hypercorn, whose WebSocket spends about 2.5x the CPU per uploaded byte "
        "that uvicorn's does: uploads run at about half the speed they reach under uvicorn. "
        "For uploads, serve with manage.py djust_serve or gunicorn -k djust.workers.UvicornWorker"
    ),
}

_warned: set[str] = set()  # what this process has warned about


def detect() -> str:
    """The server running this process, from the modules it loaded (``""`` when unknown)."""
    modules = sys.modules
    # "daphne" in INSTALLED_APPS imports daphne's server and Twisted's reactor into any process;
    # only daphne runs the reactor.
    reactor = modules.get("twisted.internet.reactor")
    if "daphne.server" in modules and getattr(reactor, "running", False):
        return "daphne"
    if "granian._granian" in modules:
        return "granian"
    if "hypercorn.config" in modules:
        return "hypercorn"
    if "gunicorn.arbiter" in modules:
        return "gunicorn-asgi" if "gunicorn.workers.gasgi" in modules else "gunicorn"
    if "uvicorn.server" in modules:
        return "uvicorn"
    return ""


def message_limit(max_frame_size: int) -> int:
    """The largest binary message clients may send here: ``max_frame_size`` or the server's own."""
    if detect() != "daphne":
        return max_frame_size
    # Its CLI ignores the settings that runserver reads: they may only lower the limit.
    return min(
        max_frame_size,
        DAPHNE_MESSAGE_LIMIT,
        getattr(settings, "DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE", DAPHNE_MESSAGE_LIMIT),
        getattr(settings, "DAPHNE_WEBSOCKET_MAX_FRAME_SIZE", DAPHNE_MESSAGE_LIMIT),
    )


def deflate_warning(server: str) -> str:
    """What to say when a client's socket negotiated permessage-deflate under ``server``."""
    fix = DEFLATE_FIXES.get(server, ANY_SERVER_FIX)
    return (
        f"PERMESSAGE-DEFLATE IS ON for this WebSocket ({server or 'unknown server'}): the browser "
        "compresses every byte of every upload, which makes uploads about 4x slower. "
        f"Fix: {fix}."
    )


def mount_notices(deflate: bool) -> dict[str, Any]:
    """Warn once per process about a transport that slows uploads; fields for ``mounted``."""
    server = detect()
    if server in SLOW_SERVERS:
        _warn_once(server, SLOW_SERVERS[server])
    if not deflate:
        return {}
    text = deflate_warning(server)
    _warn_once("deflate", text)
    # The page's console says it too, where only the developer looks.
    return {"warning": text} if settings.DEBUG else {}


def _warn_once(key: str, text: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning("%s", text)
