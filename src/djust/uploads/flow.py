"""Flow control of one upload: its window, its acknowledgements, and the checks of each chunk.

Pure code on the event loop: no socket, no thread. The channel feeds it what arrives.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from djust.errors import (
    ActiveContent,
    BadFrame,
    BadOffset,
    FrameTooLarge,
    SizeMismatch,
    WindowExceeded,
)
from djust.transport.protocol import Chunk
from djust.uploads.config import UploadConfig
from djust.uploads.entry import UploadEntry
from djust.uploads.meter import RateMeter
from djust.uploads.sniff import ContentSniffer, is_active

# Enough leading bytes to recognise markup that a browser would run.
ACTIVE_HEAD = 256
# Until the first bytes pass the content checks, the window is this many chunks: a renamed
# program costs the server a few chunks, not a full window.
FIRST_WINDOW_CHUNKS = 4


class Transfer:
    """Per-entry socket state: validation of the first bytes and the acknowledgement cadence."""

    __slots__ = (
        "ack_every",
        "acked",
        "chunk_size",
        "head",
        "last_seen",
        "meter",
        "samples",
        "size",
        "sniffer",
        "window",
    )

    def __init__(self, entry: UploadEntry, window: int, chunk_size: int) -> None:
        self.sniffer: ContentSniffer | None = ContentSniffer(entry.client_name, entry.client_type)
        self.head: bytearray | None = bytearray()
        self.acked = 0
        self.chunk_size = chunk_size
        self.size = entry.client_size
        self.resize(min(window, FIRST_WINDOW_CHUNKS * chunk_size))
        self.last_seen = time.monotonic()
        # (time, bytes received) once per watchdog round, over the minimum rate's window.
        self.samples: deque[tuple[float, int]] = deque([(self.last_seen, 0)])
        self.meter = RateMeter()  # the speed acks report, from the first bytes on

    @property
    def checked(self) -> bool:
        """Whether the content checks of the first bytes passed."""
        return self.sniffer is None

    def resize(self, window: int) -> None:
        """Set the window; acks come every quarter of it (the sender never waits on a full one)
        and at least every 1 % of the file (progress bars keep moving)."""
        self.window = window
        self.ack_every = max(1, min(window // 4, self.size // 100))

    def blocked(self, offset: int) -> bool:
        """Whether a sender that has sent up to ``offset`` must wait for an ack to send more."""
        return offset - self.acked + self.chunk_size > self.window

    def restart(self, offset: int) -> None:
        """The client comes back at ``offset`` (a resume): it may send a window from there."""
        self.acked = offset
        self.last_seen = time.monotonic()
        self.samples = deque([(self.last_seen, offset)])
        self.meter = RateMeter()


def check_chunk(entry: UploadEntry, transfer: Transfer, chunk: Chunk) -> None:
    """The chunk's size, offset and window; a typed error if it breaks one."""
    size = len(chunk.data)
    chunk_size = transfer.chunk_size
    if size == 0:
        raise BadFrame("empty chunk")
    if chunk.run:
        # Whole chunks, the last of which may end the file.
        if size % chunk_size and chunk.offset + size != entry.client_size:
            raise BadFrame(
                f"a run of {size} bytes is not a whole number of {chunk_size}-byte chunks"
            )
    elif size > chunk_size:
        raise FrameTooLarge(f"chunk of {size} bytes exceeds the slot's chunk_size {chunk_size}")
    if chunk.offset != entry.received:
        raise BadOffset(
            f"chunk at offset {chunk.offset}; expected offset {entry.received} "
            f"({'duplicate or overlap' if chunk.offset < entry.received else 'gap'})"
        )
    # The client may not have more than a window unacknowledged when it sends a chunk.
    window = transfer.window
    if chunk.offset + size - transfer.acked > window:
        raise WindowExceeded(
            f"{entry.client_name}: more than {window} unacknowledged bytes in flight"
        )
    if entry.received + size > entry.client_size:
        raise SizeMismatch(f"{entry.client_name}: more bytes than the declared {entry.client_size}")


def check_head(
    entry: UploadEntry, transfer: Transfer, config: UploadConfig, data: Any, *, final: bool
) -> None:
    """Magic bytes and active markup, checked on the first bytes; then never again."""
    sniffer, head = transfer.sniffer, transfer.head
    assert sniffer is not None and head is not None
    decided = sniffer.feed(bytes(data[:64])) if len(data) else False
    if not decided and final:
        sniffer.finish()
        decided = True
    if len(head) < ACTIVE_HEAD:
        head += data[: ACTIVE_HEAD - len(head)]
    head_known = len(head) >= ACTIVE_HEAD or final
    if head_known and not config.allow_active_content and is_active("", "", bytes(head)):
        raise ActiveContent(f"{entry.client_name} contains markup a browser would run")
    if decided and head_known:
        transfer.sniffer = transfer.head = None
