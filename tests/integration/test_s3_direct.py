"""Direct uploads: the client PUTs parts straight to a real S3-compatible server (moto's).

The djust server signs, checks and completes (``external=S3Direct(...)``, tests/app/s3_direct.py).
The client here does what the browser does: it registers over the socket, asks for a URL per part
with the part's SHA-256, PUTs the part with ``http.client`` and reports its ETag.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import os
import shutil
import signal
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest

from djust.testing import LiveClient
from djust.transport.protocol import encode_chunk
from djust.uploads.s3 import composite_sha256

from ..conftest import make_server
from ..s3server import S3Server
from .conftest import Live, run_async, wait_until
from .test_redis import RedisServer, Workers
from .test_redis import connect as connect_to
from .test_s3_resume import state_files
from .test_uploads import saved_lines

MiB = 1024 * 1024
BUCKET = "djust-direct"
PAGE = "/t/uploads-s3-direct/"
HEADS = "media/.djust-heads/"


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def site(s3):
    server = make_server(**s3.env(BUCKET)).start()
    yield server
    server.stop()
    shutil.rmtree(server.state_dir, ignore_errors=True)


@pytest.fixture
def live(site) -> Live:
    return Live(site)


@pytest.fixture
def bucket(s3) -> Any:
    return s3.client()


def objects(bucket: Any) -> dict[str, str]:
    """Every object in the bucket: key → ETag."""
    listing = bucket.list_objects_v2(Bucket=BUCKET)
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


def open_uploads(bucket: Any) -> set[tuple[str, str]]:
    listing = bucket.list_multipart_uploads(Bucket=BUCKET)
    return {(u["Key"], u["UploadId"]) for u in listing.get("Uploads", [])}


def checksum_of(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def put(url: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    """PUT ``body`` as a browser's fetch does (no Content-Type); the status and the ETag."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("PUT", f"{parts.path}?{parts.query}", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("ETag", "")
    finally:
        connection.close()


@dataclass
class Direct:
    """One direct upload driven by hand: register, sign, PUT, report."""

    client: LiveClient
    ref: str
    data: bytes
    part_size: int
    parts: int
    window: int
    token: str | None = None  # what attaches it again after a drop, when resume is on

    @classmethod
    async def register(
        cls, client: LiveClient, slot: str, name: str, data: bytes, content_type: str = ""
    ) -> Direct:
        reply = await client.register(slot, name, len(data), content_type)
        assert reply["t"] == "upload_registered", reply
        external = reply["external"]
        assert external["landed"] == []
        return cls(
            client,
            reply["ref"],
            data,
            external["part_size"],
            external["parts"],
            reply["window"],
            reply.get("resume"),
        )

    def body(self, part: int) -> bytes:
        return self.data[(part - 1) * self.part_size : part * self.part_size]

    def answer(self, *kinds: str):
        return lambda m: m.get("ref") == self.ref and m["t"] in (*kinds, "upload_error")

    async def sign(self, part: int, checksum: str | None = None) -> dict[str, Any]:
        """``upload_presigned`` for ``part`` (or the ``upload_error`` that came instead)."""
        checksum = checksum or checksum_of(self.body(part))
        await self.client.send(
            {"t": "upload_presign", "ref": self.ref, "part": part, "checksum": checksum}
        )
        return await self.client.wait_for(
            lambda m: (
                m.get("ref") == self.ref
                and (
                    m["t"] == "upload_error" or (m["t"] == "upload_presigned" and m["part"] == part)
                )
            )
        )

    async def land(self, part: int, *, body: bytes | None = None) -> str:
        """Sign, PUT (``body``, if given, instead of the part's bytes) and report ``part``."""
        signed = await self.sign(part)
        assert signed["t"] == "upload_presigned", signed
        sent = self.body(part) if body is None else body
        status, etag = await asyncio.to_thread(put, signed["url"], signed["headers"], sent)
        assert status == 200 and etag, status
        await self.report(part, etag)
        return etag

    async def report(self, part: int, etag: str, checksum: str | None = None) -> None:
        checksum = checksum or checksum_of(self.body(part))
        await self.client.send(
            {"t": "upload_part", "ref": self.ref, "part": part, "etag": etag, "checksum": checksum}
        )

    async def first(self) -> dict[str, Any]:
        """Part 1 lands; the server's verdict on it (the ack that opens the window, or not)."""
        await self.land(1)
        return await self.client.wait_for(self.answer("upload_ack", "upload_complete"))

    async def rest(self, damaged: int | None = None) -> dict[str, Any]:
        """The other parts, as many at once as the window allows; how the upload ended."""
        at_once = self.window // self.part_size
        numbers = list(range(2, self.parts + 1))
        for start in range(0, len(numbers), at_once):
            batch = numbers[start : start + at_once]

            async def one(part: int) -> None:
                body = self.body(part)
                if part == damaged:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                await self.land(part, body=body)

            await asyncio.gather(*(one(part) for part in batch))
        return await self.client.wait_for(self.answer("upload_complete"))

    async def upload(self) -> dict[str, Any]:
        verdict = await self.first()
        if verdict["t"] != "upload_ack":
            return verdict
        self.window = verdict["window"]
        if self.parts == 1:
            return await self.client.wait_for(self.answer("upload_complete"))
        return await self.rest()


# -- a complete upload -----------------------------------------------------------------------


def test_parts_put_straight_to_the_bucket_make_a_byte_identical_verified_object(live, bucket):
    data = os.urandom(12 * MiB)  # parts of 5, 5 and 2 MiB

    async def body() -> tuple[list[str], dict[str, str], dict[str, str]]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "movie.bin", data)
        assert (upload.parts, upload.window) == (3, 5 * MiB)  # one part until part 1 passed
        ended = await upload.upload()
        assert ended["t"] == "upload_complete", ended
        landed = objects(bucket)
        lines = saved_lines((await client.event("store", slot="direct"))["html"])
        return lines, landed, objects(bucket)

    lines, landed, after = live.run(body())
    (line,) = lines
    key, name, size, etag, checksum, digest, writer, local = line.split(" ")
    assert key == f"media/{name}" and name.startswith("direct/") and name.endswith(".bin")
    assert int(size) == len(data)  # default_storage finds it under its name
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    parts = [hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    assert checksum == composite_sha256(parts) and etag.endswith('-3"')
    assert (digest, writer, local) == ("None", "S3DirectUpload", "-")  # no byte seen, none kept
    assert after == landed  # consuming it copied nothing
    assert not [k for k in after if k.startswith(HEADS)]  # part 1's head is gone
    assert not [u for u in open_uploads(bucket) if u[0] == key]


def test_progress_counts_the_parts_landed(live, bucket):
    data = os.urandom(11 * MiB)

    async def body() -> list[int]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "parts.bin", data)
        verdict = await upload.first()
        upload.window = verdict["window"]
        assert verdict["offset"] == 5 * MiB and verdict["window"] == 3 * 5 * MiB
        offsets = [verdict["offset"]]
        await upload.land(3)  # parts land in any order
        offsets.append((await client.wait_for(upload.answer("upload_ack")))["offset"])
        await upload.land(2)
        offsets.append((await client.wait_for(upload.answer("upload_ack")))["offset"])
        await client.wait_for(upload.answer("upload_complete"))
        await client.event("drop", slot="direct")  # the object goes with the entry
        return offsets

    assert live.run(body()) == [5 * MiB, 6 * MiB, 11 * MiB]


def test_an_empty_file_becomes_an_empty_object_without_a_put(live, bucket):
    async def body() -> list[str]:
        client = await live.connect(PAGE)
        reply = await client.register("direct", "empty.txt", 0)
        assert reply["t"] == "upload_registered" and reply["external"]["parts"] == 1
        await client.wait_for(
            lambda m: m.get("ref") == reply["ref"] and m["t"] == "upload_complete"
        )
        return saved_lines((await client.event("store", slot="direct"))["html"])

    (line,) = live.run(body())
    key, _, size, *_ = line.split(" ")
    assert size == "0" and bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b""


def test_handle_upload_complete_consumes_a_direct_entry(live, bucket):
    data = os.urandom(1000)

    async def body() -> str:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "hooked", "note.bin", data)
        assert (await upload.upload())["t"] == "upload_complete"
        await client.wait_for(lambda m: m["t"] == "upload_consumed" and m["ref"] == upload.ref)
        await client.wait_for(lambda m: m["t"] == "render" and "hooked " in m["html"])
        return client.html

    (line,) = [s for s in saved_lines(live.run(body())) if s.startswith("hooked ")]
    _, name, etag, has_url = line.split(" ")
    assert name.startswith("uploads/") and etag.endswith('-1"') and has_url == "True"
    assert bucket.get_object(Bucket=BUCKET, Key=f"media/{name}")["Body"].read() == data


# -- what the server refuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("photo.png", b"MZ\x90\x00" + os.urandom(7 * MiB), "content_mismatch"),
        ("notes.txt", b"<html><script>alert(1)</script></html>" + b" " * 500, "active_content"),
    ],
    ids=["renamed-program", "active-content"],
)
def test_a_refused_first_part_leaves_nothing_in_the_bucket(live, bucket, name, content, code):
    before_objects, before_uploads = objects(bucket), open_uploads(bucket)

    async def body() -> None:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", name, content)
        verdict = await upload.first()
        assert (verdict["t"], verdict["code"]) == ("upload_error", code), verdict
        assert await wait_until(lambda: objects(bucket) == before_objects, timeout=10)
        assert open_uploads(bucket) == before_uploads  # none was ever started
        # Listed with the slot's errors, as the socket's refusals are.
        listed = f"<ol id='errors-direct'><li>{code}</li>"
        await client.wait_for(lambda m: m["t"] == "render" and listed in m["html"])

    live.run(body())


def test_other_parts_wait_for_the_first_to_pass(live, bucket):
    async def body() -> dict[str, Any]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "early.bin", os.urandom(11 * MiB))
        return await upload.sign(2)

    refused = live.run(body())
    assert (refused["t"], refused["code"]) == ("upload_error", "window_exceeded")


def test_no_more_parts_are_signed_at_once_than_the_window_holds(live, bucket):
    async def body() -> list[dict[str, Any]]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "wide.bin", os.urandom(26 * MiB))
        assert (await upload.first())["window"] == 3 * 5 * MiB
        return [await upload.sign(part) for part in (2, 3, 4, 2, 5)]

    answers = live.run(body())
    assert [a["t"] for a in answers[:4]] == ["upload_presigned"] * 4  # 2 again: signed again
    assert (answers[4]["t"], answers[4]["code"]) == ("upload_error", "window_exceeded")


def test_a_part_whose_bytes_are_not_its_checksum_fails_and_leaves_no_object(live, bucket):
    before_objects, before_uploads = objects(bucket), open_uploads(bucket)

    async def body() -> dict[str, Any]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "damaged.bin", os.urandom(12 * MiB))
        upload.window = (await upload.first())["window"]
        # A part damaged on its way (moto keeps it; S3 would refuse the PUT with BadDigest).
        return await upload.rest(damaged=2)

    ended = live.run(body())
    assert (ended["t"], ended["code"]) == ("upload_error", "write_failed")
    assert "does not match" in ended["message"]
    # The object the bucket completed is deleted on the entry's lane, after the error is sent.
    assert live.run(wait_until(lambda: objects(bucket) == before_objects, timeout=10))
    assert open_uploads(bucket) == before_uploads


def test_a_part_reported_with_another_checksum_is_refused_at_once(live, bucket):
    before_uploads = open_uploads(bucket)

    async def body() -> dict[str, Any]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "liar.bin", os.urandom(11 * MiB))
        upload.window = (await upload.first())["window"]
        signed = await upload.sign(2)
        _, etag = await asyncio.to_thread(put, signed["url"], signed["headers"], upload.body(2))
        await upload.report(2, etag, checksum_of(b"other bytes"))
        return await client.wait_for(upload.answer())

    ended = live.run(body())
    assert (ended["t"], ended["code"]) == ("upload_error", "write_failed")
    assert "not the one signed" in ended["message"]
    assert live.run(wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=10))


def test_a_put_the_bucket_refused_fails_the_upload_and_aborts_it(live, bucket):
    before_uploads = open_uploads(bucket)

    async def body() -> dict[str, Any]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "refused.bin", os.urandom(11 * MiB))
        upload.window = (await upload.first())["window"]
        await upload.sign(2)
        await client.send(
            {"t": "upload_part", "ref": upload.ref, "part": 2, "error": "403 AccessDenied"}
        )
        return await client.wait_for(upload.answer())

    ended = live.run(body())
    assert (ended["code"], "403 AccessDenied" in ended["message"]) == ("write_failed", True)
    assert live.run(wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=10))


# -- cancel and disconnect ---------------------------------------------------------------------


def test_cancelling_aborts_the_multipart_upload(live, bucket):
    before_objects, before_uploads = objects(bucket), open_uploads(bucket)

    async def body() -> None:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "cancelled.bin", os.urandom(12 * MiB))
        upload.window = (await upload.first())["window"]
        await upload.land(2)
        await client.wait_for(upload.answer("upload_ack"))
        assert len(open_uploads(bucket) - before_uploads) == 1  # under way, two parts in
        await client.send({"t": "upload_cancel", "ref": upload.ref})
        await client.wait_for(lambda m: m["t"] == "upload_cancelled" and m["ref"] == upload.ref)
        assert await wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=10)

    live.run(body())
    assert objects(bucket) == before_objects


def test_cancelling_before_part_1_is_checked_removes_the_head(live, bucket):
    before_objects = objects(bucket)

    async def body() -> None:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "early.bin", os.urandom(6 * MiB))
        signed = await upload.sign(1)
        status, _ = await asyncio.to_thread(put, signed["url"], signed["headers"], upload.body(1))
        assert status == 200 and len(objects(bucket)) == len(before_objects) + 1
        await client.send({"t": "upload_cancel", "ref": upload.ref})  # never reported
        await client.wait_for(lambda m: m["t"] == "upload_cancelled" and m["ref"] == upload.ref)
        assert await wait_until(lambda: objects(bucket) == before_objects, timeout=10)

    live.run(body())


def test_a_closed_connection_aborts_its_direct_uploads(live, bucket):
    before_uploads = open_uploads(bucket)

    async def body() -> None:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "dropped.bin", os.urandom(12 * MiB))
        upload.window = (await upload.first())["window"]
        assert len(open_uploads(bucket) - before_uploads) == 1
        await client.close()  # this test server keeps no upload for a resume
        assert await wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=10)

    live.run(body())


def test_chunks_for_a_direct_upload_are_refused(live, bucket):
    async def body() -> dict[str, Any]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "socket.bin", os.urandom(1000))
        await client.transport.send_bytes(encode_chunk(upload.ref, 0, b"x" * 100))
        return await client.wait_for(lambda m: m["t"] == "error")

    assert live.run(body())["code"] == "bad_ref"


@pytest.fixture(scope="module")
def resuming_site(s3):
    server = make_server(TEST_RESUME_TTL="60", **s3.env(BUCKET)).start()
    yield server
    server.stop()
    shutil.rmtree(server.state_dir, ignore_errors=True)


async def half_way(client: LiveClient, name: str, data: bytes) -> tuple[Direct, dict[str, Any]]:
    """Parts 1 and 2 of a 16 MiB file landed and acknowledged, part 3 signed: the upload and
    part 3's URL."""
    upload = await Direct.register(client, "direct", name, data)
    upload.window = (await upload.first())["window"]
    await upload.land(2)
    await client.wait_for(upload.answer("upload_ack"))
    return upload, await upload.sign(3)


async def go_on(upload: Direct, client: LiveClient, name: str, part_3_etag: str) -> list[str]:
    """Resume ``half_way``'s upload on ``client`` after part 3 landed unreported; finish and
    store it: the stored lines."""
    reply = await client.register("direct", name, len(upload.data), resume=upload.token)
    assert reply["t"] == "upload_registered", reply
    assert (reply["offset"], reply["external"]["landed"]) == (10 * MiB, [1, 2])
    assert reply["checked"] and reply["window"] == 3 * 5 * MiB
    upload.client, upload.ref = client, reply["ref"]
    await upload.report(3, part_3_etag)
    assert (await client.wait_for(upload.answer("upload_ack")))["offset"] == 15 * MiB
    await upload.land(4)
    ended = await client.wait_for(upload.answer("upload_complete"))
    assert ended["t"] == "upload_complete", ended
    return saved_lines((await client.event("store", slot="direct"))["html"])


def test_after_a_drop_the_page_goes_on_after_the_parts_the_server_has(resuming_site, bucket):
    live = Live(resuming_site)
    data = os.urandom(16 * MiB)  # parts of 5, 5, 5 and 1 MiB

    async def body() -> list[str]:
        client = await live.connect(PAGE)
        upload, signed = await half_way(client, "trip.bin", data)
        await client.close()
        # The PUT goes on while the socket is down; the server hears of it later.
        _, etag = await asyncio.to_thread(put, signed["url"], signed["headers"], upload.body(3))
        return await go_on(upload, await live.connect(PAGE), "trip.bin", etag)

    (line,) = live.run(body())
    key = line.split(" ")[0]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


# -- in the process started after a restart --------------------------------------------------


def restartable_site(servers, s3, ttl: str):
    return servers(TEST_RESUME_TTL=ttl, **s3.env(BUCKET))


async def gone(client: LiveClient) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the connection is gone, however it says so
        await client.wait_for(lambda m: False)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_direct_upload_goes_on_in_the_server_started_after_a_restart(servers, s3, bucket, sig):
    server = restartable_site(servers, s3, "60")
    live = Live(server)
    data = os.urandom(16 * MiB)  # parts of 5, 5, 5 and 1 MiB
    before = open_uploads(bucket)

    async def body() -> list[str]:
        client = await live.connect(PAGE)
        upload, signed = await half_way(client, "deploy.bin", data)

        def kept() -> bool:
            return any(len(s["landed"]) == 2 and s["signed"] for s in state_files(server))

        assert await wait_until(kept, timeout=10), state_files(server)
        server.stop(sig)
        await gone(client)
        # Part 3 lands while the server restarts; the new process hears of it from the page.
        _, etag = await asyncio.to_thread(put, signed["url"], signed["headers"], upload.body(3))
        server.start()
        return await go_on(upload, await live.connect(PAGE), "deploy.bin", etag)

    (line,) = live.run(body())
    key = line.split(" ")[0]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert open_uploads(bucket) == before
    assert server.temp_files() == []  # stored: what was kept for a restart went with it


def test_a_first_part_that_landed_during_a_restart_is_checked_by_the_new_server(
    servers, s3, bucket
):
    server = restartable_site(servers, s3, "60")
    live = Live(server)
    data = os.urandom(7 * MiB)

    async def body() -> list[str]:
        client = await live.connect(PAGE)
        upload = await Direct.register(client, "direct", "early.bin", data)
        signed = await upload.sign(1)
        assert await wait_until(lambda: any(s["signed"] for s in state_files(server)), 10)
        server.stop(signal.SIGKILL)
        await gone(client)
        _, etag = await asyncio.to_thread(put, signed["url"], signed["headers"], upload.body(1))
        server.start()

        again = await live.connect(PAGE)
        reply = await again.register("direct", "early.bin", len(data), resume=upload.token)
        assert reply["t"] == "upload_registered", reply
        assert (reply["offset"], reply["external"]["landed"], reply["checked"]) == (0, [], False)
        upload.client, upload.ref = again, reply["ref"]
        await upload.report(1, etag)
        verdict = await again.wait_for(upload.answer("upload_ack"))
        assert (verdict["offset"], verdict["window"]) == (5 * MiB, 3 * 5 * MiB)
        await upload.land(2)
        ended = await again.wait_for(upload.answer("upload_complete"))
        assert ended["t"] == "upload_complete", ended
        return saved_lines((await again.event("store", slot="direct"))["html"])

    (line,) = live.run(body())
    key = line.split(" ")[0]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert not [k for k in objects(bucket) if k.startswith(HEADS)]


def test_direct_uploads_left_by_a_killed_server_go_from_the_bucket_after_the_grace_period(
    servers, s3, bucket
):
    server = restartable_site(servers, s3, "2")
    live = Live(server)
    before_uploads, before_objects = open_uploads(bucket), objects(bucket)

    async def body() -> None:
        client = await live.connect(PAGE)
        # One with a multipart upload open, one whose first part waits unchecked in the bucket.
        started = await Direct.register(client, "direct", "started.bin", os.urandom(11 * MiB))
        started.window = (await started.first())["window"]
        await started.land(2)
        await client.wait_for(started.answer("upload_ack"))
        unchecked = await Direct.register(client, "direct", "unchecked.bin", os.urandom(6 * MiB))
        signed = await unchecked.sign(1)
        await asyncio.to_thread(put, signed["url"], signed["headers"], unchecked.body(1))

        def kept() -> bool:
            states = state_files(server)
            return len(states) == 2 and any(len(s["landed"]) == 2 for s in states)

        assert await wait_until(kept, timeout=10), state_files(server)
        assert open_uploads(bucket) != before_uploads
        assert objects(bucket).keys() != before_objects.keys()
        server.stop(signal.SIGKILL)
        await gone(client)
        server.start()  # nobody comes back for them
        assert await wait_until(lambda: open_uploads(bucket) == before_uploads, timeout=20)
        assert await wait_until(lambda: objects(bucket) == before_objects, timeout=10)
        assert await wait_until(lambda: server.temp_files() == [], timeout=5)

    live.run(body())


@pytest.fixture(scope="module")
def direct_pool(s3):
    redis = RedisServer().start()
    workers = Workers(redis.url)
    workers.env.update(TEST_RESUME_TTL="60", **s3.env(BUCKET))
    workers.start()
    workers.start()
    yield workers
    workers.stop()
    redis.remove()


@pytest.mark.redis
@pytest.mark.parametrize("first_alive", [False, True], ids=["closed", "still-open"])
def test_a_reconnect_that_lands_on_another_worker_goes_on_there(direct_pool, bucket, first_alive):
    """The first worker may not know yet that its connection is gone: it hands the upload over."""
    a, b = direct_pool.all
    data = os.urandom(16 * MiB)
    before = open_uploads(bucket)

    async def body() -> list[str]:
        client = await connect_to(a, PAGE)
        upload, signed = await half_way(client, "worker.bin", data)
        if not first_alive:
            await client.close()
        _, etag = await asyncio.to_thread(put, signed["url"], signed["headers"], upload.body(3))
        other = await connect_to(b, PAGE)
        lines = await go_on(upload, other, "worker.bin", etag)
        await other.close()
        if first_alive:
            await client.close()
        return lines

    (line,) = run_async(body())
    key = line.split(" ")[0]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert open_uploads(bucket) == before
    assert b.temp_files() == []


# -- what a direct upload holds of the server --------------------------------------------------


@pytest.fixture(scope="module")
def tight_site(s3):
    """A server that holds at most 8 MiB of uploaded bytes, per connection and in all."""
    limits = {"TEST_MAX_CONNECTION_BYTES": str(8 * MiB), "TEST_MAX_PROCESS_BYTES": str(8 * MiB)}
    server = make_server(**limits, **s3.env(BUCKET)).start()
    yield server
    server.stop()
    shutil.rmtree(server.state_dir, ignore_errors=True)


def test_the_servers_byte_quotas_refuse_a_file_through_the_socket(tight_site):
    live = Live(tight_site)

    async def body() -> list[dict[str, Any]]:
        client = await live.connect("/t/uploads/")
        return [await client.register("any", f"{n}.bin", 3_000_000) for n in range(3)]

    replies = live.run(body())
    assert [r["t"] for r in replies[:2]] == ["upload_registered"] * 2
    assert (replies[2]["t"], replies[2]["code"]) == ("upload_error", "quota_exceeded")


def test_a_direct_upload_counts_against_none_of_the_servers_byte_quotas(tight_site, bucket):
    live = Live(tight_site)
    data = os.urandom(16 * MiB)  # twice what the server holds: none of it passes through it

    async def body() -> list[str]:
        client = await live.connect(PAGE)
        first = await Direct.register(client, "direct", "big.bin", data)
        second = await Direct.register(client, "direct", "big-too.bin", data)
        for upload in (first, second):
            assert (await upload.upload())["t"] == "upload_complete"
        return saved_lines((await client.event("store", slot="direct"))["html"])

    lines = live.run(body())
    assert len(lines) == 2
    for line in lines:
        key = line.split(" ")[0]
        assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_a_part_reported_again_after_a_resume_is_taken_once(resuming_site, bucket):
    """A PUT that lands while the page resumes is reported on the new socket, and again when
    ``upload_registered`` (sent before that report arrived) does not list it."""
    live = Live(resuming_site)
    data = os.urandom(16 * MiB)

    async def body() -> list[str]:
        client = await live.connect(PAGE)
        upload, signed = await half_way(client, "twice.bin", data)
        _, etag = await asyncio.to_thread(put, signed["url"], signed["headers"], upload.body(3))
        await upload.report(3, etag)
        await upload.report(3, etag)  # the same part, the same ETag: nothing new
        assert (await client.wait_for(upload.answer("upload_ack")))["offset"] == 15 * MiB
        await upload.land(4)
        ended = await client.wait_for(upload.answer("upload_complete"))
        assert ended["t"] == "upload_complete", ended
        return saved_lines((await client.event("store", slot="direct"))["html"])

    (line,) = live.run(body())
    assert bucket.get_object(Bucket=BUCKET, Key=line.split(" ")[0])["Body"].read() == data
