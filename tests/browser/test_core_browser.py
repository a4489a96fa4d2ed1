"""The LiveView core in Chromium: clicks, confirmations, forms, morphing, reconnects, errors."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect

# Records the client's window events from before djust.js runs, in order.
RECORDER = """
window.__dj = { log: [], errors: [] };
for (const name of ["djust:connected", "djust:disconnected", "djust:error"]) {
  window.addEventListener(name, (e) => {
    window.__dj.log.push(name);
    if (name === "djust:error") window.__dj.errors.push(e.detail);
  });
}
"""


def connected_count(page) -> int:
    return page.evaluate("window.__dj.log.filter((n) => n === 'djust:connected').length")


def open_counter(page, base_url: str):
    page.add_init_script(RECORDER)
    page.goto(base_url + "/counter/")
    page.wait_for_function("window.__dj.log.includes('djust:connected')", timeout=10_000)
    return page


@pytest.fixture
def counter(page, server):
    return open_counter(page, server.url)


def test_click_updates_count(counter):
    expect(counter.locator("#count")).to_have_text("0")
    counter.click("#inc")
    expect(counter.locator("#count")).to_have_text("1")
    counter.click("#inc")
    counter.click("#inc")
    expect(counter.locator("#count")).to_have_text("3")


def test_change_on_a_select_sends_its_value_and_re_renders(counter):
    counter.select_option("#step", "10")
    expect(counter.locator("#inc-step")).to_have_text("+10")
    counter.click("#inc-step")
    expect(counter.locator("#count")).to_have_text("10")
    expect(counter.locator("#step")).to_have_value("10")  # the morph kept the choice


def test_confirm_accepted_sends_value(counter):
    messages = []

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()

    counter.once("dialog", accept)
    counter.click("#inc5")
    expect(counter.locator("#count")).to_have_text("5")
    assert messages == ["Add five?"]


def test_confirm_dismissed_sends_nothing(counter):
    messages = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    counter.once("dialog", dismiss)
    counter.click("#inc5")
    assert messages == ["Add five?"]
    counter.wait_for_timeout(300)
    expect(counter.locator("#count")).to_have_text("0")
    counter.click("#inc")
    expect(counter.locator("#count")).to_have_text("1")
    counter.wait_for_timeout(200)
    expect(counter.locator("#count")).to_have_text("1")


def test_submit_form_shows_greeting_without_navigating(counter):
    url = counter.url
    counter.evaluate("window.__sameDocument = true")
    counter.fill("#name", "Ada")
    counter.press("#name", "Enter")
    expect(counter.locator("#greeting")).to_have_text("Hello, Ada!")
    counter.fill("#name", "Grace")
    counter.click("#greet-form button[type=submit]")
    expect(counter.locator("#greeting")).to_have_text("Hello, Grace!")
    assert counter.url == url
    assert counter.evaluate("window.__sameDocument === true")


def test_morph_keeps_untouched_input_value(counter):
    counter.fill("#note", "my private note")
    counter.click("#inc")
    expect(counter.locator("#count")).to_have_text("1")
    expect(counter.locator("#echo")).to_have_text("You typed:  (count 1)")
    expect(counter.locator("#note")).to_have_value("my private note")


def search_state(page) -> dict:
    return page.evaluate(
        """() => {
          const s = document.getElementById("search");
          return { active: document.activeElement && document.activeElement.id,
                   value: s.value, start: s.selectionStart, end: s.selectionEnd };
        }"""
    )


def test_morph_keeps_focus_value_and_caret_while_typing(counter):
    counter.click("#search")
    # Slower than the 50 ms debounce, so echoes re-render the page while typing goes on.
    counter.locator("#search").press_sequentially("helloworld", delay=80)
    expect(counter.locator("#echo")).to_have_text("You typed: helloworld (count 0)")
    assert search_state(counter) == {
        "active": "search",
        "value": "helloworld",
        "start": 10,
        "end": 10,
    }

    # Caret in the middle: a re-render must not move it to the end.
    for _ in range(5):
        counter.keyboard.press("ArrowLeft")
    counter.keyboard.type(" ")
    expect(counter.locator("#echo")).to_have_text("You typed: hello world (count 0)")
    assert search_state(counter) == {
        "active": "search",
        "value": "hello world",
        "start": 6,
        "end": 6,
    }

    # A render caused by something else (a click elsewhere, then back) keeps the caret too.
    counter.evaluate(
        """() => {
          const s = document.getElementById("search");
          s.focus();
          s.setSelectionRange(3, 3);
          document.getElementById("inc").dispatchEvent(new MouseEvent("click", { bubbles: true }));
        }"""
    )
    expect(counter.locator("#echo")).to_have_text("You typed: hello world (count 1)")
    assert search_state(counter) == {
        "active": "search",
        "value": "hello world",
        "start": 3,
        "end": 3,
    }


def test_reconnects_after_server_restart(browser, own_server):
    context = browser.new_context()
    try:
        page = open_counter(context.new_page(), own_server.url)
        assert page.evaluate("window.__dj.log") == ["djust:connected"]
        page.click("#inc")
        page.click("#inc")
        expect(page.locator("#count")).to_have_text("2")

        own_server.restart()
        page.wait_for_function(
            "window.__dj.log.filter((n) => n === 'djust:connected').length >= 2", timeout=15_000
        )
        log = page.evaluate("window.__dj.log")
        assert log[:3] == ["djust:connected", "djust:disconnected", "djust:connected"]
        assert connected_count(page) == 2

        # The view was mounted again: fresh state, and events work on the new connection.
        expect(page.locator("#count")).to_have_text("0")
        page.click("#inc")
        expect(page.locator("#count")).to_have_text("1")
        page.click("#inc")
        expect(page.locator("#count")).to_have_text("2")
    finally:
        context.close()


def test_server_error_fires_djust_error_with_code(counter):
    counter.evaluate(
        """() => {
          const b = document.createElement("button");
          b.id = "nope";
          b.setAttribute("dj-click", "nope");
          document.querySelector("[dj-view]").appendChild(b);
          b.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
        }"""
    )
    counter.wait_for_function("window.__dj.errors.length > 0", timeout=5_000)
    errors = counter.evaluate("window.__dj.errors")
    assert errors[0]["code"] == "unknown_event"
    assert connected_count(counter) == 1
    # The connection survives the error.
    counter.click("#inc")
    expect(counter.locator("#count")).to_have_text("1")
