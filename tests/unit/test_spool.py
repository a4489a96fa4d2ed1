"""The spool: an entry's writer run on a worker thread, in order, hashing as it goes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import threading
from pathlib import Path

import pytest

from djust.uploads.spool import BLOCK, Spool
from djust.uploads.writers import TempFileWriter


class Reports:
    def __init__(self) -> None:
        self.written: list[int] = []
        self.closed: list[str] = []
        self.failed: list[BaseException] = []
        self.event = asyncio.Event()

    def spool(self, writer, flush_every: int = BLOCK) -> Spool:
        def done(kind):
            def record(value):
                getattr(self, kind).append(value)
                self.event.set()

            return record

        return Spool(
            writer,
            on_written=done("written"),
            on_finished=done("closed"),
            on_failed=done("failed"),
            flush_every=flush_every,
        )

    async def wait(self, predicate, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.event.clear()
                await self.event.wait()


class FailingWriter(TempFileWriter):
    def __init__(self, directory: Path, fail_after: int) -> None:
        super().__init__(directory)
        self.budget = fail_after

    def write(self, data) -> None:
        if len(data) > self.budget:
            raise OSError(28, "No space left on device")
        self.budget -= len(data)
        super().write(data)


def test_bytes_are_written_in_order_and_hashed(tmp_path: Path) -> None:
    data = os.urandom(300_000)

    async def body() -> tuple[Reports, Spool]:
        reports = Reports()
        spool = reports.spool(TempFileWriter(tmp_path))
        for start in range(0, len(data), 7000):
            spool.write(memoryview(data)[start : start + 7000])
        spool.finish()
        await reports.wait(lambda: reports.closed)
        return reports, spool

    reports, spool = asyncio.run(body())
    assert Path(spool.path).read_bytes() == data
    assert reports.closed == [hashlib.sha256(data).hexdigest()]


def test_written_totals_grow_to_the_size_before_the_close_report(tmp_path: Path) -> None:
    async def body() -> Reports:
        reports = Reports()
        spool = reports.spool(TempFileWriter(tmp_path))
        for _ in range(10):
            spool.write(b"x" * 1000)
        spool.finish()
        await reports.wait(lambda: reports.closed)
        return reports

    reports = asyncio.run(body())
    assert reports.written == sorted(reports.written)
    assert reports.written[-1] == 10_000


def test_abort_removes_the_file_and_later_writes_are_ignored(tmp_path: Path) -> None:
    async def body() -> Spool:
        reports = Reports()
        spool = reports.spool(TempFileWriter(tmp_path))
        spool.write(b"a" * 100_000)
        spool.close("cancel")
        spool.write(b"b" * 10)
        spool.finish()
        await asyncio.sleep(0.2)
        assert reports.closed == []
        return spool

    asyncio.run(body())
    assert list(tmp_path.iterdir()) == []


def test_a_failing_writer_is_reported_once_and_stops(tmp_path: Path) -> None:
    async def body() -> Reports:
        reports = Reports()
        spool = reports.spool(FailingWriter(tmp_path, fail_after=1500))
        for _ in range(5):
            spool.write(b"z" * 1000)
        spool.finish()
        await reports.wait(lambda: reports.failed)
        await asyncio.sleep(0.1)
        spool.close("cancel")
        async with asyncio.timeout(5):  # the file is removed on the lane, after the close
            while list(tmp_path.iterdir()):
                await asyncio.sleep(0.01)
        return reports

    reports = asyncio.run(body())
    assert len(reports.failed) == 1 and isinstance(reports.failed[0], OSError)
    assert reports.closed == []
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_finishes_with_the_empty_digest(tmp_path: Path) -> None:
    async def body() -> list[str]:
        reports = Reports()
        reports.spool(TempFileWriter(tmp_path)).finish()
        await reports.wait(lambda: reports.closed)
        return reports.closed

    assert asyncio.run(body()) == [hashlib.sha256(b"").hexdigest()]


class Recording(TempFileWriter):
    """Notes the size of every write, and whether it kept the view it was given."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.sizes: list[int] = []
        self.views: list[memoryview] = []

    def write(self, data) -> None:
        self.sizes.append(len(data))
        self.views.append(data)
        super().write(data)


def run_spool(writer, pieces, *, flush_every: int = BLOCK, flush_after: int | None = None):
    """Feed ``pieces`` through a spool (``flush()`` after piece ``flush_after``), then close."""

    async def body() -> Reports:
        reports = Reports()
        spool = reports.spool(writer, flush_every)
        for index, piece in enumerate(pieces):
            spool.write(piece)
            if index == flush_after:
                spool.flush()
                await reports.wait(lambda: reports.written)
        spool.finish()
        await reports.wait(lambda: reports.closed or reports.failed)
        return reports

    return asyncio.run(body())


def test_chunks_reach_the_writer_in_whole_blocks(tmp_path: Path) -> None:
    data = os.urandom(3 * BLOCK + 5000)
    writer = Recording(tmp_path)
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    reports = run_spool(writer, pieces)
    assert writer.sizes == [BLOCK, BLOCK, BLOCK, 5000]
    assert reports.written == [BLOCK, 2 * BLOCK, 3 * BLOCK, len(data)]
    assert Path(writer.path).read_bytes() == data


def test_blocks_go_out_as_soon_as_they_hold_flush_every_bytes(tmp_path: Path) -> None:
    writer = Recording(tmp_path)
    run_spool(writer, [b"a" * 1000] * 10, flush_every=2500)
    assert writer.sizes == [3000, 3000, 3000, 1000]


def test_flush_writes_a_partial_block_before_more_bytes_arrive(tmp_path: Path) -> None:
    writer = Recording(tmp_path)
    reports = run_spool(writer, [b"a" * 1000, b"b" * 1000, b"c" * 1000], flush_after=1)
    assert reports.written[0] == 2000  # reported while the sender had nothing more to send
    assert writer.sizes == [2000, 1000]
    assert Path(writer.path).read_bytes() == b"a" * 1000 + b"b" * 1000 + b"c" * 1000


def test_the_writer_gets_a_read_only_view_that_ends_with_the_call(tmp_path: Path) -> None:
    writer = Recording(tmp_path)
    run_spool(writer, [b"x" * 5000])
    (view,) = writer.views
    with pytest.raises(ValueError, match="released"):
        bytes(view)  # a writer that keeps data must copy it during write()


def test_blocks_are_page_aligned_for_direct_writes(tmp_path: Path) -> None:
    writer = TempFileWriter(tmp_path, direct=True)
    data = os.urandom(2 * BLOCK)
    run_spool(writer, [data[i : i + 65536] for i in range(0, len(data), 65536)])
    assert writer.direct  # no block made it fall back to cached writes
    assert Path(writer.path).read_bytes() == data


class Opening(TempFileWriter):
    """Notes the thread that opens it."""

    opened_on: str | None = None

    def open(self) -> None:
        self.opened_on = threading.current_thread().name
        super().open()


def test_the_file_is_opened_by_the_first_block_on_a_writer_thread(tmp_path: Path) -> None:
    writer = Opening(tmp_path)

    async def body() -> None:
        reports = Reports()
        spool = reports.spool(writer, flush_every=1000)
        await asyncio.sleep(0.05)
        assert (writer.opened_on, list(tmp_path.iterdir())) == (None, [])
        spool.write(b"x" * 1000)
        await reports.wait(lambda: reports.written)
        spool.finish()
        await reports.wait(lambda: reports.closed)

    asyncio.run(body())
    assert writer.opened_on is not None and writer.opened_on.startswith("djust-upload-writer")
    assert Path(writer.path).read_bytes() == b"x" * 1000


def test_a_spool_aborted_before_any_byte_never_opens_its_writer(tmp_path: Path) -> None:
    writer = Opening(tmp_path)

    async def body() -> None:
        spool = Reports().spool(writer)
        spool.close("cancel")
        await asyncio.sleep(0.05)

    asyncio.run(body())
    assert (writer.opened_on, writer.path, list(tmp_path.iterdir())) == (None, None, [])


def test_an_empty_file_is_opened_on_the_lane_and_kept_by_finish(tmp_path: Path) -> None:
    writer = Opening(tmp_path)

    async def body() -> None:
        reports = Reports()
        reports.spool(writer).finish()
        await reports.wait(lambda: reports.closed)

    asyncio.run(body())
    assert writer.opened_on is not None and writer.opened_on.startswith("djust-upload-writer")
    assert writer.path is not None and Path(writer.path).read_bytes() == b""


# -- what never runs on the event loop -------------------------------------------------------

# Files whose removal is watched, and the threads that removed them (an audit hook sees every
# os.unlink of the process: one cannot be removed, so it only looks at these paths).
_watched: dict[str, list[str]] = {}
_hooked = False


def _note_unlink(event: str, args: tuple) -> None:
    if event == "os.remove" and isinstance(args[0], str) and args[0] in _watched:
        _watched[args[0]].append(threading.current_thread().name)


def watch_unlink(path: str) -> list[str]:
    """The names of the threads that will unlink ``path``."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_note_unlink)
        _hooked = True
    return _watched.setdefault(path, [])


def test_a_finished_file_is_unlinked_off_the_event_loop(tmp_path: Path) -> None:
    # Its descriptor is closed: the unlink frees every block of a file that may be gigabytes.
    async def body() -> list[str]:
        reports = Reports()
        spool = reports.spool(TempFileWriter(tmp_path))
        spool.write(b"x" * 100_000)
        spool.finish()
        await reports.wait(lambda: reports.closed)
        unlinked_by = watch_unlink(spool.path)
        spool.close("cancel")  # the browser cancelled it, or its connection closed
        async with asyncio.timeout(5):
            while not unlinked_by:
                await asyncio.sleep(0.01)
        return unlinked_by

    unlinked_by = asyncio.run(body())
    assert unlinked_by and all(name.startswith("djust-upload-writer") for name in unlinked_by)
    assert list(tmp_path.iterdir()) == []


class Stuck(TempFileWriter):
    """A write that waits for ``release`` (a slow disk or storage), then fails if told to."""

    def __init__(self, directory: Path, release: threading.Event, fail: bool = False) -> None:
        super().__init__(directory)
        self.release, self.fail = release, fail
        self.writing = threading.Event()
        self.reasons: list[str] = []

    def write(self, data) -> None:
        self.writing.set()
        self.release.wait(10)
        if self.fail:
            raise OSError(5, "Input/output error")
        super().write(data)

    def close(self, reason) -> None:
        self.reasons.append(reason)
        super().close(reason)


def test_a_file_being_written_is_unlinked_off_the_event_loop(tmp_path: Path) -> None:
    release = threading.Event()
    writer = Stuck(tmp_path, release)

    async def body() -> list[str]:
        spool = Reports().spool(writer, flush_every=1000)
        spool.write(b"x" * 1000)
        while not writer.writing.is_set():
            await asyncio.sleep(0.01)
        unlinked_by = watch_unlink(writer.path)
        spool.close("cancel")
        release.set()
        async with asyncio.timeout(5):
            while not unlinked_by:
                await asyncio.sleep(0.01)
        return unlinked_by

    unlinked_by = asyncio.run(body())
    assert all(name.startswith("djust-upload-writer") for name in unlinked_by)
    assert writer.reasons == ["cancel"] and list(tmp_path.iterdir()) == []


def test_a_write_that_fails_while_a_close_waits_still_closes_the_writer(tmp_path: Path) -> None:
    # The close queued behind the write must survive the failure: it releases the descriptor
    # (and a storage's remote object, which only close aborts).
    release = threading.Event()
    writer = Stuck(tmp_path, release, fail=True)

    async def body() -> Reports:
        reports = Reports()
        spool = reports.spool(writer, flush_every=1000)
        spool.write(b"x" * 1000)
        while not writer.writing.is_set():
            await asyncio.sleep(0.01)
        spool.close("cancel")
        release.set()
        await reports.wait(lambda: reports.failed)
        async with asyncio.timeout(5):
            while not writer.reasons:
                await asyncio.sleep(0.01)
        return reports

    reports = asyncio.run(body())
    assert writer.reasons == ["cancel"] and writer._fd is None
    assert list(tmp_path.iterdir()) == []
    assert len(reports.failed) == 1
