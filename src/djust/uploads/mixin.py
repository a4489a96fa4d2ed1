"""``UploadMixin``: upload slots for a LiveView (either base order works)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from djust.uploads.config import UploadConfig
from djust.uploads.entry import UploadEntry
from djust.uploads.manager import UploadManager
from djust.uploads.writers import WriterFactory


class UploadMixin:
    """Adds ``allow_upload``, ``consume_uploaded_entries``, ``uploaded_entries``,
    ``get_uploads``, ``cancel_upload`` and the ``handle_upload_complete`` hook."""

    # The live session routes the upload messages and chunk frames to this extension.
    djust_extensions: tuple[str, ...] = ("djust.uploads.channel.UploadChannel",)

    @property
    def _djust_uploads(self) -> UploadManager:
        manager = self.__dict__.get("_djust_upload_manager")
        if manager is None:
            manager = self.__dict__["_djust_upload_manager"] = UploadManager()
        return manager

    def allow_upload(
        self,
        name: str,
        *,
        accept: str = "",
        max_entries: int = 1,
        max_file_size: int = 10_000_000,
        chunk_size: int = 65536,
        auto_upload: bool = True,
        allow_active_content: bool = False,
        writer: WriterFactory | None = None,
        external: Any = None,
    ) -> UploadConfig:
        """Configure the upload slot ``name`` (call in ``mount``)."""
        return self._djust_uploads.allow(
            name,
            accept=accept,
            max_entries=max_entries,
            max_file_size=max_file_size,
            chunk_size=chunk_size,
            auto_upload=auto_upload,
            allow_active_content=allow_active_content,
            writer=writer,
            external=external,
        )

    def consume_uploaded_entries(self, name: str) -> Iterator[UploadEntry]:
        """Yield the slot's completed entries, removing each (and its file) once you are done."""
        return self._djust_uploads.consume(name)

    def uploaded_entries(self, name: str) -> tuple[list[UploadEntry], list[UploadEntry]]:
        """The slot's entries as ``(completed, in_progress)``."""
        return self._djust_uploads.uploaded(name)

    def handle_upload_complete(self, name: str, entry: UploadEntry) -> None:
        """Called when an entry of slot ``name`` completes, like a handler; the view re-renders.

        Override it to act without a button (consume the entry, save an avatar on drop).
        """

    def get_uploads(self, name: str) -> list[UploadEntry]:
        """All entries of the slot, in progress or complete."""
        return list(self._djust_uploads.slot(name).entries)

    def cancel_upload(self, name: str, ref: str) -> None:
        """Cancel the slot's entry ``ref``: the client stops sending and the file is removed."""
        self._djust_uploads.cancel(name, ref)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        parent = getattr(super(), "get_context_data", None)
        context: dict[str, Any] = parent(**kwargs) if parent else {}
        context["uploads"] = dict(self._djust_uploads.slots)
        return context
