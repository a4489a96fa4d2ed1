"""djust settings: one ``DJUST`` dict in Django settings, with documented defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Where the client opens its WebSocket.
    "WS_PATH": "djust/ws/",
    # Serve static files from the ASGI app even when DEBUG is off (demo and tests).
    "SERVE_STATIC": False,
    # How long a page's view token can be used to (re)mount the view, in seconds.
    "TOKEN_MAX_AGE": 24 * 60 * 60,
    # Largest WebSocket message the consumer accepts, in bytes (text or binary).
    "MAX_FRAME_SIZE": 1024 * 1024 + 64,
    # Largest text (JSON) message, in bytes.
    "MAX_TEXT_SIZE": 256 * 1024,
    # Frames a connection may send per second, with bursts of as many (0: no limit). The
    # default lets 64 KiB chunks through at 1.3 GB/s while bounding a flood of tiny frames.
    "MAX_FRAMES_PER_SECOND": 20000,
    # Uploads: where entries are written while they arrive (None: the system temp dir).
    "UPLOAD_DIR": None,
    # Uploads declared at least this large are written with O_DIRECT, around the page cache
    # (Linux; None: never). Costs less CPU per byte than cached writes and leaves the cache alone.
    "UPLOAD_DIRECT_IO": 16 * 1024 * 1024,
    # Unacknowledged bytes a client may have in flight per upload.
    "UPLOAD_WINDOW": 8 * 1024 * 1024,
    # Uploads a connection may stream at once; further registrations wait their turn.
    "MAX_CONCURRENT_UPLOADS": 4,
    # Upload registrations a connection may make per minute.
    "MAX_REGISTRATIONS_PER_MINUTE": 600,
    # Seconds without a byte before an unfinished upload is failed with ``stalled``.
    "UPLOAD_STALL_TIMEOUT": 30,
    # Bytes of unfinished and unconsumed uploads one connection may hold on disk.
    "MAX_UPLOAD_BYTES_PER_CONNECTION": 10 * 1024**3,
    # The same, for the whole process.
    "MAX_UPLOAD_BYTES_PER_PROCESS": 50 * 1024**3,
}


def get(name: str) -> Any:
    """The value of ``DJUST[name]``, or its default."""
    return getattr(settings, "DJUST", {}).get(name, DEFAULTS[name])
