"""Stalled uploads: a client that stopped sending, or sends too little to be worth its slot.

Time the client cannot send is not held against it: while the server has not acknowledged
enough for it to send another chunk (a slow disk or storage), and while a handler holds the
session (its chunks wait behind the handler).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from djust.errors import StalledUpload
from djust.uploads.entry import UploadEntry
from djust.uploads.flow import Transfer


class Watchdog:
    """Fails the stalled uploads of one connection, checking about once a second."""

    def __init__(
        self,
        *,
        timeout: float | None,
        min_rate: float,
        rate_window: float,
        busy: Callable[[], bool],
        on_stalled: Callable[[UploadEntry, StalledUpload], Awaitable[None]],
    ) -> None:
        # 0 and None both turn the timeout off.
        self.timeout = timeout if timeout else None
        self.min_rate = min_rate or 0
        self.rate_window = rate_window
        self.busy = busy
        self.on_stalled = on_stalled
        self._task: asyncio.Task[None] | None = None

    @property
    def needed(self) -> bool:
        return self.timeout is not None or bool(self.min_rate)

    def watch(self, transfers: Callable[[], dict[str, tuple[UploadEntry, Transfer]]]) -> None:
        """Start watching (if not already) while ``transfers()`` has uploads in progress."""
        if self.needed and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(transfers))

    async def _run(self, transfers: Callable[[], dict[str, Any]]) -> None:
        period = min(1.0, self.timeout / 4) if self.timeout else 1.0
        while transfers():
            await asyncio.sleep(period)
            now = time.monotonic()
            busy = self.busy()
            for entry, transfer in list(transfers().values()):
                if entry.done:
                    continue
                error = self.stalled(entry, transfer, now, busy=busy)
                if error is not None:
                    await self.on_stalled(entry, error)

    def stalled(
        self, entry: UploadEntry, transfer: Transfer, now: float, *, busy: bool = False
    ) -> StalledUpload | None:
        """Whether the client stopped sending, or sends too little to be worth its resources."""
        samples = transfer.samples
        if busy or entry.received == entry.client_size or transfer.blocked(entry.received):
            # The client waits for us: its clocks start again.
            transfer.last_seen = now
            samples.clear()
        if self.timeout is not None and now - transfer.last_seen > self.timeout:
            return StalledUpload(f"{entry.client_name}: no bytes for {self.timeout:g} s")
        if not self.min_rate:
            return None
        samples.append((now, entry.received))
        # A sliding window: the oldest sample kept is the last one at least a window old.
        while len(samples) > 1 and now - samples[1][0] >= self.rate_window:
            samples.popleft()
        since, received = samples[0]
        if now - since < self.rate_window:
            return None  # not a whole window yet (a new upload, or one that just waited)
        rate = (entry.received - received) / (now - since)
        if rate < self.min_rate:
            return StalledUpload(
                f"{entry.client_name}: {rate:.0f} bytes a second over the last "
                f"{self.rate_window} s; at least {self.min_rate} are needed"
            )
        return None

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
