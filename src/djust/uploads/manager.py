"""A view's upload slots and their entries. Lives on the view; the socket glue drives it."""

from __future__ import annotations

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
        # Consume loops of the running handler, held until it ends: whether it failed decides
        # the fate of the entry each one has in hand.
        self._consumers: list[Generator[UploadEntry, None, None]] = []
        self._failed = False

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
        if self.entries.get(entry.ref) is not entry:
            return
        if entry.state is not state:
            # First: a state it cannot reach leaves it listed, its file and quota still held.
            entry.move(state)
        del self.entries[entry.ref]
        slot = self.slots.get(entry.upload_name)
        if slot is not None and entry in slot.entries:
            slot.entries.remove(entry)
        entry.discard()
        if self.on_remove is not None:
            self.on_remove(entry)
        if notify:
            self.outbox.append({"t": notify, "ref": entry.ref})

    def detach(self, entry: UploadEntry) -> None:
        """Take ``entry`` out of its slot, keeping its bytes (it goes on elsewhere)."""
        if self.entries.get(entry.ref) is not entry:
            return
        del self.entries[entry.ref]
        slot = self.slots.get(entry.upload_name)
        if slot is not None and entry in slot.entries:
            slot.entries.remove(entry)

    def fail(self, entry: UploadEntry, error: DjustError) -> bool:
        """Fail an entry still receiving bytes; whether it did.

        A failure judged before the entry completed or left may arrive after (a stall or a
        writer's failure waiting for the session): the entry stays as it is, nothing recorded.
        """
        if entry.done or self.entries.get(entry.ref) is not entry:
            return False
        entry.error, entry.error_code = error.message, error.code
        self.record(entry.upload_name, entry.ref, entry.client_name, error)
        self.remove(entry, State.FAILED)
        return True

    def record(self, name: str, ref: str | None, client_name: str, error: DjustError) -> None:
        slot = self.slots.get(name)
        if slot is not None:
            slot.errors.append(UploadErrorRecord(ref, client_name, error.code, error.message))
            del slot.errors[:-MAX_ERRORS_KEPT]

    # -- the mixin's API -------------------------------------------------------------

    def consume(self, name: str) -> Generator[UploadEntry, None, None]:
        slot = self.slot(name)
        gen = self._consume(slot)
        self._consumers.append(gen)
        return gen

    def _consume(self, slot: Slot) -> Generator[UploadEntry, None, None]:
        slot.errors.clear()
        for entry in [e for e in slot.entries if e.complete]:
            if not entry.complete:
                continue  # cancelled by an earlier turn of the loop
            entry.postponed = False
            try:
                yield entry
            except GeneratorExit:
                # The handler left the loop holding this entry: it broke, returned or raised.
                # A failed handler did not store it: the user's file stays for another try.
                if not self._failed:
                    self._consumed(entry)
                raise
            self._consumed(entry)  # the loop moved on

    def _consumed(self, entry: UploadEntry) -> None:
        if not entry.postponed:
            self.remove(entry, State.CONSUMED, notify="upload_consumed")

    @property
    def consuming(self) -> bool:
        """Whether a consume loop is still open (its entry in hand not yet decided)."""
        return any(gen.gi_frame is not None for gen in self._consumers)

    def close_consumers(self, failed: bool = False) -> None:
        """The handler ended: close its consume loops; their entries in hand stay if it failed."""
        consumers, self._consumers = self._consumers, []
        self._failed = failed
        try:
            for gen in consumers:
                gen.close()
        finally:
            self._failed = False

    def uploaded(self, name: str) -> tuple[list[UploadEntry], list[UploadEntry]]:
        """The slot's complete entries and those still uploading, in registration order."""
        entries = self.slot(name).entries
        return [e for e in entries if e.complete], [e for e in entries if not e.done]

    def cancel(self, name: str, ref: str) -> None:
        entry = self.get(name, ref)
        self.remove(entry, State.CANCELLED, notify="upload_cancelled")

    def discard_all(self) -> None:
        for entry in list(self.entries.values()):
            self.remove(entry, State.CANCELLED)
