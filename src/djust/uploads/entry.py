"""``UploadEntry``: one file of a slot, from registration to consumption."""

from __future__ import annotations

import contextlib
import enum
from typing import IO, TYPE_CHECKING, Any

from django.core.files.uploadedfile import UploadedFile

from djust.uploads import names
from djust.uploads.sniff import SNIFF_BYTES, content_type_of
from djust.uploads.writers import Reason, UploadWriter

if TYPE_CHECKING:
    from djust.uploads.config import UploadConfig
    from djust.uploads.spool import Spool


class State(enum.Enum):
    """An entry's life: registered → uploading → complete, or → failed / cancelled at any point."""

    REGISTERED = "registered"
    UPLOADING = "uploading"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CONSUMED = "consumed"


_NEXT: dict[State, set[State]] = {
    State.REGISTERED: {State.UPLOADING, State.COMPLETE, State.FAILED, State.CANCELLED},
    State.UPLOADING: {State.COMPLETE, State.FAILED, State.CANCELLED},
    State.COMPLETE: {State.CONSUMED, State.CANCELLED},
    State.FAILED: set(),
    State.CANCELLED: set(),
    State.CONSUMED: set(),
}


# Why a writer closes, by the state its entry left in: only a consumed entry is kept.
_REASONS: dict[State, Reason] = {State.CONSUMED: "done", State.FAILED: "error"}


class InvalidTransition(RuntimeError):
    """An entry was asked to move to a state it cannot reach from where it is."""


class EntryFile(UploadedFile):
    """The finished upload as a Django ``UploadedFile`` backed by its temp file.

    ``FileSystemStorage.save`` moves it into place with ``temporary_file_path()`` instead of
    copying it.
    """

    def __init__(self, file: IO[bytes], name: str, content_type: str, size: int, path: str):
        super().__init__(file, name, content_type, size, None)
        self._path = path

    def temporary_file_path(self) -> str:
        return self._path


class UploadEntry:
    """A file in an upload slot. Attributes follow the spec; ``data`` and ``file`` read it back."""

    def __init__(
        self,
        *,
        ref: str,
        upload_name: str,
        client_name: str,
        raw_name: str,
        client_type: str,
        client_size: int,
        writer: UploadWriter | None = None,
        config: UploadConfig | None = None,
    ) -> None:
        self.ref = ref
        self.upload_name = upload_name
        self.client_name = client_name
        self.raw_name = raw_name
        self.client_type = client_type
        self.client_size = client_size
        # A folder upload's path below the chosen folder, each part safe (names.safe_path).
        self.client_path: str | None = None
        self.config = config  # the slot's options, as the writer factory sees them
        self.writer = writer  # the slot's writer, made for this entry
        self.spool: Spool | None = None  # runs the writer on the entry's lane (in the server)
        self.postponed = False  # kept by postpone(): a consume loop leaves it in the slot
        self.done_with_writer = False  # its writer was told why it closes (without a spool)
        self.state = State.REGISTERED
        self.received = 0
        self.error: str | None = None
        self.error_code: str | None = None
        self._sha256: str | None = None
        self._file: EntryFile | None = None
        self._content_type: str | None = None

    def __repr__(self) -> str:
        return (
            f"<UploadEntry {self.upload_name}:{self.ref} {self.client_name!r} {self.state.value}>"
        )

    # -- state -----------------------------------------------------------------------

    def move(self, state: State) -> None:
        if state not in _NEXT[self.state]:
            raise InvalidTransition(f"{self!r} cannot become {state.value}")
        self.state = state

    @property
    def complete(self) -> bool:
        """True once every byte arrived and passed validation."""
        return self.state is State.COMPLETE

    @property
    def done(self) -> bool:
        """True once the entry will receive no more bytes, for any reason."""
        return self.state not in (State.REGISTERED, State.UPLOADING)

    @property
    def progress(self) -> int:
        """Percent of the declared size received, 0 to 100."""
        if self.client_size == 0:
            return 100 if self.complete else 0
        return self.received * 100 // self.client_size

    # -- bytes -----------------------------------------------------------------------

    def finish(self, sha256: str) -> None:
        """Every byte is written (by the writer, already closed) and checked."""
        self._sha256 = sha256
        self.move(State.COMPLETE)

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the received content, once complete."""
        return self._sha256

    @property
    def path(self) -> str | None:
        """The temp file holding the content (for zero-copy moves), if the writer keeps one."""
        return getattr(self.writer, "path", None)

    @property
    def meta(self) -> dict[str, Any]:
        """What the writer says about the stored file (``key``, ``etag``... for S3)."""
        return self.writer.meta() if self.writer is not None else {}

    def postpone(self) -> None:
        """Keep this entry in the slot when the consume loop moves on (its save failed)."""
        self.postponed = True

    @property
    def content_type(self) -> str:
        """The type to store the file under, from its content and extension; never client_type."""
        if self._content_type is not None:
            return self._content_type
        if not self.complete or self.path is None:
            return content_type_of(self.client_name)
        try:
            with open(self.path, "rb") as stored:
                head = stored.read(SNIFF_BYTES)
        except OSError:  # moved away by a storage: the name is all there is left
            return content_type_of(self.client_name)
        self._content_type = content_type_of(self.client_name, head)
        return self._content_type

    @property
    def file(self) -> EntryFile:
        """The content as a readable, seekable Django ``UploadedFile``."""
        if not self.complete:
            raise ValueError(f"{self!r} is not complete")
        if self._file is None or self._file.closed:
            if self.path is None:
                # Never fetched back: the writer stored it where it lives (see entry.meta).
                raise ValueError(f"{self!r} was stored by a writer that keeps no local file")
            self._file = EntryFile(
                open(self.path, "rb"),  # noqa: SIM115  (closed by discard())
                self.client_name,
                # Storages serve the file with it (S3's Content-Type): never the client's word.
                self.content_type,
                self.received,
                self.path,
            )
        self._file.seek(0)
        return self._file

    @property
    def data(self) -> bytes:
        """The whole content as bytes (reads the file: prefer ``file`` for large uploads)."""
        return self.file.read()

    def unique_name(self, prefix: str = "", *, keep_stem: bool = False) -> str:
        """A storage name no other upload gets: ``prefix``, random hex, the plain extension."""
        return names.unique_name(self.client_name, prefix, keep_stem=keep_stem)

    def discard(self) -> None:
        """Close the file and tell the writer why the entry leaves (its state says)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        reason = _REASONS.get(self.state, "cancel")
        if self.spool is not None:
            self.spool.close(reason)  # once: the spool ignores later calls
        elif self.writer is not None and not self.done_with_writer:
            self.done_with_writer = True
            self.writer.close(reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "upload_name": self.upload_name,
            "client_name": self.client_name,
            "client_type": self.client_type,
            "client_size": self.client_size,
            "progress": self.progress,
            "complete": self.complete,
            "error": self.error,
        }
