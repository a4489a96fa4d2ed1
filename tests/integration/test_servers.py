"""Uploads under each ASGI server users run, with its defaults; what djust adapts and warns of."""

from __future__ import annotations

import hashlib
import os

import pytest
from websockets.exceptions import ConnectionClosed

from djust.transport.servers import DAPHNE_MESSAGE_LIMIT
from tests.servers import COMMANDS, Browserlike, Servers

from .conftest import run_async
from .test_uploads import saved

MIB = 1024 * 1024
DEFLATE_WARNING = "PERMESSAGE-DEFLATE IS ON"


@pytest.fixture(scope="module")
def servers():
    running = Servers()
    yield running
    running.close()


async def upload_like_a_browser(server, content: bytes) -> tuple[Browserlike, str]:
    """Mount, send ``content`` in runs as djust.js does, save it; the saved file's SHA-256."""
    browser = await Browserlike.connect(server)
    try:
        await browser.mount()
        result = await browser.client.upload("big", "four.bin", content, runs=True)
        assert result.status == "complete", (result.code, result.message)
        await browser.client.event("save", slot="big")
        path, digest, size = saved(browser.client.html)[-1]
        assert size == len(content)
        with open(server.media_dir / path, "rb") as f:
            assert hashlib.file_digest(f, "sha256").hexdigest() == digest
        return browser, digest
    finally:
        await browser.client.close()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_an_upload_of_several_mib_arrives_byte_identical_under_the_servers_defaults(servers, name):
    content = os.urandom(4 * MIB)  # runs of 1 MiB and more: over daphne's message limit
    _, digest = run_async(upload_like_a_browser(servers.get(name), content))
    assert digest == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize("name", ["daphne", "runserver"])
def test_daphne_is_told_runs_within_its_message_limit(servers, name):
    async def body() -> int:
        browser = await Browserlike.connect(servers.get(name))
        try:
            return (await browser.mount())["max_frame_size"]
        finally:
            await browser.client.close()

    assert run_async(body()) == DAPHNE_MESSAGE_LIMIT


def test_djusts_gunicorn_worker_declines_permessage_deflate(servers):
    async def body() -> tuple[str, str]:
        plain = await Browserlike.connect(servers.get("gunicorn"))
        ours = await Browserlike.connect(servers.get("gunicorn-djust"))
        await plain.client.close()
        await ours.client.close()
        return plain.extensions, ours.extensions

    plain, ours = run_async(body())
    assert "permessage-deflate" in plain  # what the uvicorn worker it extends does
    assert ours == ""


def test_djusts_gunicorn_worker_refuses_messages_over_djusts_limit_itself(servers):
    async def body() -> ConnectionClosed | None:
        browser = await Browserlike.connect(servers.get("gunicorn-djust"))
        await browser.mount()
        try:
            await browser.client.transport.send_bytes(bytes(2 * MIB))
            await browser.client.ping()
        except ConnectionClosed as closed:
            return closed
        finally:
            await browser.client.close()
        return None  # still open: djust itself answered frame_too_large

    closed = run_async(body())
    assert closed is not None  # the server hung up before buffering the message for djust
    # Its close frame says "message too big", unless the reset that follows a refusal in the
    # middle of a message overtook it.
    assert closed.rcvd is None or closed.rcvd.code == 1009


def test_permessage_deflate_is_logged_once_at_the_first_mount_that_reports_it(servers):
    server = servers.start("uvicorn")

    async def mount(report: bool) -> None:
        browser = await Browserlike.connect(server)
        assert browser.deflate  # uvicorn's default
        if report:
            await browser.mount()
        else:
            await browser.client.mount(browser.client.token)  # reports nothing
        await browser.client.close()

    run_async(mount(report=False))
    assert DEFLATE_WARNING not in server.log_text()
    run_async(mount(report=True))
    run_async(mount(report=True))
    log = server.log_text()
    assert log.count(DEFLATE_WARNING) == 1
    assert "--ws-per-message-deflate false" in log


@pytest.mark.parametrize(
    ("name", "fix"),
    [("gunicorn", "-k djust.workers.UvicornWorker"), ("hypercorn", "Sec-WebSocket-Extensions")],
)
def test_the_warning_names_the_fix_for_the_server_in_use(servers, name, fix):
    server = servers.get(name)

    async def body() -> None:
        browser = await Browserlike.connect(server)
        await browser.mount()
        await browser.client.close()

    run_async(body())
    assert fix in server.log_text()


def test_mounted_carries_the_warning_for_the_console_under_debug_only(servers):
    async def warning(debug: bool) -> str | None:
        server = servers.get("uvicorn", DEMO_DEBUG="1") if debug else servers.get("uvicorn")
        browser = await Browserlike.connect(server)
        try:
            return (await browser.mount()).get("warning")
        finally:
            await browser.client.close()

    assert DEFLATE_WARNING in run_async(warning(debug=True))
    assert run_async(warning(debug=False)) is None


def test_gunicorns_own_asgi_worker_is_warned_about_once(servers):
    server = servers.get("gunicorn-asgi")
    run_async(mount_twice(server))
    assert server.log_text().count("-k djust.workers.UvicornWorker") == 1


async def mount_twice(server) -> None:
    for _ in range(2):
        browser = await Browserlike.connect(server)
        await browser.mount()
        await browser.client.close()


def test_hypercorn_which_carries_uploads_at_half_speed_is_named_once_with_the_fix(servers):
    server = servers.start("hypercorn")
    run_async(mount_twice(server))
    log = server.log_text()
    assert log.count("this process is hypercorn") == 1
    assert "djust_serve" in log.split("this process is hypercorn")[1]
