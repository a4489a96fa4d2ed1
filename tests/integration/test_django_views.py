"""A live view is a Django view: dispatch, the socket's request, answers, through a real server."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from djust.testing import LiveClient, ServerError, WebSocketTransport, token_from_html
from tests.conftest import make_server
from tests.integration.conftest import run_async


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Visitor:
    """A browser without JavaScript: a cookie jar, HTTP pages and the page's socket."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect
        )

    def request(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str, Any]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        headers = {"Referer": self.server.url + "/"} if data is not None else {}
        request = urllib.request.Request(self.server.url + path, body, headers)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.headers

    def get(self, path: str) -> str:
        status, body, _ = self.request(path)
        assert status == 200, (status, body[:300])
        return body

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def log_in(self, username: str = "demo", password: str = "demo") -> None:
        self.get("/login/")
        status, _, _ = self.request(
            "/login/",
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.cookie("csrftoken"),
            },
        )
        assert status == 302, "login failed"

    async def live(self, path: str, headers: dict[str, str] | None = None) -> LiveClient:
        """Load ``path`` and mount its view over a socket that carries this visitor's cookies."""
        html = self.get(path)
        return await self.mount(token_from_html(html), headers)

    async def mount(self, token: str, headers: dict[str, str] | None = None) -> LiveClient:
        client = await self.connect(headers)
        await client.mount(token)
        return client

    async def connect(self, headers: dict[str, str] | None = None) -> LiveClient:
        transport = await WebSocketTransport.connect(
            self.server.ws_url,
            self.server.url,
            additional_headers={"Cookie": self.cookie_header(), **(headers or {})},
        )
        return LiveClient(transport, timeout=10)


@pytest.fixture
def visitor(server) -> Visitor:
    return Visitor(server)


def htmls_after(visitor: Visitor, path: str, *events: str) -> list[str]:
    """The view's HTML after mounting ``path`` and after each event, in order."""

    async def body() -> list[str]:
        client = await visitor.live(path)
        try:
            htmls = [client.html]
            for name in events:
                await client.event(name)
                htmls.append(client.html)
            return htmls
        finally:
            await client.close()

    return run_async(body())


def csrf_input(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


# -- dispatch: auth mixins on the page and on the socket ---------------------------------------


def test_login_required_page_redirects_an_anonymous_visitor_to_the_login_page(visitor):
    status, body, headers = visitor.request("/t/dj/secret/")
    assert status == 302
    assert headers["Location"] == "/login/?next=/t/dj/secret/"
    assert "Secret" not in body


def test_permission_required_page_is_forbidden_to_a_user_without_the_permission(visitor):
    visitor.log_in()
    status, body, _ = visitor.request("/t/dj/staff/")
    assert status == 403
    assert "Staff page" not in body


def test_socket_mount_repeats_the_dispatch_checks_for_the_sockets_session(visitor):
    visitor.get("/t/dj/session/gate/open/")
    html = visitor.get("/t/dj/gate/")

    async def mount() -> str:
        client = await visitor.connect()
        try:
            await client.mount(token_from_html(html))
        except ServerError as error:
            return error.code
        finally:
            await client.close()
        return "mounted"

    assert run_async(mount()) == "mounted"
    visitor.get("/t/dj/session/gate/closed/")
    assert run_async(mount()) == "access_denied"


def test_mount_returning_a_redirect_answers_the_page_with_it(visitor):
    status, _, headers = visitor.request("/t/dj/mount-redirect/?go=1")
    assert status == 302
    assert headers["Location"] == "/t/events/"


def test_mount_returning_a_redirect_on_the_socket_navigates_the_page(visitor):
    html = visitor.get("/t/dj/mount-redirect/")
    visitor.get("/t/dj/session/away/yes/")

    async def body() -> dict[str, Any]:
        client = await visitor.connect()
        try:
            await client.send({"t": "mount", "token": token_from_html(html)})
            return await client.wait_for(lambda m: m["t"] in ("redirect", "mounted", "error"))
        finally:
            await client.close()

    assert run_async(body()) == {"t": "redirect", "url": "/t/events/"}


# -- views behave like class-based views --------------------------------------------------------


def test_as_view_initkwargs_apply_when_the_socket_mounts(visitor):
    html = htmls_after(visitor, "/t/dj/bonjour/", "inc")[-1]
    assert "<p id='greeting'>bonjour</p>" in html
    assert "<p id='n'>1</p>" in html


def test_public_class_attributes_are_template_context(visitor):
    assert "<p id='shout'>HEY</p>" in visitor.get("/t/dj/greeting/")


# -- the socket's request is the page's request -------------------------------------------------


def test_a_csrf_token_rendered_over_the_socket_validates_against_the_cookie(visitor):
    html = htmls_after(visitor, "/t/dj/form/", "inc")[-1]
    status, response, _ = visitor.request(
        "/t/dj/posted/", {"q": "hi", "csrfmiddlewaretoken": csrf_input(html)}
    )
    assert status == 200, response[:300]
    assert "posted hi" in response


def test_an_unchanged_page_with_a_csrf_token_re_renders_byte_identical(visitor):
    async def body() -> dict[str, Any]:
        client = await visitor.live("/t/dj/form/")
        try:
            return await client.event("nothing")
        finally:
            await client.close()

    reply = run_async(body())
    assert "html" not in reply


def test_a_message_added_in_a_handler_shows_in_the_next_render(visitor):
    _, first, second = htmls_after(visitor, "/t/dj/answers/", "save", "save")
    assert "Saved 1</li>" in first
    assert "Saved 2</li>" in second
    assert "Saved 1" not in second


def test_a_french_page_renders_in_french_over_the_socket(visitor):
    html = htmls_after(visitor, "/fr/t/lang/7/", "inc")[-1]
    assert "<p id='lang'>fr</p>" in html
    assert "<p id='month'>janvier</p>" in html
    assert "<p id='said'>Oui</p>" in html


def test_url_kwargs_under_i18n_patterns_keep_their_converter_types(visitor):
    key = "12345678-1234-5678-1234-567812345678"
    (html,) = htmls_after(visitor, f"/fr/t/key/{key}/")
    assert f"<p id='key'>UUID {key}</p>" in html


# -- handlers answer like Django views ----------------------------------------------------------


def answer(visitor: Visitor, event: str) -> dict[str, Any]:
    async def body() -> dict[str, Any]:
        client = await visitor.live("/t/dj/answers/")
        try:
            await client.send({"t": "event", "id": 1, "name": event, "params": {}})
            return await client.wait_for(lambda m: m["t"] in ("redirect", "push_event", "error"))
        finally:
            await client.close()

    return run_async(body())


def test_a_handler_returning_a_redirect_navigates_the_page(visitor):
    assert answer(visitor, "go") == {"t": "redirect", "url": "/t/events/"}


def test_self_redirect_in_a_handler_navigates_the_page(visitor):
    assert answer(visitor, "go_method") == {"t": "redirect", "url": "/t/dj/greeting/"}


def test_push_event_sends_an_event_for_the_page(visitor):
    assert answer(visitor, "notify") == {"t": "push_event", "name": "saved", "payload": {"n": 42}}


def test_a_handler_returning_another_response_is_a_handler_error(visitor):
    assert answer(visitor, "wrong")["code"] == "handler_error"


# -- served under a script name -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sub_server():
    srv = make_server(TEST_SCRIPT_NAME="/sub").start()
    yield srv
    srv.stop()


def test_under_a_script_name_the_page_points_the_client_at_the_prefixed_socket(sub_server):
    html = Visitor(sub_server).get("/sub/t/dj/greeting/")
    assert 'data-djust-ws="/sub/djust/ws/"' in html
    assert 'src="/sub/static/djust/djust.js"' in html


def test_under_a_script_name_the_socket_mounts_where_the_page_says(sub_server):
    visitor = Visitor(sub_server)
    html = visitor.get("/sub/t/dj/greeting/")
    path = re.search(r'data-djust-ws="([^"]+)"', html).group(1)

    async def body() -> str:
        transport = await WebSocketTransport.connect(
            f"ws://127.0.0.1:{sub_server.port}{path}", sub_server.url
        )
        client = LiveClient(transport, timeout=10)
        try:
            await client.mount(token_from_html(html))
            await client.event("inc")
            return client.html
        finally:
            await client.close()

    html = run_async(body())
    assert "<p id='n'>1</p>" in html
    # reverse() over the socket includes the script name, as on the page.
    assert "href='/sub/t/dj/greeting/'" in html
