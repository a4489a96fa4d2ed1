"""Run an entry's writer on a worker thread: the event loop only queues bytes.

Disk writes and SHA-256 both release the GIL, so they run beside the event loop instead of on
it, and a slow disk slows its own upload (acks follow written bytes) without stalling any other
connection. Each entry's operations run in order; different entries run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
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

_WRITE, _CLOSE, _ABORT = 0, 1, 2


def executor(role: str = "writer") -> ThreadPoolExecutor:
    """The process's upload ``writer`` (or ``hasher``) threads, made on first use."""
    with _executor_lock:
        if role not in _executors:
            _executors[role] = ThreadPoolExecutor(
                WORKERS, thread_name_prefix=f"djust-upload-{role}"
            )
        return _executors[role]


def _update(digest: Any, chunks: list[Any]) -> None:
    for chunk in chunks:
        digest.update(chunk)


class Spool:
    """An ``UploadWriter`` that runs ``inner`` on a worker thread and hashes what it writes.

    The callbacks run on the event loop: ``on_written(total)`` after each batch of writes,
    ``on_closed(sha256_hex)`` once ``close()`` is done, ``on_failed(exc)`` if ``inner`` raised.
    """

    def __init__(
        self,
        inner: UploadWriter,
        *,
        on_written: Callable[[int], Any],
        on_closed: Callable[[str], Any],
        on_failed: Callable[[BaseException], Any],
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

    @property
    def path(self) -> str | None:
        return getattr(self.inner, "path", None)

    def open(self) -> None:
        self.inner.open()

    def write(self, data: Any) -> None:
        self._push(_WRITE, data)

    def close(self) -> None:
        self._push(_CLOSE, None)

    def close_empty(self) -> str:
        """Close at once when nothing was written (an empty file); returns the digest."""
        self.inner.close()
        return self._hash.hexdigest()

    def abort(self) -> None:
        """Drop queued bytes and discard the file, after any write in progress (idempotent)."""
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
                batch = list(self._ops)
                self._ops.clear()
            wrote = False
            # Hashing and writing both release the GIL: the batch is hashed on another thread
            # while this one writes it (the hash of the next batch waits for this one).
            chunks = [data for kind, data in batch if kind == _WRITE]
            hashing = executor("hasher").submit(_update, self._hash, chunks) if chunks else None
            try:
                for kind, data in batch:
                    if kind == _WRITE:
                        self.inner.write(data)
                        self.written += len(data)
                        wrote = True
                    elif kind == _CLOSE:
                        if wrote:
                            self._post(self._on_written, self.written)
                            wrote = False
                        self.inner.close()
                        if hashing is not None:
                            hashing.result()
                        self._post(self._on_closed, self._hash.hexdigest())
                    else:
                        self.inner.abort()
                        wrote = False
                if hashing is not None:
                    hashing.result()
            except Exception as exc:
                if hashing is not None:
                    hashing.result()
                with self._lock:
                    self._stopped = True
                    self._ops.clear()
                    self._busy = False
                self._post(self._on_failed, exc)
                return
            if wrote:
                self._post(self._on_written, self.written)

    def _post(self, callback: Callable[[Any], Any], value: Any) -> None:
        # A closed loop means the process is shutting down: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, value)
