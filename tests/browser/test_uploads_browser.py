"""File uploads driven through Chromium as a user would: pick, drop, watch, cancel, save.

Each test checks what the user sees (DOM), what the page was told (``djust:upload:*`` window
events), what went over the socket (a wrapped ``WebSocket.prototype.send``) and, where a file is
saved, that the bytes on disk are the bytes that were chosen.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import struct
import time
import uuid
import zlib
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=10_000)

# Records the upload events, the connection and every frame the page sends, before djust loads.
INIT_SCRIPT = """
window.__events = { progress: [], error: [] };
window.__connected = false;
window.__sent = [];
window.addEventListener("djust:upload:progress", (e) => window.__events.progress.push(e.detail));
window.addEventListener("djust:upload:error", (e) => window.__events.error.push(e.detail));
window.addEventListener("djust:connected", () => { window.__connected = true; });
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string") {
      try { window.__sent.push(JSON.parse(data)); } catch (err) { window.__sent.push({ t: "?" }); }
    } else {
      const size = data.size !== undefined ? data.size : data.byteLength;
      window.__sent.push({ t: "binary", size: size });
      if (window.__holdChunks) return undefined; // a test holds the upload mid-way
    }
    return send.call(this, data);
  };
})();
"""


# -- files ---------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png_bytes(width: int = 16, height: int = 12, padding: int = 0) -> bytes:
    """A real PNG of random RGB pixels; ``padding`` random bytes in a private chunk make it
    large but quick to draw."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + (chunk(b"prVt", os.urandom(padding)) if padding else b"")
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def pdf_bytes() -> bytes:
    return b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + os.urandom(40_000) + b"\n%%EOF\n"


def text_bytes(size: int) -> bytes:
    line = b"The quick brown fox jumps over the lazy dog. 0123456789\n"
    return (line * (size // len(line) + 1))[:size]


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def unique(stem: str, ext: str) -> str:
    """Names differ per test run, so storage never renames a file to avoid a clash."""
    return f"{stem}-{uuid.uuid4().hex[:8]}{ext}"


# -- page helpers --------------------------------------------------------------------------


@pytest.fixture
def live_page(page):
    page.add_init_script(INIT_SCRIPT)
    return page


def connected(page) -> None:
    page.wait_for_function("window.__connected === true", timeout=10_000)


def open_view(page, server, path: str) -> None:
    page.goto(server.url + path)
    connected(page)


def log_in(page, server) -> None:
    page.goto(server.url + "/login/?next=/documents/")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/documents/$"))
    connected(page)


def events(page, kind: str) -> list[dict]:
    return page.evaluate(f"window.__events.{kind}")


def sent(page) -> list[dict]:
    return page.evaluate("window.__sent")


def binary_frames(page) -> int:
    return sum(1 for m in sent(page) if m["t"] == "binary")


def wait_for_error(page, code: str) -> dict:
    page.wait_for_function("(code) => window.__events.error.some((e) => e.code === code)", arg=code)
    return next(e for e in events(page, "error") if e["code"] == code)


def media_path(server, src: str) -> Path:
    path = unquote(urlparse(src).path)
    assert path.startswith("/media/"), src
    return server.media_dir / path.removeprefix("/media/")


def demo_user_id(server) -> int:
    with sqlite3.connect(f"file:{server.state_dir / 'db.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute("SELECT id FROM auth_user WHERE username = 'demo'").fetchone()[0]


def stored_document(server, name: str) -> Path:
    """The demo stores a document as its stem, a dash, 32 hex digits and its extension."""
    folder = server.media_dir / "documents" / str(demo_user_id(server))
    (path,) = folder.glob(f"{Path(name).stem}-{'[0-9a-f]' * 32}{Path(name).suffix}")
    return path


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def progress_item(page, name: str):
    return page.locator(".upload-progress-item").filter(has_text=name)


# -- tests ---------------------------------------------------------------------------------


def test_avatar_upload_previews_progresses_and_saves_the_same_bytes(live_page, server, tmp_path):
    page = live_page
    data = png_bytes()
    name = unique("avatar", ".png")
    open_view(page, server, "/profile/")
    temp_before = set(server.temp_files())

    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, name, data))

    preview = page.locator(".upload-preview-item img")
    expect(preview).to_have_count(1)
    assert preview.get_attribute("src").startswith("blob:")
    item = progress_item(page, name)
    expect(item).to_have_class(re.compile(r"\bupload-complete\b"))
    expect(item.locator(".upload-progress-bar[role=progressbar]")).to_have_attribute(
        "aria-valuenow", "100"
    )

    progress = events(page, "progress")
    assert progress, "no djust:upload:progress event"
    for detail in progress:
        assert {"ref", "progress", "status", "uploadName"} <= detail.keys()
        assert detail["uploadName"] == "avatar"
        assert detail["ref"] == progress[0]["ref"]
    assert progress[-1]["status"] == "complete"
    assert progress[-1]["progress"] == 100
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)

    page.get_by_role("button", name="Save Avatar").click()
    avatar = page.locator("img[alt=Avatar]")
    expect(avatar).to_have_attribute("src", re.compile(r"^/media/avatars/"))
    saved = media_path(server, avatar.get_attribute("src"))
    assert saved.parent == server.media_dir / "avatars"
    assert sha256(saved.read_bytes()) == sha256(data)
    assert wait_until(lambda: set(server.temp_files()) <= temp_before), server.temp_files()


def test_documents_upload_two_files_and_save_them(live_page, server, tmp_path):
    page = live_page
    pdf, txt = pdf_bytes(), text_bytes(3000)
    pdf_name, txt_name = unique("report", ".pdf"), unique("notes", ".txt")
    log_in(page, server)

    page.set_input_files(
        "input[dj-upload=files]",
        [write(tmp_path, pdf_name, pdf), write(tmp_path, txt_name, txt)],
    )
    for name in (pdf_name, txt_name):
        expect(progress_item(page, name)).to_have_class(re.compile(r"\bupload-complete\b"))
    expect(page.get_by_text("2 file(s) ready to upload")).to_be_visible()

    page.get_by_role("button", name="Upload All").click()
    expect(page.locator(".status-message")).to_have_text("Uploaded 2 file(s)")
    names = page.locator(".document-list .doc-name")
    expect(names.filter(has_text=pdf_name)).to_have_count(1)
    expect(names.filter(has_text=txt_name)).to_have_count(1)
    expect(page.get_by_text("ready to upload")).to_have_count(0)

    assert sha256(stored_document(server, pdf_name).read_bytes()) == sha256(pdf)
    assert sha256(stored_document(server, txt_name).read_bytes()) == sha256(txt)


def test_chunks_travel_in_runs_of_up_to_a_megabyte(live_page, server, tmp_path):
    page = live_page
    data = text_bytes(3_000_000)  # 46 chunks of 64 KiB
    name = unique("runs", ".txt")
    log_in(page, server)

    page.set_input_files("input[dj-upload=files]", write(tmp_path, name, data))
    expect(progress_item(page, name)).to_have_class(re.compile(r"\bupload-complete\b"))
    sizes = [m["size"] for m in sent(page) if m["t"] == "binary"]
    # The first run fills the 4-chunk validation window; then up to 16 chunks per message.
    assert sizes[0] == 13 + 4 * 65536
    assert all(size <= 13 + 16 * 65536 for size in sizes)
    assert len(sizes) == 4 and sum(sizes) == len(data) + 13 * len(sizes)

    page.get_by_role("button", name="Upload All").click()
    expect(page.locator(".status-message")).to_have_text("Uploaded 1 file(s)")
    assert stored_document(server, name).read_bytes() == data


def test_drag_and_drop_highlights_the_zone_and_uploads(live_page, server):
    page = live_page
    name = unique("dropped", ".txt")
    log_in(page, server)
    zone = page.locator("[dj-upload-drop=files]")
    transfer = page.evaluate_handle(
        """(name) => {
            const dt = new DataTransfer();
            const text = "dropped by a test\\n".repeat(200);
            dt.items.add(new File([text], name, {type: "text/plain"}));
            return dt;
        }""",
        name,
    )

    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bupload-dragover\b"))

    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile(r"\bupload-dragover\b"))
    expect(progress_item(page, name)).to_have_class(re.compile(r"\bupload-complete\b"))
    last = events(page, "progress")[-1]
    assert (last["uploadName"], last["status"], last["progress"]) == ("files", "complete", 100)
    expect(page.get_by_text("1 file(s) ready to upload")).to_be_visible()


def test_renamed_executable_is_rejected_by_content(live_page, server):
    page = live_page
    open_view(page, server, "/profile/")

    page.set_input_files(
        "input[dj-upload=avatar]",
        {
            "name": "photo.jpg",
            "mimeType": "image/jpeg",
            "buffer": b"MZ\x90\x00\x03\x00\x00\x00" + os.urandom(4000),
        },
    )

    error = wait_for_error(page, "content_mismatch")
    assert error["file"] == "photo.jpg"
    assert error["uploadName"] == "avatar"
    assert error["error"]
    assert error["ref"] is not None
    expect(progress_item(page, "photo.jpg")).to_have_class(re.compile(r"\bupload-error\b"))
    assert not any(p["status"] == "complete" for p in events(page, "progress"))


def test_oversize_file_is_rejected_before_any_byte_is_sent(live_page, server, tmp_path):
    page = live_page
    data = png_bytes()
    data += os.urandom(5_000_001 - len(data))
    open_view(page, server, "/profile/")
    temp_before = set(server.temp_files())

    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, "huge.png", data))

    error = wait_for_error(page, "too_large")
    assert error["file"] == "huge.png"
    assert error["uploadName"] == "avatar"
    page.wait_for_timeout(300)
    frames = sent(page)
    assert not any(m["t"] == "upload_register" for m in frames), frames
    assert binary_frames(page) == 0
    assert not any(p["status"] == "uploading" for p in events(page, "progress"))
    # Listed as refused (docs/ui.md), never as an upload.
    expect(page.locator(".upload-progress-item")).to_have_class(re.compile(r"\bupload-error\b"))
    assert set(server.temp_files()) <= temp_before


def test_wrong_type_is_rejected_in_the_browser(live_page, server, tmp_path):
    page = live_page
    open_view(page, server, "/profile/")

    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    gif += b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, "anim.gif", gif))

    error = wait_for_error(page, "not_accepted")
    assert error["file"] == "anim.gif"
    assert error["uploadName"] == "avatar"
    page.wait_for_timeout(200)
    assert not any(m["t"] == "upload_register" for m in sent(page))
    assert binary_frames(page) == 0


def test_gallery_uploads_on_submit_then_publishes(live_page, server, tmp_path):
    page = live_page
    data = png_bytes(24, 24)
    name = unique("sunset", ".png")
    caption = f"Evening {uuid.uuid4().hex[:6]}"
    open_view(page, server, "/gallery/")

    page.set_input_files("input[dj-upload=photos]", write(tmp_path, name, data))
    preview = page.locator(".upload-preview-item img")
    expect(preview).to_have_count(1)
    assert preview.get_attribute("src").startswith("blob:")
    page.wait_for_timeout(500)
    assert {p["status"] for p in events(page, "progress")} == {"pending"}
    assert all(p["progress"] == 0 for p in events(page, "progress"))
    assert not any(m["t"] == "upload_register" for m in sent(page))
    assert binary_frames(page) == 0
    expect(page.locator("#pending")).to_have_text(re.compile(r"^\s*0 photo\(s\)"))

    page.fill("input[name=caption]", caption)
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#caption")).to_have_text(caption)
    saved = page.locator("#saved img")
    expect(saved).to_have_count(1)
    path = media_path(server, saved.get_attribute("src"))
    assert sha256(path.read_bytes()) == sha256(data)

    # The bytes went first, the event after them.
    frames = sent(page)
    kinds = [m["t"] for m in frames]
    publish = next(i for i, m in enumerate(frames) if m.get("name") == "publish")
    assert "binary" in kinds
    assert max(i for i, t in enumerate(kinds) if t == "binary") < publish
    assert frames[publish]["params"]["caption"] == caption
    assert events(page, "progress")[-1]["status"] in ("complete", "cancelled")
    assert any(p["status"] == "complete" for p in events(page, "progress"))


def test_a_file_changed_after_it_was_picked_fails_alone_and_the_socket_stays(
    live_page, server, tmp_path
):
    page = live_page
    name = unique("changed", ".png")
    path = write(tmp_path, name, png_bytes(24, 24))
    open_view(page, server, "/gallery/")
    page.set_input_files("input[dj-upload=photos]", path)
    expect(page.locator(".upload-preview-item img")).to_have_count(1)
    path.write_bytes(png_bytes(30, 30))  # the browser may no longer read what was picked

    page.get_by_role("button", name="Publish").click()
    error = wait_for_error(page, "read_failed")
    assert error["file"] == name
    assert any(m["t"] == "upload_cancel" for m in sent(page))
    assert [m["t"] for m in sent(page)].count("mount") == 1  # never reconnected
    assert page.evaluate("window.__connected") is True
    assert wait_until(lambda: not server.temp_files()), server.temp_files()


def test_a_photo_published_in_one_tab_appears_in_another(live_page, browser, server, tmp_path):
    # Another user's tab: a context of its own, the same server process (in-memory layer).
    context = browser.new_context()
    watcher = context.new_page()
    watcher.add_init_script(INIT_SCRIPT)
    open_view(watcher, server, "/gallery/")
    open_view(live_page, server, "/gallery/")
    name = unique("shared", ".png")

    live_page.set_input_files("input[dj-upload=photos]", write(tmp_path, name, png_bytes(20, 20)))
    live_page.get_by_role("button", name="Publish").click()
    expect(live_page.locator("#saved img")).to_have_count(1)

    arrived = watcher.locator("#others img")
    expect(arrived).to_have_count(1)
    assert arrived.get_attribute("alt") == name
    assert arrived.get_attribute("src") == live_page.locator("#saved img").get_attribute("src")
    expect(live_page.locator("#others img")).to_have_count(0)  # not shown twice to its sender
    context.close()


def test_cancel_from_the_progress_item_drops_the_upload(live_page, server, tmp_path):
    page = live_page
    name = unique("big", ".txt")
    big = write(tmp_path, name, text_bytes(24_000_000))
    log_in(page, server)
    temp_before = set(server.temp_files())

    # Chunks stay in the page, so the upload is registered but cannot finish before the click.
    page.evaluate("window.__holdChunks = true")
    page.set_input_files("input[dj-upload=files]", big)
    item = progress_item(page, name)
    expect(item).to_have_attribute("data-status", "uploading")
    item.locator(".upload-cancel").click()

    expect(item).to_have_count(0)
    expect(page.locator(".upload-preview-item").filter(has_text=name)).to_have_count(0)
    progress = events(page, "progress")
    assert progress[-1]["status"] == "cancelled"
    assert not any(p["status"] == "complete" for p in progress), "finished before the click"
    assert any(m["t"] == "upload_cancel" for m in sent(page))
    assert wait_until(lambda: set(server.temp_files()) <= temp_before), server.temp_files()
    page.wait_for_timeout(300)
    expect(page.get_by_text("ready to upload")).to_have_count(0)
    expect(page.locator(".document-list").get_by_text(name)).to_have_count(0)


def test_inputs_get_accept_from_the_config_and_multiple(live_page, server):
    page = live_page
    open_view(page, server, "/profile/")
    expect(page.locator("input[dj-upload=avatar]")).to_have_attribute("accept", ".jpg,.png,.webp")
    expect(page.locator("input[dj-upload=avatar]")).not_to_have_attribute("multiple", "")

    log_in(page, server)
    files = page.locator("input[dj-upload=files]")
    expect(files).to_have_attribute("multiple", "")
    expect(files).to_have_attribute("accept", ".pdf,.doc,.docx,.txt")
