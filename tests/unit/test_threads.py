"""The shared thread pool: threads on demand, up to a bound, gone when idle; a session's calls
never overlap."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from djust.transport.session import LiveSession
from djust.transport.threads import ThreadPool


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def pools():
    made: list[ThreadPool] = []

    def make(max_threads: int = 4, **kwargs) -> ThreadPool:
        made.append(ThreadPool(max_threads, **kwargs))
        return made[-1]

    yield make
    for pool in made:
        pool.shutdown(cancel_futures=True)


def test_calls_one_after_another_share_one_thread(pools) -> None:
    pool = pools(4)
    names = {pool.submit(lambda: threading.current_thread().name).result(5) for _ in range(20)}
    assert len(names) == 1
    assert pool.threads == 1


def test_a_call_gets_a_thread_while_the_others_are_busy(pools) -> None:
    pool = pools(4)
    together = threading.Barrier(3, timeout=5)
    futures = [pool.submit(together.wait) for _ in range(3)]
    assert sorted(f.result(10) for f in futures) == [0, 1, 2]  # all three ran at once
    assert pool.threads == 3


def test_calls_beyond_the_bound_wait_their_turn_with_one_warning(pools, caplog) -> None:
    pool = pools(2)
    release = threading.Event()
    with caplog.at_level(logging.WARNING, logger="djust"):
        busy = [pool.submit(release.wait, 5) for _ in range(2)]
        waiting = [pool.submit(lambda: "ran") for _ in range(2)]
    assert not any(f.done() for f in waiting)
    assert pool.threads == 2
    release.set()
    assert [f.result(5) for f in busy + waiting] == [True, True, "ran", "ran"]
    assert ["MAX_SYNC_THREADS" in r.getMessage() for r in caplog.records] == [True]


def test_an_idle_thread_ends_and_runs_the_exit_hook(pools) -> None:
    exited = []
    pool = pools(4, idle_timeout=0.05, on_exit=lambda: exited.append(threading.current_thread()))
    worker = pool.submit(threading.current_thread).result(5)
    assert wait_for(lambda: pool.threads == 0)
    worker.join(5)
    assert exited == [worker]


def test_no_call_is_lost_while_threads_retire(pools) -> None:
    pool = pools(2, idle_timeout=0.0005)
    for i in range(300):
        if i % 3 == 0:
            time.sleep(0.001)  # long enough for the thread to be retiring
        assert pool.submit(lambda i=i: i).result(5) == i


def test_an_exception_reaches_the_caller(pools) -> None:
    pool = pools(1)

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        pool.submit(fail).result(5)
    assert pool.submit(lambda: "still serving").result(5) == "still serving"


def test_shutdown_ends_idle_threads_at_once(pools) -> None:
    pool = pools(2, idle_timeout=60)
    worker = pool.submit(threading.current_thread).result(5)
    pool.shutdown()
    assert not worker.is_alive()
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_a_sessions_next_call_waits_for_one_whose_caller_was_cancelled() -> None:
    """What one thread per session gave for free: a view's blocking calls never overlap."""
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(5)
        order.append("slow")

    async def main() -> None:
        session = LiveSession({"type": "websocket"}, send=None)  # type: ignore[arg-type]
        first = asyncio.ensure_future(session.run_sync(slow))
        assert await asyncio.to_thread(started.wait, 5)
        first.cancel()
        second = asyncio.ensure_future(session.run_sync(order.append, "next"))
        await asyncio.sleep(0.1)
        assert order == []  # still waiting for slow(), which runs on
        release.set()
        await second
        assert order == ["slow", "next"]

    asyncio.run(main())
