"""Frame budgets: a token bucket per connection and turns shared by the process's connections.

Pure code (the clock is a parameter), used by the consumer: docs/security.md, "Limits".
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` frames a second with bursts of up to ``burst``; ``take()`` says whether one fits."""

    def __init__(self, rate: float, burst: float | None = None, clock: Clock = time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        self._clock = clock
        self._tokens = self.burst
        self._checked = clock()

    def take(self) -> bool:
        """Take one token; False (nothing taken) when the bucket is empty. A rate of 0 is
        no limit."""
        if not self.rate:
            return True
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._checked) * self.rate)
        self._checked = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class Turns:
    """``rate`` frames a second for a whole process, taken in turns: first come, first served.

    A frame beyond the rate is not refused: its connection waits for its turn, and since a
    connection handles one frame at a time (the ASGI server stops reading its socket meanwhile),
    every waiting connection gets the next turn in order, however fast it sends. A connection
    that sends a lot cannot starve the others; it only slows itself and, under overload, everyone
    equally. Bursts of up to ``burst`` frames pass at once. (The generic cell rate algorithm.)
    """

    def __init__(self, rate: float, burst: float | None = None, clock: Clock = time.monotonic):
        self.rate = rate
        self.interval = 1.0 / rate
        # How far in the past a turn may lie: the first ``burst`` frames after a quiet spell
        # all get a turn that is already due.
        self.tolerance = (max(1.0, burst if burst is not None else rate) - 1) * self.interval
        self._clock = clock
        self._next = clock() - self.tolerance  # the next free turn

    def delay(self) -> float:
        """Take the next turn; the seconds to wait before using it (0.0: now)."""
        now = self._clock()
        turn = max(self._next, now - self.tolerance)
        self._next = turn + self.interval
        return max(0.0, turn - now)
