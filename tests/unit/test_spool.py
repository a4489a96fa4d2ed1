"""The spool: an entry's writer run on a worker thread, in order, hashing as it goes."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from djust.uploads.spool import Spool
from djust.uploads.writers import TempFileWriter


class Reports:
    def __init__(self) -> None:
        self.written: list[int] = []
        self.closed: list[str] = []
        self.failed: list[BaseException] = []
        self.event = asyncio.Event()

    def spool(self, writer) -> Spool:
        def done(kind):
            def record(value):
                getattr(self, kind).append(value)
                self.event.set()

            return record

        return Spool(
            writer,
            on_written=done("written"),
            on_closed=done("closed"),
            on_failed=done("failed"),
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
        spool.open()
        for start in range(0, len(data), 7000):
            spool.write(memoryview(data)[start : start + 7000])
        spool.close()
        await reports.wait(lambda: reports.closed)
        return reports, spool

    reports, spool = asyncio.run(body())
    assert Path(spool.path).read_bytes() == data
    assert reports.closed == [hashlib.sha256(data).hexdigest()]


def test_written_totals_grow_to_the_size_before_the_close_report(tmp_path: Path) -> None:
    async def body() -> Reports:
        reports = Reports()
        spool = reports.spool(TempFileWriter(tmp_path))
        spool.open()
        for _ in range(10):
            spool.write(b"x" * 1000)
        spool.close()
        await reports.wait(lambda: reports.closed)
        return reports

    reports = asyncio.run(body())
    assert reports.written == sorted(reports.written)
    assert reports.written[-1] == 10_000


def test_abort_removes_the_file_and_later_writes_are_ignored(tmp_path: Path) -> None:
    async def body() -> Spool:
        reports = Reports()
        spool = reports.spool(TempFileWriter(tmp_path))
        spool.open()
        spool.write(b"a" * 100_000)
        spool.abort()
        spool.write(b"b" * 10)
        spool.close()
        await asyncio.sleep(0.2)
        assert reports.closed == []
        return spool

    asyncio.run(body())
    assert list(tmp_path.iterdir()) == []


def test_a_failing_writer_is_reported_once_and_stops(tmp_path: Path) -> None:
    async def body() -> Reports:
        reports = Reports()
        spool = reports.spool(FailingWriter(tmp_path, fail_after=1500))
        spool.open()
        for _ in range(5):
            spool.write(b"z" * 1000)
        spool.close()
        await reports.wait(lambda: reports.failed)
        await asyncio.sleep(0.1)
        spool.abort()
        return reports

    reports = asyncio.run(body())
    assert len(reports.failed) == 1 and isinstance(reports.failed[0], OSError)
    assert reports.closed == []
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_closes_at_once_with_the_empty_digest(tmp_path: Path) -> None:
    async def body() -> str:
        spool = Reports().spool(TempFileWriter(tmp_path))
        spool.open()
        return spool.close_empty()

    assert asyncio.run(body()) == hashlib.sha256(b"").hexdigest()
