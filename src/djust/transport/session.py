"""The live session: one mounted view per WebSocket, fed decoded messages by the consumer."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import close_old_connections
from django.http import Http404
from django.http.response import HttpResponseBase
from django.utils.module_loading import import_string

from djust import auth, broadcasts, conf, params, strings, tokens
from djust.decorators import is_event_handler
from djust.errors import (
    AccessDenied,
    BadToken,
    DjustError,
    HandlerError,
    MountError,
    NotMounted,
    ProtocolError,
    UnknownEvent,
)
from djust.transport import protocol, servers, threads
from djust.transport import request as page_request
from djust.transport.extension import Extension
from djust.views import DISPATCHED, LiveView

logger = logging.getLogger("djust")

Send = Callable[[str | bytes], Awaitable[None]]

# While a call of the view runs (a handler, a hook), the page is told so this often, in seconds:
# its liveness check gives a silent socket up after 15 s (docs/uploads.md, "Liveness").
BUSY_EVERY = 1.0


def _in_thread(
    activate: Callable[[], contextlib.AbstractContextManager[Any]],
    func: Callable[..., Any],
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    # Channels' rule for long-lived connections: drop database connections before and after
    # each call, so that an idle page holds none.
    close_old_connections()
    try:
        with activate():
            return func(*args, **kwargs)
    finally:
        close_old_connections()


def _dispatch(view: LiveView, request: Any, kwargs: dict[str, Any]) -> HttpResponseBase:
    view.setup(request, **kwargs)
    return view.dispatch(request, **kwargs)


def _render(view: LiveView, request: Any) -> str:
    html = view.render_live(request)
    page_request.rendered(request)  # messages it showed are used up
    page_request.save_session(request)  # what handlers put in the session
    return html


def _redirect_url(response: HttpResponseBase, event: str) -> str:
    url = getattr(response, "url", None)
    if url is None:
        raise HandlerError(
            f"{event} returned a {type(response).__name__}: a handler returns None or a redirect"
        )
    return url


class LiveSession:
    """Mounts a view from its token, dispatches events, sends re-rendered HTML when it changed."""

    def __init__(
        self,
        scope: dict[str, Any],
        send: Send,
        hang_up: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.scope = scope
        self._send = send
        self._hang_up = hang_up
        self.auth_watch: Any = None
        self.view: LiveView | None = None
        self.request: Any = None
        self.page: page_request.PageRequest | None = None
        self.extensions: list[Extension] = []  # what the view added (djust_extensions)
        self.frames: Extension | None = None  # the one that takes binary frames
        self._html: str | None = None
        self._call: Future[Any] | None = None  # the last blocking call, maybe still running
        self._max_text = conf.get("MAX_TEXT_SIZE")
        # Held while a message is handled; work started by the upload writer threads takes it
        # too, so that it never interleaves with an event handler.
        self.lock = asyncio.Lock()
        self.closed = False
        self.subscriptions: broadcasts.Subscriptions | None = None

    # -- sending ---------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        if not self.closed:
            await self._send(protocol.encode(message))

    async def send_error(self, error: DjustError, *, id: Any = None, **extra: Any) -> None:
        message = {"t": "error", "code": error.code, "message": error.message, **extra}
        if isinstance(id, int) and not isinstance(id, bool):
            message["id"] = id
        await self.send(message)

    async def end(self, error: DjustError, close_code: int = protocol.CLOSE_SESSION_ENDED) -> None:
        """Tell the client why, then close the socket: the page reloads over HTTP."""
        await self.send_error(error)
        if self._hang_up is not None:
            # Hang up first: the cleanup below may wait on the channel layer.
            await self._hang_up(close_code)
        await self.close()

    # -- blocking work ---------------------------------------------------------------

    async def run_sync(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run blocking code (user handlers, ORM, templates) on a thread of the shared pool.

        The thread is borrowed for this call only (an idle page holds none: docs/deployment.md).
        A session's calls never overlap: its callers hold ``lock``, and a call whose caller was
        cancelled is waited for before the next one starts.
        """
        previous = self._call
        if previous is not None and not previous.done():
            await threads.ended(previous)
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        context.run(broadcasts.session_loop.set, loop)  # broadcast() from a handler sends here
        call = functools.partial(context.run, _in_thread, self.activate, func, *args, **kwargs)
        self._call = threads.shared().submit(call)
        return await self._busy(asyncio.wrap_future(self._call))

    async def _busy(self, running: asyncio.Future[Any]) -> Any:
        """``running``'s result. The socket is read one message at a time, so a ping waits
        behind it: while it runs, the page hears from the server every BUSY_EVERY seconds."""
        try:
            while True:
                done, _ = await asyncio.wait({running}, timeout=BUSY_EVERY)
                if done:
                    return running.result()
                await self.send({"t": "busy"})
        except asyncio.CancelledError:
            running.cancel()  # a call that has not started never does
            raise

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """What the page's middleware activated: language, time zone, URLconf, script prefix."""
        return self.page.activate() if self.page is not None else contextlib.nullcontext()

    async def check_user(self) -> None:
        """End the session if the page's login ended (for messages that act for the user)."""
        await auth.check(self)

    async def call_user(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call a view method: coroutines on the event loop, plain functions on the thread."""
        if inspect.iscoroutinefunction(func):
            with self.activate():
                return await self._busy(asyncio.ensure_future(func(*args, **kwargs)))
        return await self.run_sync(func, *args, **kwargs)

    # -- incoming --------------------------------------------------------------------

    async def receive_text(self, text: str) -> None:
        async with self.lock:
            await self._receive_text(text)

    async def _receive_text(self, text: str) -> None:
        message_id = None
        try:
            message = protocol.decode_text(text, max_size=self._max_text)
            message_id = message.get("id")
            await self._route(message)
        except DjustError as error:
            if message_id is None and len(text) <= self._max_text:
                message_id = protocol.request_id(text)  # a refused request still gets its id
            await self.send_error(error, id=message_id)

    async def _route(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        own = getattr(self, f"_on_{kind}", None)
        if own is not None:
            await own(message)
            return
        self._mounted()
        for extension in self.extensions:
            method = extension.messages.get(kind)
            if method is not None:
                await getattr(extension, method)(message)
                return
        answer = protocol.NOT_TAKEN.get(kind)
        if answer is not None:
            error, text = answer
            raise error(text.format(**message))

    def expects(self, frame: bytes) -> bool:
        """Whether a binary frame is one the view's extensions want (see the consumer)."""
        return self.frames is not None and self.frames.expects(frame)

    async def receive_bytes(self, data: bytes) -> None:
        # Most frames are chunks of an upload in full flow: taken without a task switch, unless
        # a handler holds the lock (it may be reading the entries on the session's thread).
        if not self.lock.locked() and self.frames is not None:
            try:
                chunk = protocol.decode_frame(data)
            except DjustError:
                pass  # _receive_bytes reports it
            else:
                if self.frames.take_frame(chunk):
                    return
        async with self.lock:
            await self._receive_bytes(data)

    async def _receive_bytes(self, data: bytes) -> None:
        try:
            chunk = protocol.decode_frame(data)
            if self.frames is None:
                raise NotMounted("binary frames need a mounted view with upload slots")
        except DjustError as error:
            await self.send_error(error)
            return
        await self.frames.receive_frame(chunk)

    async def _on_ping(self, message: dict[str, Any]) -> None:
        await self.send({"t": "pong", "id": message["id"]})

    async def _on_mount(self, message: dict[str, Any]) -> None:
        if self.view is not None:
            raise ProtocolError("the view is already mounted on this connection")
        token = tokens.loads(message["token"])
        cls = tokens.view_class(token, LiveView)
        # The project's middleware runs as for the page's GET (it may query: off the loop).
        page = await self.run_sync(
            page_request.build, self.scope, token.path, token.script_name, token.query
        )
        if page.refused is not None:
            raise AccessDenied(
                f"the site answered {page.refused.status_code} to this page; reload it"
            )
        self.page, request = page, page.request
        user = await self.run_sync(tokens.user_key, getattr(request, "user", None))
        if user != token.user:
            raise BadToken("the view token was issued to another user; reload the page")
        match = page.match
        if match is not None and getattr(match.func, "view_class", None) is cls:
            # The URLconf's view: its as_view() initkwargs, its converters' typed kwargs.
            initkwargs, kwargs = match.func.view_initkwargs, dict(match.kwargs)
        else:
            initkwargs, kwargs = {}, token.kwargs
        try:
            view = cls(**initkwargs)
            # The same dispatch() as the page's GET: mixins check the socket's user.
            response = await self.run_sync(_dispatch, view, request, kwargs)
            if response is not DISPATCHED:
                raise AccessDenied(
                    f"{cls.__qualname__} refused this visitor ({response.status_code}); "
                    "reload the page"
                )
            result = await self.call_user(view.mount, request, **kwargs)
            if isinstance(result, HttpResponseBase):
                await self._navigate(result)
                return
            html = await self._render(view)
        except PermissionDenied as exc:
            raise AccessDenied(f"{cls.__qualname__} refused this visitor; reload the page") from exc
        except Http404 as exc:
            raise AccessDenied("the page is gone; reload it") from exc
        except DjustError:
            raise
        except Exception as exc:
            logger.exception("mounting %s failed", token.view)
            raise MountError(self.describe(exc, f"mounting {cls.__qualname__} failed")) from exc
        self.view, self.request, self._html = view, request, html
        try:
            await self._update_subscriptions()
        except HandlerError as error:
            self.view = None
            raise MountError(error.message) from error
        self.auth_watch = await auth.watch(self)
        for path in getattr(view, "djust_extensions", ()):
            extension = import_string(path)(self, view)
            self.extensions.append(extension)
            if extension.frames:
                self.frames = extension
        texts = await self.run_sync(strings.client_strings)  # in the page's language
        mounted = {"t": "mounted", "v": protocol.VERSION, "html": html, "strings": texts}
        mounted.update(servers.mount_notices(message.get("deflate") is True))
        await self.send({**mounted, **self._extras()})
        await self.answer(view)

    async def _on_event(self, message: dict[str, Any]) -> None:
        view = self._mounted()
        await auth.check(self)
        handler = self._handler(view, message["name"])
        with self.activate():  # dates and times are read in the page's time zone
            kwargs = params.bind(handler, message["params"])
        try:
            result = await self.call_user(handler, **kwargs)
            if isinstance(result, HttpResponseBase):
                view.redirect(_redirect_url(result, message["name"]))
        except DjustError:
            await self.rerender()
            raise
        except Exception as exc:
            logger.exception("event %s of %s raised", message["name"], type(view).__qualname__)
            await self.rerender()
            raise HandlerError(self.describe(exc, f"{message['name']} failed")) from exc
        finally:
            # An exception in flight: the handler failed (its consume loops keep their entry).
            await self.after_event(failed=sys.exc_info()[0] is not None)
            await self._update_subscriptions()
        html = await self._render(view)
        reply: dict[str, Any] = {"t": "reply", "id": message["id"]}
        if html != self._html:
            self._html = reply["html"] = html
            reply.update(self._extras())
        await self.send(reply)
        await self.answer(view)

    async def after_event(self, failed: bool = False) -> None:
        """A handler, hook or broadcast ran: the extensions settle what it left behind."""
        for extension in self.extensions:
            await extension.after_event(failed=failed)

    # -- broadcasts ------------------------------------------------------------------

    async def _update_subscriptions(self) -> None:
        """Make the socket's group memberships follow the view's ``subscribe`` calls."""
        wanted = set(getattr(self.view, "_djust_groups", ()))
        if self.subscriptions is None:
            if not wanted:
                return
            self.subscriptions = broadcasts.Subscriptions(self._on_broadcast)
        try:
            await self.subscriptions.update(wanted)
        except ImproperlyConfigured as exc:
            raise HandlerError(str(exc)) from exc
        except Exception as exc:
            logger.exception("joining broadcast groups %s failed", sorted(wanted))
            raise HandlerError(self.describe(exc, "cannot join the broadcast groups")) from exc

    async def _on_broadcast(self, message: dict[str, Any]) -> None:
        async with self.lock:
            view = self.view
            if self.closed or view is None:
                return
            event = str(message["event"])
            failed = False
            try:
                await self.call_user(
                    view.handle_broadcast, message["group"], event, message["payload"]
                )
            except Exception as exc:
                failed = True
                logger.exception("broadcast %s to %s raised", event, type(view).__qualname__)
                error = HandlerError(self.describe(exc, f"broadcast {event} failed"))
                await self.send_error(error)
            finally:
                await self.after_event(failed=failed)
            try:
                await self._update_subscriptions()
            except DjustError as error:
                await self.send_error(error)
            await self.rerender()
            await self.answer(view)

    # -- rendering -------------------------------------------------------------------

    async def rerender(self) -> None:
        """Render and send the HTML if it changed (for state changes not tied to an event)."""
        if self.view is None or self.closed:
            return
        try:
            html = await self._render(self.view)
        except Exception as exc:
            logger.exception("re-rendering %s failed", type(self.view).__qualname__)
            await self.send_error(HandlerError(self.describe(exc, "re-rendering failed")))
            return
        if html != self._html:
            self._html = html
            await self.send({"t": "render", "html": html, **self._extras()})

    async def _render(self, view: LiveView) -> str:
        return await self.run_sync(_render, view, self.page.request)

    async def answer(self, view: LiveView) -> None:
        """Send what the last call asked for besides HTML: pushed events, then a redirect."""
        for name, payload in view.__dict__.pop("_djust_pushed", ()):
            await self.send({"t": "push_event", "name": name, "payload": payload})
        url = view.__dict__.pop("_djust_redirect", None)
        if url is not None:
            await self.send({"t": "redirect", "url": url})

    async def _navigate(self, response: HttpResponseBase) -> None:
        """``mount`` answered with a response: a redirect navigates, anything else refuses."""
        url = getattr(response, "url", None)
        if url is None:
            raise AccessDenied(f"mount answered {response.status_code}; reload the page")
        await self.send({"t": "redirect", "url": url})

    def _extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        for extension in self.extensions:
            extras.update(extension.extras())
        return extras

    # -- helpers ---------------------------------------------------------------------

    def _mounted(self) -> LiveView:
        if self.view is None:
            raise NotMounted("send a mount message first")
        return self.view

    @staticmethod
    def _handler(view: LiveView, name: str) -> Callable[..., Any]:
        func = getattr(type(view), name, None) if name.isidentifier() else None
        if name.startswith("_") or not is_event_handler(func):
            raise UnknownEvent(f"{type(view).__qualname__} has no event handler {name[:80]!r}")
        return func.__get__(view)  # type: ignore[union-attr]

    @staticmethod
    def describe(exc: BaseException, summary: str) -> str:
        if settings.DEBUG:
            return f"{summary}: {exc!r}\n{''.join(traceback.format_exception(exc))}"
        return summary

    async def close(self) -> None:
        """The socket is gone: the extensions close with it (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self.auth_watch is not None:
            await self.auth_watch.close()
        if self.subscriptions is not None:
            await self.subscriptions.close()
        for extension in self.extensions:
            await extension.close()
