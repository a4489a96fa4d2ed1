"""The live session: one mounted view per WebSocket, fed decoded messages by the consumer."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connections
from django.urls import Resolver404, resolve

from djust import broadcasts, conf, params, tokens
from djust.decorators import is_event_handler
from djust.errors import (
    BadToken,
    DjustError,
    HandlerError,
    MountError,
    NotMounted,
    ProtocolError,
    UnknownEvent,
    UnknownSlot,
)
from djust.transport import protocol
from djust.transport.request import from_scope
from djust.views import LiveView

logger = logging.getLogger("djust")

Send = Callable[[str | bytes], Awaitable[None]]


def _in_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    # A long-lived thread must drop database connections that went stale between events.
    close_old_connections()
    return func(*args, **kwargs)


class LiveSession:
    """Mounts a view from its token, dispatches events, sends re-rendered HTML when it changed."""

    def __init__(self, scope: dict[str, Any], send: Send) -> None:
        self.scope = scope
        self._send = send
        self.view: LiveView | None = None
        self.request: Any = None
        self.uploads: Any = None
        self._html: str | None = None
        self._executor: ThreadPoolExecutor | None = None
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

    # -- blocking work ---------------------------------------------------------------

    async def run_sync(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run blocking code (user handlers, ORM, templates) on this session's own thread.

        One thread per session keeps a view's calls in order and its database connection
        in one place, and a slow handler stalls only its own connection.
        """
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="djust-session")
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        context.run(broadcasts.session_loop.set, loop)  # broadcast() from a handler sends here
        call = functools.partial(context.run, _in_thread, func, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    async def call_user(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call a view method: coroutines on the event loop, plain functions on the thread."""
        if inspect.iscoroutinefunction(func):
            return await func(*args, **kwargs)
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
            await getattr(self, f"_on_{message['t']}")(message)
        except DjustError as error:
            if message_id is None and len(text) <= self._max_text:
                message_id = protocol.request_id(text)  # a refused request still gets its id
            await self.send_error(error, id=message_id)

    async def receive_bytes(self, data: bytes) -> None:
        # Most frames are chunks of an upload in full flow: taken without a task switch, unless
        # a handler holds the lock (it may be reading the entries on the session's thread).
        if not self.lock.locked() and self.uploads is not None:
            try:
                chunk = protocol.decode_frame(data)
            except DjustError:
                pass  # _receive_bytes reports it
            else:
                if self.uploads.take_chunk(chunk):
                    return
        async with self.lock:
            await self._receive_bytes(data)

    async def _receive_bytes(self, data: bytes) -> None:
        try:
            chunk = protocol.decode_frame(data)
            if self.uploads is None:
                raise NotMounted("binary frames need a mounted view with upload slots")
        except DjustError as error:
            await self.send_error(error)
            return
        await self.uploads.receive_chunk(chunk)

    async def _on_ping(self, message: dict[str, Any]) -> None:
        await self.send({"t": "pong", "id": message["id"]})

    async def _on_mount(self, message: dict[str, Any]) -> None:
        if self.view is not None:
            raise ProtocolError("the view is already mounted on this connection")
        token = tokens.loads(message["token"])
        cls = tokens.view_class(token)
        request = from_scope(self.scope, token.path, token.query)
        kwargs = self._url_kwargs(cls, token)
        # Resolving the lazy user touches the database: off the event loop.
        user = await self.run_sync(tokens.user_key, getattr(request, "user", None))
        if user != token.user:
            raise BadToken("the view token was issued to another user; reload the page")
        view = cls()
        view.request = request
        try:
            await self.call_user(view.mount, request, **kwargs)
            html = await self.run_sync(view.render_live, request)
        except DjustError:
            raise
        except Exception as exc:
            logger.exception("mounting %s failed", token.view)
            raise MountError(self._describe(exc, f"mounting {cls.__qualname__} failed")) from exc
        self.view, self.request, self._html = view, request, html
        try:
            await self._update_subscriptions()
        except HandlerError as error:
            self.view = None
            raise MountError(error.message) from error
        from djust.uploads.mixin import UploadMixin

        if isinstance(view, UploadMixin):
            from djust.uploads.channel import UploadChannel

            self.uploads = UploadChannel(self, view)
        await self.send({"t": "mounted", "v": protocol.VERSION, "html": html, **self._extras()})

    async def _on_event(self, message: dict[str, Any]) -> None:
        view = self._mounted()
        handler = self._handler(view, message["name"])
        kwargs = params.bind(handler, message["params"])
        try:
            if inspect.iscoroutinefunction(handler):
                await handler(**kwargs)
            else:
                await self.run_sync(handler, **kwargs)
        except DjustError:
            await self.rerender()
            raise
        except Exception as exc:
            logger.exception("event %s of %s raised", message["name"], type(view).__qualname__)
            await self.rerender()
            raise HandlerError(self._describe(exc, f"{message['name']} failed")) from exc
        finally:
            if self.uploads is not None:
                await self.uploads.after_event()
            await self._update_subscriptions()
        html = await self.run_sync(view.render_live, self.request)
        reply: dict[str, Any] = {"t": "reply", "id": message["id"]}
        if html != self._html:
            self._html = reply["html"] = html
            reply.update(self._extras())
        await self.send(reply)

    async def _on_upload_register(self, message: dict[str, Any]) -> None:
        self._mounted()
        if self.uploads is None:
            raise UnknownSlot(f"this view has no upload slot {message['name']!r}")
        await self.uploads.register(message)

    async def _on_upload_cancel(self, message: dict[str, Any]) -> None:
        self._mounted()
        if self.uploads is not None:
            await self.uploads.cancel_from_client(message["ref"])

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
            raise HandlerError(self._describe(exc, "cannot join the broadcast groups")) from exc

    async def _on_broadcast(self, message: dict[str, Any]) -> None:
        async with self.lock:
            view = self.view
            if self.closed or view is None:
                return
            event = str(message["event"])
            try:
                await self.call_user(
                    view.handle_broadcast, message["group"], event, message["payload"]
                )
            except Exception as exc:
                logger.exception("broadcast %s to %s raised", event, type(view).__qualname__)
                error = HandlerError(self._describe(exc, f"broadcast {event} failed"))
                await self.send_error(error)
            finally:
                if self.uploads is not None:
                    await self.uploads.after_event()
            try:
                await self._update_subscriptions()
            except DjustError as error:
                await self.send_error(error)
            await self.rerender()

    # -- rendering -------------------------------------------------------------------

    async def rerender(self) -> None:
        """Render and send the HTML if it changed (for state changes not tied to an event)."""
        if self.view is None or self.closed:
            return
        try:
            html = await self.run_sync(self.view.render_live, self.request)
        except Exception as exc:
            logger.exception("re-rendering %s failed", type(self.view).__qualname__)
            await self.send_error(HandlerError(self._describe(exc, "re-rendering failed")))
            return
        if html != self._html:
            self._html = html
            await self.send({"t": "render", "html": html, **self._extras()})

    def _extras(self) -> dict[str, Any]:
        if self.uploads is None:
            return {}
        return {"uploads": self.uploads.configs(), **self.uploads.limits()}

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
    def _url_kwargs(cls: type, token: tokens.ViewToken) -> dict[str, Any]:
        # Resolving again restores converter types (int, UUID) that the token stored as text.
        try:
            match = resolve(token.path)
        except Resolver404:
            return token.kwargs
        if getattr(match.func, "view_class", None) is cls:
            return dict(match.kwargs)
        return token.kwargs

    @staticmethod
    def _describe(exc: BaseException, summary: str) -> str:
        if settings.DEBUG:
            return f"{summary}: {exc!r}\n{''.join(traceback.format_exception(exc))}"
        return summary

    async def close(self) -> None:
        """The socket is gone: drop uploads and their files, release the thread (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self.subscriptions is not None:
            await self.subscriptions.close()
        if self.uploads is not None:
            await self.uploads.close()
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(executor, connections.close_all)
            executor.shutdown(wait=False)
