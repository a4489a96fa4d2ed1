"""Whether a file may be registered: pure policy over what the client declares.

No socket, no thread, no file: each function takes what it judges and raises a typed error.
Refusals of the slot's own limits are written in the page's language (the caller activates it).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from djust import strings
from djust.errors import (
    ActiveContent,
    BadMessage,
    BadName,
    BadSize,
    DjustError,
    NotAccepted,
    QuotaExceeded,
    RateLimited,
    TooLarge,
    TooManyFiles,
)
from djust.uploads.config import UploadConfig
from djust.uploads.names import safe_name, safe_path
from djust.uploads.sniff import declared_type, is_active

MAX_RAW_NAME = 4096


# The refusals of the slot's own limits, as registration answers them and as the browser,
# which checks the same limits first, reports them (``upload_refused``).
def too_many_files(config: UploadConfig, client_name: str, size: int) -> DjustError:
    return TooManyFiles(strings.text("too_many_files", max=config.max_entries))


def too_large(config: UploadConfig, client_name: str, size: int) -> DjustError:
    limit = strings.size(config.max_file_size)
    return TooLarge(strings.text("too_large", name=client_name, limit=limit))


def not_accepted(config: UploadConfig, client_name: str, size: int) -> DjustError:
    return NotAccepted(strings.text("not_accepted", name=client_name, accept=config.accept.html))


REFUSALS = {
    TooManyFiles.code: too_many_files,
    TooLarge.code: too_large,
    NotAccepted.code: not_accepted,
}


@dataclass(frozen=True)
class Declared:
    """A file as its registration declares it, made safe."""

    raw_name: str
    client_name: str
    client_type: str
    client_path: str | None
    size: int
    modified: int | None


def declared(message: dict[str, Any]) -> Declared:
    """The file a registration declares; ``BadSize``, ``BadName`` or ``BadType`` if unusable."""
    size, raw_name = message["client_size"], message["client_name"]
    if size < 0:
        raise BadSize(f"declared size {size} is negative")
    check_name(raw_name)
    client_name, client_type = safe_name(raw_name), declared_type(message["client_type"])
    return Declared(
        raw_name=raw_name,
        client_name=client_name,
        client_type=client_type,
        client_path=client_path(message, raw_name),
        size=size,
        modified=message.get("client_modified"),
    )


def check_name(raw_name: str) -> None:
    if len(raw_name) > MAX_RAW_NAME or not raw_name.strip():
        raise BadName("the file name is empty or longer than 4096 characters")


def client_path(message: dict[str, Any], raw_name: str) -> str | None:
    """A folder upload's relative path, made safe; ``BadName`` unless a plain one."""
    raw = message.get("client_path")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_RAW_NAME:
        raise BadName("client_path must be a string of at most 4096 characters")
    try:
        return safe_path(raw, raw_name)
    except ValueError as exc:
        raise BadName(f"client_path {raw[:200]!r}: {exc}") from None


def check_slot(config: UploadConfig, file: Declared, held: int) -> None:
    """The slot's own limits, for a file joining ``held`` others."""
    if held >= config.max_entries:
        raise too_many_files(config, file.client_name, file.size)
    if file.size > config.max_file_size:
        raise too_large(config, file.client_name, file.size)
    if not config.accept.allows(file.client_name, file.client_type):
        raise not_accepted(config, file.client_name, file.size)
    if not config.allow_active_content and (
        is_active(file.raw_name, file.client_type) or is_active(file.client_name, file.client_type)
    ):
        raise ActiveContent(strings.text("active_content", name=file.client_name))


def check_connection(
    *, streaming: int, max_streaming: int, reserved: int, size: int, max_bytes: int
) -> None:
    """The connection's own limits: uploads at once, and declared bytes held."""
    if streaming >= max_streaming:
        raise QuotaExceeded(f"at most {max_streaming} uploads at once per connection")
    # The connection's own quota counts declared bytes: it harms nobody else, and a file
    # that will not fit is refused before any byte moves.
    if reserved + size > max_bytes:
        raise QuotaExceeded("this connection holds too many uploaded bytes; consume some first")


def refusal(message: dict[str, Any], config: UploadConfig) -> DjustError:
    """The refusal a browser reports (``upload_refused``), checked as far as it can be."""
    code, size, raw_name = message["code"], message["client_size"], message["client_name"]
    make = REFUSALS.get(code)
    if make is None:
        raise BadMessage(f"upload_refused: code must be one of {', '.join(REFUSALS)}")
    if size < 0:
        raise BadSize(f"declared size {size} is negative")
    check_name(raw_name)
    client_name = safe_name(raw_name)
    declared_type(message["client_type"])  # BadType, as at registration
    # The one claim the server can check exactly (the browser compares the same integers).
    if code == TooLarge.code and size <= config.max_file_size:
        raise BadMessage(f"upload_refused: {size} bytes are within the slot's limit")
    return make(config, client_name, size)


class RegistrationRate:
    """At most ``limit`` registrations (or refusals) a minute, over a sliding minute."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times: deque[float] = deque()

    def take(self) -> None:
        now = time.monotonic()
        while self._times and now - self._times[0] > 60:
            self._times.popleft()
        if len(self._times) >= self.limit:
            raise RateLimited(f"more than {self.limit} upload registrations a minute")
        self._times.append(now)
