"""Faults and load: dropped sockets, a killed server, and a hundred uploads at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import os
import shutil
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from djust.testing import LiveClient
from djust.transport.protocol import encode_chunk

from ..conftest import make_server
from .conftest import Live, run_async, wait_until
from .test_uploads import saved

MiB = 1024 * 1024


async def uploading(client: LiveClient, server, size: int = 1_000_000) -> tuple[str, str]:
    """Register ``size`` bytes, send some of them; the ref and the entry's new temp file."""
    before = set(server.temp_files())
    reply = await client.register("any", "partial.bin", size)
    assert reply["t"] == "upload_registered", reply
    await client.transport.send_bytes(encode_chunk(reply["ref"], 0, bytes(16 * 1024)))
    # The first bytes open the file, on a writer thread.
    assert await wait_until(lambda: set(server.temp_files()) - before)
    (temp,) = set(server.temp_files()) - before
    return reply["ref"], temp


# -- disconnects ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "reset"])
def test_disconnect_mid_upload_removes_every_temp_file_within_a_second(server, how):
    live = Live(server)

    async def body():
        client = await live.connect()
        before = set(server.temp_files())
        # One entry mid-upload, one registered without a byte (it holds no file), one complete
        # and unconsumed.
        await uploading(client, server)
        assert (await client.register("any", "idle.bin", 1000))["t"] == "upload_registered"
        assert (await client.upload("any", "done.bin", os.urandom(5000))).status == "complete"
        assert len(set(server.temp_files()) - before) == 2
        if how == "close":
            await client.close()
        else:  # the TCP connection dies without a close frame
            client.transport.ws.transport.abort()  # type: ignore[attr-defined]
        started = time.monotonic()
        assert await wait_until(lambda: not set(server.temp_files()) - before, timeout=1)
        assert time.monotonic() - started < 1

    live.run(body())


# -- a killed server -----------------------------------------------------------------------


@pytest.fixture
def own_server():
    # The load test's hundred clients all come from 127.0.0.1.
    srv = make_server(TEST_MAX_UPLOADS_PER_CLIENT="1000").start()
    yield srv
    srv.stop()
    shutil.rmtree(srv.state_dir, ignore_errors=True)


def test_sigkill_mid_upload_leaves_a_temp_file_that_the_restart_sweeps(own_server):
    srv = own_server
    live = Live(srv)

    async def start_upload() -> str:
        client = await live.connect()
        _, temp = await uploading(client, srv)
        return temp

    # Keep the socket open while the server dies: run the upload on a loop we do not close, on
    # a thread of its own (Playwright's sync API may hold this thread's loop).
    thread = concurrent.futures.ThreadPoolExecutor(1)
    loop = asyncio.new_event_loop()

    def on_loop(coroutine: Any) -> Any:
        return thread.submit(loop.run_until_complete, coroutine).result()

    try:
        temp = on_loop(start_upload())
        assert temp.startswith(f"djust-{srv.process.pid}-")  # type: ignore[union-attr]
        srv.stop(signal.SIGKILL)
        assert srv.process.returncode == -signal.SIGKILL  # type: ignore[union-attr]

        # Nobody is left to remove it: the orphan stays.
        time.sleep(0.5)
        assert temp in srv.temp_files()

        # Files the sweep must leave alone: a live process's upload (this test's own pid) and
        # anything not named like an upload.
        alive = f"djust-{os.getpid()}-{uuid.uuid4().hex[:8]}.upload"
        other = "notes.txt"
        for name in (alive, other):
            (srv.upload_dir / name).write_bytes(b"keep")

        srv.restart()
        # The sweep runs in AppConfig.ready(), before the server binds its port: by the time
        # a client can connect, the orphan is already gone.
        assert sorted(srv.temp_files()) == sorted([alive, other])

        async def works_again() -> None:
            client = await Live(srv).connect()
            assert (
                await client.upload("any", "after.bin", os.urandom(50_000))
            ).status == "complete"
            await client.close()

        run_async(works_again())
        assert sorted(srv.temp_files()) == sorted([alive, other])
    finally:

        async def cancel_the_rest() -> None:
            for task in asyncio.all_tasks(loop):
                if task is not asyncio.current_task():
                    task.cancel()
            await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            on_loop(cancel_the_rest())
        thread.submit(loop.close).result()
        thread.shutdown()


# -- load ----------------------------------------------------------------------------------

CONNECTIONS = 100
FILE_SIZE = 10 * MiB


def contents(base: bytes, index: int) -> bytes:
    """``base`` stamped with ``index`` at every 64 KiB, so that a chunk landing in another
    connection's file would change both files' digests."""
    data = bytearray(base)
    stamp = index.to_bytes(4, "big")
    for offset in range(0, len(data), 65536):
        data[offset : offset + 4] = stamp
    return bytes(data)


def test_a_hundred_connections_each_upload_10_mib_on_one_worker(own_server):
    srv = own_server
    live = Live(srv)
    base = os.urandom(FILE_SIZE)
    run_id = uuid.uuid4().hex[:8]
    files = {f"load-{run_id}-{i:03d}.bin": contents(base, i) for i in range(CONNECTIONS)}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    assert len(set(digests.values())) == CONNECTIONS

    async def one(client: LiveClient, name: str) -> tuple[str, str, int]:
        result = await client.upload("big", name, files[name])
        assert result.status == "complete", result
        rows = saved((await client.event("save", slot="big"))["html"])
        assert len(rows) == 1
        return rows[0]

    async def body() -> tuple[list[tuple[str, str, int]], float]:
        clients = []
        for _ in range(CONNECTIONS):
            client = await live.connect()
            client.timeout = 60
            clients.append(client)
        started = time.monotonic()
        rows = await asyncio.gather(*(one(c, n) for c, n in zip(clients, files, strict=True)))
        elapsed = time.monotonic() - started
        for client in clients:
            errors = [m for m in client.received if m["t"] in ("error", "upload_error")]
            assert errors == []
            await client.close()
        return rows, elapsed

    rows, elapsed = live.run(body())
    print(
        f"\n{CONNECTIONS} x {FILE_SIZE // MiB} MiB uploaded, consumed and stored in {elapsed:.1f} s"
    )
    assert sorted(Path(path).name for path, _, _ in rows) == sorted(files)
    for path, digest, size in rows:
        name = Path(path).name
        stored = srv.media_dir / path
        with open(stored, "rb") as f:
            on_disk = hashlib.file_digest(f, "sha256").hexdigest()
        assert on_disk == digest == digests[name] and size == FILE_SIZE
        stored.unlink()
    assert srv.temp_files() == []
    assert "Exception in ASGI application" not in srv.log.read_text()
