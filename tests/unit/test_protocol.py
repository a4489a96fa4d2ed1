from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from djust.errors import BadFrame, BadMessage, FrameTooLarge
from djust.transport.protocol import (
    CLIENT_MESSAGES,
    FRAME_CHUNK,
    FRAME_RUN,
    HEADER_SIZE,
    MAX_REF,
    check_ref,
    decode_frame,
    decode_text,
    encode,
    encode_chunk,
    request_id,
)

LIMIT = 1024

VALID: dict[str, dict[str, Any]] = {
    "mount": {"t": "mount", "token": "abc"},
    "event": {"t": "event", "id": 1, "name": "save", "params": {}},
    "ping": {"t": "ping", "id": 7},
    "upload_register": {
        "t": "upload_register",
        "id": 2,
        "name": "avatar",
        "ref": "0",
        "client_name": "me.png",
        "client_type": "image/png",
        "client_size": 10,
    },
    "upload_cancel": {"t": "upload_cancel", "ref": "3"},
    "upload_presign": {"t": "upload_presign", "ref": "4", "part": 1, "checksum": "x" * 44},
    "upload_part": {"t": "upload_part", "ref": "4", "part": 1, "etag": '"e"', "checksum": "c"},
    "upload_refused": {
        "t": "upload_refused",
        "name": "avatar",
        "client_name": "huge.png",
        "client_type": "image/png",
        "client_size": 10_000_001,
        "code": "too_large",
    },
}


def decode(message: Any) -> dict[str, Any]:
    return decode_text(json.dumps(message), max_size=LIMIT)


# -- binary frames -------------------------------------------------------------------------


def test_the_header_is_13_bytes() -> None:
    assert HEADER_SIZE == 13


def test_chunk_frame_layout_is_type_ref_offset_payload_big_endian() -> None:
    frame = encode_chunk("258", 2**40 + 5, b"xyz")
    assert frame == b"\x01" + b"\x00\x00\x01\x02" + (2**40 + 5).to_bytes(8, "big") + b"xyz"


@pytest.mark.parametrize(
    ("ref", "offset", "payload"),
    [("0", 0, b""), ("1", 0, b"a"), (str(MAX_REF), 2**64 - 1, bytes(range(256)) * 4)],
    ids=["empty", "small", "extremes"],
)
def test_chunk_frames_round_trip(ref: str, offset: int, payload: bytes) -> None:
    chunk = decode_frame(encode_chunk(ref, offset, payload))
    assert (chunk.ref, chunk.offset, bytes(chunk.data)) == (ref, offset, payload)


def test_encode_accepts_an_int_ref() -> None:
    assert encode_chunk(5, 0, b"") == encode_chunk("5", 0, b"")


def test_decoding_does_not_copy_the_payload() -> None:
    frame = encode_chunk("1", 0, b"payload")
    chunk = decode_frame(frame)
    assert isinstance(chunk.data, memoryview) and chunk.data.obj is frame


@pytest.mark.parametrize("size", [0, 1, 5, HEADER_SIZE - 1])
def test_a_frame_shorter_than_its_header_is_bad_frame(size: int) -> None:
    with pytest.raises(BadFrame):
        decode_frame(encode_chunk("1", 0, b"")[:size])


def test_a_chunk_frame_is_not_a_run() -> None:
    assert decode_frame(encode_chunk("1", 0, b"x")).run is False


def test_a_run_frame_has_type_2_and_the_same_header() -> None:
    frame = encode_chunk("258", 7, b"xyz", run=True)
    assert frame == b"\x02" + b"\x00\x00\x01\x02" + (7).to_bytes(8, "big") + b"xyz"
    chunk = decode_frame(frame)
    assert (chunk.ref, chunk.offset, bytes(chunk.data), chunk.run) == ("258", 7, b"xyz", True)


@pytest.mark.parametrize("kind", [0x00, 0x03, 0x7F, 0xFF])
def test_an_unknown_frame_type_is_bad_frame(kind: int) -> None:
    assert kind not in (FRAME_CHUNK, FRAME_RUN)
    frame = struct.pack(">BIQ", kind, 1, 0) + b"data"
    with pytest.raises(BadFrame) as caught:
        decode_frame(frame)
    assert caught.value.code == "bad_frame"


# -- text messages -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_messages_decode_to_their_object(kind: str) -> None:
    assert decode(VALID[kind]) == VALID[kind]


def test_every_client_message_type_has_a_valid_example() -> None:
    assert set(VALID) == set(CLIENT_MESSAGES)


def test_bytes_are_accepted_as_text() -> None:
    assert decode_text(json.dumps(VALID["ping"]).encode(), max_size=LIMIT) == VALID["ping"]


def test_extra_fields_are_kept() -> None:
    assert decode({**VALID["ping"], "extra": [1]})["extra"] == [1]


@pytest.mark.parametrize(
    "text", ["", "not json", "{", '{"t": "ping", "id": 1', "\x00", "[" * 100_000]
)
def test_invalid_json_is_bad_message(text: str) -> None:
    with pytest.raises(BadMessage) as caught:
        decode_text(text, max_size=len(text) + 1)
    assert caught.value.code == "bad_message"


@pytest.mark.parametrize("text", ["[]", "[1, 2]", '"ping"', "1", "null", "true"])
def test_a_message_that_is_not_an_object_is_bad_message(text: str) -> None:
    with pytest.raises(BadMessage):
        decode_text(text, max_size=LIMIT)


@pytest.mark.parametrize(
    "message",
    [{}, {"t": "nope"}, {"t": None}, {"t": 1}, {"t": ["ping"]}, {"type": "ping", "id": 1}],
    ids=["no-t", "unknown", "null", "int", "list", "wrong-key"],
)
def test_an_unknown_message_type_is_bad_message(message: dict[str, Any]) -> None:
    with pytest.raises(BadMessage):
        decode(message)


def _without_each_field() -> list[Any]:
    cases = []
    for kind, fields in CLIENT_MESSAGES.items():
        for field in fields:
            message = {k: v for k, v in VALID[kind].items() if k != field}
            cases.append(pytest.param(message, id=f"{kind}-{field}"))
    return cases


@pytest.mark.parametrize("message", _without_each_field())
def test_a_missing_field_is_bad_message(message: dict[str, Any]) -> None:
    with pytest.raises(BadMessage):
        decode(message)


_WRONG_VALUES = {int: ["1", 1.0, 1.5, None, [], {}], str: [1, None, [], {}, True], dict: [[], "x"]}


def _with_each_field_mistyped() -> list[Any]:
    cases = []
    for kind, fields in CLIENT_MESSAGES.items():
        for field, types in fields.items():
            for i, wrong in enumerate(_WRONG_VALUES[types[0]]):
                message = {**VALID[kind], field: wrong}
                cases.append(pytest.param(message, id=f"{kind}-{field}-{i}"))
    return cases


@pytest.mark.parametrize("message", _with_each_field_mistyped())
def test_a_field_of_the_wrong_type_is_bad_message(message: dict[str, Any]) -> None:
    with pytest.raises(BadMessage):
        decode(message)


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("event", "id"),
        ("ping", "id"),
        ("upload_register", "id"),
        ("upload_register", "client_size"),
    ],
)
@pytest.mark.parametrize("value", [True, False])
def test_a_bool_is_not_an_int(kind: str, field: str, value: bool) -> None:
    with pytest.raises(BadMessage):
        decode({**VALID[kind], field: value})


def test_a_message_over_the_size_limit_is_frame_too_large() -> None:
    text = json.dumps({**VALID["mount"], "token": "x" * LIMIT})
    with pytest.raises(FrameTooLarge) as caught:
        decode_text(text, max_size=LIMIT)
    assert caught.value.code == "frame_too_large"


def test_a_message_of_exactly_the_size_limit_is_accepted() -> None:
    text = json.dumps(VALID["ping"])
    assert decode_text(text, max_size=len(text)) == VALID["ping"]


def test_the_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(FrameTooLarge):
        decode_text("not json at all", max_size=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"t": "event", "id": 5, "params": []}', 5),
        ('{"t": "nope", "id": 0}', 0),
        ('{"id": true}', None),
        ('{"id": "5"}', None),
        ("[5]", None),
        ("not json", None),
    ],
)
def test_request_id_finds_the_int_id_of_a_refused_message(text: str, expected: int | None) -> None:
    assert request_id(text) == expected


def test_server_messages_are_compact_utf8_json() -> None:
    assert encode({"t": "render", "html": "é"}) == '{"t":"render","html":"é"}'


def test_a_lone_surrogate_echoed_from_the_client_is_escaped() -> None:
    # A client can send "\ud800" in JSON; echoed raw, it could not be sent as UTF-8.
    message = {"t": "upload_error", "ref": "\ud800", "file": "é"}
    text = encode(message)
    assert text.isascii() and json.loads(text) == message


# -- refs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["0", "1", "42", "1000000000", str(MAX_REF)])
def test_a_decimal_u32_is_a_valid_ref(ref: str) -> None:
    assert check_ref(ref) == int(ref)


@pytest.mark.parametrize(
    "ref",
    ["", "01", "00", "-1", "+1", "1.0", " 1", "1 ", "0x1", "abc", str(MAX_REF + 1), "9" * 11, "١"],
    ids=[
        "empty",
        "leading-zero",
        "zeros",
        "negative",
        "plus",
        "decimal",
        "leading-space",
        "trailing-space",
        "hex",
        "letters",
        "above-u32",
        "eleven-digits",
        "arabic-digit",
    ],
)
def test_a_malformed_ref_is_bad_message(ref: str) -> None:
    with pytest.raises(BadMessage):
        check_ref(ref)
