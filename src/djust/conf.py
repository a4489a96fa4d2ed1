"""djust settings: one ``DJUST`` dict in Django settings, with documented defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Where the client opens its WebSocket.
    "WS_PATH": "djust/ws/",
    # Origins, besides the site's own, whose pages may open the WebSocket: full origins such as
    # "https://app.example.com", no patterns. A host only "*" in ALLOWED_HOSTS matches needs one.
    "ALLOWED_ORIGINS": (),
    # Serve static files from the ASGI app even when DEBUG is off (demo and tests).
    "SERVE_STATIC": False,
    # How long a page's view token can be used to (re)mount the view, in seconds.
    "TOKEN_MAX_AGE": 24 * 60 * 60,
    # The middleware the socket's request passes through when a view mounts (None: MIDDLEWARE).
    # It gives the live session what it gave the page: session, user, CSRF cookie, language.
    "SOCKET_MIDDLEWARE": None,
    # Largest WebSocket message the consumer accepts, in bytes (text or binary).
    "MAX_FRAME_SIZE": 1024 * 1024 + 64,
    # Largest text (JSON) message, in bytes.
    "MAX_TEXT_SIZE": 256 * 1024,
    # Frames a connection may send per second, with bursts of as many (0: no limit). The
    # default lets 64 KiB chunks through at 1.3 GB/s while bounding a flood of tiny frames.
    "MAX_FRAMES_PER_SECOND": 20000,
    # Text frames a connection may send per second, with bursts of as many (0: no limit); binary
    # frames that are not chunks of its uploads count as text. A text frame costs the server as
    # much as a whole chunk (parse, answer): a browser sends a few a second at most.
    "MAX_TEXT_FRAMES_PER_SECOND": 200,
    # The same for all connections of a process together (0: no limit). Beyond it frames are
    # not refused: each connection waits its turn, so no connection can starve the others.
    "MAX_TEXT_FRAMES_PER_SECOND_PER_PROCESS": 5000,
    # The client's default styles for upload progress, previews and drop zones, at zero
    # specificity so that any rule of the site wins (False: none, the site styles everything).
    "UPLOAD_DEFAULT_STYLES": True,
    # Uploads: where entries are written while they arrive (None: the system temp dir).
    "UPLOAD_DIR": None,
    # Uploads declared at least this large are written with O_DIRECT, around the page cache
    # (Linux; None: never). Costs less CPU per byte than cached writes and leaves the cache alone.
    "UPLOAD_DIRECT_IO": 16 * 1024 * 1024,
    # Seconds an upload whose connection dropped waits for its page to come back and resume it
    # (0: uploads end with their connection). Waiting uploads keep their bytes on disk and count
    # against the upload quotas until they resume or expire (docs/uploads.md, "Resume").
    "UPLOAD_RESUME_TTL": 600,
    # Unacknowledged bytes a client may have in flight per upload.
    "UPLOAD_WINDOW": 8 * 1024 * 1024,
    # Uploads a connection may stream at once; further registrations wait their turn.
    "MAX_CONCURRENT_UPLOADS": 4,
    # Upload registrations a connection may make per minute.
    "MAX_REGISTRATIONS_PER_MINUTE": 600,
    # Seconds without a byte before an unfinished upload is failed with ``stalled`` (0 or None:
    # never). Time the client waits on the server (an ack, a handler) does not count.
    "UPLOAD_STALL_TIMEOUT": 30,
    # Bytes a second an unfinished upload must average over UPLOAD_MIN_RATE_WINDOW seconds, or
    # it fails with ``stalled`` (0: no minimum). A trickle of bytes holds no upload slot.
    # 1 KiB/s is a sixth of what a GPRS link carries; a minute smooths over dead spots.
    "UPLOAD_MIN_RATE": 1024,
    "UPLOAD_MIN_RATE_WINDOW": 60,
    # Declared bytes of unfinished and unconsumed uploads one connection may hold on disk.
    "MAX_UPLOAD_BYTES_PER_CONNECTION": 10 * 1024**3,
    # Bytes the uploads of one process may hold: what unfinished ones received plus a window
    # each (what their client may still send unacknowledged), and complete ones' sizes.
    "MAX_UPLOAD_BYTES_PER_PROCESS": 50 * 1024**3,
    # Unfinished uploads of one process (each may hold a temp-file descriptor; None: no limit).
    "MAX_UPLOADS_PER_PROCESS": 256,
    # Unfinished uploads of one anonymous visitor's address (an IPv6 /64), over all its
    # connections; several people behind one NAT share it (None: no limit).
    "MAX_UPLOADS_PER_CLIENT": 32,
    # Unfinished uploads of one signed-in user, wherever it connects from (None: no limit).
    "MAX_UPLOADS_PER_USER": 16,
    # Registrations are refused while fewer file descriptors than this would be left to the
    # process (RLIMIT_NOFILE): requests need some too (None: no check).
    "MIN_FREE_DESCRIPTORS": 128,
    # Threads that run the views' blocking code (mount, handlers, renders) of all the live pages
    # of a process: started when all are busy, ended when idle, so an idle page holds none.
    # Calls beyond it wait their turn; each running call may hold a database connection.
    "MAX_SYNC_THREADS": 32,
}


def get(name: str) -> Any:
    """The value of ``DJUST[name]``, or its default."""
    return getattr(settings, "DJUST", {}).get(name, DEFAULTS[name])
