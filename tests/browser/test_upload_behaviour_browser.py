"""Loading states, waiting for uploads, paste, folders and refusals, driven through Chromium.

The page is ``UploadUIView`` (tests/app/views.py). A test that needs to see the page while an
event is in flight holds the server's answers back on the page's side (``window.__hold``) and
lets them through with ``window.__release()``: nothing depends on timing.
"""

from __future__ import annotations

import re

import pytest

from .test_uploads_browser import png_bytes

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=10_000)

PAGE = "/t/upload-ui/"

# Before djust loads: record what the page sends, and hold back server messages of the types
# in ``window.__hold`` until ``window.__release(n)`` lets the first n (or all) through, in order.
INIT_SCRIPT = """
window.__sent = [];
window.__connected = false;
window.__hold = new Set();
window.__held = [];
window.addEventListener("djust:connected", () => { window.__connected = true; });
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string") window.__sent.push(JSON.parse(data));
    return send.call(this, data);
  };
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true,
    get() { return onmessage.get.call(this); },
    set(handler) {
      onmessage.set.call(this, (e) => {
        const type = JSON.parse(e.data).t;
        if (window.__hold.has(type) || window.__held.length) {
          window.__held.push(() => handler.call(this, e));
        } else {
          handler.call(this, e);
        }
      });
    },
  });
  window.__release = (n) => {
    if (n === undefined) window.__hold.clear();
    window.__held.splice(0, n === undefined ? window.__held.length : n).forEach((f) => f());
  };
})();
"""

# A DataTransfer holding files made in the page: [[name, type, content], ...], where content is
# a text, a size (that many zero bytes) or a list of byte values.
FILES_JS = """(files) => {
    const dt = new DataTransfer();
    for (const [name, type, content] of files) {
        const body = typeof content === "string" ? content : new Uint8Array(content);
        dt.items.add(new File([body], name, {type: type}));
    }
    return dt;
}"""


@pytest.fixture
def live_page(page, server):
    page.add_init_script(INIT_SCRIPT)
    page.goto(server.url + PAGE)
    page.wait_for_function("window.__connected === true")
    return page


def hold(page, *types: str) -> None:
    page.evaluate("(types) => types.forEach((t) => window.__hold.add(t))", list(types))


def release(page, count: int | None = None) -> None:
    page.evaluate("(n) => window.__release(n === null ? undefined : n)", count)


def sent(page, kind: str) -> list[dict]:
    return page.evaluate("(kind) => window.__sent.filter((m) => m.t === kind)", kind)


def entries(page):
    return page.locator("#entries li")


def drop(page, selector: str, files: list) -> None:
    transfer = page.evaluate_handle(FILES_JS, files)
    page.locator(selector).dispatch_event("drop", {"dataTransfer": transfer})


# Paste on an element as the browser would; whether the page took the paste over.
PASTE_JS = (
    "([selector, files, text]) => { const dt = ("
    + FILES_JS
    + """)(files);
    if (text) dt.setData("text/plain", text);
    const event = new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true});
    document.querySelector(selector).dispatchEvent(event);
    return event.defaultPrevented;
}"""
)


def paste(page, selector: str, files: list, text: str = "") -> bool:
    return page.evaluate(PASTE_JS, [selector, files, text])


# -- loading states ------------------------------------------------------------------------


def test_the_element_whose_event_is_in_flight_carries_dj_loading(live_page):
    page = live_page
    button = page.locator("#upload-all")
    hold(page, "reply")

    button.click()
    expect(button).to_have_class(re.compile(r"\bdj-loading\b"))
    page.wait_for_function("window.__held.length >= 1")
    release(page)
    expect(button).not_to_have_class(re.compile(r"\bdj-loading\b"))


def test_dj_disable_with_disables_the_button_and_shows_its_text_until_the_reply(live_page):
    page = live_page
    button = page.locator("#save")
    expect(button).to_have_text("Saved 0")
    hold(page, "reply")

    button.click()
    expect(button).to_have_text("Saving…")
    expect(button).to_be_disabled()
    page.wait_for_function("window.__held.length >= 1")
    release(page)
    expect(button).to_have_text("Saved 1")  # the reply's version of the button
    expect(button).to_be_enabled()
    expect(button).not_to_have_class(re.compile(r"\bdj-loading\b"))


def test_dj_disable_with_restores_the_button_when_the_handler_fails(live_page):
    page = live_page
    button = page.locator("#fail")
    hold(page, "error")

    button.click()
    expect(button).to_have_text("Trying…")
    expect(button).to_be_disabled()
    page.wait_for_function("window.__held.length >= 1")
    release(page)
    expect(button).to_have_text("Try")
    expect(button).to_be_enabled()


def test_a_button_in_flight_is_not_clicked_twice(live_page):
    page = live_page
    hold(page, "reply")

    page.locator("#save").click()
    page.locator("#save").click(force=True)  # disabled: as a user's second click
    page.wait_for_function("window.__held.length >= 1")
    release(page)
    expect(page.locator("#save")).to_have_text("Saved 1")
    assert [m["name"] for m in sent(page, "event")] == ["save"]


def test_a_render_while_the_button_waits_keeps_its_text_until_the_reply(live_page):
    page = live_page
    button = page.locator("#save")
    hold(page, "render", "reply")
    # A refusal re-renders the view; the click follows it, so its render comes first.
    drop(page, "#zone", [["setup.exe", "application/octet-stream", 10]])
    page.wait_for_function("window.__sent.some((m) => m.t === 'upload_refused')")
    button.click()
    page.wait_for_function("window.__held.length >= 2")

    release(page, 1)  # the render
    expect(page.locator("#errors li")).to_have_text(["files:not_accepted:setup.exe"])
    expect(button).to_have_text("Saving…")
    expect(button).to_be_disabled()
    release(page)  # the reply
    expect(button).to_have_text("Saved 1")
    expect(button).to_be_enabled()


def test_the_root_says_whether_the_socket_is_connected(page, own_server):
    page.add_init_script(INIT_SCRIPT)
    page.goto(own_server.url + PAGE)
    root = page.locator("[dj-view]")
    expect(root).to_have_class(re.compile(r"\bdj-connected\b"))
    expect(root).not_to_have_class(re.compile(r"\bdj-disconnected\b"))

    own_server.stop()
    expect(root).to_have_class(re.compile(r"\bdj-disconnected\b"))
    expect(root).not_to_have_class(re.compile(r"\bdj-connected\b"))

    own_server.start()
    expect(root).to_have_class(re.compile(r"\bdj-connected\b"), timeout=20_000)
    expect(root).not_to_have_class(re.compile(r"\bdj-disconnected\b"))


def test_a_wait_button_is_disabled_while_the_slots_uploads_are_on_their_way(live_page):
    page = live_page
    button = page.locator("#upload-all")
    expect(button).to_be_enabled()
    hold(page, "upload_registered")

    drop(page, "#zone", [["notes.txt", "text/plain", "a note\n" * 100]])
    page.wait_for_function("window.__held.length >= 1")
    expect(button).to_be_disabled()
    release(page)
    expect(entries(page)).to_have_text(["files:notes.txt:True"])
    expect(button).to_be_enabled()


# -- paste ---------------------------------------------------------------------------------


def test_files_pasted_on_a_paste_target_go_to_its_slot_and_text_stays(live_page):
    page = live_page
    assert not paste(page, "#paste", [], text="just words")  # the field takes it, as ever

    assert paste(page, "#paste", [["pasted.png", "image/png", list(png_bytes())]])
    expect(entries(page)).to_have_text(["images:pasted.png:True"])
    assert [m["client_name"] for m in sent(page, "upload_register")] == ["pasted.png"]


def test_files_pasted_in_the_drop_zone_go_to_its_slot(live_page):
    page = live_page
    assert paste(page, "#pick", [["pasted.txt", "text/plain", "from the clipboard\n"]])
    expect(entries(page)).to_have_text(["files:pasted.txt:True"])


# -- folders -------------------------------------------------------------------------------


def test_a_chosen_folder_uploads_each_file_with_its_relative_path(live_page, tmp_path):
    page = live_page
    folder = tmp_path / "trip"
    (folder / "day1").mkdir(parents=True)
    (folder / "notes.txt").write_text("first\n")
    (folder / "day1" / "log.txt").write_text("second\n")

    page.set_input_files("#folder", folder)
    expect(entries(page)).to_have_count(2)
    expect(page.locator("#entries li", has_text=":False")).to_have_count(0)
    listed = sorted(entries(page).all_text_contents())
    assert listed == ["folder:trip/day1/log.txt:True", "folder:trip/notes.txt:True"]
    paths = sorted(m["client_path"] for m in sent(page, "upload_register"))
    assert paths == ["trip/day1/log.txt", "trip/notes.txt"]


def test_a_dropped_folder_uploads_each_file_with_its_relative_path(live_page):
    """A drop of a real folder cannot be scripted: the drop carries the folder as the
    browser's file-system entries do (``webkitGetAsEntry``), with their shape and behaviour."""
    page = live_page
    page.evaluate(
        """() => {
            const file = (path, text) => ({
                isFile: true, isDirectory: false, fullPath: path,
                file: (ok) => ok(new File([text], path.split("/").pop(), {type: "text/plain"})),
            });
            const folder = (path, children) => {
                let read = false;
                return {
                    isFile: false, isDirectory: true, fullPath: path,
                    createReader: () => ({
                        // In batches, then an empty one, as Chromium answers.
                        readEntries: (ok) => {
                            ok(read ? [] : children);
                            read = true;
                        },
                    }),
                };
            };
            const tree = folder("/trip", [
                file("/trip/notes.txt", "first\\n"),
                folder("/trip/day1", [file("/trip/day1/log.txt", "second\\n")]),
            ]);
            const drop = new Event("drop", {bubbles: true, cancelable: true});
            drop.dataTransfer = {
                files: [new File(["x"], "trip")],
                items: [{kind: "file", webkitGetAsEntry: () => tree}],
            };
            document.querySelector("#zone").dispatchEvent(drop);
        }"""
    )
    expect(entries(page)).to_have_text(
        ["files:trip/notes.txt:True", "files:trip/day1/log.txt:True"]
    )


# -- refusals ------------------------------------------------------------------------------


def test_five_files_dropped_one_too_large_the_template_lists_the_refusal(live_page):
    page = live_page
    small = [[f"doc{i}.txt", "text/plain", f"document {i}\n" * 50] for i in range(4)]
    drop(page, "#zone", [*small, ["big.pdf", "application/pdf", 26_000_000]])

    expect(page.locator("#errors li")).to_have_text(["files:too_large:big.pdf"])
    expect(entries(page)).to_have_text([f"files:doc{i}.txt:True" for i in range(4)])
    (refused,) = sent(page, "upload_refused")
    assert (refused["name"], refused["code"], refused["client_size"]) == (
        "files",
        "too_large",
        26_000_000,
    )
