"""System checks for settings that would break djust or make it unsafe."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from djust import conf
from djust.transport.origin import parse_origin
from djust.transport.protocol import HEADER_SIZE
from djust.uploads.writers import UPLOAD_DIR_HINT, configured_upload_dir, upload_dir_problem

# Limits that must be whole numbers: (key, least value, whether None turns it off).
_COUNT_LIMITS = (
    ("MAX_TEXT_FRAMES_PER_SECOND", 0, False),
    ("MAX_TEXT_FRAMES_PER_SECOND_PER_PROCESS", 0, False),
    ("UPLOAD_MIN_RATE", 0, False),
    ("UPLOAD_MIN_RATE_WINDOW", 1, False),
    ("MAX_UPLOADS_PER_PROCESS", 1, True),
    ("MAX_UPLOADS_PER_CLIENT", 1, True),
    ("MAX_UPLOADS_PER_USER", 1, True),
    ("MIN_FREE_DESCRIPTORS", 0, True),
)
_TEXT_BUDGETS = ("MAX_TEXT_FRAMES_PER_SECOND", "MAX_TEXT_FRAMES_PER_SECOND_PER_PROCESS")


def _is_count(value: Any, least: int, optional: bool) -> bool:
    if value is None:
        return optional
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn about settings that break uploads or remove a protection."""
    messages: list[checks.CheckMessage] = []
    unknown = set(getattr(settings, "DJUST", {})) - set(conf.DEFAULTS)
    if unknown:
        messages.append(
            checks.Warning(
                f"DJUST has unknown keys: {', '.join(sorted(unknown))}",
                hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}.",
                id="djust.W001",
            )
        )
    if conf.get("MAX_FRAME_SIZE") < 65536 + HEADER_SIZE:
        messages.append(
            checks.Error(
                "DJUST['MAX_FRAME_SIZE'] is smaller than a default upload chunk plus its header "
                f"({65536 + HEADER_SIZE} bytes): every default upload would be rejected.",
                id="djust.E001",
            )
        )
    largest_chunk = conf.get("MAX_FRAME_SIZE") - HEADER_SIZE
    if conf.get("UPLOAD_WINDOW") < largest_chunk:
        messages.append(
            checks.Error(
                f"DJUST['UPLOAD_WINDOW'] is smaller than the largest chunk a slot may use "
                f"({largest_chunk} bytes): such an upload could never send its chunks.",
                hint="Raise UPLOAD_WINDOW or lower MAX_FRAME_SIZE.",
                id="djust.E003",
            )
        )
    if conf.get("MAX_CONCURRENT_UPLOADS") < 1:
        messages.append(
            checks.Error("DJUST['MAX_CONCURRENT_UPLOADS'] must be at least 1.", id="djust.E004")
        )
    threads = conf.get("MAX_SYNC_THREADS")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        messages.append(
            checks.Error(
                f"DJUST['MAX_SYNC_THREADS'] must be a whole number of at least 1, not {threads!r}.",
                id="djust.E006",
            )
        )
    direct = conf.get("UPLOAD_DIRECT_IO")
    if direct is not None and (isinstance(direct, bool) or not isinstance(direct, int)):
        messages.append(
            checks.Error(
                f"DJUST['UPLOAD_DIRECT_IO'] must be a size in bytes or None, not {direct!r}.",
                id="djust.E005",
            )
        )
    stall = conf.get("UPLOAD_STALL_TIMEOUT")
    if stall is not None and (isinstance(stall, bool) or not isinstance(stall, int | float)):
        messages.append(
            checks.Error(
                "DJUST['UPLOAD_STALL_TIMEOUT'] must be a number of seconds, or 0 or None to turn "
                f"it off, not {stall!r}.",
                id="djust.E012",
            )
        )
    elif not stall or stall < 0:
        messages.append(
            checks.Warning(
                f"DJUST['UPLOAD_STALL_TIMEOUT'] is {stall!r}, which turns it off: a stalled "
                "client holds its upload slot and temp file until it disconnects (or the "
                "minimum rate, UPLOAD_MIN_RATE, fails it).",
                id="djust.W003",
            )
        )
    if not conf.get("MAX_FRAMES_PER_SECOND"):
        messages.append(
            checks.Warning(
                "DJUST['MAX_FRAMES_PER_SECOND'] is 0: a client can flood the server with frames.",
                id="djust.W002",
            )
        )
    bad_limits = [
        f"{key}={conf.get(key)!r}"
        for key, least, optional in _COUNT_LIMITS
        if not _is_count(conf.get(key), least, optional)
    ]
    if bad_limits:
        messages.append(
            checks.Error(
                f"DJUST limits must be whole numbers (None where it turns a limit off): "
                f"{', '.join(bad_limits)}.",
                hint="See docs/security.md, 'Limits', for each key and its least value.",
                id="djust.E010",
            )
        )
    unlimited = [key for key in _TEXT_BUDGETS if conf.get(key) == 0]
    if unlimited:
        messages.append(
            checks.Warning(
                f"DJUST[{unlimited[0]!r}] is 0: text frames cost the server far more than upload "
                "bytes, and one connection sending them as fast as it can slows every other.",
                id="djust.W005",
            )
        )
    middleware = conf.get("SOCKET_MIDDLEWARE")
    if middleware is not None and (
        isinstance(middleware, str)
        or not isinstance(middleware, list | tuple)
        or not all(isinstance(m, str) for m in middleware)
    ):
        messages.append(
            checks.Error(
                "DJUST['SOCKET_MIDDLEWARE'] must be a list of middleware paths (like MIDDLEWARE) "
                f"or None, not {middleware!r}.",
                id="djust.E007",
            )
        )
    origins = conf.get("ALLOWED_ORIGINS")
    if isinstance(origins, list | tuple):
        bad = [o for o in origins if not isinstance(o, str) or parse_origin(o) is None]
    else:
        bad = [origins]
    if bad:
        messages.append(
            checks.Error(
                f"DJUST['ALLOWED_ORIGINS'] must be a list of origins; these are not: {bad!r}.",
                hint="Write each as scheme://host[:port], such as 'https://app.example.com': "
                "no path or trailing slash, no pattern.",
                id="djust.E008",
            )
        )
    if "*" in settings.ALLOWED_HOSTS and not conf.get("ALLOWED_ORIGINS"):
        messages.append(
            checks.Warning(
                "ALLOWED_HOSTS contains '*' and DJUST['ALLOWED_ORIGINS'] is empty: a page whose "
                "host only '*' matches cannot open djust's WebSocket (HTTP 403), since such a "
                "host does not show which origins are the site's own.",
                hint="List the site's origins in DJUST['ALLOWED_ORIGINS'] or its hosts in "
                "ALLOWED_HOSTS.",
                id="djust.W004",
            )
        )
    problem = upload_dir_problem(configured_upload_dir())
    if problem:
        messages.append(
            checks.Error(
                f"The upload directory is not private: {problem}. Another user could replace an "
                "upload after its checks; djust refuses uploads until it is fixed.",
                hint=UPLOAD_DIR_HINT,
                id="djust.E009",
            )
        )
    styles = conf.get("UPLOAD_DEFAULT_STYLES")
    if not isinstance(styles, bool):
        messages.append(
            checks.Error(
                f"DJUST['UPLOAD_DEFAULT_STYLES'] must be True or False, not {styles!r}.",
                id="djust.E011",
            )
        )
    if "channels" not in settings.INSTALLED_APPS:
        messages.append(checks.Error("djust needs 'channels' in INSTALLED_APPS.", id="djust.E002"))
    return messages
