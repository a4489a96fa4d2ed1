"""Broadcasts: server-side messages to every live view subscribed to a group, in any process.

A view subscribes in ``mount`` (``self.subscribe("gallery")``); anything (an event handler,
another process's view, a management command, a task queue worker) calls
``broadcast("gallery", "published", name=...)``; each subscribed view's ``handle_broadcast``
runs and the view is re-rendered. Messages travel over Channels' channel layer: the in-memory
layer within one process, ``channels_redis`` across several workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("djust")

MESSAGE_TYPE = "djust.broadcast"
GROUP_PREFIX = "djust."
# Channels' group names: ASCII letters, digits, hyphens, underscores and periods, < 100 long.
_GROUP = re.compile(r"[A-Za-z0-9_.\-]{1,80}")
# How often a live view renews its memberships: channels_redis forgets a group member after its
# ``group_expiry`` (a day by default), and a page can stay open longer than that.
RENEW_EVERY = 3600.0
# While the layer's server is unreachable, a view tries again after 0.5 s, 1 s, 2 s ... 30 s.
RETRY_FIRST, RETRY_MAX = 0.5, 30.0
# How often a process asks the layer's Redis servers who they are (one INFO each): a server
# restarted between two reads of a member has forgotten its groups without any read failing.
CHECK_EVERY = 5.0

# The event loop of the djust session whose thread runs the current handler (see broadcast()).
session_loop: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "djust_session_loop", default=None
)


def check_group(group: Any) -> str:
    """``group`` if it is a valid group name; ``ValueError`` (``TypeError``) saying why not."""
    if not isinstance(group, str):
        raise TypeError(f"a broadcast group is a str, not {type(group).__name__}")
    if not _GROUP.fullmatch(group):
        raise ValueError(
            f"invalid broadcast group {group[:100]!r}: use 1 to 80 ASCII letters, digits, "
            "hyphens, underscores or periods"
        )
    return group


def layer() -> Any:
    """The default channel layer; ``ImproperlyConfigured`` when the project has none."""
    channel_layer = get_channel_layer()
    if channel_layer is None:
        raise ImproperlyConfigured(
            "djust broadcasts need a channel layer: set CHANNEL_LAYERS, e.g. "
            "channels.layers.InMemoryChannelLayer for one process or "
            "channels_redis.core.RedisChannelLayer for several"
        )
    return channel_layer


def _message(group: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    check_group(group)
    if not isinstance(event, str) or not event:
        raise ValueError("a broadcast needs an event name (a non-empty str)")
    try:
        # The Redis layer serializes messages; checking here makes the in-memory layer of
        # development refuse what production would.
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"broadcast {event!r}: payload is not JSON-serializable: {exc}") from exc
    return {"type": MESSAGE_TYPE, "group": group, "event": event, "payload": payload}


def idle_timeout(exc: BaseException) -> bool:
    """Whether a layer's ``receive`` failed by timing out (redis-py has its own TimeoutError)."""
    return isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError"


async def abroadcast(group: str, event: str, /, **payload: Any) -> None:
    """Send ``event`` with ``payload`` to every live view subscribed to ``group``."""
    message = _message(group, event, payload)
    await layer().group_send(GROUP_PREFIX + group, message)


def broadcast(group: str, event: str, /, **payload: Any) -> None:
    """``abroadcast`` for synchronous code: view handlers, Django views, commands, tasks."""
    message = _message(group, event, payload)
    channel_layer = layer()
    send = channel_layer.group_send(GROUP_PREFIX + group, message)
    loop = session_loop.get()
    if loop is not None and loop.is_running():
        # A djust handler on its session's thread: send on the server's own loop, where the
        # in-memory layer's queues live.
        asyncio.run_coroutine_threadsafe(send, loop).result()
    else:
        async_to_sync(_await)(send)


async def _await(work: Awaitable[None]) -> None:
    await work


async def server_identity(channel_layer: Any) -> tuple[str, ...] | None:
    """The run ids of the Redis servers behind a channels_redis layer (``None`` for another
    layer): a restarted server has a new one, and has forgotten every group."""
    connection = getattr(channel_layer, "connection", None)
    size = getattr(channel_layer, "ring_size", None)
    if not callable(connection) or not isinstance(size, int):
        return None
    ids = []
    for index in range(size):
        info = await connection(index).info("server")
        ids.append(str(info.get("run_id", "")))
    return tuple(ids)


class Member(Protocol):
    def server_restarted(self) -> None: ...


class Restarts:
    """Per event loop and layer: notices that the layer's server restarted, and tells every
    member (a view's subscriptions, the login watcher) to join its groups again.

    A member's own reads fail when the server goes away while one is waiting, and it recovers by
    itself; but a restart between two reads goes unnoticed by them (redis-py reconnects).
    """

    _all: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Restarts]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def watch(cls, channel_layer: Any, member: Member) -> None:
        loop = asyncio.get_running_loop()
        watchers = cls._all.setdefault(loop, {})
        watcher = watchers.get(id(channel_layer))
        if watcher is None or watcher.layer is not channel_layer:
            watcher = watchers[id(channel_layer)] = cls(channel_layer)
        watcher.members.add(member)
        if watcher.task is None or watcher.task.done():
            watcher.task = loop.create_task(watcher._run())

    def __init__(self, channel_layer: Any) -> None:
        self.layer = channel_layer
        self.members: weakref.WeakSet[Member] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None
        self.known: tuple[str, ...] | None = None

    async def _run(self) -> None:
        while self.members:
            try:
                now = await asyncio.wait_for(server_identity(self.layer), CHECK_EVERY)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Unreachable now: the members' reads fail and recover by themselves.
                await asyncio.sleep(CHECK_EVERY)
                continue
            if now is None:
                return  # not a Redis layer
            if self.known is not None and now != self.known:
                logger.warning("djust: the channel layer's server restarted; joining groups again")
                for member in list(self.members):
                    member.server_restarted()
            self.known = now
            await asyncio.sleep(CHECK_EVERY)


class Subscriptions:
    """One live view's memberships: a channel of its own, its groups, and a listening task."""

    def __init__(self, deliver: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._deliver = deliver
        self._layer: Any = None
        self.channel: str | None = None
        self.groups: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def update(self, wanted: set[str]) -> None:
        """Join the groups in ``wanted`` that are new and leave the ones no longer in it."""
        if wanted == self.groups:
            return
        if self._layer is None:
            self._layer = layer()
            self.channel = await self._layer.new_channel(prefix="djust")
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._listen()), loop.create_task(self._renew())]
            Restarts.watch(self._layer, self)
        for group in sorted(wanted - self.groups):
            await self._layer.group_add(GROUP_PREFIX + group, self.channel)
            self.groups.add(group)
        for group in sorted(self.groups - wanted):
            self.groups.discard(group)
            await self._layer.group_discard(GROUP_PREFIX + group, self.channel)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                message = await self._layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if idle_timeout(exc) and loop.time() - started > 1.0:
                    # A read that waited long and gave up (channels_redis on redis-py 8 does so
                    # every few seconds): the server is there and remembers the groups.
                    continue
                # The layer's server went away: the page keeps working without broadcasts.
                logger.warning("djust: broadcasts to %s stopped: %r", self.channel, exc)
                await self._recover()
                logger.info("djust: broadcasts to %s resumed", self.channel)
                continue
            if message.get("type") == MESSAGE_TYPE and message.get("group") in self.groups:
                try:
                    await self._deliver(message)
                except Exception:
                    logger.exception("djust: delivering a broadcast on %s failed", self.channel)

    def server_restarted(self) -> None:
        if not self._tasks:
            return  # closed: the socket is gone
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.get_running_loop().create_task(self._recover()))

    async def _recover(self) -> None:
        """Wait until the layer answers again, then join the groups again (a restarted Redis
        has forgotten them); retry after 0.5 s, 1 s, 2 s ... up to 30 s."""
        delay = RETRY_FIRST
        while True:
            await asyncio.sleep(delay)
            try:
                await self._join(self.groups)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = min(delay * 2, RETRY_MAX)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            try:
                await self._join(self.groups)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("djust: renewing the groups of %s failed: %r", self.channel, exc)

    async def _join(self, groups: set[str]) -> None:
        for group in sorted(groups):
            await self._layer.group_add(GROUP_PREFIX + group, self.channel)

    async def close(self) -> None:
        """Stop listening and leave every group (the socket is gone)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        groups, self.groups = self.groups, set()
        for group in groups:
            try:
                await self._layer.group_discard(GROUP_PREFIX + group, self.channel)
            except Exception:
                logger.exception("djust: leaving %s failed", group)
