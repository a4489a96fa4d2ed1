"""One small page API over three browser engines, so a test runs the same in each of them.

- Chromium: Debian's ``chromium`` through Playwright (the ``browser`` fixture of conftest.py).
- Firefox: Debian's ``firefox-esr`` over WebDriver BiDi, which it speaks natively; the client is
  the ~60 lines of ``Bidi`` below on the ``websockets`` library (geckodriver is not packaged).
- WebKit: Debian's ``WebKitWebDriver`` with Selenium, its MiniBrowser on an ``Xvfb`` display.

Every page is fresh: its own browser context (Chromium), user context (Firefox) or, in WebKit,
the one window with its cookies cleared. Pages have no init scripts, because WebKit's driver
cannot add one: a test that listens to ``djust:*`` events attaches its listener after ``open``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ENGINES = ("chromium", "firefox", "webkit")
CHROMIUM = "/usr/bin/chromium"
# Chromium's flags wherever it is started, by Playwright (conftest.py) or by bench/cdp.py.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
WIDTH, HEIGHT = 1280, 900
SCREEN = f"{WIDTH}x{HEIGHT}x24"


class EngineError(Exception):
    """The page threw, or the driver refused a command."""


def _script(js: str, args: Sequence[Any]) -> str:
    """An async expression giving [truthy, value] of ``js`` as JSON; with args, ``js`` is called."""
    call = f"({js})(...{json.dumps(list(args))})" if args else f"({js})"
    # JSON both ways keeps the three drivers' value encodings out of the tests. JavaScript's own
    # truth travels with the value: an element or [] is true there and would be false here.
    return f"(async () => {{ const v = await {call}; return JSON.stringify([!!v, v ?? null]); }})()"


# Files made in the page and dragged as a person drags them from a file manager. Page scripts
# cannot start a real drag, so the engine's own DataTransfer travels in synthetic drag events.
_DRAG_FILES = """(files) => {
  window.__dragged = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
    window.__dragged.items.add(new File([bytes], f.name, { type: f.type }));
  }
}"""
# relatedTarget stays null, as Firefox and WebKit leave it on dragleave.
_FIRE_DRAG = """(selector, type) => {
  const el = document.querySelector(selector);
  if (!el) throw new Error("no element " + selector);
  const dt = window.__dragged;
  const e = new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt });
  if (e.dataTransfer !== dt) Object.defineProperty(e, "dataTransfer", { value: dt });
  el.dispatchEvent(e);
}"""


class Page:
    """A tab in one engine; the methods tests use, whatever drives the engine underneath."""

    engine = ""

    # -- what each engine implements

    def open(self, url: str) -> None:
        """Navigate and wait for the page's load event."""
        raise NotImplementedError

    def _evaluate(self, script: str) -> str:
        raise NotImplementedError

    def _click(self, selector: str) -> None:
        raise NotImplementedError

    def _fill(self, selector: str, text: str) -> None:
        raise NotImplementedError

    def _set_files(self, selector: str, paths: list[str]) -> None:
        raise NotImplementedError

    def screenshot(self, path: str | Path) -> Path:
        """A PNG of the viewport."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- the same in every engine

    def evaluate(self, js: str, *args: Any) -> Any:
        """The value of the expression ``js`` (a promise is awaited); with args, ``js(...args)``."""
        return json.loads(self._evaluate(_script(js, args)))[1]

    def wait_for(self, predicate: str, *args: Any, timeout: float = 10.0) -> Any:
        """Poll the expression (or function of ``args``) until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        value: Any = None
        last: Exception | None = None
        while True:
            try:
                truthy, value = json.loads(self._evaluate(_script(predicate, args)))
                if truthy:
                    return value
                last = None
            except EngineError as error:  # a navigation in progress, or a page not there yet
                last = error
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.engine}: still {value!r} after {timeout} s: {predicate} {args}"
                ) from last
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """Click the middle of the element with the engine's own pointer, once it is visible."""
        self.wait_for(
            "(s) => { const el = document.querySelector(s); if (!el || !el.getClientRects().length)"
            " return false; el.scrollIntoView({ block: 'center' }); return true; }",
            selector,
        )
        self._click(selector)

    def fill(self, selector: str, text: str) -> None:
        """Replace the field's value by typing ``text`` into it."""
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})")
        self._fill(selector, text)

    def set_files(self, selector: str, paths: Sequence[str | Path]) -> None:
        """Choose files in a file input, as its dialog would."""
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})")
        self._set_files(selector, [str(Path(p).resolve()) for p in paths])

    def drag_files(self, selector: str, files: Sequence[tuple[str, bytes, str]]) -> None:
        """Drag files (name, bytes, MIME type) over the element: dragenter, then dragover."""
        encoded = [
            {"name": name, "data": base64.b64encode(data).decode(), "type": kind}
            for name, data, kind in files
        ]
        self.evaluate(_DRAG_FILES, encoded)
        self.fire_drag(selector, "dragenter")
        self.fire_drag(selector, "dragover")

    def fire_drag(self, selector: str, event: str) -> None:
        """Fire one drag event (dragenter, dragover, dragleave, drop) of the files being dragged."""
        self.evaluate(_FIRE_DRAG, selector, event)

    def drop(self, selector: str) -> None:
        """Drop the files being dragged onto the element."""
        self.fire_drag(selector, "drop")

    def text_of(self, selector: str) -> str | None:
        """The text the element shows (``innerText``), or None when there is no such element."""
        return self.evaluate(
            "(s) => { const el = document.querySelector(s); return el ? el.innerText : null; }",
            selector,
        )

    def box_of(self, selector: str) -> dict[str, float] | None:
        """The element's box in CSS pixels (x, y, width, height), or None when it is absent."""
        return self.evaluate(
            "(s) => { const el = document.querySelector(s); if (!el) return null;"
            " const r = el.getBoundingClientRect();"
            " return { x: r.x, y: r.y, width: r.width, height: r.height }; }",
            selector,
        )

    @property
    def url(self) -> str:
        return self.evaluate("location.href")


# -- Chromium -------------------------------------------------------------------------------


class ChromiumPage(Page):
    engine = "chromium"

    def __init__(self, browser: Any) -> None:
        from playwright.sync_api import Error

        self._error = Error
        self.context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        self.page = self.context.new_page()

    def open(self, url: str) -> None:
        self.page.goto(url)

    def _evaluate(self, script: str) -> str:
        try:
            return self.page.evaluate(script)
        except self._error as error:
            raise EngineError(str(error)) from None

    def _click(self, selector: str) -> None:
        self.page.click(selector)

    def _fill(self, selector: str, text: str) -> None:
        self.page.fill(selector, text)

    def _set_files(self, selector: str, paths: list[str]) -> None:
        self.page.set_input_files(selector, paths)

    def screenshot(self, path: str | Path) -> Path:
        self.page.screenshot(path=str(path))
        return Path(path)

    def close(self) -> None:
        self.context.close()


# -- Firefox over WebDriver BiDi ------------------------------------------------------------


class Bidi:
    """A WebDriver BiDi session: one command at a time, its answer matched by id."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.stack = contextlib.ExitStack()
        self.socket = self.stack.enter_context(connect(url, max_size=None, open_timeout=10))
        self.ids = itertools.count(1)

    def send(self, method: str, timeout: float = 60.0, **params: Any) -> dict:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.0, deadline - time.monotonic())))
            if message.get("id") != ident:
                continue  # an event: this session subscribes to none, but may still see some
            if message.get("type") == "error":
                raise EngineError(f"{method}: {message['error']}: {message.get('message')}")
            return message["result"]

    def close(self) -> None:
        self.stack.close()


class Firefox:
    """One ``firefox-esr --headless`` process for the session, with a fresh profile."""

    def __init__(self) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="djust-firefox-"))
        # Nothing to fetch or to restore: no network here, and each run starts clean.
        (self.profile / "user.js").write_text(
            'user_pref("browser.shell.checkDefaultBrowser", false);\n'
            'user_pref("browser.sessionstore.resume_from_crash", false);\n'
            'user_pref("app.update.auto", false);\n'
            'user_pref("datareporting.policy.dataSubmissionEnabled", false);\n'
            'user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);\n'
        )
        self.log = open(self.profile / "stderr.log", "w+b")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [
                FIREFOX,
                "--headless",
                "--no-remote",
                "--remote-debugging-port=0",
                "--profile",
                str(self.profile),
                "--width",
                str(WIDTH),
                "--height",
                str(HEIGHT),
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"},
        )
        url = self._listening(30.0)
        self.bidi = Bidi(url + "/session")
        self.bidi.send("session.new", capabilities={"alwaysMatch": {"acceptInsecureCerts": True}})

    def _listening(self, timeout: float) -> str:
        """The BiDi WebSocket URL that Firefox prints on stderr."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(rb"WebDriver BiDi listening on (ws://\S+)", self.log_text())
            if found:
                return found.group(1).decode()
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.quit()
        raise RuntimeError(f"firefox-esr did not start: {self.log_text()[-2000:]!r}")

    def log_text(self) -> bytes:
        return (self.profile / "stderr.log").read_bytes()

    def new_page(self) -> FirefoxPage:
        return FirefoxPage(self.bidi)

    def quit(self) -> None:
        try:
            if hasattr(self, "bidi"):
                self.bidi.send("browser.close", timeout=10)
                self.bidi.close()
        except Exception:
            pass  # the process is ended below either way
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class FirefoxPage(Page):
    engine = "firefox"

    def __init__(self, bidi: Bidi) -> None:
        self.bidi = bidi
        # A user context of its own: cookies and storage do not leak between tests.
        self.user_context = bidi.send("browser.createUserContext")["userContext"]
        self.context = bidi.send(
            "browsingContext.create", type="tab", userContext=self.user_context
        )["context"]

    def open(self, url: str) -> None:
        self.bidi.send("browsingContext.navigate", context=self.context, url=url, wait="complete")

    def _call(self, expression: str) -> dict:
        result = self.bidi.send(
            "script.evaluate",
            expression=expression,
            target={"context": self.context},
            awaitPromise=True,
            resultOwnership="none",
        )
        if result["type"] == "exception":
            details = result["exceptionDetails"]
            raise EngineError(details.get("text") or json.dumps(details)[:500])
        return result["result"]

    def _evaluate(self, script: str) -> str:
        return self._call(script)["value"]

    def _element(self, selector: str) -> dict:
        node = self._call(f"document.querySelector({json.dumps(selector)})")
        if node.get("type") != "node":
            raise EngineError(f"no element {selector}")
        return {"sharedId": node["sharedId"]}

    def _actions(self, *sources: dict) -> None:
        self.bidi.send("input.performActions", context=self.context, actions=list(sources))

    def _click(self, selector: str) -> None:
        move = {"type": "pointerMove", "x": 0, "y": 0}
        move["origin"] = {"type": "element", "element": self._element(selector)}
        self._actions(
            {
                "type": "pointer",
                "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": [
                    move,
                    {"type": "pointerDown", "button": 0},
                    {"type": "pointerUp", "button": 0},
                ],
            }
        )

    def _fill(self, selector: str, text: str) -> None:
        self.evaluate(
            "(s) => { const el = document.querySelector(s); el.focus(); el.select(); }", selector
        )
        keys = [{"type": "keyDown", "value": "\ue003"}, {"type": "keyUp", "value": "\ue003"}]
        for char in text:
            keys += [{"type": "keyDown", "value": char}, {"type": "keyUp", "value": char}]
        self._actions({"type": "key", "id": "keyboard", "actions": keys})

    def _set_files(self, selector: str, paths: list[str]) -> None:
        self.bidi.send(
            "input.setFiles", context=self.context, element=self._element(selector), files=paths
        )

    def screenshot(self, path: str | Path) -> Path:
        data = self.bidi.send("browsingContext.captureScreenshot", context=self.context)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            self.bidi.send("browsingContext.close", context=self.context)
        finally:
            self.bidi.send("browser.removeUserContext", userContext=self.user_context)


# -- WebKit through WebKitWebDriver ---------------------------------------------------------


class WebKit:
    """An ``Xvfb`` display and one MiniBrowser under ``WebKitWebDriver`` for the session."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        read, write = os.pipe()
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", SCREEN],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        # Xvfb writes the number, then a newline: closing the pipe before the newline kills it.
        with os.fdopen(read, "rb") as pipe:
            display = pipe.readline().decode().strip()
        if not display:
            self.xvfb.wait()
            raise RuntimeError("Xvfb did not start")
        options = Options()
        options.binary_location = MINIBROWSER
        options.add_argument("--automation")
        # An explicit driver path: Selenium then never looks for (or downloads) one itself.
        service = Service(
            executable_path=WEBKIT_DRIVER,
            env={**os.environ, "DISPLAY": ":" + display},
            log_output=os.environ.get("DJUST_WEBKIT_LOG", subprocess.DEVNULL),
        )
        try:
            with warnings.catch_warnings():  # Selenium's own use of a deprecated argument
                warnings.simplefilter("ignore", DeprecationWarning)
                self.driver = webdriver.WebKitGTK(options=options, service=service)
        except Exception:
            self.xvfb.terminate()
            self.xvfb.wait()
            raise
        self.driver.set_window_size(WIDTH, HEIGHT)
        self.driver.set_script_timeout(120)

    def new_page(self) -> WebKitPage:
        return WebKitPage(self.driver)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            self.xvfb.terminate()
            self.xvfb.wait()


class WebKitPage(Page):
    engine = "webkit"

    def __init__(self, driver: Any) -> None:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By

        self.driver = driver
        self._by = By.CSS_SELECTOR
        self._error = WebDriverException
        # A tab of its own (a fresh sessionStorage); the cookie jar is shared, see close().
        self.base = driver.current_window_handle
        driver.switch_to.new_window("window")

    def open(self, url: str) -> None:
        self.driver.get(url)

    def _evaluate(self, script: str) -> str:
        try:
            ok, value = self.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                f"{script}.then((v) => done([true, v]), (e) => done([false, String(e)]));"
            )
        except self._error as error:
            raise EngineError(error.msg or str(error)) from None
        if not ok:
            raise EngineError(value)
        return value

    def _element(self, selector: str) -> Any:
        return self.driver.find_element(self._by, selector)

    def _click(self, selector: str) -> None:
        self._element(selector).click()

    def _fill(self, selector: str, text: str) -> None:
        field = self._element(selector)
        field.clear()
        field.send_keys(text)

    def _set_files(self, selector: str, paths: list[str]) -> None:
        self._element(selector).send_keys("\n".join(paths))

    def screenshot(self, path: str | Path) -> Path:
        self.driver.save_screenshot(str(path))
        return Path(path)

    def close(self) -> None:
        try:
            self.driver.delete_all_cookies()  # those of the site the test ended on
        finally:
            self.driver.close()
            self.driver.switch_to.window(self.base)


# -- fixtures -------------------------------------------------------------------------------


def _require(path: str, package: str) -> None:
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: run scripts/test, which installs {package}")


@pytest.fixture(scope="session")
def firefox() -> Iterator[Firefox]:
    """Debian's Firefox ESR, started once, driven over WebDriver BiDi."""
    pytest.importorskip("websockets.sync.client")
    _require(FIREFOX, "firefox-esr")
    browser = Firefox()
    yield browser
    browser.quit()


@pytest.fixture(scope="session")
def webkit() -> Iterator[WebKit]:
    """WebKitGTK's MiniBrowser, started once under Xvfb, driven by WebKitWebDriver."""
    pytest.importorskip("selenium")
    _require(WEBKIT_DRIVER, "webkit2gtk-driver")
    _require(MINIBROWSER, "webkit2gtk-driver")
    if not shutil.which("Xvfb"):
        pytest.fail("Xvfb is missing: run scripts/test, which installs xvfb")
    browser = WebKit()
    yield browser
    browser.quit()


@pytest.fixture(
    params=[pytest.param(name, marks=getattr(pytest.mark, name), id=name) for name in ENGINES]
)
def engine_page(request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page in each engine in turn: Chromium, Firefox, WebKit."""
    name = request.param
    if name == "chromium":
        page: Page = ChromiumPage(request.getfixturevalue("browser"))
    else:
        page = request.getfixturevalue(name).new_page()
    yield page
    page.close()
