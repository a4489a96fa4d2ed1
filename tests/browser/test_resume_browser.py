"""The client's half of upload resume, driven through Chromium (docs/uploads.md, "Liveness").

The page's chunk frames can be held (a wrapped ``WebSocket.prototype.send``: ``__pass`` frames go
through, the rest wait in ``__held``), so that an upload stays half-way, waiting for acks that
do not come. Late acks are handed to the page's client directly (``__djust.uploads``); a socket
drop is the page's own ``ws.close()``. The module has a
server of its own that keeps a dropped page's entries for a minute (the suite's default is no
resume); the entries its dropped sockets leave waiting stay out of other tests' way.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from .test_uploads_browser import connected, open_view, sha256, text_bytes, unique, write

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=10_000)

PAGE = "/t/big-upload/"  # one slot, "big": 64 KiB chunks, a first window of four
UPLOADS = "document.querySelector('[dj-view]').__djust.uploads"
PAUSED = "Paused, reconnecting…"
# A file time to the millisecond that the page's File.lastModified reports exactly.
MODIFIED_MS = 1_700_000_000_000

INIT_SCRIPT = """
window.__events = { progress: [], error: [] };
window.__connected = false;
window.__disconnects = 0;
window.__sent = [];
window.__pass = Infinity;
window.__passed = 0;
window.__held = [];
window.__offsets = [];
window.__registered = [];
window.addEventListener("djust:upload:progress", (e) => window.__events.progress.push(e.detail));
window.addEventListener("djust:upload:error", (e) => window.__events.error.push(e.detail));
window.addEventListener("djust:connected", () => { window.__connected = true; });
window.addEventListener("djust:disconnected", () => {
  window.__connected = false;
  window.__disconnects += 1;
});
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string") {
      window.__sent.push(JSON.parse(data));
    } else if (window.__passed >= window.__pass) {
      window.__held.push(data);
      return undefined;
    } else {
      window.__passed += 1;
      // A run is a Blob in Chromium (a typed array in WebKit): its offset is bytes 5-12.
      const at = window.__offsets.push(-1) - 1;
      const head = data instanceof Blob
        ? data.slice(5, 13).arrayBuffer()
        : Promise.resolve(data.buffer.slice(data.byteOffset + 5, data.byteOffset + 13));
      head.then((b) => { window.__offsets[at] = Number(new DataView(b).getBigUint64(0)); });
    }
    return send.call(this, data);
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        const m = JSON.parse(e.data);
        if (m.t === "upload_registered") window.__registered.push(m);
      });
    }
  };
})();
"""


@pytest.fixture
def resume_page(page):
    page.add_init_script(INIT_SCRIPT)
    return page


def quick_liveness(page, ack_timeout: int) -> None:
    """Silence is given up after ``ack_timeout`` ms (a ping after a third of it)."""
    page.add_init_script(f"window.djustConfig = {{ ackTimeout: {ack_timeout} }};")


def sent(page, kind: str) -> list[dict]:
    return [m for m in page.evaluate("window.__sent") if m["t"] == kind]


def entry(page, field: str):
    """A field of the page's only upload entry."""
    return page.evaluate(f"Array.from({UPLOADS}.entries.values())[0].{field}")


def item(page):
    return page.locator(".upload-progress-item")


def pick_held(page, tmp_path, size: int = 3_000_000) -> str:
    """Pick a file whose first run alone reaches the server; wait until the page has handed
    over the rest and waits for acks."""
    name = unique("held", ".txt")
    page.evaluate("window.__pass = 1")
    page.set_input_files("input[dj-upload=big]", write(tmp_path, name, text_bytes(size)))
    page.wait_for_function(
        f"""() => {{
          const e = Array.from({UPLOADS}.entries.values())[0];
          return e && e.status === "uploading" && e.acked > 0 && e.sent === e.size;
        }}"""
    )
    return name


def release(page) -> None:
    """Let every frame through from now on (frames held so far are dropped: after a reconnect
    the page sends what the server lacks)."""
    page.evaluate("window.__held = []; window.__pass = Infinity")


def drop_socket(page) -> None:
    page.evaluate("document.querySelector('[dj-view]').__djust.ws.close()")


def store_record(page, **record) -> None:
    page.evaluate(
        "(record) => localStorage.setItem('djust-resume', JSON.stringify([record]))", record
    )


# -- acks ----------------------------------------------------------------------------------


def test_a_late_ack_changes_neither_the_offset_nor_the_bar(resume_page, resume_server, tmp_path):
    page = resume_page
    open_view(page, resume_server, PAGE)
    pick_held(page, tmp_path)
    acked = entry(page, "acked")
    bar = item(page).locator(".upload-progress-bar")
    expect(bar).not_to_have_attribute("aria-valuenow", "0")
    shown = bar.get_attribute("aria-valuenow")
    reported = len(page.evaluate("window.__events.progress"))

    page.evaluate(f"{UPLOADS}.receive({{ t: 'upload_ack', ref: '0', offset: 65536 }})")

    assert entry(page, "acked") == acked
    assert bar.get_attribute("aria-valuenow") == shown
    later = page.evaluate("window.__events.progress")[reported:]
    assert all(e["progress"] >= int(shown) for e in later)
    release(page)


def test_a_late_ack_after_completion_leaves_the_bar_full(resume_page, resume_server, tmp_path):
    page = resume_page
    open_view(page, resume_server, PAGE)
    page.set_input_files(
        "input[dj-upload=big]", write(tmp_path, unique("done", ".txt"), text_bytes(300_000))
    )
    expect(item(page)).to_have_attribute("data-status", "complete")

    page.evaluate(f"{UPLOADS}.receive({{ t: 'upload_ack', ref: '0', offset: 65536 }})")

    bar = item(page).locator(".upload-progress-bar")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    assert entry(page, "acked") == 300_000


# -- liveness ------------------------------------------------------------------------------


def test_a_quiet_server_is_pinged_and_its_pong_keeps_the_socket(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    quick_liveness(page, 3000)
    open_view(page, resume_server, PAGE)
    pick_held(page, tmp_path)

    # Twice the time after which an unanswered socket is given up: the pongs keep it.
    page.wait_for_timeout(6000)

    assert len(sent(page, "ping")) >= 2
    assert page.evaluate("window.__disconnects") == 0
    assert entry(page, "status") == "uploading"
    release(page)


def test_a_server_that_stops_answering_is_given_up_and_the_upload_shows_paused(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    quick_liveness(page, 3000)
    open_view(page, resume_server, PAGE)
    name = pick_held(page, tmp_path)
    resume_server.process.send_signal(signal.SIGSTOP)  # its sockets stay open, it says nothing
    try:
        page.wait_for_function("window.__disconnects === 1", timeout=15_000)
        assert sent(page, "ping"), "no ping before the socket was given up"
        shown = item(page)
        expect(shown).to_have_class(re.compile(r"\bupload-paused\b"))
        expect(shown.locator(".upload-progress-text")).to_have_text(PAUSED)
        expect(shown.locator(".upload-progress-text")).to_be_visible()
        assert shown.bounding_box()["height"] > 0
        release(page)
    finally:
        resume_server.process.send_signal(signal.SIGCONT)
    connected(page)
    expect(item(page)).to_have_attribute("data-status", "complete", timeout=20_000)
    assert [m["client_name"] for m in sent(page, "upload_register")] == [name, name]


def test_a_socket_whose_server_runs_the_pages_own_handler_is_not_given_up(
    resume_page, resume_server, tmp_path
):
    """The server answers one message at a time: while it runs a handler the page is waiting
    for, its silence is no sign of a dead link, even with an upload waiting for acks."""
    page = resume_page
    quick_liveness(page, 1500)
    open_view(page, resume_server, "/t/big-upload-nap/")
    pick_held(page, tmp_path)
    page.click("#nap")  # four seconds of silence on the socket
    page.wait_for_timeout(300)
    # The held frames go now, behind the handler: the upload waits for acks all along.
    page.evaluate(
        """() => {
          window.__pass = Infinity;
          const ws = document.querySelector('[dj-view]').__djust.ws;
          window.__held.splice(0).forEach((frame) => ws.send(frame));
        }"""
    )
    expect(page.locator("#saved")).to_contain_text("napped 4", timeout=15_000)
    expect(item(page)).to_have_attribute("data-status", "complete", timeout=15_000)
    assert page.evaluate("window.__disconnects") == 0


def test_a_socket_whose_server_runs_a_long_upload_hook_is_not_given_up(
    resume_page, resume_server, tmp_path
):
    """``handle_upload_complete`` runs when a file lands, not when the page asks: the page does
    not know why the server is silent, and another upload waits for acks meanwhile."""
    page = resume_page
    quick_liveness(page, 3000)  # the hook's 4 s of silence would be given up
    open_view(page, resume_server, "/t/big-upload-nap/")
    pick_held(page, tmp_path)
    page.evaluate("window.__pass = Infinity")
    hooked = unique("hooked", ".txt")
    page.set_input_files("#hooked", write(tmp_path, hooked, b"lands first\n"))  # 4 s of hook
    page.wait_for_timeout(300)
    # The held frames go now, behind the hook: the upload waits for acks all along.
    page.evaluate(
        """() => {
          const ws = document.querySelector('[dj-view]').__djust.ws;
          window.__held.splice(0).forEach((frame) => ws.send(frame));
        }"""
    )
    expect(page.locator("#saved")).to_contain_text(f"hooked {hooked}", timeout=15_000)
    expect(item(page).first).to_have_attribute("data-status", "complete", timeout=15_000)
    assert page.evaluate("window.__disconnects") == 0


# -- attaching again -----------------------------------------------------------------------


def test_a_paused_upload_registers_again_under_its_ref_with_its_token(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    open_view(page, resume_server, PAGE)
    name = pick_held(page, tmp_path)
    (registered,) = page.evaluate("window.__registered")
    release(page)

    drop_socket(page)
    page.wait_for_function("window.__sent.filter((m) => m.t === 'upload_register').length === 2")

    first, again = sent(page, "upload_register")
    assert "resume" not in first
    assert again["ref"] == first["ref"]
    assert again["resume"] == registered["resume"]
    assert "fallback" not in again
    assert again["client_name"] == name
    assert again["client_size"] == first["client_size"] == 3_000_000
    assert again["client_modified"] == first["client_modified"] == entry(page, "lastModified")


def test_a_file_changed_while_paused_fails_with_file_changed(resume_page, resume_server, tmp_path):
    page = resume_page
    open_view(page, resume_server, PAGE)
    name = pick_held(page, tmp_path)
    release(page)
    path = tmp_path / name
    path.write_bytes(os.urandom(3_000_000))  # same size, other bytes, a new time
    later = time.time_ns() + 5_000_000_000
    os.utime(path, ns=(later, later))

    drop_socket(page)

    page.wait_for_function("window.__events.error.some((e) => e.code === 'file_changed')")
    shown = item(page)
    expect(shown).to_have_class(re.compile(r"\bupload-error\b"))
    expect(shown.locator(".upload-progress-text")).to_have_text(
        "Failed: the file changed while its upload was paused; choose it again"
    )
    connected(page)
    assert len(sent(page, "upload_register")) == 1  # never registered again


def test_an_upload_offline_longer_than_its_grace_period_fails_with_resume_expired(
    resume_page, servers, tmp_path
):
    page = resume_page
    server = servers(TEST_RESUME_TTL="1")
    open_view(page, server, PAGE)
    pick_held(page, tmp_path)
    release(page)
    page.context.set_offline(True)
    drop_socket(page)
    page.wait_for_timeout(3000)  # the grace period of the server is one second
    assert server.temp_files() == []  # the waiting upload is gone, and its files with it
    page.context.set_offline(False)

    page.wait_for_function(
        "window.__events.error.some((e) => e.code === 'resume_expired')", timeout=20_000
    )
    shown = item(page)
    expect(shown).to_have_class(re.compile(r"\bupload-error\b"))
    expect(shown.locator(".upload-progress-text")).to_contain_text("Failed:")
    assert shown.bounding_box()["height"] > 0
    assert server.temp_files() == []


def kept_files(server, token: str) -> list[str]:
    """The files the server keeps for the upload ``token`` names."""
    entry_id = token.rsplit(".", 1)[1]
    return [name for name in server.temp_files() if entry_id in name]


def test_a_file_cancelled_while_paused_is_let_go_by_the_server_once_back(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    open_view(page, resume_server, PAGE)
    pick_held(page, tmp_path)
    (registered,) = page.evaluate("window.__registered")
    release(page)
    page.context.set_offline(True)
    drop_socket(page)
    expect(item(page).locator(".upload-progress-text")).to_have_text(PAUSED)
    assert kept_files(resume_server, registered["resume"])  # kept for the page, for a minute

    item(page).locator(".upload-cancel").click()
    expect(item(page)).to_have_count(0)
    page.context.set_offline(False)
    connected(page)

    page.wait_for_function("window.__sent.some((m) => m.t === 'upload_cancel')", timeout=20_000)
    page.wait_for_function(f"{UPLOADS}.abandoned.size === 0")
    # Gone now, not in a minute (the files go on the entry's lane, right after the answer).
    deadline = time.monotonic() + 2
    while kept_files(resume_server, registered["resume"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kept_files(resume_server, registered["resume"]) == []
    cancel = sent(page, "upload_cancel")[-1]
    again = sent(page, "upload_register")[-1]
    assert again["resume"] == registered["resume"] and "fallback" not in again
    assert cancel["ref"] == again["ref"]
    assert page.evaluate("window.__events.error") == []  # nothing for the person to see
    assert item(page).count() == 0
    assert page.evaluate("localStorage.getItem('djust-resume')") in (None, "[]")


def test_files_cancelled_while_paused_do_not_crowd_out_the_others_once_back(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    open_view(page, resume_server, "/t/late-containers/")  # slot "any": up to 8 files
    page.evaluate("window.__pass = 0")  # registered, but no byte reaches the server
    names = [unique(f"six{i}", ".txt") for i in range(6)]
    page.set_input_files("#pick", [write(tmp_path, n, text_bytes(1_000_000)) for n in names])
    # Three stream (the client's limit), three wait for their turn.
    page.wait_for_function("window.__registered.length === 3")
    page.context.set_offline(True)
    drop_socket(page)
    streaming = [m["ref"] for m in page.evaluate("window.__registered")]
    for ref in streaming[:2]:
        page.locator(f".upload-progress-item[data-ref='{ref}'] .upload-cancel").first.click()
    release(page)
    page.context.set_offline(False)
    connected(page)

    # The server's limit is four unfinished uploads per connection: the two cancelled files
    # hold a place until they are cancelled, and the three waiting ones take theirs after them.
    items = page.locator("[id^=progress-] .upload-progress-item[data-status=complete]")
    expect(items).to_have_count(4, timeout=20_000)
    assert page.evaluate("window.__events.error") == []
    assert len(sent(page, "upload_cancel")) == 2


def test_an_upload_cut_off_mid_way_continues_from_the_servers_offset(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    open_view(page, resume_server, PAGE)
    name = pick_held(page, tmp_path)
    data = (tmp_path / name).read_bytes()
    release(page)

    drop_socket(page)

    expect(item(page)).to_have_attribute("data-status", "complete", timeout=20_000)
    first, again = page.evaluate("window.__registered")
    assert first["offset"] == 0 and again["offset"] > 0
    assert page.evaluate("window.__offsets")[:2] == [0, again["offset"]]
    assert not page.evaluate("window.__events.error")
    page.click("#save")
    expect(page.locator("#saved")).to_contain_text(f"{sha256(data)} {len(data)}")


# -- picking again after a reload ----------------------------------------------------------


def picked_file(tmp_path, size: int = 200_000):
    name = unique("again", ".txt")
    path = write(tmp_path, name, text_bytes(size))
    os.utime(path, ns=(MODIFIED_MS * 1_000_000,) * 2)
    return name, path


def test_a_file_picked_again_after_a_reload_continues_from_the_servers_offset(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    open_view(page, resume_server, PAGE)
    name = pick_held(page, tmp_path)
    path = tmp_path / name
    (registered,) = page.evaluate("window.__registered")

    page.reload()
    connected(page)
    page.set_input_files("input[dj-upload=big]", path)

    expect(item(page)).to_have_attribute("data-status", "complete", timeout=20_000)
    (again,) = page.evaluate("window.__registered")
    assert again["resume"] == registered["resume"] and again["offset"] > 0
    assert page.evaluate("window.__offsets")[0] == again["offset"]
    page.click("#save")
    data = path.read_bytes()
    expect(page.locator("#saved")).to_contain_text(f"{sha256(data)} {len(data)}")


def test_a_file_picked_again_registers_with_its_stored_token_and_fallback(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    open_view(page, resume_server, PAGE)
    name, path = picked_file(tmp_path)
    expires = int(time.time() * 1000) + 60_000
    record = dict(path=PAGE, slot="big", name=name, size=200_000, modified=MODIFIED_MS)
    store_record(page, **record, token="token-3", expires=expires)

    page.set_input_files("input[dj-upload=big]", path)

    expect(item(page)).to_have_attribute("data-status", "complete")
    (registered,) = sent(page, "upload_register")
    assert registered["resume"] == "token-3"
    assert registered["fallback"] is True
    assert registered["client_modified"] == MODIFIED_MS


def test_an_expired_stored_token_is_not_used_and_is_dropped(resume_page, resume_server, tmp_path):
    page = resume_page
    open_view(page, resume_server, PAGE)
    name, path = picked_file(tmp_path)
    expired = int(time.time() * 1000) - 1000
    record = dict(path=PAGE, slot="big", name=name, size=200_000, modified=MODIFIED_MS)
    store_record(page, **record, token="token-4", expires=expired)

    page.set_input_files("input[dj-upload=big]", path)

    expect(item(page)).to_have_attribute("data-status", "complete")
    (registered,) = sent(page, "upload_register")
    assert "resume" not in registered and "fallback" not in registered
    stored = json.loads(page.evaluate("localStorage.getItem('djust-resume')") or "[]")
    assert [r["token"] for r in stored] == [entry(page, "resume")]  # the new entry's alone


def test_a_registration_with_a_resume_token_is_stored_for_a_pick_after_a_reload(
    resume_page, resume_server, tmp_path
):
    page = resume_page
    open_view(page, resume_server, PAGE)
    name, path = picked_file(tmp_path)
    page.set_input_files("input[dj-upload=big]", path)
    expect(item(page)).to_have_attribute("data-status", "complete")

    stored = json.loads(page.evaluate("localStorage.getItem('djust-resume')") or "[]")

    now = time.time() * 1000
    (record,) = stored
    assert record["token"] == entry(page, "resume")
    assert (record["path"], record["slot"], record["name"]) == (PAGE, "big", name)
    assert (record["size"], record["modified"]) == (200_000, MODIFIED_MS)
    assert now < record["expires"] <= now + entry(page, "ttl") * 1000


def test_a_complete_file_stays_complete_across_a_reconnect(resume_page, resume_server, tmp_path):
    page = resume_page
    open_view(page, resume_server, PAGE)
    name, path = picked_file(tmp_path)
    page.set_input_files("input[dj-upload=big]", path)
    expect(item(page)).to_have_attribute("data-status", "complete")
    frames = page.evaluate("window.__passed")

    drop_socket(page)
    page.wait_for_function("window.__disconnects === 1")
    expect(item(page)).to_have_attribute("data-status", "complete")
    connected(page)
    page.wait_for_function("window.__sent.filter((m) => m.t === 'upload_register').length === 2")

    expect(item(page)).to_have_attribute("data-status", "complete")
    assert sent(page, "upload_register")[1]["resume"]
    assert page.evaluate("window.__passed") == frames  # not a byte sent again
    page.click("#save")
    expect(page.locator("#saved")).to_contain_text(name)
