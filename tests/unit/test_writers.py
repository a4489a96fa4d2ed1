"""The default writer: a private temp file in a private directory, optionally written around
the page cache."""

from __future__ import annotations

import fcntl
import mmap
import os
import stat
from pathlib import Path

import pytest

from djust.errors import UnsafeUploadDir
from djust.testing import LiveViewTestClient
from djust.uploads.writers import TempFileWriter, sweep_orphans, upload_dir

needs_direct = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
NOBODY = 65534


def aligned(data: bytes) -> memoryview:
    """``data`` in page-aligned memory, as djust's blocks are."""
    block = mmap.mmap(-1, len(data))
    block[:] = data
    return memoryview(block)


def direct_flag(writer: TempFileWriter) -> bool:
    return bool(fcntl.fcntl(writer._fd, fcntl.F_GETFL) & os.O_DIRECT)


@needs_direct
def test_a_direct_writer_opens_its_file_with_o_direct(tmp_path: Path) -> None:
    writer = TempFileWriter(tmp_path, direct=True)
    writer.open()
    try:
        assert direct_flag(writer)
    finally:
        writer.abort()


@needs_direct
def test_a_plain_writer_does_not(tmp_path: Path) -> None:
    writer = TempFileWriter(tmp_path)
    writer.open()
    try:
        assert not direct_flag(writer)
    finally:
        writer.abort()


@needs_direct
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


@needs_direct
def test_an_unaligned_buffer_falls_back_to_cached_writes_and_loses_nothing(tmp_path: Path) -> None:
    first, second = os.urandom(8192), os.urandom(8192)
    writer = TempFileWriter(tmp_path, direct=True)
    writer.open()
    writer.write(aligned(b"-" + first)[1:])  # one byte past a page boundary: EINVAL
    writer.write(aligned(second))
    writer.close()
    assert not writer.direct
    assert Path(writer.path).read_bytes() == first + second


# -- the upload directory ------------------------------------------------------------------


@pytest.fixture
def configured(settings, tmp_path: Path) -> Path:
    """``DJUST['UPLOAD_DIR']`` set to a directory that does not exist yet."""
    path = tmp_path / "state" / "uploads"
    settings.DJUST = {**settings.DJUST, "UPLOAD_DIR": str(path)}
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_upload_dir_is_created_private(configured: Path) -> None:
    assert upload_dir() == configured
    assert mode(configured) == 0o700


def test_the_default_upload_dir_is_created_private(settings, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    settings.DJUST = {**settings.DJUST, "UPLOAD_DIR": None}
    assert upload_dir() == tmp_path / "djust-uploads"
    assert mode(tmp_path / "djust-uploads") == 0o700


@pytest.mark.parametrize("bits", [0o777, 0o1777, 0o770, 0o720, 0o702])
def test_an_upload_dir_other_users_can_write_is_refused(configured: Path, bits: int) -> None:
    configured.mkdir(parents=True)
    configured.chmod(bits)
    with pytest.raises(UnsafeUploadDir, match="can be written by other users"):
        upload_dir()


@pytest.mark.parametrize("bits", [0o700, 0o755, 0o500])
def test_an_upload_dir_only_its_owner_can_write_is_used(configured: Path, bits: int) -> None:
    configured.mkdir(parents=True)
    configured.chmod(bits)
    assert upload_dir() == configured


@needs_root
def test_an_upload_dir_of_another_user_is_refused(configured: Path) -> None:
    configured.mkdir(parents=True, mode=0o700)
    os.chown(configured, NOBODY, NOBODY)
    with pytest.raises(UnsafeUploadDir, match=f"belongs to user id {NOBODY}"):
        upload_dir()


@needs_root
def test_a_link_another_user_owns_is_refused(configured: Path, tmp_path: Path) -> None:
    (tmp_path / "target").mkdir(mode=0o700)
    configured.parent.mkdir()
    configured.symlink_to(tmp_path / "target")
    os.lchown(configured, NOBODY, NOBODY)
    with pytest.raises(UnsafeUploadDir, match="symbolic link owned by user id"):
        upload_dir()


def test_a_file_in_place_of_the_upload_dir_is_refused(configured: Path) -> None:
    configured.parent.mkdir()
    configured.write_bytes(b"")
    with pytest.raises(UnsafeUploadDir, match="is not a directory"):
        upload_dir()


def test_the_default_writer_refuses_an_unsafe_upload_dir(configured: Path) -> None:
    configured.mkdir(parents=True)
    configured.chmod(0o777)
    with pytest.raises(UnsafeUploadDir):
        TempFileWriter()


def test_the_client_is_told_write_failed_without_the_server_s_path(configured: Path) -> None:
    configured.mkdir(parents=True)
    configured.chmod(0o777)
    with pytest.raises(UnsafeUploadDir) as caught:
        upload_dir()
    assert caught.value.code == "write_failed"
    assert str(configured) in str(caught.value)
    assert str(configured) not in caught.value.message


def test_the_orphan_sweep_touches_nothing_in_an_unsafe_upload_dir(configured: Path) -> None:
    configured.mkdir(parents=True)
    configured.chmod(0o777)
    orphan = configured / "djust-999999999-x.upload"  # no such process
    orphan.write_bytes(b"")
    assert sweep_orphans() == []
    assert orphan.exists()


@pytest.mark.django_db(transaction=True)
def test_a_registration_on_an_unsafe_upload_dir_gets_write_failed(configured: Path) -> None:
    configured.mkdir(parents=True)
    configured.chmod(0o777)
    client = LiveViewTestClient()
    try:
        result = client.get("/profile/").upload("avatar", "me.png", b"\x89PNG\r\n\x1a\n", "")
    finally:
        client.close()
    assert (result.status, result.code) == ("error", "write_failed")
    assert str(configured) not in (result.message or "")
    assert list(configured.iterdir()) == []
