"""Uploads outlive their connection: a page that comes back resumes where the server's bytes end.

Real servers with resume on (``UPLOAD_RESUME_TTL``), real WebSocket clients that drop and come
back, a server stopped with SIGTERM or SIGKILL and started again, and two workers sharing an
upload directory and a real ``redis-server``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from djust.testing import LiveClient, WebSocketTransport, token_from_html
from tests.integration.conftest import Live, fetch, run_async
from tests.integration.test_auth_sessions import Browser, create_users
from tests.integration.test_redis import RedisServer, Workers
from tests.integration.test_uploads import saved, sha256, unique

SIZE = 3_000_000  # the "any" slot takes 4 MB, in chunks of 16 KiB
WINDOW = 8 * 1024 * 1024


@pytest.fixture
def live(resume_server) -> Live:
    return Live(resume_server)


async def dropped(live: Live, name: str, content: bytes, stop_at: int = 1_000_000):
    """Start an upload, send ``stop_at`` bytes, then lose the connection."""
    client = await live.connect()
    result = await client.upload("any", name, content, modified=1700000000000, stop_at=stop_at)
    assert result.status == "sent" and result.token
    await client.close()
    return result


async def saved_rows(client: LiveClient) -> list[tuple[str, str, int]]:
    reply = await client.event("save")
    return saved(reply["html"])


def test_an_upload_cut_off_resumes_on_a_new_connection_and_arrives_whole(live):
    name, content = unique("cut.bin"), os.urandom(SIZE)

    async def body():
        first = await dropped(live, name, content)
        client = await live.connect()
        result = await client.upload(
            "any", name, content, resume=first.token, modified=1700000000000
        )
        assert result.status == "complete"
        assert 0 < result.offset <= first.sent
        [(path, digest, size)] = await saved_rows(client)
        assert (live.server.media_dir / path).read_bytes() == content
        assert digest == sha256(content) and size == SIZE

    live.run(body())


def test_a_resume_resends_at_most_one_window(live):
    name, content = unique("resend.bin"), os.urandom(SIZE)

    async def body():
        first = await dropped(live, name, content, stop_at=2_000_000)
        client = await live.connect()
        second = await client.upload(
            "any", name, content, resume=first.token, modified=1700000000000
        )
        assert second.status == "complete"
        resent = first.sent + second.sent - SIZE
        assert 0 <= resent <= WINDOW

    live.run(body())


def test_a_complete_unconsumed_upload_survives_a_reconnect(live):
    name, content = unique("done.bin"), os.urandom(200_000)

    async def body():
        client = await live.connect()
        first = await client.upload("any", name, content, modified=1)
        assert first.status == "complete"
        await client.close()
        again = await live.connect()
        reply = await again.register(
            "any", name, len(content), resume=first.token, client_modified=1
        )
        assert reply["t"] == "upload_registered" and reply["offset"] == len(content)
        await again.wait_for(lambda m: m["t"] == "upload_complete" and m["ref"] == reply["ref"])
        [(path, digest, _)] = await saved_rows(again)
        assert digest == sha256(content)
        assert (live.server.media_dir / path).read_bytes() == content

    live.run(body())


def test_a_waiting_upload_is_listed_again_in_the_slot_once_resumed(live):
    name, content = unique("listed.bin"), os.urandom(SIZE)

    async def body():
        first = await dropped(live, name, content)
        client = await live.connect()
        reply = await client.register(
            "any", name, SIZE, resume=first.token, client_modified=1700000000000
        )
        assert reply["t"] == "upload_registered"
        render = await client.wait_for(lambda m: m["t"] == "render" and name in m["html"])
        assert f"data-ref='{reply['ref']}'" in render["html"]

    live.run(body())


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"size": SIZE - 1}, "file_changed"),
        ({"modified": 1700000000001}, "file_changed"),
        ({"name": "other.bin"}, "file_changed"),
        ({"slot": "images"}, "unknown_slot"),
    ],
    ids=["size", "modified", "name", "slot"],
)
def test_a_resume_of_another_file_is_refused_with_its_code(live, change, code):
    name, content = unique("same.bin"), os.urandom(SIZE)

    async def body():
        first = await dropped(live, name, content)
        client = await live.connect()
        reply = await client.register(
            change.get("slot", "any"),
            change.get("name", name),
            change.get("size", SIZE),
            resume=first.token,
            client_modified=change.get("modified", 1700000000000),
        )
        assert (reply["t"], reply["code"]) == ("upload_error", code)
        # The upload still waits for the right file.
        result = await client.upload(
            "any", name, content, resume=first.token, modified=1700000000000
        )
        assert result.status == "complete"

    live.run(body())


def test_an_unknown_token_is_resume_expired(live):
    async def body():
        client = await live.connect()
        known = await client.register("any", unique("x.bin"), 10)
        directory = known["resume"].split(".")[0]  # this server's: only the entry is unknown
        token = f"{directory}." + "0" * 32
        reply = await client.register("any", "x.bin", 10, resume=token)
        assert (reply["t"], reply["code"]) == ("upload_error", "resume_expired")

    live.run(body())


def test_a_token_from_a_directory_this_server_cannot_see_is_resume_unavailable(live):
    name, content = unique("elsewhere.bin"), os.urandom(SIZE)

    async def body():
        first = await dropped(live, name, content)
        directory, entry = first.token.split(".")
        other = ("f" if directory[0] != "f" else "e") + directory[1:]
        client = await live.connect()
        reply = await client.register(
            "any", name, SIZE, resume=f"{other}.{entry[::-1]}", client_modified=1700000000000
        )
        assert (reply["t"], reply["code"]) == ("upload_error", "resume_unavailable")

    live.run(body())


def test_fallback_starts_afresh_when_the_upload_cannot_be_resumed(live):
    async def body():
        client = await live.connect()
        token = "0123456789abcdef." + "0" * 32
        reply = await client.register("any", "x.bin", 10, resume=token, fallback=True)
        assert reply["t"] == "upload_registered" and reply["offset"] == 0

    live.run(body())


def test_a_waiting_upload_expires_after_its_grace_period_and_leaves_no_file(servers):
    server = servers(TEST_RESUME_TTL="1")
    live = Live(server)
    name, content = unique("expires.bin"), os.urandom(SIZE)

    async def body():
        first = await dropped(live, name, content)
        # Past the grace period first: the files may not be on disk yet when the socket closes.
        await asyncio.sleep(1.5)
        deadline = time.monotonic() + 10
        while server.temp_files() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert server.temp_files() == []
        client = await live.connect()
        reply = await client.register(
            "any", name, SIZE, resume=first.token, client_modified=1700000000000
        )
        assert (reply["t"], reply["code"]) == ("upload_error", "resume_expired")

    live.run(body())


# -- restarts ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_an_upload_resumes_after_the_server_restarts(servers, sig):
    restartable = servers(TEST_RESUME_TTL="60")
    live = Live(restartable)
    name, content = unique("restart.bin"), os.urandom(SIZE)

    async def body():
        client = await live.connect()
        first = await client.upload("any", name, content, modified=5, stop_at=2_000_000)
        await asyncio.sleep(0.3)  # the server writes what it received
        restartable.stop(sig)
        with pytest.raises(Exception):  # noqa: B017 - the connection is gone, however it says so
            await client.wait_for(lambda m: False)
        restartable.start()
        again = await live.connect()
        result = await again.upload("any", name, content, resume=first.token, modified=5)
        assert result.status == "complete" and result.offset > 0
        [(path, digest, _)] = await saved_rows(again)
        assert (restartable.media_dir / path).read_bytes() == content
        assert digest == sha256(content)

    live.run(body())


# -- several workers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    redis = RedisServer().start()
    workers = Workers(redis.url)
    workers.env["TEST_RESUME_TTL"] = "60"
    workers.start()
    workers.start()
    yield workers
    workers.stop()
    redis.remove()


async def connect(server, path: str = "/t/uploads/") -> LiveClient:
    html = fetch(server.url + path)
    transport = await WebSocketTransport.connect(server.ws_url, server.url)
    client = LiveClient(transport, timeout=15)
    await client.mount(token_from_html(html))
    return client


@pytest.mark.redis
@pytest.mark.parametrize("first_alive", [False, True], ids=["closed", "still-open"])
def test_a_reconnect_that_lands_on_another_worker_resumes_there(pool, first_alive):
    """The first worker may not know yet that its connection is gone: it hands the upload over."""
    a, b = pool.all
    name, content = unique("worker.bin"), os.urandom(SIZE)

    async def body():
        client = await connect(a)
        first = await client.upload("any", name, content, modified=9, stop_at=1_500_000)
        if not first_alive:
            await client.close()
        other = await connect(b)
        result = await other.upload("any", name, content, resume=first.token, modified=9)
        assert result.status == "complete" and result.offset > 0
        reply = await other.event("save")
        [(path, digest, _)] = saved(reply["html"])
        assert (b.media_dir / path).read_bytes() == content
        assert digest == sha256(content)
        await other.close()
        await client.close()

    run_async(body())


# -- whose an upload is ------------------------------------------------------------------


@pytest.fixture(scope="module")
def accounts(resume_server):
    create_users(resume_server, ("ann", "ben"))


@pytest.mark.parametrize(
    ("who", "code"),
    [("ben", "resume_denied"), ("ann-elsewhere", "resume_denied"), ("ann", None)],
    ids=["another-user", "same-user-another-session", "same-session"],
)
def test_only_the_session_that_started_an_upload_resumes_it(resume_server, accounts, who, code):
    live = Live(resume_server)
    name, content = unique("mine.bin"), os.urandom(SIZE)
    ann = Browser(resume_server).log_in("ann")
    claimant = {
        "ben": lambda: Browser(resume_server).log_in("ben"),
        "ann-elsewhere": lambda: Browser(resume_server).log_in("ann"),
        "ann": lambda: ann,
    }[who]()

    async def body():
        client = await ann.open(live, "/t/uploads/")
        first = await client.upload("any", name, content, modified=3, stop_at=1_000_000)
        await client.close()
        other = await claimant.open(live, "/t/uploads/")
        reply = await other.register("any", name, SIZE, resume=first.token, client_modified=3)
        if code is None:
            assert reply["t"] == "upload_registered" and reply["offset"] > 0
        else:
            assert (reply["t"], reply["code"]) == ("upload_error", code)

    live.run(body())
