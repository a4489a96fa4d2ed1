"""Several workers: two (then three) server processes on one state directory and one Redis
channel layer, as behind a load balancer. A real ``redis-server`` runs for the module."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from djust.testing import LiveClient, ServerError, WebSocketTransport, token_from_html
from djust.transport.protocol import encode_chunk

from ..conftest import ROOT, Server, free_port
from .conftest import fetch, run_async, wait_until
from .test_uploads import saved

pytestmark = pytest.mark.redis

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """``redis-server`` on a port of its own, with no persistence: a restart forgets all."""

    def __init__(self) -> None:
        if not Path(REDIS).exists():
            pytest.fail("redis-server is missing: run scripts/test, which installs it")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = tempfile.mkdtemp(prefix="djust-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        command = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen(
            [*command, "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_url():
    redis = RedisServer().start()
    yield redis.url
    redis.remove()


class Workers:
    """Processes that share a database, an upload directory, media and the Redis layer."""

    def __init__(self, redis_url: str) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="djust-workers-"))
        self.env = {"TEST_REDIS_URL": redis_url}
        self.all: list[Server] = []

    def start(self) -> Server:
        server = Server(self.state, **self.env)
        if not self.all:
            server.manage("migrate", "--no-input", "-v0")
        self.all.append(server.start())
        return server

    def stop(self) -> None:
        for server in self.all:
            server.stop()
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture(scope="module")
def workers(redis_url):
    pool = Workers(redis_url)
    pool.start()
    pool.start()
    yield pool
    pool.stop()


async def connect(server: Server, path: str, page_from: Server | None = None) -> LiveClient:
    """A client whose page came from ``page_from`` (default: the same worker)."""
    html = fetch((page_from or server).url + path)
    transport = await WebSocketTransport.connect(server.ws_url, server.url)
    client = LiveClient(transport, timeout=15)
    await client.mount(token_from_html(html))
    return client


def pid_of(html: str) -> int:
    return int(re.search(r"<p id='pid'>(\d+)</p>", html).group(1))


async def next_lines(client: LiveClient, timeout: float = 10.0) -> list[str]:
    message = await asyncio.wait_for(client.wait_for(lambda m: m["t"] == "render"), timeout)
    return re.findall(r"<li>(.*?)</li>", message["html"])


def test_a_page_rendered_by_one_worker_mounts_on_another(workers):
    a, b = workers.all[:2]

    async def body():
        client = await connect(b, "/t/room/", page_from=a)
        mounted_on = pid_of(client.html)
        await client.close()
        return mounted_on

    assert run_async(body()) == b.process.pid


def test_a_broadcast_from_one_worker_re_renders_a_view_on_another(workers):
    a, b = workers.all[:2]

    async def body():
        alice, bob = await connect(a, "/t/room/"), await connect(b, "/t/room/")
        await alice.event("say", text="across")
        got = await next_lines(bob)
        await alice.close()
        await bob.close()
        return got

    assert run_async(body()) == [f"room said across {a.process.pid}"]


def test_an_idle_page_keeps_its_broadcasts_without_reporting_an_outage(workers):
    a, b = workers.all[:2]

    async def body():
        alice, bob = await connect(a, "/t/room/"), await connect(b, "/t/room/")
        # Longer than the Redis client's read timeout: an idle read gives up and is retried.
        await asyncio.sleep(7)
        await alice.event("say", text="after a quiet while")
        got = await next_lines(bob)
        await alice.close()
        await bob.close()
        return got

    assert run_async(body()) == [f"room said after a quiet while {a.process.pid}"]
    assert "broadcasts to" not in b.log.read_text()


def test_a_broadcast_from_outside_any_worker_reaches_views_on_every_worker(workers):
    a, b = workers.all[:2]
    # What a cron job, a management command or a task-queue worker would run.
    script = "import django; django.setup(); from djust import broadcast; "
    script += "broadcast('news', 'said', text='from a task', pid=0)"

    async def body():
        views = [await connect(a, "/t/room/?group=news"), await connect(b, "/t/room/?group=news")]
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", script], env=a.env, check=True, cwd=ROOT
        )
        got = [await next_lines(view) for view in views]
        for view in views:
            await view.close()
        return got

    assert run_async(body()) == [["news said from a task 0"]] * 2


async def upload_slowly(client: LiveClient, content: bytes, started: asyncio.Event, go) -> str:
    """Send the first chunk, report it, wait for ``go``, then the rest; the stored SHA-256."""
    reply = await client.register("any", "w.bin", len(content))
    ref, window, chunk = reply["ref"], reply["window"], 16 * 1024
    await client.transport.send_bytes(encode_chunk(ref, 0, content[:chunk]))
    sent = chunk
    # Acknowledged once written: the temp file (opened by the first bytes) exists.
    first = await client.wait_for(lambda m: m.get("ref") == ref and m["t"] == "upload_ack")
    acked = first["offset"]
    started.set()
    await go.wait()
    while True:
        while sent < len(content) and sent + chunk - acked <= window:
            await client.transport.send_bytes(encode_chunk(ref, sent, content[sent : sent + chunk]))
            sent += chunk
        message = await client.wait_for(
            lambda m: m.get("ref") == ref and m["t"] in ("upload_ack", "upload_complete")
        )
        if message["t"] == "upload_complete":
            break
        acked, window = message["offset"], message.get("window", window)
    html = (await client.event("save", slot="any"))["html"]
    return saved(html)[-1]


def test_uploads_on_two_workers_survive_a_third_worker_starting(workers):
    a, b = workers.all[:2]
    contents = [os.urandom(1_000_000), os.urandom(1_200_000)]

    async def body():
        clients = [await connect(a, "/t/uploads/"), await connect(b, "/t/uploads/")]
        go = asyncio.Event()
        started = [asyncio.Event(), asyncio.Event()]
        tasks = [
            asyncio.create_task(upload_slowly(c, data, s, go))
            for c, data, s in zip(clients, contents, started, strict=True)
        ]
        for event in started:
            await event.wait()
        # Temp files are opened with the first chunk, which the workers take in their own time.
        await wait_until(lambda: len(a.temp_files()) == 2, timeout=10)
        before = a.temp_files()
        await asyncio.to_thread(workers.start)  # sweeps the orphans of dead processes only
        during = a.temp_files()
        go.set()
        rows = await asyncio.gather(*tasks)
        for client in clients:
            await client.close()
        return before, during, rows

    before, during, rows = run_async(body())
    assert len(before) == 2 and during == before
    for (path, digest, size), data in zip(rows, contents, strict=True):
        assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())
        assert (workers.state / "media" / path).read_bytes() == data


def test_pages_outlive_a_redis_outage_and_get_broadcasts_again_after_it():
    redis = RedisServer().start()
    pool = Workers(redis.url)
    worker = pool.start()
    script = "import django; django.setup(); from djust import broadcast; "
    script += "broadcast('room', 'said', text='back again', pid=0)"

    async def body():
        alice = await connect(worker, "/t/room/")
        redis.stop()
        with pytest.raises(ServerError) as refused:
            await alice.event("say", text="into the void")
        await alice.ping()  # the connection stayed
        redis.start()  # empty: the groups are gone with the old process
        # The page tries again after 0.5 s, 1 s, 2 s ...: broadcast until it has joined again.
        got = None
        for _ in range(20):
            await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", script], env=worker.env, check=True, cwd=ROOT
            )
            with contextlib.suppress(TimeoutError):
                got = await next_lines(alice, timeout=1.0)
                break
        await alice.close()
        return refused.value.code, got

    try:
        code, got = run_async(body())
    finally:
        pool.stop()
        redis.remove()
    assert code == "handler_error"
    assert got == ["room said back again 0"]


@pytest.mark.redis
def test_a_redis_restart_between_two_reads_is_noticed_and_members_join_again():
    from channels_redis.core import RedisChannelLayer

    from djust import broadcasts

    server = RedisServer().start()

    class Member:
        def __init__(self) -> None:
            self.told = asyncio.Event()

        def server_restarted(self) -> None:
            self.told.set()

    async def body() -> bool:
        layer = RedisChannelLayer(hosts=[server.url])
        member = Member()
        # No read of the member's is waiting: nothing fails when the server goes away.
        broadcasts.Restarts.watch(layer, member)
        await asyncio.sleep(1.0)  # the servers' identity is known
        assert not member.told.is_set()
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)  # a new server: it has forgotten every group
        try:
            await asyncio.wait_for(member.told.wait(), 4 * broadcasts.CHECK_EVERY)
        except TimeoutError:
            return False
        return True

    try:
        assert run_async(body())
    finally:
        server.remove()
