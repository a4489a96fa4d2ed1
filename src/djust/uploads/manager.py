"""A view's upload slots and their entries. Lives on the view; the socket glue drives it."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from djust import conf
from djust.errors import BadRef, DjustError, UnknownSlot
from djust.uploads.config import UploadConfig, make_config
from djust.uploads.entry import State, UploadEntry

MAX_ERRORS_KEPT = 20


@dataclass(frozen=True)
class UploadErrorRecord:
    """A rejected or failed file, as ``uploads.<name>.errors`` lists it."""

    ref: str | None
    client_name: str
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Slot:
    """``uploads.<name>`` in templates: ``entries``, ``errors`` and ``config``."""

    config: UploadConfig
    entries: list[UploadEntry] = field(default_factory=list)
    errors: list[UploadErrorRecord] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name

    def __iter__(self) -> Iterator[UploadEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


class UploadManager:
    """Slots by name, entries by ref, and what the client must be told after a handler ran."""

    def __init__(self) -> None:
        self.slots: dict[str, Slot] = {}
        self.entries: dict[str, UploadEntry] = {}
        self.outbox: list[dict[str, Any]] = []
        # Told of every entry that leaves, however it leaves (the socket glue releases quotas).
        self.on_remove: Callable[[UploadEntry], None] | None = None
        self._consumers: weakref.WeakSet[Generator[UploadEntry, None, None]] = weakref.WeakSet()

    def allow(self, name: str, **options: Any) -> UploadConfig:
        config = make_config(name, max_frame_size=conf.get("MAX_FRAME_SIZE"), **options)
        slot = self.slots.get(name)
        if slot is None:
            self.slots[name] = Slot(config)
        else:
            slot.config = config
        return config

    def slot(self, name: str) -> Slot:
        try:
            return self.slots[name]
        except (KeyError, TypeError):
            raise UnknownSlot(f"no upload slot named {name!r}; call allow_upload() first") from None

    # -- entries ---------------------------------------------------------------------

    def add(self, entry: UploadEntry) -> None:
        self.entries[entry.ref] = entry
        self.slot(entry.upload_name).entries.append(entry)

    def get(self, name: str, ref: str) -> UploadEntry:
        """The entry ``ref`` of slot ``name``; ``BadRef`` if it is not one of that slot's."""
        slot = self.slot(name)
        entry = self.entries.get(str(ref))
        if entry is None or entry.upload_name != slot.name:
            raise BadRef(f"no upload {ref!r} in slot {name!r}")
        return entry

    def remove(self, entry: UploadEntry, state: State, notify: str | None = None) -> None:
        """Take ``entry`` out of its slot in ``state`` and discard its bytes."""
        if self.entries.pop(entry.ref, None) is None:
            return
        slot = self.slots.get(entry.upload_name)
        if slot is not None and entry in slot.entries:
            slot.entries.remove(entry)
        if entry.state is not state:
            entry.move(state)
        entry.discard()
        if self.on_remove is not None:
            self.on_remove(entry)
        if notify:
            self.outbox.append({"t": notify, "ref": entry.ref})

    def fail(self, entry: UploadEntry, error: DjustError) -> None:
        entry.error, entry.error_code = error.message, error.code
        self.record(entry.upload_name, entry.ref, entry.client_name, error)
        self.remove(entry, State.FAILED)

    def record(self, name: str, ref: str | None, client_name: str, error: DjustError) -> None:
        slot = self.slots.get(name)
        if slot is not None:
            slot.errors.append(UploadErrorRecord(ref, client_name, error.code, error.message))
            del slot.errors[:-MAX_ERRORS_KEPT]

    # -- the mixin's API -------------------------------------------------------------

    def consume(self, name: str) -> Generator[UploadEntry, None, None]:
        slot = self.slot(name)
        gen = self._consume(slot)
        self._consumers.add(gen)
        return gen

    def _consume(self, slot: Slot) -> Generator[UploadEntry, None, None]:
        slot.errors.clear()
        for entry in [e for e in slot.entries if e.complete]:
            try:
                yield entry
            finally:
                # Also on break or an exception in the caller's loop: it is done with this one.
                self.remove(entry, State.CONSUMED, notify="upload_consumed")

    def close_consumers(self) -> None:
        """Finish consume loops a handler left open, so their current entry is removed now."""
        for gen in list(self._consumers):
            gen.close()
        self._consumers = weakref.WeakSet()

    def cancel(self, name: str, ref: str) -> None:
        entry = self.get(name, ref)
        self.remove(entry, State.CANCELLED, notify="upload_cancelled")

    def discard_all(self) -> None:
        for entry in list(self.entries.values()):
            self.remove(entry, State.CANCELLED)
