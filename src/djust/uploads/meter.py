"""An upload's speed as the server measures it: bytes received over the last few seconds.

Pure code (the clock is the caller's). The rate travels in ``upload_ack`` so that every client
shows the same, true speed and time left (``docs/protocol.md``, section 4).
"""

from __future__ import annotations

from collections import deque

# How far back the rate looks: long enough to smooth over runs of a megabyte, short enough to
# follow a link that slows down.
SPAN = 3.0
# Below this much time measured, a rate says more about one burst than about the link.
MIN_SPAN = 0.2


class RateMeter:
    """Bytes received at a few moments; their rate over the last ``SPAN`` seconds."""

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def measure(self, now: float, received: int) -> int | None:
        """Record that ``received`` bytes had arrived at ``now`` (never earlier than the last
        call); the bytes a second since the oldest sample kept, None until ``MIN_SPAN``."""
        samples = self._samples
        # A sample every thirtieth of a span is enough (a fast upload is acked hundreds of
        # times a second): the deque stays short.
        if len(samples) < 2 or now - samples[-1][0] >= SPAN / 30:
            samples.append((now, received))
        # Keep the newest sample that is at least a span old: the rate covers a whole span.
        while len(samples) > 2 and now - samples[1][0] >= SPAN:
            samples.popleft()
        since, start = samples[0]
        if now - since < MIN_SPAN:
            return None
        return int((received - start) / (now - since))
