"""Writers: the interface (factory, meta, why it closes), each entry's lane, and the default
writer, a private temp file in a private directory, optionally written around the page cache."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import hashlib
import mmap
import os
import re
import stat
import threading
import uuid
from pathlib import Path

import pytest

from djust.errors import UnsafeUploadDir, WriteFailed
from djust.testing import LiveViewTestClient
from djust.uploads import resume
from djust.uploads.channel import ledger
from djust.uploads.config import make_config
from djust.uploads.entry import UploadEntry
from djust.uploads.manager import UploadManager
from djust.uploads.quota import Limits
from djust.uploads.spool import Spool
from djust.uploads.writers import (
    TempFileWriter,
    UploadWriter,
    new_writer,
    sweep_orphans,
    upload_dir,
)
from tests.app.views import WRITER_CALLS

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
        writer.close("cancel")


@needs_direct
def test_a_plain_writer_does_not(tmp_path: Path) -> None:
    writer = TempFileWriter(tmp_path)
    writer.open()
    try:
        assert not direct_flag(writer)
    finally:
        writer.close("cancel")


@needs_direct
def test_aligned_blocks_then_a_short_tail_are_stored_exactly(tmp_path: Path) -> None:
    head, tail = os.urandom(3 * 65536), os.urandom(1234)
    writer = TempFileWriter(tmp_path, direct=True)
    writer.open()
    writer.write(aligned(head))
    assert direct_flag(writer)
    writer.write(aligned(tail))  # not a multiple of 4 KiB: the rest is written through the cache
    assert not direct_flag(writer) and not writer.direct
    writer.finish()
    assert Path(writer.path).read_bytes() == head + tail


@needs_direct
def test_an_unaligned_buffer_falls_back_to_cached_writes_and_loses_nothing(tmp_path: Path) -> None:
    first, second = os.urandom(8192), os.urandom(8192)
    writer = TempFileWriter(tmp_path, direct=True)
    writer.open()
    writer.write(aligned(b"-" + first)[1:])  # one byte past a page boundary: EINVAL
    writer.write(aligned(second))
    writer.finish()
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


# -- the writer interface, second version ----------------------------------------------------


class Noting(UploadWriter):
    """Keeps what it is given and notes why it closes, and on which thread."""

    def __init__(self, entry: UploadEntry | None = None, release: threading.Event | None = None):
        self.entry = entry
        self.release = release
        self.data = bytearray()
        self.reasons: list[str] = []
        self.threads: list[str] = []

    def write(self, data: memoryview) -> None:
        self.threads.append(threading.current_thread().name)
        if self.release is not None:
            self.release.wait(10)  # a storage service that does not answer
        self.data += data

    def close(self, reason: str) -> None:
        self.reasons.append(reason)
        self.threads.append(threading.current_thread().name)


def new_entry(name: str = "report.pdf", size: int = 5, writer: UploadWriter | None = None):
    config = make_config("docs", max_frame_size=2 * 1024 * 1024, max_entries=3)
    return UploadEntry(
        ref="1",
        upload_name="docs",
        client_name=name,
        raw_name=name,
        client_type="application/pdf",
        client_size=size,
        writer=writer,
        config=config,
    )


def test_a_factory_with_a_parameter_receives_the_entry_and_its_slot_options() -> None:
    entry = new_entry()
    writer = new_writer(lambda entry: Noting(entry), entry)
    assert writer.entry is entry
    assert (writer.entry.client_name, writer.entry.config.max_entries) == ("report.pdf", 3)


class ForEntry(Noting):
    def __init__(self, entry: UploadEntry, *, prefix: str = "") -> None:
        super().__init__(entry)
        self.prefix = prefix


def test_a_writer_class_taking_the_entry_is_its_own_factory() -> None:
    entry = new_entry()
    assert new_writer(ForEntry, entry).entry is entry
    writer = new_writer(functools.partial(ForEntry, prefix="docs/"), entry)
    assert (writer.entry, writer.prefix) == (entry, "docs/")
    assert new_writer(Noting, entry).entry is None  # its parameter has a default: none given


def test_a_factory_without_parameters_is_called_with_none(tmp_path: Path) -> None:
    entry = new_entry()
    assert new_writer(lambda: Noting(), entry).entry is None
    # The first version's factories still work: parameters that all have defaults.
    writer = new_writer(functools.partial(TempFileWriter, tmp_path), entry)
    assert writer.directory == tmp_path


def test_a_factory_that_raises_refuses_the_entry_with_write_failed() -> None:
    def broken(entry):
        raise RuntimeError("no bucket configured")

    with pytest.raises(WriteFailed, match="no bucket configured"):
        new_writer(broken, new_entry())


def manager_with(writer: UploadWriter) -> tuple[UploadManager, UploadEntry]:
    manager = UploadManager()
    manager.allow("docs", max_entries=3)
    entry = new_entry(writer=writer)
    manager.add(entry)
    return manager, entry


def test_a_consumed_entry_closes_its_writer_done_and_nothing_else() -> None:
    manager, entry = manager_with(Noting())
    entry.finish("0" * 64)
    assert list(manager.consume("docs")) == [entry]
    entry.discard()  # however often djust lets go of it
    assert entry.writer.reasons == ["done"]


def test_a_cancelled_entry_closes_its_writer_cancel() -> None:
    manager, entry = manager_with(Noting())
    entry.finish("0" * 64)
    manager.cancel("docs", entry.ref)
    assert entry.writer.reasons == ["cancel"]


def test_a_failed_entry_closes_its_writer_error() -> None:
    manager, entry = manager_with(Noting())
    manager.fail(entry, WriteFailed("disk full"))
    assert entry.writer.reasons == ["error"]


def test_entry_meta_is_its_writer_s_meta() -> None:
    class Keyed(Noting):
        def meta(self) -> dict:
            return {"key": "uploads/x.pdf", "etag": '"abc"'}

    assert new_entry(writer=Keyed()).meta == {"key": "uploads/x.pdf", "etag": '"abc"'}


# -- lanes: each entry's writer on a thread of its own ---------------------------------------


def spool_for(writer: UploadWriter, finished: list[str]) -> Spool:
    return Spool(
        writer,
        on_written=lambda total: None,
        on_finished=finished.append,
        on_failed=lambda exc: finished.append(f"failed {exc}"),
    )


def test_four_writers_that_block_cannot_stall_a_fifth_upload() -> None:
    release = threading.Event()

    async def body() -> list[str]:
        stuck = [spool_for(Noting(release=release), []) for _ in range(4)]
        for spool in stuck:
            spool.write(b"s" * 1000)
            spool.finish()
        finished: list[str] = []
        free = spool_for(Noting(), finished)
        free.write(b"f" * 1000)
        free.finish()
        try:
            async with asyncio.timeout(5):
                while not finished:
                    await asyncio.sleep(0.01)
        finally:
            release.set()
            for spool in stuck:
                spool.close("cancel")
        return finished

    assert asyncio.run(body()) == [hashlib.sha256(b"f" * 1000).hexdigest()]


def test_a_writer_is_closed_on_its_lane_when_the_event_loop_drops_the_entry() -> None:
    writer = Noting()

    async def body() -> None:
        finished: list[str] = []
        spool = spool_for(writer, finished)
        spool.write(b"x" * 10)
        spool.finish()
        while not finished:
            await asyncio.sleep(0.01)
        spool.close("cancel")  # on the event loop, as a cancel from the browser is
        while not writer.reasons:
            await asyncio.sleep(0.01)

    asyncio.run(body())
    assert writer.reasons == ["cancel"]
    assert all(name.startswith("djust-upload-writer") for name in writer.threads)


def test_close_waits_for_the_write_in_progress() -> None:
    release = threading.Event()
    writer = Noting(release=release)

    async def body() -> None:
        spool = spool_for(writer, [])
        spool.write(b"x" * 10)
        spool.flush()
        while not writer.threads:
            await asyncio.sleep(0.01)
        spool.close("cancel")
        await asyncio.sleep(0.05)
        assert writer.reasons == []  # the write has not returned: close waits its turn
        release.set()
        while not writer.reasons:
            await asyncio.sleep(0.01)

    asyncio.run(body())
    assert (bytes(writer.data), writer.reasons) == (b"x" * 10, ["cancel"])


def test_forgetting_waiting_entries_returns_once_their_writers_closed() -> None:
    """``resume.reset()`` (a test client's close) waits for a writer still busy on its lane:
    when the test looks, the upload's files are gone."""
    release = threading.Event()
    writer = Noting(release=release)
    entry = new_entry(writer=writer)

    async def park() -> None:
        entry.spool = spool_for(writer, [])
        entry.spool.write(b"x" * 10)
        entry.spool.flush()
        while not writer.threads:
            await asyncio.sleep(0.01)
        hold = ledger.admit(Limits(process_bytes=100, reservation=100), 10, client=None, user=None)
        link = resume.Link(entry, hold, None)
        link.id = "a" * 32
        resume.registry[link.id] = link
        resume.park(link)

    asyncio.run(park())
    threading.Timer(0.3, release.set).start()  # the write in progress returns later
    resume.reset()
    assert writer.reasons == ["cancel"]


# -- through the consumer: the slot's writer is the entry's --------------------------------


@pytest.fixture
def lifecycle(settings, tmp_path: Path):
    settings.DJUST = {**settings.DJUST, "UPLOAD_DIR": str(tmp_path / "uploads")}
    client = LiveViewTestClient()
    yield client.get("/t/uploads-lifecycle/")
    client.close()


def unique_name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}.txt"


@pytest.mark.django_db(transaction=True)
def test_entry_writer_is_the_slot_s_writer_and_entry_meta_its_meta(lifecycle) -> None:
    name = unique_name("described")
    assert lifecycle.upload("recorded", name, b"hello").status == "complete"
    html = lifecycle.event("describe")
    assert re.search(r"RecordingWriter True \{&#x27;path&#x27;: .*&#x27;calls&#x27;: 4\}", html)


@pytest.mark.django_db(transaction=True)
def test_a_consumed_entry_s_writer_is_told_done_once_and_never_on_the_event_loop(
    lifecycle,
) -> None:
    name = unique_name("consumed")
    assert lifecycle.upload("recorded", name, b"hello").status == "complete"
    lifecycle.event("describe")
    calls = WRITER_CALLS[name]
    assert calls[0] == "init recorded 5 3"
    assert re.fullmatch(r"open djust-upload-writer-\d+", calls[1])
    assert calls[2:4] == ["write 5", "finish"]
    assert re.fullmatch(r"close done djust-sync-\d+", calls[4])  # the handler's thread
    assert len(calls) == 5


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_entry_s_writer_is_told_cancel(lifecycle) -> None:
    name = unique_name("cancelled")
    result = lifecycle.upload("recorded", name, b"hello")
    lifecycle.event("cancel_entry", ref=result.ref, slot="recorded")
    assert [c.split()[:2] for c in WRITER_CALLS[name][-1:]] == [["close", "cancel"]]
    assert not any(c.startswith("close done") for c in WRITER_CALLS[name])


# -- an upload directory that cannot be made --------------------------------------------------


@pytest.fixture
def uncreatable(settings, tmp_path: Path) -> Path:
    """``DJUST['UPLOAD_DIR']`` below a plain file: nobody, not even root, can create it."""
    (tmp_path / "plain").write_bytes(b"")
    path = tmp_path / "plain" / "uploads"
    settings.DJUST = {**settings.DJUST, "UPLOAD_DIR": str(path)}
    return path


def test_an_upload_dir_that_cannot_be_created_refuses_with_write_failed(uncreatable) -> None:
    with pytest.raises(WriteFailed) as caught:
        TempFileWriter()
    assert caught.value.code == "write_failed"
    assert str(uncreatable) not in caught.value.message  # the path is for the server's log


def test_the_orphan_sweep_skips_an_upload_dir_that_cannot_be_created(uncreatable) -> None:
    assert sweep_orphans() == []
