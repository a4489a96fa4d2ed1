"""A private PostgreSQL server from Debian's binaries, for tests and ``bench/idle.py``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

# Debian's ``postgresql-NN`` package installs its programs here; ``scripts/test`` installs it.
BINARIES = Path("/usr/lib/postgresql")


def find_bindir() -> Path | None:
    """The ``bin`` directory of the newest PostgreSQL installed, or None."""
    versions = [p for p in BINARIES.glob("*/bin") if (p / "initdb").exists()]
    if not versions:
        return None
    return max(versions, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``postgres`` on 127.0.0.1 with a throw-away data directory and few connections.

    Run as the ``postgres`` system user when this process is root: the server refuses root.
    """

    def __init__(self, max_connections: int = 10) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise FileNotFoundError(
                f"no PostgreSQL in {BINARIES}: run scripts/test, which installs it"
            )
        self.bindir = bindir
        self.max_connections = max_connections
        self.port = _free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.workdir = Path(tempfile.mkdtemp(prefix="djust-postgres-"))
        self.data = self.workdir / "data"
        self.log = self.workdir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
            self._as = {"user": "postgres", "group": "postgres", "extra_groups": []}

    def start(self) -> PostgresServer:
        # No fsync anywhere: the data is thrown away, and tests on a slow disk stay fast.
        initdb = [self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust"]
        subprocess.run(
            [*initdb, "--no-sync", "-E", "UTF8", "--locale=C"],
            cwd=self.workdir,
            check=True,
            capture_output=True,
            **self._as,
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": self.workdir,
            "max_connections": self.max_connections,
            # Every connection counts: the tests watch how many djust holds.
            "superuser_reserved_connections": 0,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.bindir / "postgres", "-D", self.data, *options],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._as,
            )
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text()[-2000:]
                self.remove()
                raise RuntimeError(f"postgres did not start: {log}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        probe = subprocess.run(
            [
                self.bindir / "pg_isready",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
            ],
            capture_output=True,
        )
        return probe.returncode == 0

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql``, over a connection of its own that is closed afterwards."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    def client_connections(self) -> int:
        """Client connections open now, besides the one asking."""
        rows = self.query(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return int(rows[0][0])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGINT is the fast shutdown: clients are disconnected, nothing is waited for.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
