"""What a text-frame flood does to an honest neighbour's ping, with and without text budgets.

    .venv/bin/python bench/flood.py                 # every scenario, 8 s each
    .venv/bin/python bench/flood.py --seconds 4 --only after

Starts the test project under ``djust_serve`` twice: ``before`` with the text budgets turned
off (``MAX_TEXT_FRAMES_PER_SECOND`` and ``..._PER_PROCESS`` = 0: only the 20,000 frames a second
of ``MAX_FRAMES_PER_SECOND`` bound a connection, as before text budgets), and ``after`` with the
defaults (200 a second per connection, 5,000 per process). In each scenario flooders mount
``/t/events/`` and send pings as fast as they are allowed, from raw sockets with pre-built
frames (a flooder costs its machine next to nothing, as a real one would), while an honest
client in another process pings every 20 ms over ``websockets`` and records each round trip.
Prints the honest round trips (median, p99, max), the server's CPU and what became of the
flooders; the figures are in docs/security.md ("Text frames").
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from djust.testing import token_from_html  # noqa: E402
from tests.conftest import Server, make_server  # noqa: E402

PAGE = "/t/events/"
TICK = 0.005  # the flooders' sending period
OFF = {"TEST_MAX_TEXT_FPS": "0", "TEST_MAX_PROCESS_TEXT_FPS": "0"}

# (server, flooder sockets, pings a second per socket)
SCENARIOS = [
    ("before", 0, 0),
    ("before", 1, 19_000),
    ("before", 50, 190),
    ("before", 200, 190),
    ("after", 0, 0),
    ("after", 1, 19_000),
    ("after", 1, 190),
    ("after", 50, 190),
    ("after", 200, 190),
]


# -- a flooder that costs nothing: raw frames on a raw socket --------------------------------


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (with the all-zero mask, so the payload stays as it is)."""
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


class RawFlooder:
    """One mounted socket that sends pre-built ping frames and drops whatever comes back."""

    PING = client_frame(b'{"t":"ping","id":1}')

    def __init__(self, server: Server) -> None:
        token = token_from_html(fetch(server.url + PAGE))
        self.sock = socket.create_connection(("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /djust/ws/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {server.url}\r\n\r\n"
            ).encode()
        )
        self._read_until(b"\r\n\r\n")
        self.sock.sendall(client_frame(json.dumps({"t": "mount", "token": token}).encode()))
        self._read_until(b'"mounted"')
        self.sock.setblocking(False)
        self.queued = 0  # frames handed to send()
        self.sent_bytes = 0
        self._pending = b""
        self.answers = 0
        self.closed = False
        self.close_code: int | None = None
        self._buffer = b""

    def _read_until(self, marker: bytes) -> None:
        data = b""
        while marker not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"the server closed the socket: {data[-200:]!r}")
            data += chunk

    @property
    def sent(self) -> int:
        """Frames that left for the server."""
        return self.sent_bytes // len(self.PING)

    def send(self, count: int) -> None:
        """Queue ``count`` more frames (while the socket keeps up) and send what it takes."""
        if self.closed:
            return
        if count > 0 and len(self._pending) < 64 * 1024:
            self._pending += self.PING * count
            self.queued += count
        try:
            written = self.sock.send(self._pending) if self._pending else 0
        except BlockingIOError:
            return  # the server reads no faster: that is the point
        except OSError:
            self.closed = True
            return
        self._pending = self._pending[written:]
        self.sent_bytes += written

    def drain(self) -> None:
        while not self.closed:
            try:
                chunk = self.sock.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError:
                self.closed = True
                return
            if not chunk:
                self.closed = True
                return
            self._parse(self._buffer + chunk)

    def _parse(self, data: bytes) -> None:
        """Count the server's frames (unmasked) and note the code of its close frame."""
        at = 0
        while len(data) - at >= 2:
            opcode, size, head = data[at] & 0x0F, data[at + 1] & 0x7F, 2
            if size == 126:
                if len(data) - at < 4:
                    break
                size, head = int.from_bytes(data[at + 2 : at + 4], "big"), 4
            elif size == 127:
                if len(data) - at < 10:
                    break
                size, head = int.from_bytes(data[at + 2 : at + 10], "big"), 10
            if len(data) - at < head + size:
                break
            if opcode == 0x8 and size >= 2:
                self.close_code = int.from_bytes(data[at + head : at + head + 2], "big")
            elif opcode == 0x1:
                self.answers += 1
            at += head + size
        self._buffer = data[at:]


def flood(server: Server, sockets: int, rate: float, seconds: float) -> list[RawFlooder]:
    flooders = [RawFlooder(server) for _ in range(sockets)]
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * elapsed)
        for flooder in flooders:
            flooder.send(min(due - flooder.queued, int(rate * TICK * 4) + 1))
            flooder.drain()
        time.sleep(TICK)
    return flooders


# -- the honest neighbour, in a process of its own -------------------------------------------

HONEST = """
import asyncio, json, sys, time
sys.path[:0] = [{src!r}]
from websockets.asyncio.client import connect
from djust.testing import token_from_html
import urllib.request

async def main(base, seconds):
    with urllib.request.urlopen(base + {page!r}) as response:
        token = token_from_html(response.read().decode())
    ws = await connect(base.replace("http", "ws", 1) + "/djust/ws/", origin=base,
                       compression=None)
    await ws.send(json.dumps({{"t": "mount", "token": token}}))
    while json.loads(await ws.recv())["t"] != "mounted":
        pass
    print("ready", flush=True)
    sys.stdin.readline()
    rtts, n, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        n += 1
        sent = time.monotonic()
        await ws.send(json.dumps({{"t": "ping", "id": n}}))
        while True:
            message = json.loads(await ws.recv())
            if message.get("t") == "pong" and message.get("id") == n:
                break
        rtts.append(time.monotonic() - sent)
        await asyncio.sleep(0.02)
    await ws.close()
    print(json.dumps(rtts), flush=True)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(server: Server, sockets: int, rate: float, seconds: float) -> dict[str, object]:
    code = HONEST.format(src=str(ROOT / "src"), page=PAGE)
    honest = subprocess.Popen(
        [sys.executable, "-c", code, server.url, str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert honest.stdout is not None and honest.stdin is not None
    assert honest.stdout.readline().strip() == "ready"
    assert server.process is not None
    cpu = cpu_seconds(server.process.pid)
    honest.stdin.write("go\n")
    honest.stdin.flush()
    started = time.monotonic()
    flooders = flood(server, sockets, rate, seconds) if sockets else []
    if not sockets:
        time.sleep(seconds)
    busy = (cpu_seconds(server.process.pid) - cpu) / (time.monotonic() - started)
    rtts = sorted(json.loads(honest.stdout.readline()))
    honest.wait()
    for flooder in flooders:
        flooder.sock.close()
    ms = [r * 1000 for r in rtts]
    return {
        "pings": len(ms),
        "median_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "max_ms": ms[-1],
        "server_cpu": busy,
        "flood_sent_per_s": sum(f.sent for f in flooders) / seconds,
        "flood_answered_per_s": sum(f.answers for f in flooders) / seconds,
        "flooders_closed": sum(f.close_code == 4429 for f in flooders),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--only", choices=["before", "after"])
    args = parser.parse_args()
    print(
        f"{'server':7} {'flooders':>8} {'rate/s':>7} | {'median':>8} {'p99':>8} {'max':>8} "
        f"| {'cpu':>5} {'sent/s':>8} {'answered/s':>10} {'closed':>6}"
    )
    for name in ("before", "after"):
        if args.only and name != args.only:
            continue
        server = make_server(**(OFF if name == "before" else {})).start()
        try:
            for scenario, sockets, rate in SCENARIOS:
                if scenario != name:
                    continue
                r = run(server, sockets, rate, args.seconds)
                print(
                    f"{name:7} {sockets:>8} {rate:>7} | {r['median_ms']:>6.1f}ms "
                    f"{r['p99_ms']:>6.1f}ms {r['max_ms']:>6.0f}ms | {r['server_cpu']:>5.0%} "
                    f"{r['flood_sent_per_s']:>8.0f} {r['flood_answered_per_s']:>10.0f} "
                    f"{r['flooders_closed']:>6}",
                    flush=True,
                )
        finally:
            server.stop()
            shutil.rmtree(server.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
