"""The default writer: a private temp file, optionally written around the page cache."""

from __future__ import annotations

import fcntl
import mmap
import os
from pathlib import Path

import pytest

from djust.uploads.writers import TempFileWriter

pytestmark = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")


def aligned(data: bytes) -> memoryview:
    """``data`` in page-aligned memory, as djust's blocks are."""
    block = mmap.mmap(-1, len(data))
    block[:] = data
    return memoryview(block)


def direct_flag(writer: TempFileWriter) -> bool:
    return bool(fcntl.fcntl(writer._fd, fcntl.F_GETFL) & os.O_DIRECT)


def test_a_direct_writer_opens_its_file_with_o_direct(tmp_path: Path) -> None:
    writer = TempFileWriter(tmp_path, direct=True)
    writer.open()
    try:
        assert direct_flag(writer)
    finally:
        writer.abort()


def test_a_plain_writer_does_not(tmp_path: Path) -> None:
    writer = TempFileWriter(tmp_path)
    writer.open()
    try:
        assert not direct_flag(writer)
    finally:
        writer.abort()


def test_aligned_blocks_then_a_short_tail_are_stored_exactly(tmp_path: Path) -> None:
    head, tail = os.urandom(3 * 65536), os.urandom(1234)
    writer = TempFileWriter(tmp_path, direct=True)
    writer.open()
    writer.write(aligned(head))
    assert direct_flag(writer)
    writer.write(aligned(tail))  # not a multiple of 4 KiB: the rest is written through the cache
    assert not direct_flag(writer) and not writer.direct
    writer.close()
    assert Path(writer.path).read_bytes() == head + tail


def test_an_unaligned_buffer_falls_back_to_cached_writes_and_loses_nothing(tmp_path: Path) -> None:
    first, second = os.urandom(8192), os.urandom(8192)
    writer = TempFileWriter(tmp_path, direct=True)
    writer.open()
    writer.write(aligned(b"-" + first)[1:])  # one byte past a page boundary: EINVAL
    writer.write(aligned(second))
    writer.close()
    assert not writer.direct
    assert Path(writer.path).read_bytes() == first + second
