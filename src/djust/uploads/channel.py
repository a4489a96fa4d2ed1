"""The socket side of uploads: the live session's extension for upload messages and chunks.

It registers entries (policy in ``admission``), takes their chunks (checks in ``flow``), hands
them to each entry's ``Spool``, which writes and hashes them on a lane of its own and reports
back what is written, acknowledges, and tells the page how each upload ends. Stalls are the
``watchdog``'s; entries that outlive their connection are ``resume``'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from djust import conf, tokens
from djust.errors import (
    BadRef,
    DjustError,
    HandlerError,
    QuotaExceeded,
    WriteFailed,
)
from djust.transport import servers
from djust.transport.extension import Extension
from djust.transport.protocol import FRAME_CHUNK, FRAME_RUN, HEADER_SIZE, Chunk, check_ref
from djust.uploads import admission, quota, resume
from djust.uploads.config import UploadConfig
from djust.uploads.entry import State, UploadEntry
from djust.uploads.flow import Transfer, check_chunk, check_head
from djust.uploads.mixin import UploadMixin
from djust.uploads.names import safe_name
from djust.uploads.spool import Spool
from djust.uploads.watchdog import Watchdog
from djust.uploads.writers import TempFileWriter, new_writer

if TYPE_CHECKING:
    from djust.transport.session import LiveSession

logger = logging.getLogger("djust")

# What this process's uploads hold, over all its connections.
ledger = quota.Ledger()
descriptors = quota.DescriptorGauge()

# Kept for the names other modules and tests know them by.
REFUSALS = admission.REFUSALS
MAX_RAW_NAME = admission.MAX_RAW_NAME


def held_bytes(config: UploadConfig, size: int) -> int:
    """The bytes of a file of ``size`` that the server holds, for the byte quotas: none of a
    direct upload's (they go from the browser to the bucket)."""
    return 0 if config.external is not None else size


def _external() -> Any:
    """Direct uploads' side (S3 and boto3: imported only by sites whose slots use them)."""
    from djust.uploads import external

    return external


class UploadChannel(Extension):
    """Drives one view's uploads over one connection."""

    messages = {
        "upload_register": "register",
        "upload_refused": "refused",
        "upload_cancel": "cancel",
        "upload_presign": "presign",  # direct uploads (external.py)
        "upload_part": "part",
    }
    frames = True

    def __init__(self, session: LiveSession, view: UploadMixin) -> None:
        super().__init__(session, view)  # type: ignore[arg-type]
        self.manager = view._djust_uploads
        self.window = conf.get("UPLOAD_WINDOW")
        self.max_streaming = conf.get("MAX_CONCURRENT_UPLOADS")
        self.max_frame = servers.message_limit(conf.get("MAX_FRAME_SIZE"))  # daphne: 1 MiB
        self.max_connection_bytes = conf.get("MAX_UPLOAD_BYTES_PER_CONNECTION")
        self.rate = admission.RegistrationRate(conf.get("MAX_REGISTRATIONS_PER_MINUTE"))
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
        self.user_key = tokens.user_key(getattr(session.request, "user", None))
        self.user = self.user_key or None
        self.transfers: dict[str, Transfer] = {}
        self.links: dict[str, resume.Link] = {}  # each entry's link, by ref
        self.reserved = 0  # declared bytes of this connection's entries
        self._gone: deque[str] = deque(maxlen=64)  # refs whose late chunks are dropped quietly
        self._tasks: set[asyncio.Task[Any]] = set()
        self.watchdog = Watchdog(
            timeout=conf.get("UPLOAD_STALL_TIMEOUT"),
            min_rate=conf.get("UPLOAD_MIN_RATE") or 0,
            rate_window=conf.get("UPLOAD_MIN_RATE_WINDOW"),
            busy=session.lock.locked,
            on_stalled=lambda entry, error: self._locked(self._fail(entry, error)),
        )
        self.manager.on_remove = self._released

    @property
    def holds(self) -> dict[str, quota.Hold]:
        return {ref: link.hold for ref, link in self.links.items()}

    def configs(self) -> dict[str, Any]:
        return {name: slot.config.to_client() for name, slot in self.manager.slots.items()}

    def limits(self) -> dict[str, Any]:
        """What the client must respect beyond the slot configs."""
        return {"max_concurrent_uploads": self.max_streaming, "max_frame_size": self.max_frame}

    def extras(self) -> dict[str, Any]:
        return {"uploads": self.configs(), **self.limits()}

    # -- registration ----------------------------------------------------------------

    async def register(self, message: dict[str, Any]) -> None:
        await self.session.check_user()
        ref, name = message["ref"], message["name"]
        token = message.get("resume")
        if resume.ttl():
            await resume.mailbox()  # where other processes ask for this connection's entries
        try:
            with self.session.activate():  # refusals are written in the page's language
                if token is not None:
                    try:
                        await self._resume(message, token)
                        return
                    except DjustError:
                        if not message.get("fallback"):
                            raise
                        # A file picked again whose upload cannot go on: it starts afresh.
                entry = self._admit(message)
        except DjustError as error:
            await self._reject(ref, name, message["client_name"], error)
            return
        if entry.config.external is not None:
            await _external().registered(self, entry)
            return
        transfer = self.transfers[ref]
        if entry.client_size == 0:
            try:
                self._check_head(entry, transfer, b"", final=True)
            except DjustError as error:
                await self._fail(entry, error)
                return
            entry.spool.finish()  # on the entry's lane; it completes once the writer finished
        link = self.links[ref]
        answer: dict[str, Any] = {
            "t": "upload_registered",
            "ref": ref,
            "window": transfer.window,
            "offset": 0,
        }
        if link.token is not None:
            answer.update(resume=link.token, ttl=int(resume.ttl()))
        await self.session.send(answer)
        self.watchdog.watch(self._watched)
        await self.session.rerender()

    def _binding(self, file: admission.Declared, slot_name: str) -> resume.Binding:
        session = getattr(self.session.request, "session", None)
        view = type(self.view)
        return resume.Binding(
            user=self.user_key,
            session=getattr(session, "session_key", None),
            view=f"{view.__module__}.{view.__qualname__}",
            slot=slot_name,
            raw_name=file.raw_name,
            size=file.size,
            modified=file.modified,
            client_type=file.client_type,
            client_path=file.client_path,
        )

    def _admit(self, message: dict[str, Any]) -> UploadEntry:
        """Every check that needs no bytes; returns the new entry."""
        ref = message["ref"]
        self._check_new_ref(ref)
        slot = self.manager.slot(message["name"])
        config = slot.config
        file = admission.declared(message)
        admission.check_slot(config, file, len(slot.entries))
        held = held_bytes(config, file.size)
        self._check_connection(held)
        hold = self._hold(held)
        try:
            entry = self._new_entry(ref, config, file)
            link = resume.Link(entry, hold, None)
            resume.enroll(link, self._binding(file, config.name))
            entry.writer = self._writer(entry, config, link)
            entry.spool = None if config.external else self._spool(entry, link)
        except BaseException:
            ledger.release(hold)
            raise
        transfer = None if config.external else Transfer(entry, self.window, config.chunk_size)
        self._attach(link, ref, transfer)
        return entry

    def _check_new_ref(self, ref: str) -> None:
        self.rate.take()
        check_ref(ref)
        if ref in self.manager.entries or ref in self._gone:
            raise BadRef(f"upload ref {ref} is already in use on this connection")

    def _check_connection(self, size: int) -> None:
        admission.check_connection(
            streaming=sum(1 for e in self.manager.entries.values() if not e.done),
            max_streaming=self.max_streaming,
            reserved=self.reserved,
            size=size,
            max_bytes=self.max_connection_bytes,
        )

    def _hold(self, size: int) -> quota.Hold:
        limits = self.process_limits
        return ledger.admit(
            limits,
            size,
            client=self.client,
            user=self.user,
            free_descriptors=(
                descriptors.free(ledger.opened) if limits.min_free_descriptors else None
            ),
        )

    @staticmethod
    def _new_entry(ref: str, config: UploadConfig, file: admission.Declared) -> UploadEntry:
        entry = UploadEntry(
            ref=ref,
            upload_name=config.name,
            client_name=file.client_name,
            raw_name=file.raw_name,
            client_type=file.client_type,
            client_size=file.size,
            config=config,
        )
        entry.client_path = file.client_path
        return entry

    def _writer(self, entry: UploadEntry, config: UploadConfig, link: resume.Link) -> Any:
        if config.external is not None:
            upload = new_writer(config.external.writer, entry)
            keeper = resume.lane_writer(upload, link)  # resume on: its state beside the entry
            if keeper is not upload:
                upload.keep(keeper)
            return upload
        if config.writer:
            return new_writer(config.writer, entry)  # WriteFailed if the factory raises
        direct = self._direct(entry.client_size)
        if link.id is not None and link.binding is not None:
            mailbox = resume._mailbox.channel if resume._mailbox is not None else None
            return resume.ResumableFileWriter(link.id, link.binding, owner=mailbox, direct=direct)
        return TempFileWriter(direct=direct)

    def _spool(
        self,
        entry: UploadEntry,
        link: resume.Link,
        written: int = 0,
        digest: Any = None,
        lane: Any = None,
    ) -> Spool:
        # The writer opens its file when the first bytes arrive, on the entry's lane: an entry
        # that is registered but sends nothing holds no file descriptor. A writer another
        # process could go on with runs in a ``Keeper``, which saves its state beside the entry.
        return Spool(
            lane or resume.lane_writer(entry.writer, link),
            on_written=link.written,
            on_finished=link.finished,
            on_failed=link.failed,
            # As often as the acks of the full window are due (progress moves as smoothly).
            flush_every=min(self.window // 4, entry.client_size // 100),
            written=written,
            digest=digest,
        )

    def _attach(self, link: resume.Link, ref: str, transfer: Transfer | None) -> None:
        """``link``'s entry uploads over this connection now, as ``ref``."""
        entry = link.entry
        entry.ref = ref
        link.channel = self
        link.parked_at = None
        link.transfer = None
        self.manager.add(entry)
        self.links[ref] = link
        if not entry.done and transfer is not None:  # none: its bytes go straight to storage
            self.transfers[ref] = transfer
        self.reserved += held_bytes(entry.config, entry.client_size)

    async def refused(self, message: dict[str, Any]) -> None:
        """A file the browser refused by the slot's limits: listed in the slot's ``errors`` as
        the server's own refusals are, then the view re-renders. Nothing else is answered."""
        await self.session.check_user()
        self.rate.take()  # each costs a render, as a registration does
        config = self.manager.slot(message["name"]).config
        with self.session.activate():
            error = admission.refusal(message, config)
        self.manager.record(config.name, None, safe_name(message["client_name"]), error)
        await self.session.rerender()

    @staticmethod
    def _direct(size: int) -> bool:
        threshold = conf.get("UPLOAD_DIRECT_IO")
        return threshold is not None and size >= threshold

    # -- resuming --------------------------------------------------------------------

    async def _resume(self, message: dict[str, Any], token: str) -> None:
        """Re-attach the entry ``token`` names, under this message's ref; answer where to go on."""
        ref = message["ref"]
        self._check_new_ref(ref)
        slot = self.manager.slot(message["name"])
        config = slot.config
        file = admission.declared(message)
        claim = self._binding(file, config.name)
        link = resume.find(token, claim)
        if link is None:
            adoption = await resume.adopt(token, claim)
            link = await self._adopted(adoption, config)
        elif link.channel is not None:
            await link.channel.surrender(link)  # its old connection, if it still seems alive
        entry = link.entry
        try:
            admission.check_slot(config, file, len(slot.entries))
            if not entry.done:
                self._check_connection(held_bytes(config, file.size))
        except DjustError:
            if link.parked_at is None:
                resume.park(link)
            raise
        if entry.config.external is not None:
            self._attach(link, ref, None)
            await _external().resumed(self, link)
            return
        transfer = link.transfer or Transfer(entry, self.window, config.chunk_size)
        transfer.restart(entry.received)
        if transfer.checked:
            transfer.resize(self.window)
        self._attach(link, ref, transfer)
        answer = {
            "t": "upload_registered",
            "ref": ref,
            "window": transfer.window,
            "offset": entry.received,
            "resume": link.token,
            "ttl": int(resume.ttl()),
            "checked": transfer.checked or entry.complete,
        }
        await self.session.send(answer)
        if entry.complete:
            await self._completed(entry)
            return
        if entry.received == entry.client_size and entry.spool is not None:
            entry.spool.finish()  # adopted whole: the writer finishes on its lane
        self.watchdog.watch(self._watched)
        await self.session.rerender()

    async def _adopted(self, adoption: resume.Adoption, config: UploadConfig) -> resume.Link:
        """An entry taken over from the shared directory, as this process's own."""
        binding = adoption.binding
        file = admission.Declared(
            raw_name=binding.raw_name,
            client_name=safe_name(binding.raw_name),
            client_type=binding.client_type,
            client_path=binding.client_path,
            size=binding.size,
            modified=binding.modified,
        )
        try:
            hold = self._hold(held_bytes(config, binding.size))
        except BaseException:
            resume.os.close(adoption.lock_fd)
            raise
        entry = self._new_entry("0", config, file)
        factory = config.external.writer if config.external is not None else config.writer
        if factory:
            try:
                # The slot's writer goes on with what it stored (S3: the parts in the bucket).
                entry.writer = await resume.resume_writer(factory, entry, adoption)
            except BaseException:
                ledger.release(hold)
                raise
        entry.received = adoption.received
        if entry.received:
            entry.move(State.UPLOADING)
            ledger.streaming(hold)
            if config.external is None:
                ledger.grow(hold, entry.received + self.window, self.process_limits)
        link = resume.Link(entry, hold, binding)
        link.id = adoption.entry_id
        link.token = adoption.token
        resume.registry[link.id] = link
        if config.external is not None:
            try:
                _external().adopted(link, adoption.lane)  # its part 1 checked again
            except DjustError:
                resume.expire(link)
                raise
            return link
        owner = resume._mailbox.channel if resume._mailbox is not None else None
        if not config.writer:
            entry.writer = resume.ResumableFileWriter(
                adoption.entry_id,
                binding,
                owner=owner,
                direct=self._direct(binding.size),
                lock_fd=adoption.lock_fd,
                offset=adoption.received,
            )
        entry.spool = self._spool(entry, link, adoption.received, adoption.sha256, adoption.lane)
        transfer = Transfer(entry, self.window, config.chunk_size)
        if adoption.head:
            # The content checks again, on the bytes the file holds: they pass or fail as before.
            final = adoption.received == binding.size
            try:
                self._check_head(entry, transfer, adoption.head, final=final)
            except DjustError:
                resume.expire(link)
                raise
        link.transfer = transfer
        return link

    async def surrender(self, link: resume.Link) -> None:
        """Another connection (or process) takes ``link``'s entry: let go of it, keep its bytes."""
        entry = link.entry
        ref = entry.ref
        if self.links.get(ref) is not link:
            return
        self._detach(link)
        resume.park(link)
        await self.session.rerender()

    def _detach(self, link: resume.Link) -> None:
        entry = link.entry
        ref = entry.ref
        link.transfer = self.transfers.pop(ref, None)
        self.links.pop(ref, None)
        self.manager.detach(entry)
        self.reserved -= held_bytes(entry.config, entry.client_size)
        self._gone.append(ref)
        if entry.spool is not None and not entry.done:
            entry.spool.flush()  # the bytes received are the offset the page resumes at

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

    def take_frame(self, chunk: Chunk) -> bool:
        """The common case, without awaiting anything: a chunk of an upload whose first bytes
        passed their checks, that passes its own. False (nothing done) for anything else."""
        entry = self.manager.entries.get(chunk.ref)
        transfer = self.transfers.get(chunk.ref)
        if entry is None or transfer is None or transfer.sniffer is not None or entry.done:
            return False
        try:
            self._check_chunk(entry, transfer, chunk)
        except DjustError:
            return False  # receive_frame says why
        self._store(entry, transfer, chunk.data)
        return True

    async def receive_frame(self, chunk: Chunk) -> None:
        entry = self.manager.entries.get(chunk.ref)
        if entry is None or entry.done:
            if chunk.ref not in self._gone:
                await self.session.send_error(BadRef(f"no upload {chunk.ref} in progress"))
            return
        transfer = self.transfers.get(chunk.ref)
        if transfer is None:
            await self.session.send_error(BadRef(f"upload {chunk.ref} goes straight to storage"))
            return
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
        opening = transfer.checked and transfer.window < self.window
        if opening and entry.received < entry.client_size:
            # The content passed its checks: open the full window.
            transfer.resize(self.window)
            ack = {"t": "upload_ack", "ref": entry.ref, "offset": transfer.acked}
            await self.session.send({**ack, "window": self.window})

    def _check_chunk(self, entry: UploadEntry, transfer: Transfer, chunk: Chunk) -> None:
        check_chunk(entry, transfer, chunk)
        self._charge(entry, chunk.offset + len(chunk.data))

    def _check_head(
        self, entry: UploadEntry, transfer: Transfer, data: Any, *, final: bool
    ) -> None:
        config = self.manager.slots[entry.upload_name].config
        check_head(entry, transfer, config, data, final=final)

    def _store(self, entry: UploadEntry, transfer: Transfer, data: Any) -> None:
        """Hand checked bytes to the writer's lane; acks follow what it has written."""
        if not entry.received:
            ledger.streaming(self.links[entry.ref].hold)  # its file opens now
            transfer.meter.measure(time.monotonic(), 0)
        entry.spool.write(data)
        entry.received += len(data)
        transfer.last_seen = time.monotonic()
        if entry.received == entry.client_size:
            entry.spool.finish()
        elif transfer.blocked(entry.received):
            # The sender cannot send another chunk before an ack: write the held bytes now.
            entry.spool.flush()

    def _charge(self, entry: UploadEntry, end: int) -> None:
        """Keep a window reserved beyond the bytes received, as far as the process has room;
        ``QuotaExceeded`` if the bytes up to ``end`` are beyond what the upload could reserve."""
        hold, limits = self.links[entry.ref].hold, self.process_limits
        want = min(entry.client_size, end + limits.reservation)
        # Topped up every half window, not on every chunk.
        if end > hold.charged or want - hold.charged > limits.reservation // 2:
            ledger.grow(hold, want, limits)
            if end > hold.charged:
                raise QuotaExceeded(
                    f"{entry.client_name}: the server holds too many uploaded bytes; "
                    "try again later"
                )

    # -- the writer lane's reports (on the event loop, through the entry's link) --------

    def on_written(self, link: resume.Link, written: int) -> None:
        entry = link.entry
        transfer = self.transfers.get(entry.ref)
        if transfer is None or entry.done or written >= entry.client_size:
            return
        if written - transfer.acked >= transfer.ack_every or transfer.blocked(written):
            transfer.acked = max(transfer.acked, written)
            ack: dict[str, Any] = {"t": "upload_ack", "ref": entry.ref, "offset": written}
            rate = transfer.meter.measure(time.monotonic(), entry.received)
            if rate is not None:
                ack["rate"] = rate
            self._spawn(self.session.send(ack))

    def on_finished(self, link: resume.Link, sha256: str) -> None:
        self._spawn(self._finish(link, sha256))

    def on_failed(self, link: resume.Link, exc: BaseException) -> None:
        entry = link.entry
        error = WriteFailed(f"cannot store {entry.client_name}: {exc}")
        self._spawn(self._locked(self._fail(entry, error)))

    async def _finish(self, link: resume.Link, sha256: str) -> None:
        async with self.session.lock:
            entry = link.entry
            if link.channel is not self:
                link.finished(sha256)  # it left this connection meanwhile
                return
            if not entry.done:
                entry.finish(sha256)
                await self._completed(entry)

    async def _locked(self, work: Coroutine[Any, Any, None]) -> None:
        async with self.session.lock:
            await work

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _watched(self) -> dict[str, tuple[UploadEntry, Transfer]]:
        return {
            ref: (self.manager.entries[ref], transfer)
            for ref, transfer in self.transfers.items()
            if ref in self.manager.entries
        }

    # -- endings ---------------------------------------------------------------------

    async def _completed(self, entry: UploadEntry) -> None:
        self.transfers.pop(entry.ref, None)
        link = self.links.get(entry.ref)
        if link is not None:
            ledger.finish(link.hold)  # its bytes stay charged until it is consumed
        await self.session.send({"t": "upload_ack", "ref": entry.ref, "offset": entry.received})
        await self.session.send({"t": "upload_complete", "ref": entry.ref})
        if link is not None and not link.hooked:
            link.hooked = True
            await self._handle_complete(entry)
        await self.session.rerender()
        await self.session.answer(self.view)  # what the hook pushed, or its redirect

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
            await self.session.send_error(HandlerError(self.session.describe(exc, summary)))
        finally:
            await self.after_event(failed=failed)

    async def _reject(self, ref: str, name: str, raw_name: str, error: DjustError) -> None:
        """A registration refused before any entry existed."""
        client_name = safe_name(raw_name[:MAX_RAW_NAME])
        self.manager.record(name, None, client_name, error)
        await self._send_error(ref, name, client_name, error)
        await self.session.rerender()

    async def _fail(self, entry: UploadEntry, error: DjustError) -> None:
        if self.manager.entries.get(entry.ref) is not entry or entry.done:
            # It completed, ended or left this connection while this failure waited its turn.
            return
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
        """An entry left the view for good: release its quota, drop its late chunks quietly."""
        self.transfers.pop(entry.ref, None)
        self.reserved -= held_bytes(entry.config, entry.client_size)
        link = self.links.pop(entry.ref, None)
        if link is not None:
            ledger.release(link.hold)
            resume.forget(link)
        self._gone.append(entry.ref)

    async def presign(self, message: dict[str, Any]) -> None:
        await _external().presign(self, message)

    async def part(self, message: dict[str, Any]) -> None:
        await _external().part(self, message)

    async def cancel(self, message: dict[str, Any]) -> None:
        ref = message["ref"]
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

    async def close(self) -> None:
        """The connection is gone: resumable entries wait for the page; the rest go."""
        self.watchdog.stop()
        for task in self._tasks:
            task.cancel()
        for link in list(self.links.values()):
            if link.token is not None and link.entry.state is not State.FAILED:
                self._detach(link)
                resume.park(link)
        self.manager.discard_all()
