"""Where an upload's bytes go as they arrive: the writer interface and the temp-file default.

A writer is made for one entry by the slot's factory, receives the entry's bytes in order on a
thread of its own, finishes when the last byte is in, and is told why it closes: ``"done"``
(the handler consumed the entry), ``"cancel"`` (cancelled, or the connection closed) or
``"error"`` (the upload failed).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import inspect
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from djust import conf
from djust.errors import DjustError, UnsafeUploadDir, UploadDirUnavailable, WriteFailed

if TYPE_CHECKING:
    from djust.uploads.entry import UploadEntry

PREFIX = "djust-"
SUFFIX = ".upload"
_ORPHAN = re.compile(rf"{re.escape(PREFIX)}(\d+)-.*{re.escape(SUFFIX)}")

# What to do about an upload directory another user could write in (log and system check).
UPLOAD_DIR_HINT = (
    "Make it private to the user djust runs as (owned by that user, mode 0700: chown, then "
    "chmod 700), or set DJUST['UPLOAD_DIR'] to a directory that does not exist yet: djust "
    "creates it with mode 0700."
)

logger = logging.getLogger("djust")
_reported: set[str] = set()  # problems already logged: once each, not at every registration

Reason = Literal["done", "cancel", "error"]


class UploadWriter:
    """Receives one entry's bytes in order, on the entry's own thread, and is told why it closes.

    Subclass it and define ``write`` and ``close``; ``open``, ``finish`` and ``meta`` do nothing
    unless overridden. djust calls ``open`` before the first byte, ``write`` for each block,
    ``finish`` once every byte is written, and ``close`` exactly once when the entry leaves.
    """

    path: str | None = None  # a local file holding the complete content, or None

    def open(self) -> None:
        """Prepare to receive bytes (only entries that receive a byte, or are empty, get it)."""

    def write(self, data: memoryview) -> None:
        """Append ``data`` (valid only during the call: copy what you keep)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Every byte is written: make the result whole; raising fails the upload."""

    def meta(self) -> dict[str, Any]:
        """What the handler gets as ``entry.meta``: a key, a URL, an ETag..."""
        return {}

    def close(self, reason: Reason) -> None:
        """The entry left: keep the result (``done``) or discard it (``cancel``, ``error``)."""


WriterFactory = Callable[..., UploadWriter]


def new_writer(factory: WriterFactory, entry: UploadEntry) -> UploadWriter:
    """The slot's writer for ``entry``: a factory with a required positional parameter gets it."""
    try:
        return factory(entry) if takes_entry(factory) else factory()
    except DjustError:
        raise
    except Exception as exc:
        logger.exception("the writer factory of slot %r failed", entry.upload_name)
        raise WriteFailed(f"cannot store {entry.client_name}: {exc}") from exc


def takes_entry(factory: Callable[..., Any]) -> bool:
    """Whether ``factory`` wants the entry: ``S3MultipartWriter``, ``lambda entry: ...``.

    Factories of the first version (``lambda: ...``, ``TempFileWriter``, whose parameters all
    have defaults) are called with no argument.
    """
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            return parameter.default is parameter.empty
    return False


def upload_dir() -> Path:
    """The directory for in-progress uploads, created with mode 0700; refused if not private."""
    path = configured_upload_dir()
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        # A typed refusal, not an exception that would end the connection.
        problem = f"{path} cannot be created: {exc.strerror}"
        _report(problem, "Create it, or set DJUST['UPLOAD_DIR'] to a directory djust can create.")
        raise UploadDirUnavailable(problem) from exc
    problem = upload_dir_problem(path)
    if problem:
        _report(problem, UPLOAD_DIR_HINT)
        raise UnsafeUploadDir(problem)
    return path


def _report(problem: str, hint: str) -> None:
    if problem not in _reported:
        _reported.add(problem)
        logger.error("djust: uploads are refused: %s. %s", problem, hint)


def configured_upload_dir() -> Path:
    """``DJUST['UPLOAD_DIR']``, or ``djust-uploads`` in the system temp directory."""
    configured = conf.get("UPLOAD_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "djust-uploads"


def upload_dir_problem(path: Path) -> str | None:
    """Why another user could write in ``path`` (and swap a file after its checks), or None."""
    me = os.geteuid()
    try:
        link = path.lstat()
    except FileNotFoundError:
        return None  # it will be created, private, when first used
    except OSError as exc:
        return f"{path} cannot be used: {exc.strerror}"
    # Whoever owns a link can point it elsewhere later.
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in (me, 0):
        return f"{path} is a symbolic link owned by user id {link.st_uid}"
    try:
        info = path.stat()
    except OSError as exc:
        return f"{path} cannot be used: {exc.strerror}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != me:
        return f"{path} belongs to user id {info.st_uid}, not to user id {me} that djust runs as"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} can be written by other users (mode {stat.filemode(info.st_mode)})"
    return None


class TempFileWriter(UploadWriter):
    """Writes to a private temp file named after this process; removed when the entry leaves.

    A temp file is never where a file lives: whatever the reason it closes, what the handler did
    not move away is deleted.

    With ``direct=True`` the file is written with ``O_DIRECT`` where the platform and the file
    system allow it: page-aligned writes whose length is a multiple of 4 KiB (djust's blocks) go
    straight to the device instead of through the page cache; anything else (the file's last
    block, a file system that refuses) quietly turns back to ordinary writes for the rest of the
    file.
    """

    def __init__(self, directory: Path | None = None, direct: bool = False) -> None:
        self.directory = directory or upload_dir()
        self.path: str | None = None
        self.direct = direct
        self._fd: int | None = None

    def open(self) -> None:
        self._fd, self.path = tempfile.mkstemp(
            prefix=f"{PREFIX}{os.getpid()}-", suffix=SUFFIX, dir=self.directory
        )
        if self.direct:
            self.direct = _set_direct(self._fd, True)

    def write(self, data: memoryview) -> None:
        assert self._fd is not None
        if self.direct and len(data) % DIRECT_ALIGN:
            self.direct = _set_direct(self._fd, False)
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            # EINVAL: this buffer's address or this file system does not suit O_DIRECT.
            if not self.direct or exc.errno != errno.EINVAL:
                raise
            self.direct = _set_direct(self._fd, False)
            _write_all(self._fd, data)

    def finish(self) -> None:
        self._release()

    def meta(self) -> dict[str, Any]:
        return {"path": self.path}

    def close(self, reason: Reason) -> None:
        self._release()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


# O_DIRECT writes must start at, and be a multiple of, the device's block size; 4 KiB suits
# every common one (djust's blocks are page-aligned).
DIRECT_ALIGN = 4096


def _set_direct(fd: int, on: bool) -> bool:
    """Turn ``O_DIRECT`` on or off for ``fd``; whether it is now on."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | flag if on else flags & ~flag)
    except OSError:
        return False
    return on


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process has just started: nothing in the directory is its own yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans(directory: Path | None = None) -> list[str]:
    """At start-up: remove temp files of processes that are gone (crash, SIGKILL); list them."""
    if directory is None:
        try:
            directory = upload_dir()
        except UnsafeUploadDir:
            # Touch nothing in a directory another user controls (djust.E009 says so); one that
            # cannot be created holds nothing.
            return []
    removed = []
    for path in directory.iterdir():
        match = _ORPHAN.fullmatch(path.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
    return removed
