"""Run an ASGI application under uvicorn with the settings measured best for djust."""

from __future__ import annotations

from typing import Any

# Chosen by measurement (docs/performance.md): the sans-I/O websockets implementation is the
# fastest receiver; permessage-deflate must stay off, since compressing file bytes that do not
# compress cuts upload throughput by an order of magnitude.
UVICORN_OPTIONS: dict[str, Any] = {
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,
    "ws_max_size": 16 * 1024 * 1024,
    "lifespan": "off",
    "loop": "auto",
    "http": "auto",
}


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``app`` (an object or an import string) until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, **{**UVICORN_OPTIONS, **options})
