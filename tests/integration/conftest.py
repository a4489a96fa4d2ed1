"""Talk to the test server with a real WebSocket client: ``live.connect()``, ``live.run()``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import urllib.request
from collections.abc import Coroutine
from typing import Any

import pytest

from djust.testing import LiveClient, WebSocketTransport, token_from_html


def fetch(url: str, cookie: str | None = None) -> str:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run`` on a thread of its own: Playwright's sync API may hold this thread's loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class Live:
    """Opens mounted clients against the server and closes them when the test body ends."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.clients: list[LiveClient] = []

    async def connect(
        self, path: str = "/t/uploads/", *, origin: str | None = None, mount: bool = True
    ) -> LiveClient:
        html = fetch(self.server.url + path)
        transport = await WebSocketTransport.connect(self.server.ws_url, origin or self.server.url)
        client = LiveClient(transport, timeout=15)
        client.token = token_from_html(html)  # type: ignore[attr-defined]
        self.clients.append(client)
        if mount:
            await client.mount(client.token)  # type: ignore[attr-defined]
        return client

    def run(self, body: Coroutine[Any, Any, Any]) -> Any:
        async def main() -> Any:
            try:
                return await body
            finally:
                for client in self.clients:
                    with contextlib.suppress(Exception):
                        await client.close()

        return run_async(main())


@pytest.fixture
def live(server) -> Live:
    return Live(server)


async def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(interval)
    return True
