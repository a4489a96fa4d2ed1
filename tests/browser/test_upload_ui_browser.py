"""The upload UI as a person sees it with no CSS of their own (docs/ui.md).

Each test looks at what is on the screen: boxes and their sizes, the words in the items, images
that really drew, what the keyboard reaches, what axe-core finds. Chunks can be held in the page
(a wrapped ``WebSocket.prototype.send``) so that an upload stays half-way for as long as a test
looks at it.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest

from .test_uploads_browser import connected, log_in, open_view, png_bytes, unique, write

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=10_000)

AXE = Path(__file__).parent / ".axe" / "node_modules" / "axe-core" / "axe.min.js"

# Before djust loads: the connection, the messages the page sends, the rates the server sent, a
# gate for chunk frames (``__pass`` frames go through, the rest wait in ``__held`` until
# ``__release()``), and every image that appears in a preview, with whether it failed to load.
INIT_SCRIPT = """
window.__connected = false;
window.__sent = [];
window.__rates = [];
window.__images = [];
window.__pass = Infinity;
window.__passed = 0;
window.__held = [];
window.addEventListener("djust:connected", () => { window.__connected = true; });
window.addEventListener("djust:disconnected", () => { window.__connected = false; });
(() => {
  const Native = window.WebSocket;
  const send = Native.prototype.send;
  Native.prototype.send = function (data) {
    if (typeof data === "string") {
      window.__sent.push(JSON.parse(data));
    } else if (window.__passed >= window.__pass) {
      window.__held.push([this, data]);
      return undefined;
    } else {
      window.__passed += 1;
    }
    return send.call(this, data);
  };
  window.__release = () => {
    window.__pass = Infinity;
    for (const [ws, data] of window.__held.splice(0)) send.call(ws, data);
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        const m = JSON.parse(e.data);
        if (m.t === "upload_ack" && m.rate) window.__rates.push(m.rate);
      });
    }
  };
})();
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType !== 1) continue;
      const images = node.tagName === "IMG" ? [node] : Array.from(node.querySelectorAll("img"));
      for (const img of images) {
        const item = img.closest(".upload-preview-item");
        if (!item) continue;
        const seen = { ref: item.getAttribute("data-ref"), broken: false };
        window.__images.push(seen);
        img.addEventListener("error", () => { seen.broken = true; });
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""

# Every visible image in a preview has drawn (a broken one has naturalWidth 0).
BROKEN_IMAGES = """() => Array.from(document.querySelectorAll("[dj-upload-preview] img"))
  .filter((img) => img.getClientRects().length && !(img.complete && img.naturalWidth > 0))
  .map((img) => img.outerHTML)"""


# -- files ---------------------------------------------------------------------------------


# Binary frames leave one at a time, the given number of milliseconds apart.
SPACE_FRAMES = """(ms) => {
  const send = WebSocket.prototype.send;
  let chain = Promise.resolve();
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string") return send.call(this, data);
    chain = chain.then(() => new Promise((r) => setTimeout(r, ms)))
      .then(() => send.call(this, data));
  };
}"""


def text_bytes(size: int) -> bytes:
    line = b"The quick brown fox jumps over the lazy dog. 0123456789\n"
    return (line * (size // len(line) + 1))[:size]


def format_size(size: int) -> str:
    """The client's own formatting (decimal units: 1 KB = 1,000 bytes, one decimal)."""
    if size < 1000:
        return f"{size} B"
    if size < 1000 * 1000:
        return f"{size / 1000:.1f} KB"
    return f"{size / 1000 / 1000:.1f} MB"


# -- page helpers --------------------------------------------------------------------------


@pytest.fixture
def ui(page):
    page.add_init_script(INIT_SCRIPT)
    page.set_viewport_size({"width": 900, "height": 700})
    return page


def progress_item(page, name: str):
    return page.locator(".upload-progress-item").filter(has_text=name)


def preview_item(page, name: str):
    return page.locator(".upload-preview-item").filter(has_text=name)


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found is not None, "not rendered"
    return found


def held_still(page, item) -> None:
    """Wait until the progress stops moving (the held chunks keep it there)."""
    bar = item.locator(".upload-progress-bar")
    page.wait_for_function(
        "(bar) => Number(bar.getAttribute('aria-valuenow')) > 0", arg=bar.element_handle()
    )
    while True:
        before = bar.get_attribute("aria-valuenow")
        page.wait_for_timeout(300)
        if bar.get_attribute("aria-valuenow") == before:
            return


def axe_violations(page, scheme: str) -> list[dict]:
    """What axe-core finds: on the whole page in light mode; in dark mode (on a page that says it
    can be dark) in the generated items, which the dark colors are for."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run scripts/test, which installs it from npm")
    dark = page.evaluate("getComputedStyle(document.querySelector('.upload-progress-item')).color")
    assert (dark == "rgb(240, 246, 252)") == (scheme == "dark")
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async (scheme) => {
          const context = scheme === "light" ? document
            : { include: [["[dj-upload-preview]"], ["[dj-upload-progress]"]] };
          return (await axe.run(context, { resultTypes: ["violations"] })).violations
            .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.html) }));
        }""",
        scheme,
    )


# -- the bar and its words -----------------------------------------------------------------


def test_the_bar_is_visible_and_its_width_follows_the_progress(ui, server, tmp_path):
    page = ui
    page.emulate_media(reduced_motion="reduce")  # no transition: the width is the width now
    name = unique("holiday", ".png")
    open_view(page, server, "/profile/")
    page.evaluate("window.__pass = 2")  # 256 KiB, then a megabyte, then the upload waits

    page.set_input_files(
        "input[dj-upload=avatar]", write(tmp_path, name, png_bytes(padding=3_500_000))
    )
    item = progress_item(page, name)
    held_still(page, item)
    # One look at the value, the track and the bar, so that no ack comes in between.
    progress, track, bar = item.evaluate(
        """(item) => {
          const bar = item.querySelector(".upload-progress-bar");
          const track = item.querySelector(".upload-progress-track");
          return [Number(bar.getAttribute("aria-valuenow")),
                  track.getBoundingClientRect().toJSON(), bar.getBoundingClientRect().toJSON()];
        }"""
    )

    assert 0 < progress < 100
    assert track["height"] > 0 and bar["height"] == track["height"]
    assert bar["width"] / track["width"] == pytest.approx(progress / 100, abs=0.01)

    page.evaluate("window.__release()")
    expect(item).to_have_class(re.compile(r"\bupload-complete\b"))
    bar = box(item.locator(".upload-progress-bar"))
    assert bar["width"] == pytest.approx(box(item.locator(".upload-progress-track"))["width"])


def test_an_upload_says_its_percent_and_bytes_of_total(ui, server, tmp_path):
    page = ui
    data = png_bytes(padding=3_500_000)
    name = unique("holiday", ".png")
    open_view(page, server, "/profile/")
    page.evaluate("window.__pass = 2")

    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, name, data))
    item = progress_item(page, name)
    held_still(page, item)

    text = item.locator(".upload-progress-text")
    expect(text).to_be_visible()
    progress, said, valuetext = item.evaluate(
        """(item) => {
          const bar = item.querySelector(".upload-progress-bar");
          return [bar.getAttribute("aria-valuenow"),
                  item.querySelector(".upload-progress-text").innerText,
                  bar.getAttribute("aria-valuetext")];
        }"""
    )
    assert re.match(
        rf"^{progress}% · [\d.]+ (B|KB|MB) of {re.escape(format_size(len(data)))}", said
    )
    assert valuetext == said
    bar = item.locator(".upload-progress-bar[role=progressbar]")
    assert (bar.get_attribute("aria-valuemin"), bar.get_attribute("aria-valuemax")) == ("0", "100")

    page.evaluate("window.__release()")
    expect(text).to_have_text(f"Complete · {format_size(len(data))}")


def test_speed_and_time_left_are_the_servers_measure(ui, server, tmp_path):
    page = ui
    name = unique("slow", ".txt")
    open_view(page, server, "/t/late-containers/")
    # Chunk frames leave one at a time, a quarter of a second apart: the server measures a rate.
    page.evaluate(SPACE_FRAMES, 250)

    page.set_input_files("input[dj-upload=any]", write(tmp_path, name, text_bytes(3_500_000)))
    text = progress_item(page, name).first.locator(".upload-progress-text")
    expect(text).to_have_text(re.compile(r" · [\d.]+ (B|KB|MB)/s · \d+ (s|min)( \d+ s)? left$"))

    value, unit = re.search(r" · ([\d.]+) (B|KB|MB)/s · ", text.inner_text()).groups()
    scale = {"B": 1, "KB": 1000, "MB": 1000 * 1000}[unit]
    rates = page.evaluate("window.__rates")  # as the server sent them in upload_ack
    assert any(abs(rate / scale - float(value)) <= 0.051 for rate in rates), (value, unit, rates)


def test_the_bar_is_redrawn_at_most_four_times_a_second_and_ends_full(ui, server, tmp_path):
    page = ui
    name = unique("steady", ".txt")
    open_view(page, server, "/t/big-upload/")
    # Runs leave a tenth of a second apart, so acks (and whole percents) come several times in
    # each quarter of a second; every change of the bar's width is recorded with its time.
    page.evaluate(SPACE_FRAMES, 100)
    page.evaluate(
        """() => {
          window.__widths = [];
          window.__percents = new Set();
          window.addEventListener("djust:upload:progress", (e) => {
            window.__percents.add(e.detail.progress);
          });
          new MutationObserver((records) => {
            for (const r of records) {
              const width = r.target.style.width;
              const last = window.__widths[window.__widths.length - 1];
              if (!last || last[1] !== width) window.__widths.push([performance.now(), width]);
            }
          }).observe(document.body, { subtree: true, attributeFilter: ["style"] });
        }"""
    )

    page.set_input_files("input[dj-upload=big]", write(tmp_path, name, text_bytes(24 * 1024**2)))
    item = progress_item(page, name).first
    expect(item).to_have_class(re.compile(r"\bupload-complete\b"), timeout=30_000)

    widths = page.evaluate("window.__widths")
    assert widths[-1][1] == "100%"
    assert box(item.locator(".upload-progress-bar"))["width"] == pytest.approx(
        box(item.locator(".upload-progress-track"))["width"]
    )
    # The page heard of many more percents than the bar was drawn for...
    assert page.evaluate("window.__percents.size") > len(widths) + 5
    # ...and was drawn several times on the way, never twice within a quarter of a second, but
    # for the last drawing (the status changed to complete, which is drawn at once).
    steps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(widths[:-1])]
    assert len(steps) >= 3, widths
    assert min(steps) >= 240, widths


# -- refusals ------------------------------------------------------------------------------


def test_a_renamed_program_on_the_avatar_slot_says_it_was_refused_with_no_image(ui, server):
    page = ui
    open_view(page, server, "/profile/")

    page.set_input_files(
        "input[dj-upload=avatar]",
        {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"MZ\x90\x00" + os.urandom(4000)},
    )

    item = progress_item(page, "photo.jpg")
    expect(item).to_have_class(re.compile(r"\bupload-error\b"))
    expect(item.locator(".upload-progress-text")).to_have_text(re.compile(r"^Failed: \S"))
    expect(item.locator(".upload-progress-text")).to_be_visible()
    preview = preview_item(page, "photo.jpg")
    expect(preview).to_be_visible()
    expect(preview.locator(".upload-preview-icon")).to_have_text("JPG")
    assert page.evaluate("window.__images") == []  # never an image, not even for a moment
    assert page.evaluate(BROKEN_IMAGES) == []
    expect(page.locator("#djust-announcer")).to_contain_text("photo.jpg was refused: ")


def test_an_image_shows_only_after_the_server_passed_its_first_bytes(ui, server, tmp_path):
    page = ui
    name = unique("portrait", ".png")
    open_view(page, server, "/profile/")
    page.evaluate("window.__pass = 0")  # registered, but no byte reaches the server

    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, name, png_bytes(40, 30)))
    expect(progress_item(page, name)).to_have_attribute("data-status", "uploading")
    page.wait_for_timeout(300)
    preview = preview_item(page, name)
    expect(preview.locator(".upload-preview-icon")).to_have_text("PNG")
    expect(preview.locator("img")).to_have_count(0)

    page.evaluate("window.__release()")
    expect(preview.locator("img")).to_be_visible()
    assert preview.locator("img").evaluate("(img) => img.naturalWidth") == 40
    expect(preview.locator(".upload-preview-icon")).to_have_count(0)
    assert page.evaluate(BROKEN_IMAGES) == []
    expect(page.locator("#djust-announcer")).to_contain_text(f"{name} uploaded")


def test_a_refused_file_stays_until_dismissed(ui, server, tmp_path):
    page = ui
    big, small = unique("scans", ".pdf"), unique("minutes", ".txt")
    log_in(page, server)

    page.set_input_files(
        "input[dj-upload=files]",
        [
            write(tmp_path, big, b"%PDF-1.4\n" + os.urandom(26_000_000)),
            write(tmp_path, small, text_bytes(3000)),
        ],
    )
    refused = progress_item(page, big)
    expect(refused).to_have_class(re.compile(r"\bupload-error\b"))
    expect(refused).to_contain_text(f"Failed: {big} is larger than")
    expect(preview_item(page, big)).to_have_class(re.compile(r"\bupload-error\b"))
    # The other file completes and the server renders the page again: the refusal stays.
    expect(progress_item(page, small)).to_have_class(re.compile(r"\bupload-complete\b"))
    expect(page.get_by_text("1 file(s) ready to upload")).to_be_visible()
    page.wait_for_timeout(500)
    expect(refused).to_be_visible()

    refused.get_by_role("button", name=f"Dismiss {big}").click()
    expect(refused).to_have_count(0)
    expect(preview_item(page, big)).to_have_count(0)
    expect(progress_item(page, small)).to_have_count(1)


# -- containers, keyboard, connection --------------------------------------------------------


def test_containers_a_render_adds_or_replaces_get_the_items(ui, server, tmp_path):
    page = ui
    name = unique("late", ".txt")
    open_view(page, server, "/t/late-containers/")
    expect(page.locator("#late-progress")).to_have_count(0)

    page.set_input_files("input[dj-upload=any]", write(tmp_path, name, text_bytes(5000)))

    for container in ("#late-progress", "#progress-1"):
        item = page.locator(container).locator(".upload-progress-item")
        expect(item).to_have_class(re.compile(r"\bupload-complete\b"))
        expect(item).to_contain_text(name)
        expect(item.locator(".upload-progress-text")).to_have_text("Complete · 5.0 KB")
    expect(page.locator("#late-preview .upload-preview-item")).to_contain_text(f"{name} (5.0 KB)")
    expect(page.locator("#progress-0")).to_have_count(0)


def test_the_drop_zone_opens_the_picker_from_the_keyboard(ui, server, tmp_path):
    page = ui
    name, second = unique("typed", ".txt"), unique("spaced", ".txt")
    # Playwright turns on its interception of file choosers with the first listener, without
    # waiting for Chromium: listen early, so that it is on before the first key press.
    page.on("filechooser", lambda chooser: None)
    log_in(page, server)
    zone = page.locator("[dj-upload-drop=files]")
    expect(zone).to_have_attribute("role", "button")

    for _ in range(10):  # Tab from the top of the page reaches it
        page.keyboard.press("Tab")
        if zone.evaluate("(el) => el === document.activeElement"):
            break
    expect(zone).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(write(tmp_path, name, text_bytes(2000)))
    expect(progress_item(page, name)).to_have_class(re.compile(r"\bupload-complete\b"))

    zone.focus()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press(" ")
    assert chooser.value.is_multiple()
    chooser.value.set_files(write(tmp_path, second, text_bytes(2000)))
    expect(progress_item(page, second)).to_have_class(re.compile(r"\bupload-complete\b"))


def test_an_upload_is_paused_while_the_server_is_down_and_sent_again_after(
    ui, own_server, tmp_path
):
    page = ui
    name = unique("patient", ".txt")
    open_view(page, own_server, "/t/late-containers/")
    page.evaluate("window.__pass = 0")
    page.set_input_files("input[dj-upload=any]", write(tmp_path, name, text_bytes(200_000)))
    # Renders replace the containers as the slot fills and empties: find the item by its file.
    item = progress_item(page, name).first
    expect(item).to_have_attribute("data-status", "uploading")

    own_server.stop()
    expect(item).to_have_class(re.compile(r"\bupload-paused\b"))
    expect(item.locator(".upload-progress-text")).to_have_text("Paused, reconnecting…")
    expect(item.locator(".upload-progress-bar")).to_have_attribute(
        "aria-valuetext", "Paused, reconnecting…"
    )
    expect(page.locator("#djust-announcer")).to_contain_text("Paused, reconnecting…")

    page.evaluate("window.__held = []; window.__pass = Infinity")
    own_server.start()
    connected(page)
    expect(item).to_have_class(re.compile(r"\bupload-complete\b"), timeout=20_000)
    registrations = [m for m in page.evaluate("window.__sent") if m["t"] == "upload_register"]
    assert [m["client_name"] for m in registrations] == [name, name]


# -- the default styles ----------------------------------------------------------------------


def test_any_rule_of_the_page_wins_over_the_defaults(ui, server, tmp_path):
    page = ui
    open_view(page, server, "/profile/")
    # Earlier in the page than the defaults: it still wins, as they weigh nothing.
    page.evaluate(
        """() => {
          const style = document.createElement("style");
          style.textContent = ".upload-progress-track { height: 20px; }";
          document.head.prepend(style);
        }"""
    )
    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, "a.png", png_bytes()))
    track = page.locator(".upload-progress-track")
    expect(track).to_be_visible()
    assert box(track)["height"] == 20
    css = page.locator("#djust-default-styles").text_content()
    rules = [line for line in css.splitlines() if line.strip().endswith("}") and "{" in line]
    assert rules and all(line.lstrip().startswith((":where(", "@keyframes")) for line in rules)


def test_the_defaults_follow_the_color_scheme_and_reduced_motion(ui, server, tmp_path):
    page = ui
    open_view(page, server, "/profile/")
    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, "a.png", png_bytes()))
    item = page.locator(".upload-progress-item")
    expect(item).to_have_class(re.compile(r"\bupload-complete\b"))
    bar = item.locator(".upload-progress-bar")

    def style(locator, prop: str) -> str:
        return locator.evaluate(f"(el) => getComputedStyle(el).{prop}")

    assert style(item, "backgroundColor") == "rgb(255, 255, 255)"
    assert style(bar, "transitionDuration") == "0s"  # drawn in steps, never sliding
    item.evaluate("(item) => item.classList.add('upload-paused')")  # as while offline
    assert style(bar, "animationName") == "djust-paused"
    page.emulate_media(color_scheme="dark", reduced_motion="reduce")
    assert style(bar, "animationName") == "none"
    item.evaluate("(item) => item.classList.remove('upload-paused')")
    # A page that stays light keeps light items, as it keeps light form controls...
    assert style(item, "backgroundColor") == "rgb(255, 255, 255)"
    # ...and one that says it can be dark gets dark ones for a reader who prefers dark.
    page.evaluate("document.documentElement.style.colorScheme = 'light dark'")
    assert style(item, "backgroundColor") == "rgb(22, 27, 34)"
    page.emulate_media(color_scheme="light")
    assert style(item, "backgroundColor") == "rgb(255, 255, 255)"


def test_data_djust_styles_off_leaves_the_page_unstyled(ui, server, tmp_path):
    page = ui
    # The tag as {% djust_scripts %} writes it with DJUST["UPLOAD_DEFAULT_STYLES"] = False.
    page.add_init_script(
        """new MutationObserver((records, observer) => {
          const tag = document.querySelector("script[src*='djust.js']");
          if (!tag) return;
          tag.setAttribute("data-djust-styles", "off");
          observer.disconnect();
        }).observe(document, { childList: true, subtree: true });"""
    )
    open_view(page, server, "/profile/")
    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, "a.png", png_bytes()))

    expect(page.locator(".upload-progress-item")).to_have_class(re.compile(r"\bupload-complete\b"))
    expect(page.locator("#djust-default-styles")).to_have_count(0)
    assert box(page.locator(".upload-progress-track"))["height"] == 0
    # The live region stays out of sight by its own inline style.
    announcer = page.locator("#djust-announcer")
    expect(announcer).to_contain_text("a.png uploaded")
    assert box(announcer)["width"] <= 1 and box(announcer)["height"] <= 1


# -- axe-core --------------------------------------------------------------------------------

# The spec's own stylesheet for documents.html, which the demo uses as written: its "Browse
# Files" label is white on #007bff, 3.97:1. Nothing djust generates is excused.
SPEC_CSS = {("color-contrast", '<label class="file-btn">')}


def serious(violations: list[dict]) -> list[dict]:
    found = []
    for v in violations:
        if v["impact"] not in ("serious", "critical"):
            continue
        nodes = [
            n for n in v["nodes"] if not any(v["id"] == i and n.startswith(h) for i, h in SPEC_CSS)
        ]
        if nodes:
            found.append({**v, "nodes": nodes})
    return found


@pytest.fixture(params=["light", "dark"])
def scheme(request, ui):
    if request.param == "dark":
        ui.add_init_script(
            """document.addEventListener("DOMContentLoaded", () => {
              document.documentElement.style.colorScheme = "light dark";
            });"""
        )
    ui.emulate_media(color_scheme=request.param)
    return request.param


def test_axe_finds_nothing_serious_on_the_profile_page(ui, scheme, server, tmp_path):
    page = ui
    open_view(page, server, "/profile/")
    page.set_input_files(
        "input[dj-upload=avatar]",
        {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"MZ\x90\x00" + os.urandom(4000)},
    )
    expect(page.locator(".upload-progress-item.upload-error")).to_have_count(1)
    assert serious(axe_violations(page, scheme)) == []

    page.set_input_files("input[dj-upload=avatar]", write(tmp_path, "me.png", png_bytes()))
    expect(page.locator(".upload-progress-item.upload-complete")).to_have_count(1)
    expect(page.locator(".upload-preview-item img")).to_have_count(1)
    assert serious(axe_violations(page, scheme)) == []


def test_axe_finds_nothing_serious_on_the_documents_page(ui, scheme, server, tmp_path):
    page = ui
    log_in(page, server)
    page.evaluate("window.__pass = 2")
    page.set_input_files(
        "input[dj-upload=files]",
        [
            write(tmp_path, unique("done", ".txt"), text_bytes(3000)),
            write(tmp_path, unique("long", ".txt"), text_bytes(6_000_000)),
            write(tmp_path, unique("huge", ".pdf"), b"%PDF-1.4\n" + os.urandom(26_000_000)),
        ],
    )
    expect(page.locator(".upload-progress-item.upload-complete")).to_have_count(1)
    expect(page.locator(".upload-progress-item.upload-active")).to_have_count(1)
    expect(page.locator(".upload-progress-item.upload-error")).to_have_count(1)
    assert serious(axe_violations(page, scheme)) == []


def test_axe_finds_nothing_serious_on_the_gallery_page(ui, scheme, server, tmp_path):
    page = ui
    open_view(page, server, "/gallery/")
    page.set_input_files("input[dj-upload=photos]", write(tmp_path, "sea.png", png_bytes()))
    expect(page.locator(".upload-preview-item img")).to_be_visible()
    expect(page.locator(".upload-progress-item")).to_have_attribute("data-status", "pending")
    assert serious(axe_violations(page, scheme)) == []
