"""An idle page holds no thread: the server borrows one from a shared pool for each call."""

from __future__ import annotations

import os
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="counts threads in /proc")

PAGES = 50


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_idle_pages_hold_no_thread(server, live) -> None:
    before = threads(server.process.pid)

    async def body() -> int:
        for _ in range(PAGES):
            await live.connect("/t/users/")  # each mount runs its view's code on a thread
        return threads(server.process.pid)

    with_pages = live.run(body())
    # A few threads may serve the burst of mounts; none stays with a page.
    assert with_pages - before < 8, f"{with_pages - before} more threads for {PAGES} idle pages"
