"""Run an entry's writer on a lane of its own: the event loop only copies bytes into blocks.

The event loop copies each chunk as it arrives into a 1 MiB block (page-aligned, from a small
pool, so its pages stay mapped) and frees the chunk at once. The entry's lane, a thread of its
own, writes whole blocks while a hasher thread hashes them: disk writes, network calls and
SHA-256 release the GIL, so they run beside the event loop instead of on it, a few times per MiB
instead of once per chunk. The lane runs the writer's calls in order and nothing else: a writer
that blocks (a full disk, an object store far away) slows its own upload (acks follow written
bytes) and no other, however many such writers there are. The writer is opened on the lane just
before its first block: an entry that never receives a byte never opens a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import mmap
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from djust.uploads.writers import Reason, UploadWriter

logger = logging.getLogger("djust")

# Hashing is bounded CPU work that never waits on I/O: a few threads serve every lane.
HASHERS = 4
# Large enough that writes and hashes cost a few calls per MiB; a multiple of the page size, so
# that a writer may write blocks with O_DIRECT.
BLOCK = 1 << 20
# Free blocks kept for reuse across uploads (more are unmapped when returned).
POOL = 32
# Seconds a lane's thread waits for the next block before it ends (the next block starts
# another): a steady upload keeps one thread, an idle one holds none for long.
LANE_IDLE = 2.0

_WRITE, _FINISH, _CLOSE = 0, 1, 2
_free: list[mmap.mmap] = []
_hashers: ThreadPoolExecutor | None = None
_hashers_lock = threading.Lock()
_lane_numbers = itertools.count(1)


def hashers() -> ThreadPoolExecutor:
    """The process's hasher threads, made on first use."""
    global _hashers
    with _hashers_lock:
        if _hashers is None:
            _hashers = ThreadPoolExecutor(HASHERS, thread_name_prefix="djust-upload-hasher")
        return _hashers


def _take_block() -> mmap.mmap:
    try:
        return _free.pop()  # list.pop and append are atomic: blocks return from lane threads
    except IndexError:
        return mmap.mmap(-1, BLOCK)


def _give_block(block: mmap.mmap) -> None:
    if len(_free) < POOL:
        _free.append(block)
    else:
        # A writer that kept a view of it, against the rules, keeps it mapped until dropped.
        with contextlib.suppress(BufferError):
            block.close()


class Spool:
    """Hands ``inner`` whole blocks on the entry's lane, hashes them, and closes it in turn.

    ``write``, ``flush`` and ``finish`` are called on the event loop; a block goes to the lane
    once it holds ``flush_every`` bytes. ``close`` may be called from any thread. The callbacks
    run on the event loop: ``on_written(total)`` after each block is written,
    ``on_finished(sha256_hex)`` once ``inner.finish()`` returned, ``on_failed(exc)`` if
    ``inner`` raised (after which nothing but ``close`` reaches it).
    """

    def __init__(
        self,
        inner: UploadWriter,
        *,
        on_written: Callable[[int], Any],
        on_finished: Callable[[str], Any],
        on_failed: Callable[[BaseException], Any],
        flush_every: int = BLOCK,
        written: int = 0,
        digest: Any = None,
    ) -> None:
        self.inner = inner
        self.written = written  # an entry adopted from disk starts with the bytes it has
        self._on_written = on_written
        self._on_finished = on_finished
        self._on_failed = on_failed
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._hash = digest if digest is not None else hashlib.sha256()
        self._ops: deque[tuple[int, Any]] = deque()
        self._ready = threading.Condition()
        self._lane: threading.Thread | None = None  # alive while it may take queued operations
        self._running = False  # the lane is inside a call of ``inner``
        self._stopped = False  # after a failure or close(): no more writes
        self._closed = False
        self._closing = False  # close() was called and has not reached the writer yet
        self._opened = False
        # Blocks go to the lane when this full (at most BLOCK): progress reports need no more.
        self.flush_every = max(1, min(flush_every, BLOCK))
        self._block: mmap.mmap | None = None  # being filled on the event loop
        self._fill = 0

    @property
    def path(self) -> str | None:
        return getattr(self.inner, "path", None)

    def write(self, data: Any) -> None:
        """Copy ``data`` into the current block; a full block goes to the lane."""
        if self._stopped:
            return
        size, done = len(data), 0
        while done < size:
            if self._block is None:
                self._block, self._fill = _take_block(), 0
            take = min(size - done, BLOCK - self._fill)
            self._block[self._fill : self._fill + take] = data[done : done + take]
            self._fill += take
            done += take
            if self._fill >= self.flush_every:
                self.flush()

    def flush(self) -> None:
        """Hand the partly filled block to the lane now (the sender is waiting on an ack)."""
        if self._block is not None and self._fill:
            self._push(_WRITE, (self._block, self._fill))
            self._block = None

    def finish(self) -> None:
        """Every byte arrived: write what is held, then ``inner.finish()`` on the lane."""
        self.flush()
        self._push(_FINISH, None)

    def close(self, reason: Reason) -> None:
        """Tell ``inner`` why the entry left, after any call in progress; once, never on the loop.

        Queued blocks are dropped. Off the event loop (a handler's thread) with the lane idle,
        ``inner.close`` runs at once on the calling thread. Otherwise it runs on the lane. When
        the bytes are discarded, ``path`` is removed after it, on the same thread: removing a
        file of gigabytes frees every block of it, which the event loop must not wait for.
        """
        self._drop_block()
        with self._ready:
            if self._closed:
                return
            self._closed = self._stopped = self._closing = True
            self._drop_ops()
            here = not self._running and threading.get_ident() != self._loop_thread
            if not here:
                self._ops.append((_CLOSE, reason))
                self._start_lane()
            self._ready.notify()
        if here:
            self._close_inner(reason)

    def wait_closed(self, timeout: float) -> bool:
        """Off the event loop: wait until a ``close()`` has reached the writer, which may be busy
        on the lane; whether it did in time."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ready.wait(left)
        return True

    def release(self, timeout: float) -> bool:
        """Off the event loop: let the lane write what it was given, then stop, telling the
        writer nothing (the entry outlives this process); whether it finished in time."""
        deadline = time.monotonic() + timeout
        with self._ready:
            self._stopped = True  # no more bytes: they would come after the ones adopted
            while (self._ops or self._running) and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ready.wait(left)
            self._closed = True
        return True

    def _open(self) -> None:
        if not self._opened:
            self._opened = True
            self.inner.open()

    def _drop_block(self) -> None:
        if self._block is not None:
            _give_block(self._block)
            self._block = None

    def _drop_ops(self) -> None:
        """Drop queued writes and finish (call with ``_ready`` held); a queued close stays."""
        kept = [op for op in self._ops if op[0] == _CLOSE]
        for kind, data in self._ops:
            if kind == _WRITE:
                _give_block(data[0])
        self._ops.clear()
        self._ops.extend(kept)

    def _push(self, kind: int, data: Any) -> None:
        with self._ready:
            if self._stopped:
                if kind == _WRITE:
                    _give_block(data[0])
                return
            self._ops.append((kind, data))
            self._start_lane()
            self._ready.notify()

    def _start_lane(self) -> None:
        """Start the lane's thread unless it is alive (call with ``_ready`` held)."""
        if self._lane is None:
            self._lane = threading.Thread(
                target=self._drain, name=f"djust-upload-writer-{next(_lane_numbers)}", daemon=True
            )
            self._lane.start()

    def _drain(self) -> None:
        """On the lane: run queued operations in order; end after a close or when idle."""
        while True:
            with self._ready:
                if not self._ops and not self._closed:
                    self._ready.wait(LANE_IDLE)
                if not self._ops:
                    self._lane = None
                    return
                kind, data = self._ops.popleft()
                self._running = kind != _CLOSE
            if kind == _CLOSE:
                self._close_inner(data)
                continue
            try:
                self._open()
                if kind == _WRITE:
                    self._write_block(*data)
                    self._post(self._on_written, self.written)
                else:
                    self.inner.finish()
                    self._post(self._on_finished, self._hash.hexdigest())
            except Exception as exc:
                with self._ready:
                    self._stopped = True
                    self._drop_ops()
                self._post(self._on_failed, exc)
            finally:
                with self._ready:
                    self._running = False
                    self._ready.notify_all()  # release() may be waiting for the queue to drain

    def _close_inner(self, reason: Reason) -> None:
        # The entry is gone: a writer that fails to clean up can only be logged.
        try:
            self.inner.close(reason)
        except Exception:
            logger.exception("closing the upload writer %r (%s) failed", self.inner, reason)
        if reason != "done" and self.path is not None:
            # Whatever the writer did, discarded bytes leave no file behind.
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError:
                logger.exception("removing the upload file %s failed", self.path)
        with self._ready:
            self._closing = False
            self._ready.notify_all()

    def _write_block(self, block: mmap.mmap, size: int) -> None:
        # The block is hashed on another thread while this one writes it.
        with memoryview(block) as whole, whole[:size].toreadonly() as view:
            hashing = hashers().submit(self._hash.update, view)
            try:
                self.inner.write(view)
            finally:
                hashing.result()
        _give_block(block)
        self.written += size

    def _post(self, callback: Callable[[Any], Any], value: Any) -> None:
        # A closed loop means the process is shutting down: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, value)
