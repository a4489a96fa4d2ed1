"""A LiveView is a Django view, seen from Chromium: auth mixins, CSRF forms, languages, sub-paths,
redirects and events from handlers, messages, refusals that reload once, honest reconnects."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import make_server

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect
expect.set_options(timeout=10_000)

# Before djust.js runs: the client's window events, the sockets it opens, and how many times
# each path was loaded in this tab (sessionStorage outlives a reload).
RECORDER = """
window.__dj = { log: [], errors: [], saved: [], sockets: [] };
for (const name of ["djust:connected", "djust:disconnected", "djust:error"]) {
  window.addEventListener(name, (e) => {
    window.__dj.log.push(name);
    if (name === "djust:error") window.__dj.errors.push(e.detail);
  });
}
window.addEventListener("djust:saved", (e) => window.__dj.saved.push(e.detail));
(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__dj.sockets.push(this);
    }
  };
  try {
    const key = "loads:" + location.pathname;
    sessionStorage.setItem(key, String(Number(sessionStorage.getItem(key) || 0) + 1));
  } catch (e) {} // about:blank has no storage
})();
"""

FORBIDDEN = "403 Forbidden"  # Django's own 403 page (the test project has no 403.html)


@pytest.fixture
def tab(page):
    page.add_init_script(RECORDER)
    return page


@pytest.fixture(scope="module")
def sub_server():
    """The test project behind a proxy that forwards ``/sub/``."""
    srv = make_server(TEST_SCRIPT_NAME="/sub").start()
    yield srv
    srv.stop()
    shutil.rmtree(srv.state_dir, ignore_errors=True)


def connections(page) -> int:
    return page.evaluate("window.__dj.log.filter((n) => n === 'djust:connected').length")


def wait_connected(page, times: int = 1) -> None:
    page.wait_for_function(
        "(n) => window.__dj.log.filter((e) => e === 'djust:connected').length >= n",
        arg=times,
        timeout=15_000,
    )


def open_live(page, url: str) -> None:
    page.goto(url)
    wait_connected(page)


def log_in(page, base_url: str, then: str) -> None:
    """Log in as the demo user through the login form, landing on ``then``."""
    page.goto(f"{base_url}/login/?next={then}")
    submit_login(page)
    page.wait_for_url(base_url + then)


def submit_login(page) -> None:
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit]")


def loads(page, path: str) -> int:
    return page.evaluate("(p) => Number(sessionStorage.getItem('loads:' + p) || 0)", path)


# -- auth mixins -----------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_the_login_page_and_never_sees_the_secret(tab, server):
    tab.goto(server.url + "/t/dj/secret/")
    tab.wait_for_url(re.compile(r"/login/\?next=/t/dj/secret/$"))
    expect(tab.get_by_role("heading", name="Log in")).to_be_visible()
    expect(tab.locator("input[name=username]")).to_be_visible()
    expect(tab.get_by_text("Secret for")).to_have_count(0)


def test_login_page_leads_back_to_the_secret_which_is_live(tab, server):
    tab.goto(server.url + "/t/dj/secret/")
    tab.wait_for_url(re.compile(r"/login/\?next="))
    submit_login(tab)
    tab.wait_for_url(server.url + "/t/dj/secret/")
    expect(tab.locator("#secret")).to_have_text("Secret for demo")
    wait_connected(tab)
    tab.click("#inc")
    expect(tab.locator("#n")).to_have_text("1")
    tab.click("#inc")
    expect(tab.locator("#n")).to_have_text("2")
    expect(tab.locator("#user")).to_have_text("demo")


def test_user_without_the_permission_gets_django_403(tab, server):
    log_in(tab, server.url, "/t/whoami/")
    response = tab.goto(server.url + "/t/dj/staff/")
    assert response.status == 403
    expect(tab.locator("h1")).to_have_text(FORBIDDEN)
    expect(tab.get_by_text("Staff page")).to_have_count(0)


# -- CSRF ------------------------------------------------------------------------------------


def post_plain_form(page) -> None:
    with page.expect_navigation() as navigation:
        page.click("#send")
    assert navigation.value.status == 200
    expect(page.locator("#posted")).to_have_text("posted hello")
    expect(page.get_by_text("CSRF verification failed")).to_have_count(0)


def test_csrf_form_posts_after_the_socket_connected(tab, server):
    open_live(tab, server.url + "/t/dj/form/")
    post_plain_form(tab)


def test_csrf_form_posts_after_a_live_render(tab, server):
    open_live(tab, server.url + "/t/dj/form/")
    tab.click("#inc")
    expect(tab.locator("#n")).to_have_text("1")
    post_plain_form(tab)


# -- language --------------------------------------------------------------------------------


def test_french_page_stays_french_after_connect_and_after_a_click(tab, server):
    tab.goto(server.url + "/fr/t/lang/7/")
    expect(tab.locator("#month")).to_have_text("janvier")
    wait_connected(tab)
    expect(tab.locator("#lang")).to_have_text("fr")
    expect(tab.locator("#month")).to_have_text("janvier")
    expect(tab.locator("#pk")).to_have_text("int 7")
    tab.click("#inc")
    expect(tab.locator("#n")).to_have_text("1")
    expect(tab.locator("#said")).to_have_text("Oui")
    expect(tab.locator("#lang")).to_have_text("fr")
    expect(tab.locator("#month")).to_have_text("janvier")
    expect(tab.locator("#pk")).to_have_text("int 7")


# -- sub-path --------------------------------------------------------------------------------


def test_page_under_a_sub_path_connects_and_updates(tab, sub_server):
    tab.goto(sub_server.url + "/sub/t/dj/greeting/")
    expect(tab.locator("#n")).to_have_text("0")
    wait_connected(tab)
    urls = tab.evaluate("window.__dj.sockets.map((s) => s.url)")
    assert urls and all("/sub/djust/ws/" in url for url in urls), urls
    tab.click("#inc")
    expect(tab.locator("#n")).to_have_text("1")


# -- handlers answer like views --------------------------------------------------------------


def test_handler_returning_a_redirect_navigates(tab, server):
    open_live(tab, server.url + "/t/dj/answers/")
    tab.click("#go")
    tab.wait_for_url(server.url + "/t/events/")


def test_handler_calling_self_redirect_navigates(tab, server):
    open_live(tab, server.url + "/t/dj/answers/")
    tab.click("#go-method")
    tab.wait_for_url(server.url + "/t/dj/greeting/")
    expect(tab.locator("#greeting")).to_have_text("hello")


def test_push_event_fires_a_window_event_with_the_payload(tab, server):
    open_live(tab, server.url + "/t/dj/answers/")
    tab.click("#notify")
    tab.wait_for_function("window.__dj.saved.length > 0", timeout=5_000)
    assert tab.evaluate("window.__dj.saved") == [{"n": 42}]
    assert tab.evaluate("window.__dj.errors") == []


def test_message_from_a_handler_shows_in_the_next_render_once(tab, server):
    open_live(tab, server.url + "/t/dj/answers/")
    tab.click("#save")
    expect(tab.locator("#messages li")).to_have_text(["Saved 1"])
    tab.click("#save")
    expect(tab.locator("#messages li")).to_have_text(["Saved 2"])
    expect(tab.get_by_text("Saved 1")).to_have_count(0)


def test_submit_sends_the_clicked_buttons_name_and_value(tab, server):
    open_live(tab, server.url + "/t/dj/submitter/")
    tab.click("#publish")
    expect(tab.locator("#chosen")).to_have_text("publish Draft")
    tab.click("#save")
    expect(tab.locator("#chosen")).to_have_text("save Draft")


# -- refusals --------------------------------------------------------------------------------


def test_closed_gate_answers_403_over_http(tab, server):
    log_in(tab, server.url, "/t/whoami/")
    tab.goto(server.url + "/t/dj/session/gate/open/")
    open_live(tab, server.url + "/t/dj/gate/")
    expect(tab.locator("#gate")).to_have_text("Gate open")
    assert tab.request.get(server.url + "/t/dj/session/gate/closed/").ok
    response = tab.reload()
    assert response.status == 403
    expect(tab.locator("h1")).to_have_text(FORBIDDEN)
    expect(tab.get_by_text("Gate open")).to_have_count(0)


def test_socket_refused_on_reconnect_reloads_once_to_the_403(tab, server):
    log_in(tab, server.url, "/t/whoami/")
    tab.goto(server.url + "/t/dj/session/gate/open/")
    open_live(tab, server.url + "/t/dj/gate/")
    expect(tab.locator("#gate")).to_have_text("Gate open")
    assert loads(tab, "/t/dj/gate/") == 1
    # The gate closes while the page is open; the next socket mount checks again.
    assert tab.evaluate("fetch('/t/dj/session/gate/closed/').then((r) => r.ok)")
    with tab.expect_navigation() as navigation:
        tab.evaluate("window.__dj.sockets.at(-1).close()")
    assert navigation.value.status == 403
    expect(tab.locator("h1")).to_have_text(FORBIDDEN)
    expect(tab.get_by_text("Gate open")).to_have_count(0)
    tab.wait_for_timeout(5_000)
    assert loads(tab, "/t/dj/gate/") == 2


def test_page_whose_socket_is_always_refused_reloads_once_not_in_a_loop(tab, server):
    tab.goto(server.url + "/t/dj/socket-refused/")
    expect(tab.locator("#served")).to_have_text("served over HTTP")
    tab.wait_for_function("Number(sessionStorage.getItem('loads:/t/dj/socket-refused/')) >= 2")
    tab.wait_for_function(
        "window.__dj.errors.some((e) => e.code === 'access_denied')", timeout=10_000
    )
    tab.wait_for_timeout(5_000)
    assert loads(tab, "/t/dj/socket-refused/") == 2
    expect(tab.locator("#served")).to_have_text("served over HTTP")


# -- reconnects ------------------------------------------------------------------------------


def test_click_while_disconnected_is_not_replayed_after_reconnect(tab, own_server):
    open_live(tab, own_server.url + "/t/dj/greeting/")
    tab.click("#inc")
    expect(tab.locator("#n")).to_have_text("1")
    own_server.stop()
    tab.wait_for_function("window.__dj.log.includes('djust:disconnected')", timeout=10_000)
    tab.click("#inc")
    own_server.start()
    wait_connected(tab, 2)
    # A fresh view: 0, and the click made while offline was not sent to it.
    expect(tab.locator("#n")).to_have_text("0")
    tab.wait_for_timeout(500)
    expect(tab.locator("#n")).to_have_text("0")
    errors = tab.evaluate("window.__dj.errors")
    assert [(e["code"], e["event"]) for e in errors] == [("disconnected", "inc")]
    tab.click("#inc")
    expect(tab.locator("#n")).to_have_text("1")
