"""An upload slot's configuration, checked when ``allow_upload`` is called."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from djust.transport.protocol import HEADER_SIZE
from djust.uploads.accept import Accept, parse_accept

MIN_CHUNK_SIZE = 1024


@dataclass(frozen=True)
class UploadConfig:
    """What a slot accepts and how its files travel."""

    name: str
    accept: Accept
    max_entries: int = 1
    max_file_size: int = 10_000_000
    chunk_size: int = 65536
    auto_upload: bool = True
    allow_active_content: bool = False
    writer: Callable[..., Any] | None = None  # called with the entry, or with nothing
    external: Any = None  # S3Direct(): the browser sends the bytes straight to storage

    def to_client(self) -> dict[str, Any]:
        """The part of the config the browser needs (it checks size, type and count itself)."""
        return {
            "accept": self.accept.html,
            "max_entries": self.max_entries,
            "max_file_size": self.max_file_size,
            "chunk_size": self.chunk_size,
            "auto_upload": self.auto_upload,
        }


def make_config(name: str, *, max_frame_size: int, **options: Any) -> UploadConfig:
    """Build a slot config, with ``ImproperlyConfigured`` naming any bad option."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ImproperlyConfigured(f"upload slot name {name!r} must be a Python identifier")
    accept = options.pop("accept", "")
    try:
        parsed = parse_accept(accept)
    except (ValueError, AttributeError) as exc:
        raise ImproperlyConfigured(
            f"allow_upload({name!r}): bad accept {accept!r}: {exc}"
        ) from None
    config = UploadConfig(name=name, accept=parsed, **options)
    for field in ("max_entries", "max_file_size", "chunk_size"):
        value = getattr(config, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ImproperlyConfigured(f"allow_upload({name!r}): {field} must be an int >= 0")
    if config.external is not None and config.writer is not None:
        raise ImproperlyConfigured(
            f"allow_upload({name!r}): a slot has a writer or goes to external storage, not both"
        )
    if config.max_entries < 1:
        raise ImproperlyConfigured(f"allow_upload({name!r}): max_entries must be at least 1")
    largest = max_frame_size - HEADER_SIZE
    if not MIN_CHUNK_SIZE <= config.chunk_size <= largest:
        raise ImproperlyConfigured(
            f"allow_upload({name!r}): chunk_size must be between {MIN_CHUNK_SIZE} and {largest} "
            f"bytes (DJUST['MAX_FRAME_SIZE'] minus the {HEADER_SIZE}-byte frame header)"
        )
    return config
