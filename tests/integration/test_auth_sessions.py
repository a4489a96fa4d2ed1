"""Logging out ends live pages: logout, a password change, a deactivated account, a deleted
session, in one worker or across workers on Redis. Browsers are cookie jars over real HTTP."""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest

from djust.testing import (
    LiveClient,
    LiveViewTestClient,
    WebSocketTransport,
    token_from_html,
)
from djust.transport.protocol import CLOSE_SESSION_ENDED

from .test_redis import RedisServer, Workers

PASSWORD = "live-pages-pw-1"
USERS = ("ada", "bob", "cyd", "dee", "eve", "fay")


def create_users(server, names) -> None:
    code = (
        "from django.contrib.auth.models import User\n"
        f"for name in {list(names)!r}:\n"
        f"    User.objects.create_user(name, password={PASSWORD!r})\n"
    )
    server.manage("shell", "-c", code)


@pytest.fixture(scope="module")
def users(server):
    create_users(server, USERS)


class Browser:
    """One browser's cookie jar: logs in over HTTP, posts forms, opens live pages."""

    def __init__(self, server) -> None:
        self.server = server
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def get(self, path: str) -> str:
        with self.opener.open(self.server.url + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, **fields: str) -> str:
        request = urllib.request.Request(
            self.server.url + path,
            data=urllib.parse.urlencode(fields).encode(),
            headers={"X-CSRFToken": self.cookie("csrftoken")},
        )
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode()

    def log_in(self, username: str, password: str = PASSWORD) -> Browser:
        self.get("/login/")
        page = self.post("/login/", username=username, password=password, next="/t/whoami/")
        assert f"<p id='user'>{username}</p>" in page
        return self

    async def open(self, live, path: str = "/t/events/", server=None) -> LiveClient:
        """Mount the page at ``path`` over a socket carrying this browser's cookies."""
        server = server or self.server
        html = self.get(path)
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        transport = await WebSocketTransport.connect(
            server.ws_url, server.url, additional_headers={"Cookie": cookies}
        )
        client = LiveClient(transport, timeout=15)
        if live is not None:
            live.clients.append(client)
        await client.mount(token_from_html(html))
        return client


async def ended(client: LiveClient, timeout: float = 5.0) -> int:
    """Wait for ``session_ended``, then for the socket to close; returns the close code."""

    async def wait() -> int:
        await client.wait_for(lambda m: m.get("code") == "session_ended")
        await client.transport.ws.wait_closed()
        return client.transport.ws.close_code

    return await asyncio.wait_for(wait(), timeout)


def fire(client: LiveClient, name: str = "add"):
    """Send an event without waiting for its reply (a page that ended never sends one)."""
    return client.send({"t": "event", "id": 9999, "name": name, "params": {}})


def db(server) -> sqlite3.Connection:
    return sqlite3.connect(server.state_dir / "db.sqlite3", timeout=10)


def test_logout_ends_every_socket_of_that_session(server, live, users):
    browser = Browser(server).log_in("ada")

    async def body():
        first = await browser.open(live)
        second = await browser.open(live, "/t/whoami/")
        await asyncio.to_thread(browser.post, "/t/logout/")
        assert await ended(first) == CLOSE_SESSION_ENDED
        assert await ended(second) == CLOSE_SESSION_ENDED

    live.run(body())


def test_logout_keeps_the_sockets_of_the_users_other_sessions(server, live, users):
    laptop, phone = Browser(server).log_in("bob"), Browser(server).log_in("bob")

    async def body():
        leaving = await laptop.open(live)
        staying = await phone.open(live)
        await asyncio.to_thread(laptop.post, "/t/logout/")
        await ended(leaving)
        reply = await staying.event("add", by=2)
        assert "<p id='n'>2</p>" in reply["html"]
        assert not [m for m in staying.received if m.get("code") == "session_ended"]

    live.run(body())


def test_password_change_ends_the_users_other_sessions_at_once(server, live, users):
    laptop, phone = Browser(server).log_in("cyd"), Browser(server).log_in("cyd")

    async def body():
        idle = await phone.open(live)
        new = "live-pages-pw-2"
        await asyncio.to_thread(
            laptop.post,
            "/t/password/",
            old_password=PASSWORD,
            new_password1=new,
            new_password2=new,
        )
        assert await ended(idle) == CLOSE_SESSION_ENDED  # without an event of its own

    live.run(body())


def test_deactivated_users_socket_ends_at_its_next_event(server, live, users):
    browser = Browser(server).log_in("dee")

    async def body():
        client = await browser.open(live)
        await client.event("add")
        # Behind Django's back (no signal): only the check before each event can see it.
        with db(server) as conn:
            conn.execute("UPDATE auth_user SET is_active = 0 WHERE username = 'dee'")
        await fire(client)
        assert await ended(client) == CLOSE_SESSION_ENDED
        assert "<p id='n'>1</p>" in client.html  # the event did not run

    live.run(body())


def test_deleted_session_ends_the_socket_at_its_next_event(server, live, users):
    browser = Browser(server).log_in("eve")

    async def body():
        client = await browser.open(live)
        with db(server) as conn:
            conn.execute(
                "DELETE FROM django_session WHERE session_key = ?", (browser.cookie("sessionid"),)
            )
        await fire(client)
        assert await ended(client) == CLOSE_SESSION_ENDED

    live.run(body())


# -- in process ---------------------------------------------------------------------


def test_a_logout_notice_ends_the_page_once_its_session_is_gone(transactional_db, monkeypatch):
    from django.contrib.auth.models import User
    from django.contrib.sessions.models import Session

    from djust import auth

    # user_logged_out comes before logout() flushes the session: the page must not reload
    # while the session still works (it would show the page logged in).
    monkeypatch.setattr(auth, "LOGOUT_RECHECKS", (0.05,) * 200)
    user = User.objects.create_user("kim", password=PASSWORD)
    client = LiveViewTestClient()
    try:
        client.client.force_login(user)
        view = client.get("/t/events/")
        key = client.client.session.session_key

        def session_ended(timeout: float):
            waiting = view.live.wait_for(lambda m: m.get("code") == "session_ended")
            return client._run(asyncio.wait_for(waiting, timeout))

        auth.notify(str(user.pk), logged_out_session=key)  # what user_logged_out sends
        with pytest.raises(TimeoutError):
            session_ended(0.5)
        Session.objects.filter(session_key=key).delete()  # what logout() does next
        session_ended(5)
    finally:
        client.close()


def test_checking_a_session_signed_with_a_fallback_secret_leaves_it_in_place(db, settings):
    from django.contrib.auth.models import User
    from django.contrib.sessions.models import Session
    from django.test import Client

    from djust.auth import still_logged_in

    user = User.objects.create_user("lou", password=PASSWORD)
    browser = Client()
    settings.SECRET_KEY = "the-old-secret-key-" * 3
    browser.force_login(user)
    key = browser.session.session_key
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-secret-key-" * 3
    assert still_logged_in(key, str(user.pk))
    # Django's own check would move the session to a new key: the browser's cookie would then
    # name a deleted session. The next HTTP request does that, with a response to say so.
    assert Session.objects.filter(session_key=key).exists()


# -- several workers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def redis():
    server = RedisServer().start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def workers(redis):
    pool = Workers(redis.url)
    pool.start()
    pool.start()
    create_users(pool.all[0], ["gil", "hal", "ivy", "jon"])
    yield pool
    pool.stop()


@pytest.mark.redis
def test_logout_on_one_worker_ends_the_socket_on_another(workers, live):
    a, b = workers.all
    browser = Browser(a).log_in("gil")

    async def body():
        client = await browser.open(live, server=b)
        await asyncio.to_thread(browser.post, "/t/logout/")  # served by worker a
        assert await ended(client) == CLOSE_SESSION_ENDED

    live.run(body())


@pytest.mark.redis
def test_deactivating_a_user_in_another_process_ends_the_users_sockets(workers, live):
    a, b = workers.all
    browser = Browser(a).log_in("hal")

    async def body():
        on_a = await browser.open(live)
        on_b = await browser.open(live, server=b)
        code = (
            "from django.contrib.auth.models import User\n"
            "user = User.objects.get(username='hal')\n"
            "user.is_active = False\n"
            "user.save()\n"
        )
        await asyncio.to_thread(a.manage, "shell", "-c", code)  # a management command
        assert await ended(on_a) == CLOSE_SESSION_ENDED
        assert await ended(on_b) == CLOSE_SESSION_ENDED

    live.run(body())


@pytest.mark.redis
def test_logout_while_redis_is_down_succeeds_and_the_page_ends_at_its_next_event(
    workers, redis, live
):
    a, b = workers.all
    browser = Browser(a).log_in("ivy")

    async def body():
        client = await browser.open(live, server=b)
        redis.stop()
        try:
            page = await asyncio.to_thread(browser.post, "/t/logout/")
        finally:
            redis.start()
        assert "Log in" in page  # the logout went through: no notification, no error
        await fire(client)
        assert await ended(client) == CLOSE_SESSION_ENDED

    live.run(body())


@pytest.mark.redis
def test_a_page_opened_before_a_redis_restart_is_ended_by_a_logout_after_it(workers, redis, live):
    a, b = workers.all
    # Enough sessions to outlast the rejoin's back-off on a busy machine (0.5 s, 1 s, 2 s, 4 s...).
    browsers = [Browser(a).log_in("jon") for _ in range(16)]

    async def body():
        clients = [await browser.open(live, server=b) for browser in browsers]
        redis.stop()
        redis.start()  # empty: the groups are gone with the old process
        # Worker b joins again after 0.5 s, 1 s, 2 s ...: log out one session after another
        # until one of their pages ends without an event of its own.
        for browser, client in zip(browsers, clients, strict=True):
            await asyncio.to_thread(browser.post, "/t/logout/")
            try:
                return await ended(client, timeout=2.0)
            except TimeoutError:
                continue
        return None

    assert live.run(body()) == CLOSE_SESSION_ENDED
