"""Direct to S3 from the browser: the page PUTs the parts to the bucket, across origins (CORS).

The bucket is moto's S3 server with its blanket CORS turned off (``MOTO_DISABLE_GLOBAL_CORS``),
so that it answers preflights and PUTs by the bucket's own CORS rules, as S3 does. The page's
origin is the djust test server's; the bucket's is another port of 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import pytest

from tests.conftest import make_server
from tests.s3server import S3Server

from .test_engines import open_view, wait_complete
from .test_uploads_browser import png_bytes, unique, write

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

MiB = 1024 * 1024
BUCKET = "djust-direct-browser"

# Records the upload events and the socket's messages. PUTs of parts other than the first
# (the head, under .djust-heads/) are held while window.__holdPuts is set, until aborted or
# window.__release(); while window.__offline is set, the socket cannot connect.
INIT_SCRIPT = """
window.__events = { progress: [], error: [] };
window.__sent = [];
window.__puts = [];
window.__held = [];
window.__release = () => window.__held.splice(0).forEach((go) => go());
window.addEventListener("djust:upload:progress", (e) => window.__events.progress.push(e.detail));
window.addEventListener("djust:upload:error", (e) => window.__events.error.push(e.detail));
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    window.__sent.push(typeof data === "string" ? JSON.parse(data) : { t: "binary" });
    return send.call(this, data);
  };
  const Socket = window.WebSocket;
  window.WebSocket = function (url, protocols) {
    return new Socket(window.__offline ? "ws://127.0.0.1:9/" : url, protocols);
  };
  window.WebSocket.prototype = Socket.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  const fetch = window.fetch;
  window.fetch = function (url, init) {
    if (!init || init.method !== "PUT") return fetch.apply(this, arguments);
    const put = { url: String(url), state: "sent" };
    window.__puts.push(put);
    const land = () =>
      fetch(url, init).then((response) => {
        put.state = "landed " + response.status;
        return response;
      });
    if (window.__holdPuts && !put.url.includes(".djust-heads")) {
      put.state = "held";
      return new Promise((resolve, reject) => {
        init.signal.addEventListener("abort", () => {
          put.state = "aborted";
          reject(new DOMException("aborted", "AbortError"));
        });
        window.__held.push(() => land().then(resolve, reject));
      });
    }
    return land();
  };
})();
"""

RULE = {
    "AllowedMethods": ["PUT"],
    "AllowedHeaders": ["x-amz-checksum-sha256"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 600,
}


@pytest.fixture(scope="module")
def s3():
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"  # read by the child process only
    try:
        server = S3Server().start()
    finally:
        del os.environ["MOTO_DISABLE_GLOBAL_CORS"]
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
def bucket(s3) -> Any:
    return s3.client()


def allow(bucket: Any, origin: str, **rule: Any) -> None:
    """The bucket's CORS rules: ``RULE`` for ``origin``, with ``rule``'s changes."""
    cors = {**RULE, "AllowedOrigins": [origin], **rule}
    bucket.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [cors]})


def open_uploads(bucket: Any) -> set[str]:
    return {u["UploadId"] for u in bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])}


def keys(bucket: Any) -> set[str]:
    return {o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def direct_page(page, site):
    page.add_init_script(INIT_SCRIPT)
    page.goto(site.url + "/t/uploads-s3-direct/")
    page.wait_for_function("document.querySelector('[dj-view]')?.__djust?.mounted === true")
    return page


def item(page, name: str):
    return page.locator(".upload-progress-item").filter(has_text=name)


def test_chromium_puts_the_parts_straight_to_the_bucket(direct_page, site, bucket, tmp_path):
    page = direct_page
    allow(bucket, site.url)
    name = unique("photo", ".png")
    data = png_bytes(24, 16, padding=12 * MiB)  # three parts of 5 MiB at most
    page.set_input_files("#pick", write(tmp_path, name, data))

    expect(item(page, name)).to_have_attribute("data-status", "complete", timeout=30_000)
    # Previewed once the server passed part 1, as on the socket.
    expect(page.locator(".upload-preview-item img")).to_have_count(1)
    expect(page.locator("#slot-direct")).to_contain_text(f"{name} 100 True")

    sent = page.evaluate("window.__sent")
    assert not [m for m in sent if m["t"] == "binary"]  # no byte went over the socket
    assert sorted(m["part"] for m in sent if m["t"] == "upload_part") == [1, 2, 3]
    puts = page.evaluate("window.__puts")
    assert [p["state"] for p in puts] == ["landed 200"] * 3
    progress = [p["progress"] for p in page.evaluate("window.__events.progress")]
    assert any(0 < p < 100 for p in progress) and progress[-1] == 100

    page.click("#store")
    expect(page.locator("#saved")).to_contain_text("S3DirectUpload")
    line = page.locator("#saved").inner_text().strip().splitlines()[-1]
    key = line.split(" ")[0]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert not [k for k in keys(bucket) if ".djust-heads/" in k]


def test_a_bucket_that_hides_the_etag_fails_the_upload_and_says_why(
    direct_page, site, bucket, tmp_path
):
    page = direct_page
    allow(bucket, site.url, ExposeHeaders=[])  # the PUT lands; the page cannot read its ETag
    before = keys(bucket)
    name = unique("hidden", ".png")
    page.set_input_files("#pick", write(tmp_path, name, png_bytes(8, 8)))

    expect(item(page, name)).to_have_attribute("data-status", "error", timeout=15_000)
    (error,) = page.evaluate("window.__events.error")
    assert error["code"] == "write_failed" and "expose ETag" in error["error"]
    expect(page.locator("#errors-direct")).to_contain_text("write_failed")
    assert wait_until(lambda: keys(bucket) == before)  # the part that landed is removed


def test_cancel_aborts_the_puts_in_flight_and_the_multipart_upload(
    direct_page, site, bucket, tmp_path
):
    page = direct_page
    allow(bucket, site.url)
    before = open_uploads(bucket)
    page.evaluate("window.__holdPuts = true")
    name = unique("held", ".png")
    page.set_input_files("#pick", write(tmp_path, name, png_bytes(8, 8, padding=24 * MiB)))

    # Part 1 landed and passed; three parts (the window) are on their way and held.
    page.wait_for_function("window.__puts.filter((p) => p.state === 'held').length === 3")
    assert len(open_uploads(bucket) - before) == 1
    item(page, name).locator(".upload-cancel").click()

    expect(item(page, name)).to_have_count(0)
    states = [p["state"] for p in page.evaluate("window.__puts")]
    assert states == ["landed 200", "aborted", "aborted", "aborted"]
    assert any(m["t"] == "upload_cancel" for m in page.evaluate("window.__sent"))
    assert wait_until(lambda: open_uploads(bucket) == before)


@pytest.fixture(scope="module")
def resuming_site(s3):
    server = make_server(TEST_RESUME_TTL="60", **s3.env(BUCKET)).start()
    yield server
    server.stop()
    shutil.rmtree(server.state_dir, ignore_errors=True)


def four_parts_three_held(page, server, stem: str, tmp_path) -> tuple[str, bytes]:
    """A file of four parts picked on the direct page: part 1 landed and passed, and the PUTs
    of parts 2 to 4 are held. Its name and bytes."""
    page.add_init_script(INIT_SCRIPT)
    page.goto(server.url + "/t/uploads-s3-direct/")
    page.wait_for_function("document.querySelector('[dj-view]')?.__djust?.mounted === true")
    page.evaluate("window.__holdPuts = true")
    name = unique(stem, ".png")
    data = png_bytes(8, 8, padding=16 * MiB)
    page.set_input_files("#pick", write(tmp_path, name, data))
    page.wait_for_function("window.__puts.filter((p) => p.state === 'held').length === 3")
    return name, data


def test_parts_that_land_while_the_socket_is_down_are_reported_when_it_is_back(
    page, resuming_site, bucket, tmp_path
):
    allow(bucket, resuming_site.url)
    name, data = four_parts_three_held(page, resuming_site, "trip", tmp_path)

    page.evaluate("window.__offline = true; document.querySelector('[dj-view]').__djust.ws.close()")
    expect(item(page, name)).to_have_attribute("data-status", "paused")
    page.evaluate("window.__holdPuts = false; window.__release()")
    page.wait_for_function("window.__puts.every((p) => p.state === 'landed 200')")
    reported = len([m for m in page.evaluate("window.__sent") if m["t"] == "upload_part"])
    page.evaluate("window.__offline = false")

    expect(item(page, name)).to_have_attribute("data-status", "complete", timeout=30_000)
    parts = [m["part"] for m in page.evaluate("window.__sent") if m["t"] == "upload_part"]
    assert (parts[:reported], sorted(parts[reported:])) == ([1], [2, 3, 4])  # told once back
    assert len(page.evaluate("window.__puts")) == 4  # no part was sent twice
    page.click("#store")
    expect(page.locator("#saved")).to_contain_text("S3DirectUpload")
    key = page.locator("#saved").inner_text().strip().splitlines()[-1].split(" ")[0]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_a_direct_upload_goes_on_after_the_server_restarts(page, servers, s3, bucket, tmp_path):
    server = servers(TEST_RESUME_TTL="60", **s3.env(BUCKET))
    allow(bucket, server.url)
    before = open_uploads(bucket)
    name, data = four_parts_three_held(page, server, "deploy", tmp_path)

    server.restart()  # a deploy: SIGTERM, and a new process on the same port and directory
    expect(item(page, name)).not_to_have_attribute("data-status", "error")
    page.evaluate("window.__holdPuts = false; window.__release()")

    expect(item(page, name)).to_have_attribute("data-status", "complete", timeout=30_000)
    assert len(page.evaluate("window.__puts")) == 4  # no part was sent twice
    expect(page.locator(".upload-preview-item img")).to_have_count(1)
    page.click("#store")
    expect(page.locator("#saved")).to_contain_text("S3DirectUpload")
    key = page.locator("#saved").inner_text().strip().splitlines()[-1].split(" ")[0]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert wait_until(lambda: open_uploads(bucket) == before)
    assert wait_until(lambda: server.temp_files() == [])


# -- every engine ------------------------------------------------------------------------------

# The page's binary socket messages and its PUTs' answers, from here on (after the page loaded).
RECORD = """(() => {
  window.__binary = 0;
  window.__landed = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data !== "string") window.__binary += 1;
    return send.call(this, data);
  };
  const fetch = window.fetch;
  window.fetch = function (url, init) {
    const answer = fetch.apply(this, arguments);
    if (init && init.method === "PUT") answer.then((r) => window.__landed.push(r.status));
    return answer;
  };
  return true;
})()"""


def test_every_engine_puts_the_parts_straight_to_the_bucket(engine_page, site, bucket, tmp_path):
    page = engine_page
    allow(bucket, site.url)
    open_view(page, site.url + "/t/uploads-s3-direct/")
    page.evaluate(RECORD)
    name = unique("photo", ".png")
    data = png_bytes(24, 16, padding=12 * MiB)  # three parts of 5 MiB at most
    page.set_files("#pick", [write(tmp_path, name, data)])

    wait_complete(page, name, timeout=60)
    assert page.evaluate("window.__binary") == 0  # no byte went over the socket
    assert page.evaluate("window.__landed") == [200, 200, 200]
    assert page.wait_for("document.querySelector('.upload-preview-item img')?.naturalWidth")
    page.click("#store")
    page.wait_for("document.querySelector('#saved')?.textContent.includes('S3DirectUpload')")
    key = page.text_of("#saved").strip().splitlines()[-1].split(" ")[0]
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
