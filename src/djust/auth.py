"""Live sessions end with the login that opened them: logout, a flushed session, a new password.

A page mounted for a signed-in user is checked the way Django checks every HTTP request: before
each event and upload registration its session is loaded afresh from the session engine and
``django.contrib.auth.get_user`` must still find the same user (the session exists, its auth hash
matches the password, the backend still accepts the user, e.g. ``is_active``).

Between events nothing would run that check, so ``user_logged_out`` and any save of a user
notify that user's pages over the channel layer (every worker) and they check at once. A page
whose login is gone receives ``session_ended`` and its socket closes with 4401; the client then
reloads the page over HTTP, which shows whatever Django shows a logged-out visitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_save
from django.http import HttpRequest

from djust import broadcasts, tokens
from djust.errors import HandlerError, SessionEnded

logger = logging.getLogger("djust")

MESSAGE_TYPE = "djust.auth"
# Not "djust.": broadcast groups are "djust." + any name a view picks, and must not collide.
GROUP_PREFIX = "djust-auth."
_SAFE_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")
# After a logout of its session, a page ends once the session is gone from the engine, checking
# again after these pauses; then it ends anyway (see ``_Watch._follow``).
LOGOUT_RECHECKS = (0.05, 0.1, 0.2, 0.4, 0.8)
# A layer call that hangs (an unreachable Redis) must not hold up a mount.
LAYER_TIMEOUT = 5.0


# -- the check ----------------------------------------------------------------------


class _ProbeSession(dict):  # type: ignore[type-arg]
    """A session's data for ``get_user`` to read; what it would write is dropped.

    ``get_user`` flushes a session whose auth hash fails and rotates the key of one signed with
    a fallback secret: done here, the browser's cookie would point to a deleted session. The
    next HTTP request does it, with a response that can set the new cookie.
    """

    def flush(self) -> None:
        self.clear()

    def cycle_key(self) -> None:
        pass


def still_logged_in(session_key: str, user_key: str) -> bool:
    """Whether the session ``session_key`` still logs in the user ``user_key`` (blocking)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    probe = HttpRequest()
    probe.session = _ProbeSession(store.items())  # type: ignore[assignment]
    return tokens.user_key(get_user(probe)) == user_key


async def check(session: Any) -> None:
    """End the session and raise ``SessionEnded`` when the session's login is no longer valid."""
    watch = session.auth_watch
    if watch is None:
        return
    try:
        valid = await session.run_sync(still_logged_in, watch.key, watch.user)
    except Exception as exc:
        # Fail closed: an event whose login cannot be verified (database down) is not run.
        logger.exception("djust: checking the login of a live page failed")
        raise HandlerError("cannot verify your login; try again") from exc
    if valid:
        return
    error = _ended()
    await session.end(error)
    raise error  # the event is not run; its error reply is dropped on the closed session


def _ended() -> SessionEnded:
    return SessionEnded("you are no longer logged in as the user this page was opened for")


# -- watching -----------------------------------------------------------------------


def group_for(user_key: str) -> str:
    """The channel-layer group of the user ``user_key``'s pages."""
    if _SAFE_KEY.fullmatch(user_key):
        return f"{GROUP_PREFIX}u.{user_key}"
    # Any other primary key (an e-mail address, a long string) is not a valid group name.
    return f"{GROUP_PREFIX}h.{hashlib.sha256(user_key.encode()).hexdigest()[:40]}"


def _digest(session_key: str) -> str:
    # Messages name a logged-out session by digest: a live key never sits in Redis.
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def _shared_layer() -> Any:
    """The channel layer if it reaches other processes; None to deliver within this one."""
    channel_layer = get_channel_layer()
    # The in-memory layer reaches this process only, and its queues belong to one event loop:
    # delivering directly is the same reach, and safe from any thread.
    return None if isinstance(channel_layer, InMemoryChannelLayer) else channel_layer


def _identity(request: Any) -> tuple[str, str | None]:
    session = getattr(request, "session", None)
    return tokens.user_key(getattr(request, "user", None)), getattr(session, "session_key", None)


async def watch(session: Any) -> _Watch | None:
    """Start watching the user of a freshly mounted ``session``; None for anonymous pages."""
    user, key = await session.run_sync(_identity, session.request)
    if not user or not key:
        # Anonymous, or a login that no session carries: nothing a logout could end.
        return None
    watched = _Watch(session, user, key)
    await watched.start()
    return watched


class _Watch:
    """One signed-in page: which user and session it is for, and the check a message starts."""

    def __init__(self, session: Any, user: str, key: str) -> None:
        self.session = session
        self.user = user
        self.key = key
        self.group = group_for(user)
        self.digest = _digest(key)
        self._hub: _Hub | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._logged_out = False

    async def start(self) -> None:
        self._hub = _Hub.of(asyncio.get_running_loop())
        await self._hub.add(self)

    def notify(self, logged_out: str | None) -> None:
        """A message for this user: a session was logged out (its digest), or the user changed."""
        if logged_out is not None:
            if logged_out != self.digest:
                return  # another session of the user (another device): it stays
            self._logged_out = True
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        # ``user_logged_out`` is sent before ``logout()`` flushes the session (and, under
        # ATOMIC_REQUESTS, before the flush commits). Ending the page at once would make it
        # reload while the session is still valid and show it logged in. So a logged-out page
        # ends as soon as a check finds its session gone; should the engine keep a flushed
        # session valid (signed cookies), it ends after the last pause all the same.
        pauses = iter(LOGOUT_RECHECKS)
        while True:
            self._again = False
            if await self._end_unless_valid(force=False):
                return
            if self._again:
                continue  # a message arrived during the check: check again
            if not self._logged_out:
                return
            pause = next(pauses, None)
            if pause is None:
                await self._end_unless_valid(force=True)
                return
            await asyncio.sleep(pause)

    async def _end_unless_valid(self, *, force: bool) -> bool:
        """Check the login (under the session's lock, like an event); True once the page ended."""
        session = self.session
        async with session.lock:
            if session.closed:
                return True
            if not force:
                try:
                    if await session.run_sync(still_logged_in, self.key, self.user):
                        return False
                except Exception:
                    logger.exception("djust: checking the login of a live page failed")
                    return False  # the next event checks again
            await session.end(_ended())
            return True

    async def close(self) -> None:
        """The page is gone: stop following it."""
        task, self._task = self._task, None
        # close() runs inside the task when the task ended the session.
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._hub is not None:
            hub, self._hub = self._hub, None
            hub.remove(self)


class _Hub:
    """The watched pages of one event loop; one channel on the layer, one group per user.

    Sharing a channel keeps an idle page's cost to a set entry (no task, no layer call once its
    user's group is joined). Without a layer that reaches other processes (none, or the
    in-memory one), ``notify`` delivers to the hubs of this process directly.
    """

    _all: dict[asyncio.AbstractEventLoop, _Hub] = {}

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Hub:
        hub = cls._all.get(loop)
        if hub is None:
            hub = cls._all[loop] = cls(loop)
        return hub

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watches: dict[str, set[_Watch]] = {}
        self.layer: Any = _shared_layer()
        self.channel: str | None = None
        self.joined: set[str] = set()
        self._lock = asyncio.Lock()
        self._retry = asyncio.Event()
        self._down = False  # the layer failed and the groups are not joined again yet
        self._tasks: list[asyncio.Task[None]] = []

    async def add(self, watch: _Watch) -> None:
        self.watches.setdefault(watch.group, set()).add(watch)
        if self.layer is None:
            return
        async with self._lock:
            if watch.group in self.joined or watch.group not in self.watches:
                return
            try:
                if self.channel is None:
                    self.channel = await self.layer.new_channel(prefix="djust-auth")
                    self._tasks = [
                        self.loop.create_task(self._listen()),
                        self.loop.create_task(self._keep()),
                    ]
                    broadcasts.Restarts.watch(self.layer, self)
                await asyncio.wait_for(
                    self.layer.group_add(watch.group, self.channel), LAYER_TIMEOUT
                )
            except Exception as exc:
                # The page works on: its events are still checked, and _keep joins later.
                if not self._down:
                    self._down = True
                    logger.warning(
                        "djust: cannot watch logins on the channel layer: %s: %s", _name(exc), exc
                    )
                self._retry.set()
                return
            self.joined.add(watch.group)

    def remove(self, watch: _Watch) -> None:
        """Forget ``watch``; the layer is told in the background (a closing page never waits
        for Redis, which may be slow or away)."""
        members = self.watches.get(watch.group)
        if members is None:
            return
        members.discard(watch)
        if members:
            return
        del self.watches[watch.group]
        if self.watches:
            if self.layer is not None:
                _background(self._leave(watch.group))
            return
        # The last page of this loop: stop listening (the next mount starts again).
        if _Hub._all.get(self.loop) is self:
            del _Hub._all[self.loop]
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if self.layer is not None:
            _background(self._shut_down(tasks))

    async def _shut_down(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for group in sorted(self.joined):
            await self._leave(group)

    async def _leave(self, group: str) -> None:
        async with self._lock:
            if group in self.watches or group not in self.joined:
                return
            self.joined.discard(group)
            try:
                await asyncio.wait_for(self.layer.group_discard(group, self.channel), LAYER_TIMEOUT)
            except Exception as exc:
                logger.warning("djust: leaving %s failed: %s: %s", group, _name(exc), exc)

    def server_restarted(self) -> None:
        """The layer's server restarted and has forgotten the groups: join them again."""
        self.joined.clear()
        self._retry.set()

    def deliver(self, message: dict[str, Any]) -> None:
        for watch in list(self.watches.get(message.get("group", ""), ())):
            watch.notify(message.get("logged_out"))

    async def _listen(self) -> None:
        failures = 0
        while True:
            started = self.loop.time()
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if broadcasts.idle_timeout(exc) and self.loop.time() - started > 1.0:
                    # An idle read gave up (channels_redis on redis-py 8 does every 5 s): the
                    # server is there and remembers our groups.
                    continue
                # The layer's server went away; a restarted one has forgotten our groups.
                if not self._down:
                    self._down = True
                    logger.warning("djust: login notifications stopped: %s: %s", _name(exc), exc)
                self.joined.clear()
                self._retry.set()
                await asyncio.sleep(min(broadcasts.RETRY_FIRST * 2**failures, broadcasts.RETRY_MAX))
                failures += 1
                continue
            failures = 0
            if message.get("type") == MESSAGE_TYPE:
                self.deliver(message)

    async def _keep(self) -> None:
        """Join the groups not joined yet (after a failure), and renew all of them hourly:
        channels_redis forgets a member after its ``group_expiry``."""
        pause = broadcasts.RETRY_FIRST
        while True:
            renew = False
            try:
                await asyncio.wait_for(self._retry.wait(), broadcasts.RENEW_EVERY)
            except TimeoutError:
                renew = True
            self._retry.clear()
            try:
                async with self._lock:
                    for group in sorted(self.watches):
                        if renew or group not in self.joined:
                            await asyncio.wait_for(
                                self.layer.group_add(group, self.channel), LAYER_TIMEOUT
                            )
                            self.joined.add(group)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(pause)
                pause = min(pause * 2, broadcasts.RETRY_MAX)
                self._retry.set()
                continue
            pause = broadcasts.RETRY_FIRST
            if self._down:
                self._down = False
                logger.info("djust: login notifications resumed")


# -- notifying ----------------------------------------------------------------------


def notify(user_pk: Any, logged_out_session: str | None = None) -> None:
    """Make the live pages of the user ``user_pk`` in every worker check their login now.

    For sync code that changes a user without a signal (``QuerySet.update()``). With
    ``logged_out_session``, only the pages of that session key check, and they end once the
    session is gone (``user_logged_out`` comes before the flush).
    """
    user_key = str(user_pk)
    message = {
        "type": MESSAGE_TYPE,
        "group": group_for(user_key),
        "logged_out": _digest(logged_out_session) if logged_out_session else None,
    }
    channel_layer = _shared_layer()
    try:
        if channel_layer is None:
            for loop, hub in list(_Hub._all.items()):
                try:
                    loop.call_soon_threadsafe(hub.deliver, message)
                except RuntimeError:  # a test client's loop, closed with pages still open
                    _Hub._all.pop(loop, None)
        else:
            _run(channel_layer.group_send(message["group"], message))
    except Exception:
        # A logout must not fail because Redis is away: each page checks again at its next event.
        logger.exception("djust: cannot notify the live pages of user %s", user_key)


def _run(send: Any) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    loop = broadcasts.session_loop.get()
    if running is not None:
        # A sync receiver called on an event loop's own thread cannot block it.
        _background(_bounded(send))
    elif loop is not None and loop.is_running():
        # A djust handler on a pool thread: send on the server's loop, whose connections to
        # the layer are open (async_to_sync would open new ones on a loop of its own).
        asyncio.run_coroutine_threadsafe(_bounded(send), loop).result()
    else:
        async_to_sync(_bounded)(send)


# Tasks nobody awaits (a notification sent from an event loop's thread, leaving groups): kept
# here so that they are not collected while they run.
_tasks: set[asyncio.Task[Any]] = set()


def _background(work: Any) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _tasks.add(task)
    task.add_done_callback(_done)


def _done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        logger.error("djust: talking to the channel layer failed: %s: %s", _name(exc), exc)


def _name(exc: BaseException | None) -> str:
    # redis-py's exceptions print as "network:TimeoutError" with %r: name the class plainly.
    return type(exc).__qualname__


async def _bounded(work: Any) -> None:
    # An unreachable Redis must not hold up a logout for the operating system's TCP timeout.
    await asyncio.wait_for(work, LAYER_TIMEOUT)


def _on_logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    user_key = tokens.user_key(user)
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user_key and key:
        notify(user_key, logged_out_session=key)


def _on_user_saved(
    sender: Any, instance: Any, created: bool = False, raw: bool = False, **kwargs: Any
) -> None:
    update_fields = kwargs.get("update_fields")
    if created or raw or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new user has no pages; a login only stamps last_login
    user_key = str(instance.pk)
    # After the commit: a check from another connection must see the new password or flag.
    transaction.on_commit(lambda: notify(user_key), using=kwargs.get("using"))


def connect_signals() -> None:
    """Notify the live pages on logout and on any change of a user (password, is_active)."""
    user_logged_out.connect(_on_logged_out, dispatch_uid="djust.auth.logged_out")
    post_save.connect(
        _on_user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="djust.auth.user_saved"
    )
