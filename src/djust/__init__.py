"""djust: LiveView for Django, with streaming WebSocket file uploads."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["LiveView", "abroadcast", "broadcast", "event_handler"]


def __getattr__(name: str) -> Any:
    # Lazy, so that listing "djust" in INSTALLED_APPS imports nothing before Django is set up.
    if name == "LiveView":
        from djust.views import LiveView

        return LiveView
    if name == "event_handler":
        from djust.decorators import event_handler

        return event_handler
    if name in ("broadcast", "abroadcast"):
        from djust import broadcasts

        return getattr(broadcasts, name)
    raise AttributeError(f"module 'djust' has no attribute {name!r}")
