"""Run an entry's writer on a worker thread: the event loop only copies bytes into blocks.

The event loop copies each chunk as it arrives into a 1 MiB block (page-aligned, from a small
pool, so its pages stay mapped) and frees the chunk at once. A worker thread writes whole blocks
while another hashes them: disk writes and SHA-256 both release the GIL, so they run beside the
event loop instead of on it, a few times per MiB instead of once per chunk. A slow disk slows its
own upload (acks follow written bytes) without stalling any other connection. Each entry's
blocks are written in order; different entries run in parallel. The writer is opened on the
worker too, just before its first block: an entry that never receives a byte never opens a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from djust.uploads.writers import UploadWriter

_executors: dict[str, ThreadPoolExecutor] = {}
_executor_lock = threading.Lock()
WORKERS = 4
# Large enough that writes and hashes cost a few calls per MiB; a multiple of the page size, so
# that a writer may write blocks with O_DIRECT.
BLOCK = 1 << 20
# Free blocks kept for reuse across uploads (more are unmapped when returned).
POOL = 32

_WRITE, _CLOSE, _ABORT = 0, 1, 2
_free: list[mmap.mmap] = []


def executor(role: str = "writer") -> ThreadPoolExecutor:
    """The process's upload ``writer`` (or ``hasher``) threads, made on first use."""
    with _executor_lock:
        if role not in _executors:
            _executors[role] = ThreadPoolExecutor(
                WORKERS, thread_name_prefix=f"djust-upload-{role}"
            )
        return _executors[role]


def _take_block() -> mmap.mmap:
    try:
        return _free.pop()  # list.pop and append are atomic: blocks return from worker threads
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
    """An ``UploadWriter`` that hands ``inner`` whole blocks on a worker thread and hashes them.

    ``write``, ``flush``, ``close`` and ``abort`` are called on the event loop; a block goes to
    the worker once it holds ``flush_every`` bytes. ``inner`` is opened on the worker before its
    first block. The callbacks run on the event loop too:
    ``on_written(total)`` after each block is written, ``on_closed(sha256_hex)`` once
    ``close()`` is done, ``on_failed(exc)`` if ``inner`` raised.
    """

    def __init__(
        self,
        inner: UploadWriter,
        *,
        on_written: Callable[[int], Any],
        on_closed: Callable[[str], Any],
        on_failed: Callable[[BaseException], Any],
        flush_every: int = BLOCK,
    ) -> None:
        self.inner = inner
        self.written = 0
        self._on_written = on_written
        self._on_closed = on_closed
        self._on_failed = on_failed
        self._loop = asyncio.get_running_loop()
        self._hash = hashlib.sha256()
        self._ops: deque[tuple[int, Any]] = deque()
        self._lock = threading.Lock()
        self._busy = False
        self._stopped = False  # after abort() or a failure: nothing more is written
        self._opened = False
        # Blocks go to the worker when this full (at most BLOCK): progress reports need no more.
        self.flush_every = max(1, min(flush_every, BLOCK))
        self._block: mmap.mmap | None = None  # being filled on the event loop
        self._fill = 0

    @property
    def path(self) -> str | None:
        return getattr(self.inner, "path", None)

    def write(self, data: Any) -> None:
        """Copy ``data`` into the current block; a full block goes to the worker."""
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
        """Hand the partly filled block to the worker now (the sender is waiting on an ack)."""
        if self._block is not None and self._fill:
            self._push(_WRITE, (self._block, self._fill))
            self._block = None

    def close(self) -> None:
        self.flush()
        self._push(_CLOSE, None)

    def close_empty(self) -> str:
        """Open and close at once when there is nothing to write (an empty file); the digest."""
        self._open()
        self.inner.close()
        return self._hash.hexdigest()

    def _open(self) -> None:
        if not self._opened:
            self._opened = True
            self.inner.open()

    def abort(self) -> None:
        """Drop queued bytes and discard the file, after any write in progress (idempotent)."""
        self._drop_block()
        with self._lock:
            self._stopped = True
            self._ops.clear()
            if self._busy:
                self._ops.append((_ABORT, None))  # the running worker does it after its batch
                busy = True
            else:
                busy = False
        if not busy:
            self.inner.abort()
        elif self.path is not None:
            # The file leaves the directory now; the worker's descriptor keeps the inode until
            # it closes it, so a write in progress lands nowhere.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _drop_block(self) -> None:
        if self._block is not None:
            _give_block(self._block)
            self._block = None

    def _push(self, kind: int, data: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            self._ops.append((kind, data))
            start = not self._busy
            self._busy = True
        if start:
            executor().submit(self._drain)

    def _drain(self) -> None:
        """On a worker: run queued operations in order until none is left."""
        while True:
            with self._lock:
                if not self._ops:
                    self._busy = False
                    return
                kind, data = self._ops.popleft()
            try:
                if kind != _ABORT:
                    self._open()
                if kind == _WRITE:
                    self._write_block(*data)
                    self._post(self._on_written, self.written)
                elif kind == _CLOSE:
                    self.inner.close()
                    self._post(self._on_closed, self._hash.hexdigest())
                else:
                    self.inner.abort()
            except Exception as exc:
                with self._lock:
                    self._stopped = True
                    self._ops.clear()
                    self._busy = False
                self._post(self._on_failed, exc)
                return

    def _write_block(self, block: mmap.mmap, size: int) -> None:
        # The block is hashed on another thread while this one writes it.
        with memoryview(block) as whole, whole[:size].toreadonly() as view:
            hashing = executor("hasher").submit(self._hash.update, view)
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
