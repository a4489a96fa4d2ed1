"""The hostile-input matrix: every attack gets its typed answer and costs nobody else anything.

Each case runs one attack on its own connection while an honest upload streams on another. The
honest upload registers and sends half its bytes before the attack starts, keeps trickling bytes
while the attack runs and sends the rest only after it. For every case the test asserts:

- the answer the attacker gets: an ``error`` or ``upload_error`` message with the case's code
  (the HTTP status for a refused handshake; nothing at all for inputs that are made harmless,
  such as file names that are stored under a safe name);
- whether the attacker's connection stays open (it answers a ping) or how it was closed;
- that the honest upload completes and its stored file is byte-identical (SHA-256);
- that the upload directory holds nothing of the refused entry once the answer has arrived, and
  nothing at all once both connections are closed;
- that the server logged no crash of a connection ("Exception in ASGI application").

Cases that need low limits run on a second server of their own (``strict``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core import signing
from websockets.exceptions import ConnectionClosed, InvalidStatus

from djust import tokens
from djust.testing import LiveClient, WebSocketTransport
from djust.transport.protocol import encode_chunk
from tests.app.views import UploadsView

from ..conftest import Server, make_server
from .conftest import Live, wait_until
from .test_uploads import EXE, HTML, PNG, SVG, saved, saved_lines, sha256

# The strict server's limits (tests/settings.py reads these from the environment).
STRICT_ENV = {
    "TEST_MAX_FPS": "200",
    "TEST_STALL_TIMEOUT": "1",
    "TEST_MAX_REGISTRATIONS": "5",
    "TEST_MAX_CONNECTION_BYTES": "1000000",
    "TEST_UPLOAD_WINDOW": "65536",
    "TEST_MAX_FRAME_SIZE": str(65536 + 13),
    "TEST_MAX_PROCESS_BYTES": "1000000",
    "TEST_MIN_RATE": "2048",
    "TEST_MIN_RATE_WINDOW": "2",
    "TEST_MAX_UPLOADS_PER_CLIENT": "4",
}
MAX_TEXT_SIZE = 256 * 1024
SERVER_MESSAGE_LIMIT = 1024 * 1024 + 64  # djust_serve gives uvicorn djust's MAX_FRAME_SIZE
HONEST_SIZE = 300_000
REFUSED = "refused"  # the handshake itself was refused: there never was a connection
CRASH = "Exception in ASGI application"
TAG = uuid.uuid4().hex[:8]  # keeps stored names of this run apart from earlier ones


# -- the honest neighbour ------------------------------------------------------------------


class Honest:
    """Streams ``data`` as the browser does (within the window), in three phases."""

    def __init__(self, client: LiveClient, server: Server) -> None:
        self.client = client
        self.server = server
        self.data = os.urandom(HONEST_SIZE)
        self.name = f"honest-{uuid.uuid4().hex[:12]}.bin"
        self.ref = ""
        self.temp = ""
        self.sent = self.acked = 0
        self.error: dict[str, Any] | None = None
        self.progress = asyncio.Event()
        self.complete = asyncio.Event()

    async def start(self) -> None:
        """Register and send half of the file; return once the server acknowledged some."""
        before = set(self.server.temp_files())
        reply = await self.client.register("any", self.name, len(self.data))
        assert reply["t"] == "upload_registered", reply
        self.ref, self.window = reply["ref"], reply["window"]
        self.chunk = self.client.uploads["any"]["chunk_size"]
        self.reader = asyncio.create_task(self._read())
        await self._send_to(len(self.data) // 2, self.chunk)
        while self.acked == 0:
            await self._wait()
        (self.temp,) = set(self.server.temp_files()) - before  # opened by the first bytes

    async def finish(self, attack_done: asyncio.Event) -> None:
        """Trickle (so that a short stall timeout never fires) until the attack is over."""
        reserve = len(self.data) - 16 * 1024
        while not attack_done.is_set():
            if self.sent < reserve:
                await self._send_to(self.sent + 1024, 1024)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(attack_done.wait(), 0.05)
        await self._send_to(len(self.data), self.chunk)
        await asyncio.wait_for(self.complete.wait(), 15)
        assert self.error is None, self.error

    async def _send_to(self, until: int, size: int) -> None:
        view = memoryview(self.data)
        while self.sent < until:
            end = min(self.sent + size, until)
            while end - self.acked > self.window:
                await self._wait()
            await self.client.transport.send_bytes(
                encode_chunk(self.ref, self.sent, view[self.sent : end])
            )
            self.sent = end

    async def _wait(self) -> None:
        assert self.error is None, self.error
        self.progress.clear()
        await asyncio.wait_for(self.progress.wait(), 15)
        assert self.error is None, self.error

    async def _read(self) -> None:
        kinds = ("upload_ack", "upload_complete", "upload_error")
        while True:
            message = await self.client.wait_for(
                lambda m: m.get("ref") == self.ref and m["t"] in kinds
            )
            if message["t"] == "upload_ack":
                self.acked = max(self.acked, message["offset"])
            else:
                if message["t"] == "upload_error":
                    self.error = message
                self.complete.set()
                self.progress.set()
                return
            self.progress.set()

    async def check_stored(self) -> None:
        """Consume the upload with the view's ``save`` handler and compare the stored bytes."""
        rows = saved((await self.client.event("save", slot="any"))["html"])
        assert [Path(path).name for path, _, _ in rows] == [self.name]
        path, digest, size = rows[0]
        stored = (self.server.media_dir / path).read_bytes()
        assert (sha256(stored), digest, size) == (sha256(self.data), sha256(self.data), HONEST_SIZE)


# -- what a case gets to work with ---------------------------------------------------------


@dataclass
class Ctx:
    live: Live
    server: Server
    attacker: LiveClient | None
    honest: Honest

    @property
    def client(self) -> LiveClient:
        assert self.attacker is not None
        return self.attacker


Attack = Callable[[Ctx], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Case:
    id: str
    attack: Attack
    kind: str | None  # "error", "upload_error", "http", or None: no error at all
    code: str | int | None
    closes: int | str | None = None  # None: stays open; a close code; REFUSED
    path: str | None = "/t/uploads/"  # where the attacker connects (None: the attack does)
    mount: bool = True
    kept: int = 0  # the attacker's own entries that legitimately hold a temp file afterwards
    server: str = "shared"


_ids = itertools.count(1000)


async def next_error(client: LiveClient) -> dict[str, Any]:
    return await client.wait_for(lambda m: m["t"] in ("error", "upload_error"))


# -- attack builders -----------------------------------------------------------------------


def text(raw: str) -> Attack:
    async def attack(ctx: Ctx) -> dict[str, Any]:
        await ctx.client.transport.send_text(raw)
        return await next_error(ctx.client)

    return attack


def message(obj: dict[str, Any]) -> Attack:
    return text(json.dumps(obj))


def frame(data: bytes) -> Attack:
    async def attack(ctx: Ctx) -> dict[str, Any]:
        await ctx.client.transport.send_bytes(data)
        return await next_error(ctx.client)

    return attack


def registration(slot: str, name: str, size: Any, mime: str = "", **fields: Any) -> dict[str, Any]:
    return {
        "t": "upload_register",
        "id": next(_ids),
        "name": slot,
        "ref": fields.pop("ref", str(next(_ids))),
        "client_name": name,
        "client_type": mime,
        "client_size": size,
        **fields,
    }


async def register_ok(client: LiveClient, slot: str, name: str, size: int, mime: str = "") -> str:
    reply = await client.register(slot, name, size, mime)
    assert reply["t"] == "upload_registered", reply
    return reply["ref"]


def register(
    slot: str, name: str, size: Any, mime: str = "", *, before: int = 0, **fields: Any
) -> Attack:
    """Register one file (after ``before`` accepted ones in the same slot); its answer."""

    async def attack(ctx: Ctx) -> dict[str, Any]:
        for i in range(before):
            await register_ok(ctx.client, slot, f"held{i}.txt", 10, mime)
        await ctx.client.send(registration(slot, name, size, mime, **fields))
        reply = await ctx.client.wait_for(
            lambda m: m["t"] in ("upload_registered", "upload_error", "error")
        )
        assert reply["t"] != "upload_registered", reply
        return reply

    return attack


def upload(slot: str, name: str, content: bytes, mime: str = "") -> Attack:
    """Register and stream ``content``; the ``upload_error`` it ends with."""

    async def attack(ctx: Ctx) -> dict[str, Any] | None:
        result = await ctx.client.upload(slot, name, content, mime)
        assert result.status == "error", result
        return next(m for m in reversed(ctx.client.received) if m["t"] == "upload_error")

    return attack


def chunks(size: int, *sends: tuple[int, int], slot: str = "any", run: bool = False) -> Attack:
    """Register ``size`` bytes and send chunks (or runs) of ``(offset, length)``; the error."""

    async def attack(ctx: Ctx) -> dict[str, Any]:
        ref = await register_ok(ctx.client, slot, "a.bin", size)
        for offset, length in sends:
            frame = encode_chunk(ref, offset, bytes(length), run=run)
            await ctx.client.transport.send_bytes(frame)
        return await next_error(ctx.client)

    return attack


def event(handler: str, /, **params: Any) -> Attack:
    async def attack(ctx: Ctx) -> dict[str, Any] | None:
        request_id = next(_ids)
        await ctx.client.send({"t": "event", "id": request_id, "name": handler, "params": params})
        reply = await ctx.client.wait_for(lambda m: m.get("id") == request_id)
        return reply if reply["t"] == "error" else None

    return attack


def mount_with(make_token: Callable[[str], str]) -> Attack:
    async def attack(ctx: Ctx) -> dict[str, Any]:
        await ctx.client.send({"t": "mount", "token": make_token(ctx.client.token)})  # type: ignore[attr-defined]
        return await next_error(ctx.client)

    return attack


def stored_as(raw: str, stored: str) -> Attack:
    """A hostile name is not refused: the file is stored under ``stored`` in ``saved/``."""
    data = b"plain text\n"

    async def attack(ctx: Ctx) -> None:
        result = await ctx.client.upload("any", raw, data, "text/plain")
        assert result.status == "complete", result
        rows = saved((await ctx.client.event("save"))["html"])
        assert [path for path, _, _ in rows] == [f"saved/{stored}"]
        target = (ctx.server.media_dir / rows[0][0]).resolve()
        assert target.parent == (ctx.server.media_dir / "saved").resolve()
        assert target.read_bytes() == data

    return attack


async def longest_name_stored_twice(ctx: Ctx) -> None:
    """Two files of the longest name: the storage's collision suffix must still fit the disk."""
    raw = f"{TAG}-" + "n" * (255 - len(TAG) - 5) + ".txt"  # 255 bytes
    for data in (b"one\n", b"two\n"):
        result = await ctx.client.upload("any", raw, data, "text/plain")
        assert result.status == "complete", result
    rows = saved((await ctx.client.event("save"))["html"])
    assert len({path for path, _, _ in rows}) == 2
    assert [(ctx.server.media_dir / path).read_bytes() for path, _, _ in rows] == [
        b"one\n",
        b"two\n",
    ]


def stored_typed(name: str, content: bytes, declared: str, expected: str) -> Attack:
    """Not refused: storage is told the type of the content (``expected``), not ``declared``."""

    async def attack(ctx: Ctx) -> None:
        result = await ctx.client.upload("any", name, content, declared)
        assert result.status == "complete", result
        lines = saved_lines((await ctx.client.event("note_types"))["html"])
        assert lines == [f"{name} {declared} {expected}"]

    return attack


# -- attacks that need more than one step --------------------------------------------------


async def chunk_for_the_honest_ref(ctx: Ctx) -> dict[str, Any]:
    # The attacker aims at the honest upload's ref and next offset: refs are per connection.
    await ctx.client.transport.send_bytes(encode_chunk(ctx.honest.ref, ctx.honest.sent, b"EVIL"))
    return await next_error(ctx.client)


async def cancel_the_honest_ref(ctx: Ctx) -> None:
    mark = len(ctx.client.received)
    await ctx.client.send({"t": "upload_cancel", "ref": ctx.honest.ref})
    await ctx.client.ping()
    assert [m["t"] for m in ctx.client.received[mark:] if m["t"] != "render"] == ["pong"]


async def cancel_entry_of_the_honest_ref(ctx: Ctx) -> dict[str, Any] | None:
    return await event("cancel_entry", ref=ctx.honest.ref)(ctx)


async def chunk_after_complete(ctx: Ctx) -> dict[str, Any]:
    result = await ctx.client.upload("any", "done.bin", bytes(10))
    assert result.status == "complete"
    await ctx.client.transport.send_bytes(encode_chunk(result.ref, 10, b"more"))
    return await next_error(ctx.client)


async def reused_ref(ctx: Ctx) -> dict[str, Any]:
    await register_ok(ctx.client, "any", "first.bin", 10)
    return await register("any", "second.bin", 10, ref=str(ctx.client._next_ref))(ctx)


async def too_many_uploads_at_once(ctx: Ctx) -> dict[str, Any]:
    for i in range(4):  # MAX_CONCURRENT_UPLOADS, all unfinished
        await register_ok(ctx.client, "any", f"open{i}.bin", 100)
    return await register("any", "fifth.bin", 100)(ctx)


async def handler_raises_while_consuming(ctx: Ctx) -> dict[str, Any] | None:
    assert (await ctx.client.upload("any", "x.bin", b"data")).status == "complete"
    return await event("save_then_fail")(ctx)


async def second_mount(ctx: Ctx) -> dict[str, Any]:
    return await mount_with(lambda token: token)(ctx)


def over_server_limit(data: str | bytes) -> Attack:
    async def attack(ctx: Ctx) -> None:
        with contextlib.suppress(ConnectionClosed):
            if isinstance(data, str):
                await ctx.client.transport.send_text(data)
            else:
                await ctx.client.transport.send_bytes(data)
            await ctx.client.wait_for(lambda m: m["t"] in ("error", "upload_error"))
            raise AssertionError("the server answered instead of closing")

    return attack


def origin(value: str | None) -> Attack:
    async def attack(ctx: Ctx) -> dict[str, Any]:
        with pytest.raises(InvalidStatus) as caught:
            await WebSocketTransport.connect(ctx.server.ws_url, value)  # type: ignore[arg-type]
        return {"t": "http", "code": caught.value.response.status_code}

    return attack


def origin_of(make: Callable[[Server], str]) -> Attack:
    """A handshake from the origin ``make`` derives from the server (its port, its URL)."""

    async def attack(ctx: Ctx) -> dict[str, Any]:
        return await origin(make(ctx.server))(ctx)

    return attack


def token_for(view: type, user: str = "") -> Callable[[str], str]:
    return lambda _: tokens.dumps(view, "/t/uploads/", "", {}, user)


def expired(token: str) -> str:
    from unittest import mock

    payload = signing.loads(token, salt=tokens.SALT)
    with mock.patch("django.core.signing.time.time", return_value=0):
        return signing.dumps(payload, salt=tokens.SALT, compress=True)


async def frame_flood(ctx: Ctx) -> dict[str, Any]:
    with contextlib.suppress(ConnectionClosed):
        for i in range(1000):  # five times the strict server's 200 frames a second
            await ctx.client.transport.send_text(json.dumps({"t": "ping", "id": i}))
    return await next_error(ctx.client)


async def stops_mid_upload(ctx: Ctx) -> dict[str, Any]:
    before = set(ctx.server.temp_files())
    ref = await register_ok(ctx.client, "any", "stuck.bin", 100_000)
    await ctx.client.transport.send_bytes(encode_chunk(ref, 0, bytes(16 * 1024)))
    # The entry's temp file exists (opened by its first bytes) until the stall.
    assert await wait_until(lambda: set(ctx.server.temp_files()) - before)
    return await next_error(ctx.client)


async def over_the_registration_rate(ctx: Ctx) -> dict[str, Any]:
    for _ in range(5):  # refused registrations count too
        reply = await ctx.client.register("nope", "a.bin", 10)
        assert reply["code"] == "unknown_slot"
    return await register("any", "sixth.bin", 10)(ctx)


def refusal(slot: str, name: str, size: Any, code: str = "too_large", **fields: Any) -> dict:
    """What the browser reports for a file its own checks refused (``upload_refused``)."""
    return {
        "t": "upload_refused",
        "name": slot,
        "client_name": name,
        "client_type": "",
        "client_size": size,
        "code": code,
        "message": "refused",
        **fields,
    }


async def over_the_refusal_rate(ctx: Ctx) -> dict[str, Any]:
    for i in range(5):  # each is listed and re-rendered: they count as registrations do
        await ctx.client.send(refusal("docs", f"big{i}.pdf", 5000))
    return await message(refusal("docs", "sixth.pdf", 5000))(ctx)


async def over_the_connection_quota(ctx: Ctx) -> dict[str, Any]:
    await register_ok(ctx.client, "any", "first.bin", 600_000)
    return await register("any", "second.bin", 600_000)(ctx)


async def ignores_the_window(ctx: Ctx) -> dict[str, Any]:
    # 4 KiB, then a run of four 16 KiB chunks without waiting for an ack: 68 KiB > the 64 KiB
    # window. The server acks nothing in between (4 KiB is below its ack cadence and leaves
    # room for a chunk), so the answer does not depend on timing.
    ref = await register_ok(ctx.client, "any", "w.bin", 1_000_000)
    await ctx.client.transport.send_bytes(encode_chunk(ref, 0, bytes(4096)))
    await ctx.client.transport.send_bytes(encode_chunk(ref, 4096, bytes(65536), run=True))
    return await next_error(ctx.client)


def flood_of(frame: str | bytes) -> Attack:
    """1,000 copies of ``frame``: a twentieth of the frame rate's burst, five text budgets."""

    async def attack(ctx: Ctx) -> dict[str, Any]:
        with contextlib.suppress(ConnectionClosed):
            for _ in range(1000):
                if isinstance(frame, str):
                    await ctx.client.transport.send_text(frame)
                else:
                    await ctx.client.transport.send_bytes(frame)
        return await ctx.client.wait_for(lambda m: m.get("code") == "rate_limited")

    return attack


async def declarations_of_the_whole_process_quota(ctx: Ctx) -> None:
    # Two sockets each declare the process's whole quota: each holds one window of it.
    second = await ctx.live.connect()
    for client in (ctx.client, second):
        await register_ok(client, "any", "huge.bin", 1_000_000)


async def trickle_below_the_minimum_rate(ctx: Ctx) -> dict[str, Any]:
    # 50 bytes every 0.25 s beats the 1 s stall timeout, not the 2 KiB/s minimum rate.
    ref = await register_ok(ctx.client, "any", "trickle.bin", 100_000)
    for offset in range(0, 100_000, 50):
        await ctx.client.transport.send_bytes(encode_chunk(ref, offset, b"x" * 50))
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(next_error(ctx.client), 0.25)
    raise AssertionError("the trickle was never stopped")


async def registrations_over_the_address_limit(ctx: Ctx) -> dict[str, Any]:
    # The honest neighbour holds one of the address's four; the attacker three more.
    second = await ctx.live.connect()
    for client, count in ((ctx.client, 2), (second, 1)):
        for i in range(count):
            await register_ok(client, "any", f"held{i}.bin", 1000)
    return await register("any", "fifth.bin", 1000)(ctx)


# -- the matrix ----------------------------------------------------------------------------


def C(id: str, attack: Attack, kind: str | None, code: str | int | None, **kw: Any) -> Case:
    return Case(id, attack, kind, code, **kw)


E, U = "error", "upload_error"
LONG = "x" * 10_000 + ".txt"
# A real PNG header, then a script past the bytes any sniff looks at.
PNG_WITH_SCRIPT = PNG + bytes(100) + b"<script>alert(document.cookie)</script>"
XHTML_PREFIXED = (
    b'<h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:body>'
    b"<h:script>alert(document.cookie)</h:script></h:body></h:html>"
)
SCRIPT_PREFIXED = b'<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>'
MHTML = (
    b"From: <Saved by Blink>\r\nSubject: page\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/related;\r\n\ttype="text/html";\r\n\tboundary="--b"\r\n\r\n'
    b"----b\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>\r\n----b--\r\n"
)
XML_FAMILY = (".rdf", ".rss", ".atom", ".mml", ".wsdl", ".xul", ".xsd", ".mht", ".mhtml", ".xpdl")

CASES = [
    # binary frames
    C("frame-empty", frame(b""), E, "bad_frame"),
    C("frame-truncated", frame(b"\x01\x00\x00"), E, "bad_frame"),
    C("frame-12-bytes", frame(encode_chunk("1", 0, b"")[:12]), E, "bad_frame"),
    C("frame-type-0x00", frame(b"\x00" + bytes(12) + b"data"), E, "bad_frame"),
    C("frame-type-0x03", frame(b"\x03" + bytes(12) + b"data"), E, "bad_frame"),
    C("frame-type-0xff", frame(b"\xff" * 20), E, "bad_frame"),
    C("frame-before-mount", frame(encode_chunk("1", 0, b"x")), E, "not_mounted", mount=False),
    C(
        "frame-to-view-without-uploads",
        frame(encode_chunk("1", 0, b"x")),
        E,
        "not_mounted",
        path="/t/events/",
    ),
    C(
        "frame-over-server-limit",
        over_server_limit(bytes(SERVER_MESSAGE_LIMIT + 1)),
        None,
        None,
        closes=1009,
    ),
    # chunks
    C("chunk-unknown-ref", frame(encode_chunk("4242", 0, b"data")), E, "bad_ref"),
    C("chunk-other-connections-ref", chunk_for_the_honest_ref, E, "bad_ref"),
    C("chunk-after-complete", chunk_after_complete, E, "bad_ref", kept=1),
    C("chunk-empty-payload", chunks(10, (0, 0)), U, "bad_frame"),
    C("chunk-over-slot-chunk-size", chunks(40_000, (0, 16 * 1024 + 1)), U, "frame_too_large"),
    C("offset-gap", chunks(100, (0, 10), (20, 10)), U, "bad_offset"),
    C("offset-duplicate", chunks(100, (0, 10), (0, 10)), U, "bad_offset"),
    C("offset-overlap", chunks(100, (0, 10), (5, 10)), U, "bad_offset"),
    C("offset-first-not-zero", chunks(100, (10, 10)), U, "bad_offset"),
    C("offset-u64-max", chunks(100, (2**64 - 1, 1)), U, "bad_offset"),
    C("bytes-past-declared-size", chunks(10, (0, 11)), U, "size_mismatch"),
    C("declared-smaller-than-sent", chunks(20_000, (0, 16384), (16384, 16384)), U, "size_mismatch"),
    # runs of chunks (frame type 0x02)
    C("run-empty", chunks(10, (0, 0), run=True), U, "bad_frame"),
    C("run-not-whole-chunks", chunks(100_000, (0, 16384 + 1), run=True), U, "bad_frame"),
    C("run-over-first-window", chunks(100_000, (0, 5 * 16384), run=True), U, "window_exceeded"),
    C("run-past-declared-size", chunks(20_000, (0, 2 * 16384), run=True), U, "size_mismatch"),
    C("run-gap", chunks(100_000, (0, 16384), (2 * 16384, 16384), run=True), U, "bad_offset"),
    # text messages
    C("json-invalid", text("{"), E, "bad_message"),
    C("json-array", text("[1, 2]"), E, "bad_message"),
    C("json-string", text('"ping"'), E, "bad_message"),
    C("json-nested-100k-deep", text("[" * 100_000), E, "bad_message"),
    C("type-unknown", message({"t": "nope"}), E, "bad_message"),
    C("type-not-a-string", message({"t": 5, "id": 1}), E, "bad_message"),
    C("field-missing", message({"t": "event", "id": 1, "name": "save"}), E, "bad_message"),
    C("field-mistyped-id", message({"t": "ping", "id": "1"}), E, "bad_message"),
    C(
        "params-not-an-object",
        message({"t": "event", "id": 1, "name": "save", "params": []}),
        E,
        "bad_message",
    ),
    C(
        "text-over-max-text-size",
        message({"t": "ping", "id": 1, "pad": "x" * MAX_TEXT_SIZE}),
        E,
        "frame_too_large",
    ),
    C(
        "text-over-server-limit",
        over_server_limit("x" * (SERVER_MESSAGE_LIMIT + 1)),
        None,
        None,
        closes=1009,
    ),
    C("second-mount", second_mount, E, "protocol_error"),
    C("event-before-mount", event("save"), E, "not_mounted", mount=False),
    C("register-before-mount", register("any", "a.bin", 10), E, "not_mounted", mount=False),
    C(
        "cancel-before-mount",
        message({"t": "upload_cancel", "ref": "1"}),
        E,
        "not_mounted",
        mount=False,
    ),
    # declared sizes and refs
    C("size-negative", register("any", "a.bin", -1), U, "bad_size"),
    C("size-fraction", register("any", "a.bin", 10.5), E, "bad_message"),
    C("size-string", register("any", "a.bin", "10"), E, "bad_message"),
    C("size-bool", register("any", "a.bin", True), E, "bad_message"),
    C("size-null", register("any", "a.bin", None), E, "bad_message"),
    C(
        "size-exponent",
        text(
            '{"t":"upload_register","id":1,"name":"any","ref":"5","client_name":"a.bin","client_type":"","client_size":1e3}'
        ),
        E,
        "bad_message",
    ),
    C("size-2-to-the-70", register("any", "a.bin", 2**70), U, "too_large"),
    C("ref-leading-zero", register("any", "a.bin", 10, ref="01"), U, "bad_message"),
    C("ref-over-u32", register("any", "a.bin", 10, ref="4294967296"), U, "bad_message"),
    C("ref-lone-surrogate", register("any", "a.bin", 10, ref="\ud800"), U, "bad_message"),
    C("ref-in-use", reused_ref, U, "bad_ref"),
    # slots, counts and quotas
    C("slot-unconfigured", register("nope", "a.txt", 10), U, "unknown_slot"),
    C("slot-dunder", register("__class__", "a.txt", 10), U, "unknown_slot"),
    C("slot-lone-surrogate", register("\ud800", "a.txt", 10), U, "unknown_slot"),
    C(
        "slot-too-many-entries",
        register("docs", "d.txt", 10, "text/plain", before=3),
        U,
        "too_many_files",
    ),
    C("too-many-uploads-at-once", too_many_uploads_at_once, U, "quota_exceeded"),
    # types
    C(
        "extension-not-accepted",
        register("images", "notes.txt", 10, "text/plain"),
        U,
        "not_accepted",
    ),
    C(
        "mime-not-accepted",
        register("images", "photo.png", 10, "application/pdf"),
        U,
        "not_accepted",
    ),
    C(
        "double-extension-exe",
        register("docs", "report.pdf.exe", 10, "application/pdf"),
        U,
        "not_accepted",
    ),
    C(
        "content-exe-as-jpg",
        upload("images", "photo.jpg", EXE, "image/jpeg"),
        U,
        "content_mismatch",
    ),
    C(
        "content-png-as-jpg",
        upload("images", "photo.jpg", PNG, "image/jpeg"),
        U,
        "content_mismatch",
    ),
    C(
        "content-html-as-pdf",
        upload("docs", "paper.pdf", HTML, "application/pdf"),
        U,
        "content_mismatch",
    ),
    C(
        "content-empty-pdf",
        upload("docs", "paper.pdf", b"", "application/pdf"),
        U,
        "content_mismatch",
    ),
    C("content-exe-unnamed", upload("any", "setup.bin", EXE), U, "content_mismatch"),
    # active content
    C("active-svg", register("any", "evil.svg", 60, "image/svg+xml"), U, "active_content"),
    C("active-svg-trailing-dot", register("any", "evil.svg.", 60), U, "active_content"),
    C("active-svg-upper-case", register("any", "EVIL.SVG", 60), U, "active_content"),
    C("active-svg-behind-dotdot", register("any", "../../evil.svg", 60), U, "active_content"),
    C(
        "active-svg-mime-parameters",
        register("any", "picture", 60, "image/svg+xml; charset=utf-8"),
        U,
        "active_content",
    ),
    C("active-html", register("any", "page.html", 60, "text/html"), U, "active_content"),
    C("active-js", register("any", "app.js", 60), U, "active_content"),
    C(
        "active-js-mime",
        register("any", "script", 60, "text/javascript; charset=utf-8"),
        U,
        "active_content",
    ),
    C(
        "active-svg-content-as-txt",
        upload("any", "notes.txt", SVG, "text/plain"),
        U,
        "active_content",
    ),
    C(
        "active-html-content-after-bom",
        upload("any", "notes.txt", b"\xef\xbb\xbf <!DOCTYPE html><p>", "text/plain"),
        U,
        "active_content",
    ),
    C(
        "active-svg-on-image-slot",
        register("images", "logo.svg", 60, "image/svg+xml"),
        U,
        "active_content",
    ),
    *(
        C(f"active-xml-family{ext}", register("any", f"doc{ext}", 60), U, "active_content")
        for ext in XML_FAMILY
    ),
    C("active-mhtml-mime", register("any", "page", 60, "multipart/related"), U, "active_content"),
    C(
        "active-prefixed-xhtml-root",
        upload("any", "notes.txt", XHTML_PREFIXED, "text/plain"),
        U,
        "active_content",
    ),
    C(
        "active-prefixed-script",
        upload("any", "notes.txt", SCRIPT_PREFIXED, "text/plain"),
        U,
        "active_content",
    ),
    C("active-mhtml-content", upload("any", "page.txt", MHTML, "text/plain"), U, "active_content"),
    # declared types: one MIME type, never handed to storage
    C(
        "type-list-png-html-on-image-slot",
        upload("images", "avatar.png", PNG_WITH_SCRIPT, "image/png,text/html"),
        U,
        "bad_type",
    ),
    C(
        "type-list-png-html-on-any-slot",
        upload("any", "avatar.png", PNG_WITH_SCRIPT, "image/png,text/html"),
        U,
        "bad_type",
    ),
    C(
        "type-list-text-html-on-extension-slot",
        upload("docs", "notes.txt", b"hi <script>alert(1)</script>", "text/plain,text/html"),
        U,
        "bad_type",
    ),
    C("type-space-inside", register("any", "a.png", 10, "image /png"), U, "bad_type"),
    C("type-markup", register("any", "a.png", 10, "<script>"), U, "bad_type"),
    C(
        "type-stored-from-content",
        stored_typed(f"avatar-{TAG}.png", PNG_WITH_SCRIPT, "text/plain", "image/png"),
        None,
        None,
    ),
    # a MIME-only accept list admits only names of its types
    *(
        C(
            f"mime-only-accept{ext or '-no-extension'}",
            upload("images", f"shell{ext}", PNG, "image/png"),
            U,
            "not_accepted",
        )
        for ext in (".php", ".phtml", ".hta", ".py", "")
    ),
    # names
    C("name-empty", register("any", "", 10), U, "bad_name"),
    C("name-blank", register("any", " \t ", 10), U, "bad_name"),
    C("name-10000-chars", register("any", LONG, 10), U, "bad_name"),
    C("name-dotdot", stored_as(f"../../etc/passwd-{TAG}", f"passwd-{TAG}"), None, None),
    C("name-absolute", stored_as(f"/etc/cron.d/job-{TAG}.txt", f"job-{TAG}.txt"), None, None),
    C(
        "name-backslashes",
        stored_as(f"..\\..\\windows\\win-{TAG}.ini", f"win-{TAG}.ini"),
        None,
        None,
    ),
    C("name-nul", stored_as(f"a\x00b-{TAG}.txt", f"ab-{TAG}.txt"), None, None),
    C(
        "name-controls",
        stored_as(f"re\x1b[31mport\r\n-{TAG}.txt", f"re[31mport-{TAG}.txt"),
        None,
        None,
    ),
    C("name-bidi", stored_as(f"invoice\u202etxt-{TAG}.bin", f"invoicetxt-{TAG}.bin"), None, None),
    # names that Django's get_valid_filename (FileField) would turn into dotfiles or empty names
    C("name-bang-htaccess", stored_as(f"!.htaccess-{TAG}", f"_!.htaccess-{TAG}"), None, None),
    C("name-paren-user-ini", stored_as(f"(.user.ini-{TAG}", f"_(.user.ini-{TAG}"), None, None),
    C("name-combining-env", stored_as(f"\u0301.env-{TAG}", f"env-{TAG}"), None, None),
    C("name-symbols-only", stored_as(f"★.{TAG}", f"_★.{TAG}"), None, None),
    C("name-longest-stored-twice", longest_name_stored_twice, None, None),
    # events and their parameters
    C("event-mount", event("mount"), E, "unknown_event"),
    C("event-allow-upload", event("allow_upload", name="x"), E, "unknown_event"),
    C("event-consume", event("consume_uploaded_entries", name="any"), E, "unknown_event"),
    C("event-private", event("_private"), E, "unknown_event"),
    C("event-dunder", event("__init__"), E, "unknown_event"),
    C("event-missing", event("nope"), E, "unknown_event"),
    C("event-not-an-identifier", event("save()"), E, "unknown_event"),
    C("params-missing", event("cancel_entry"), E, "bad_params"),
    C("params-list-for-str", event("cancel_entry", ref=[]), E, "bad_params"),
    C("params-object-for-str", event("save", slot={"a": 1}), E, "bad_params"),
    C(
        "params-unexpected-name",
        event("typed", i=1, f=1, b=1, s="", extra=1),
        E,
        "bad_params",
        path="/t/events/",
    ),
    C("params-not-an-identifier", event("save", **{"a b": 1}), None, None),
    C("params-self", event("save", self=1), E, "bad_params"),
    C("params-func", event("save", func="x"), None, None),
    C("params-unknown-slot", event("save", slot="nope"), E, "unknown_slot"),
    C("cancel-entry-of-other-connection", cancel_entry_of_the_honest_ref, E, "bad_ref"),
    C("cancel-message-of-other-connection", cancel_the_honest_ref, None, None),
    # The failed save keeps the entry, and its file, for another try (docs/storage.md, 3.2).
    C("handler-raises-while-consuming", handler_raises_while_consuming, E, "handler_error", kept=1),
    # tokens and the handshake
    C("token-forged", mount_with(lambda t: "garbage"), E, "bad_token", mount=False),
    C(
        "token-tampered",
        mount_with(lambda t: t[:-3] + ("abc" if t[-3:] != "abc" else "xyz")),
        E,
        "bad_token",
        mount=False,
    ),
    C("token-expired", mount_with(expired), E, "expired_token", mount=False),
    C(
        "token-other-user",
        mount_with(token_for(UploadsView, user="1")),
        E,
        "bad_token",
        mount=False,
    ),
    C("token-not-a-liveview", mount_with(token_for(Server)), E, "bad_token", mount=False),
    C(
        "token-malformed-payload",
        mount_with(lambda t: signing.dumps({"v": 1}, salt=tokens.SALT)),
        E,
        "bad_token",
        mount=False,
    ),
    C("origin-foreign", origin("http://evil.example"), "http", 403, closes=REFUSED, path=None),
    C("origin-missing", origin(None), "http", 403, closes=REFUSED, path=None),
    C("origin-other-port", origin("http://127.0.0.1:1"), "http", 403, closes=REFUSED, path=None),
    C(
        "origin-localhost-other-port",
        origin("http://localhost:1"),
        "http",
        403,
        closes=REFUSED,
        path=None,
    ),
    C(
        "origin-other-scheme",
        origin_of(lambda s: f"https://127.0.0.1:{s.port}"),
        "http",
        403,
        closes=REFUSED,
        path=None,
    ),
    C(
        "origin-site-as-prefix",
        origin_of(lambda s: f"{s.url}.evil.example"),
        "http",
        403,
        closes=REFUSED,
        path=None,
    ),
    C("origin-null", origin("null"), "http", 403, closes=REFUSED, path=None),
    # storage failures
    C("writer-disk-full", upload("fails", "a.bin", bytes(100_000)), U, "write_failed"),
    C("writer-fails-on-close", upload("fails_close", "a.bin", bytes(1000)), U, "write_failed"),
    # low limits
    C("frame-flood", frame_flood, E, "rate_limited", closes=4429, server="strict"),
    C("stops-mid-upload", stops_mid_upload, U, "stalled", server="strict"),
    C("declared-larger-than-sent", chunks(100, (0, 50)), U, "stalled", server="strict"),
    C(
        "registrations-over-the-rate",
        over_the_registration_rate,
        U,
        "rate_limited",
        server="strict",
    ),
    C("connection-quota", over_the_connection_quota, U, "quota_exceeded", server="strict"),
    C("window-ignored", ignores_the_window, U, "window_exceeded", server="strict"),
    # holding resources costs what it costs the server
    C(
        "text-flood-within-frame-rate",
        flood_of('{"t":"ping","id":1}'),
        E,
        "rate_limited",
        closes=4429,
    ),
    C(
        "no-upload-frame-flood",
        flood_of(encode_chunk("4242", 0, b"x")),
        E,
        "rate_limited",
        closes=4429,
    ),
    C(
        "declarations-of-the-whole-process-quota",
        declarations_of_the_whole_process_quota,
        None,
        None,
        server="strict",
    ),
    C("trickle-below-min-rate", trickle_below_the_minimum_rate, U, "stalled", server="strict"),
    C(
        "registrations-over-address-limit",
        registrations_over_the_address_limit,
        U,
        "quota_exceeded",
        server="strict",
    ),
    # refusals the browser reports (upload_refused) and folder paths (client_path)
    C("refused-unknown-code", message(refusal("docs", "a.pdf", 10, "bad_ref")), E, "bad_message"),
    C("refused-unknown-slot", message(refusal("nope", "a.pdf", 5000)), E, "unknown_slot"),
    C("refused-false-claim", message(refusal("docs", "a.pdf", 10)), E, "bad_message"),
    C("refused-negative-size", message(refusal("docs", "a.pdf", -1)), E, "bad_size"),
    C("refused-size-not-int", message(refusal("docs", "a.pdf", "5000")), E, "bad_message"),
    C("refused-empty-name", message(refusal("docs", " ", 5000)), E, "bad_name"),
    C(
        "refused-type-list",
        message(refusal("docs", "a.pdf", 5000, client_type="a/b,c/d")),
        E,
        "bad_type",
    ),
    C(
        "refused-before-mount",
        message(refusal("docs", "a.pdf", 5000)),
        E,
        "not_mounted",
        mount=False,
    ),
    C(
        "refused-to-view-without-uploads",
        message(refusal("docs", "a.pdf", 5000)),
        E,
        "unknown_slot",
        path="/t/events/",
    ),
    C("refused-over-the-rate", over_the_refusal_rate, E, "rate_limited", server="strict"),
    C(
        "refused-flood",
        flood_of(json.dumps(refusal("docs", "a.pdf", 5000))),
        E,
        "rate_limited",
        closes=4429,
    ),
    C("path-traversal", register("any", "a.txt", 10, client_path="../../a.txt"), U, "bad_name"),
    C("path-absolute", register("any", "a.txt", 10, client_path="/etc/a.txt"), U, "bad_name"),
    C("path-not-a-string", register("any", "a.txt", 10, client_path=["a.txt"]), U, "bad_name"),
    C("path-of-another-file", register("any", "a.txt", 10, client_path="d/b.txt"), U, "bad_name"),
]


# -- servers -------------------------------------------------------------------------------


class Servers:
    def __init__(self, shared: Server) -> None:
        self.shared = shared
        self.strict: Server | None = None

    def get(self, name: str) -> Server:
        if name == "shared":
            return self.shared
        if self.strict is None:
            self.strict = make_server(**STRICT_ENV).start()
        return self.strict


@pytest.fixture(scope="module")
def servers(server):
    srv = Servers(server)
    yield srv
    if srv.strict is not None:
        srv.strict.stop()
        shutil.rmtree(srv.strict.state_dir, ignore_errors=True)


def log_size(server: Server) -> int:
    return server.log.stat().st_size if server.log.exists() else 0


def log_since(server: Server, offset: int) -> str:
    with open(server.log, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


# -- the test ------------------------------------------------------------------------------


def test_the_matrix_has_at_least_forty_distinct_cases():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input(servers, case: Case):
    server = servers.get(case.server)
    live = Live(server)
    before = set(server.temp_files())
    log_start = log_size(server)

    async def body() -> None:
        honest = Honest(await live.connect(), server)
        attacker = None
        if case.path is not None:
            attacker = await live.connect(case.path, mount=case.mount)
        ctx = Ctx(live, server, attacker, honest)
        await honest.start()
        attack_done = asyncio.Event()
        finishing = asyncio.create_task(honest.finish(attack_done))
        try:
            answer = await asyncio.wait_for(case.attack(ctx), 20)
        finally:
            attack_done.set()
        assert not honest.complete.is_set(), "the honest upload must outlast the attack"

        # 1. The typed answer.
        if case.kind is None:
            assert answer is None
            if attacker is not None:
                errors = [m for m in attacker.received if m["t"] in ("error", "upload_error")]
                assert errors == []
        else:
            assert answer is not None
            assert (answer["t"], answer["code"]) == (case.kind, case.code), answer

        # 2. The attacker's connection.
        if case.closes is None:
            assert attacker is not None
            await attacker.ping()
        elif case.closes != REFUSED:
            assert attacker is not None
            ws = attacker.transport.ws  # type: ignore[attr-defined]
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == case.closes

        # 3. Nothing of the refused entry on disk: only the honest file and what the attacker
        # legitimately still holds.
        def leftovers() -> set[str]:
            return set(server.temp_files()) - before - {honest.temp}

        assert await wait_until(lambda: len(leftovers()) == case.kept, timeout=2), leftovers()

        # 4. The honest upload, started before the attack, arrives intact.
        await finishing
        await honest.check_stored()

        # 5. Once both connections are gone, so is every temp file.
        for client in live.clients:
            with contextlib.suppress(Exception):
                await client.close()
        assert await wait_until(lambda: not set(server.temp_files()) - before, timeout=2)

    live.run(body())
    assert CRASH not in log_since(server, log_start)
