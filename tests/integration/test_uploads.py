"""Uploads through a real server and a real WebSocket client: bytes, limits, errors, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html as html_lib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from djust.testing import LiveClient, ServerError
from djust.transport.protocol import encode_chunk

from .conftest import run_async, wait_until

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200)
PDF = b"%PDF-1.7\n" + b"1 0 obj << >> endobj\n" * 10
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>'
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


# -- helpers -------------------------------------------------------------------------------


def unique(name: str) -> str:
    """A name no other test uses, so files saved by earlier tests cannot be mistaken for ours."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{uuid.uuid4().hex[:8]}{dot}{ext}" if dot else f"{name}-{uuid.uuid4().hex[:8]}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_li(html: str, ref: str) -> str | None:
    """The text of the entry's ``<li>`` (unescaped), or None when the entry is not listed."""
    match = re.search(rf"<li data-ref='{re.escape(ref)}'>(.*?)</li>", html, re.DOTALL)
    return html_lib.unescape(match.group(1)) if match else None


def slot_errors(html: str, slot: str) -> list[str]:
    match = re.search(rf"<ol id='errors-{slot}'>(.*?)</ol>", html, re.DOTALL)
    assert match, f"no error list for slot {slot}"
    return re.findall(r"<li>(.*?)</li>", match.group(1))


def saved_lines(html: str) -> list[str]:
    """What the view's handlers noted, one line each, from ``<pre id='saved'>``."""
    match = re.search(r"<pre id='saved'>(.*?)</pre>", html, re.DOTALL)
    assert match
    return html_lib.unescape(match.group(1)).splitlines()


def saved(html: str) -> list[tuple[str, str, int]]:
    """``(path, sha256, size)`` of every file the ``save`` handler stored."""
    rows = []
    for line in saved_lines(html):
        if match := re.fullmatch(r"(.+) ([0-9a-f]{64}) ([0-9]+)", line):
            rows.append((match[1], match[2], int(match[3])))
    return rows


async def send_chunk(client: LiveClient, ref: str, offset: int, data: bytes) -> None:
    await client.transport.send_bytes(encode_chunk(ref, offset, data))


async def outcome(client: LiveClient, ref: str) -> dict[str, Any]:
    """The next ``upload_complete`` or ``upload_error`` of ``ref``."""
    return await client.wait_for(
        lambda m: m.get("ref") == ref and m["t"] in ("upload_complete", "upload_error")
    )


async def registered(client: LiveClient, slot: str, name: str, size: int, mime: str = "") -> str:
    reply = await client.register(slot, name, size, mime)
    assert reply["t"] == "upload_registered", reply
    return reply["ref"]


async def quiet_since(client: LiveClient, mark: int) -> list[dict[str, Any]]:
    """Messages other than renders and pongs received after ``client.received[mark]``."""
    await client.ping()
    return [m for m in client.received[mark:] if m["t"] not in ("render", "pong")]


def new_temp_file(server: Any, before: set[str]) -> str:
    created = set(server.temp_files()) - before
    assert len(created) == 1, created
    return created.pop()


@pytest.fixture(autouse=True)
def leaves_no_temp_files(server):
    """Once a test's connections are closed, every temp file of its uploads must be gone."""
    yield

    async def settle() -> bool:
        return await wait_until(lambda: not server.temp_files(), timeout=2)

    if not run_async(settle()):
        leftovers = server.temp_files()
        for name in leftovers:  # so that the next test starts clean
            (server.upload_dir / name).unlink(missing_ok=True)
        pytest.fail(f"temp files left behind: {leftovers}")


# -- round trips ---------------------------------------------------------------------------


def test_several_files_at_once_arrive_byte_identical(live):
    files = {
        unique("a.bin"): os.urandom(300_000),
        unique("b.bin"): os.urandom(16 * 1024 * 5 + 1),
        unique("c.bin"): os.urandom(1),
    }

    async def body():
        client = await live.connect()
        results = await asyncio.gather(
            *(client.upload("any", name, data) for name, data in files.items())
        )
        assert [r.status for r in results] == ["complete"] * 3
        reply = await client.event("save")
        rows = saved(reply["html"])
        assert len(rows) == 3
        for path, digest, size in rows:
            name = Path(path).name
            assert path == f"saved/{name}" and name in files
            on_disk = (live.server.media_dir / path).read_bytes()
            assert sha256(on_disk) == digest == sha256(files[name])
            assert size == len(files[name])

    live.run(body())


def test_zero_byte_file_completes_and_saves_empty(live):
    name = unique("empty.bin")

    async def body():
        client = await live.connect()
        result = await client.upload("any", name, b"")
        assert result.status == "complete"
        await client.ping()
        assert entry_li(client.html, result.ref) == f"{name} 100 True"
        rows = saved((await client.event("save"))["html"])
        assert [(Path(p).name, d, s) for p, d, s in rows] == [(name, sha256(b""), 0)]
        assert (live.server.media_dir / rows[0][0]).read_bytes() == b""

    live.run(body())


def test_file_of_exactly_max_file_size_is_accepted(live):
    data = b"x" * 1000  # the docs slot's max_file_size
    name = unique("exact.txt")

    async def body():
        client = await live.connect()
        result = await client.upload("docs", name, data, "text/plain")
        assert result.status == "complete"
        rows = saved((await client.event("save", slot="docs"))["html"])
        assert (live.server.media_dir / rows[0][0]).read_bytes() == data

    live.run(body())


def test_uploads_work_when_the_mixin_comes_first_in_the_bases(live):
    data = os.urandom(100_000)

    async def body():
        client = await live.connect("/t/uploads-reversed/")
        result = await client.upload("files", unique("r.bin"), data)
        assert result.status == "complete" and result.acks[-1] == len(data)
        await client.ping()
        assert "<p id='count'>1</p>" in client.html

    live.run(body())


# -- registration checks -------------------------------------------------------------------


def test_one_byte_over_max_file_size_is_refused_at_registration(live):
    async def body():
        client = await live.connect()
        before = set(live.server.temp_files())
        reply = await client.register("docs", "big.txt", 1001, "text/plain")
        assert (reply["t"], reply["code"]) == ("upload_error", "too_large")
        await client.ping()
        assert slot_errors(client.html, "docs") == ["too_large"]
        assert set(live.server.temp_files()) == before

    live.run(body())


def test_more_files_than_max_entries_is_refused(live):
    async def body():
        client = await live.connect()
        for i in range(3):
            await registered(client, "docs", f"d{i}.txt", 10, "text/plain")
        reply = await client.register("docs", "d3.txt", 10, "text/plain")
        assert (reply["t"], reply["code"]) == ("upload_error", "too_many_files")

    live.run(body())


def test_unconfigured_slot_is_refused(live):
    async def body():
        client = await live.connect()
        reply = await client.register("nope", "a.txt", 10, "text/plain")
        assert (reply["t"], reply["code"]) == ("upload_error", "unknown_slot")

    live.run(body())


def test_negative_declared_size_is_refused(live):
    async def body():
        client = await live.connect()
        reply = await client.register("any", "a.bin", -1)
        assert (reply["t"], reply["code"]) == ("upload_error", "bad_size")

    live.run(body())


@pytest.mark.parametrize(
    ("slot", "name", "mime"),
    [
        ("docs", "tool.exe", "application/x-msdownload"),
        ("docs", "report.pdf.exe", "application/pdf"),
        ("images", "notes.txt", "text/plain"),
        ("images", "photo", "application/pdf"),
        ("images", "photo.png", "text/plain"),
    ],
    ids=["ext-exe", "double-ext", "txt-in-images", "mime-pdf", "png-declared-text"],
)
def test_wrong_extension_or_mime_is_not_accepted(live, slot, name, mime):
    async def body():
        client = await live.connect()
        reply = await client.register(slot, name, 10, mime)
        assert (reply["t"], reply["code"]) == ("upload_error", "not_accepted")

    live.run(body())


def test_a_ref_already_in_use_is_refused(live):
    async def body():
        client = await live.connect()
        reply = await client.register("any", "one.bin", 10, ref="7")
        assert reply["t"] == "upload_registered"
        again = await client.register("any", "two.bin", 10, ref="7")
        assert (again["t"], again["code"]) == ("upload_error", "bad_ref")
        # The first entry is untouched and still completes.
        await send_chunk(client, "7", 0, b"0123456789")
        assert (await outcome(client, "7"))["t"] == "upload_complete"

    live.run(body())


def test_the_ref_of_a_finished_entry_cannot_be_reused(live):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "one.bin", 10)
        await client.send({"t": "upload_cancel", "ref": ref})
        await client.wait_for(lambda m: m["t"] == "upload_cancelled")
        again = await client.register("any", "two.bin", 10, ref=ref)
        assert (again["t"], again["code"]) == ("upload_error", "bad_ref")

    live.run(body())


# -- content checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot", "name", "mime", "content"),
    [
        ("images", "photo.jpg", "image/jpeg", EXE),
        ("images", "photo.jpg", "image/jpeg", PNG),
        ("any", "photo.jpg", "", EXE),
        ("any", "setup.bin", "", EXE),
        ("docs", "paper.pdf", "application/pdf", HTML),
        ("docs", "paper.pdf", "application/pdf", b""),
        ("images", "photo.png", "image/png", b""),
        ("images", "photo.jpg", "image/jpeg", b"\xff\xd8"),
    ],
    ids=[
        "exe-as-jpg",
        "png-as-jpg",
        "exe-as-jpg-untyped-slot",
        "exe-unnamed",
        "html-as-pdf",
        "empty-pdf",
        "empty-png",
        "too-short-jpg",
    ],
)
def test_content_that_does_not_match_the_name_or_type_is_refused(live, slot, name, mime, content):
    async def body():
        client = await live.connect()
        result = await client.upload(slot, name, content, mime)
        assert (result.status, result.code) == ("error", "content_mismatch"), result
        await client.ping()
        assert entry_li(client.html, result.ref) is None
        assert slot_errors(client.html, slot) == ["content_mismatch"]

    live.run(body())


def test_matching_content_is_accepted(live):
    async def body():
        client = await live.connect()
        jpg = await client.upload("images", "photo.jpg", JPEG, "image/jpeg")
        png = await client.upload("images", "photo.png", PNG, "image/png")
        pdf = await client.upload("docs", "paper.pdf", PDF, "application/pdf")
        assert [jpg.status, png.status, pdf.status] == ["complete"] * 3

    live.run(body())


def test_a_refused_file_leaves_no_temp_file(live):
    async def body():
        client = await live.connect()
        result = await client.upload("images", "photo.jpg", EXE, "image/jpeg")
        assert result.code == "content_mismatch"
        assert await wait_until(lambda: not live.server.temp_files(), timeout=1)

    live.run(body())


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("evil.svg", "image/svg+xml"),
        ("evil.svg.", ""),
        ("EVIL.SVG", ""),
        ("evil.svg ", ""),
        ("evil.svg\x00", ""),
        ("picture", "image/svg+xml; charset=utf-8"),
        ("picture", "IMAGE/SVG+XML"),
        ("page.html", "text/html"),
        ("page.HTM", ""),
        ("page", "text/html; charset=utf-8"),
        ("feed", "application/atom+xml"),
    ],
)
def test_active_content_is_refused_by_name_or_type(live, name, mime):
    async def body():
        client = await live.connect()
        reply = await client.register("any", name, len(SVG), mime)
        assert (reply["t"], reply["code"]) == ("upload_error", "active_content")

    live.run(body())


def test_svg_declared_as_an_image_is_refused_on_an_image_slot(live):
    async def body():
        client = await live.connect()
        reply = await client.register("images", "logo.svg", len(SVG), "image/svg+xml")
        assert (reply["t"], reply["code"]) == ("upload_error", "active_content")

    live.run(body())


@pytest.mark.parametrize("content", [HTML, SVG, b"\xef\xbb\xbf  <!DOCTYPE html><p>hi</p>"])
def test_markup_under_an_innocent_name_is_refused_by_content(live, content):
    async def body():
        client = await live.connect()
        result = await client.upload("any", "notes.txt", content, "text/plain")
        assert (result.status, result.code) == ("error", "active_content")

    live.run(body())


@pytest.mark.parametrize(
    ("name", "mime"),
    [("logo.svg", "image/svg+xml"), ("LOGO.SVG", "image/svg+xml; charset=utf-8")],
)
def test_svg_is_accepted_on_the_slot_that_allows_active_content(live, name, mime):
    async def body():
        client = await live.connect()
        result = await client.upload("svg", name, SVG, mime)
        assert result.status == "complete", result
        rows = saved((await client.event("save", slot="svg"))["html"])
        assert (live.server.media_dir / rows[0][0]).read_bytes() == SVG

    live.run(body())


# -- file names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("../../../../tmp/x.txt", "x.txt"),
        ("/etc/cron.d/job.txt", "job.txt"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\Users\\me\\a.txt", "a.txt"),
        ("a\x00b.txt", "ab.txt"),
        ("re\x1b[31mport\r\n.txt", "re[31mport.txt"),
        ("invoice\u202etxt.bin", "invoicetxt.bin"),
        ("\u2066hidden\u2069.txt", "hidden.txt"),
        ("..", "upload"),
        (".bashrc", "bashrc"),
    ],
    ids=[
        "dotdot",
        "deep-dotdot",
        "absolute",
        "backslashes",
        "drive",
        "nul",
        "controls",
        "bidi-override",
        "bidi-isolate",
        "dotdot-only",
        "leading-dot",
    ],
)
def test_client_names_are_stored_as_one_safe_path_component(live, raw, stored):
    data = b"plain text\n"

    async def body():
        client = await live.connect()
        result = await client.upload("any", raw, data, "text/plain")
        assert result.status == "complete", result
        await client.ping()
        li = entry_li(client.html, result.ref)
        assert li == f"{stored} 100 True"
        rows = saved((await client.event("save"))["html"])
        (path, _, _) = rows[0]
        saved_dir = (live.server.media_dir / "saved").resolve()
        target = (live.server.media_dir / path).resolve()
        assert target.parent == saved_dir
        assert target.read_bytes() == data

    live.run(body())


# -- chunk checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [((0, 10), (20, 10)), ((0, 10), (0, 10)), ((0, 10), (5, 10))],
    ids=["gap", "duplicate", "overlap"],
)
def test_a_chunk_at_the_wrong_offset_fails_the_upload(live, first, second):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "a.bin", 100)
        (o1, n1), (o2, n2) = first, second
        await send_chunk(client, ref, o1, bytes(n1))
        await send_chunk(client, ref, o2, bytes(n2))
        error = await outcome(client, ref)
        assert (error["t"], error["code"]) == ("upload_error", "bad_offset")
        assert await wait_until(lambda: not live.server.temp_files(), timeout=1)

    live.run(body())


def test_a_first_chunk_at_a_nonzero_offset_fails_the_upload(live):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "a.bin", 100)
        await send_chunk(client, ref, 10, bytes(10))
        error = await outcome(client, ref)
        assert (error["t"], error["code"]) == ("upload_error", "bad_offset")

    live.run(body())


def test_bytes_past_the_declared_size_fail_the_upload(live):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "a.bin", 10)
        await send_chunk(client, ref, 0, bytes(11))
        error = await outcome(client, ref)
        assert (error["t"], error["code"]) == ("upload_error", "size_mismatch")

    live.run(body())


def test_a_file_shorter_than_declared_stays_incomplete(live):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "short.bin", 100)
        mark = len(client.received)
        await send_chunk(client, ref, 0, bytes(50))
        settled = [m for m in await quiet_since(client, mark) if m["t"] != "upload_ack"]
        assert settled == []  # neither complete nor an error
        await client.event("save")  # consumes complete entries only
        assert saved(client.html) == []
        assert entry_li(client.html, ref) == "short.bin 50 False"

    live.run(body())


def test_a_chunk_larger_than_the_slot_chunk_size_fails_the_upload(live):
    async def body():
        client = await live.connect()
        chunk_size = client.uploads["any"]["chunk_size"]
        ref = await registered(client, "any", "a.bin", chunk_size * 2)
        await send_chunk(client, ref, 0, bytes(chunk_size + 1))
        error = await outcome(client, ref)
        assert (error["t"], error["code"]) == ("upload_error", "frame_too_large")

    live.run(body())


def test_a_chunk_of_exactly_the_slot_chunk_size_is_accepted(live):
    async def body():
        client = await live.connect()
        chunk_size = client.uploads["any"]["chunk_size"]
        ref = await registered(client, "any", "a.bin", chunk_size)
        await send_chunk(client, ref, 0, bytes(chunk_size))
        assert (await outcome(client, ref))["t"] == "upload_complete"

    live.run(body())


def test_an_empty_chunk_fails_the_upload(live):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "a.bin", 10)
        await send_chunk(client, ref, 0, b"")
        error = await outcome(client, ref)
        assert (error["t"], error["code"]) == ("upload_error", "bad_frame")

    live.run(body())


def test_chunks_for_an_unknown_ref_are_an_error(live):
    async def body():
        client = await live.connect()
        await send_chunk(client, "999", 0, b"data")
        error = await client.wait_for(lambda m: m["t"] == "error")
        assert error["code"] == "bad_ref"
        # The connection is still usable.
        assert (await client.upload("any", "ok.bin", b"fine")).status == "complete"

    live.run(body())


@pytest.mark.parametrize(
    "frame",
    [b"\x01\x00\x00", bytes([0x03]) + bytes(12) + b"data"],
    ids=["shorter-than-header", "unknown-type"],
)
def test_malformed_binary_frames_are_bad_frame(live, frame):
    async def body():
        client = await live.connect()
        await client.transport.send_bytes(frame)
        error = await client.wait_for(lambda m: m["t"] == "error")
        assert error["code"] == "bad_frame"
        assert (await client.upload("any", "ok.bin", b"fine")).status == "complete"

    live.run(body())


def test_malformed_registration_is_bad_message(live):
    async def body():
        client = await live.connect()
        message = {
            "t": "upload_register",
            "id": 5,
            "name": "any",
            "ref": "1",
            "client_name": "a.bin",
            "client_type": "",
            "client_size": True,  # bool is not an int on the wire
        }
        await client.transport.send_text(json.dumps(message))
        error = await client.wait_for(lambda m: m["t"] == "error")
        assert (error["code"], error.get("id")) == ("bad_message", 5)
        assert (await client.register("any", "ok.bin", 10))["t"] == "upload_registered"

    live.run(body())


# -- flow control --------------------------------------------------------------------------


def test_acks_increase_and_keep_a_windowed_sender_moving(live):
    data = os.urandom(4_000_000)

    async def body():
        client = await live.connect()
        chunk_size = client.uploads["any"]["chunk_size"]
        reply = await client.register("any", "big.bin", len(data))
        ref, window = reply["ref"], reply["window"]
        assert isinstance(window, int) and window >= chunk_size
        first_window = window
        sent = acked = in_flight_max = 0
        acks: list[int] = []
        while True:
            while sent < len(data) and sent + chunk_size - acked <= window:
                size = min(chunk_size, len(data) - sent)
                await send_chunk(client, ref, sent, data[sent : sent + size])
                sent += size
                in_flight_max = max(in_flight_max, sent - acked)
            message = await client.wait_for(
                lambda m: (
                    m.get("ref") == ref
                    and m["t"] in ("upload_ack", "upload_complete", "upload_error")
                )
            )
            assert message["t"] != "upload_error", message
            if message["t"] == "upload_complete":
                break
            window = message.get("window", window)  # opened once the first bytes pass
            if message["offset"] > acked:
                acks.append(message["offset"])
            acked = message["offset"]
        assert acks == sorted(set(acks)) and acks[-1] == len(data)
        assert all(0 < b - a <= window for a, b in zip([0, *acks], acks, strict=False))
        assert in_flight_max <= window
        assert len(data) > first_window  # the window really limited the sender
        rows = saved((await client.event("save"))["html"])
        assert sha256((live.server.media_dir / rows[0][0]).read_bytes()) == sha256(data)

    live.run(body())


def test_the_first_window_is_four_chunks_so_a_renamed_program_costs_little(live):
    async def body():
        client = await live.connect()
        chunk_size = client.uploads["any"]["chunk_size"]
        reply = await client.register("any", "photo.jpg", 3_000_000, "image/jpeg")
        assert reply["window"] == 4 * chunk_size
        program = b"MZ" + bytes(4 * chunk_size - 2)
        for offset in range(0, len(program), chunk_size):
            await send_chunk(client, reply["ref"], offset, program[offset : offset + chunk_size])
        error = await outcome(client, reply["ref"])
        assert (error["t"], error["code"]) == ("upload_error", "content_mismatch")

    live.run(body())


def test_a_client_that_keeps_the_first_window_still_finishes(live):
    data = os.urandom(1_000_000)

    async def body():
        client = await live.connect()
        chunk_size = client.uploads["any"]["chunk_size"]
        reply = await client.register("any", "steady.bin", len(data))
        ref, window = reply["ref"], reply["window"]  # never widened: acks must still come
        sent = acked = 0
        while True:
            while sent < len(data) and min(sent + chunk_size, len(data)) - acked <= window:
                end = min(sent + chunk_size, len(data))
                await send_chunk(client, ref, sent, data[sent:end])
                sent = end
            message = await client.wait_for(
                lambda m: m.get("ref") == ref and m["t"] in ("upload_ack", "upload_complete")
            )
            if message["t"] == "upload_complete":
                break
            acked = message["offset"]
        rows = saved((await client.event("save"))["html"])
        assert sha256((live.server.media_dir / rows[0][0]).read_bytes()) == sha256(data)

    live.run(body())


def test_the_full_window_opens_once_the_first_bytes_pass(live):
    async def body():
        client = await live.connect()
        chunk_size = client.uploads["any"]["chunk_size"]
        ref = await registered(client, "any", "photo.png", 3_000_000, "image/png")
        await send_chunk(client, ref, 0, b"\x89PNG\r\n\x1a\n" + bytes(chunk_size - 8))
        ack = await client.wait_for(lambda m: m.get("ref") == ref and "window" in m)
        assert ack["t"] == "upload_ack" and ack["window"] > 4 * chunk_size

    live.run(body())


def temp_file_flags(server: Any, name: str) -> int:
    """The open flags of the server's descriptor for the temp file ``name`` (from /proc)."""
    fds = Path(f"/proc/{server.process.pid}/fd")
    for fd in fds.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if os.readlink(fd).endswith(name):
                info = Path(f"/proc/{server.process.pid}/fdinfo/{fd.name}").read_text()
                return int(re.search(r"flags:\s+([0-7]+)", info)[1], 8)
    raise AssertionError(f"the server has no descriptor for {name}")


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
@pytest.mark.parametrize(("size", "direct"), [(16 * 1024**2, True), (16 * 1024**2 - 1, False)])
def test_uploads_from_upload_direct_io_bytes_up_bypass_the_page_cache(live, size, direct):
    async def body():
        client = await live.connect()
        before = set(live.server.temp_files())
        ref = await registered(client, "big", unique("large.bin"), size)
        for offset in range(0, 3 * 65536, 65536):  # a first block (1 % of the file) to write
            await send_chunk(client, ref, offset, os.urandom(65536))
        # Opened by its first block, on a writer thread.
        assert await wait_until(lambda: set(live.server.temp_files()) - before)
        temp = new_temp_file(live.server, before)
        assert bool(temp_file_flags(live.server, temp) & os.O_DIRECT) is direct

    live.run(body())


def test_a_large_file_of_odd_size_is_stored_byte_identical(live):
    data = os.urandom(20 * 1024**2 + 4097)  # written around the page cache, then its tail

    async def body():
        client = await live.connect()
        result = await client.upload("big", unique("odd.bin"), data)
        assert result.status == "complete", result
        rows = saved((await client.event("save", slot="big"))["html"])
        stored = live.server.media_dir / rows[0][0]
        assert (rows[0][1], rows[0][2]) == (sha256(data), len(data))
        assert stored.read_bytes() == data

    live.run(body())


def test_a_file_sent_in_runs_of_chunks_is_stored_byte_identical(live):
    data = os.urandom(3_000_001)

    async def body():
        client = await live.connect()
        assert client.max_frame_size == 1024 * 1024 + 64  # announced in mounted
        result = await client.upload("any", unique("runs.bin"), data, runs=True)
        assert result.status == "complete", result
        rows = saved((await client.event("save"))["html"])
        assert (live.server.media_dir / rows[0][0]).read_bytes() == data

    live.run(body())


@pytest.mark.parametrize(
    ("size", "offset", "length", "code"),
    [
        (100_000, 0, 16 * 1024 + 1, "bad_frame"),  # not a whole number of chunks
        (100_000, 0, 5 * 16 * 1024, "window_exceeded"),  # the first window is 4 chunks
        (20_000, 0, 2 * 16 * 1024, "size_mismatch"),  # past the declared size
        (100_000, 16 * 1024, 16 * 1024, "bad_offset"),  # a gap
    ],
    ids=["partial-chunk", "over-window", "past-size", "gap"],
)
def test_a_bad_run_fails_its_upload_with_a_typed_error(live, size, offset, length, code):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", unique("run.bin"), size)
        await client.transport.send_bytes(encode_chunk(ref, offset, bytes(length), run=True))
        error = await outcome(client, ref)
        assert (error["t"], error["code"]) == ("upload_error", code)
        await client.ping()  # answered: the connection stays open

    live.run(body())


def test_a_run_may_end_the_file_with_a_short_chunk(live):
    data = os.urandom(2 * 16 * 1024 + 5)

    async def body():
        client = await live.connect()
        ref = await registered(client, "any", unique("short-end.bin"), len(data))
        await client.transport.send_bytes(encode_chunk(ref, 0, data, run=True))
        assert (await outcome(client, ref))["t"] == "upload_complete"

    live.run(body())


# -- re-rendering --------------------------------------------------------------------------


def test_registration_re_renders_with_the_new_entry(live):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "listed.bin", 100)
        render = await client.wait_for(lambda m: m["t"] == "render")
        assert entry_li(render["html"], ref) == "listed.bin 0 False"

    live.run(body())


def test_completion_re_renders_with_the_entry_complete(live):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "done.bin", 100)
        await send_chunk(client, ref, 0, bytes(100))
        assert (await outcome(client, ref))["t"] == "upload_complete"
        render = await client.wait_for(
            lambda m: m["t"] == "render" and (entry_li(m["html"], ref) or "").endswith("True")
        )
        assert entry_li(render["html"], ref) == "done.bin 100 True"

    live.run(body())


# -- cancelling and disconnecting ----------------------------------------------------------


def test_cancel_by_handler_tells_the_client_removes_the_file_and_ignores_late_chunks(live):
    async def body():
        client = await live.connect()
        before = set(live.server.temp_files())
        ref = await registered(client, "any", "c.bin", 100_000)
        await send_chunk(client, ref, 0, bytes(16_000))
        assert await wait_until(lambda: set(live.server.temp_files()) - before)
        temp = new_temp_file(live.server, before)
        reply = await client.event("cancel_entry", ref=ref)
        assert any(m["t"] == "upload_cancelled" and m["ref"] == ref for m in client.received)
        assert entry_li(reply["html"], ref) is None
        # The file goes on the entry's lane (never on the event loop), right after.
        assert await wait_until(lambda: temp not in live.server.temp_files(), timeout=1)
        mark = len(client.received)
        await send_chunk(client, ref, 16_000, bytes(16_000))
        assert await quiet_since(client, mark) == []

    live.run(body())


def test_cancel_by_handler_of_an_unknown_ref_is_bad_ref(live):
    async def body():
        client = await live.connect()
        with pytest.raises(ServerError) as caught:
            await client.event("cancel_entry", ref="424242")
        assert caught.value.code == "bad_ref"

    live.run(body())


def test_cancel_by_the_client_message(live):
    async def body():
        client = await live.connect()
        before = set(live.server.temp_files())
        ref = await registered(client, "any", "c.bin", 100_000)
        await send_chunk(client, ref, 0, bytes(16_000))
        assert await wait_until(lambda: set(live.server.temp_files()) - before)
        temp = new_temp_file(live.server, before)
        await client.send({"t": "upload_cancel", "ref": ref})
        cancelled = await client.wait_for(lambda m: m["t"] == "upload_cancelled")
        assert cancelled["ref"] == ref
        await client.ping()
        assert entry_li(client.html, ref) is None
        # The file goes on the entry's lane (never on the event loop), right after.
        assert await wait_until(lambda: temp not in live.server.temp_files(), timeout=1)
        mark = len(client.received)
        await send_chunk(client, ref, 16_000, bytes(16_000))
        assert await quiet_since(client, mark) == []

    live.run(body())


def test_disconnect_mid_upload_removes_the_temp_file_within_a_second(live):
    async def body():
        client = await live.connect()
        ref = await registered(client, "any", "gone.bin", 1_000_000)
        await send_chunk(client, ref, 0, bytes(16_000))
        assert await wait_until(lambda: live.server.temp_files())
        await client.close()
        assert await wait_until(lambda: not live.server.temp_files(), timeout=1)

    live.run(body())


def test_disconnect_removes_complete_but_unconsumed_files(live):
    async def body():
        client = await live.connect()
        assert (await client.upload("any", "kept.bin", bytes(1000))).status == "complete"
        assert live.server.temp_files()
        await client.close()
        assert await wait_until(lambda: not live.server.temp_files(), timeout=1)

    live.run(body())


# -- consuming -----------------------------------------------------------------------------


def test_consume_removes_the_entries_and_their_temp_files(live):
    async def body():
        client = await live.connect()
        first = await client.upload("any", unique("a.bin"), b"a" * 100)
        second = await client.upload("any", unique("b.bin"), b"b" * 100)
        reply = await client.event("save")
        consumed = {m["ref"] for m in client.received if m["t"] == "upload_consumed"}
        assert consumed == {first.ref, second.ref}
        assert entry_li(reply["html"], first.ref) is None
        assert entry_li(reply["html"], second.ref) is None
        assert live.server.temp_files() == []

    live.run(body())


def test_consume_with_early_break_removes_only_the_first_entry(live):
    second_name = unique("second.bin")

    async def body():
        client = await live.connect()
        first = await client.upload("any", "first.bin", b"1111" * 10)
        second = await client.upload("any", second_name, b"2222" * 10)
        reply = await client.event("save_first")
        consumed = [m["ref"] for m in client.received if m["t"] == "upload_consumed"]
        assert consumed == [first.ref]
        assert entry_li(reply["html"], first.ref) is None
        assert entry_li(reply["html"], second.ref) == f"{second_name} 100 True"
        assert saved_lines(reply["html"]) == ["first.bin b'1111'"]
        assert len(live.server.temp_files()) == 1
        rows = saved((await client.event("save"))["html"])
        assert Path(rows[-1][0]).name == second_name
        assert (live.server.media_dir / rows[-1][0]).read_bytes() == b"2222" * 10
        assert live.server.temp_files() == []

    live.run(body())


def test_handler_raising_in_the_consume_loop_keeps_the_entry_in_hand(live):
    async def body():
        client = await live.connect()
        first = await client.upload("any", "first.bin", b"1" * 10)
        second = await client.upload("any", "second.bin", b"2" * 10)
        with pytest.raises(ServerError) as caught:
            await client.event("save_then_fail")
        assert caught.value.code == "handler_error"
        # Its save failed: the user's file is not thrown away, nor are the others.
        assert [m for m in client.received if m["t"] == "upload_consumed"] == []
        await client.ping()
        assert entry_li(client.html, first.ref) == "first.bin 100 True"
        assert entry_li(client.html, second.ref) == "second.bin 100 True"
        assert len(live.server.temp_files()) == 2
        # Both can be consumed by the next try.
        rows = saved((await client.event("save"))["html"])
        stored = {(live.server.media_dir / row[0]).read_bytes() for row in rows}
        assert stored == {b"1" * 10, b"2" * 10}
        assert live.server.temp_files() == []

    live.run(body())


# -- lifecycle hooks -----------------------------------------------------------------------

LIFECYCLE = "/t/uploads-lifecycle/"


def test_a_postponed_entry_stays_in_the_slot_with_its_file(live):
    async def body():
        client = await live.connect(LIFECYCLE)
        ok = await client.upload("any", "ok.bin", b"1" * 10)
        later = await client.upload("any", "later.bin", b"2" * 10)
        reply = await client.event("save_or_postpone")
        assert saved_lines(reply["html"]) == ["stored ok.bin", "postponed later.bin"]
        consumed = [m["ref"] for m in client.received if m["t"] == "upload_consumed"]
        assert consumed == [ok.ref]
        assert entry_li(reply["html"], later.ref) == "later.bin 100 True"
        assert len(live.server.temp_files()) == 1
        rows = saved((await client.event("save"))["html"])
        assert (live.server.media_dir / rows[-1][0]).read_bytes() == b"2" * 10

    live.run(body())


def test_uploaded_entries_are_the_completed_and_those_in_progress(live):
    async def body():
        client = await live.connect(LIFECYCLE)
        await client.upload("any", "done.bin", b"1" * 10)
        ref = await registered(client, "any", "partial.bin", 100_000)
        await send_chunk(client, ref, 0, bytes(16 * 1024))
        reply = await client.event("note_uploaded")
        assert saved_lines(reply["html"]) == ["completed done.bin", "in progress partial.bin"]

    live.run(body())


def test_handle_upload_complete_stores_a_file_on_drop_on_a_handler_thread(live):
    data = PNG + os.urandom(5000)

    async def body():
        client = await live.connect(LIFECYCLE)
        result = await client.upload("avatar", "me.png", data)
        assert result.status == "complete"
        # No event: the hook consumed it, then the view re-rendered.
        await client.wait_for(lambda m: m["t"] == "upload_consumed" and m["ref"] == result.ref)
        await client.wait_for(lambda m: m["t"] == "render" and "avatars/" in m["html"])
        hook, row = saved_lines(client.html)
        assert re.fullmatch(r"hook me\.png djust-sync-\d+", hook)
        path, digest, size = row.split()
        assert path.startswith("avatars/") and path.endswith(".png")
        assert (digest, int(size)) == (sha256(data), len(data))
        assert (live.server.media_dir / path).read_bytes() == data
        assert entry_li(client.html, result.ref) is None
        assert live.server.temp_files() == []

    live.run(body())


def test_a_failing_upload_complete_hook_keeps_the_entry(live):
    async def body():
        client = await live.connect(LIFECYCLE)
        result = await client.upload("broken", "kept.bin", b"k" * 100)
        assert result.status == "complete"
        error = await client.wait_for(lambda m: m["t"] == "error")
        assert error["code"] == "handler_error"
        await client.ping()
        assert entry_li(client.html, result.ref) == "kept.bin 100 True"
        assert len(live.server.temp_files()) == 1
        rows = saved((await client.event("save", slot="broken"))["html"])
        assert (live.server.media_dir / rows[-1][0]).read_bytes() == b"k" * 100

    live.run(body())


# -- isolation -----------------------------------------------------------------------------


def test_an_error_in_one_upload_leaves_the_others_intact(live):
    good = os.urandom(600_000)
    other = os.urandom(250_000)
    good_name, other_name = unique("good.bin"), unique("other.bin")

    async def failing(client: LiveClient) -> str:
        ref = await registered(client, "any", "bad.bin", 100_000)
        await send_chunk(client, ref, 0, bytes(1000))
        await send_chunk(client, ref, 5000, bytes(1000))  # a gap
        return (await outcome(client, ref))["code"]

    async def body():
        client = await live.connect()
        neighbour = await live.connect()
        code, result, other_result = await asyncio.gather(
            failing(client),
            client.upload("any", good_name, good),
            neighbour.upload("any", other_name, other),
        )
        assert code == "bad_offset"
        assert result.status == other_result.status == "complete"
        for c, name, data in ((client, good_name, good), (neighbour, other_name, other)):
            rows = saved((await c.event("save"))["html"])
            assert [Path(p).name for p, _, _ in rows] == [name]
            assert sha256((live.server.media_dir / rows[0][0]).read_bytes()) == sha256(data)

    live.run(body())


def test_upload_frames_before_mount_are_refused(live):
    async def body():
        client = await live.connect(mount=False)
        await send_chunk(client, "1", 0, b"data")
        error = await client.wait_for(lambda m: m["t"] == "error")
        assert error["code"] == "not_mounted"

    live.run(body())
