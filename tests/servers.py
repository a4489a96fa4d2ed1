"""The test project under each ASGI server users run, started from its own command line."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from djust.testing import LiveClient, ServerError, WebSocketTransport, token_from_html
from tests.conftest import ROOT, Server

APP = "demo_project.asgi:application"
MANAGE = str(ROOT / "demo" / "manage.py")

# Each server as the command line a user types, with the server's own defaults ("{port}" is
# filled in). djust_serve and gunicorn with djust's worker are djust's recommended settings.
COMMANDS: dict[str, list[str]] = {
    "uvicorn": ["-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", "{port}"],
    "djust_serve": [MANAGE, "djust_serve", "127.0.0.1:{port}"],
    "gunicorn": ["-m", "gunicorn", "-b", "127.0.0.1:{port}", "-k", "uvicorn_worker.UvicornWorker"],
    "gunicorn-djust": [
        "-m",
        "gunicorn",
        "-b",
        "127.0.0.1:{port}",
        "-k",
        "djust.workers.UvicornWorker",
    ],
    "gunicorn-asgi": ["-m", "gunicorn", "-b", "127.0.0.1:{port}", "-k", "asgi"],
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", APP],
    "runserver": [MANAGE, "runserver", "127.0.0.1:{port}", "--noreload"],
    "hypercorn": ["-m", "hypercorn", "-b", "127.0.0.1:{port}", APP],
    # granian's default interface is its own (RSGI): Django needs ASGI.
    "granian": [
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        APP,
    ],
}
for _name in ("gunicorn", "gunicorn-djust", "gunicorn-asgi"):
    # gunicorn's control socket has one default path for every gunicorn of the machine.
    COMMANDS[_name] += ["--no-control-socket", APP]
# Settings besides tests.settings: runserver is daphne's once daphne is an installed app.
SETTINGS = {"runserver": "tests.daphne_settings"}


class ServerProcess(Server):
    """The test project under ``name``'s command line, in a state directory it may share."""

    def __init__(self, name: str, state_dir: Path, **env: str) -> None:
        super().__init__(
            state_dir, DJANGO_SETTINGS_MODULE=SETTINGS.get(name, "tests.settings"), **env
        )
        self.name = name
        self.log = state_dir / f"{name}-{self.port}.log"

    def start(self) -> ServerProcess:
        command = [sys.executable, *(a.format(port=self.port) for a in COMMANDS[self.name])]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_text()[-2000:]}") from None
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start in 30 s")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class Servers:
    """Starts each server once, on first use, in one state directory; stops them all at the end."""

    def __init__(self) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="djust-servers-"))
        self.running: dict[tuple[str, tuple[tuple[str, str], ...]], ServerProcess] = {}
        self.started: list[ServerProcess] = []
        self.migrated = False

    def get(self, name: str, **env: str) -> ServerProcess:
        """The running server ``name`` with ``env``, started on first use."""
        key = (name, tuple(sorted(env.items())))
        if key not in self.running:
            self.running[key] = self.start(name, **env)
        return self.running[key]

    def start(self, name: str, **env: str) -> ServerProcess:
        """A new process of server ``name``, which no other test has used."""
        server = ServerProcess(name, self.state, **env)
        if not self.migrated:
            server.manage("migrate", "--no-input", "-v0")
            self.migrated = True
        self.started.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.started:  # all at once: some take seconds to shut down
            if server.process is not None and server.process.poll() is None:
                server.process.terminate()
        for server in self.started:
            server.stop()
        shutil.rmtree(self.state, ignore_errors=True)


class Browserlike:
    """A ``LiveClient`` on a socket that offers permessage-deflate, as every browser's does."""

    def __init__(self, client: LiveClient, extensions: str) -> None:
        self.client = client
        self.extensions = extensions  # what the server accepted, as WebSocket.extensions says

    @property
    def deflate(self) -> bool:
        return "permessage-deflate" in self.extensions

    @classmethod
    async def connect(cls, server: Server, path: str = "/t/uploads/") -> Browserlike:
        html = await asyncio.to_thread(fetch, server.url + path)
        ws = await connect(server.ws_url, origin=server.url, max_size=None)  # offers deflate
        client = LiveClient(WebSocketTransport(ws), timeout=20)
        client.token = token_from_html(html)  # type: ignore[attr-defined]
        return cls(client, ws.response.headers.get("Sec-WebSocket-Extensions", ""))

    async def mount(self) -> dict[str, Any]:
        """Mount as djust.js does, reporting deflate; returns ``mounted``."""
        message: dict[str, Any] = {"t": "mount", "token": self.client.token}  # type: ignore[attr-defined]
        if self.deflate:
            message["deflate"] = True
        await self.client.send(message)
        reply = await self.client.wait_for(lambda m: m["t"] in ("mounted", "error"))
        if reply["t"] == "error":
            raise ServerError(reply)
        return reply


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()
