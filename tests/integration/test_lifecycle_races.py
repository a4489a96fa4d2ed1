"""The upload lifecycle where two things happen at once: a handler and the stall watchdog, a
slow writer and every other upload, a failure and a cancel, a setting that turns a check off.

A real server and the real protocol client; the test project's ``RacesView`` has a slot whose
writer waits at a gate the test opens (a slow disk or storage), slots whose writer cannot be
made or opened, and a handler that takes as long as it is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from djust.testing import LiveClient
from djust.transport.protocol import encode_chunk

from ..conftest import Server, make_server
from .conftest import Live, wait_until

RACES = "/t/uploads-races/"
CHUNK = 16 * 1024  # the chunk size of the slots used here
STALL = 1.0  # the stall timeout of the servers that test it, in seconds
# A window of four chunks: a client waits on acks after 64 KiB.
SMALL_WINDOW = {"TEST_UPLOAD_WINDOW": "65536", "TEST_MAX_FRAME_SIZE": str(65536 + 13)}


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}.bin"


def open_gate(server: Server, name: str, word: str = "go") -> None:
    """Let the gated writer of ``name`` go on (``fail``: its next write raises)."""
    gates = server.state_dir / "gates"
    gates.mkdir(exist_ok=True)
    (gates / f"{name}.tmp").write_text(word)
    (gates / f"{name}.tmp").rename(gates / name)  # whole, or not there


def closes(server: Server, name: str) -> list[str]:
    """``reason thread`` of each close of the gated writer of ``name``."""
    notes = server.state_dir / "closes" / name
    return notes.read_text().splitlines() if notes.exists() else []


def open_upload_files(server: Server) -> list[str]:
    """The upload files the server process holds a descriptor of (removed or not)."""
    assert server.process is not None
    held = []
    for fd in Path(f"/proc/{server.process.pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if "/djust-" in target and ".upload" in target:
                held.append(target)
    return held


class Sender:
    """Streams one file as the browser does: whole chunks, never more than the window unacked."""

    def __init__(self, client: LiveClient, ref: str, data: bytes, window: int) -> None:
        self.client, self.ref, self.data, self.window = client, ref, data, window
        self.sent = self.acked = 0
        self.outcome: dict[str, Any] | None = None

    async def send_until(self, end: int) -> None:
        while self.sent < end and self.outcome is None:
            size = min(CHUNK, end - self.sent)
            if self.sent + size > self.acked + self.window:
                await self._next()
                continue
            piece = self.data[self.sent : self.sent + size]
            await self.client.transport.send_bytes(encode_chunk(self.ref, self.sent, piece))
            self.sent += size

    async def finish(self) -> dict[str, Any]:
        """Send the rest; the ``upload_complete`` or ``upload_error`` that ends it."""
        await self.send_until(len(self.data))
        while self.outcome is None:
            await self._next()
        return self.outcome

    async def _next(self) -> None:
        message = await self.client.wait_for(
            lambda m: (
                m.get("ref") == self.ref
                and m["t"] in ("upload_ack", "upload_complete", "upload_error")
            )
        )
        if message["t"] == "upload_ack":
            self.acked = max(self.acked, message["offset"])
            self.window = message.get("window", self.window)
        else:
            self.outcome = message


async def sender(client: LiveClient, slot: str, name: str, data: bytes) -> Sender:
    reply = await client.register(slot, name, len(data))
    assert reply["t"] == "upload_registered", reply
    return Sender(client, reply["ref"], data, reply["window"])


async def event_later(client: LiveClient, name: str, **params: Any) -> int:
    """Send an event without waiting for its reply; its message id."""
    message_id = 10_000 + len(client.received)
    await client.send({"t": "event", "id": message_id, "name": name, "params": params})
    return message_id


@pytest.fixture(scope="module")
def stalls() -> Iterator[Server]:
    """A server that fails an upload after a second without a byte; windows of 64 KiB."""
    server = make_server(TEST_STALL_TIMEOUT=str(STALL), **SMALL_WINDOW).start()
    yield server
    server.stop()
    shutil.rmtree(server.state_dir, ignore_errors=True)


# -- the stall watchdog counts only the client's time ----------------------------------------


def test_a_handler_longer_than_the_stall_timeout_does_not_fail_uploads_in_flight(stalls):
    live = Live(stalls)
    data = os.urandom(300_000)

    async def body() -> None:
        client = await live.connect(RACES)
        upload = await sender(client, "any", unique("in-flight"), data)
        await upload.send_until(4 * CHUNK)
        nap = await event_later(client, "nap", seconds=3 * STALL)
        await asyncio.sleep(0.2)  # the handler holds the session: chunks wait to be read
        outcome = await upload.finish()
        assert outcome["t"] == "upload_complete", outcome
        reply = await client.wait_for(lambda m: m.get("id") == nap)
        assert reply["t"] == "reply", reply

    live.run(body())


def test_time_the_client_waits_on_a_full_window_is_not_a_stall(stalls):
    live = Live(stalls)
    data, name = os.urandom(300_000), unique("waits")

    async def body() -> None:
        client = await live.connect(RACES)
        upload = await sender(client, "gated", name, data)
        finishing = asyncio.ensure_future(upload.finish())
        await asyncio.sleep(3 * STALL)  # the writer holds every byte: no ack, the window full
        assert upload.outcome is None and upload.sent == 4 * CHUNK
        open_gate(stalls, name)
        outcome = await finishing
        assert outcome["t"] == "upload_complete", outcome

    live.run(body())


# -- a writer that cannot be made or opened is a failed upload, not a closed socket ----------


def test_a_writer_factory_that_raises_refuses_the_file_with_write_failed(live):
    async def body() -> None:
        client = await live.connect(RACES)
        reply = await client.register("no_factory", unique("bucketless"), 1000)
        assert (reply["t"], reply["code"]) == ("upload_error", "write_failed"), reply
        await client.ping()  # the connection lives on

    live.run(body())


def test_a_writer_whose_open_raises_fails_the_upload_with_write_failed(live):
    async def body() -> None:
        client = await live.connect(RACES)
        result = await client.upload("no_open", unique("unopenable"), os.urandom(1000))
        assert (result.status, result.code) == ("error", "write_failed"), result
        await client.ping()

    live.run(body())


def test_an_upload_dir_that_cannot_be_created_refuses_uploads_with_write_failed(servers):
    parent = Path(tempfile.mkdtemp(prefix="djust-test-")) / "volume"
    try:
        server = servers(TEST_UPLOAD_DIR=str(parent / "uploads"))
        # The volume went away and a plain file took its place: mkdir fails, even as root.
        shutil.rmtree(parent)
        parent.write_bytes(b"")
        live = Live(server)

        async def body() -> None:
            client = await live.connect(RACES)
            reply = await client.register("any", unique("nowhere"), 1000)
            assert (reply["t"], reply["code"]) == ("upload_error", "write_failed"), reply
            assert str(parent) not in reply["message"]  # the path is for the server's log
            await client.ping()  # the connection lives on

        live.run(body())
    finally:
        shutil.rmtree(parent.parent, ignore_errors=True)


# -- each writer on a lane of its own ----------------------------------------------------------


def test_five_slow_writers_do_not_hold_up_another_upload(live, server):
    names = [unique(f"slow{i}") for i in range(5)]

    async def body() -> None:
        # Two connections: each streams at most four uploads at once.
        first, second = await live.connect(RACES), await live.connect(RACES)
        slow = []
        for index, name in enumerate(names):
            upload = await sender(first if index < 3 else second, "gated", name, bytes(100_000))
            await upload.send_until(len(upload.data))
            slow.append(upload)
        try:
            # Every slow writer is stuck in its first write (its file was opened just before).
            assert await wait_until(lambda: len(server.temp_files()) >= 5, timeout=10)
            other = await live.connect(RACES)
            async with asyncio.timeout(10):
                result = await other.upload("any", unique("other"), os.urandom(200_000))
            assert result.status == "complete", result
            assert [upload.outcome for upload in slow] == [None] * 5
        finally:
            for name in names:
                open_gate(server, name)
        for upload in slow:
            outcome = await upload.finish()
            assert outcome["t"] == "upload_complete", outcome

    live.run(body())


# -- cleanup never on the event loop, never lost ---------------------------------------------


def test_a_writer_is_aborted_on_its_lane_when_the_client_cancels(live, server):
    name = unique("aborted")

    async def body() -> None:
        client = await live.connect(RACES)
        upload = await sender(client, "gated", name, os.urandom(100_000))
        await upload.send_until(len(upload.data))
        assert await wait_until(lambda: bool(server.temp_files()), timeout=10)
        await client.send({"t": "upload_cancel", "ref": upload.ref})
        await client.wait_for(lambda m: m["t"] == "upload_cancelled" and m["ref"] == upload.ref)
        open_gate(server, name)  # the write in progress returns; the abort follows it
        assert await wait_until(lambda: bool(closes(server, name)), timeout=10)

    live.run(body())
    ((reason, thread),) = [line.split() for line in closes(server, name)]
    assert reason == "cancel" and thread.startswith("djust-upload-writer-"), thread


def test_a_write_that_fails_during_a_cancel_still_closes_its_writer(live, server):
    name = unique("failing")

    async def body() -> None:
        client = await live.connect(RACES)
        upload = await sender(client, "gated", name, os.urandom(100_000))
        await upload.send_until(len(upload.data))
        # Its writer holds its file open, stuck in a write.
        assert await wait_until(lambda: bool(open_upload_files(server)), timeout=10)
        await client.send({"t": "upload_cancel", "ref": upload.ref})
        await client.wait_for(lambda m: m["t"] == "upload_cancelled" and m["ref"] == upload.ref)
        open_gate(server, name, "fail")  # the write in progress raises
        assert await wait_until(lambda: bool(closes(server, name)), timeout=10)
        # Its descriptor closed, its file gone.
        assert await wait_until(lambda: not open_upload_files(server), timeout=5)
        assert await wait_until(lambda: not server.temp_files(), timeout=5)
        await client.ping()

    live.run(body())
    assert [line.split()[0] for line in closes(server, name)] == ["cancel"]


# -- UPLOAD_STALL_TIMEOUT = 0 or None: off --------------------------------------------------------


def pausing_upload_completes(server: Server, pause: float) -> None:
    live = Live(server)
    data = os.urandom(200_000)

    async def body() -> None:
        client = await live.connect(RACES)
        upload = await sender(client, "any", unique("pausing"), data)
        await upload.send_until(4 * CHUNK)
        await asyncio.sleep(pause)
        outcome = await upload.finish()
        assert outcome["t"] == "upload_complete", outcome

    live.run(body())


def test_a_stall_timeout_of_0_lets_an_upload_pause(servers):
    pausing_upload_completes(servers(TEST_STALL_TIMEOUT="0", **SMALL_WINDOW), pause=2.5)


def test_a_stall_timeout_of_none_turns_the_timeout_off_and_keeps_the_minimum_rate(servers):
    # 4 KiB/s over 2 s fails a trickle of 500 bytes a second, whatever the timeout.
    server = servers(
        TEST_STALL_TIMEOUT="None", TEST_MIN_RATE="4096", TEST_MIN_RATE_WINDOW="2", **SMALL_WINDOW
    )
    live = Live(server)

    async def body() -> None:
        client = await live.connect(RACES)
        upload = await sender(client, "any", unique("trickle"), b"x" * 100_000)
        for offset in range(0, 60 * 50, 50):
            if any(m["t"] == "upload_error" for m in client.received):
                break
            await client.transport.send_bytes(encode_chunk(upload.ref, offset, b"x" * 50))
            await client.ping()
            await asyncio.sleep(0.1)
        error = await client.wait_for(lambda m: m["t"] == "upload_error")
        assert error["code"] == "stalled" and "bytes a second" in error["message"], error

    live.run(body())
