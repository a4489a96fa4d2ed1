"""What Chromium's console says about the server's WebSocket settings."""

from __future__ import annotations

import pytest

from tests.servers import Servers

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def servers():
    running = Servers()
    yield running
    running.close()


def console_after_connecting(page, url: str) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.add_init_script(
        "window.addEventListener('djust:connected', () => (window.__connected = true));"
    )
    page.goto(url + "/t/uploads/")
    page.wait_for_function("window.__connected === true", timeout=10_000)
    return messages


def test_console_names_the_fix_when_the_socket_negotiated_permessage_deflate(page, servers):
    server = servers.get("uvicorn", DEMO_DEBUG="1")  # uvicorn accepts Chromium's offer of deflate
    messages = console_after_connecting(page, server.url)
    warnings = [m for m in messages if "PERMESSAGE-DEFLATE IS ON" in m]
    assert len(warnings) == 1
    assert "--ws-per-message-deflate false" in warnings[0]


def test_console_stays_quiet_under_djusts_settings(page, servers):
    server = servers.get("djust_serve", DEMO_DEBUG="1")
    assert not [m for m in console_after_connecting(page, server.url) if "djust:" in m]
