"""A 300 MiB upload in Chromium survives the network resetting its connection (issue 10).

The page is loaded through a fault-injecting TCP proxy (tests/faultproxy.py), so its WebSocket
goes through it too (same origin as the page, which the origin check accepts). The proxy resets
every connection once a given number of bytes has gone up; the page must reconnect, attach its
entry again and continue from the server's offset, with no error and nothing done by the user
but the pick and the final Save. Nothing here is timed: the resets are placed by bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.faultproxy import FaultProxy

from .test_uploads_browser import unique

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

MIB = 1024 * 1024
SIZE = 300 * MIB  # the size the issue names
PIECE = 16 * MIB
PAGE = "/t/big-upload/"  # one slot, "big" (up to 2 GiB)
UPLOADS = "document.querySelector('[dj-view]').__djust.uploads"
ENTRY = f"Array.from({UPLOADS}.entries.values())[0]"
UPLOAD_TIMEOUT = 90_000  # ms; a loaded 2-core machine, never a measure of speed

# What the page was told and what the user did, recorded before djust loads.
INIT_SCRIPT = """
window.__errors = [];
window.__connects = 0;
window.__registered = [];
window.__actions = [];
window.addEventListener("djust:upload:error", (e) => window.__errors.push(e.detail));
window.addEventListener("djust:connected", () => { window.__connects += 1; });
for (const type of ["click", "dblclick", "keydown", "change", "drop", "paste", "submit"]) {
  document.addEventListener(type, (e) => {
    if (e.isTrusted) window.__actions.push(type + " " + (e.target.id || e.target.tagName));
  }, true);
}
(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        if (typeof e.data !== "string") return;
        const m = JSON.parse(e.data);
        if (m.t === "upload_registered") window.__registered.push(m);
      });
    }
  };
})();
"""


@pytest.fixture
def proxy(resume_server):
    with FaultProxy(resume_server.port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def big_file(tmp_path):
    """A file of ``SIZE`` random bytes and its SHA-256; removed afterwards (it is large)."""
    path = tmp_path / unique("big", ".bin")
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for start in range(0, SIZE, PIECE):
            piece = os.urandom(min(PIECE, SIZE - start))
            digest.update(piece)
            f.write(piece)
    yield path, digest.hexdigest()
    path.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            digest.update(piece)
    return digest.hexdigest()


def open_through(page, proxy: FaultProxy) -> None:
    page.add_init_script(INIT_SCRIPT)
    page.goto(proxy.url + PAGE)
    page.wait_for_function("window.__connects === 1")


def pick(page, path: Path) -> None:
    page.set_input_files("input[dj-upload=big]", path)


def wait_for_reset(proxy: FaultProxy) -> None:
    ok = proxy.wait_for(lambda: not proxy.armed, timeout=UPLOAD_TIMEOUT / 1000)
    assert ok, f"no reset after {proxy.bytes_up} bytes up ({proxy.resets} resets so far)"


def finish_and_save(page, server, big_file, resets: int) -> None:
    """The upload completes with no error and no user action; saved, it is the file picked."""
    _, digest = big_file
    item = page.locator(".upload-progress-item")
    expect(item).to_have_attribute("data-status", "complete", timeout=UPLOAD_TIMEOUT)
    expect(item.locator(".upload-progress-text")).to_have_text(f"Complete · {SIZE / 1e6:.1f} MB")
    expect(item.locator(".upload-progress-text")).to_be_visible()
    assert page.evaluate("window.__errors") == []
    assert page.evaluate("window.__actions") == ["change INPUT"]  # the pick, nothing more
    assert page.evaluate("window.__connects") >= 1 + resets

    # Each reconnect attached the same entry again at the server's offset, never from zero.
    registered = page.evaluate("window.__registered")
    offsets = [r["offset"] for r in registered]
    assert len(offsets) >= 1 + resets
    assert offsets[0] == 0 and offsets[1] > 0 and offsets == sorted(offsets)
    assert {r["ref"] for r in registered} == {registered[0]["ref"]}

    page.click("#save")
    saved = page.locator("#saved")
    expect(saved).to_contain_text(f"{digest} {SIZE}", timeout=30_000)
    assert page.evaluate("window.__actions") == ["change INPUT", "click save"]
    stored = server.media_dir / saved.inner_text().split()[0]
    try:
        assert file_sha256(stored) == digest
    finally:
        stored.unlink(missing_ok=True)


def test_an_upload_reset_once_at_a_fifth_finishes_byte_identical(
    page, resume_server, proxy, big_file
):
    open_through(page, proxy)
    proxy.reset_after(SIZE // 5)

    pick(page, big_file[0])
    wait_for_reset(proxy)

    finish_and_save(page, resume_server, big_file, resets=1)
    assert proxy.resets == 1
    assert proxy.connections >= 3  # the page's HTTP, its first socket, the one it came back on


def test_an_upload_reset_five_times_finishes_byte_identical(page, resume_server, proxy, big_file):
    open_through(page, proxy)
    # Resets after 30, 80, 130, 180 and 230 MiB have gone up (what a resume sends again
    # included): spread over about 10 % to 70 % of the file. Each is armed once the one before
    # has fired, so it counts the bytes of the connection the page comes back on.
    proxy.reset_after(30 * MIB)
    pick(page, big_file[0])
    for _ in range(4):
        wait_for_reset(proxy)
        proxy.reset_after(50 * MIB)
    wait_for_reset(proxy)

    finish_and_save(page, resume_server, big_file, resets=5)
    assert proxy.resets == 5
    assert proxy.connections >= 7
