"""Drive Chromium over the Chrome DevTools Protocol without its Network domain.

Playwright enables the Network domain on every page, and with it Chromium copies every binary
WebSocket message it sends, base64-encoded, to the driver: ArrayBuffer sends then run at a
quarter of their speed (measured: 56 against 201 MB/s for 64 KiB messages), so a benchmark
driven that way measures the instrumentation. This driver uses only the Target, Page, Runtime
and DOM domains, as a user's browser with DevTools closed would run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


class Chromium:
    """One headless Chromium process; ``page()`` opens a fresh tab in a fresh browser context."""

    def __init__(self, executable: str, args: list[str]) -> None:
        self.profile = tempfile.mkdtemp(prefix="djust-bench-chromium-")
        self.process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                *args,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._ids = itertools.count(1)
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self.version = ""

    async def start(self) -> Chromium:
        url = await asyncio.to_thread(self._devtools_url)
        self.ws = await connect(url, max_size=None, compression=None)
        self._reader = asyncio.create_task(self._read())
        self.version = (await self.call("Browser.getVersion"))["product"].split("/")[-1]
        return self

    def _devtools_url(self) -> str:
        assert self.process.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if match := _LISTENING.search(line):
                return match.group(1).decode()
            if not line and self.process.poll() is not None:
                break
        raise RuntimeError("Chromium did not start its DevTools endpoint")

    async def _read(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            message = json.loads(raw)
            waiter = self._waiters.pop(message.get("id", 0), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        message_id = next(self._ids)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[message_id] = waiter
        command: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        await self.ws.send(json.dumps(command))
        reply = await waiter
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def page(self) -> Page:
        context = (await self.call("Target.createBrowserContext"))["browserContextId"]
        target = (
            await self.call("Target.createTarget", url="about:blank", browserContextId=context)
        )["targetId"]
        session = (await self.call("Target.attachToTarget", targetId=target, flatten=True))[
            "sessionId"
        ]
        page = Page(self, session, context)
        await page.call("Page.enable")  # for init scripts; the Network domain stays off
        return page

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Chromium, session: str, context: str) -> None:
        self.browser, self.session, self.context = browser, session, context

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.call(method, self.session, **params)

    async def add_init_script(self, source: str) -> None:
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=source)

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def run(self, function: str, *args: Any) -> Any:
        """Call the JavaScript ``function`` with ``args`` (JSON); its value, awaited."""
        return await self.evaluate(f"({function})(...{json.dumps(list(args))})")

    async def evaluate(self, expression: str) -> Any:
        """``expression``'s value, awaited if it is a promise."""
        reply = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page error: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, condition: str, timeout: float = 60.0, poll: float = 0.02) -> None:
        deadline = time.monotonic() + timeout
        while not await self.evaluate(f"Boolean({condition})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {condition}")
            await asyncio.sleep(poll)

    async def set_input_files(self, selector: str, path: str) -> None:
        """As a user picking ``path``: the input's ``input`` and ``change`` events fire."""
        root = (await self.call("DOM.getDocument"))["root"]["nodeId"]
        node = (await self.call("DOM.querySelector", nodeId=root, selector=selector))["nodeId"]
        await self.call("DOM.setFileInputFiles", files=[path], nodeId=node)

    async def inner_html(self, selector: str) -> str:
        return await self.evaluate(f"document.querySelector({json.dumps(selector)}).innerHTML")

    async def close(self) -> None:
        await self.browser.call("Target.disposeBrowserContext", browserContextId=self.context)
