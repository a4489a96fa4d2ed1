"""Logging out in Chromium: the user's other tabs reload and show what a logged-out visitor sees."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect

PASSWORD = "tabs-pw-1"
CONNECTED = """
window.__connected = false;
window.addEventListener("djust:connected", () => { window.__connected = true; });
"""
# What a logout button in the site's header does: a POST form with the CSRF token.
LOG_OUT = """
() => {
  const token = document.cookie.match(/csrftoken=([^;]+)/)[1];
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/t/logout/";
  form.innerHTML = `<input type="hidden" name="csrfmiddlewaretoken" value="${token}">
    <button id="log-out" type="submit">Log out</button>`;
  document.body.append(form);
}
"""


@pytest.fixture(scope="module")
def tabs_user(server) -> str:
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_user('tabs', password={PASSWORD!r})\n",
    )
    return "tabs"


def open_documents(tab, server) -> None:
    tab.add_init_script(CONNECTED)
    tab.goto(server.url + "/documents/")
    tab.wait_for_function("window.__connected === true", timeout=10_000)


def test_logout_in_one_tab_ends_the_other_tabs_session(browser, server, tabs_user):
    context = browser.new_context()
    try:
        first, second = context.new_page(), context.new_page()
        first.goto(server.url + "/login/?next=/documents/")
        first.fill("input[name=username]", tabs_user)
        first.fill("input[name=password]", PASSWORD)
        first.click("button[type=submit]")
        first.wait_for_url(re.compile(r"/documents/$"))
        open_documents(second, server)

        first.evaluate(LOG_OUT)
        first.click("#log-out")
        # The logout's redirect, or the reload of its own ended page: the login page either way.
        first.wait_for_url(re.compile(r"/login/"))

        # Nobody touches the second tab: its socket ends and it reloads by itself.
        expect(second).to_have_url(re.compile(r"/login/\?next=/documents/$"), timeout=10_000)
        expect(second.get_by_role("heading", name="Log in")).to_be_visible()
        expect(second.locator("input[name=username]")).to_be_visible()
    finally:
        context.close()
