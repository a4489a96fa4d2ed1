"""Server processes for the benchmark and what /proc says about them (CPU, memory, I/O)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "bench" / ".peer"
PEER_VENV = PEER_DIR / "venv"
PEER_PYTHON = PEER_VENV / "bin" / "python"
PEER_VERSION = "1.2.6"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- /proc ---------------------------------------------------------------------------------


def proc_status(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_io(pid: int) -> dict[str, int]:
    """/proc/PID/io: rchar and wchar count every read()/write() (files and sockets)."""
    values = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        values[key] = int(value)
    return values


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of the process, by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def own_cpu_seconds() -> float:
    """CPU time of this process (the benchmark's clients), all threads."""
    times = os.times()
    return times.user + times.system


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Meter:
    """Server CPU seconds, peak RSS growth and I/O between ``start()`` and ``stop()``."""

    pid: int
    baseline_rss: int = 0
    cpu0: float = 0.0
    client0: float = 0.0
    machine0: tuple[float, float] = (0.0, 0.0)
    io0: dict[str, int] = field(default_factory=dict)
    result: dict[str, float] = field(default_factory=dict)

    def start(self) -> Meter:
        self.baseline_rss = proc_status(self.pid, "VmRSS")
        reset_peak(self.pid)
        self.io0 = proc_io(self.pid)
        self.cpu0 = cpu_seconds(self.pid)
        self.client0 = own_cpu_seconds()
        self.machine0 = machine_busy()
        return self

    def stop(self) -> dict[str, float]:
        cpu = cpu_seconds(self.pid) - self.cpu0
        client = own_cpu_seconds() - self.client0
        busy, total = machine_busy()
        peak = proc_status(self.pid, "VmHWM")
        io = proc_io(self.pid)
        self.result = {
            "cpu_s": cpu,
            "client_cpu_s": client,
            # Share of all the machine's CPUs busy (anything, not only the benchmark) meanwhile.
            "machine_busy": (busy - self.machine0[0]) / max(1, total - self.machine0[1]),
            "rss_baseline_mib": self.baseline_rss / MIB,
            "rss_peak_mib": peak / MIB,
            "rss_growth_mib": (peak - self.baseline_rss) / MIB,
            "server_read_bytes": io["rchar"] - self.io0["rchar"],
            "server_written_bytes": io["wchar"] - self.io0["wchar"],
        }
        return self.result


# -- servers -------------------------------------------------------------------------------


class Server:
    """A server in a child process on 127.0.0.1, with a private state directory."""

    name = "server"

    def __init__(self) -> None:
        self.state = Path(tempfile.mkdtemp(prefix=f"djust-bench-{self.name}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.state / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def media(self) -> Path:
        return self.state / "media"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def start(self) -> Server:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    log = self.log.read_text()[-3000:]
                    raise RuntimeError(f"{self.name} exited: {log}") from None
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start in 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.state, ignore_errors=True)


class BenchServer(Server):
    """djust (this repository), the raw sink and the POST view: ``manage.py djust_serve``."""

    name = "djust"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEMO_STATE_DIR": str(self.state),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), str(ROOT / "demo")]),
        }

    def command(self) -> list[str]:
        return [
            sys.executable,
            str(ROOT / "demo" / "manage.py"),
            "djust_serve",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
        ]

    def start(self) -> Server:
        manage = [sys.executable, str(ROOT / "demo" / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=self.env(), check=True)
        return super().start()

    @property
    def upload_dir(self) -> Path:
        return self.state / "uploads"


def uvicorn_options() -> dict[str, Any]:
    """djust's uvicorn options (``djust.server``), for running the peer the same way."""
    sys.path[:0] = [str(ROOT / "src")]
    from djust.conf import DEFAULTS
    from djust.server import UVICORN_OPTIONS

    options = {**UVICORN_OPTIONS, "log_level": "warning"}
    # djust_serve sets the message limit from djust's own (bench.settings keeps the defaults).
    options.setdefault("ws_max_size", max(DEFAULTS["MAX_FRAME_SIZE"], DEFAULTS["MAX_TEXT_SIZE"]))
    return options


class PeerServer(Server):
    """djust 1.2.6 from PyPI in its own virtual environment, under uvicorn with djust's options."""

    name = "peer"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return {
            **env,
            "DJANGO_SETTINGS_MODULE": "bench.peer_site.settings",
            "PEER_STATE_DIR": str(self.state),
            "PYTHONPATH": str(ROOT),
        }

    def command(self) -> list[str]:
        options = json.dumps(uvicorn_options())
        return [str(PEER_PYTHON), "-m", "bench.peer_site.serve", str(self.port), options]

    def start(self) -> Server:
        ensure_peer()
        subprocess.run(
            [str(PEER_PYTHON), "-m", "django", "migrate", "-v0"],
            env=self.env(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return super().start()


def peer_installed() -> bool:
    if not PEER_PYTHON.exists():
        return False
    probe = subprocess.run(
        [str(PEER_PYTHON), "-c", "import importlib.metadata as m; print(m.version('djust'))"],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() == PEER_VERSION


def ensure_peer() -> None:
    """Install djust 1.2.6 (and the same uvicorn stack as ours) into bench/.peer/venv."""
    if peer_installed():
        return
    print(f"installing djust {PEER_VERSION} into {PEER_VENV} ...", flush=True)
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    same = [f"{name}=={metadata.version(name)}" for name in PINNED_LIKE_OURS]
    subprocess.run(
        [str(PEER_PYTHON), "-m", "pip", "install", "-q", f"djust=={PEER_VERSION}", *same],
        check=True,
    )


# The server stack the peer runs on: the versions installed in our own environment.
PINNED_LIKE_OURS = ["uvicorn", "websockets", "uvloop", "httptools"]


# -- the second connection -----------------------------------------------------------------


class Pinger:
    """``bench/pinger.py`` in its own process: ping samples of an idle connection."""

    def __init__(self, mode: str, server: Server) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.pinger", mode, server.url],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"pinger did not start: {line!r}")

    def stop(self) -> list[tuple[float, float]]:
        out, _ = self.process.communicate(timeout=30)
        return [tuple(s) for s in json.loads(out)]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
