"""Fixtures: a real server process on 127.0.0.1 and, for browser tests, Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.engines import (  # noqa: F401 - engine_page, firefox, webkit: fixtures for three engines
    CHROMIUM,
    CHROMIUM_ARGS,
    engine_page,
    firefox,
    webkit,
)

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The test project served by ``manage.py djust_serve`` in a child process."""

    def __init__(self, state_dir: Path, **env: str) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/djust/ws/"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DEMO_STATE_DIR": str(state_dir),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), str(ROOT / "demo")]),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = state_dir / "server.log"

    @property
    def upload_dir(self) -> Path:
        return self.state_dir / "uploads"

    @property
    def media_dir(self) -> Path:
        return self.state_dir / "media"

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, str(ROOT / "demo" / "manage.py"), *args], env=self.env, check=True
        )

    def start(self) -> Server:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "demo" / "manage.py"),
                    "djust_serve",
                    f"127.0.0.1:{self.port}",
                    "--log-level",
                    "warning",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        raise RuntimeError("server did not start in 30 s")

    def stop(self, sig: int | None = None) -> None:
        if self.process and self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def temp_files(self) -> list[str]:
        """What uploads left in the upload directory (its id, which every worker shares, stays)."""
        if not self.upload_dir.exists():
            return []
        return sorted(p.name for p in self.upload_dir.glob("*") if p.name != ".djust-id")


def make_server(**env: str) -> Server:
    state = Path(tempfile.mkdtemp(prefix="djust-test-"))
    server = Server(state, **env)
    server.manage("migrate", "--no-input", "-v0")
    return server


@pytest.fixture(scope="session")
def server():
    """The shared test server (one process for the session)."""
    srv = make_server().start()
    yield srv
    srv.stop()
    shutil.rmtree(srv.state_dir, ignore_errors=True)


@pytest.fixture
def servers():
    """``servers(**env)`` starts a server with those settings, stopped when the test ends."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = make_server(**env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        shutil.rmtree(server.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def resume_server():
    """A server of the module's own that keeps dropped uploads for a minute, to resume them."""
    srv = make_server(TEST_RESUME_TTL="60").start()
    yield srv
    srv.stop()
    shutil.rmtree(srv.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def own_server():
    """A server of the test module's own, which its tests may stop and start again."""
    srv = make_server().start()
    yield srv
    srv.stop()
    shutil.rmtree(srv.state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never downloads a browser)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run scripts/test, which installs it")
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    yield pg
    context.close()
