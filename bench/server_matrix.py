"""Each ASGI server users run, with its defaults and with djust's recommended settings.

    .venv/bin/python bench/server_matrix.py                 # 200 MiB, 3 interleaved runs (~20 min)
    .venv/bin/python bench/server_matrix.py --mib 16 --runs 1

Starts the bench project (``bench.settings``: djust's upload view and the raw WebSocket sink)
under every server below, each from its own command line, then uploads the same file to each in
turn, run after run, and reports medians. The client is djust's Python one sending what djust.js
sends: runs of whole 64 KiB chunks up to the ``max_frame_size`` of ``mounted``, paced by acks,
then the ``save`` event (its SHA-256 checked against the source's). Its socket offers
permessage-deflate as every browser's does, and reports it in ``mount`` as djust.js does: under a
server that accepts it, this client compresses every byte as a browser would (zlib's default
level). Where no deflate was negotiated, the raw sink then takes the same messages with no
protocol and no acks: the server's own ceiling.

Writes bench/.work/server_matrix.json; docs/deployment.md ("Servers") quotes a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from websockets.asyncio.client import connect  # noqa: E402

from bench import clients  # noqa: E402
from bench.servers import MIB, BenchServer, Meter, Server, proc_status  # noqa: E402
from djust.testing import LiveClient, WebSocketTransport, token_from_html  # noqa: E402
from djust.transport.protocol import FRAME_RUN, HEADER_SIZE  # noqa: E402

GIB = 1024 * MIB
APP = "bench.asgi:application"
MANAGE = str(ROOT / "demo" / "manage.py")
_HEADER = struct.Struct(">BIQ")  # djust's frame header: type, ref, offset (protocol.md, 5)
GUNICORN = ["-m", "gunicorn", "-b", "127.0.0.1:{port}", "--no-control-socket"]


@dataclass(frozen=True)
class Variant:
    """One server with one set of settings, as a command line (``{port}`` filled in)."""

    server: str
    settings: str
    command: tuple[str, ...]
    offers_deflate: bool = True  # the client, as browsers do; False: a proxy removed the offer


VARIANTS = [
    Variant("uvicorn", "defaults", ("-m", "uvicorn", APP, "--port", "{port}")),
    Variant("uvicorn", "djust_serve", (MANAGE, "djust_serve", "127.0.0.1:{port}")),
    Variant(
        "gunicorn + uvicorn worker",
        "defaults",
        (*GUNICORN, "-k", "uvicorn_worker.UvicornWorker", APP),
    ),
    Variant(
        "gunicorn + uvicorn worker",
        "-k djust.workers.UvicornWorker",
        (*GUNICORN, "-k", "djust.workers.UvicornWorker", APP),
    ),
    Variant("gunicorn, its own asgi worker", "defaults", (*GUNICORN, "-k", "asgi", APP)),
    Variant("daphne", "defaults", ("-m", "daphne", "-p", "{port}", APP)),
    Variant("hypercorn", "defaults", ("-m", "hypercorn", "-b", "127.0.0.1:{port}", APP)),
    Variant(
        "hypercorn",
        "no deflate offered (a proxy removes Sec-WebSocket-Extensions)",
        ("-m", "hypercorn", "-b", "127.0.0.1:{port}", APP),
        offers_deflate=False,
    ),
    Variant(
        "granian",
        "defaults (--interface asgi)",
        ("-m", "granian", "--interface", "asgi", "--port", "{port}", APP),
    ),
]


class MatrixServer(BenchServer):
    """The bench project under one variant's command line."""

    def __init__(self, variant: Variant) -> None:
        self.name = variant.server.split()[0].rstrip(",")
        super().__init__()
        self.variant = variant

    def command(self) -> list[str]:
        return [sys.executable, *(a.format(port=self.port) for a in self.variant.command)]

    def worker_pid(self) -> int:
        """The process that serves the socket: a gunicorn or granian worker, or the server."""
        pid = self.pid
        while children := [
            child
            for task in Path(f"/proc/{pid}/task").iterdir()  # any thread may have forked it
            for child in (task / "children").read_text().split()
        ]:
            # One worker each; hypercorn also starts multiprocessing's resource tracker.
            pid = max((int(c) for c in children), key=lambda c: proc_status(c, "VmRSS"))
        return pid


# -- the client ----------------------------------------------------------------------------


async def open_socket(server: Server, path: str, deflate: bool) -> tuple[Any, bool]:
    """A WebSocket like a browser's; whether the server accepted permessage-deflate."""
    ws = await connect(
        server.url.replace("http", "ws", 1) + path,
        origin=server.url,
        compression="deflate" if deflate else None,
        max_size=None,
    )
    return ws, "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")


async def mounted_client(server: Server, deflate: bool) -> tuple[LiveClient, bool]:
    with urllib.request.urlopen(server.url + "/bench/upload/") as response:
        token = token_from_html(response.read().decode())
    ws, negotiated = await open_socket(server, "/djust/ws/", deflate)
    client = LiveClient(WebSocketTransport(ws), timeout=300)
    await client.send({"t": "mount", "token": token, **({"deflate": True} if negotiated else {})})
    reply = await client.wait_for(lambda m: m["t"] in ("mounted", "error"))
    assert reply["t"] == "mounted", reply
    return client, negotiated


def run_size(max_frame_size: int, chunk: int) -> int:
    """The bytes of one run, as djust.js sizes it: whole chunks that fit in a message."""
    return max(1, (max_frame_size - HEADER_SIZE) // chunk) * chunk


async def djust_upload(client: LiveClient, source: Path, name: str, media: Path) -> clients.Outcome:
    """``source`` in runs within the server's window, then ``save``; like djust.js does."""
    size = source.stat().st_size
    outcome = clients.Outcome(start=time.monotonic())
    reply = await client.register("big", name, size, "application/octet-stream")
    assert reply["t"] == "upload_registered", reply
    ref, window = reply["ref"], reply["window"]
    chunk = client.uploads["big"]["chunk_size"]
    per_run = run_size(client.max_frame_size, chunk)
    ws = client.transport.ws  # type: ignore[attr-defined]

    def ended(m: dict[str, Any]) -> bool:
        return m.get("ref") == ref and m["t"] in ("upload_ack", "upload_complete", "upload_error")

    sent = acked = 0
    with open(source, "rb", buffering=0) as f:
        while True:
            while sent < size:
                end = min(size, acked + window, sent + per_run)
                if end < size:
                    end = sent + (end - sent) // chunk * chunk
                if end <= sent:
                    break
                frame = bytearray(HEADER_SIZE + end - sent)
                _HEADER.pack_into(frame, 0, FRAME_RUN, int(ref), sent)
                f.readinto(memoryview(frame)[HEADER_SIZE:])
                await ws.send(frame)
                sent = end
            message = await client.wait_for(ended)
            if message["t"] == "upload_ack":
                acked, window = message["offset"], message.get("window", window)
            elif message["t"] == "upload_complete":
                break
            else:
                raise AssertionError(f"upload failed: {message}")
    done = time.monotonic()
    outcome.phases["upload"] = (outcome.start, done)
    await client.event("save", slot="big")
    outcome.phases["consume"] = (done, time.monotonic())
    path, digest, stored = clients.saved_line(client.html)
    assert stored == size, (stored, size)
    outcome.stored, outcome.server_sha256 = media / path, digest
    return outcome


async def raw_upload(server: Server, source: Path, per_run: int, deflate: bool) -> float:
    """The same messages to the raw sink; seconds until it counted them all."""
    size = source.stat().st_size
    ws, _ = await open_socket(server, "/bench/sink/", deflate)
    start = time.monotonic()
    sent = 0
    with open(source, "rb", buffering=0) as f:
        while sent < size:
            n = min(per_run, size - sent)
            frame = bytearray(HEADER_SIZE + n)
            _HEADER.pack_into(frame, 0, FRAME_RUN, 1, sent)
            f.readinto(memoryview(frame)[HEADER_SIZE:])
            await ws.send(frame)
            sent += n
    await ws.send("end")
    counted = int(await ws.recv())
    seconds = time.monotonic() - start
    await ws.close()
    assert counted == size + -(-size // per_run) * HEADER_SIZE, (counted, size)
    return seconds


# -- one measurement -----------------------------------------------------------------------


async def measure(server: MatrixServer, source: Path, digest: str, run: int) -> dict[str, Any]:
    size = source.stat().st_size
    deflate = server.variant.offers_deflate
    client, negotiated = await mounted_client(server, deflate)
    per_run = run_size(client.max_frame_size, client.uploads["big"]["chunk_size"])
    meter = Meter(server.worker_pid()).start()
    try:
        outcome = await djust_upload(
            client, source, f"matrix-{run}-{server.port}.bin", server.media
        )
    finally:
        measured = meter.stop()
        await client.close()
    assert clients.sha256_file(outcome.stored) == digest == outcome.server_sha256
    outcome.stored.unlink()
    raw_mb_s = raw_cpu = None
    if not negotiated:  # with deflate, compressing bounds both paths alike
        meter = Meter(server.worker_pid()).start()
        raw_mb_s = size / await raw_upload(server, source, per_run, deflate) / 1e6
        raw_cpu = meter.stop()["cpu_s"] * GIB / size
    return {
        "run": run,
        "deflate": negotiated,
        "max_frame_size": client.max_frame_size,
        "mb_s": size / outcome.total / 1e6,
        "mb_s_transfer": size / outcome.phase("upload") / 1e6,
        "cpu_s_per_gib": measured["cpu_s"] * GIB / size,
        "client_cpu_s_per_gib": measured["client_cpu_s"] * GIB / size,
        "raw_mb_s": raw_mb_s,
        "raw_cpu_s_per_gib": raw_cpu,
        "machine_busy": measured["machine_busy"],
    }


def summarize(variant: Variant, rows: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = [row[key] for row in rows if row[key] is not None]
        return statistics.median(values) if values else None

    return {
        "server": variant.server,
        "settings": variant.settings,
        "command": " ".join(variant.command),
        "deflate": rows[0]["deflate"],
        "max_frame_size": rows[0]["max_frame_size"],
        "runs": len(rows),
        **{
            key: median(key)
            for key in (
                "mb_s",
                "mb_s_transfer",
                "cpu_s_per_gib",
                "client_cpu_s_per_gib",
                "raw_mb_s",
                "raw_cpu_s_per_gib",
                "machine_busy",
            )
        },
        "all": rows,
    }


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| server | settings | deflate | dj-upload MB/s (upload only) | server CPU-s/GiB "
        "| client CPU-s/GiB | raw sink MB/s | machine busy |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['server']} | {r['settings']} | {'yes' if r['deflate'] else 'no'} "
            f"| **{r['mb_s']:.0f}** ({r['mb_s_transfer']:.0f}) | {r['cpu_s_per_gib']:.2f} "
            f"| {r['client_cpu_s_per_gib']:.2f} | {number(r['raw_mb_s'])} "
            f"| {r['machine_busy'] * 100:.0f} % |"
        )
    return "\n".join(lines)


def make_file(path: Path, mib: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))
    return path


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    chosen = [v for v in VARIANTS if not args.only or any(o in v.server for o in args.only)]
    servers = [MatrixServer(v) for v in chosen]
    rows: dict[Variant, list[dict[str, Any]]] = {v: [] for v in chosen}
    with tempfile.TemporaryDirectory(prefix="djust-matrix-") as tmp:
        source = make_file(Path(tmp) / "source.bin", args.mib)
        digest = clients.sha256_file(source)
        try:
            for server in servers:
                server.start()
            for run in range(args.runs):  # interleaved: each server once per round
                for server in servers:
                    row = await measure(server, source, digest, run)
                    rows[server.variant].append(row)
                    print(
                        f"run {run} {server.variant.server} [{server.variant.settings}]: "
                        f"{row['mb_s']:.1f} MB/s (raw {number(row['raw_mb_s'])}),"
                        f" deflate={row['deflate']}, {row['cpu_s_per_gib']:.2f} CPU-s/GiB",
                        flush=True,
                    )
        finally:
            for server in servers:
                server.stop()
    return [summarize(v, rows[v]) for v in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=200, help="file size (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (default 3)")
    parser.add_argument("--only", nargs="*", help="servers whose name contains one of these")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / ".work" / "server_matrix.json"
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"mib": args.mib, "results": results}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
