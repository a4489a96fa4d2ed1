"""Uploads streamed into a real S3-compatible server (moto's, started for this module).

A djust server runs with django-storages' S3 settings pointing at the bucket (tests/settings.py)
and a slot whose writer is ``S3MultipartWriter`` with 5 MiB parts (tests/app/views.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command

from djust.testing import LiveClient
from djust.uploads.entry import UploadEntry
from djust.uploads.s3 import (
    S3MultipartWriter,
    S3Settings,
    abort_abandoned_uploads,
    composite_sha256,
)

from ..conftest import make_server
from ..s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from .conftest import Live, wait_until
from .test_uploads import saved_lines, send_chunk

MiB = 1024 * 1024
BUCKET = "djust-uploads"
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3_site(s3):
    site = make_server(**s3.env(BUCKET)).start()
    yield site
    site.stop()
    shutil.rmtree(site.state_dir, ignore_errors=True)


@pytest.fixture
def live(s3_site) -> Live:
    return Live(s3_site)


@pytest.fixture
def bucket(s3) -> Any:
    return s3.client()


def objects(bucket: Any) -> dict[str, str]:
    """Every object in the bucket: key → ETag."""
    listing = bucket.list_objects_v2(Bucket=BUCKET)
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


def open_uploads(bucket: Any) -> set[tuple[str, str]]:
    """The bucket's multipart uploads in progress: (key, upload id)."""
    listing = bucket.list_multipart_uploads(Bucket=BUCKET)
    return {(u["Key"], u["UploadId"]) for u in listing.get("Uploads", [])}


async def send_until(client: LiveClient, ref: str, data: bytes, end: int, window: int) -> None:
    """Send ``data[:end]`` in chunks, waiting for acks as the browser does."""
    sent = acked = 0
    while sent < end:
        while sent + CHUNK - acked > window:
            ack = await client.wait_for(lambda m: m.get("ref") == ref and m["t"] == "upload_ack")
            acked, window = max(acked, ack["offset"]), ack.get("window", window)
        await send_chunk(client, ref, sent, data[sent : sent + CHUNK])
        sent += CHUNK


async def a_part_in_the_bucket(client: LiveClient, bucket: Any, before: set) -> tuple[str, str]:
    """Register 12 MiB, send 6: the first 5 MiB part lands. Its (key, upload id)."""
    data = os.urandom(12 * MiB)
    reply = await client.register("files", "movie.bin", len(data))
    assert reply["t"] == "upload_registered", reply
    await send_until(client, reply["ref"], data, 6 * MiB, reply["window"])

    def landed() -> bool:
        return any(
            bucket.list_parts(Bucket=BUCKET, Key=key, UploadId=upload).get("Parts")
            for key, upload in open_uploads(bucket) - before
        )

    assert await wait_until(landed, timeout=10)
    (upload,) = open_uploads(bucket) - before
    return reply["ref"], upload


# -- through a djust server ----------------------------------------------------------------


def test_a_12_mib_upload_lands_in_the_bucket_byte_identical_and_verified(live, bucket):
    data = os.urandom(12 * MiB)
    before = objects(bucket)

    async def body() -> list[str]:
        client = await live.connect("/t/uploads-s3/")
        result = await client.upload("files", "movie.bin", data, runs=True)
        assert result.status == "complete", result
        landed = objects(bucket)  # the object is whole once the entry is complete
        assert len(set(landed) - set(before)) == 1
        lines = saved_lines((await client.event("store"))["html"])
        assert objects(bucket) == landed  # consuming it stored nothing more
        return lines

    (line,) = live.run(body())
    key, name, size, etag, checksum, digest, writer, local = line.split(" ")
    assert key == f"media/{name}" and name.startswith("uploads/") and name.endswith(".bin")
    assert int(size) == len(data)  # default_storage (S3) finds it under its name
    parts = [hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    assert checksum == composite_sha256(parts) and checksum.endswith("-3")
    assert etag.endswith('-3"')
    assert digest == hashlib.sha256(data).hexdigest()
    assert (writer, local) == ("S3MultipartWriter", "-")  # no local copy, none fetched
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert live.server.temp_files() == []


def test_cancelling_aborts_the_multipart_upload(live, bucket):
    before_uploads, before_objects = open_uploads(bucket), objects(bucket)

    async def body() -> None:
        client = await live.connect("/t/uploads-s3/")
        ref, _ = await a_part_in_the_bucket(client, bucket, before_uploads)
        await client.send({"t": "upload_cancel", "ref": ref})
        await client.wait_for(lambda m: m["t"] == "upload_cancelled" and m["ref"] == ref)
        assert await wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=10)

    live.run(body())
    assert objects(bucket) == before_objects


def test_a_failed_upload_aborts_the_multipart_upload(live, bucket):
    before_uploads, before_objects = open_uploads(bucket), objects(bucket)

    async def body() -> None:
        client = await live.connect("/t/uploads-s3/")
        ref, _ = await a_part_in_the_bucket(client, bucket, before_uploads)
        await send_chunk(client, ref, 11 * MiB, bytes(CHUNK))  # a gap
        error = await client.wait_for(lambda m: m["t"] == "upload_error" and m["ref"] == ref)
        assert error["code"] == "bad_offset"
        assert await wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=10)

    live.run(body())
    assert objects(bucket) == before_objects


def test_a_part_damaged_on_the_way_fails_the_upload_and_leaves_no_object(live, bucket):
    before_uploads, before_objects = open_uploads(bucket), objects(bucket)

    async def body() -> None:
        client = await live.connect("/t/uploads-s3/")
        result = await client.upload("corrupt", "damaged.bin", os.urandom(12 * MiB), runs=True)
        assert (result.status, result.code) == ("error", "write_failed")
        assert "does not match" in result.message
        assert await wait_until(lambda: objects(bucket) == before_objects, timeout=10)
        assert await wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=10)

    live.run(body())


# -- the writer on its own -----------------------------------------------------------------


@pytest.fixture
def s3_settings(s3) -> S3Settings:
    return S3Settings(
        bucket_name=BUCKET,
        location="media",
        endpoint_url=s3.endpoint,
        region_name=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )


def entry_of(size: int, name: str = "parts.bin") -> UploadEntry:
    return UploadEntry(
        ref="1",
        upload_name="files",
        client_name=name,
        raw_name=name,
        client_type="",
        client_size=size,
    )


def test_the_bucket_lists_the_parts_it_holds_for_an_upload(s3_settings, bucket):
    data = os.urandom(11 * MiB)
    writer = S3MultipartWriter(entry_of(len(data)), part_size=5 * MiB, settings=s3_settings)
    writer.open()
    try:
        for start in range(0, len(data), MiB):
            writer.write(memoryview(data)[start : start + MiB])
        assert writer.upload_id is not None
        # A later writer (a resumed upload) asks the bucket about that upload id.
        later = S3MultipartWriter(entry_of(len(data)), name=writer.name, settings=s3_settings)
        deadline = time.monotonic() + 10  # parts 1 and 2 are on their way
        while len(later.list_parts(writer.upload_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        parts = later.list_parts(writer.upload_id)
        assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, 5 * MiB)]
        assert all(p["ETag"] for p in parts)
        assert writer.list_parts() == parts
    finally:
        writer.close("cancel")
    assert (writer.key, writer.upload_id) not in open_uploads(bucket)


def test_an_empty_file_becomes_an_empty_object(s3_settings, bucket):
    writer = S3MultipartWriter(entry_of(0, "empty.txt"), settings=s3_settings)
    writer.open()
    writer.finish()
    try:
        assert bucket.get_object(Bucket=BUCKET, Key=writer.key)["Body"].read() == b""
        assert writer.meta()["checksum_sha256"] == composite_sha256([hashlib.sha256().digest()])
    finally:
        writer.close("cancel")
    assert writer.key not in objects(bucket)


def test_a_writer_closed_done_keeps_its_object(s3_settings, bucket):
    writer = S3MultipartWriter(entry_of(3, "kept.txt"), settings=s3_settings)
    writer.open()
    writer.write(memoryview(b"abc"))
    writer.finish()
    writer.close("done")
    assert bucket.get_object(Bucket=BUCKET, Key=writer.key)["Body"].read() == b"abc"
    assert writer.meta()["key"] == f"media/{writer.name}"
    bucket.delete_object(Bucket=BUCKET, Key=writer.key)


# -- abandoned uploads ---------------------------------------------------------------------


def start_upload(bucket: Any, key: str) -> tuple[str, Any]:
    upload = bucket.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    listing = bucket.list_multipart_uploads(Bucket=BUCKET, Prefix=key)["Uploads"]
    (started,) = [u["Initiated"] for u in listing if u["UploadId"] == upload]
    return upload, started


def test_uploads_older_than_the_ttl_under_the_prefix_are_aborted(s3_settings, bucket):
    old, started = start_upload(bucket, "media/uploads/abandoned.bin")
    other, _ = start_upload(bucket, "media/other/not-ours.bin")
    try:
        young = abort_abandoned_uploads(
            timedelta(hours=24), settings=s3_settings, now=started + timedelta(hours=23)
        )
        assert young == []
        assert ("media/uploads/abandoned.bin", old) in open_uploads(bucket)
        aborted = abort_abandoned_uploads(
            timedelta(hours=24), settings=s3_settings, now=started + timedelta(hours=25)
        )
        assert [u["UploadId"] for u in aborted] == [old]
        assert ("media/uploads/abandoned.bin", old) not in open_uploads(bucket)
        assert ("media/other/not-ours.bin", other) in open_uploads(bucket)
    finally:
        bucket.abort_multipart_upload(Bucket=BUCKET, Key="media/other/not-ours.bin", UploadId=other)


def test_the_cleanup_command_aborts_abandoned_uploads(settings, s3, bucket):
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    settings.AWS_S3_ENDPOINT_URL = s3.endpoint
    settings.AWS_ACCESS_KEY_ID, settings.AWS_SECRET_ACCESS_KEY = ACCESS_KEY, SECRET_KEY
    settings.AWS_S3_REGION_NAME = REGION
    settings.AWS_LOCATION = "media"
    upload, _ = start_upload(bucket, "media/uploads/crashed.bin")
    out = io.StringIO()
    # moto dates every upload years back: --hours 1 finds this one old enough.
    call_command("djust_s3_cleanup", "--hours", "1", stdout=out)
    assert f"media/uploads/crashed.bin {upload}" in out.getvalue()
    assert re.search(
        r"^aborted \d+ multipart upload\(s\) older than 1:00:00$", out.getvalue(), re.M
    )
    assert ("media/uploads/crashed.bin", upload) not in open_uploads(bucket)
