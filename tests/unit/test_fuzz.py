"""Fuzzing the wire: the frame codec, the text decoder and the session's message dispatcher.

Bounded so that CI stays fast; raise ``max_examples`` locally for a longer hunt.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from djust import errors, tokens
from djust.errors import BadFrame, BadMessage, ProtocolError
from djust.transport.protocol import (
    CLIENT_MESSAGES,
    check_ref,
    decode_frame,
    decode_text,
    encode_chunk,
    request_id,
)
from djust.transport.session import LiveSession
from djust.uploads import resume

FUZZ = settings(max_examples=250, deadline=None)

# Every code point, lone surrogates included: JSON can carry them ("\ud800").
ANY_CHAR = st.characters(exclude_categories=())
texts = st.text(ANY_CHAR, max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)


def codes() -> set[str]:
    """Every code a djust error can carry."""
    found, todo = set(), [errors.DjustError]
    while todo:
        cls = todo.pop()
        found.add(cls.code)
        todo.extend(cls.__subclasses__())
    return found


CODES = codes()

# -- the frame codec -----------------------------------------------------------------------

headers = st.builds(
    lambda kind, ref, offset, payload: struct.pack(">BIQ", kind, ref, offset) + payload,
    st.sampled_from([0x00, 0x01, 0x02, 0x03, 0xFF]) | st.integers(0, 255),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=40),
)


@FUZZ
@given(st.binary(max_size=64) | headers)
def test_decode_frame_raises_only_bad_frame_or_round_trips(data: bytes) -> None:
    try:
        chunk = decode_frame(data)
    except BadFrame:
        return
    assert encode_chunk(chunk.ref, chunk.offset, bytes(chunk.data), run=chunk.run) == data
    assert check_ref(chunk.ref) == int(chunk.ref)


# -- the text decoder ----------------------------------------------------------------------


@st.composite
def message_like(draw: Any) -> dict[str, Any]:
    """A JSON object shaped like a client message: a known or random ``t``, fields of any type."""
    kind = draw(st.sampled_from(sorted(CLIENT_MESSAGES)) | json_values)
    fields = CLIENT_MESSAGES.get(kind, {}) if isinstance(kind, str) else {}
    message: dict[str, Any] = {"t": kind}
    for field, types in fields.items():
        if draw(st.integers(0, 4)) == 0:
            continue  # missing
        if draw(st.booleans()):
            message[field] = draw(json_values)
        elif types[0] is int:
            message[field] = draw(st.integers())
        elif types[0] is str:
            message[field] = draw(texts)
        else:
            message[field] = draw(st.dictionaries(texts, json_values, max_size=3))
    message.update(draw(st.dictionaries(texts, json_values, max_size=2)))
    return message


wire_texts = (
    texts
    | st.text(ANY_CHAR, max_size=300)
    | json_values.map(json.dumps)
    | message_like().map(json.dumps)
    | message_like().map(lambda m: json.dumps(m, ensure_ascii=False))
)


@FUZZ
@given(wire_texts | st.binary(max_size=100), st.sampled_from([0, 10, 100, 256 * 1024]))
@example("[" * 100_000, 256 * 1024)
@example('{"t":"ping","id":1e400}', 256 * 1024)
@example('{"t":"ping","id":' + "9" * 5000 + "}", 256 * 1024)
def test_decode_text_raises_only_protocol_errors(raw: str | bytes, max_size: int) -> None:
    request_id(raw)  # never raises
    try:
        message = decode_text(raw, max_size=max_size)
    except ProtocolError:
        return
    fields = CLIENT_MESSAGES[message["t"]]
    for field, types in fields.items():
        assert isinstance(message[field], types) and not isinstance(message[field], bool)


@FUZZ
@given(texts | st.from_regex(r"[0-9]{1,12}", fullmatch=True))
def test_check_ref_raises_only_bad_message(ref: str) -> None:
    try:
        value = check_ref(ref)
    except BadMessage:
        return
    assert 0 <= value < 2**32 and str(value) == ref


# -- the dispatcher ------------------------------------------------------------------------

SLOTS = ["any", "docs", "images", "svg", "big", "fails", "fails_close", "any", "any"]
BAD_SLOTS = ["nope", "__class__", "\ud800", ""]
HANDLERS = ["save", "save", "save_first", "save_then_fail", "cancel_entry"]
BAD_HANDLERS = ["mount", "allow_upload", "_private", "__init__", "nope", "save()"]
REFS = ["0", "1", "2", "3"]
BAD_REFS = ["01", "-1", "4294967296", "\ud800", ""]
NAMES = ["a.bin", "a.txt", "paper.pdf", "photo.jpg", "b.bin", "c.txt", "../x.txt", "a\x00b.txt"]
BAD_NAMES = ["evil.svg", "page.html", "", " ", "x" * 5000]
MIMES = ["", "", "text/plain", "image/jpeg", "application/pdf"]
BAD_MIMES = ["image/svg+xml", "text/html; charset=utf-8", "application/atom+xml"]
SIZES = [0, 4, 10, 11, 32, 300, 300]
BAD_SIZES = [-1, 2**70, 10**6]
PARAMS = [{}, {}, {"slot": "docs"}, {"slot": "images"}, {"ref": "1"}, {"ref": "2"}]
BAD_PARAMS = [{"slot": "nope"}, {"self": 1}, {"func": 1}, {"a b": 1}, {"slot": [1]}, {"ref": None}]
PAYLOADS = [b"plain text\n", bytes(4), bytes(10), b"x" * 32, b"y" * 300, b"%PDF-1.7\n" + bytes(23)]
BAD_PAYLOADS = [b"", b"MZ\x90\x00" + bytes(28), b"<svg>" + bytes(27), b"\xff\xd8\xff\xe0"]


def mostly(
    values: list[Any], bad: list[Any], other: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Usually a value the view accepts, sometimes one it refuses, now and then anything."""
    return st.integers(0, 9).flatmap(
        lambda roll: (
            st.sampled_from(values) if roll < 7 else st.sampled_from(bad) if roll < 9 else other
        )
    )


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": mostly([1, 2, 3], [-1, 2**53], st.integers()),
    "ref": mostly(REFS, BAD_REFS, texts),
    "client_name": mostly(NAMES, BAD_NAMES, texts),
    "client_type": mostly(MIMES, BAD_MIMES, texts),
    "client_size": mostly(SIZES, BAD_SIZES, st.integers()),
    "params": mostly(PARAMS, BAD_PARAMS, st.dictionaries(texts, json_values, max_size=3)),
}
SLOT_NAMES = mostly(SLOTS, BAD_SLOTS, texts)
HANDLER_NAMES = mostly(HANDLERS, BAD_HANDLERS, texts)
KINDS = ["upload_register"] * 4 + ["event"] * 2 + ["upload_cancel", "ping", "mount"]


@st.composite
def client_messages(draw: Any) -> dict[str, Any]:
    """Mostly well-formed requests aimed at the test view, with a share of broken fields."""
    kind = draw(mostly(KINDS, ["nope", ""], json_values))
    message: dict[str, Any] = {"t": kind}
    for field in CLIENT_MESSAGES.get(kind, {}) if isinstance(kind, str) else ():
        roll = draw(st.integers(0, 39))  # hypothesis favours 0: make it the good case
        if roll == 39:
            continue  # missing
        if roll == 38:
            message[field] = draw(json_values)
        elif field == "token":
            message[field] = "VALID" if roll < 36 else draw(texts)  # replaced by a real token
        elif field == "name":
            message[field] = draw(HANDLER_NAMES if kind == "event" else SLOT_NAMES)
        else:
            message[field] = draw(FIELDS[field])
    return message


@st.composite
def chunk_frames(draw: Any) -> bytes:
    ref = draw(mostly([0, 1, 2, 3], [7, 2**32 - 1], st.integers(0, 2**32 - 1)))
    offset = draw(mostly([0, 0, 0, 4, 10, 32], [1, 2**64 - 1], st.integers(0, 2**64 - 1)))
    payload = draw(mostly(PAYLOADS, BAD_PAYLOADS, st.binary(max_size=300)))
    return encode_chunk(ref, offset, payload)


single_steps = st.integers(0, 9).flatmap(
    lambda roll: (
        client_messages().map(lambda m: [("json", m)])
        if roll < 5
        else chunk_frames().map(lambda b: [("bytes", b)])
        if roll < 8
        else wire_texts.map(lambda t: [("text", t)])
        if roll < 9
        else st.binary(max_size=20).map(lambda b: [("bytes", b)])
    )
)

# Files a flow may upload: (name, declared type, content), most of them acceptable somewhere.
FILES = [
    ("a.bin", "", b"\x00" * 300),
    ("c.txt", "text/plain", b"plain text\n" * 20),
    ("p.pdf", "application/pdf", b"%PDF-1.7\n" + bytes(500)),
    ("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300)),
    ("big.bin", "", bytes(50_000)),  # more than the "fails" slot's disk holds
    ("empty.txt", "text/plain", b""),
    ("photo.jpg", "image/jpeg", b"MZ\x90\x00" + bytes(300)),
    ("notes.txt", "text/plain", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    ("logo.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
]


@st.composite
def upload_flows(draw: Any) -> list[tuple[str, Any]]:
    """A registration, its chunks (now and then one of them wrong), then maybe a handler."""
    ref = draw(st.sampled_from(REFS))
    slot = draw(SLOT_NAMES)
    name, mime, content = draw(st.sampled_from(FILES))
    size = len(content) + draw(mostly([0], [-1, 1], st.integers(-5, 5)))
    flow: list[tuple[str, Any]] = [
        (
            "json",
            {
                "t": "upload_register",
                "id": 1,
                "name": slot,
                "ref": ref,
                "client_name": name,
                "client_type": mime,
                "client_size": size,
            },
        )
    ]
    offset = 0
    while offset < len(content):
        length = draw(st.sampled_from([16384, 16384, 1000, 7]))
        start = offset + draw(mostly([0], [-1, 1, 5], st.integers(-3, 3)))
        flow.append(("bytes", encode_chunk(ref, max(start, 0), content[offset : offset + length])))
        offset += length
    if draw(st.booleans()):
        flow.append(("settle", None))  # as a client waits for upload_complete
        handler = {"t": "event", "id": 2, "name": draw(mostly(HANDLERS, BAD_HANDLERS, texts))}
        params = draw(mostly([{"slot": slot}], [*BAD_PARAMS, {"ref": ref}], FIELDS["params"]))
        flow.append(("json", {**handler, "params": params}))
    if draw(st.integers(0, 4)) == 0:
        flow.append(("json", {"t": "upload_cancel", "ref": ref}))
    return flow


steps = st.lists(
    st.integers(0, 2).flatmap(lambda roll: upload_flows() if roll == 0 else single_steps),
    max_size=8,
).map(lambda parts: [step for part in parts for step in part])


async def settle(session: LiveSession) -> None:
    """Give the upload writers a moment to finish the entries whose bytes all arrived."""
    for _ in range(100):
        entries = session.frames.manager.entries.values() if session.frames else ()
        if all(e.done or e.received < e.client_size for e in entries):
            return
        await asyncio.sleep(0.001)


async def drive(
    token: str, mount_first: bool, stream: list[tuple[str, Any]]
) -> tuple[list[dict[str, Any]], LiveSession]:
    """Feed ``stream`` to a fresh session; return what it sent. Fails on anything raised,
    including in tasks the session started."""
    loop = asyncio.get_running_loop()
    crashes: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: crashes.append(context))
    sent: list[dict[str, Any]] = []

    async def send(data: str | bytes) -> None:
        assert isinstance(data, str)
        data.encode()  # a WebSocket text frame must be valid UTF-8
        sent.append(json.loads(data))

    scope = {
        "type": "websocket",
        "user": AnonymousUser(),
        "headers": [(b"host", b"testserver")],
        "path": "/djust/ws/",
    }
    session = LiveSession(scope, send)
    try:
        if mount_first:
            await session.receive_text(json.dumps({"t": "mount", "token": token}))
            assert sent[-1]["t"] == "mounted", sent[-1]
        for kind, data in stream:
            if kind == "json":
                if data.get("token") == "VALID":
                    data = {**data, "token": token}
                await session.receive_text(json.dumps(data))
            elif kind == "text":
                await session.receive_text(data)
            elif kind == "settle":
                await settle(session)
            else:
                await session.receive_bytes(data)
            await asyncio.sleep(0)  # let the upload writers report back
        await asyncio.sleep(0.005)
    finally:
        await session.close()
    assert crashes == []
    return sent, session


@pytest.fixture
def fuzz_env(tmp_path: Path, settings: Any) -> Path:
    uploads = tmp_path / "uploads"
    settings.DJUST = {**settings.DJUST, "UPLOAD_DIR": str(uploads)}
    settings.MEDIA_ROOT = tmp_path / "media"
    uploads.mkdir()
    return uploads


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mount_first=st.booleans() | st.just(True), stream=steps)
def test_the_dispatcher_answers_everything_with_typed_messages(
    fuzz_env: Path, mount_first: bool, stream: list[tuple[str, Any]]
) -> None:
    from tests.app.views import UploadsView

    token = tokens.dumps(UploadsView, "/t/uploads/", "", {})
    sent, session = asyncio.run(drive(token, mount_first, stream))
    # Entries that waited for their page to resume them expire: nothing of them is left.
    resume.reset()
    for message in sent:
        assert isinstance(message, dict) and isinstance(message.get("t"), str), message
        if message["t"] in ("error", "upload_error"):
            assert message["code"] in CODES and isinstance(message["message"], str), message
    # Closing the session released every entry: its quota and its file.
    if session.frames is not None:
        assert session.frames.manager.entries == {} and session.frames.reserved == 0
        from djust.uploads.channel import ledger

        assert (ledger.bytes, ledger.uploads, ledger.waiting) == (0, 0, 0)
    deadline = time.monotonic() + 2
    while uploaded_files(fuzz_env) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert uploaded_files(fuzz_env) == []


def uploaded_files(directory: Path) -> list[Path]:
    """What uploads left in the directory (its id, shared by every process, stays)."""
    return [path for path in directory.iterdir() if path.name != ".djust-id"]
