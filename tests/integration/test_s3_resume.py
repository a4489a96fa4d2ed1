"""S3 uploads that another process goes on with: after a restart, when the page comes back.

Against moto's S3 server (tests/s3server.py). The writer on its own first (a second writer
resumes what the first left in the bucket), then real djust servers, with resume on, stopped
with SIGTERM or SIGKILL mid-upload and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
from typing import Any

import pytest

from djust.uploads.entry import UploadEntry
from djust.uploads.s3 import S3MultipartWriter, S3Settings, composite_sha256

from ..s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from .conftest import Live, wait_until
from .test_uploads import saved_lines, send_chunk, unique

MiB = 1024 * 1024
PART = 5 * MiB  # the test view's S3 slot sends 5 MiB parts
BUCKET = "djust-resume"
CHUNK = 64 * 1024
MODIFIED = 1700000000000


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture
def bucket(s3) -> Any:
    return s3.client()


def open_uploads(bucket: Any) -> set[tuple[str, str]]:
    """The bucket's multipart uploads in progress: (key, upload id)."""
    listing = bucket.list_multipart_uploads(Bucket=BUCKET)
    return {(u["Key"], u["UploadId"]) for u in listing.get("Uploads", [])}


def objects(bucket: Any) -> set[str]:
    return {o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def composite(data: bytes) -> str:
    return composite_sha256(
        [hashlib.sha256(data[i : i + PART]).digest() for i in range(0, len(data), PART)]
    )


# -- the writer on its own -------------------------------------------------------------------


@pytest.fixture
def settings_(s3) -> S3Settings:
    return S3Settings(
        bucket_name=BUCKET,
        endpoint_url=s3.endpoint,
        region_name=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )


def writer_of(data: bytes, settings: S3Settings) -> S3MultipartWriter:
    entry = UploadEntry(
        ref="1",
        upload_name="files",
        client_name="movie.bin",
        raw_name="movie.bin",
        client_type="",
        client_size=len(data),
    )
    return S3MultipartWriter(entry, part_size=PART, settings=settings)


def write(writer: S3MultipartWriter, data: bytes, start: int, end: int) -> None:
    for offset in range(start, end, MiB):
        writer.write(memoryview(data)[offset : min(end, offset + MiB)])


def test_a_second_writer_goes_on_after_the_parts_the_first_left(settings_, bucket):
    data = os.urandom(13 * MiB)
    first = writer_of(data, settings_)
    write(first, data, 0, 11 * MiB)  # parts 1 and 2 go out; 1 MiB waits for part 3
    first.suspend()
    state = json.loads(json.dumps(first.resume_state()))  # as the state file keeps it
    second = writer_of(data, settings_)
    kept = second.resume(state)
    assert kept == 2 * PART
    write(second, data, kept, len(data))
    second.finish()
    try:
        assert bucket.get_object(Bucket=BUCKET, Key=first.key)["Body"].read() == data
        assert second.meta()["checksum_sha256"] == composite(data)
        assert second.stored_sha256() == hashlib.sha256(data).hexdigest()
        assert (first.key, first.upload_id) not in open_uploads(bucket)
    finally:
        second.close("cancel")


def test_a_part_that_landed_after_the_state_was_saved_is_sent_again(settings_, bucket):
    data = os.urandom(12 * MiB)
    first = writer_of(data, settings_)
    write(first, data, 0, 6 * MiB)
    first.suspend()
    state = json.loads(json.dumps(first.resume_state()))
    assert len(state["parts"]) == 1
    # Part 2 lands after the state was saved (the process was killed before saving again).
    first._send(bytearray(data[PART : 2 * PART]))
    first.suspend()
    assert len(first.list_parts()) == 2
    second = writer_of(data, settings_)
    assert second.resume(state) == PART
    write(second, data, PART, len(data))
    second.finish()
    try:
        assert bucket.get_object(Bucket=BUCKET, Key=first.key)["Body"].read() == data
    finally:
        second.close("cancel")


def test_abandoning_a_saved_state_aborts_its_multipart_upload(settings_, bucket, settings):
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    settings.AWS_S3_ENDPOINT_URL = settings_.endpoint_url
    settings.AWS_ACCESS_KEY_ID, settings.AWS_SECRET_ACCESS_KEY = ACCESS_KEY, SECRET_KEY
    settings.AWS_S3_REGION_NAME = REGION
    data = os.urandom(6 * MiB)
    writer = writer_of(data, settings_)
    write(writer, data, 0, len(data))
    writer.suspend()
    assert (writer.key, writer.upload_id) in open_uploads(bucket)
    S3MultipartWriter.abandon(json.loads(json.dumps(writer.resume_state())))
    assert (writer.key, writer.upload_id) not in open_uploads(bucket)


# -- through djust servers that stop mid-upload ----------------------------------------------


def state_files(server) -> list[dict[str, Any]]:
    """The writers' states (S3, direct to S3) that the server keeps beside its waiting entries."""
    found = []
    for path in server.upload_dir.glob("djust-r-*.state"):
        with contextlib.suppress(ValueError, KeyError, FileNotFoundError):  # being written
            found.append(json.loads(path.read_text())["writer"]["state"])
    return found


async def start_upload(live: Live, server, name: str, data: bytes, end: int):
    """Register ``data``, send ``end`` bytes as the browser does, and wait until the server has
    saved that every part up to there landed. The client and the upload's token."""
    client = await live.connect("/t/uploads-s3/")
    reply = await client.register("files", name, len(data), client_modified=MODIFIED)
    assert reply["t"] == "upload_registered" and reply["resume"], reply
    ref, window = reply["ref"], reply["window"]
    sent = acked = 0
    while sent < end:
        while sent + CHUNK - acked > window:
            ack = await client.wait_for(lambda m: m.get("ref") == ref and m["t"] == "upload_ack")
            acked, window = max(acked, ack["offset"]), ack.get("window", window)
        await send_chunk(client, ref, sent, data[sent : sent + CHUNK])
        sent += CHUNK
    parts = end // PART

    def saved() -> bool:
        return any(len(state["parts"]) >= parts for state in state_files(server))

    assert await wait_until(saved, timeout=15), state_files(server)
    return client, reply["resume"]


def s3_server(servers, s3, ttl: str):
    return servers(TEST_RESUME_TTL=ttl, **s3.env(BUCKET))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_an_s3_upload_resumes_after_the_server_restarts(servers, s3, bucket, sig):
    server = s3_server(servers, s3, "60")
    live = Live(server)
    name, data = unique("restart.bin"), os.urandom(13 * MiB)
    before = open_uploads(bucket)

    async def body():
        client, token = await start_upload(live, server, name, data, 11 * MiB)
        server.stop(sig)
        with pytest.raises(Exception):  # noqa: B017 - the connection is gone, however it says so
            await client.wait_for(lambda m: False)
        server.start()
        again = await live.connect("/t/uploads-s3/")
        result = await again.upload("files", name, data, resume=token, modified=MODIFIED)
        assert result.status == "complete", result
        assert result.offset == 2 * PART  # after the parts in the bucket, never mid-part
        return saved_lines((await again.event("store"))["html"])

    (line,) = live.run(body())
    key, _, size, _, checksum, digest, writer, _ = line.split(" ")
    assert writer == "S3MultipartWriter" and int(size) == len(data)
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert checksum == composite(data)
    assert digest == hashlib.sha256(data).hexdigest()  # the whole file, read back
    assert open_uploads(bucket) == before
    assert server.temp_files() == []  # consumed: its state went with it


def test_an_s3_upload_left_by_a_killed_server_is_aborted_when_its_grace_period_ends(
    servers, s3, bucket
):
    server = s3_server(servers, s3, "2")
    live = Live(server)
    before_uploads, before_objects = open_uploads(bucket), objects(bucket)

    async def body():
        await start_upload(live, server, unique("left.bin"), os.urandom(8 * MiB), 6 * MiB)
        assert open_uploads(bucket) != before_uploads
        server.stop(signal.SIGKILL)
        server.start()  # nobody comes back for it
        assert await wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=20)
        assert await wait_until(lambda: server.temp_files() == [], timeout=5)

    live.run(body())
    assert objects(bucket) == before_objects


def test_a_resume_after_the_grace_period_is_refused_and_aborts_the_upload(servers, s3, bucket):
    server = s3_server(servers, s3, "2")
    live = Live(server)
    name, data = unique("late.bin"), os.urandom(8 * MiB)
    before = open_uploads(bucket)

    async def body():
        _, token = await start_upload(live, server, name, data, 6 * MiB)
        server.stop(signal.SIGKILL)
        await asyncio.sleep(2.5)  # the grace period ends while the server is down
        server.start()
        again = await live.connect("/t/uploads-s3/")
        reply = await again.register(
            "files", name, len(data), resume=token, client_modified=MODIFIED
        )
        assert (reply["t"], reply["code"]) == ("upload_error", "resume_expired")
        assert await wait_until(lambda: open_uploads(bucket) == before, timeout=10)

    live.run(body())
