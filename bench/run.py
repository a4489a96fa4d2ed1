"""The upload benchmark: djust against the transport ceiling, plain Django and djust 1.2.6.

    .venv/bin/python bench/run.py            # the full run (~4 minutes); docs/performance.md
    .venv/bin/python bench/run.py --quick    # small files, one run each; into bench/.work/

Starts the servers on 127.0.0.1 and measures the same files through

1. djust's upload path (``djust.testing.LiveClient``: register, windowed chunks, acks,
   completion, then the ``save`` event that consumes the entry into ``default_storage``);
2. a raw ASGI WebSocket sink in the same uvicorn process (the transport ceiling);
3. a plain Django multipart POST view in the same process (SHA-256 + ``default_storage``);
4. djust 1.2.6 from PyPI, installed into bench/.peer/venv, served by uvicorn with djust's options.

For each: MB/s (median), server CPU seconds per GiB, server peak RSS growth and the ping round
trip of a second, idle connection during the upload and the consume. Then Chromium (dj-upload
against a fetch POST), a renamed 1 GiB .exe, ten concurrent uploads and a py-spy profile of the
djust server at 1 GiB, and the cost of the disk writes themselves (through the page cache and
with O_DIRECT). Every stored file is checked byte-identical (SHA-256).

Writes docs/performance.md and bench/results.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import json
import math
import mmap
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import clients, report, resume, servers  # noqa: E402
from bench.cdp import Chromium  # noqa: E402
from bench.servers import MIB, BenchServer, Meter, PeerServer, Pinger  # noqa: E402
from tests.engines import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

GIB = 1024 * MIB
WORK = ROOT / "bench" / ".work"
EXE_HEADER = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8\x00" + bytes(14)


def log(*args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


# -- files ---------------------------------------------------------------------------------


def make_file(path: Path, mib: int, head: bytes = b"") -> Path:
    """``mib`` MiB of os.urandom, written 1 MiB at a time."""
    with open(path, "wb") as f:
        for i in range(mib):
            block = os.urandom(MIB)
            if i == 0 and head:
                block = head + block[len(head) :]
            f.write(block)
    return path


def warm_page_cache(directory: Path, gib: int = 4) -> None:
    """Write and delete ``gib`` GiB once before measuring anything.

    On this VM, page-cache writes into memory the kernel has not used recently cost far more
    than rewriting recently freed pages (1 GiB in 64 KiB writes: 0.24-0.27 CPU-s usually, once
    2.8 CPU-s). The first runs of whichever path writes most would otherwise pay for it.
    """
    block = bytes(MIB)
    path = directory / "warm.bin"
    with open(path, "wb") as f:
        for _ in range(gib * 1024):
            f.write(block)
    path.unlink()


def check_stored(outcome: clients.Outcome, digest: str) -> None:
    """The stored file has the source's SHA-256 (and so says the server); then remove it."""
    assert outcome.stored is not None
    actual = clients.sha256_file(outcome.stored)
    assert actual == digest, f"{outcome.stored} is not byte-identical to the source"
    assert outcome.server_sha256 in (None, digest), "the server computed another SHA-256"
    outcome.stored.unlink()


# -- statistics ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ping_stats(rtts: list[float]) -> dict[str, float]:
    if not rtts:
        return {"n": 0}
    ms = [r * 1000 for r in rtts]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms),
    }


def overlapping(samples: list[tuple[float, float]], spans: list[tuple[float, float]]) -> list:
    """Round trips (sent_at, rtt) that overlap any of the spans."""
    return [rtt for sent, rtt in samples if any(sent < b and sent + rtt > a for a, b in spans)]


# -- one measured upload -------------------------------------------------------------------


def record(path: str, size: int, run: int, outcome: clients.Outcome, meter: dict) -> dict:
    total = outcome.total
    result = {
        "path": path,
        "size_mib": size // MIB,
        "run": run,
        "seconds": total,
        "mb_s": size / total / 1e6,
        "phases": {k: [a, b] for k, (a, b) in outcome.phases.items()},
        "upload_seconds": outcome.phase("upload"),
        "mb_s_transfer": size / outcome.phase("upload") / 1e6,
        "consume_seconds": outcome.phase("consume") if "consume" in outcome.phases else None,
        "cpu_s_per_gib": meter["cpu_s"] * GIB / size,
        "client_cpu_s_per_gib": meter["client_cpu_s"] * GIB / size,
        **meter,
        "byte_identical": True,
        "consume_probes": outcome.probes,
    }
    return result


async def measure_one(
    path: str, server: servers.Server, source: Path, digest: str, run: int
) -> dict[str, Any]:
    size = source.stat().st_size
    name = f"{path}-{size // MIB}-{run}.bin"
    if path == "djust":
        client = await clients.djust_client(server.url)
        probe = await clients.djust_client(server.url, "/counter/")
        meter = Meter(server.pid).start()
        outcome = await clients.djust_upload(client, source, name, media=server.media, probe=probe)
        measured = meter.stop()
        await client.close()
        await probe.close()
        assert outcome.error is None, outcome.error
    elif path == "raw":
        meter = Meter(server.pid).start()
        outcome = await clients.raw_upload(server.url, source)
        measured = meter.stop()
    elif path == "post":
        meter = Meter(server.pid).start()
        outcome = await asyncio.to_thread(
            clients.post_upload, server.url, source, name, media=server.media
        )
        measured = meter.stop()
    else:
        client = await clients.PeerClient.connect(server.url)
        meter = Meter(server.pid).start()
        outcome = await clients.peer_upload(client, source, name, media=server.media)
        measured = meter.stop()
        await client.close()
    if outcome.stored is not None:
        check_stored(outcome, digest)
    result = record(path, size, run, outcome, measured)
    log(
        f"  {path:6} {size // MIB:5} MiB run {run}: {result['mb_s']:7.1f} MB/s"
        f" (transfer {result['mb_s_transfer']:.1f}), {result['cpu_s_per_gib']:.2f} CPU-s/GiB,"
        f" RSS +{result['rss_growth_mib']:.1f} MiB; client {result['client_cpu_s_per_gib']:.2f}"
        f" CPU-s/GiB, machine {result['machine_busy'] * 100:.0f} % busy"
    )
    return result


# -- sections ------------------------------------------------------------------------------


def _write_file(directory: Path, mib: int, *, direct: bool) -> dict[str, float]:
    """``mib`` MiB in 1 MiB page-aligned blocks through djust's TempFileWriter; then deleted."""
    from djust.uploads.writers import TempFileWriter

    block = mmap.mmap(-1, MIB)
    block.write(os.urandom(MIB))
    writer = TempFileWriter(directory, direct=direct)
    writer.open()
    started, cpu = time.monotonic(), time.thread_time()
    with memoryview(block) as view:
        for _ in range(mib):
            writer.write(view)
        writer.finish()
    seconds, cpu = time.monotonic() - started, time.thread_time() - cpu
    stayed_direct = writer.direct
    writer.close("cancel")  # removes the file
    block.close()
    return {
        "mb_s": mib * MIB / seconds / 1e6,
        "cpu_s_per_gib": cpu * 1024 / mib,
        "direct": stayed_direct,
    }


def disk_section(directory: Path, mib: int, runs: int) -> dict[str, Any]:
    """Cached against O_DIRECT writes of one file, into warm and into cold memory.

    "Cold": after 3 s idle, when this VM has handed the memory freed by the last deleted file
    back to the host (free page reporting) and the next page-cache writes fault it in again.
    "Warm": right after writing and deleting a file of the same size.
    """
    out: dict[str, Any] = {"mib": mib, "runs": runs}
    for memory in ("cold", "warm"):
        for mode in ("cached", "direct"):
            rows = []
            for _ in range(runs):
                if memory == "cold":
                    time.sleep(3)
                else:
                    _write_file(directory, mib, direct=False)
                rows.append(_write_file(directory, mib, direct=mode == "direct"))
            out[f"{mode}/{memory}"] = {
                "mb_s": statistics.median(r["mb_s"] for r in rows),
                "cpu_s_per_gib": statistics.median(r["cpu_s_per_gib"] for r in rows),
                "direct": all(r["direct"] for r in rows),
            }
            log(f"  {mode} writes, {memory} memory: {out[f'{mode}/{memory}']}")
    return out


async def click_latency(server: BenchServer, n: int = 200) -> list[float]:
    client = await clients.djust_client(server.url, "/counter/")
    for _ in range(20):
        await client.event("increment")
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await client.event("increment")
        samples.append((time.perf_counter() - start) * 1000)
    await client.close()
    return samples


async def idle_ping(server: servers.Server, mode: str, seconds: float = 2.0) -> dict[str, Any]:
    """The pinger alone: its latency at rest and what its pings cost the server."""
    pinger = Pinger(mode, server)
    meter = Meter(server.pid).start()
    await asyncio.sleep(seconds)
    used = meter.stop()
    samples = pinger.stop()
    stats = ping_stats([r for _, r in samples])
    return {**stats, "server_cpu_ms_per_s": used["cpu_s"] * 1000 / seconds}


async def throughput_section(
    server: servers.Server,
    mode: str,
    paths: list[str],
    files: dict[int, tuple[Path, str]],
    runs: dict[int, int],
) -> tuple[list[dict], dict[str, Any]]:
    """Runs for every size, paths interleaved per round; the pinger records throughout."""
    results: list[dict] = []
    pings: dict[str, Any] = {}
    for size_mib, (source, digest) in files.items():
        pinger = Pinger(mode, server)
        group: list[dict] = []
        try:
            for run in range(runs[size_mib]):
                for path in paths:
                    group.append(await measure_one(path, server, source, digest, run))
        finally:
            samples = pinger.stop()
        results.extend(group)
        for path in paths:
            mine = [r for r in group if r["path"] == path]
            for phase in ("upload", "consume"):
                spans = [tuple(r["phases"][phase]) for r in mine if phase in r["phases"]]
                if spans:
                    rtts = overlapping(samples, spans)
                    if phase == "consume":
                        rtts += [rtt for r in mine for rtt in r.get("consume_probes", [])]
                    stats = ping_stats(rtts)
                    pings[f"{path}/{size_mib}/{phase}"] = stats
    return results, pings


async def concurrent_section(
    server: BenchServer, source: Path, digest: str, n: int = 10
) -> dict[str, Any]:
    size = source.stat().st_size
    connections = [await clients.djust_client(server.url) for _ in range(n)]
    pinger = Pinger("djust", server)
    meter = Meter(server.pid).start()
    start = time.monotonic()
    outcomes = await asyncio.gather(
        *(
            clients.djust_upload(c, source, f"concurrent-{i}.bin", media=server.media)
            for i, c in enumerate(connections)
        )
    )
    end = time.monotonic()
    measured = meter.stop()
    samples = pinger.stop()
    for c in connections:
        await c.close()
    for outcome in outcomes:
        assert outcome.error is None, outcome.error
        check_stored(outcome, digest)
    result = {
        "connections": n,
        "size_mib": size // MIB,
        "seconds": end - start,
        "aggregate_mb_s": n * size / (end - start) / 1e6,
        "per_connection_mb_s": [size / o.total / 1e6 for o in outcomes],
        "cpu_s_per_gib": measured["cpu_s"] * GIB / (n * size),
        "rss_growth_mib": measured["rss_growth_mib"],
        "byte_identical": n,
        "ping": ping_stats(overlapping(samples, [(start, end)])),
    }
    log(f"  10 concurrent: {result['aggregate_mb_s']:.1f} MB/s aggregate")
    return result


async def exe_section(server: BenchServer, source: Path) -> dict[str, Any]:
    """A 1 GiB Windows program named x.jpg into an accept=".jpg" slot."""
    client = await clients.djust_client(server.url)
    meter = Meter(server.pid).start()
    outcome = await clients.djust_upload(
        client, source, "x.jpg", media=server.media, slot="jpg", content_type="image/jpeg"
    )
    at_error = meter.stop()
    await asyncio.sleep(0.5)  # late chunks arrive and are dropped
    left = sorted(p.name for p in server.upload_dir.iterdir())
    await client.close()
    assert outcome.error is not None, "the renamed .exe was accepted"
    result = {
        "file_mib": source.stat().st_size // MIB,
        "code": outcome.error["code"],
        "message": outcome.error["message"],
        "client_sent_before_error": outcome.sent,
        "server_read_by_then": at_error["server_read_bytes"],
        "server_wrote_by_then": at_error["server_written_bytes"],
        "seconds_to_error": outcome.phase("upload"),
        "temp_files_left": left,
    }
    log(
        f"  exe: {result['code']} after the client sent {outcome.sent / MIB:.2f} MiB"
        f" (server read {at_error['server_read_bytes'] / MIB:.2f} MiB by then)"
    )
    return result


BROWSER_INIT = """
window.__bench = {connected: false};
addEventListener("djust:connected", () => { window.__bench.connected = true; });
addEventListener("change", (e) => {
  if (e.target && e.target.id.startsWith("live-file")) window.__bench.start = performance.now();
}, true);
addEventListener("djust:upload:error", (e) => { window.__bench.error = e.detail; });
addEventListener("djust:upload:progress", (e) => {
  const b = window.__bench;
  if (e.detail.status !== "complete" || b.complete) return;
  b.complete = performance.now();
  const before = document.getElementById("saved").textContent;
  new MutationObserver((records, observer) => {
    if (document.getElementById("saved").textContent !== before) {
      b.saved = performance.now();
      observer.disconnect();
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
  document.getElementById("save-" + e.detail.uploadName).click();
});
"""

BROWSER_POST = """
async () => {
  const file = document.getElementById("post-file").files[0];
  const form = new FormData();
  form.append("file", file, file.name);
  const start = performance.now();
  const response = await fetch("/bench/post/", {method: "POST", body: form});
  const body = await response.json();
  return {ms: performance.now() - start, status: response.status, ...body};
}
"""

# The browser's own WebSocket ceiling: the raw sink fed from the page with the same frames as
# djust's (13-byte header + chunk), at most 2 MiB buffered like djust's window; each frame either
# a Blob of header + File.slice, or an ArrayBuffer cut from 1 MiB reads of the file.
BROWSER_SINK = """
async ([chunk, blobs]) => {
  const file = document.getElementById("post-file").files[0];
  const ws = new WebSocket("ws://" + location.host + "/bench/sink/");
  await new Promise((resolve) => { ws.onopen = resolve; });
  const header = new Uint8Array(13);
  const read = Math.max(chunk, 1024 * 1024);
  const start = performance.now();
  let slice = null, sliceStart = 0;
  for (let offset = 0; offset < file.size; offset += chunk) {
    while (ws.bufferedAmount >= 2 * 1024 * 1024) await new Promise((r) => setTimeout(r, 0));
    const end = Math.min(offset + chunk, file.size);
    if (blobs) {
      ws.send(new Blob([header, file.slice(offset, end)]));
      continue;
    }
    if (!slice || end > sliceStart + slice.length) {
      sliceStart = offset;
      slice = new Uint8Array(
        await file.slice(offset, Math.min(file.size, offset + read)).arrayBuffer());
    }
    const frame = new Uint8Array(13 + end - offset);
    frame.set(slice.subarray(offset - sliceStart, end - sliceStart), 13);
    ws.send(frame);
  }
  const counted = new Promise((resolve) => { ws.onmessage = (e) => resolve(Number(e.data)); });
  ws.send("end");
  const bytes = await counted;
  const ms = performance.now() - start;
  ws.close();
  return {ms, bytes, frames: Math.ceil(file.size / chunk)};
}
"""
SINK_KINDS = {  # chunk size, one Blob per frame
    "sink_64k_blob": (64 * 1024, True),
    "sink_64k_buffer": (64 * 1024, False),
    "sink_1m_blob": (MIB, True),
}

BROWSER_KINDS = report.BROWSER_KINDS


async def browser_section(
    server: BenchServer, source: Path, digest: str, runs: int
) -> dict[str, Any]:
    size = source.stat().st_size
    results: dict[str, list[dict]] = {kind: [] for kind in BROWSER_KINDS}
    browser = await Chromium(CHROMIUM, CHROMIUM_ARGS).start()
    version = browser.version
    try:
        for run in range(runs):
            for kind in BROWSER_KINDS:
                page = await browser.page()
                await page.add_init_script(BROWSER_INIT)
                await page.goto(server.url + "/bench/upload/")
                await page.wait_for("window.__bench.connected")
                if not kind.startswith("djust"):
                    await page.set_input_files("#post-file", str(source))
                meter = Meter(server.pid).start()
                stored = None
                if kind.startswith("djust"):
                    field = "#live-file" if kind == "djust" else "#live-file-1m"
                    await page.set_input_files(field, str(source))
                    await page.wait_for("window.__bench.saved || window.__bench.error", 600)
                    bench = await page.evaluate("window.__bench")
                    assert "error" not in bench, bench["error"]
                    seconds = (bench["saved"] - bench["start"]) / 1000
                    upload = (bench["complete"] - bench["start"]) / 1000
                    path, server_digest, _ = clients.saved_line(await page.inner_html("[dj-root]"))
                    stored = (path, server_digest)
                elif kind == "post":
                    answer = await page.run(BROWSER_POST)
                    assert answer["status"] == 200, answer
                    seconds = upload = answer["ms"] / 1000
                    stored = (answer["path"], answer["sha256"])
                else:
                    answer = await page.run(BROWSER_SINK, list(SINK_KINDS[kind]))
                    assert answer["bytes"] == size + 13 * answer["frames"], answer
                    seconds = upload = answer["ms"] / 1000
                measured = meter.stop()
                await page.close()
                if stored is not None:
                    outcome = clients.Outcome(start=0.0, stored=server.media / stored[0])
                    outcome.server_sha256 = stored[1]
                    check_stored(outcome, digest)
                entry = {
                    "run": run,
                    "seconds": seconds,
                    "upload_seconds": upload,
                    "mb_s": size / seconds / 1e6,
                    "cpu_s_per_gib": measured["cpu_s"] * GIB / size,
                    "rss_growth_mib": measured["rss_growth_mib"],
                    "byte_identical": stored is not None,
                }
                results[kind].append(entry)
                log(f"  chromium {kind:8} run {run}: {entry['mb_s']:.1f} MB/s")
    finally:
        await browser.close()
    return {"chromium": version, "size_mib": size // MIB, "runs": results}


def profile_section(server: BenchServer, source: Path, digest: str) -> dict[str, Any] | None:
    """py-spy (sampling, non-blocking) on the server during one djust upload + consume."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        log("  py-spy not found (.venv/bin/python -m pip install py-spy): no profile")
        return None
    WORK.mkdir(exist_ok=True)
    raw = WORK / "profile-djust.txt"
    rate = 200
    process = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(server.pid),
            "--rate",
            str(rate),
            "--nonblocking",
            "--threads",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    before = servers.thread_cpu(server.pid)
    result = asyncio.run(_profiled_upload(server, source, digest))
    after = servers.thread_cpu(server.pid)
    process.send_signal(2)  # SIGINT: py-spy writes its output and exits
    process.wait(60)
    if not raw.exists():
        log("  py-spy wrote nothing (ptrace not allowed?): no profile")
        return None
    summary = summarize_profile(raw, rate)
    names = thread_names(raw)
    names.setdefault(server.pid, "MainThread")
    per_thread: dict[str, float] = collections.Counter()
    for tid, cpu in after.items():
        used = cpu - before.get(tid, 0.0)
        if used > 0:
            per_thread[names.get(tid, "other threads")] += used
    summary["thread_cpu"] = [
        {"thread": name, "cpu_s": cpu, "busy": cpu / result["seconds"]}
        for name, cpu in sorted(per_thread.items(), key=lambda kv: -kv[1])
    ]
    return {**summary, "upload": result, "raw_file": str(raw.relative_to(ROOT))}


def thread_names(raw: Path) -> dict[int, str]:
    """Thread ids and names as py-spy saw them (Linux does not know Python's names)."""
    names = {}
    for match in re.finditer(r"^thread \((\d+)\):\s*([^;]*?)(?:_\d+)?;", raw.read_text(), re.M):
        names[int(match.group(1))] = match.group(2)
    return names


async def _profiled_upload(server: BenchServer, source: Path, digest: str) -> dict[str, Any]:
    return await measure_one("djust", server, source, digest, run=99)


_LINENO = re.compile(r":(\d+)\)$")
_THREAD = re.compile(r"^thread \(\d+\):\s*(.*?)(_\d+)?$")


def summarize_profile(raw: Path, rate: int) -> dict[str, Any]:
    """Self and inclusive time per function (and per thread) from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    own_lines: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        if len(frames) < 2:
            continue
        count = int(count_text)
        match = _THREAD.match(frames[0])
        threads[match.group(1) if match else frames[0]] += count
        names = [_LINENO.sub(")", f) for f in frames[1:]]
        leaf_line = _LINENO.search(frames[-1])
        own[names[-1]] += count
        own_lines[names[-1]][leaf_line.group(1) if leaf_line else "?"] += count
        for name in set(names):
            inclusive[name] += count
        total += count

    def rows(counter: collections.Counter[str], n: int) -> list[dict[str, Any]]:
        return [
            {
                "function": k,
                "seconds": v / rate,
                "share": v / total,
                "lines": [line for line, _ in own_lines[k].most_common(3)]
                if k in own_lines
                else [],
            }
            for k, v in counter.most_common(n)
        ]

    return {
        "samples": total,
        "rate_hz": rate,
        "active_seconds": total / rate,
        "threads": rows(threads, 10),
        "self": rows(own, 20),
        "inclusive": rows(inclusive, 30),
    }


# -- the whole run -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory / GIB, 1),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("django", "channels", "uvicorn", "websockets", "uvloop", "httptools"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    found["djust"] = f"{commit}{' + uncommitted changes in src/' if dirty else ''}"
    found["djust_peer"] = servers.PEER_VERSION
    return found


async def ours(args: argparse.Namespace, files: dict, extra: dict) -> dict[str, Any]:
    server = BenchServer()
    server.start()
    out: dict[str, Any] = {}
    try:
        log(f"djust server (bench.settings) on {server.url}, pid {server.pid}")
        clicks = await click_latency(server)
        out["click_ms"] = {"median": statistics.median(clicks), "p99": percentile(clicks, 0.99)}
        out["idle_ping"] = await idle_ping(server, "djust")
        warm, warm_digest = files[min(files)]
        for path in ("djust", "raw", "post"):
            await measure_one(path, server, warm, warm_digest, run=-1)  # warm-up, not kept
        log("throughput: djust, raw sink, POST")
        out["runs"], out["ping"] = await throughput_section(
            server, "djust", ["djust", "raw", "post"], files, args.runs
        )
        log("ten concurrent uploads")
        source, digest = files[min(files)]
        out["concurrent"] = await concurrent_section(server, source, digest)
        if not args.skip_resume:
            log("resets through the fault proxy (bench/resume.py)")
            out["resume"] = await resume.section(
                server, source, digest, timed_source=files[max(files)], rounds=args.resume_rounds
            )
        log("renamed .exe")
        out["exe"] = await exe_section(server, extra["exe"])
        if not args.skip_browser:
            log("chromium")
            source, digest = extra["browser"]
            out["browser"] = await browser_section(server, source, digest, args.browser_runs)
        if not args.skip_profile:
            log("py-spy profile of one djust upload")
            source, digest = files[max(files)]
            out["profile"] = await asyncio.to_thread(profile_section, server, source, digest)
    finally:
        server.stop()
    return out


async def peer(args: argparse.Namespace, files: dict) -> dict[str, Any]:
    server = PeerServer()
    server.start()
    out: dict[str, Any] = {}
    try:
        log(f"djust {servers.PEER_VERSION} server on {server.url}, pid {server.pid}")
        out["idle_ping"] = await idle_ping(server, "peer")
        warm, warm_digest = files[min(files)]
        await measure_one("peer", server, warm, warm_digest, run=-1)
        out["runs"], out["ping"] = await throughput_section(
            server, "peer", ["peer"], files, args.peer_runs
        )
    finally:
        server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small files, one run each")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--skip-resume", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown report (docs/performance.md)")
    parser.add_argument("--json", type=Path, help="raw results (bench/results.json)")
    args = parser.parse_args()
    args.resume_rounds = 1 if args.quick else 3
    if args.quick:
        sizes, args.runs, args.peer_runs, browser_mib, args.browser_runs = (
            [10, 50],
            {10: 1, 50: 1},
            {10: 1, 50: 1},
            20,
            1,
        )
        args.out = args.out or WORK / "performance.md"
        args.json = args.json or WORK / "results.json"
    else:
        sizes, args.runs, args.peer_runs, browser_mib, args.browser_runs = (
            [100, 1024],
            {100: 5, 1024: 5},
            {100: 3, 1024: 3},
            200,
            5,
        )
        args.out = args.out or ROOT / "docs" / "performance.md"
        args.json = args.json or ROOT / "bench" / "results.json"
    WORK.mkdir(exist_ok=True)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="djust-bench-files-"))
    try:
        if not args.skip_peer:
            servers.ensure_peer()
        log("warming the page cache (4 GiB written and deleted)")
        warm_page_cache(tmp)
        log(f"writing test files to {tmp}")
        files = {}
        for mib in sizes:
            source = make_file(tmp / f"random-{mib}.bin", mib)
            files[mib] = (source, clients.sha256_file(source))
        browser = make_file(tmp / f"browser-{browser_mib}.bin", browser_mib)
        extra = {
            "browser": (browser, clients.sha256_file(browser)),
            "exe": make_file(tmp / "program.exe", max(sizes), EXE_HEADER),
        }
        results: dict[str, Any] = {
            "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join([".venv/bin/python bench/run.py", *sys.argv[1:]]),
            "machine": machine(),
            "versions": versions(),
            "uvicorn_options": servers.uvicorn_options(),
            "sizes_mib": sizes,
            "runs": {str(k): v for k, v in args.runs.items()},
            "peer_runs": {str(k): v for k, v in args.peer_runs.items()},
        }
        log("disk writes: cached and O_DIRECT")
        results["disk"] = disk_section(tmp, max(sizes), 3 if not args.quick else 1)
        results["djust"] = asyncio.run(ours(args, files, extra))
        if not args.skip_peer:
            log("djust 1.2.6")
            results["peer"] = asyncio.run(peer(args, files))
        results["minutes"] = (time.monotonic() - started) / 60
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = report.summarize(results)
    results["summary"] = summary
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    text = report.markdown(results)
    if args.out.exists():  # its section "Every engine" is bench/engines.py's: kept
        from bench.engines import kept

        text = kept(args.out.read_text(), text)
    args.out.write_text(text)
    print(text)
    log(f"done in {results['minutes']:.1f} min: {args.out}, {args.json}")


if __name__ == "__main__":
    main()
