"""Uploads that go where they live in S3: a multipart writer, and the sweep of abandoned uploads.

``S3MultipartWriter`` sends an entry's bytes to the bucket while they arrive: a multipart upload
whose parts (8 MiB by default, at least S3's 5 MiB) go out a few at a time, each with its
SHA-256 (``x-amz-checksum-sha256``), so that S3 refuses a part damaged on the way. S3 keeps the
SHA-256 of a multipart object only as a *composite* checksum, the SHA-256 of the parts' digests
(it offers whole-object checksums for CRC algorithms only): the writer computes the same
composite from the bytes it sent and compares it, with the size, to what the bucket reports once
the upload is complete. The object is then at its key; consuming the entry moves nothing.

Another process can go on with the upload (a restarted server, another worker): the writer's
``resume_state()`` (bucket, key, upload id, part size, and the SHA-256 of each part that landed)
is kept beside the entry, and ``resume()`` continues after the parts the bucket lists.

It reads django-storages' settings (``AWS_STORAGE_BUCKET_NAME``, ``AWS_S3_ENDPOINT_URL``,
``AWS_LOCATION``...), or the default storage's ``OPTIONS`` when that storage is S3, so that
``default_storage`` finds the object under ``entry.meta["name"]``.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import functools
import hashlib
import logging
import posixpath
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from djust.errors import ResumeExpired, ResumeUnavailable, WriteFailed
from djust.uploads.resume import AdoptableWriter
from djust.uploads.sniff import SNIFF_BYTES, content_type_of
from djust.uploads.writers import Reason

if TYPE_CHECKING:
    from djust.uploads.entry import UploadEntry

logger = logging.getLogger("djust")

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's least size for every part but the last
PART_SIZE = 8 * MiB
MAX_PARTS = 10_000  # S3's most parts per upload: larger files get larger parts
PARTS_IN_FLIGHT = 4
PREFIX = "uploads/"

# Each option of django-storages' S3Storage, and the settings it is read from (first set wins).
_OPTIONS = {
    "bucket_name": ("AWS_STORAGE_BUCKET_NAME",),
    "location": ("AWS_LOCATION",),
    "endpoint_url": ("AWS_S3_ENDPOINT_URL",),
    "region_name": ("AWS_S3_REGION_NAME",),
    "access_key": ("AWS_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
    "secret_key": ("AWS_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    "security_token": ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"),
    "addressing_style": ("AWS_S3_ADDRESSING_STYLE",),
    "signature_version": ("AWS_S3_SIGNATURE_VERSION",),
    "verify": ("AWS_S3_VERIFY",),
    "default_acl": ("AWS_DEFAULT_ACL",),
    "object_parameters": ("AWS_S3_OBJECT_PARAMETERS",),
}


class ChecksumMismatch(WriteFailed):
    """The object in the bucket is not the bytes that were sent."""


@dataclass(frozen=True)
class S3Settings:
    """Where objects go and how to reach the bucket, as django-storages understands them."""

    bucket_name: str
    location: str = ""
    endpoint_url: str | None = None
    region_name: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    security_token: str | None = None
    addressing_style: str | None = None
    signature_version: str | None = None
    verify: bool | str | None = None
    default_acl: str | None = None
    object_parameters: dict[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_django(cls) -> S3Settings:
        """The default storage's ``OPTIONS`` if it is django-storages' S3, else the AWS_* ones."""
        values: dict[str, Any] = {}
        for option, names in _OPTIONS.items():
            for name in names:
                if getattr(django_settings, name, None) is not None:
                    values[option] = getattr(django_settings, name)
                    break
        default = getattr(django_settings, "STORAGES", {}).get("default", {})
        if default.get("BACKEND", "").rsplit(".", 1)[-1] in ("S3Storage", "S3Boto3Storage"):
            options = default.get("OPTIONS", {})
            values.update({k: options[k] for k in _OPTIONS if options.get(k) is not None})
            if options.get("session_token") is not None:
                values["security_token"] = options["session_token"]
        if not values.get("bucket_name"):
            raise ImproperlyConfigured(
                "S3 uploads need a bucket: set AWS_STORAGE_BUCKET_NAME (or bucket_name in the "
                "OPTIONS of an S3 default storage)"
            )
        return cls(**values)

    def key(self, name: str) -> str:
        """The object key of the storage name ``name`` (``AWS_LOCATION`` comes first)."""
        location = self.location.strip("/")
        return posixpath.join(location, name) if location else name

    def name(self, key: str) -> str:
        """The storage name of the object key ``key``: what ``default_storage`` calls it."""
        location = self.location.strip("/")
        return key[len(location) + 1 :] if location and key.startswith(location + "/") else key

    def client(self) -> Any:
        """A boto3 S3 client for these settings, shared by every writer that uses them."""
        return _client(
            self.endpoint_url,
            self.region_name,
            self.access_key,
            self.secret_key,
            self.security_token,
            self.addressing_style,
            self.signature_version,
            self.verify,
        )


@functools.lru_cache(maxsize=16)
def _client(
    endpoint_url: str | None,
    region_name: str | None,
    access_key: str | None,
    secret_key: str | None,
    security_token: str | None,
    addressing_style: str | None,
    signature_version: str | None,
    verify: bool | str | None,
) -> Any:
    # Clients are thread-safe and slow to make: one per settings, with room for many parts.
    config = Config(
        max_pool_connections=64,
        retries={"mode": "standard"},
        s3={"addressing_style": addressing_style} if addressing_style else None,
        signature_version=signature_version,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region_name,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=security_token,
        verify=verify,
        config=config,
    )


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def composite_sha256(digests: list[bytes]) -> str:
    """S3's checksum of a multipart object: SHA-256 of the parts' digests, then ``-N``."""
    return f"{_b64(hashlib.sha256(b''.join(digests)).digest())}-{len(digests)}"


class S3MultipartWriter(AdoptableWriter):
    """Streams an entry into an S3 object by multipart upload, parts in parallel, checked.

    ``name`` is the storage name (default: ``prefix`` and a unique name from the entry); the
    object key adds ``AWS_LOCATION``. At most ``parts_in_flight`` parts are sent at once, and
    the entry's lane waits when they are all busy, so one upload holds at most
    ``parts_in_flight + 1`` parts in memory and a slow bucket slows its own upload only.
    """

    def __init__(
        self,
        entry: UploadEntry,
        *,
        name: str | None = None,
        prefix: str = PREFIX,
        part_size: int = PART_SIZE,
        parts_in_flight: int = PARTS_IN_FLIGHT,
        settings: S3Settings | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ImproperlyConfigured(f"S3 parts are at least {MIN_PART_SIZE} bytes")
        self.settings = settings or S3Settings.from_django()
        self.client = self.settings.client()
        self.bucket = self.settings.bucket_name
        self.name = name or entry.unique_name(prefix)
        self.key = self.settings.key(self.name)
        self.client_name = entry.client_name
        self.content_type = content_type_of(entry.client_name)
        # Within S3's 10,000 parts, in whole MiB.
        least = -(-entry.client_size // MAX_PARTS)
        self.part_size = max(part_size, -(-least // MiB) * MiB)
        self.parts_in_flight = max(1, parts_in_flight)
        self.upload_id: str | None = None
        self.size = 0
        self.etag: str | None = None
        self.checksum_sha256: str | None = None
        self._buffer = bytearray()
        self._next_part = 1
        self._parts: dict[int, dict[str, Any]] = {}
        self._digests: dict[int, bytes] = {}
        self._sending: deque[concurrent.futures.Future[None]] = deque()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._complete = False
        # Parts land on the part threads; the lane reads which did (resume_state).
        self._landing = threading.Lock()
        self._landed = 0  # parts 1 to this one all landed
        self._state: dict[str, Any] = {}
        self._state_of: tuple[Any, ...] = ()

    def __repr__(self) -> str:
        return f"<S3MultipartWriter s3://{self.bucket}/{self.key}>"

    # -- the writer interface ---------------------------------------------------------

    def write(self, data: memoryview) -> None:
        self.size += len(data)
        while len(data):
            room = self.part_size - len(self._buffer)
            self._buffer += data[:room]
            data = data[room:]
            if len(self._buffer) == self.part_size:
                part, self._buffer = self._buffer, bytearray()
                self._send(part)

    def finish(self) -> None:
        if self._complete:
            return  # adopted complete: nothing was left to do
        if self._buffer or self._next_part == 1:  # the last part, or an empty file's only one
            part, self._buffer = self._buffer, bytearray()
            self._send(part)
        while self._sending:
            self._sending.popleft().result()
        self._stop_pool()
        parts = [self._parts[number] for number in sorted(self._parts)]
        response = self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
        )
        self._complete = True
        self.etag = response.get("ETag")
        self._verify()

    def meta(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "name": self.name,
            "size": self.size,
            "etag": self.etag,
            "checksum_sha256": self.checksum_sha256,
            "content_type": self.content_type,
            "upload_id": self.upload_id,
        }

    def close(self, reason: Reason) -> None:
        self._stop_pool(cancel=True)
        if self._complete and reason == "done":
            return
        if self._complete:
            self.client.delete_object(Bucket=self.bucket, Key=self.key)
        elif self.upload_id is not None:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )

    # -- resuming in another process (resume.AdoptableWriter) ---------------------------

    def resume_state(self) -> dict[str, Any]:
        """Where the upload is and the SHA-256 of each part that landed, in order from part 1."""
        with self._landing:
            now = (self.upload_id, self._landed, self._complete)
            if now != self._state_of:
                self._state_of = now
                self._state = {
                    "bucket": self.bucket,
                    "key": self.key,
                    "name": self.name,
                    "upload_id": self.upload_id,
                    "part_size": self.part_size,
                    "content_type": self.content_type,
                    "parts": [_b64(self._digests[n]) for n in range(1, self._landed + 1)],
                    "complete": self._complete,
                    "size": self.size if self._complete else None,
                }
            return self._state

    def resume(self, state: dict[str, Any]) -> int:
        """Go on after the parts the bucket lists that ``state`` knows the SHA-256 of, in order
        from part 1: the bytes they hold. A part that landed unrecorded is sent again."""
        if state["bucket"] != self.bucket:
            raise ResumeUnavailable(f"this upload went to bucket {state['bucket']!r}")
        self.name, self.key, self.upload_id = state["name"], state["key"], state["upload_id"]
        self.part_size, self.content_type = state["part_size"], state["content_type"]
        if state["complete"]:
            self.size = state["size"]
            self._digests = {n: base64.b64decode(c) for n, c in enumerate(state["parts"], 1)}
            self._complete = True
            try:
                self._verify()  # still there, still whole
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("404", "NoSuchKey"):
                    raise
                raise ResumeExpired("this upload is no longer in the bucket") from None
            return self.size
        if self.upload_id is None:
            return 0  # nothing was sent to the bucket yet
        try:
            listed = self.list_parts()
        except self.client.exceptions.NoSuchUpload:
            # Completed or aborted without its state saying so (a kill in between): no entry
            # holds that object any more.
            self.client.delete_object(Bucket=self.bucket, Key=self.key)
            raise ResumeExpired("this upload is no longer in the bucket") from None
        # Parts beyond those recorded, or listed beyond those in the bucket, are sent again.
        for number, (part, checksum) in enumerate(zip(listed, state["parts"], strict=False), 1):
            if part["PartNumber"] != number or part.get("ChecksumSHA256", checksum) != checksum:
                break
            self._digests[number] = base64.b64decode(checksum)
            self._parts[number] = {
                "PartNumber": number,
                "ETag": part["ETag"],
                "ChecksumSHA256": checksum,
            }
            self.size += part["Size"]
        self._landed = len(self._parts)
        self._next_part = self._landed + 1
        return self.size

    def suspend(self) -> None:
        """Let the parts in flight land; the bytes of the part being filled are sent again."""
        self._stop_pool()

    def stored_sha256(self) -> str:
        """The object's SHA-256 (hex), read back a part's range at a time, a few at once."""
        digest = hashlib.sha256()
        starts = deque(range(0, self.size, self.part_size))
        reading: deque[concurrent.futures.Future[bytes]] = deque()
        with concurrent.futures.ThreadPoolExecutor(
            self.parts_in_flight, thread_name_prefix="djust-s3-read"
        ) as pool:
            while starts or reading:
                while starts and len(reading) < self.parts_in_flight:
                    start = starts.popleft()
                    end = min(start + self.part_size, self.size)
                    reading.append(pool.submit(self._read, start, end))
                digest.update(reading.popleft().result())
        return digest.hexdigest()

    def _read(self, start: int, end: int) -> bytes:
        response = self.client.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}"
        )
        return response["Body"].read()

    @classmethod
    def abandon(cls, state: dict[str, Any]) -> None:
        """Abort the multipart upload ``state`` names (or delete its object, if complete)."""
        client = cls.client_for(state)
        if state["complete"]:
            client.delete_object(Bucket=state["bucket"], Key=state["key"])
        elif state["upload_id"] is not None:
            with contextlib.suppress(client.exceptions.NoSuchUpload):
                client.abort_multipart_upload(
                    Bucket=state["bucket"], Key=state["key"], UploadId=state["upload_id"]
                )

    @staticmethod
    def client_for(state: dict[str, Any]) -> Any:
        """A client of the bucket a saved ``state`` names, with the site's S3 settings."""
        return replace(S3Settings.from_django(), bucket_name=state["bucket"]).client()

    def list_parts(self, upload_id: str | None = None) -> list[dict[str, Any]]:
        """The parts the bucket holds for ``upload_id`` (this writer's by default), in order:
        ``PartNumber``, ``Size``, ``ETag`` and, where the server reports it, ``ChecksumSHA256``.
        A resumed upload continues after them."""
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=self.key, UploadId=upload_id or self.upload_id
        )
        parts = [part for page in pages for part in page.get("Parts", [])]
        return sorted(parts, key=lambda part: part["PartNumber"])

    # -- parts ------------------------------------------------------------------------

    def _send(self, part: bytearray) -> None:
        """Queue ``part``; wait while ``parts_in_flight`` are out (a failure raises here)."""
        if self.upload_id is None:
            self._start(part)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.parts_in_flight, thread_name_prefix="djust-s3-part"
            )
        while self._sending and (
            len(self._sending) >= self.parts_in_flight or self._sending[0].done()
        ):
            self._sending.popleft().result()
        assert self._pool is not None
        number, self._next_part = self._next_part, self._next_part + 1
        self._sending.append(self._pool.submit(self._upload_part, number, part))

    def _start(self, head: bytearray) -> None:
        # The stored type comes from the content and the name, never from the client's word.
        self.content_type = content_type_of(self.client_name, bytes(head[:SNIFF_BYTES]))
        extra = dict(self.settings.object_parameters)
        if self.settings.default_acl:
            extra.setdefault("ACL", self.settings.default_acl)
        response = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            ChecksumAlgorithm="SHA256",
            ContentType=self.content_type,
            **extra,
        )
        self.upload_id = response["UploadId"]

    def _upload_part(self, number: int, body: bytearray) -> None:
        digest = hashlib.sha256(body).digest()
        response = self._send_part(number, body, _b64(digest))
        with self._landing:
            self._digests[number] = digest
            self._parts[number] = {
                "PartNumber": number,
                "ETag": response["ETag"],
                "ChecksumSHA256": _b64(digest),
            }
            landed = self._landed
            while self._landed + 1 in self._parts:
                self._landed += 1
        if self._landed > landed:
            self.state_changed()  # kept beside the entry now: a kill loses no landed part

    def _send_part(self, number: int, body: bytearray, checksum: str) -> dict[str, Any]:
        """One ``UploadPart``: S3 refuses a body whose SHA-256 is not ``checksum``."""
        return self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
            ChecksumSHA256=checksum,
        )

    def _verify(self) -> None:
        """Compare the bucket's composite checksum and size with what was sent."""
        expected = composite_sha256([self._digests[n] for n in sorted(self._digests)])
        head = self.client.head_object(Bucket=self.bucket, Key=self.key, ChecksumMode="ENABLED")
        stored = head.get("ChecksumSHA256") or ""
        # S3 writes the composite as "<base64>-<parts>"; some servers leave the count out.
        if stored.split("-")[0] != expected.split("-")[0] or head["ContentLength"] != self.size:
            logger.error(
                "s3://%s/%s is not what was sent: %s bytes, SHA-256 %r; sent %s bytes, %s",
                self.bucket,
                self.key,
                head["ContentLength"],
                stored or None,
                self.size,
                expected,
            )
            raise ChecksumMismatch("the stored object does not match the bytes sent")
        self.checksum_sha256 = expected
        self.etag = head.get("ETag", self.etag)

    def _stop_pool(self, *, cancel: bool = False) -> None:
        """End the part threads; with ``cancel``, parts not yet started are dropped."""
        if cancel:
            for future in self._sending:
                future.cancel()
            # Parts in flight end first: one that landed after the abort would stay billed.
            concurrent.futures.wait(self._sending)
            self._sending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None


# -- abandoned uploads -------------------------------------------------------------------


def abandoned_uploads(
    older_than: timedelta,
    *,
    prefix: str = PREFIX,
    settings: S3Settings | None = None,
    now: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Multipart uploads under ``prefix`` (a storage name) started more than ``older_than`` ago."""
    settings = settings or S3Settings.from_django()
    now = now or datetime.now(UTC)
    pages = (
        settings.client()
        .get_paginator("list_multipart_uploads")
        .paginate(Bucket=settings.bucket_name, Prefix=settings.key(prefix))
    )
    for page in pages:
        for upload in page.get("Uploads", []):
            if now - upload["Initiated"] >= older_than:
                yield upload


def abort_abandoned_uploads(
    older_than: timedelta,
    *,
    prefix: str = PREFIX,
    settings: S3Settings | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Abort what ``abandoned_uploads`` finds (a crashed server's uploads); the aborted ones."""
    settings = settings or S3Settings.from_django()
    client = settings.client()
    aborted = []
    found = abandoned_uploads(older_than, prefix=prefix, settings=settings, now=now)
    for upload in list(found):
        client.abort_multipart_upload(
            Bucket=settings.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"]
        )
        aborted.append(upload)
    return aborted
