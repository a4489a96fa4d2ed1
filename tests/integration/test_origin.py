"""The origin check through the real server: scheme, host and port must be the site's, or listed."""

from __future__ import annotations

import shutil

import pytest
from websockets.exceptions import InvalidStatus

from djust.testing import WebSocketTransport

from ..conftest import make_server
from .conftest import Live, run_async

LISTED = "https://app.example.test"


def status_of_handshake(server, origin: str, **headers: str) -> int:
    """101 if the server accepts a handshake from ``origin``, else its HTTP status."""

    async def body() -> int:
        try:
            transport = await WebSocketTransport.connect(
                server.ws_url, origin, additional_headers=headers
            )
        except InvalidStatus as refused:
            return refused.response.status_code
        await transport.close()
        return 101

    return run_async(body())


@pytest.fixture(scope="module")
def listing_server():
    """A server whose DJUST["ALLOWED_ORIGINS"] lists one origin besides its own."""
    srv = make_server(TEST_ALLOWED_ORIGINS=LISTED).start()
    yield srv
    srv.stop()
    shutil.rmtree(srv.state_dir, ignore_errors=True)


def test_the_sites_own_origin_mounts(live):
    async def body():
        client = await live.connect("/t/events/", origin=live.server.url)
        assert (await client.event("add"))["t"] == "reply"

    live.run(body())


def test_another_port_is_refused(server):
    assert status_of_handshake(server, "http://127.0.0.1:1") == 403


def test_localhost_on_another_port_is_refused(server):
    assert status_of_handshake(server, "http://localhost:1") == 403


def test_another_scheme_is_refused(server):
    assert status_of_handshake(server, f"https://127.0.0.1:{server.port}") == 403


def test_an_origin_that_starts_with_the_sites_is_refused(server):
    assert status_of_handshake(server, f"{server.url}.evil.example") == 403


def test_https_is_the_sites_scheme_behind_a_tls_proxy(server):
    # tests/settings.py trusts X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER), as behind a proxy.
    secure = {"X-Forwarded-Proto": "https"}
    assert status_of_handshake(server, f"https://127.0.0.1:{server.port}", **secure) == 101
    assert status_of_handshake(server, server.url, **secure) == 403


def test_a_listed_origin_mounts(listing_server):
    live = Live(listing_server)

    async def body():
        client = await live.connect("/t/events/", origin=LISTED)
        assert (await client.event("add"))["t"] == "reply"

    live.run(body())


def test_an_origin_that_is_not_listed_is_still_refused(listing_server):
    assert status_of_handshake(listing_server, "https://other.example.test") == 403
