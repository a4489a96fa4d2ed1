"""Uploads that go from the browser straight to S3: the server signs, checks and completes.

A slot with ``external=S3Direct()`` registers files as the socket's slots do (the same
admission, entries, progress, errors and hooks), but their bytes never pass through the server.
The browser PUTs each part of a multipart upload to a URL the server presigned for that part's
SHA-256 and length (``x-amz-checksum-sha256`` and ``Content-Length`` are signed headers: the
bucket refuses any other bytes), several parts at a time, and tells the server each part's ETag
as it lands (``upload_part``).

The content checks need the first bytes, and S3 serves no byte of a multipart upload before it
is complete. So part 1 goes to an object of its own, a *head* under ``.djust-heads/``: the server
reads its first bytes with a ranged GET and runs the socket's checks on them
(``flow.check_head``). A refused file is deleted at once, before any multipart upload exists.
An accepted one starts the multipart upload, whose part 1 the bucket copies from the head
(``UploadPartCopy``: no byte travels); only then are the other parts signed. With every part in,
the server completes the upload and verifies it as ``S3MultipartWriter`` does: the bucket's
composite SHA-256 and size against the digests it signed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from django.core.exceptions import ImproperlyConfigured

from djust.errors import (
    BadMessage,
    BadOffset,
    BadRef,
    DjustError,
    ResumeExpired,
    ResumeUnavailable,
    SizeMismatch,
    StalledUpload,
    WindowExceeded,
    WriteFailed,
)
from djust.uploads import resume
from djust.uploads.entry import State
from djust.uploads.flow import Transfer, check_head
from djust.uploads.meter import RateMeter
from djust.uploads.s3 import (
    MIN_PART_SIZE,
    PART_SIZE,
    PARTS_IN_FLIGHT,
    PREFIX,
    ChecksumMismatch,
    S3MultipartWriter,
    S3Settings,
)
from djust.uploads.writers import Reason

if TYPE_CHECKING:
    from djust.uploads.channel import UploadChannel
    from djust.uploads.entry import UploadEntry

logger = logging.getLogger("djust")

HEADS = ".djust-heads/"  # part 1 of each upload waits here (under AWS_LOCATION) to be checked
HEAD_BYTES = 4096  # read back from part 1 for the content checks (they need 256)
EXPIRES = 3600
MAX_ETAG = 1024
MAX_ERROR = 300  # characters of a browser's report kept in the error shown


class Closed(Exception):
    """The upload was closed: the work asked of it is not done."""


class S3Direct:
    """``allow_upload(name, external=S3Direct())``: the slot's files go straight to the bucket.

    ``name(entry)`` gives each object's storage name (default: ``prefix`` and a unique name);
    parts are ``part_size`` bytes (at least 5 MiB), at most ``parts_in_flight`` at once; each
    signed URL is valid ``expires`` seconds, and an upload with no part landing for that long
    fails as stalled. ``settings`` default to django-storages' (``S3Settings.from_django()``).
    """

    def __init__(
        self,
        *,
        name: Callable[[UploadEntry], str] | None = None,
        prefix: str = PREFIX,
        part_size: int = PART_SIZE,
        parts_in_flight: int = PARTS_IN_FLIGHT,
        expires: int = EXPIRES,
        settings: S3Settings | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ImproperlyConfigured(f"S3Direct: parts are at least {MIN_PART_SIZE} bytes")
        if parts_in_flight < 1:
            raise ImproperlyConfigured("S3Direct: parts_in_flight is at least 1")
        if not 60 <= expires <= 7 * 24 * 3600:
            raise ImproperlyConfigured("S3Direct: expires is between 60 s and 7 days (SigV4)")
        self.name = name
        self.prefix = prefix
        self.part_size = part_size
        self.parts_in_flight = parts_in_flight
        self.expires = expires
        self.settings = settings  # read when the first file registers, not at mount

    def __repr__(self) -> str:
        return f"S3Direct(prefix={self.prefix!r}, part_size={self.part_size})"

    def writer(self, entry: UploadEntry) -> S3DirectUpload:
        """The entry's upload: what ``entry.writer`` is in a direct slot."""
        return S3DirectUpload(entry, self)


class _Lane:
    """Runs calls in order on a thread of the entry's own, which ends whenever it is idle."""

    def __init__(self) -> None:
        self._calls: deque[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple]] = (
            deque()
        )
        self._lock = threading.Lock()
        self._running = False

    def submit(self, call: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            self._calls.append((future, call, args))
            if not self._running:
                self._running = True
                threading.Thread(target=self._drain, name="djust-s3-direct", daemon=True).start()
        return future

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._calls:
                    self._running = False
                    return
                future, call, args = self._calls.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)


class S3DirectUpload(S3MultipartWriter):
    """One entry's multipart upload, whose parts the browser PUTs: the server signs each part,
    checks the first, completes and verifies the whole, and aborts what is not kept.

    Every call that reaches the bucket (signing too: it may refresh credentials) runs on the
    entry's lane, in order, never on the event loop; ``close()`` runs last on it.
    """

    def __init__(self, entry: UploadEntry, direct: S3Direct) -> None:
        super().__init__(
            entry,
            name=direct.name(entry) if direct.name else None,
            prefix=direct.prefix,
            part_size=direct.part_size,
            parts_in_flight=direct.parts_in_flight,
            settings=direct.settings,
        )
        self.client_size = entry.client_size
        self.parts = max(1, -(-entry.client_size // self.part_size))
        self.expires = direct.expires
        self.head_key = self.settings.key(HEADS + self.name)
        # SigV4 alone signs the checksum and the length into the URL (SigV2 is retired).
        signing = self.settings
        if not signing.signature_version:
            signing = replace(signing, signature_version="s3v4")
        self.signer = signing.client()
        self.signed: dict[int, str] = {}  # parts signed that have not landed: their checksums
        self.checking = False  # part 1 landed and is being checked
        self.checked = False  # part 1 passed the content checks and is part 1 of the upload
        self.first: tuple[str, str] | None = None  # part 1's ETag and checksum until it passed
        self.head = b""  # part 1's first bytes, once read back: checked again after an adoption
        self.keeper: resume.Keeper | None = None  # its state beside the entry, when resume is on
        self.url: str | None = None
        self.meter = RateMeter()
        self.timer: asyncio.TimerHandle | None = None
        self._head_signed = False
        self._closed = False
        self._lane = _Lane()
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"<S3DirectUpload s3://{self.bucket}/{self.key}>"

    # -- what the server and the browser agree on --------------------------------------

    @property
    def window(self) -> int:
        """Bytes the browser may have in flight: one part until part 1 passed, then more."""
        return self.part_size * (self.parts_in_flight if self.checked else 1)

    @property
    def whole(self) -> bool:
        """Whether every part landed."""
        return len(self._parts) == self.parts

    def span(self, part: int) -> tuple[int, int]:
        """The bytes ``[start, end)`` of the file that part ``part`` holds."""
        start = (part - 1) * self.part_size
        return start, min(self.client_size, start + self.part_size)

    def describe(self) -> dict[str, Any]:
        """The ``external`` field of ``upload_registered``: part 1 counts as landed while it is
        checked (the page must not send it again)."""
        landed = set(self._parts) | ({1} if self.checking else set())
        return {"part_size": self.part_size, "parts": self.parts, "landed": sorted(landed)}

    def landed(self, part: int, etag: str, checksum: str) -> None:
        start, end = self.span(part)
        self._digests[part] = base64.b64decode(checksum)
        self._parts[part] = {"PartNumber": part, "ETag": etag, "ChecksumSHA256": checksum}
        self.size += end - start

    def reported(self, part: int, etag: str, checksum: str) -> bool:
        """Whether ``part`` already landed with this ETag and checksum (or, part 1, is being
        checked with them)."""
        if part == 1 and self.first == (etag, checksum):
            return True
        landed = self._parts.get(part)
        if landed is None or landed["ChecksumSHA256"] != checksum:
            return False
        # Part 1 lands again as a copy in the upload, under an ETag of the bucket's own.
        return part == 1 or landed["ETag"] == etag

    # -- another process goes on with it (a restart, another worker) ---------------------

    def keep(self, keeper: resume.Keeper) -> None:
        """Keep the upload's state beside the entry, saved on the lane after each change."""
        self.keeper = keeper
        self._lane.submit(keeper.open)

    def state_changed(self) -> None:
        """A part was signed or landed, part 1 passed, the upload completed: saved on the lane
        (from the event loop too: the file is written off it)."""
        if self.keeper is not None:
            self._lane.submit(self.keeper.save)

    def resume_state(self) -> dict[str, Any]:
        """Where the upload is: its object, the parts signed and landed (ETags and SHA-256s),
        and part 1's state, whose checks another process runs again."""
        parts = dict(self._parts)  # copies: the event loop changes them while the lane saves
        signed = dict(self.signed)
        return {
            "bucket": self.bucket,
            "key": self.key,
            "name": self.name,
            "head_key": self.head_key,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "content_type": self.content_type,
            "checked": self.checked,
            "first": list(self.first) if self.first else None,
            "head": base64.b64encode(self.head).decode(),
            "landed": [[n, p["ETag"], p["ChecksumSHA256"]] for n, p in sorted(parts.items())],
            "signed": sorted([n, checksum] for n, checksum in signed.items()),
            "complete": self._complete,
            "size": self.size if self._complete else None,
        }

    def resume(self, state: dict[str, Any]) -> int:
        """Go on where ``state`` says, on a thread: the bytes of the parts that landed."""
        if state["bucket"] != self.bucket:
            raise ResumeUnavailable(f"this upload went to bucket {state['bucket']!r}")
        self.name, self.key, self.head_key = state["name"], state["key"], state["head_key"]
        self.upload_id, self.content_type = state["upload_id"], state["content_type"]
        self.part_size = state["part_size"]
        self.parts = max(1, -(-self.client_size // self.part_size))
        self.checked = state["checked"]
        self.first = tuple(state["first"]) if state["first"] else None  # type: ignore[assignment]
        self.head = base64.b64decode(state["head"])
        self.signed = {number: checksum for number, checksum in state["signed"]}
        for number, etag, checksum in state["landed"]:
            self.landed(number, etag, checksum)
        self._head_signed = not self.checked  # part 1 may wait in the bucket: removed with it
        try:
            if state["complete"]:
                self._complete = True
                self._verify()  # still there, still whole
                self.url = self._object_url()
            elif self.upload_id is not None:
                listed = {part["PartNumber"]: part for part in self.list_parts()}
                if not self.checked and self.first is not None:
                    self._after_copy(listed.get(1))
        except self.client.exceptions.NoSuchUpload:
            raise ResumeExpired("this upload is no longer in the bucket") from None
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey"):
                raise
            raise ResumeExpired("this upload is no longer in the bucket") from None
        return self.size

    def _after_copy(self, copied: dict[str, Any] | None) -> None:
        """Adopted between the start of the multipart upload and the save that said part 1
        passed: if the bucket copied part 1 in, it passed; else it is checked again."""
        assert self.first is not None
        checksum = self.first[1]
        if copied is None or copied.get("ChecksumSHA256", checksum) != checksum:
            return
        self.client.delete_object(Bucket=self.bucket, Key=self.head_key)
        self.landed(1, copied["ETag"], checksum)
        self._head_signed, self.first, self.checked = False, None, True

    def release(self) -> None:
        """This process lets go (SIGTERM, another worker asks): after the calls on the lane,
        the state is saved and unlocked; nothing of the upload is removed."""
        with self._guard:
            if self._closed:
                return
            self._closed = True  # nothing more runs here, and close() removes nothing
            done = self._lane.submit(self.keeper.release if self.keeper else lambda: None)
        done.result(timeout=resume.EXIT_TIMEOUT)

    @classmethod
    def abandon(cls, state: dict[str, Any]) -> None:
        """Abort the multipart upload (or delete the object), and part 1 if it waits alone."""
        super().abandon(state)
        if not state["checked"]:
            cls.client_for(state).delete_object(Bucket=state["bucket"], Key=state["head_key"])

    # -- the lane ----------------------------------------------------------------------

    async def run(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` on the lane; ``Closed`` if the upload was closed first."""
        with self._guard:
            if self._closed:
                raise Closed
            future = self._lane.submit(call, *args)
        return await asyncio.wrap_future(future)

    # -- on the lane -------------------------------------------------------------------

    def sign(self, part: int, checksum: str) -> str:
        """A URL to PUT part ``part`` with: only bytes of that SHA-256 and length are taken."""
        start, end = self.span(part)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "ChecksumSHA256": checksum,
            "ContentLength": end - start,
        }
        if part == 1:
            self._head_signed = True
            operation, params["Key"] = "put_object", self.head_key
        else:
            operation = "upload_part"
            params.update(Key=self.key, UploadId=self.upload_id, PartNumber=part)
        return self.signer.generate_presigned_url(operation, Params=params, ExpiresIn=self.expires)

    def _object_url(self) -> str:
        """A signed GET of the completed object, valid ``expires`` seconds."""
        return self.signer.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key}, ExpiresIn=self.expires
        )

    def read_head(self, etag: str) -> bytes:
        """The first bytes of part 1 in the bucket; a typed error unless it is the part the
        browser reported, whole."""
        start, end = self.span(1)
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self.head_key, Range=f"bytes=0-{HEAD_BYTES - 1}"
            )
        except self.client.exceptions.NoSuchKey:
            raise WriteFailed(f"{self.client_name}: part 1 is not in the bucket") from None
        with response["Body"] as body:
            head = body.read()
        total = response.get("ContentRange", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else response["ContentLength"]
        if size != end - start:
            raise SizeMismatch(
                f"{self.client_name}: part 1 holds {size} bytes; it should hold {end - start}"
            )
        if response["ETag"].strip('"') != etag.strip('"'):
            raise ChecksumMismatch(f"{self.client_name}: part 1 in the bucket is not the one sent")
        return head

    def start_parts(self, head: bytes, etag: str, checksum: str) -> None:
        """Part 1 passed: start the multipart upload with it (copied within the bucket)."""
        self.head = head
        if self.upload_id is None:  # else started by a process that let go before it was saved
            self._start(bytearray(head))  # CreateMultipartUpload; the type from the content
            if self.keeper is not None:
                self.keeper.save()  # a process that adopts it knows of the upload to go on with
        copied = self.client.upload_part_copy(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=1,
            CopySource={"Bucket": self.bucket, "Key": self.head_key},
            CopySourceIfMatch=etag,  # the bytes checked, not others put there since
        )["CopyPartResult"]
        stored = copied.get("ChecksumSHA256")
        if stored is not None and stored != checksum:
            raise ChecksumMismatch(f"{self.client_name}: part 1 is not the bytes signed for")
        self.client.delete_object(Bucket=self.bucket, Key=self.head_key)
        self._head_signed = False
        self.landed(1, copied["ETag"], checksum)
        self.first, self.checked = None, True
        if self.keeper is not None:
            self.keeper.save()

    def store_empty(self) -> None:
        """An empty file: an empty object, made by the server (there is nothing to PUT)."""
        self._start(bytearray())
        checksum = base64.b64encode(hashlib.sha256().digest()).decode()
        response = self._send_part(1, bytearray(), checksum)
        self.landed(1, response["ETag"], checksum)
        self.complete()

    def complete(self) -> None:
        """Every part landed: complete the upload, then verify the object (size, SHA-256)."""
        response = self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": [self._parts[n] for n in sorted(self._parts)]},
        )
        self._complete = True
        self.etag = response.get("ETag")
        self._verify()
        self.url = self._object_url()
        if self.keeper is not None:
            self.keeper.save()  # complete while the page is away: another process finds it so

    def _discard(self, reason: Reason) -> None:
        try:
            super().close(reason)  # abort the multipart upload, or delete the completed object
            if self._head_signed:
                # Part 1 may have landed unreported, or be refused: it goes too.
                self.client.delete_object(Bucket=self.bucket, Key=self.head_key)
        except Exception:
            logger.exception("cleaning up the direct upload %r (%s) failed", self, reason)

    # -- the writer interface ----------------------------------------------------------

    def write(self, data: memoryview) -> None:
        raise WriteFailed("a direct upload's bytes go to the bucket, never through the server")

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "url": self.url}

    def close(self, reason: Reason) -> None:
        """Keep the object (``done``) or abort and delete, on the lane, after any call on it;
        then its state goes."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            if reason != "done" or not self._complete:
                self._lane.submit(self._discard, reason)
            if self.keeper is not None:
                self._lane.submit(self.keeper.drop)


# -- the channel's side (uploads/channel.py hands direct entries' messages here) -------------

_tasks: set[asyncio.Task[Any]] = set()  # outlive the connection: an entry may wait for the page


def _spawn(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _upload(entry: UploadEntry) -> S3DirectUpload:
    assert isinstance(entry.writer, S3DirectUpload)
    return entry.writer


async def registered(channel: UploadChannel, entry: UploadEntry) -> None:
    """A direct entry passed the registration checks: tell the page where its parts go."""
    link = channel.links[entry.ref]
    upload = _upload(entry)
    if entry.client_size == 0:
        try:
            check_head(entry, _checks(entry, upload), entry.config, b"", final=True)
        except DjustError as error:
            await channel._fail(entry, error)
            return
    answer: dict[str, Any] = {
        "t": "upload_registered",
        "ref": entry.ref,
        "window": upload.window,
        "offset": 0,
        "external": upload.describe(),
    }
    if link.token is not None:
        answer.update(resume=link.token, ttl=int(resume.ttl()))
    await channel.session.send(answer)
    _touch(link)
    if entry.client_size == 0:
        _spawn(_complete(link, upload.store_empty))
    await channel.session.rerender()


def adopted(link: resume.Link, keeper: Any) -> None:
    """A direct entry this process took over from another (a restart, another worker): its
    state is kept here now, and part 1's checks run again on its first bytes (they pass or
    fail as before); a DjustError if they fail."""
    entry = link.entry
    upload = _upload(entry)
    upload.keep(keeper)
    if upload.checked and upload.head:
        final = len(upload.head) == entry.client_size
        check_head(entry, _checks(entry, upload), entry.config, upload.head, final=final)
    if upload._complete and not entry.done:
        from djust.uploads.channel import ledger

        entry.finish(None)  # type: ignore[arg-type]  (the server never saw the bytes)
        ledger.finish(link.hold)


async def resumed(channel: UploadChannel, link: resume.Link) -> None:
    """A direct entry attached again (a reconnect): the page goes on after the parts landed."""
    entry = link.entry
    upload = _upload(entry)
    if upload.first is not None and not (upload.checked or upload.checking or entry.done):
        # Part 1 landed, and the process that was checking it let go (adopted here).
        upload.checking = True
        _spawn(_check_first(link, *upload.first))
    await channel.session.send(
        {
            "t": "upload_registered",
            "ref": entry.ref,
            "window": upload.window,
            "offset": entry.received,
            "resume": link.token,
            "ttl": int(resume.ttl()),
            "checked": upload.checked or entry.complete,
            "external": upload.describe(),
        }
    )
    if entry.complete:
        await channel._completed(entry)
        return
    _touch(link)
    await channel.session.rerender()


async def presign(channel: UploadChannel, message: dict[str, Any]) -> None:
    """``upload_presign``: sign a URL for a part whose SHA-256 the browser computed."""
    link = await _find(channel, message)
    if link is None:
        return
    entry, part, checksum = link.entry, message["part"], message["checksum"]
    upload = _upload(entry)
    try:
        _check_number(entry, upload, part)
        _check_checksum(checksum)
        if part in upload._parts or (part == 1 and upload.checking):
            raise BadOffset(f"{entry.client_name}: part {part} has already landed")
        if part != 1 and not upload.checked:
            raise WindowExceeded(f"{entry.client_name}: part {part} before part 1 was checked")
        in_flight = len(upload.signed) + upload.checking
        if part not in upload.signed and in_flight >= upload.parts_in_flight:
            raise WindowExceeded(
                f"{entry.client_name}: more than {upload.parts_in_flight} parts in flight"
            )
        upload.signed[part] = checksum
        upload.state_changed()
        if entry.state is State.REGISTERED:
            entry.move(State.UPLOADING)
        url = await upload.run(upload.sign, part, checksum)
    except Closed:
        return
    except DjustError as error:
        await channel._fail(entry, error)
        return
    except Exception as exc:
        logger.exception("signing part %s of %r failed", part, upload)
        await channel._fail(entry, WriteFailed(f"cannot store {entry.client_name}: {exc}"))
        return
    _touch(link)
    await channel.session.send(
        {
            "t": "upload_presigned",
            "ref": entry.ref,
            "part": part,
            "url": url,
            "headers": {"x-amz-checksum-sha256": checksum},
        }
    )


async def part(channel: UploadChannel, message: dict[str, Any]) -> None:
    """``upload_part``: a part landed in the bucket (its ETag), or the bucket refused it."""
    link = await _find(channel, message)
    if link is None:
        return
    entry, number = link.entry, message["part"]
    upload = _upload(entry)
    etag, checksum = message.get("etag"), message.get("checksum")
    try:
        if message.get("error") is not None:
            problem = str(message["error"])[:MAX_ERROR]
            raise WriteFailed(f"{entry.client_name}: part {number} was not stored: {problem}")
        if not etag or not checksum or len(etag) > MAX_ETAG:
            raise BadMessage("upload_part: a part that landed has an etag and a checksum")
        _check_number(entry, upload, number)
        if upload.reported(number, etag, checksum):
            return  # told again: a report that crossed a resume (the page repeats what it sent)
        signed = upload.signed.get(number)
        if signed is None:
            raise BadOffset(f"{entry.client_name}: part {number} was not signed, or has landed")
        if checksum != signed:
            raise ChecksumMismatch(f"{entry.client_name}: part {number} is not the one signed")
    except DjustError as error:
        await channel._fail(entry, error)
        return
    del upload.signed[number]
    _touch(link)
    if number == 1:
        upload.first = (etag, checksum)
        upload.state_changed()
        upload.checking = True
        _spawn(_check_first(link, etag, checksum))
        return
    upload.landed(number, etag, checksum)
    upload.state_changed()
    entry.received = upload.size
    await _ack(channel, entry, upload)
    if upload.whole:
        _spawn(_complete(link, upload.complete))


async def _find(channel: UploadChannel, message: dict[str, Any]) -> resume.Link | None:
    """The direct entry ``ref`` of this connection, still uploading; else an error (or, for one
    that just ended, nothing)."""
    ref = message["ref"]
    link = channel.links.get(ref)
    entry = link.entry if link is not None else None
    if entry is None or entry.done or not isinstance(entry.writer, S3DirectUpload):
        if ref not in channel._gone:
            await channel.session.send_error(BadRef(f"no direct upload {ref} in progress"))
        return None
    return link


def _check_number(entry: UploadEntry, upload: S3DirectUpload, part: int) -> None:
    if not 1 <= part <= upload.parts:
        raise BadOffset(f"{entry.client_name}: part {part} is not one of its {upload.parts}")


def _check_checksum(checksum: str) -> None:
    try:
        digest = base64.b64decode(checksum, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise BadMessage("upload_presign: checksum is a SHA-256 digest in base64")


def _checks(entry: UploadEntry, upload: S3DirectUpload) -> Transfer:
    """The socket's content checks, for bytes read back from the bucket."""
    return Transfer(entry, upload.part_size, upload.part_size)


async def _ack(channel: UploadChannel, entry: UploadEntry, upload: S3DirectUpload) -> None:
    """Progress: the bytes of the parts landed (not a prefix of the file: parts land in any
    order). The ack after part 1 passed opens the window to several parts."""
    ack: dict[str, Any] = {"t": "upload_ack", "ref": entry.ref, "offset": entry.received}
    rate = upload.meter.measure(time.monotonic(), entry.received)
    if rate is not None and not upload.whole:
        ack["rate"] = rate
    if upload.checked and entry.received == upload.span(1)[1]:
        ack["window"] = upload.window
    await channel.session.send(ack)


def _touch(link: resume.Link) -> None:
    """The page is busy with this upload: its idle clock starts again."""
    upload = _upload(link.entry)
    if upload.timer is not None:
        upload.timer.cancel()
    upload.timer = asyncio.get_running_loop().call_later(upload.expires, _idle, link)


def _idle(link: resume.Link) -> None:
    entry = link.entry
    if entry.done or link.channel is None:
        return  # a waiting entry ends when its grace period does
    expires = _upload(entry).expires
    _spawn(_failed(link, StalledUpload(f"{entry.client_name}: no part landed for {expires} s")))


async def _check_first(link: resume.Link, etag: str, checksum: str) -> None:
    """Read part 1 back and check it as the socket checks first bytes; then start the rest."""
    entry = link.entry
    upload = _upload(entry)
    try:
        head = await upload.run(upload.read_head, etag)
        check_head(
            entry, _checks(entry, upload), entry.config, head, final=len(head) == entry.client_size
        )
        await upload.run(upload.start_parts, head, etag, checksum)
    except Exception as exc:
        await _failed_by(link, exc, "checking part 1")
        return
    upload.checking, upload.checked = False, True
    entry.received = upload.size
    channel = link.channel
    if channel is not None:
        async with channel.session.lock:
            if link.channel is channel and not entry.done:
                await _ack(channel, entry, upload)
    if upload.whole and not entry.done:
        await _complete(link, upload.complete)


async def _complete(link: resume.Link, call: Callable[[], None]) -> None:
    """Complete and verify on the lane; then the entry is complete, on its page or waiting."""
    entry = link.entry
    upload = _upload(entry)
    try:
        await upload.run(call)
    except Exception as exc:
        await _failed_by(link, exc, "completing")
        return
    if upload.timer is not None:
        upload.timer.cancel()
    while True:
        channel = link.channel
        if channel is None:
            if not entry.done:
                from djust.uploads.channel import ledger

                entry.finish(None)  # type: ignore[arg-type]  (the server never saw the bytes)
                ledger.finish(link.hold)  # the page finds it complete when it comes back
            return
        async with channel.session.lock:
            if link.channel is channel:
                if not entry.done:
                    entry.finish(None)  # type: ignore[arg-type]
                    await channel._completed(entry)
                return


async def _failed_by(link: resume.Link, exc: Exception, doing: str) -> None:
    """What the bucket's work raised: nothing for an upload that closed meanwhile, the typed
    error as it is, anything else as ``write_failed`` (logged with its traceback)."""
    if isinstance(exc, Closed):
        return
    if not isinstance(exc, DjustError):
        entry = link.entry
        logger.exception("%s %r failed", doing, _upload(entry), exc_info=exc)
        exc = WriteFailed(f"cannot store {entry.client_name}: {exc}")
    await _failed(link, exc)


async def _failed(link: resume.Link, error: DjustError) -> None:
    """Fail the entry on its connection, or remove it if it waits for one."""
    entry = link.entry
    upload = _upload(entry)
    if upload.timer is not None:
        upload.timer.cancel()
    while True:
        channel = link.channel
        if channel is None:
            if not entry.done:
                logger.warning("a waiting direct upload failed: %s", error.message)
                resume.expire(link)
            return
        async with channel.session.lock:
            if link.channel is channel:
                await channel._fail(entry, error)
                return
