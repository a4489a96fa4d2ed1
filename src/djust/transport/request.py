"""The socket's request: the page's own GET, rebuilt and passed through the project's middleware.

A live view keeps the request it was mounted with for the life of the socket. It is built the
way Django builds the page's request (``ASGIRequest`` from an HTTP scope for the page's URL, with
the socket's headers, cookies, client and scheme) and passed through ``settings.MIDDLEWARE`` up to
the view, so that it carries what middleware gave the HTTP request: session, user, CSRF cookie,
language, messages, and any attribute a project's own middleware sets. What middleware activated
for the thread (language, time zone, URLconf, script prefix) is recorded and activated again
around every later blocking call of the session.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.messages.storage.base import BaseStorage
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import (
    Resolver404,
    ResolverMatch,
    get_script_prefix,
    get_urlconf,
    set_script_prefix,
    set_urlconf,
)
from django.utils import timezone, translation

from djust import conf

# The header names a browser sends only on the WebSocket handshake: not part of the page's GET.
_HANDSHAKE_HEADERS = {
    b"upgrade",
    b"connection",
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
    b"sec-websocket-protocol",
}


class _Reached(HttpResponse):
    """What the end of the middleware chain answers: the request got through to the view."""


@dataclass
class PageRequest:
    """The socket's request, the URL it resolved to and what middleware activated for it."""

    request: HttpRequest
    match: ResolverMatch | None
    language: str | None
    timezone: Any
    urlconf: Any
    script_prefix: str
    # The response a middleware answered with instead of letting the request through.
    refused: HttpResponse | None = None

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        """Activate, on the calling thread, what the page's middleware activated."""
        prefix, urlconf = get_script_prefix(), get_urlconf()
        set_script_prefix(self.script_prefix)
        set_urlconf(self.urlconf)
        try:
            with translation.override(self.language), timezone.override(self.timezone):
                yield
        finally:
            set_script_prefix(prefix)
            set_urlconf(urlconf)


class _SocketHandler(BaseHandler):
    """Django's request handler with the view replaced by "record what middleware did"."""

    def __init__(self, middleware: list[str]) -> None:
        super().__init__()
        saved = settings.MIDDLEWARE
        if list(saved) == middleware:
            self.load_middleware(is_async=False)
            return
        try:
            # load_middleware reads settings.MIDDLEWARE; DJUST["SOCKET_MIDDLEWARE"] differs.
            settings.MIDDLEWARE = middleware
            self.load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = saved

    def _get_response(self, request: HttpRequest) -> HttpResponse:
        try:
            callback, args, kwargs = self.resolve_request(request)
        except Resolver404:
            callback, args, kwargs = None, (), {}
        if callback is not None:
            # View middleware too: a project-wide login requirement is a process_view check.
            for process_view in self._view_middleware:
                response = process_view(request, callback, args, kwargs)
                if response is not None:
                    return response
        reached = _Reached()
        reached.djust_state = (  # type: ignore[attr-defined]
            translation.get_language(),
            timezone.get_current_timezone(),
            getattr(request, "urlconf", None),
        )
        return reached


_handlers: dict[tuple[str, ...], _SocketHandler] = {}
_loading = threading.Lock()


def _handler() -> _SocketHandler:
    middleware = conf.get("SOCKET_MIDDLEWARE")
    if middleware is None:
        middleware = settings.MIDDLEWARE
    key = tuple(middleware)
    with _loading:
        if key not in _handlers:
            _handlers[key] = _SocketHandler(list(middleware))
        return _handlers[key]


def http_scope(scope: dict[str, Any], path: str, script_name: str, query: str) -> dict[str, Any]:
    """The HTTP scope of the page's GET, seen through the socket's connection."""
    secure = scope.get("scheme") in ("wss", "https")
    return {
        "type": "http",
        "asgi": scope.get("asgi", {"version": "3.0"}),
        "http_version": scope.get("http_version", "1.1"),
        "method": "GET",
        "scheme": "https" if secure else "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": script_name,
        "query_string": query.encode(),
        "headers": [(k, v) for k, v in scope.get("headers", []) if k not in _HANDSHAKE_HEADERS],
        "client": scope.get("client"),
        "server": scope.get("server"),
    }


def build(scope: dict[str, Any], path: str, script_name: str, query: str) -> PageRequest:
    """The page's request for a socket: run on a worker thread (middleware may query)."""
    request = ASGIRequest(http_scope(scope, path, script_name, query), io.BytesIO())
    request.djust_socket = True  # type: ignore[attr-defined]
    request.websocket_scope = scope  # type: ignore[attr-defined]
    prefix = request.script_name or "/"
    with contextlib.ExitStack() as undo:
        previous = get_script_prefix()
        undo.callback(set_script_prefix, previous)
        undo.enter_context(translation.override(translation.get_language()))
        undo.enter_context(timezone.override(timezone.get_current_timezone()))
        set_script_prefix(prefix)
        response = _handler().get_response(request)
    # What Channels' auth middleware gave the socket stands in when the project runs none.
    for name in ("session", "user"):
        if not hasattr(request, name) and name in scope:
            setattr(request, name, scope[name])
    if not isinstance(response, _Reached):
        return PageRequest(request, None, None, None, None, prefix, refused=response)
    language, zone, urlconf = response.djust_state  # type: ignore[attr-defined]
    if hasattr(request, "_messages"):
        request._messages = LiveMessages(request)
    if "CSRF_COOKIE" in request.META:
        # One masked token for the socket's life: an unchanged page renders byte-identical.
        request.djust_csrf_token = get_token(request)  # type: ignore[attr-defined]
    return PageRequest(request, request.resolver_match, language, zone, urlconf, prefix)


def save_session(request: HttpRequest) -> None:
    """Save what a handler put in the session (no response carries it back to a middleware)."""
    session = getattr(request, "session", None)
    if session is not None and getattr(session, "modified", False) and session.session_key:
        session.save()


class LiveMessages(BaseStorage):
    """Django messages for a live session: added in a handler, shown by the next render.

    The page's own storage (a cookie, the session) cannot be written over a socket, so messages
    live with the session; a render that lists them uses them up, as a page load does.
    """

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self._kept: list[Any] = []

    def _get(self, *args: Any, **kwargs: Any) -> tuple[list[Any], bool]:
        return list(self._kept), True

    def _store(self, messages: list[Any], response: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self._kept = list(messages)
        return []

    def rendered(self) -> None:
        """A render finished: drop what it showed, keep what it did not, start afresh."""
        self.update(None)
        self.used = False
        self.added_new = False
        self._queued_messages = []
        self.__dict__.pop("_loaded_data", None)


def rendered(request: HttpRequest) -> None:
    """After each render on the socket: messages that were shown are used up."""
    storage = getattr(request, "_messages", None)
    if isinstance(storage, LiveMessages):
        storage.rendered()
