"""The socket side of uploads: registration, chunks, acknowledgements and cleanup.

The session hands it decoded messages and frames; it validates as early as it can and drives
the view's ``UploadManager``. Chunks are checked on the event loop and queued to the entry's
``Spool``, which writes and hashes them on a worker thread and reports back what is written.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from djust import conf, strings, tokens
from djust.errors import (
    ActiveContent,
    BadFrame,
    BadMessage,
    BadName,
    BadOffset,
    BadRef,
    BadSize,
    DjustError,
    FrameTooLarge,
    HandlerError,
    NotAccepted,
    QuotaExceeded,
    RateLimited,
    SizeMismatch,
    StalledUpload,
    TooLarge,
    TooManyFiles,
    WindowExceeded,
    WriteFailed,
)
from djust.transport.protocol import FRAME_CHUNK, FRAME_RUN, HEADER_SIZE, Chunk, check_ref
from djust.uploads import quota
from djust.uploads.config import UploadConfig
from djust.uploads.entry import State, UploadEntry
from djust.uploads.meter import RateMeter
from djust.uploads.mixin import UploadMixin
from djust.uploads.names import safe_name, safe_path
from djust.uploads.sniff import ContentSniffer, declared_type, is_active
from djust.uploads.spool import Spool
from djust.uploads.writers import TempFileWriter, new_writer

if TYPE_CHECKING:
    from djust.transport.session import LiveSession

logger = logging.getLogger("djust")

# Enough leading bytes to recognise markup that a browser would run.
ACTIVE_HEAD = 256
MAX_RAW_NAME = 4096
# Until the first bytes pass the content checks, the window is this many chunks: a renamed
# program costs the server a few chunks, not a full window.
FIRST_WINDOW_CHUNKS = 4


# The refusals of the slot's own limits, as registration answers them and as the browser,
# which checks the same limits first, reports them (``upload_refused``).
# Their messages are shown to the person who picked the file: in the page's language, as the
# client's own refusals are (the caller activates it).
def _too_many_files(config: UploadConfig, client_name: str, size: int) -> DjustError:
    return TooManyFiles(strings.text("too_many_files", max=config.max_entries))


def _too_large(config: UploadConfig, client_name: str, size: int) -> DjustError:
    limit = strings.size(config.max_file_size)
    return TooLarge(strings.text("too_large", name=client_name, limit=limit))


def _not_accepted(config: UploadConfig, client_name: str, size: int) -> DjustError:
    return NotAccepted(strings.text("not_accepted", name=client_name, accept=config.accept.html))


REFUSALS = {
    TooManyFiles.code: _too_many_files,
    TooLarge.code: _too_large,
    NotAccepted.code: _not_accepted,
}


class _Transfer:
    """Per-entry socket state: validation of the first bytes and the acknowledgement cadence."""

    __slots__ = (
        "ack_every",
        "acked",
        "chunk_size",
        "head",
        "last_seen",
        "meter",
        "samples",
        "size",
        "sniffer",
        "window",
    )

    def __init__(self, entry: UploadEntry, window: int, chunk_size: int) -> None:
        self.sniffer: ContentSniffer | None = ContentSniffer(entry.client_name, entry.client_type)
        self.head: bytearray | None = bytearray()
        self.acked = 0
        self.chunk_size = chunk_size
        self.size = entry.client_size
        self.resize(min(window, FIRST_WINDOW_CHUNKS * chunk_size))
        self.last_seen = time.monotonic()
        # (time, bytes received) once per watchdog round, over the minimum rate's window.
        self.samples: deque[tuple[float, int]] = deque([(self.last_seen, 0)])
        self.meter = RateMeter()  # the speed acks report, from the first bytes on

    def resize(self, window: int) -> None:
        """Set the window; acks come every quarter of it (the sender never waits on a full one)
        and at least every 1 % of the file (progress bars keep moving)."""
        self.window = window
        self.ack_every = max(1, min(window // 4, self.size // 100))

    def blocked(self, offset: int) -> bool:
        """Whether a sender that has sent up to ``offset`` must wait for an ack to send more."""
        return offset - self.acked + self.chunk_size > self.window


# What this process's uploads hold, over all its connections.
ledger = quota.Ledger()
descriptors = quota.DescriptorGauge()


class UploadChannel:
    """Drives one view's uploads over one connection."""

    def __init__(self, session: LiveSession, view: UploadMixin) -> None:
        self.session = session
        self.view = view
        self.manager = view._djust_uploads
        self.window = conf.get("UPLOAD_WINDOW")
        self.max_streaming = conf.get("MAX_CONCURRENT_UPLOADS")
        self.max_frame = conf.get("MAX_FRAME_SIZE")
        self.stall_timeout = conf.get("UPLOAD_STALL_TIMEOUT")
        self.min_rate = conf.get("UPLOAD_MIN_RATE") or 0
        self.rate_window = conf.get("UPLOAD_MIN_RATE_WINDOW")
        self.max_connection_bytes = conf.get("MAX_UPLOAD_BYTES_PER_CONNECTION")
        self.max_registrations = conf.get("MAX_REGISTRATIONS_PER_MINUTE")
        # Every unfinished upload may be sent a window before its next ack: that much is
        # reserved for it beyond what it received.
        self.process_limits = quota.Limits(
            process_bytes=conf.get("MAX_UPLOAD_BYTES_PER_PROCESS"),
            reservation=self.window,
            uploads_per_process=conf.get("MAX_UPLOADS_PER_PROCESS"),
            uploads_per_client=conf.get("MAX_UPLOADS_PER_CLIENT"),
            uploads_per_user=conf.get("MAX_UPLOADS_PER_USER"),
            min_free_descriptors=conf.get("MIN_FREE_DESCRIPTORS"),
        )
        # Whom this connection's uploads count against. The address is the one the ASGI server
        # reports (it alone decides whether to believe a proxy's headers); the user was loaded
        # when the view mounted, so reading it here queries nothing.
        self.client = quota.client_key(session.scope.get("client"))
        self.user = tokens.user_key(getattr(session.request, "user", None)) or None
        self.transfers: dict[str, _Transfer] = {}
        self.holds: dict[str, quota.Hold] = {}  # each entry's share of the process's ledger
        self.reserved = 0  # declared bytes of this connection's entries
        self._registrations: deque[float] = deque()
        self._gone: deque[str] = deque(maxlen=64)  # refs whose late chunks are dropped quietly
        self._watchdog: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.manager.on_remove = self._released

    def configs(self) -> dict[str, Any]:
        return {name: slot.config.to_client() for name, slot in self.manager.slots.items()}

    def limits(self) -> dict[str, Any]:
        """What the client must respect beyond the slot configs."""
        return {"max_concurrent_uploads": self.max_streaming, "max_frame_size": self.max_frame}

    # -- registration ----------------------------------------------------------------

    async def register(self, message: dict[str, Any]) -> None:
        ref, name = message["ref"], message["name"]
        try:
            with self.session.activate():  # refusals are written in the page's language
                entry = self._admit(message)
        except DjustError as error:
            await self._reject(ref, name, message["client_name"], error)
            return
        if entry.client_size == 0:
            try:
                self._check_head(entry, self.transfers[ref], b"", final=True)
            except DjustError as error:
                await self._fail(entry, error)
                return
            entry.spool.finish()  # on the entry's lane; it completes once the writer finished
        window = self.transfers[ref].window
        await self.session.send({"t": "upload_registered", "ref": ref, "window": window})
        self._watch()
        await self.session.rerender()

    def _admit(self, message: dict[str, Any]) -> UploadEntry:
        """Every check that needs no bytes; returns the new entry."""
        ref, size, raw_name = message["ref"], message["client_size"], message["client_name"]
        self._rate_limit()
        check_ref(ref)
        if ref in self.manager.entries or ref in self._gone:
            raise BadRef(f"upload ref {ref} is already in use on this connection")
        slot = self.manager.slot(message["name"])
        config = slot.config
        if size < 0:
            raise BadSize(f"declared size {size} is negative")
        if len(raw_name) > MAX_RAW_NAME or not raw_name.strip():
            raise BadName("the file name is empty or longer than 4096 characters")
        client_name, client_type = safe_name(raw_name), declared_type(message["client_type"])
        client_path = self._client_path(message, raw_name)
        if len(slot.entries) >= config.max_entries:
            raise _too_many_files(config, client_name, size)
        if size > config.max_file_size:
            raise _too_large(config, client_name, size)
        if not config.accept.allows(client_name, client_type):
            raise _not_accepted(config, client_name, size)
        if not config.allow_active_content and (
            is_active(raw_name, client_type) or is_active(client_name, client_type)
        ):
            raise ActiveContent(strings.text("active_content", name=client_name))
        streaming = sum(1 for e in self.manager.entries.values() if not e.done)
        if streaming >= self.max_streaming:
            raise QuotaExceeded(f"at most {self.max_streaming} uploads at once per connection")
        # The connection's own quota counts declared bytes: it harms nobody else, and a file
        # that will not fit is refused before any byte moves.
        if self.reserved + size > self.max_connection_bytes:
            raise QuotaExceeded("this connection holds too many uploaded bytes; consume some first")
        limits = self.process_limits
        hold = ledger.admit(
            limits,
            size,
            client=self.client,
            user=self.user,
            free_descriptors=(
                descriptors.free(ledger.opened) if limits.min_free_descriptors else None
            ),
        )
        try:
            entry = self._new_entry(ref, size, config, client_name, raw_name, client_type)
        except BaseException:
            ledger.release(hold)
            raise
        entry.client_path = client_path
        self.manager.add(entry)
        self.transfers[ref] = _Transfer(entry, self.window, config.chunk_size)
        self.holds[ref] = hold
        self.reserved += size
        return entry

    def _new_entry(
        self,
        ref: str,
        size: int,
        config: UploadConfig,
        client_name: str,
        raw_name: str,
        client_type: str,
    ) -> UploadEntry:
        entry = UploadEntry(
            ref=ref,
            upload_name=config.name,
            client_name=client_name,
            raw_name=raw_name,
            client_type=client_type,
            client_size=size,
            config=config,
        )
        entry.writer = (
            new_writer(config.writer, entry)
            if config.writer
            else TempFileWriter(direct=self._direct(size))
        )
        # The writer opens its file when the first bytes arrive, on the entry's lane: an entry
        # that is registered but sends nothing holds no file descriptor.
        entry.spool = Spool(
            entry.writer,
            on_written=functools.partial(self._on_written, ref),
            on_finished=functools.partial(self._on_finished, ref),
            on_failed=functools.partial(self._on_failed, ref),
            # As often as the acks of the full window are due (progress moves as smoothly).
            flush_every=min(self.window // 4, size // 100),
        )
        return entry

    @staticmethod
    def _client_path(message: dict[str, Any], raw_name: str) -> str | None:
        """A folder upload's relative path, made safe; ``BadName`` unless a plain one."""
        raw = message.get("client_path")
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or len(raw) > MAX_RAW_NAME:
            raise BadName("client_path must be a string of at most 4096 characters")
        try:
            return safe_path(raw, raw_name)
        except ValueError as exc:
            raise BadName(f"client_path {raw[:200]!r}: {exc}") from None

    async def refused(self, message: dict[str, Any]) -> None:
        """A file the browser refused by the slot's limits: listed in the slot's ``errors`` as
        the server's own refusals are, then the view re-renders. Nothing else is answered."""
        self._rate_limit()  # each costs a render, as a registration does
        config = self.manager.slot(message["name"]).config
        code, size, raw_name = message["code"], message["client_size"], message["client_name"]
        refusal = REFUSALS.get(code)
        if refusal is None:
            raise BadMessage(f"upload_refused: code must be one of {', '.join(REFUSALS)}")
        if size < 0:
            raise BadSize(f"declared size {size} is negative")
        if len(raw_name) > MAX_RAW_NAME or not raw_name.strip():
            raise BadName("the file name is empty or longer than 4096 characters")
        client_name = safe_name(raw_name)
        declared_type(message["client_type"])  # BadType, as at registration
        # The one claim the server can check exactly (the browser compares the same integers).
        if code == TooLarge.code and size <= config.max_file_size:
            raise BadMessage(f"upload_refused: {size} bytes are within the slot's limit")
        with self.session.activate():
            error = refusal(config, client_name, size)
        self.manager.record(config.name, None, client_name, error)
        await self.session.rerender()

    @staticmethod
    def _direct(size: int) -> bool:
        threshold = conf.get("UPLOAD_DIRECT_IO")
        return threshold is not None and size >= threshold

    def _rate_limit(self) -> None:
        now = time.monotonic()
        while self._registrations and now - self._registrations[0] > 60:
            self._registrations.popleft()
        if len(self._registrations) >= self.max_registrations:
            raise RateLimited(f"more than {self.max_registrations} upload registrations a minute")
        self._registrations.append(now)

    # -- chunks ----------------------------------------------------------------------

    def expects(self, frame: bytes) -> bool:
        """Whether a binary frame is a chunk of this connection's uploads in progress (or a late
        one of an upload that ended, dropped quietly): anything else is answered with an error,
        so the consumer counts it as it counts text frames."""
        if len(frame) <= HEADER_SIZE or frame[0] not in (FRAME_CHUNK, FRAME_RUN):
            return False
        ref = str(int.from_bytes(frame[1:5], "big"))  # the header's u32 ref (docs/protocol.md)
        entry = self.manager.entries.get(ref)
        return (entry is not None and not entry.done) or ref in self._gone

    def take_chunk(self, chunk: Chunk) -> bool:
        """The common case, without awaiting anything: a chunk of an upload whose first bytes
        passed their checks, that passes its own. False (nothing done) for anything else."""
        entry = self.manager.entries.get(chunk.ref)
        transfer = self.transfers.get(chunk.ref)
        if entry is None or transfer is None or transfer.sniffer is not None or entry.done:
            return False
        try:
            self._check_chunk(entry, transfer, chunk)
        except DjustError:
            return False  # receive_chunk says why
        self._store(entry, transfer, chunk.data)
        return True

    async def receive_chunk(self, chunk: Chunk) -> None:
        entry = self.manager.entries.get(chunk.ref)
        if entry is None or entry.done:
            if chunk.ref not in self._gone:
                await self.session.send_error(BadRef(f"no upload {chunk.ref} in progress"))
            return
        transfer = self.transfers[chunk.ref]
        data = chunk.data
        try:
            self._check_chunk(entry, transfer, chunk)
            if transfer.sniffer is not None:
                self._check_head(
                    entry, transfer, data, final=entry.received + len(data) == entry.client_size
                )
            if entry.state is State.REGISTERED:
                entry.move(State.UPLOADING)
        except DjustError as error:
            await self._fail(entry, error)
            return
        self._store(entry, transfer, data)
        if (
            transfer.sniffer is None
            and transfer.window < self.window
            and entry.received < entry.client_size
        ):
            # The content passed its checks: open the full window.
            transfer.resize(self.window)
            await self.session.send(
                {
                    "t": "upload_ack",
                    "ref": entry.ref,
                    "offset": transfer.acked,
                    "window": self.window,
                }
            )

    def _store(self, entry: UploadEntry, transfer: _Transfer, data: Any) -> None:
        """Hand checked bytes to the writer thread; acks follow what it has written."""
        if not entry.received:
            ledger.streaming(self.holds[entry.ref])  # its file opens now
            transfer.meter.measure(time.monotonic(), 0)
        entry.spool.write(data)
        entry.received += len(data)
        transfer.last_seen = time.monotonic()
        if entry.received == entry.client_size:
            entry.spool.finish()
        elif transfer.blocked(entry.received):
            # The sender cannot send another chunk before an ack: write the held bytes now.
            entry.spool.flush()

    # -- the writer thread's reports (on the event loop) -------------------------------

    def _on_written(self, ref: str, written: int) -> None:
        entry, transfer = self.manager.entries.get(ref), self.transfers.get(ref)
        if entry is None or transfer is None or entry.done or written >= entry.client_size:
            return
        if written - transfer.acked >= transfer.ack_every or transfer.blocked(written):
            transfer.acked = written
            ack: dict[str, Any] = {"t": "upload_ack", "ref": ref, "offset": written}
            rate = transfer.meter.measure(time.monotonic(), entry.received)
            if rate is not None:
                ack["rate"] = rate
            self._spawn(self.session.send(ack))

    def _on_finished(self, ref: str, sha256: str) -> None:
        self._spawn(self._finish(ref, sha256))

    def _on_failed(self, ref: str, exc: BaseException) -> None:
        entry = self.manager.entries.get(ref)
        if entry is not None:
            error = WriteFailed(f"cannot store {entry.client_name}: {exc}")
            self._spawn(self._locked(self._fail(entry, error)))

    async def _finish(self, ref: str, sha256: str) -> None:
        async with self.session.lock:
            entry = self.manager.entries.get(ref)
            if entry is not None and not entry.done:
                entry.finish(sha256)
                await self._completed(entry)

    async def _locked(self, work: Coroutine[Any, Any, None]) -> None:
        async with self.session.lock:
            await work

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_chunk(self, entry: UploadEntry, transfer: _Transfer, chunk: Chunk) -> None:
        size = len(chunk.data)
        chunk_size = transfer.chunk_size
        if size == 0:
            raise BadFrame("empty chunk")
        if chunk.run:
            # Whole chunks, the last of which may end the file.
            if size % chunk_size and chunk.offset + size != entry.client_size:
                raise BadFrame(
                    f"a run of {size} bytes is not a whole number of {chunk_size}-byte chunks"
                )
        elif size > chunk_size:
            raise FrameTooLarge(f"chunk of {size} bytes exceeds the slot's chunk_size {chunk_size}")
        if chunk.offset != entry.received:
            raise BadOffset(
                f"chunk at offset {chunk.offset}; expected offset {entry.received} "
                f"({'duplicate or overlap' if chunk.offset < entry.received else 'gap'})"
            )
        # The client may not have more than a window unacknowledged when it sends a chunk.
        window = transfer.window
        if chunk.offset + size - transfer.acked > window:
            raise WindowExceeded(
                f"{entry.client_name}: more than {window} unacknowledged bytes in flight"
            )
        if entry.received + size > entry.client_size:
            raise SizeMismatch(
                f"{entry.client_name}: more bytes than the declared {entry.client_size}"
            )
        self._charge(entry, chunk.offset + size)

    def _charge(self, entry: UploadEntry, end: int) -> None:
        """Keep a window reserved beyond the bytes received, as far as the process has room;
        ``QuotaExceeded`` if the bytes up to ``end`` are beyond what the upload could reserve."""
        hold, limits = self.holds[entry.ref], self.process_limits
        want = min(entry.client_size, end + limits.reservation)
        # Topped up every half window, not on every chunk.
        if end > hold.charged or want - hold.charged > limits.reservation // 2:
            ledger.grow(hold, want, limits)
            if end > hold.charged:
                raise QuotaExceeded(
                    f"{entry.client_name}: the server holds too many uploaded bytes; "
                    "try again later"
                )

    def _check_head(
        self, entry: UploadEntry, transfer: _Transfer, data: Any, *, final: bool
    ) -> None:
        """Magic bytes and active markup, checked on the first bytes; then never again."""
        sniffer, head = transfer.sniffer, transfer.head
        assert sniffer is not None and head is not None
        decided = sniffer.feed(bytes(data[:64])) if len(data) else False
        if not decided and final:
            sniffer.finish()
            decided = True
        if len(head) < ACTIVE_HEAD:
            head += data[: ACTIVE_HEAD - len(head)]
        config = self.manager.slots[entry.upload_name].config
        head_known = len(head) >= ACTIVE_HEAD or final
        if head_known and not config.allow_active_content and is_active("", "", bytes(head)):
            raise ActiveContent(f"{entry.client_name} contains markup a browser would run")
        if decided and head_known:
            transfer.sniffer = transfer.head = None

    # -- endings ---------------------------------------------------------------------

    async def _completed(self, entry: UploadEntry) -> None:
        self.transfers.pop(entry.ref, None)
        hold = self.holds.get(entry.ref)
        if hold is not None:
            ledger.finish(hold)  # its bytes stay charged until it is consumed
        await self.session.send({"t": "upload_ack", "ref": entry.ref, "offset": entry.received})
        await self.session.send({"t": "upload_complete", "ref": entry.ref})
        await self._handle_complete(entry)
        await self.session.rerender()
        await self.session._answer(self.view)  # what the hook pushed, or its redirect

    async def _handle_complete(self, entry: UploadEntry) -> None:
        """The view's ``handle_upload_complete``, run as a handler is (then the view renders)."""
        if type(self.view).handle_upload_complete is UploadMixin.handle_upload_complete:
            return  # not overridden: no thread to borrow
        failed = False
        try:
            await self.session.call_user(self.view.handle_upload_complete, entry.upload_name, entry)
        except Exception as exc:
            failed = True
            logger.exception("handle_upload_complete of %s raised", type(self.view).__qualname__)
            summary = f"handle_upload_complete({entry.upload_name!r}) failed"
            await self.session.send_error(HandlerError(self.session._describe(exc, summary)))
        finally:
            await self.after_event(failed=failed)

    async def _reject(self, ref: str, name: str, raw_name: str, error: DjustError) -> None:
        """A registration refused before any entry existed."""
        client_name = safe_name(raw_name[:MAX_RAW_NAME])
        self.manager.record(name, None, client_name, error)
        await self._send_error(ref, name, client_name, error)
        await self.session.rerender()

    async def _fail(self, entry: UploadEntry, error: DjustError) -> None:
        self.manager.fail(entry, error)
        await self._send_error(entry.ref, entry.upload_name, entry.client_name, error)
        await self.session.rerender()

    async def _send_error(self, ref: str, name: str, client_name: str, error: DjustError) -> None:
        await self.session.send(
            {
                "t": "upload_error",
                "ref": ref,
                "code": error.code,
                "message": error.message,
                "name": name,
                "file": client_name,
            }
        )

    def _released(self, entry: UploadEntry) -> None:
        """An entry left the view: release its quota and drop its late chunks quietly."""
        self.transfers.pop(entry.ref, None)
        self.reserved -= entry.client_size
        hold = self.holds.pop(entry.ref, None)
        if hold is not None:
            ledger.release(hold)
        self._gone.append(entry.ref)

    async def cancel_from_client(self, ref: str) -> None:
        entry = self.manager.entries.get(ref)
        if entry is None:
            return
        self.manager.remove(entry, State.CANCELLED)
        await self.session.send({"t": "upload_cancelled", "ref": ref})
        await self.session.rerender()

    async def after_event(self, failed: bool = False) -> None:
        """After a handler: close its consume loops and tell the client what was removed.

        The loops close on a thread (their writers close there, never on the event loop); the
        entry each one holds stays in the slot if the handler ``failed``.
        """
        if self.manager.consuming:
            await self.session.run_sync(self.manager.close_consumers, failed)
        else:
            self.manager.close_consumers(failed)
        outbox, self.manager.outbox = self.manager.outbox, []
        for message in outbox:
            await self.session.send(message)

    # -- stalls ----------------------------------------------------------------------

    def _watch(self) -> None:
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_stalls())

    async def _watch_stalls(self) -> None:
        timeout = self.stall_timeout if self.stall_timeout > 0 else None
        period = min(1.0, timeout / 4) if timeout else 1.0
        while self.transfers:
            await asyncio.sleep(period)
            now = time.monotonic()
            for ref, transfer in list(self.transfers.items()):
                entry = self.manager.entries.get(ref)
                if entry is None or entry.done:
                    continue
                error = self._stalled(entry, transfer, now, timeout)
                if error is not None:
                    await self._locked(self._fail(entry, error))

    def _stalled(
        self, entry: UploadEntry, transfer: _Transfer, now: float, timeout: float | None
    ) -> StalledUpload | None:
        """Whether the client stopped sending, or sends too little to be worth its resources."""
        samples = transfer.samples
        if entry.received == entry.client_size or transfer.blocked(entry.received):
            # The client waits for us (a slow disk or storage): its clocks start again.
            transfer.last_seen = now
            samples.clear()
        if timeout is not None and now - transfer.last_seen > timeout:
            return StalledUpload(f"{entry.client_name}: no bytes for {timeout} s")
        if not self.min_rate:
            return None
        samples.append((now, entry.received))
        # A sliding window: the oldest sample kept is the last one at least a window old.
        while len(samples) > 1 and now - samples[1][0] >= self.rate_window:
            samples.popleft()
        since, received = samples[0]
        if now - since < self.rate_window:
            return None  # not a whole window yet (a new upload, or one that just waited)
        rate = (entry.received - received) / (now - since)
        if rate < self.min_rate:
            return StalledUpload(
                f"{entry.client_name}: {rate:.0f} bytes a second over the last "
                f"{self.rate_window} s; at least {self.min_rate} are needed"
            )
        return None

    async def close(self) -> None:
        """The connection is gone: every entry and its file goes with it."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        for task in self._tasks:
            task.cancel()
        self.manager.discard_all()
