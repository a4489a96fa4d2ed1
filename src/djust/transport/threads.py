"""The threads that run views' blocking code, shared by every live session of the process.

A session borrows a thread for each call (mount, handler, render) and gives it back, so an
idle page holds none. Threads start when every thread is busy, up to ``MAX_SYNC_THREADS``,
and end after a few idle seconds; a thread closes its database connections as it ends.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

logger = logging.getLogger("djust")

# Seconds a thread waits for work before it ends: long enough to serve a burst of events
# without starting threads again, short enough that a quiet server holds none.
IDLE_TIMEOUT = 5.0


class ThreadPool(Executor):
    """Threads started on demand up to ``max_threads``; each ends after ``idle_timeout`` idle.

    Calls start in the order they were submitted; when all ``max_threads`` are busy, new calls
    wait for a thread to be free (a warning says so, once).
    """

    def __init__(
        self,
        max_threads: int,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        name: str = "djust-sync",
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self.max_threads = max_threads
        self.idle_timeout = idle_timeout
        self.name = name
        self._on_exit = on_exit
        self._work: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._ready = threading.Condition()
        self._threads: set[threading.Thread] = set()
        self._waiting = 0  # threads waiting for work (including those just notified)
        self._numbers = itertools.count(1)
        self._shut = False
        self._warned = False

    @property
    def threads(self) -> int:
        """Threads alive now (busy or idle)."""
        with self._ready:
            return len(self._threads)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        saturated = False
        with self._ready:
            if self._shut:
                raise RuntimeError("the thread pool is shut down")
            self._work.append((future, functools.partial(fn, *args, **kwargs)))
            if len(self._work) > self._waiting:
                if len(self._threads) < self.max_threads:
                    self._start()
                else:
                    saturated, self._warned = not self._warned, True
            self._ready.notify()
        if saturated:
            logger.warning(
                "djust: all %d threads for views' blocking code are busy; calls wait their turn. "
                "If handlers wait on slow services rather than the CPU, raise "
                "DJUST['MAX_SYNC_THREADS'].",
                self.max_threads,
            )
        return future

    def _start(self) -> None:
        thread = threading.Thread(
            target=self._serve, name=f"{self.name}-{next(self._numbers)}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _serve(self) -> None:
        try:
            while True:
                job = self._next()
                if job is None:
                    return
                future, call = job
                if future.set_running_or_notify_cancel():
                    try:
                        result = call()
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                del job, future, call  # the result is the caller's, not this thread's
        finally:
            try:
                if self._on_exit is not None:
                    self._on_exit()
            finally:
                with self._ready:
                    self._threads.discard(threading.current_thread())

    def _next(self) -> tuple[Future[Any], Callable[[], Any]] | None:
        """The oldest call waiting, or None once this thread has been idle long enough."""
        with self._ready:
            deadline = time.monotonic() + self.idle_timeout
            while not self._work:
                remaining = deadline - time.monotonic()
                if self._shut or remaining <= 0:
                    # Leaves the set at once: a call submitted from now on starts a thread.
                    self._threads.discard(threading.current_thread())
                    return None
                self._waiting += 1
                try:
                    self._ready.wait(remaining)
                finally:
                    self._waiting -= 1
            return self._work.popleft()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._ready:
            self._shut = True
            if cancel_futures:
                while self._work:
                    self._work.popleft()[0].cancel()
            threads = list(self._threads)
            self._ready.notify_all()
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


async def ended(future: Future[Any]) -> None:
    """Wait until a call has ended, however it ends (its outcome is for its own caller)."""
    waiter = asyncio.wrap_future(future)
    waiter.add_done_callback(_outcome_seen)
    await asyncio.wait([waiter])


def _outcome_seen(waiter: asyncio.Future[Any]) -> None:
    if not waiter.cancelled():
        waiter.exception()  # retrieved: asyncio would otherwise log it as never retrieved


_shared: ThreadPool | None = None
_shared_lock = threading.Lock()


def shared() -> ThreadPool:
    """The process's pool for live sessions, sized by ``DJUST['MAX_SYNC_THREADS']``."""
    global _shared
    if _shared is not None:
        return _shared
    with _shared_lock:
        if _shared is None:
            from django.db import connections

            from djust import conf

            _shared = ThreadPool(conf.get("MAX_SYNC_THREADS"), on_exit=connections.close_all)
            # Daemon threads, so that an idle one does not hold up the exit for its timeout;
            # one still running a call finishes it first.
            atexit.register(_shared.shutdown)
        return _shared


def reset() -> None:
    """End the shared pool's threads (their database connections with them); the next call
    starts a new pool. For tests: a thread must not carry one test's connection into the next."""
    global _shared
    with _shared_lock:
        pool, _shared = _shared, None
    if pool is not None:
        pool.shutdown(wait=True)
