"""How each engine sends a file's runs, and what a file that changes on the way comes to.

Firefox and Chromium send each run as a ``Blob`` (the engine reads the file as it sends);
WebKit, whose Blob of a file cut within the second it was picked is padded with zeros, sends
ArrayBuffers that the page read itself (docs/performance.md, "Every engine").
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.engines import Page
from tests.faultproxy import FaultProxy

from .test_engines import ENGINE_JARGON, file_sha256, open_view, record_errors, wait_status
from .test_uploads_browser import unique

pytestmark = pytest.mark.browser

MIB = 1024 * 1024

# The kind of every binary message the page's sockets send from here on, in window.__sends.
RECORD_SENDS = """(() => {
  window.__sends = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data !== "string") window.__sends.push(data instanceof Blob ? "blob" : "buffer");
    return send.call(this, data);
  };
  return true;
})()"""


def random_file(directory: Path, name: str, mib: int) -> Path:
    path = directory / name
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))
    return path


def percent(page: Page, name: str) -> int:
    state = page.evaluate(
        "(n) => Array.from(document.querySelectorAll('.upload-progress-item')).find("
        "(i) => i.querySelector('.upload-progress-name')?.textContent === n)"
        "?.querySelector('[role=progressbar]').getAttribute('aria-valuenow')",
        name,
    )
    return int(state or 0)


def test_each_engine_sends_runs_the_way_it_sends_fastest_and_safely(engine_page, server, tmp_path):
    page = engine_page
    name = unique("runs", ".bin")
    path = random_file(tmp_path, name, 4)
    open_view(page, server.url + "/t/big-upload/")
    page.evaluate(RECORD_SENDS)

    page.set_files("input[dj-upload=big]", [path])

    wait_status(page, name, "complete", timeout=30)
    expected = "buffer" if page.engine == "webkit" else "blob"
    sends = page.evaluate("window.__sends")
    assert len(sends) >= 4 and set(sends) == {expected}, sends
    page.click("#save")
    page.wait_for(f"document.getElementById('saved').innerText.includes({name!r})")
    assert file_sha256(server.media_dir / "saved" / name) == file_sha256(path)


def test_a_file_cut_short_while_it_uploads_fails_with_a_clear_error(engine_page, server, tmp_path):
    page = engine_page
    name = unique("cut", ".bin")
    path = random_file(tmp_path, name, 64)
    picked = path.stat()
    with FaultProxy(server.port) as proxy:
        open_view(page, proxy.url + "/t/big-upload/")
        record_errors(page)
        page.evaluate(
            "window.__mounts = 0,"
            " window.addEventListener('djust:connected', () => window.__mounts++), true"
        )
        page.set_files("input[dj-upload=big]", [path])
        page.wait_for(
            "(n) => document.querySelector('.upload-progress-item[data-status=uploading]')", name
        )
        # Held while the file is cut: runs already handed to the socket wait in the browser,
        # and in Chromium those that are Blobs can no longer be read.
        proxy.stall()
        with open(path, "r+b") as f:
            f.truncate(32 * MIB)
        os.utime(path, ns=(picked.st_atime_ns, picked.st_mtime_ns + 2_000_000_000))
        proxy.resume()

        shown = wait_status(page, name, "error", timeout=30)

        # At most the one reconnect that a Blob run of a changed file causes, never a loop.
        page.wait_for("document.querySelector('[dj-view]').__djust.mounted === true")
        assert page.evaluate("window.__mounts") <= 1
    assert shown["box"]["width"] > 0 and shown["box"]["height"] > 0
    assert not re.search(ENGINE_JARGON, shown["text"] + shown["title"]), shown
    errors = page.evaluate("window.__errors")
    assert [e["file"] for e in errors] == [name]
    assert errors[0]["code"] in ("read_failed", "file_changed")
    assert not (server.media_dir / "saved" / name).exists()
