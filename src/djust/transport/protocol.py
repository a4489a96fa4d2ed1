"""The wire protocol, version 1: JSON text messages and binary chunk frames.

Pure code: no Django, no Channels. ``docs/protocol.md`` is the written specification.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from djust.errors import BadFrame, BadMessage, BadRef, DjustError, FrameTooLarge, UnknownSlot

VERSION = 1

# WebSocket close codes the server uses (4000-4999 are the application's).
CLOSE_RATE_LIMITED = 4429
# The login the page was opened with ended (logout, flushed session, password change).
CLOSE_SESSION_ENDED = 4401

# Binary frame: type (u8), ref (u32), offset (u64), payload; big-endian.
FRAME_CHUNK = 0x01
# The same header; the payload is a run of consecutive whole chunks (docs/protocol.md, 5).
FRAME_RUN = 0x02
_HEADER = struct.Struct(">BIQ")
HEADER_SIZE = _HEADER.size  # 13 bytes
MAX_REF = 2**32 - 1

_REF_RE = re.compile(r"(?:0|[1-9][0-9]{0,9})")

# Client message types and the fields each must carry, with their JSON types.
_INT = (int,)
_STR = (str,)
CLIENT_MESSAGES: dict[str, dict[str, tuple[type, ...]]] = {
    "mount": {"token": _STR},
    "event": {"id": _INT, "name": _STR, "params": (dict,)},
    "ping": {"id": _INT},
    "upload_register": {
        "id": _INT,
        "name": _STR,
        "ref": _STR,
        "client_name": _STR,
        "client_type": _STR,
        "client_size": _INT,
    },
    "upload_cancel": {"ref": _STR},
    # Direct uploads: a URL for one part of that SHA-256, then the part's ETag once it landed.
    "upload_presign": {"ref": _STR, "part": _INT, "checksum": _STR},
    "upload_part": {"ref": _STR, "part": _INT},
    "upload_refused": {
        "name": _STR,
        "client_name": _STR,
        "client_type": _STR,
        "client_size": _INT,
        "code": _STR,
    },
}
# Fields a message may carry, checked when present (``null`` counts as absent).
OPTIONAL_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "mount": {"deflate": (bool,)},  # the socket negotiated permessage-deflate
    "upload_register": {
        "client_modified": _INT,
        "resume": _STR,
        "fallback": (bool,),
    },
    "upload_part": {"etag": _STR, "checksum": _STR, "error": _STR},
}

# The answer to a message of a type that the mounted view takes no part in (None: no answer).
NOT_TAKEN: dict[str, tuple[type[DjustError], str] | None] = {
    "upload_register": (UnknownSlot, "this view has no upload slot {name!r}"),
    "upload_refused": (UnknownSlot, "this view has no upload slot {name!r}"),
    "upload_cancel": None,
    "upload_presign": (BadRef, "no direct upload {ref} in progress"),
    "upload_part": (BadRef, "no direct upload {ref} in progress"),
}


@dataclass(frozen=True, slots=True)
class Chunk:
    """A slice of an upload's bytes at ``offset``: one chunk, or a run of whole chunks."""

    ref: str
    offset: int
    data: memoryview
    run: bool = False


def decode_text(text: str | bytes, *, max_size: int) -> dict[str, Any]:
    """Parse and check a client text message; raise a typed error if it breaks the schema."""
    if len(text) > max_size:
        raise FrameTooLarge(f"text message of {len(text)} bytes exceeds {max_size}")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadMessage(f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadMessage("a message must be a JSON object")
    kind = message.get("t")
    fields = CLIENT_MESSAGES.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise BadMessage(f"unknown message type {kind!r}")
    for field, types in fields.items():
        value = message.get(field)
        # bool is an int subclass in Python but never a valid id or size.
        if not isinstance(value, types) or isinstance(value, bool):
            raise BadMessage(f"{kind}: field {field!r} must be {types[0].__name__}")
    for field, types in OPTIONAL_FIELDS.get(kind, {}).items():
        value = message.get(field)
        if value is not None and (
            not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        ):
            raise BadMessage(f"{kind}: field {field!r} must be {types[0].__name__}")
    return message


def request_id(text: str | bytes) -> int | None:
    """The int ``id`` of a message that ``decode_text`` refused, so that its error can echo it."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    value = message.get("id") if isinstance(message, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_ref(ref: str) -> int:
    """The numeric value of a wire ref (a decimal u32); ``BadMessage`` if malformed."""
    if not _REF_RE.fullmatch(ref) or int(ref) > MAX_REF:
        raise BadMessage(f"ref {ref[:20]!r} is not a decimal number below 2**32")
    return int(ref)


def decode_frame(data: bytes) -> Chunk:
    """Split a binary frame into its header fields and payload (no copy)."""
    if len(data) < HEADER_SIZE:
        raise BadFrame(f"binary frame of {len(data)} bytes is shorter than its header")
    kind, ref, offset = _HEADER.unpack_from(data)
    if kind != FRAME_CHUNK and kind != FRAME_RUN:
        raise BadFrame(f"unknown binary frame type 0x{kind:02x}")
    return Chunk(str(ref), offset, memoryview(data)[HEADER_SIZE:], kind == FRAME_RUN)


def encode_chunk(ref: str | int, offset: int, payload: bytes, *, run: bool = False) -> bytes:
    """Build a chunk frame, or with ``run=True`` a run frame (used by clients and tests)."""
    return _HEADER.pack(FRAME_RUN if run else FRAME_CHUNK, int(ref), offset) + payload


def encode(message: dict[str, Any]) -> str:
    """Serialize a server message (always encodable as UTF-8, as a WebSocket text frame must be)."""
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            # A lone surrogate, echoed from a client's own JSON (a ref, a slot name): escape it.
            text = json.dumps(message, separators=(",", ":"))
    return text
