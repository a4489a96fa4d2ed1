"""Benchmarks: start the demo server on 127.0.0.1 and measure it; results go to docs/performance.md.

    .venv/bin/python bench/run.py [--size-mib 100] [--runs 3]

Measures the click round trip (median of 200 events) and uploads of one file through djust's
protocol (register, windowed chunks, acks, completion, consume into storage): MB/s, server CPU
seconds per GiB, and the server's peak RSS growth. Every upload is checked byte-identical.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

from djust.testing import LiveClient, WebSocketTransport, token_from_html  # noqa: E402

MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class BenchServer:
    def __init__(self) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="djust-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DEMO_STATE_DIR": str(self.state),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), str(ROOT / "demo")]),
        }
        manage = [sys.executable, str(ROOT / "demo" / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=self.env, check=True)
        self.process = subprocess.Popen(
            [*manage, "djust_serve", f"127.0.0.1:{self.port}", "--log-level", "warning"],
            env=self.env,
        )
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.state, ignore_errors=True)

    async def client(self, path: str) -> LiveClient:
        with urllib.request.urlopen(self.url + path) as response:
            token = token_from_html(response.read().decode())
        transport = await WebSocketTransport.connect(
            f"ws://127.0.0.1:{self.port}/djust/ws/", self.url
        )
        client = LiveClient(transport, timeout=120)
        await client.mount(token)
        return client


async def click_latency(server: BenchServer, n: int = 200) -> list[float]:
    client = await server.client("/counter/")
    for _ in range(20):  # warm up
        await client.event("increment")
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await client.event("increment")
        samples.append((time.perf_counter() - start) * 1000)
    await client.close()
    return samples


async def one_upload(server: BenchServer, content: bytes, digest: str) -> dict[str, float]:
    client = await server.client("/t/uploads/")
    pid = server.process.pid
    baseline = proc_status(pid, "VmRSS")
    reset_peak(pid)
    cpu0 = cpu_seconds(pid)
    start = time.perf_counter()
    result = await client.upload("big", "file.bin", content, "application/octet-stream")
    elapsed = time.perf_counter() - start
    assert result.status == "complete", result
    await client.event("save", slot="big")
    total = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu0
    peak = proc_status(pid, "VmHWM")
    saved = server.state / "media" / "saved" / "file.bin"
    with open(saved, "rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == digest, "upload not byte-identical"
    saved.unlink()
    await client.close()
    return {
        "mb_s": len(content) / elapsed / 1e6,
        "mb_s_with_consume": len(content) / total / 1e6,
        "cpu_s_per_gib": cpu * (1024**3) / len(content),
        "rss_growth_mib": (peak - baseline) / MIB,
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


async def main(size_mib: int, runs: int, out: Path) -> None:
    server = BenchServer()
    try:
        clicks = await click_latency(server)
        content = os.urandom(size_mib * MIB)
        digest = hashlib.sha256(content).hexdigest()
        uploads = [await one_upload(server, content, digest) for _ in range(runs)]
    finally:
        server.stop()
    clicks.sort()
    lines = [
        "# Performance",
        "",
        f"Generated by `.venv/bin/python bench/run.py --size-mib {size_mib} --runs {runs}` on "
        f"{time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, loopback. The machine is shared and noisy: medians.",
        "",
        "## Click round trip (event → re-rendered HTML), 200 events, Python WebSocket client",
        "",
        "| median | p99 |",
        "|---|---|",
        f"| {median(clicks):.2f} ms | {clicks[int(len(clicks) * 0.99) - 1]:.2f} ms |",
        "",
        f"## One {size_mib} MiB upload through djust's protocol ({runs} runs, median)",
        "",
        "Register, 64 KiB chunks in a flow-control window, acks, completion; then the `save` "
        "event consumes the entry into `default_storage`. Byte-identical (SHA-256) every run.",
        "",
        "| MB/s (transfer) | MB/s (incl. consume) | server CPU s/GiB | server peak RSS growth |",
        "|---|---|---|---|",
        f"| {median([u['mb_s'] for u in uploads]):.0f} "
        f"| {median([u['mb_s_with_consume'] for u in uploads]):.0f} "
        f"| {median([u['cpu_s_per_gib'] for u in uploads]):.2f} "
        f"| {median([u['rss_growth_mib'] for u in uploads]):.1f} MiB |",
        "",
    ]
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args()
    asyncio.run(main(args.size_mib, args.runs, args.out))
