"""Run an ASGI application under uvicorn with the settings measured best for djust."""

from __future__ import annotations

import ipaddress
from typing import Any

# Chosen by measurement (docs/performance.md): the sans-I/O websockets implementation is the
# fastest receiver; permessage-deflate must stay off, since compressing file bytes that do not
# compress cuts upload throughput by an order of magnitude.
UVICORN_OPTIONS: dict[str, Any] = {
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,
    "lifespan": "off",
    "loop": "auto",
    "http": "auto",
}


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``app`` (an object or an import string) until interrupted."""
    import uvicorn

    from djust import conf

    # The server refuses (close code 1009) any message above djust's own limit, so that it
    # never buffers more than that for one frame.
    limit = max(conf.get("MAX_FRAME_SIZE"), conf.get("MAX_TEXT_SIZE"))
    uvicorn.run(app, host=host, port=port, **{**UVICORN_OPTIONS, "ws_max_size": limit, **options})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    host = host.strip().removeprefix("[").removesuffix("]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve to an address others can reach
