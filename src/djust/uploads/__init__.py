"""File uploads over the LiveView socket: ``UploadMixin``, ``UploadEntry`` and the writers.

Names resolve lazily, so the pure modules (``accept``, ``sniff``, ``names``) import without Django.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TempFileWriter", "UploadConfig", "UploadEntry", "UploadMixin", "UploadWriter"]

_HOMES = {
    "UploadMixin": "djust.uploads.mixin",
    "UploadEntry": "djust.uploads.entry",
    "UploadConfig": "djust.uploads.config",
    "UploadWriter": "djust.uploads.writers",
    "TempFileWriter": "djust.uploads.writers",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'djust.uploads' has no attribute {name!r}")
