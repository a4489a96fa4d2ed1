"""The socket's request is built like the page's: scope, middleware, what they activated."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib import messages
from django.urls import get_script_prefix
from django.utils import translation

from djust import tokens
from djust.errors import BadToken
from djust.transport import request as page_request
from djust.views import LiveView

WS_SCOPE = {
    "type": "websocket",
    "scheme": "ws",
    "path": "/djust/ws/",
    "headers": [
        (b"host", b"testserver"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-key", b"abc"),
        (b"accept-language", b"fr"),
    ],
    "client": ("127.0.0.1", 5000),
    "server": ("testserver", 80),
}


def build(path: str = "/t/events/", script_name: str = "", **scope: object):
    return page_request.build({**WS_SCOPE, **scope}, path, script_name, "a=1")


def test_the_pages_scope_is_a_get_for_the_pages_url():
    scope = page_request.http_scope(WS_SCOPE, "/sub/x/", "/sub", "q=1")
    assert (scope["type"], scope["method"], scope["path"]) == ("http", "GET", "/sub/x/")
    assert (scope["root_path"], scope["query_string"]) == ("/sub", b"q=1")


def test_the_pages_scope_leaves_out_the_websocket_handshake_headers():
    names = {name for name, _ in page_request.http_scope(WS_SCOPE, "/", "", "")["headers"]}
    assert names == {b"host", b"accept-language"}


def test_a_request_over_wss_is_secure():
    request = build(scheme="wss").request
    assert request.scheme == "https"
    assert request.is_secure()


def test_a_request_over_ws_is_not_secure():
    assert not build().request.is_secure()


def test_the_request_has_the_pages_path_query_and_method():
    request = build().request
    assert (request.method, request.path, request.GET["a"]) == ("GET", "/t/events/", "1")


def test_the_request_under_a_script_name_splits_path_and_path_info():
    page = build("/sub/t/events/", "/sub")
    assert (page.request.path, page.request.path_info) == ("/sub/t/events/", "/t/events/")
    assert page.script_prefix == "/sub"


def test_middleware_gives_the_request_a_session_and_a_user():
    request = build().request
    assert hasattr(request, "session")
    assert hasattr(request, "user")


def test_the_language_locale_middleware_chose_is_recorded():
    assert build().language == "fr"


def test_activate_applies_the_pages_language_and_script_prefix_and_restores_them():
    page = build("/sub/t/events/", "/sub")
    before = translation.get_language()
    with page.activate():
        assert translation.get_language() == "fr"
        assert get_script_prefix() == "/sub/"
    assert translation.get_language() == before
    assert get_script_prefix() == "/"


def test_the_url_resolves_to_its_view_with_typed_kwargs():
    match = build("/t/items/5/").match
    assert match.kwargs == {"pk": 5}


def test_a_middleware_that_answers_itself_refuses_the_request():
    page = build(headers=[(b"host", b"evil.example")])
    assert page.refused is not None
    assert page.refused.status_code == 400


def test_a_message_added_on_the_socket_is_shown_by_the_next_render_only():
    request = build().request
    messages.success(request, "Saved")
    assert [str(m) for m in messages.get_messages(request)] == ["Saved"]
    page_request.rendered(request)
    assert list(messages.get_messages(request)) == []


def test_a_message_that_no_render_showed_is_kept():
    request = build().request
    messages.info(request, "Later")
    page_request.rendered(request)
    assert [str(m) for m in messages.get_messages(request)] == ["Later"]


def test_a_request_with_a_csrf_cookie_has_one_token_for_its_life():
    cookie = (b"cookie", b"csrftoken=" + b"a" * 32)
    request = build(headers=[*WS_SCOPE["headers"], cookie]).request
    assert request.djust_csrf_token
    assert request.META["CSRF_COOKIE"] == "a" * 32


# -- tokens -------------------------------------------------------------------------------------


class Page(LiveView):
    template_string = "x"


def test_a_token_keeps_the_script_name():
    token = tokens.loads(tokens.dumps(Page, "/sub/p/", "", {}, "", "/sub"))
    assert (token.path, token.script_name) == ("/sub/p/", "/sub")


def test_a_token_whose_path_is_outside_its_script_name_is_refused():
    with pytest.raises(BadToken):
        tokens.loads(tokens.dumps(Page, "/p/", "", {}, "", "/sub"))


def test_the_token_module_does_not_import_the_views():
    tree = ast.parse(Path(tokens.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name and name.startswith("djust.views") for name in imported)


def test_socket_middleware_chooses_what_the_socket_request_passes_through(settings):
    without_locale = [m for m in settings.MIDDLEWARE if "LocaleMiddleware" not in m]
    settings.DJUST = {**settings.DJUST, "SOCKET_MIDDLEWARE": without_locale}
    assert build().language != "fr"
