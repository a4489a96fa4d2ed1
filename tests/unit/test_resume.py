"""Waiting uploads on disk: what the sweep keeps, whose an entry is, the directory's id."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import time
from pathlib import Path
from typing import Any

import pytest

from djust.errors import FileChanged, ResumeDenied, ResumeExpired, UnknownSlot
from djust.uploads import resume


@pytest.fixture
def upload_dir(tmp_path: Path, settings: Any) -> Path:
    directory = tmp_path / "uploads"
    settings.DJUST = {**settings.DJUST, "UPLOAD_DIR": str(directory), "UPLOAD_RESUME_TTL": 60}
    directory.mkdir(mode=0o700)
    return directory


BINDING = resume.Binding(
    user="7",
    session="s1",
    view="app.views.Upload",
    slot="files",
    raw_name="a.bin",
    size=10,
    modified=1,
    client_type="",
    client_path=None,
)


def waiting_entry(directory: Path, entry_id: str, age: float) -> tuple[Path, Path]:
    data, state = resume.files(directory, entry_id)
    data.write_bytes(b"x" * 5)
    fd = os.open(state, os.O_RDWR | os.O_CREAT, 0o600)
    resume.write_state(fd, BINDING, "")
    os.close(fd)
    then = time.time() - age
    for path in (data, state):
        os.utime(path, (then, then))
    return data, state


def test_the_sweep_removes_an_entry_nobody_holds_once_its_grace_period_is_over(upload_dir):
    data, state = waiting_entry(upload_dir, "a" * 32, age=120)
    assert resume.sweep(upload_dir) == ["a" * 32]
    assert not data.exists() and not state.exists()


def test_the_sweep_keeps_an_entry_still_within_its_grace_period(upload_dir):
    data, state = waiting_entry(upload_dir, "b" * 32, age=10)
    assert resume.sweep(upload_dir) == []
    assert data.exists() and state.exists()


def test_the_sweep_keeps_an_entry_a_live_process_holds(upload_dir):
    data, state = waiting_entry(upload_dir, "c" * 32, age=120)
    fd = os.open(state, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert resume.sweep(upload_dir) == []
        assert data.exists()
    finally:
        os.close(fd)


def test_every_process_sharing_the_directory_reads_the_same_id(upload_dir):
    first = resume.directory_id()
    resume._dir_ids.clear()  # another process: nothing in memory
    assert resume.directory_id() == first
    assert (upload_dir / ".djust-id").read_text() == first


def test_the_state_written_in_place_reads_back(upload_dir):
    _, state = waiting_entry(upload_dir, "d" * 32, age=0)
    saved = resume.read_state(state)
    assert (saved.binding, saved.owner) == (BINDING, "")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"user": "8"}, ResumeDenied),
        ({"session": "s2"}, ResumeDenied),
        ({"slot": "photos"}, UnknownSlot),
        ({"view": "app.views.Other"}, UnknownSlot),
        ({"size": 11}, FileChanged),
        ({"modified": 2}, FileChanged),
        ({"raw_name": "b.bin"}, FileChanged),
    ],
)
def test_a_claim_that_differs_is_refused_with_its_error(change, error):
    assert isinstance(BINDING.refusal(dataclasses.replace(BINDING, **change)), error)


def test_the_same_claim_is_accepted():
    assert BINDING.refusal(dataclasses.replace(BINDING)) is None


def test_an_entry_registered_without_a_session_accepts_the_same_user_in_any():
    anonymous = dataclasses.replace(BINDING, user="", session=None)
    assert anonymous.refusal(dataclasses.replace(anonymous, session="later")) is None


# -- entries this process holds ----------------------------------------------------------------


def waiting_link(waited: float) -> resume.Link:
    """An entry of this process whose connection dropped ``waited`` seconds ago."""
    from djust.uploads.channel import ledger
    from djust.uploads.entry import UploadEntry
    from djust.uploads.quota import Limits

    entry = UploadEntry(
        ref="1",
        upload_name="files",
        client_name="a.bin",
        raw_name="a.bin",
        client_type="",
        client_size=10,
    )
    hold = ledger.admit(Limits(process_bytes=100, reservation=100), 10, client=None, user=None)
    link = resume.Link(entry, hold, None)
    resume.enroll(link, BINDING)
    link.parked_at = time.monotonic() - waited
    return link


def test_an_entry_within_its_grace_period_is_found(upload_dir):
    link = waiting_link(59)
    try:
        assert resume.find(link.token, BINDING) is link
    finally:
        resume.expire(link)


def test_an_entry_past_its_grace_period_is_refused_and_removed_before_the_sweep(upload_dir):
    link = waiting_link(61)
    with pytest.raises(ResumeExpired):
        resume.find(link.token, BINDING)
    assert link.id not in resume.registry
    assert link.entry.state.value == "cancelled"
