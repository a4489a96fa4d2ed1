"""A view token carries the user it was rendered for: it mounts for that user only
(docs/protocol.md, section 3 ``mount``; docs/security.md, "Replaying a token")."""

from __future__ import annotations

import pytest

from djust.testing import LiveClient, ServerError, WebSocketTransport, token_from_html

from .test_auth_sessions import Browser, create_users

USERS = ("gil", "hal")


@pytest.fixture(scope="module")
def users(server):
    create_users(server, USERS)


async def mount_as(live, browser: Browser, token: str) -> LiveClient:
    """Mount ``token`` over a socket that carries ``browser``'s cookies."""
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.jar)
    transport = await WebSocketTransport.connect(
        live.server.ws_url, live.server.url, additional_headers={"Cookie": cookies}
    )
    client = LiveClient(transport, timeout=15)
    live.clients.append(client)
    await client.mount(token)
    return client


def test_a_token_mounts_in_the_same_users_other_session(server, live, users):
    token = token_from_html(Browser(server).log_in("gil").get("/t/whoami/"))
    elsewhere = Browser(server).log_in("gil")

    async def body():
        client = await mount_as(live, elsewhere, token)
        assert "<p id='user'>gil</p>" in client.html

    live.run(body())


def test_a_token_is_refused_to_another_user(server, live, users):
    token = token_from_html(Browser(server).log_in("gil").get("/t/whoami/"))
    other = Browser(server).log_in("hal")

    async def body():
        with pytest.raises(ServerError) as refused:
            await mount_as(live, other, token)
        assert refused.value.code == "bad_token"

    live.run(body())


def test_an_anonymous_visitors_token_is_refused_to_a_logged_in_socket(server, live, users):
    token = token_from_html(Browser(server).get("/t/whoami/"))
    logged_in = Browser(server).log_in("gil")

    async def body():
        with pytest.raises(ServerError) as refused:
            await mount_as(live, logged_in, token)
        assert refused.value.code == "bad_token"

    live.run(body())
