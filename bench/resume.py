"""Uploads through a network that drops: bytes re-sent per reset, time to flowing again, throughput.

    .venv/bin/python bench/resume.py            # 512 MiB; 3 rounds; 20 timed resets (~1 min)
    .venv/bin/python bench/resume.py --quick    # 64 MiB; 1 round; 5 timed resets
    .venv/bin/python bench/resume.py --no-resume --json bench/.work/no-resume.json  # baseline

Starts the bench server (``bench/servers.py``: the test project plus the bench pages, served by
``manage.py djust_serve`` as the tests serve it) and puts ``tests/faultproxy.py`` between it and
the client. The client is ``ResumingUpload`` below: ``LiveClient`` for the messages, plus the
resume contract (docs/protocol.md, ``upload_register`` with ``resume``): on a drop it reconnects
with the browser's back-off, mounts again with the page's token, re-registers its entry with its
``resume`` token and continues from the ``offset`` the server answers. An entry without a token
(a server without resume, or ``UPLOAD_RESUME_TTL = 0``) starts again from 0, as the browser does.

Measures, through the proxy:

(a) bytes re-sent per reset: the payload bytes the client sent in all minus the file's size,
    divided by the resets (target: at most one window, ``UPLOAD_WINDOW``, 8 MiB by default);
(b) time from the socket being back (the proxy accepted the new connection) to bytes flowing
    again (the first ``upload_ack`` after the re-registration): median and p99 over
    ``--timed-resets`` resets of one upload, with the steps in between;
(c) throughput of the same upload with no drops and with 1 and 5 resets, uploads interleaved per
    round, as ratios to the upload through the proxy without drops (and that one's ratio to the
    server without the proxy, the proxy's own cost).

Every stored file is checked byte-identical (SHA-256). Writes bench/.work/resume.json (or
``--json``). ``bench/run.py`` runs the same measures as its ``resume`` section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hashlib
import json
import math
import os
import random
import statistics
import struct
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from websockets.exceptions import WebSocketException  # noqa: E402

from bench.clients import saved_line  # noqa: E402
from bench.servers import MIB, BenchServer  # noqa: E402
from djust.testing import LiveClient, WebSocketTransport, token_from_html  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402

WORK = ROOT / "bench" / ".work"
PAGE = "/bench/upload/"
WINDOW = 8 * MIB  # DJUST["UPLOAD_WINDOW"]'s default: the target for (a)
_HEADER = struct.Struct(">BIQ")  # a chunk frame's header: type, ref, offset
# What a drop looks like to the client: the socket reset or closed, or nothing from the server
# for ``LIVENESS`` seconds (the contract's 15 s, after which the browser closes the socket).
DROPS = (OSError, EOFError, TimeoutError, WebSocketException)
LIVENESS = 15.0


def log(*args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


class UploadFailed(Exception):
    """The server refused the upload or its resume (``upload_error``); ``code`` says why."""

    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(f"{message.get('code')}: {message.get('message')}")
        self.code = message.get("code")
        self.payload = message


@dataclass
class Resume:
    """One drop and what followed it, in ``time.monotonic()`` seconds."""

    dropped: float  # the client saw the drop
    sent_at_drop: int  # bytes sent since the start of the file (the offset it had reached)
    accepted: float = math.nan  # the proxy accepted the new connection
    opened: float = math.nan  # the WebSocket handshake finished
    mounted: float = math.nan
    registered: float = math.nan
    flowing: float = math.nan  # the first upload_ack (or upload_complete) after registering
    offset: int = 0  # where the server said to continue
    resumed: bool = False  # the server answered with the entry's offset (resume works)
    attempts: int = 1  # connections it took

    @property
    def resent(self) -> int:
        return self.sent_at_drop - self.offset


@dataclass
class ResumingUpload:
    """One file through djust's protocol, surviving drops by the resume contract."""

    base: str  # http://host:port the client connects to (the proxy)
    source: Path
    name: str
    slot: str = "big"
    content_type: str = "application/octet-stream"
    page: str = PAGE
    accepted_at: Callable[[], float] | None = None  # when the proxy took the last connection
    on_flowing: Callable[[], Awaitable[None]] | None = None  # before sending, after each register
    backoff: float = 0.1  # the browser's: 100 ms doubling up to 5 s, times 0.5-1
    ref: str = "1"
    sent_total: int = 0  # payload bytes handed to the socket, re-sent ones included
    token: str | None = None  # the entry's resume token
    restarts: int = 0  # drops after which the entry started again from 0
    resumes: list[Resume] = field(default_factory=list)
    client: LiveClient | None = None
    started: float = 0.0
    completed: float = 0.0
    _sent: int = 0  # where the current connection's sending has reached
    _rng: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        stat = self.source.stat()
        self.size = stat.st_size
        self.modified = stat.st_mtime_ns // 1_000_000  # File.lastModified
        self.view_token = self.cookie = ""

    def _fetch_page(self) -> None:
        with urllib.request.urlopen(self.base + self.page, timeout=30) as response:
            html = response.read().decode()
            cookies = response.headers.get_all("Set-Cookie") or []
        self.view_token = token_from_html(html)
        # The socket carries the page's cookies, so that a resume finds the same Django session.
        self.cookie = "; ".join(c.split(";", 1)[0] for c in cookies)

    # -- connecting ----------------------------------------------------------------------

    async def connect(self, resume: Resume | None = None) -> None:
        """Open a socket and mount the page's view on it (the same token every time)."""
        transport = await WebSocketTransport.connect(
            self.base.replace("http", "ws", 1) + "/djust/ws/",
            self.base,
            additional_headers={"Cookie": self.cookie} if self.cookie else {},
            open_timeout=10,
        )
        if resume is not None:
            resume.opened = time.monotonic()
            if self.accepted_at is not None:
                resume.accepted = self.accepted_at()
        client = LiveClient(transport, timeout=LIVENESS)
        try:
            await client.mount(self.view_token)
        except BaseException:
            await transport.close()
            raise
        if resume is not None:
            resume.mounted = time.monotonic()
        self.client = client

    async def come_back(self, resume: Resume) -> tuple[int, int]:
        """Reconnect with back-off and re-register the entry; (offset, window) to go on from."""
        delay = self.backoff
        while True:
            await self._drop_client()
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.0))
            delay = min(delay * 2, 5.0)
            try:
                await self.connect(resume)
                if self.token is not None and self.file_changed():
                    raise UploadFailed({"code": "file_changed", "message": "the file changed"})
                offset, window, resumed = await self.register(resume=self.token is not None)
            except DROPS:
                resume.attempts += 1
                continue
            resume.registered = time.monotonic()
            resume.offset, resume.resumed = offset, resumed
            self.restarts += not resumed
            return offset, window

    # -- registering ---------------------------------------------------------------------

    async def register(self, *, resume: bool) -> tuple[int, int, bool]:
        """``upload_register``, with the entry's token when ``resume``.

        Returns the offset to continue from, the window, and whether the server resumed the
        entry (it answered a ``resume`` with an ``offset``)."""
        assert self.client is not None
        reply = await self.client.register(
            self.slot,
            self.name,
            self.size,
            self.content_type,
            ref=self.ref,
            client_modified=self.modified,
            resume=self.token if resume else None,
        )
        if reply["t"] == "upload_error":
            raise UploadFailed(reply)
        # A server without resume ignores the token and starts a new entry, without a token.
        self.token = reply.get("resume")
        return int(reply.get("offset", 0)), int(reply["window"]), resume and "offset" in reply

    def file_changed(self) -> bool:
        stat = self.source.stat()
        return stat.st_size != self.size or stat.st_mtime_ns // 1_000_000 != self.modified

    # -- the upload ----------------------------------------------------------------------

    async def run(self) -> None:
        """Upload the whole file, through as many drops as come; ``UploadFailed`` if refused."""
        await asyncio.to_thread(self._fetch_page)
        self.started = time.monotonic()
        await self.connect()
        offset, window, _ = await self.register(resume=False)
        resume: Resume | None = None
        with open(self.source, "rb", buffering=0) as f:
            while True:
                if self.on_flowing is not None:
                    await self.on_flowing()
                try:
                    await self._pump(f, offset, window, resume)
                    break
                except DROPS:
                    pass
                resume = Resume(dropped=time.monotonic(), sent_at_drop=self._sent)
                self.resumes.append(resume)
                offset, window = await self.come_back(resume)
        self.completed = time.monotonic()

    async def _drop_client(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            with contextlib.suppress(*DROPS):
                await asyncio.wait_for(client.close(), 2)

    async def _pump(self, f: Any, offset: int, window: int, resume: Resume | None) -> None:
        """Send from ``offset`` within the window until ``upload_complete``."""
        client = self.client
        assert client is not None
        ws = client.transport.ws  # type: ignore[attr-defined]
        chunk = client.uploads[self.slot]["chunk_size"]
        ref, numeric_ref, size = self.ref, int(self.ref), self.size
        sent = acked = self._sent = offset
        f.seek(offset)

        def ended(m: dict[str, Any]) -> bool:
            return m.get("ref") == ref and m["t"] in (
                "upload_ack",
                "upload_complete",
                "upload_error",
            )

        while True:
            while sent < size:
                n = min(chunk, size - sent)
                if sent + n - acked > window:
                    break  # the server enforces the window, counted from the resumed offset
                frame = bytearray(_HEADER.size + n)
                _HEADER.pack_into(frame, 0, 1, numeric_ref, sent)
                if f.readinto(memoryview(frame)[_HEADER.size :]) != n:
                    raise UploadFailed({"code": "read_failed", "message": "short read"})
                await ws.send(frame)
                sent = self._sent = sent + n
                self.sent_total += n
            message = await client.wait_for(ended)
            if resume is not None and math.isnan(resume.flowing):
                resume.flowing = time.monotonic()
            if message["t"] == "upload_ack":
                acked = max(acked, message["offset"])  # acks are applied monotonically
                window = message.get("window", window)
            elif message["t"] == "upload_complete":
                return
            else:
                raise UploadFailed(message)

    async def consume(self) -> tuple[str, str, int]:
        """The page's ``save`` event; the stored path, SHA-256 and size it lists."""
        assert self.client is not None
        await self.client.event("save", slot=self.slot)
        return saved_line(self.client.html)

    async def close(self) -> None:
        await self._drop_client()


# -- measuring -----------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values: list[float]) -> dict[str, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


async def upload(
    server: BenchServer,
    source: Path,
    digest: str,
    *,
    resets: int = 0,
    proxied: bool = True,
    name: str = "resume.bin",
) -> dict[str, Any]:
    """One upload and its consume, with ``resets`` drops spread over it; checked and removed."""
    size = source.stat().st_size
    proxy = FaultProxy(server.port).start() if proxied else None
    step = size // (resets + 1)
    left = resets

    async def arm() -> None:
        # Each reset comes ``step`` bytes after the previous (re)registration: every armed reset
        # fires before the file is complete, whether the upload resumes or starts again.
        nonlocal left
        if proxy is not None and left > 0:
            left -= 1
            await asyncio.to_thread(proxy.reset_after, step)

    try:
        uploader = ResumingUpload(
            proxy.url if proxy else server.url,
            source,
            name,
            accepted_at=(lambda: proxy.accepted_at[-1]) if proxy else None,
            on_flowing=arm,
        )
        try:
            await uploader.run()
            consume_started = time.monotonic()
            path, server_digest, stored_size = await uploader.consume()
            consumed = time.monotonic()
        finally:
            await uploader.close()
        stored = server.media / path
        assert stored_size == size, (stored_size, size)
        assert server_digest == digest, "the server computed another SHA-256"
        assert sha256_file(stored) == digest, f"{stored} is not byte-identical to the source"
        stored.unlink()
        upload_seconds = uploader.completed - uploader.started
        return {
            "size_mib": size / MIB,
            "resets": proxy.resets if proxy else 0,
            "proxied": proxied,
            "seconds": upload_seconds,
            "mb_s": size / upload_seconds / 1e6,
            "consume_seconds": consumed - consume_started,
            "sent_bytes": uploader.sent_total,
            "resent_bytes": uploader.sent_total - size,
            "restarts": uploader.restarts,
            "resumed": sum(r.resumed for r in uploader.resumes),
            "proxy_bytes_up": proxy.bytes_up if proxy else None,
            "connections": proxy.connections if proxy else 1,
            "resumes": [
                {
                    "resent": r.resent,
                    "offset": r.offset,
                    "resumed": r.resumed,
                    "attempts": r.attempts,
                    "drop_to_accept_ms": (r.accepted - r.dropped) * 1000,
                    "handshake_ms": (r.opened - r.accepted) * 1000,
                    "mount_ms": (r.mounted - r.opened) * 1000,
                    "register_ms": (r.registered - r.mounted) * 1000,
                    "first_ack_ms": (r.flowing - r.registered) * 1000,
                    "back_to_flowing_ms": (r.flowing - r.accepted) * 1000,
                    "drop_to_flowing_ms": (r.flowing - r.dropped) * 1000,
                    "open_to_flowing_ms": (r.flowing - r.opened) * 1000,
                }
                for r in uploader.resumes
            ],
            "byte_identical": True,
        }
    finally:
        if proxy is not None:
            proxy.close()


def describe(run: dict[str, Any]) -> str:
    text = (
        f"{run['mb_s']:7.1f} MB/s, {run['resets']} resets"
        f" ({run['resumed']} resumed, {run['restarts']} from 0),"
        f" {run['resent_bytes'] / MIB:.1f} MiB re-sent"
    )
    if run["resumes"]:
        flowing = spread([r["back_to_flowing_ms"] for r in run["resumes"]])
        text += f", back to flowing {flowing.get('median', math.nan):.0f} ms median"
    return text


def resent_per_reset(runs: list[dict[str, Any]]) -> dict[str, Any]:
    resets = sum(r["resets"] for r in runs)
    if not resets:
        return {"resets": 0}
    each = [x["resent"] for r in runs for x in r["resumes"]]
    per_reset = sum(r["resent_bytes"] for r in runs) / resets
    return {
        "resets": resets,
        "bytes_per_reset": per_reset,
        "mib_per_reset": per_reset / MIB,
        "max_mib": max(each) / MIB if each else None,
        "window_mib": WINDOW / MIB,
        "within_window": per_reset <= WINDOW,
    }


async def section(
    server: BenchServer,
    source: Path,
    digest: str,
    *,
    timed_source: tuple[Path, str] | None = None,
    rounds: int = 3,
    resets: tuple[int, ...] = (1, 5),
    timed_resets: int = 20,
) -> dict[str, Any]:
    """(a), (b) and (c) against a running bench server; ``bench/run.py``'s resume section."""
    await upload(server, source, digest, proxied=False, name="warm.bin")  # not kept
    kinds = ["direct", "proxy", *(f"proxy+{n}" for n in resets)]
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for round_ in range(rounds):
        for kind in kinds:
            count = int(kind.partition("+")[2] or 0)
            run = await upload(
                server, source, digest, resets=count, proxied=kind != "direct", name=f"{kind}.bin"
            )
            run["round"] = round_
            runs[kind].append(run)
            log(f"  {kind:9} round {round_}: {describe(run)}")
    mb_s = {kind: statistics.median(r["mb_s"] for r in runs[kind]) for kind in kinds}
    ratios = {f"{kind}/proxy": mb_s[kind] / mb_s["proxy"] for kind in kinds if "+" in kind}
    ratios["proxy/direct"] = mb_s["proxy"] / mb_s["direct"]
    seconds = {kind: statistics.median(r["seconds"] for r in runs[kind]) for kind in kinds}
    # What one reset costs the upload: back-off, reconnect, re-sent bytes, the slow start.
    lost = {
        kind: (seconds[kind] - seconds["proxy"]) / int(kind.partition("+")[2])
        for kind in kinds
        if "+" in kind
    }

    timed_path, timed_digest = timed_source or (source, digest)
    timed = await upload(server, timed_path, timed_digest, resets=timed_resets, name="timed.bin")
    log(f"  {timed_resets} timed resets: {describe(timed)}")
    steps = [
        "back_to_flowing_ms",
        "drop_to_flowing_ms",
        "open_to_flowing_ms",
        "drop_to_accept_ms",
        "handshake_ms",
        "mount_ms",
        "register_ms",
        "first_ack_ms",
    ]
    resumed = [r for r in timed["resumes"] if r["resumed"]]
    timing = {step: spread([r[step] for r in timed["resumes"]]) for step in steps}
    resetting = [r for kind in kinds if "+" in kind for r in runs[kind]] + [timed]
    return {
        "size_mib": source.stat().st_size / MIB,
        "timed_size_mib": timed_path.stat().st_size / MIB,
        "rounds": rounds,
        "window_mib": WINDOW / MIB,
        # Does the server resume? Without it every drop starts the file again from 0.
        "server_resumes": bool(resumed),
        "resent_per_reset": resent_per_reset(resetting),
        "back_to_flowing": timing,
        "mb_s": mb_s,
        "ratios": ratios,
        "seconds_lost_per_reset": lost,
        "runs": runs,
        "timed": timed,
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    a = result["resent_per_reset"]
    b = result["back_to_flowing"]["back_to_flowing_ms"]
    d = result["back_to_flowing"]["drop_to_flowing_ms"]
    lines = [
        f"server resumes: {'yes' if result['server_resumes'] else 'no (drops start from 0)'}",
        f"(a) re-sent per reset: {a.get('mib_per_reset', math.nan):.2f} MiB over {a['resets']}"
        f" resets (target <= {a.get('window_mib', WINDOW / MIB):.0f} MiB, one window)",
        f"(b) socket back -> bytes flowing: median {b.get('median', math.nan):.0f} ms,"
        f" p99 {b.get('p99', math.nan):.0f} ms over {b.get('n', 0)} resets; from the drop"
        f" (back-off included) median {d.get('median', math.nan):.0f} ms",
        "(c) MB/s: "
        + ", ".join(f"{k} {v:.1f}" for k, v in result["mb_s"].items())
        + "; ratios: "
        + ", ".join(f"{k} {v:.2f}" for k, v in result["ratios"].items())
        + "; seconds lost per reset: "
        + ", ".join(f"{k} {v:.2f}" for k, v in result["seconds_lost_per_reset"].items()),
    ]
    return lines


def make_file(path: Path, mib: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="64 MiB, one round, 5 timed resets")
    parser.add_argument("--mib", type=int, help="file size (default 512, quick 64)")
    parser.add_argument("--rounds", type=int, help="rounds of (c) (default 3, quick 1)")
    parser.add_argument("--timed-resets", type=int, help="resets timed for (b) (default 20)")
    parser.add_argument(
        "--no-resume", action="store_true", help="the server with UPLOAD_RESUME_TTL = 0: a baseline"
    )
    parser.add_argument("--json", type=Path, default=WORK / "resume.json")
    args = parser.parse_args()
    if args.no_resume:
        os.environ["TEST_RESUME_TTL"] = "0"  # tests/settings.py reads it; the server inherits it
    mib = args.mib or (64 if args.quick else 512)
    rounds = args.rounds or (1 if args.quick else 3)
    timed_resets = args.timed_resets or (5 if args.quick else 20)
    WORK.mkdir(exist_ok=True)
    started = time.monotonic()
    server = BenchServer()
    with tempfile.TemporaryDirectory(prefix="djust-bench-resume-") as tmp:
        source = make_file(Path(tmp) / f"random-{mib}.bin", mib)
        digest = sha256_file(source)
        server.start()
        try:
            log(f"djust server on {server.url}, pid {server.pid}; {mib} MiB through the proxy")
            result = asyncio.run(
                section(server, source, digest, rounds=rounds, timed_resets=timed_resets)
            )
        finally:
            server.stop()
    result = {
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        # The machine is shared: its load says how much to trust the throughput ratios.
        "loadavg_after": os.getloadavg(),
        "command": " ".join([".venv/bin/python bench/resume.py", *sys.argv[1:]]),
        "minutes": (time.monotonic() - started) / 60,
        **result,
    }
    args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
    for line in summary_lines(result):
        log(line)
    log(f"done in {result['minutes']:.1f} min: {args.json}")


if __name__ == "__main__":
    main()
