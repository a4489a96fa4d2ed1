"""System checks for settings that would break djust or make it unsafe."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from djust import conf
from djust.transport.protocol import HEADER_SIZE


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
    direct = conf.get("UPLOAD_DIRECT_IO")
    if direct is not None and (isinstance(direct, bool) or not isinstance(direct, int)):
        messages.append(
            checks.Error(
                f"DJUST['UPLOAD_DIRECT_IO'] must be a size in bytes or None, not {direct!r}.",
                id="djust.E005",
            )
        )
    if conf.get("UPLOAD_STALL_TIMEOUT") <= 0:
        messages.append(
            checks.Warning(
                "DJUST['UPLOAD_STALL_TIMEOUT'] is not positive: a stalled client holds its "
                "upload slot and temp file until it disconnects.",
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
    if "channels" not in settings.INSTALLED_APPS:
        messages.append(checks.Error("djust needs 'channels' in INSTALLED_APPS.", id="djust.E002"))
    return messages
