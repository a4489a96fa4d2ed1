from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage

from djust.errors import StalledUpload, WriteFailed
from djust.uploads.entry import InvalidTransition, State, UploadEntry
from djust.uploads.manager import UploadManager
from djust.uploads.writers import TempFileWriter

# The state machine, written out: every pair not listed is forbidden.
ALLOWED = {
    (State.REGISTERED, State.UPLOADING),
    (State.REGISTERED, State.COMPLETE),
    (State.REGISTERED, State.FAILED),
    (State.REGISTERED, State.CANCELLED),
    (State.UPLOADING, State.COMPLETE),
    (State.UPLOADING, State.FAILED),
    (State.UPLOADING, State.CANCELLED),
    (State.COMPLETE, State.CONSUMED),
    (State.COMPLETE, State.CANCELLED),
}

# How to reach each state from a new entry.
PATHS = {
    State.REGISTERED: [],
    State.UPLOADING: [State.UPLOADING],
    State.COMPLETE: [State.COMPLETE],
    State.FAILED: [State.FAILED],
    State.CANCELLED: [State.CANCELLED],
    State.CONSUMED: [State.COMPLETE, State.CONSUMED],
}


def make_entry(tmp_path: Path, size: int = 11, name: str = "hello.txt") -> UploadEntry:
    writer = TempFileWriter(tmp_path)
    writer.open()
    return UploadEntry(
        ref="1",
        upload_name="docs",
        client_name=name,
        raw_name=name,
        client_type="text/plain",
        client_size=size,
        writer=writer,
    )


def entry_in(tmp_path: Path, state: State) -> UploadEntry:
    entry = make_entry(tmp_path)
    for step in PATHS[state]:
        entry.move(step)
    assert entry.state is state
    return entry


def finished(tmp_path: Path, data: bytes) -> UploadEntry:
    """An entry whose bytes its writer has written and closed (the spool's job in the server)."""
    entry = make_entry(tmp_path, size=len(data))
    if data:
        entry.move(State.UPLOADING)
        entry.writer.write(memoryview(data))
        entry.received += len(data)
    entry.writer.finish()
    entry.finish(hashlib.sha256(data).hexdigest())
    return entry


# -- state machine -------------------------------------------------------------------------


def test_a_new_entry_is_registered() -> None:
    assert State.REGISTERED in PATHS and not PATHS[State.REGISTERED]


@pytest.mark.parametrize(
    ("source", "target"), sorted(ALLOWED, key=lambda p: (p[0].value, p[1].value))
)
def test_allowed_transitions(tmp_path: Path, source: State, target: State) -> None:
    entry = entry_in(tmp_path, source)
    entry.move(target)
    assert entry.state is target


@pytest.mark.parametrize(
    ("source", "target"),
    [pair for pair in itertools.product(State, State) if pair not in ALLOWED],
    ids=lambda s: s.value,
)
def test_forbidden_transitions_raise(tmp_path: Path, source: State, target: State) -> None:
    entry = entry_in(tmp_path, source)
    with pytest.raises(InvalidTransition):
        entry.move(target)
    assert entry.state is source


@pytest.mark.parametrize(
    ("state", "complete", "done"),
    [
        (State.REGISTERED, False, False),
        (State.UPLOADING, False, False),
        (State.COMPLETE, True, True),
        (State.FAILED, False, True),
        (State.CANCELLED, False, True),
        (State.CONSUMED, False, True),
    ],
)
def test_complete_and_done_follow_the_state(
    tmp_path: Path, state: State, complete: bool, done: bool
) -> None:
    entry = entry_in(tmp_path, state)
    assert (entry.complete, entry.done) == (complete, done)


def test_finish_cannot_complete_an_entry_twice(tmp_path: Path) -> None:
    entry = finished(tmp_path, b"x")
    with pytest.raises(InvalidTransition):
        entry.finish(entry.sha256 or "")


# -- progress and content ------------------------------------------------------------------


def test_progress_is_the_percentage_received(tmp_path: Path) -> None:
    entry = make_entry(tmp_path, size=200)
    assert entry.progress == 0
    entry.move(State.UPLOADING)
    entry.received = 50
    assert entry.progress == 25
    entry.received = 199
    assert entry.progress == 99  # rounds down: never 100 before the last byte
    entry.received = 200
    assert entry.progress == 100


def test_progress_of_an_empty_file_is_100_only_once_complete(tmp_path: Path) -> None:
    entry = make_entry(tmp_path, size=0)
    assert entry.progress == 0
    entry.finish(hashlib.sha256(b"").hexdigest())
    assert entry.progress == 100


def test_sha256_is_known_only_after_finish(tmp_path: Path) -> None:
    data = os.urandom(5000)
    entry = make_entry(tmp_path, size=len(data))
    entry.move(State.UPLOADING)
    assert entry.sha256 is None
    entry.finish(hashlib.sha256(data).hexdigest())
    assert entry.sha256 == hashlib.sha256(data).hexdigest()


def test_sha256_of_an_empty_file(tmp_path: Path) -> None:
    assert finished(tmp_path, b"").sha256 == hashlib.sha256(b"").hexdigest()


def test_bytes_are_written_to_the_temp_file(tmp_path: Path) -> None:
    entry = finished(tmp_path, b"hello world")
    assert entry.path is not None and Path(entry.path).parent == tmp_path
    assert Path(entry.path).read_bytes() == b"hello world"


def test_as_dict_describes_the_entry(tmp_path: Path) -> None:
    entry = finished(tmp_path, b"hello world")
    assert entry.as_dict() == {
        "ref": "1",
        "upload_name": "docs",
        "client_name": "hello.txt",
        "client_type": "text/plain",
        "client_size": 11,
        "progress": 100,
        "complete": True,
        "error": None,
    }


# -- file ----------------------------------------------------------------------------------


def test_file_is_readable_and_seekable(tmp_path: Path) -> None:
    entry = finished(tmp_path, b"hello world")
    f = entry.file
    assert f.readable() and f.seekable()
    assert f.read(5) == b"hello"
    f.seek(6)
    assert f.read() == b"world"
    f.seek(0)
    assert f.read() == b"hello world"


def test_file_starts_at_the_beginning_each_time(tmp_path: Path) -> None:
    entry = finished(tmp_path, b"hello world")
    entry.file.read()
    assert entry.file.read() == b"hello world"
    assert entry.data == b"hello world"


def test_file_is_a_django_uploaded_file(tmp_path: Path) -> None:
    entry = finished(tmp_path, b"hello world")
    f = entry.file
    assert (f.name, f.content_type, f.size) == ("hello.txt", "text/plain", 11)
    assert f.temporary_file_path() == entry.path


@pytest.mark.parametrize("state", [State.REGISTERED, State.UPLOADING, State.FAILED])
def test_file_of_an_incomplete_entry_is_an_error(tmp_path: Path, state: State) -> None:
    entry = entry_in(tmp_path, state)
    with pytest.raises(ValueError):
        entry.file  # noqa: B018


def test_file_system_storage_saves_the_content(tmp_path: Path, settings) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    data = os.urandom(100_000)
    entry = finished(tmp_path, data)
    storage = FileSystemStorage(location=tmp_path / "media")
    name = storage.save("avatars/hello.txt", entry.file)
    assert name == "avatars/hello.txt"
    assert (tmp_path / "media" / name).read_bytes() == data
    entry.discard()  # the temp file may have been moved into place: discarding must not fail
    assert (tmp_path / "media" / name).read_bytes() == data


def test_file_system_storage_saves_twice_under_distinct_names(tmp_path: Path, settings) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    storage = FileSystemStorage(location=tmp_path / "media")
    first = storage.save("a.txt", finished(tmp_path, b"one").file)
    second = storage.save("a.txt", finished(tmp_path, b"two").file)
    assert first != second
    assert storage.open(first).read() == b"one" and storage.open(second).read() == b"two"


# -- discard -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [State.REGISTERED, State.UPLOADING, State.COMPLETE])
def test_discard_removes_the_temp_file(tmp_path: Path, state: State) -> None:
    entry = entry_in(tmp_path, state)
    path = Path(entry.path)
    assert path.exists()
    entry.discard()
    assert not path.exists()


def test_discard_closes_an_open_file(tmp_path: Path) -> None:
    entry = finished(tmp_path, b"hello")
    f = entry.file
    entry.discard()
    assert f.closed
    assert list(tmp_path.iterdir()) == []


def test_discard_twice_is_harmless(tmp_path: Path) -> None:
    entry = finished(tmp_path, b"hello")
    entry.discard()
    entry.discard()
    assert list(tmp_path.iterdir()) == []


# -- endings that race -----------------------------------------------------------------------


def managed(tmp_path: Path, state: State) -> tuple[UploadManager, UploadEntry, list[UploadEntry]]:
    """An entry in ``state`` in slot ``docs`` of a manager that notes every entry leaving."""
    manager = UploadManager()
    manager.allow("docs", max_entries=3)
    entry = entry_in(tmp_path, state)
    manager.add(entry)
    removed: list[UploadEntry] = []
    manager.on_remove = removed.append
    return manager, entry, removed


def test_failing_an_entry_that_just_completed_keeps_it_complete(tmp_path: Path) -> None:
    # A stall or write failure judged before the entry completed arrives after it did.
    manager, entry, removed = managed(tmp_path, State.COMPLETE)
    assert manager.fail(entry, StalledUpload("no bytes for 30 s")) is False
    assert (entry.state, entry.error, removed) == (State.COMPLETE, None, [])
    assert manager.slot("docs").entries == [entry] and manager.slot("docs").errors == []
    assert Path(entry.path).exists()


def test_failing_an_entry_that_already_left_records_nothing(tmp_path: Path) -> None:
    manager, entry, removed = managed(tmp_path, State.UPLOADING)
    manager.fail(entry, WriteFailed("disk full"))
    assert manager.fail(entry, StalledUpload("no bytes for 30 s")) is False
    assert [error.code for error in manager.slot("docs").errors] == ["write_failed"]
    assert (entry.error_code, removed) == ("write_failed", [entry])


def test_a_removal_the_state_forbids_leaves_the_entry_whole(tmp_path: Path) -> None:
    manager, entry, removed = managed(tmp_path, State.UPLOADING)
    with pytest.raises(InvalidTransition):
        manager.remove(entry, State.CONSUMED)
    # Still listed, so that the connection's end removes its file and releases its quota.
    assert manager.entries == {entry.ref: entry} and removed == []
    manager.discard_all()
    assert removed == [entry] and not Path(entry.path).exists()
