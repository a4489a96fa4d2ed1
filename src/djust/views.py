"""``LiveView``: a Django view whose state lives on the server for the life of a WebSocket."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from inspect import ismethod
from typing import Any

from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import resolve_url
from django.template import engines, loader
from django.template.backends.base import BaseEngine
from django.utils.functional import cached_property
from django.utils.safestring import mark_safe
from django.views.generic import View

from djust import broadcasts, page, params, tokens
from djust.decorators import is_event_handler

# Names reserved by the framework; a handler that takes one would shadow or call itself.
_FRAMEWORK_MODULE_PREFIX = "djust."


def _check_handlers(cls: type) -> None:
    """Refuse event handlers that shadow a method of LiveView or one of djust's mixins."""
    for name, attr in vars(cls).items():
        if not is_event_handler(attr):
            continue
        for base in cls.__mro__[1:]:
            if base.__module__.startswith(_FRAMEWORK_MODULE_PREFIX) and name in vars(base):
                raise ImproperlyConfigured(
                    f"{cls.__qualname__}.{name} is an @event_handler that shadows "
                    f"{base.__qualname__}.{name}(); calling self.{name}(...) inside it would "
                    f"call the handler itself. Give the handler another name, "
                    f"e.g. '{name.rstrip('_')}_clicked' or 'on_{name}'."
                )
    # Handlers inherited from plain mixins are checked here too, once per class that uses them.
    for klass in cls.__mro__:
        if klass.__module__.startswith(_FRAMEWORK_MODULE_PREFIX):
            continue
        for attr in vars(klass).values():
            if is_event_handler(attr):
                params.check_handler(attr)


class LiveView(View):
    """Subclass, set ``template_name`` (or ``template_string``), write ``mount`` and handlers.

    A ``View``: ``as_view(**initkwargs)``, ``setup()`` and ``dispatch()`` work as for any Django
    class-based view, so auth mixins and dispatch-time checks apply to the page and, with the
    socket's user, again when the socket mounts.
    """

    http_method_names = ["get", "head", "options"]
    template_name: str | None = None
    template_string: str | None = None
    # The page a fragment template is placed in; it must render ``{{ djust_root }}``.
    layout_template: str = "djust/layout.html"
    page_title: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_handlers(cls)
        cls._djust_compiled = None

    # -- what users override ---------------------------------------------------------

    def mount(self, request: HttpRequest, **kwargs: Any) -> None:
        """Set the initial state; runs for the HTTP render and again when the socket mounts."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The template context: the view's public attributes (class and instance), ``kwargs``."""
        parent = getattr(super(), "get_context_data", None)
        context: dict[str, Any] = parent(**kwargs) if parent else {}
        context.update(_class_context(type(self)))
        context.update(
            (k, v) for k, v in vars(self).items() if not k.startswith("_") and not ismethod(v)
        )
        context.setdefault("view", self)
        context.update(kwargs)
        return context

    # -- answering the page ----------------------------------------------------------

    def redirect(self, url: str) -> None:
        """Navigate the browser to ``url`` once the current handler returns."""
        self.__dict__["_djust_redirect"] = resolve_url(url)

    def push_event(self, name: str, payload: dict[str, Any] | None = None) -> None:
        """Fire ``djust:<name>`` on the page's window, with ``payload`` as the event's detail."""
        if not isinstance(name, str) or not name:
            raise ValueError("push_event needs an event name (a non-empty str)")
        try:
            json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"push_event {name!r}: payload is not JSON-serializable") from exc
        self.__dict__.setdefault("_djust_pushed", []).append([name, payload or {}])

    # -- broadcasts ------------------------------------------------------------------

    def subscribe(self, group: str) -> None:
        """Receive broadcasts to ``group`` in ``handle_broadcast`` while the page is live.

        Call it in ``mount`` or in an event handler. On the HTTP render it only takes note;
        the socket joins the group once the view is mounted there, in whichever process.
        """
        self.__dict__.setdefault("_djust_groups", set()).add(broadcasts.check_group(group))

    def unsubscribe(self, group: str) -> None:
        """Stop receiving broadcasts to ``group`` (nothing happens if the view was not in it)."""
        self.__dict__.setdefault("_djust_groups", set()).discard(group)

    def handle_broadcast(self, group: str, event: str, payload: dict[str, Any]) -> None:
        """Called for each broadcast to a subscribed group; the view is re-rendered after it.

        Runs like an event handler: on a worker thread (or the event loop when it is
        ``async def``), never at the same time as another handler of this view.
        """

    # -- rendering -------------------------------------------------------------------

    def get_template(self) -> Any:
        """The compiled template (cached per class for ``template_string``)."""
        if self.template_string is not None:
            cls = type(self)
            if cls._djust_compiled is None:
                engine: BaseEngine = engines.all()[0]
                cls._djust_compiled = engine.from_string(self.template_string)
            return cls._djust_compiled
        if not self.template_name:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} needs a template_name or a template_string"
            )
        return loader.get_template(self.template_name)

    def render_template(self, request: HttpRequest | None = None) -> str:
        """The template rendered with the current state."""
        context = self.get_context_data()
        csrf_token = getattr(request, "djust_csrf_token", None)
        if csrf_token is not None:
            context.setdefault("csrf_token", csrf_token)
        return self.get_template().render(context, request)

    def render_live(self, request: HttpRequest | None = None) -> str:
        """The HTML of the live region (what the client morphs)."""
        return page.live_region(self.render_template(request))

    def render_page(self, request: HttpRequest, token: str) -> str:
        """The whole page for the HTTP response, with the root element and the client script."""
        from djust.templatetags.djust import scripts_html

        html = self.render_template(request)
        parts = page.split(html)
        if parts is None:
            layout = loader.get_template(self.layout_template)
            context = {"djust_root": mark_safe(page.root(html, token)), "title": self.page_title}
            return layout.render(context, request)
        before, live, after = parts
        if "djust/djust.js" not in html:
            after = scripts_html() + after
        return before + page.root(live, token) + after

    # -- HTTP entry point ------------------------------------------------------------

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Mount and render the page; over the socket, only say that dispatch let it through."""
        if getattr(request, "djust_socket", False):
            return DISPATCHED
        result = call(self.mount, request, **kwargs)
        if isinstance(result, HttpResponseBase):
            return result
        # Forms rendered later over the socket need the CSRF cookie even if this page has none.
        get_token(request)
        token = tokens.dumps(
            type(self),
            request.path,
            request.META.get("QUERY_STRING", ""),
            kwargs,
            tokens.user_key(getattr(request, "user", None)),
            request.META.get("SCRIPT_NAME", ""),
        )
        return HttpResponse(self.render_page(request, token))


class _Dispatched(HttpResponse):
    """What ``get`` answers on the socket: every dispatch-time check passed."""


DISPATCHED = _Dispatched()


def _class_context(cls: type) -> dict[str, Any]:
    """Public data attributes of the user's classes (not of djust's or Django's own)."""
    context: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith(("djust.", "django.")) or klass is object:
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or callable(value) or isinstance(value, _DESCRIPTORS):
                continue
            context[name] = value
    return context


_DESCRIPTORS = (property, cached_property, classmethod, staticmethod)


def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a user method from sync code, whether it is sync or ``async def``."""
    if inspect.iscoroutinefunction(func):
        return async_to_sync(func)(*args, **kwargs)
    return func(*args, **kwargs)
