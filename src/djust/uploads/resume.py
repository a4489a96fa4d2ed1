"""Uploads that outlive their connection: tokens, waiting entries, state files and handovers.

When a connection drops, its unfinished and unconsumed entries wait, for
``DJUST["UPLOAD_RESUME_TTL"]`` seconds, for the page to come back and claim them with the
token it got at registration (docs/uploads.md, "Resume").

- In the process that holds one, a waiting entry keeps its writer, its hash and its content
  checks: the page continues where the server's bytes end, with no disk round trip.
- With the default writer, an entry also lives on disk: its file and, beside it, a state file
  that says whose it is. The process that owns the entry holds an ``flock`` on the state file.
  Another process sharing ``UPLOAD_DIR`` (a restarted worker, another worker) adopts the entry
  from disk: it asks the owner, over the channel layer, to hand it over (the owner writes what
  it holds and lets go), or finds the lock free because the owner is gone, then continues from
  the bytes in the file, whose hash it computes again.
- A writer of the slot's own that another process can go on with (an ``AdoptableWriter``, such
  as the S3 writer) keeps its ``resume_state()`` in the state file (a ``Keeper`` writes it on
  the entry's lane); the adopting process makes the slot's writer and ``resume``s it from there.
- Whatever waits longer than the grace period is removed, in memory and on disk, with what its
  writer left elsewhere (``AdoptableWriter.abandon``: an S3 multipart upload is aborted).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from djust import conf, strings
from djust.errors import (
    DjustError,
    FileChanged,
    ResumeDenied,
    ResumeExpired,
    ResumeUnavailable,
    UnknownSlot,
    WriteFailed,
)
from djust.uploads.writers import (
    TempFileWriter,
    UploadWriter,
    WriterFactory,
    new_writer,
    upload_dir,
)

if TYPE_CHECKING:
    from djust.uploads.channel import UploadChannel
    from djust.uploads.entry import UploadEntry
    from djust.uploads.flow import Transfer
    from djust.uploads.quota import Hold

logger = logging.getLogger("djust")

PREFIX = "djust-r-"
DATA = ".upload"
STATE = ".state"
_FILE = re.compile(rf"{re.escape(PREFIX)}([0-9a-f]{{32}})(\.upload|\.state)")
_TOKEN = re.compile(r"([0-9a-f]{16})\.([0-9a-f]{32})")
_DIR_ID = ".djust-id"
# How long a process waits for another to hand an entry over before it gives up.
HANDOVER_TIMEOUT = 5.0
# How long, at exit, a process waits for its entries' writers to write what they hold.
EXIT_TIMEOUT = 30.0
HASH_BLOCK = 1 << 20
# The first bytes a Keeper saves, for the content checks of the process that adopts the entry:
# more than they read (flow.ACTIVE_HEAD).
HEAD = 1024


def ttl() -> float:
    """The grace period in seconds (0: uploads end with their connection)."""
    return float(conf.get("UPLOAD_RESUME_TTL") or 0)


@dataclass(frozen=True)
class Binding:
    """Whose an entry is and which file it holds: a resume must match it."""

    user: str
    session: str | None
    view: str
    slot: str
    raw_name: str
    size: int
    modified: int | None
    client_type: str
    client_path: str | None

    def refusal(self, claim: Binding) -> DjustError | None:
        """Why ``claim`` may not resume this entry, or None."""
        name = claim.raw_name[:200]
        if claim.user != self.user or (self.session is not None and claim.session != self.session):
            return ResumeDenied(strings.text("resume_denied", name=name))
        if claim.view != self.view or claim.slot != self.slot:
            return UnknownSlot(f"this page has no upload {self.slot!r} to resume")
        if (claim.raw_name, claim.size) != (self.raw_name, self.size) or (
            claim.modified != self.modified
        ):
            return FileChanged(strings.text("resume_other_file", name=name))
        return None


class Link:
    """An entry's tie to the connection it uploads over, or to none while it waits.

    Its writer's reports (bytes written, finished, failed) come here on the event loop and go to
    the connection, if any; a waiting entry finishes or fails by itself.
    """

    __slots__ = (
        "binding",
        "channel",
        "entry",
        "hold",
        "hooked",
        "id",
        "parked_at",
        "token",
        "transfer",
    )

    def __init__(self, entry: UploadEntry, hold: Hold, binding: Binding | None) -> None:
        self.entry = entry
        self.hold = hold
        self.binding = binding
        self.channel: UploadChannel | None = None
        self.transfer: Transfer | None = None  # kept while it waits (window, content checks)
        self.parked_at: float | None = None
        self.hooked = False  # handle_upload_complete ran for it
        self.id: str | None = None
        self.token: str | None = None

    def written(self, total: int) -> None:
        if self.channel is not None:
            self.channel.on_written(self, total)

    def finished(self, sha256: str) -> None:
        if self.channel is not None:
            self.channel.on_finished(self, sha256)
        elif not self.entry.done:
            from djust.uploads.channel import ledger

            self.entry.finish(sha256)  # complete while it waits: the page finds it complete
            ledger.finish(self.hold)

    def failed(self, exc: BaseException) -> None:
        if self.channel is not None:
            self.channel.on_failed(self, exc)
        else:
            logger.warning("a waiting upload failed to be stored: %s", exc)
            expire(self)


# Entries of this process that can be resumed, by id.
registry: dict[str, Link] = {}
_sweeper: asyncio.Task[None] | None = None


def enroll(link: Link, binding: Binding) -> None:
    """Make ``link`` resumable: it gets an id and a token (when resume is on)."""
    if not ttl():
        return
    link.binding = binding
    link.id = secrets.token_hex(16)
    link.token = f"{directory_id()}.{link.id}"
    registry[link.id] = link


def forget(link: Link) -> None:
    """The entry left for good (consumed, cancelled, failed, expired)."""
    if link.id is not None:
        registry.pop(link.id, None)


def park(link: Link) -> None:
    """The entry's connection is gone: it waits for the page, at most the grace period."""
    link.channel = None
    link.parked_at = time.monotonic()
    _start_sweeper()


def expire(link: Link) -> None:
    """Remove a waiting entry and its files."""
    from djust.uploads.channel import ledger
    from djust.uploads.entry import State

    forget(link)
    entry = link.entry
    if entry.state in (State.REGISTERED, State.UPLOADING, State.COMPLETE):
        entry.move(State.CANCELLED)
    entry.discard()  # the writer closes on its lane, never on the loop; the file goes now
    ledger.release(link.hold)


def expired(claim: Binding) -> ResumeExpired:
    """The refusal of an entry that is gone, in the page's language (the caller activates it)."""
    return ResumeExpired(strings.text("resume_expired", name=claim.raw_name[:200]))


def unavailable(claim: Binding) -> ResumeUnavailable:
    """The refusal of an entry this server cannot reach."""
    return ResumeUnavailable(strings.text("resume_unavailable", name=claim.raw_name[:200]))


def find(token: str, claim: Binding) -> Link | None:
    """This process's entry for ``token``, if it holds it; a typed error if it may not be had."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise expired(claim)  # not a token of this site's
    link = registry.get(match.group(2))
    if link is None:
        if match.group(1) != directory_id():
            raise unavailable(claim)  # started where this server cannot see
        return None
    assert link.binding is not None
    refusal = link.binding.refusal(claim)
    if refusal is not None:
        raise refusal
    if link.parked_at is not None and time.monotonic() - link.parked_at > ttl():
        expire(link)  # its grace period is over: gone now, not at the sweep's next pass
        raise expired(claim)
    return link


# -- on disk ---------------------------------------------------------------------------


_dir_ids: dict[str, str] = {}


def directory_id() -> str:
    """The upload directory's own id: the same for every process that shares the directory."""
    directory = upload_dir()
    key = str(directory)
    known = _dir_ids.get(key)
    if known is not None:
        return known
    path = directory / _DIR_ID
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(8))
    for _ in range(50):  # another process may be writing it right now
        text = path.read_text().strip()
        if re.fullmatch(r"[0-9a-f]{16}", text):
            _dir_ids[key] = text
            return text
        time.sleep(0.01)
    raise ResumeUnavailable(f"{path} does not hold an upload directory id")


def files(directory: Path, entry_id: str) -> tuple[Path, Path]:
    """The entry's data file and, beside it, its state file."""
    base = directory / f"{PREFIX}{entry_id}"
    return base.with_suffix(DATA), base.with_suffix(STATE)


def write_state(fd: int, binding: Binding, owner: str | None, **kept: Any) -> None:
    """Whose the entry is, which process (its channel-layer mailbox) owns it now, and what a
    ``Keeper`` keeps for its writer (``writer``, ``head``).

    Written in place, through the descriptor that holds the lock (a new file would not be
    locked); a reader that catches it half written reads it again.
    """
    data = json.dumps({"binding": asdict(binding), "owner": owner or "", **kept}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


@dataclass(frozen=True)
class Saved:
    """An entry's state file: whose it is, who owns it, and what its own writer kept."""

    binding: Binding
    owner: str
    writer: dict[str, Any] | None = None  # {"class": dotted path, "state": resume_state()}
    head: bytes = b""  # the file's first bytes, beside a writer's state


def read_state(path: Path) -> Saved:
    """The entry's state file; ``FileNotFoundError`` if it is gone."""
    for _ in range(20):
        text = path.read_text()
        try:
            state = json.loads(text)
            return Saved(
                Binding(**state["binding"]),
                str(state["owner"]),
                state.get("writer"),
                base64.b64decode(state.get("head", "")),
            )
        except (ValueError, TypeError, KeyError):
            time.sleep(0.01)  # being written
    raise ResumeExpired("this upload is gone: its state cannot be read")


class ResumableFileWriter(TempFileWriter):
    """The default writer of a resumable entry: its file outlives the process that wrote it.

    On ``open`` (the entry's lane) it writes the state file, locks it for as long as this
    process owns the entry, and opens the data file at ``offset``. ``release`` lets go of the
    entry without removing anything: another process adopts it.
    """

    def __init__(
        self,
        entry_id: str,
        binding: Binding,
        *,
        owner: str | None,
        direct: bool = False,
        lock_fd: int | None = None,
        offset: int = 0,
    ) -> None:
        super().__init__(direct=direct)
        self.entry_id = entry_id
        self.binding = binding
        self.owner = owner
        self.lock_fd = lock_fd
        self.offset = offset
        data, self.state_path = files(self.directory, entry_id)
        self.path = str(data)

    def open(self) -> None:
        if self.lock_fd is None:
            fd = os.open(self.state_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else can hold it
            self.lock_fd = fd
        write_state(self.lock_fd, self.binding, self.owner)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, self.offset)
        os.lseek(self._fd, self.offset, os.SEEK_SET)
        if self.direct:
            from djust.uploads.writers import _set_direct

            self.direct = _set_direct(self._fd, True) if self.offset % 4096 == 0 else False

    def close(self, reason: Any) -> None:
        super().close(reason)  # the data file goes whatever the reason: it was a temp file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.state_path)
        self._unlock()

    def release(self) -> None:
        """Let another process have the entry: close the files, keep them, unlock."""
        self._release()
        self._unlock()

    def _unlock(self) -> None:
        if self.lock_fd is not None:
            fd, self.lock_fd = self.lock_fd, None
            os.close(fd)


class AdoptableWriter(UploadWriter):
    """A writer whose upload another process can go on with (a restarted server, a worker).

    What it stores must outlive the process: an object store's multipart upload, say. djust
    saves ``resume_state()`` beside the entry in ``UPLOAD_DIR``; the process that adopts the
    entry makes a writer with the slot's factory and calls ``resume(state)`` on it.
    """

    _on_change: Callable[[], None] | None = None

    def resume_state(self) -> dict[str, Any]:
        """What another process needs to go on (JSON). Asked after each call and on
        ``state_changed()``, saved when it changed: the same dict while nothing changed, a new
        one after."""
        raise NotImplementedError

    def state_changed(self) -> None:
        """Call it when ``resume_state()`` changed between calls (a part landed, on a thread of
        the writer's own): it is saved at once."""
        if self._on_change is not None:
            self._on_change()

    def resume(self, state: dict[str, Any]) -> int:
        """Go on with the upload ``state`` describes, on a thread, before ``open()``; the bytes
        it kept, from which the page sends the rest."""
        raise NotImplementedError

    def suspend(self) -> None:
        """This process lets go of the upload (SIGTERM, another worker takes it): make what was
        written durable and keep it. Nothing follows."""

    def stored_sha256(self) -> str:
        """The SHA-256 (hex) of the content as stored, read back: the entry's, asked once
        ``finish()`` returned, when another process wrote part of it (djust did not see it)."""
        raise NotImplementedError

    @classmethod
    def abandon(cls, state: dict[str, Any]) -> None:
        """Remove what an upload that no process holds left behind (its grace period is over)."""


def _class_path(writer: UploadWriter) -> str:
    return f"{type(writer).__module__}.{type(writer).__qualname__}"


class Keeper(UploadWriter):
    """Runs an ``AdoptableWriter`` on the entry's lane and keeps its state beside the entry.

    The state file (whose entry it is, which process holds it, the writer's ``resume_state()``
    and the file's first bytes) is written when the writer opens, again after each call that
    changed that state, and removed when the entry leaves. This process holds its lock as long
    as it owns the entry; ``release`` lets another process have it.
    """

    def __init__(
        self,
        inner: AdoptableWriter,
        entry_id: str,
        binding: Binding,
        *,
        owner: str | None,
        lock_fd: int | None = None,
        head: bytes = b"",
    ) -> None:
        self.inner = inner
        self.binding = binding
        self.owner = owner
        self.lock_fd = lock_fd
        self.head = head
        self.state_path = files(upload_dir(), entry_id)[1]
        self._saved: dict[str, Any] | None = None
        self._saving = threading.Lock()  # the lane and the writer's own threads save
        inner._on_change = self._save

    def __repr__(self) -> str:
        return f"<Keeper {self.inner!r}>"

    @property
    def path(self) -> str | None:  # type: ignore[override]
        return self.inner.path

    def open(self) -> None:
        if self.lock_fd is None:
            fd = os.open(self.state_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else can hold it
            self.lock_fd = fd
        self.inner.open()
        self._save()

    def write(self, data: memoryview) -> None:
        grew = len(self.head) < HEAD
        if grew:
            self.head += bytes(data[: HEAD - len(self.head)])
        self.inner.write(data)
        self._save(force=grew)

    def finish(self) -> None:
        self.inner.finish()
        self._save()

    def close(self, reason: Any) -> None:
        try:
            self.inner.close(reason)
        finally:
            self.drop()

    def release(self) -> None:
        """Let another process have the entry: the writer suspends, its state is saved, unlock."""
        try:
            self.inner.suspend()
            self._save()
        finally:
            with self._saving:
                self._unlock()

    def save(self) -> None:
        """Save the writer's state now if it changed (a writer that runs its own lane)."""
        self._save()

    def drop(self) -> None:
        """The entry left: its state file goes, and the lock with it."""
        with self._saving:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.state_path)
            self._unlock()

    def _save(self, *, force: bool = False) -> None:
        with self._saving:
            if self.lock_fd is None:
                return  # not opened yet, or let go
            state = self.inner.resume_state()
            if not force and (state is self._saved or state == self._saved):
                return
            self._saved = state
            writer = {"class": _class_path(self.inner), "state": state}
            head = base64.b64encode(self.head).decode()
            write_state(self.lock_fd, self.binding, self.owner, writer=writer, head=head)

    def _unlock(self) -> None:
        if self.lock_fd is not None:
            fd, self.lock_fd = self.lock_fd, None
            os.close(fd)


def _owner() -> str | None:
    """This process's mailbox on the channel layer, where others ask for its entries."""
    return _mailbox.channel if _mailbox is not None else None


def lane_writer(writer: UploadWriter, link: Link) -> UploadWriter:
    """What runs on the entry's lane: its writer, kept by a ``Keeper`` when the entry can be
    resumed and another process could go on with that writer."""
    if link.id is None or link.binding is None or not isinstance(writer, AdoptableWriter):
        return writer
    return Keeper(writer, link.id, link.binding, owner=_owner())


@dataclass
class Adoption:
    """An entry taken over from disk: its files, locked by this process, and its bytes."""

    entry_id: str
    token: str
    binding: Binding
    lock_fd: int
    received: int
    sha256: Any  # the hash of the bytes received
    head: bytes  # the first bytes, for the content checks
    writer: dict[str, Any] | None = None  # what the slot's own writer saved, if it has one
    lane: UploadWriter | None = None  # that writer's Keeper, once resume_writer resumed it


class _ReadBack:
    """An adopted entry's SHA-256: the bytes written before are not here to hash, so its writer
    reads the stored content back once it is whole."""

    def __init__(self, writer: AdoptableWriter) -> None:
        self.writer = writer

    def update(self, data: Any) -> None:
        pass

    def hexdigest(self) -> str:
        return self.writer.stored_sha256()


async def resume_writer(
    factory: WriterFactory, entry: UploadEntry, adoption: Adoption
) -> UploadWriter:
    """The slot's writer for an adopted ``entry``, going on with what it stored: sets the
    adoption's bytes, hash and ``lane``. The adoption's lock is let go if it cannot."""
    claim = adoption.binding
    try:
        writer = new_writer(factory, entry)
        saved = adoption.writer or {}
        if not isinstance(writer, AdoptableWriter) or saved.get("class") != _class_path(writer):
            raise unavailable(claim)  # another writer started it: this one cannot go on
        try:
            kept = await asyncio.to_thread(writer.resume, saved["state"])
        except ResumeExpired:
            raise expired(claim) from None
        except DjustError:
            raise
        except Exception as exc:
            logger.exception("resuming the upload %s with %r failed", adoption.entry_id, writer)
            raise WriteFailed(f"cannot store {entry.client_name}: {exc}") from exc
    except BaseException:
        os.close(adoption.lock_fd)
        raise
    adoption.received = kept
    # Nothing kept: djust sees every byte again and hashes them itself.
    adoption.sha256 = _ReadBack(writer) if kept else None
    adoption.head = adoption.head if kept else b""
    adoption.lane = Keeper(
        writer,
        adoption.entry_id,
        claim,
        owner=_owner(),
        lock_fd=adoption.lock_fd,
        head=adoption.head,
    )
    return writer


async def adopt(token: str, claim: Binding) -> Adoption:
    """Take over an entry that another process (alive or not) left in the shared directory."""
    match = _TOKEN.fullmatch(token)
    assert match is not None
    entry_id = match.group(2)
    directory = upload_dir()
    data, state = files(directory, entry_id)
    try:
        saved = await asyncio.to_thread(read_state, state)
    except (FileNotFoundError, ResumeExpired):
        raise expired(claim) from None
    binding = saved.binding
    refusal = binding.refusal(claim)
    if refusal is not None:
        raise refusal
    lock_fd = await _take_lock(state, saved.owner, entry_id, claim)
    try:
        if _expired_on_disk(data, state):
            await asyncio.to_thread(_remove, directory, entry_id)
            raise expired(claim)
        if saved.writer is None:
            received, sha256, head = await asyncio.to_thread(_read_back, data, binding.size)
        else:
            # Read again under the lock: the owner saved its writer's last state as it let go.
            saved = await asyncio.to_thread(read_state, state)
            received, sha256, head = 0, None, saved.head  # resume_writer asks the writer
    except BaseException:
        os.close(lock_fd)
        raise
    return Adoption(entry_id, token, binding, lock_fd, received, sha256, head, saved.writer)


async def _take_lock(state: Path, owner: str, entry_id: str, claim: Binding) -> int:
    """Lock the entry's state file, asking its owner to let go of it first if it still lives."""
    try:
        fd = os.open(state, os.O_RDWR)
    except FileNotFoundError:
        raise expired(claim) from None
    deadline = time.monotonic() + HANDOVER_TIMEOUT
    asked = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        else:
            if os.path.exists(state):
                return fd
            os.close(fd)  # removed while we waited: it ended
            raise expired(claim)  # it ended on the other server meanwhile
        if not asked:
            asked = True
            await ask_release(owner, entry_id)
        if time.monotonic() > deadline:
            os.close(fd)
            raise unavailable(claim)  # its owner did not hand it over
        await asyncio.sleep(0.05)


def _expired_on_disk(data: Path, state: Path) -> bool:
    newest = 0.0
    for path in (data, state):
        with contextlib.suppress(FileNotFoundError):
            newest = max(newest, path.stat().st_mtime)
    return time.time() - newest > ttl()


def _read_back(data: Path, size: int) -> tuple[int, Any, bytes]:
    """The bytes in the entry's file: how many, their hash and the first of them."""
    digest = hashlib.sha256()
    head = b""
    received = 0
    try:
        with open(data, "rb") as stored:
            while received < size:
                block = stored.read(min(HASH_BLOCK, size - received))
                if not block:
                    break
                if not head:
                    head = block[:65536]
                digest.update(block)
                received += len(block)
    except FileNotFoundError:
        pass
    return received, digest, head


def remove_files(directory: Path, entry_id: str) -> None:
    for path in files(directory, entry_id):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove(directory: Path, entry_id: str, *, writers: bool = True) -> bool:
    """Remove an entry that waited too long (its lock held): what its own writer left elsewhere,
    then its files. Whether it is gone: not while its writer fails, nor, without ``writers``,
    if it has one (its storage is far away: a start-up must not wait on it)."""
    try:
        saved: Saved | None = read_state(files(directory, entry_id)[1])
    except (FileNotFoundError, ResumeExpired):
        saved = None  # no state, or not one that can be read: nothing to tell a writer
    if saved is not None and saved.writer is not None:
        if not writers:
            return False
        try:
            _writer_class(saved.writer["class"]).abandon(saved.writer["state"])
        except ImportError as exc:
            logger.warning("the upload %s: no writer to abandon it (%s)", entry_id, exc)
        except Exception:
            logger.exception("abandoning the upload %s failed; trying again later", entry_id)
            return False
    remove_files(directory, entry_id)
    return True


def _writer_class(path: str) -> type[AdoptableWriter]:
    """The writer class a state file names; ``ImportError`` if it is not an adoptable one."""
    from django.utils.module_loading import import_string

    found = import_string(path)
    if not (isinstance(found, type) and issubclass(found, AdoptableWriter)):
        raise ImportError(f"{path} is not an AdoptableWriter")
    return found


def sweep(directory: Path | None = None) -> list[str]:
    """Remove the entries nobody holds that waited longer than the grace period, and what their
    writers left elsewhere."""
    return _sweep(directory or upload_dir())[0]


def _sweep(directory: Path, *, writers: bool = True) -> tuple[list[str], int]:
    """``sweep``: the entries removed, and how many that nobody holds are left."""
    removed = []
    left = 0
    ids = set()
    for path in directory.iterdir():
        match = _FILE.fullmatch(path.name)
        if match:
            ids.add(match.group(1))
    for entry_id in ids - set(registry):
        data, state = files(directory, entry_id)
        try:
            fd = os.open(state, os.O_RDONLY)
        except FileNotFoundError:
            fd = None
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live process owns it
            if _expired_on_disk(data, state) and _remove(directory, entry_id, writers=writers):
                removed.append(entry_id)
            else:
                left += 1
        finally:
            if fd is not None:
                os.close(fd)
    return removed, left


def sweep_quietly() -> list[str]:
    """``sweep`` at start-up: nothing in a directory that is not safe to use (check E009).

    It never waits on a writer's storage; what it leaves (entries of writers of their own, and
    those still in their grace period) a thread of its own sweeps until none is left, so that
    an S3 upload a dead process left is aborted when its grace period ends.
    """
    from djust.errors import UnsafeUploadDir

    try:
        directory = upload_dir()
        removed, left = _sweep(directory, writers=False)
    except UnsafeUploadDir:
        return []
    if left:
        threading.Thread(
            target=_sweep_until_none_left,
            args=(directory,),
            name="djust-upload-sweeper",
            daemon=True,
        ).start()
    return removed


def _sweep_until_none_left(directory: Path) -> None:
    left = 1
    while left:
        time.sleep(_period())
        try:
            left = _sweep(directory)[1]
        except Exception:
            logger.exception("sweeping the upload directory %s failed", directory)


def _period() -> float:
    """How often waiting entries are looked at: a quarter of the grace period, at most 60 s."""
    return max(0.05, min(60.0, ttl() / 4))


# -- waiting entries of this process ----------------------------------------------------------


def _start_sweeper() -> None:
    global _sweeper
    if _sweeper is None or _sweeper.done():
        _sweeper = asyncio.get_running_loop().create_task(_sweep_forever())


async def _sweep_forever() -> None:
    period = _period()
    last_disk = time.monotonic()
    while any(link.parked_at is not None for link in registry.values()) or registry:
        await asyncio.sleep(period)
        now = time.monotonic()
        for link in list(registry.values()):
            if link.parked_at is not None and now - link.parked_at > ttl():
                expire(link)
        if now - last_disk > max(period, 60.0):
            last_disk = now
            with contextlib.suppress(DjustError, OSError):
                await asyncio.to_thread(sweep)


# -- handing entries over between processes (over the channel layer) -----------------------


class Mailbox:
    """This process's address on the channel layer, where other processes ask for entries."""

    def __init__(self, layer: Any, channel: str) -> None:
        self.layer = layer
        self.channel = channel
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the upload mailbox %s failed; retrying", self.channel)
                await asyncio.sleep(1)  # a layer that is down (Redis restarting) comes back
                continue
            kind, entry_id = message.get("type"), str(message.get("id", ""))
            if kind == "djust.upload.release":
                await hand_over(entry_id)
                reply = message.get("reply")
                if isinstance(reply, str) and reply:
                    answer = {"type": "djust.upload.released", "id": entry_id}
                    with contextlib.suppress(Exception):
                        await self.layer.send(reply, answer)
            elif kind == "djust.upload.released":
                waiter = self.waiting.pop(entry_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)


_mailbox: Mailbox | None = None


async def mailbox() -> Mailbox | None:
    """This process's mailbox, made on first use; None without a channel layer."""
    global _mailbox
    box, loop = _mailbox, asyncio.get_running_loop()
    if box is not None and not box.task.done() and box.task.get_loop() is loop:
        return box
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return None  # one process: nobody else to hand entries to
    try:
        channel = await layer.new_channel("djust-uploads.")
    except Exception:
        logger.exception("cannot open an upload mailbox on the channel layer")
        return None
    _mailbox = Mailbox(layer, channel)
    return _mailbox


async def owner_address() -> str | None:
    box = await mailbox()
    return box.channel if box is not None else None


async def ask_release(owner: str, entry_id: str) -> None:
    """Ask the process at ``owner`` to let go of ``entry_id``; wait (a while) for its answer."""
    box = await mailbox()
    if box is None or not owner or owner == box.channel:
        return
    waiter = asyncio.get_running_loop().create_future()
    box.waiting[entry_id] = waiter
    try:
        await box.layer.send(
            owner, {"type": "djust.upload.release", "id": entry_id, "reply": box.channel}
        )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(waiter, HANDOVER_TIMEOUT)
    finally:
        box.waiting.pop(entry_id, None)


async def hand_over(entry_id: str) -> None:
    """Another process wants this entry: write what it holds, close its files, let go."""
    link = registry.get(entry_id)
    if link is None:
        return
    if link.channel is not None:
        await link.channel.surrender(link)
    await release(link)


async def release(link: Link) -> None:
    """Let go of a waiting entry without removing it: its files stay for another process."""
    from djust.uploads.channel import ledger

    forget(link)
    spool = link.entry.spool
    writer = _kept(link)
    if spool is not None:
        await asyncio.to_thread(spool.release, EXIT_TIMEOUT)
    if writer is not None:
        await asyncio.to_thread(writer.release)
    elif link.entry.writer is not None:
        link.entry.discard()  # a writer of its own that cannot be adopted elsewhere
    ledger.release(link.hold)


def _kept(link: Link) -> ResumableFileWriter | Keeper | AdoptableWriter | None:
    """The writer on the entry's lane if another process can take the entry over from it, or
    a writer that keeps its own state (a direct upload's, which has no lane here)."""
    spool = link.entry.spool
    writer = spool.inner if spool is not None else link.entry.writer
    if isinstance(writer, (ResumableFileWriter, Keeper)):
        return writer
    if isinstance(writer, AdoptableWriter) and getattr(writer, "keeper", None) is not None:
        return writer
    return None


@atexit.register
def _at_exit() -> None:
    """The process ends (a deploy, SIGTERM): write what the entries hold and let go of them."""
    for link in list(registry.values()):
        spool = link.entry.spool
        writer = _kept(link)
        try:
            if spool is not None:
                spool.release(EXIT_TIMEOUT)
            if writer is not None:
                writer.release()
        except Exception:
            logger.exception("keeping the upload %s for later failed", link.id)
    registry.clear()


def reset() -> None:
    """Forget this process's waiting entries and mailbox (tests, and a loop that closed), off
    the event loop: their writers are closed and their files removed when it returns."""
    global _mailbox, _sweeper
    closing = []
    for link in list(registry.values()):
        if link.parked_at is not None:
            with contextlib.suppress(Exception):
                expire(link)
            if link.entry.spool is not None:
                closing.append(link.entry.spool)
    for spool in closing:
        spool.wait_closed(EXIT_TIMEOUT)  # a writer busy on its lane closes after its call
    registry.clear()
    _mailbox = None
    _sweeper = None
