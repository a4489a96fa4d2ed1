"""Where an upload's bytes go as they arrive: a small writer interface and the temp-file default."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from djust import conf

PREFIX = "djust-"
SUFFIX = ".upload"
_ORPHAN = re.compile(rf"{re.escape(PREFIX)}(\d+)-.*{re.escape(SUFFIX)}")


class UploadWriter(Protocol):
    """Receives one entry's bytes in order, on a worker thread (``open`` on the event loop)."""

    path: str | None

    def open(self) -> None:
        """Prepare to receive bytes."""

    def write(self, data: memoryview) -> None:
        """Append ``data``."""

    def close(self) -> None:
        """All bytes arrived; keep them."""

    def abort(self) -> None:
        """The upload failed or was dropped; discard everything."""


def upload_dir() -> Path:
    """The directory for in-progress uploads (``DJUST['UPLOAD_DIR']`` or the system temp dir)."""
    configured = conf.get("UPLOAD_DIR")
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "djust-uploads"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


class TempFileWriter:
    """Writes to a private temp file named after this process, removed on ``abort``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or upload_dir()
        self.path: str | None = None
        self._fd: int | None = None

    def open(self) -> None:
        self._fd, self.path = tempfile.mkstemp(
            prefix=f"{PREFIX}{os.getpid()}-", suffix=SUFFIX, dir=self.directory
        )

    def write(self, data: memoryview) -> None:
        assert self._fd is not None
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def abort(self) -> None:
        self.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


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
    directory = directory or upload_dir()
    removed = []
    for path in directory.iterdir():
        match = _ORPHAN.fullmatch(path.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
    return removed
