"""A file into an S3 bucket, three ways: the time until the object is complete and verified there.

    .venv/bin/python bench/s3.py                               # 1 GiB, 3 rounds
    .venv/bin/python bench/s3.py --size-mib 64 --rounds 1      # a quick look
    .venv/bin/python bench/s3.py --ways a,b,c                  # some of the ways

Starts moto's S3 server on 127.0.0.1 (``tests/s3server.py``; it keeps objects in memory) and the
bench server with django-storages' ``S3Storage`` as ``default_storage`` on that bucket
(``bench/s3_settings.py``: tests/settings.py's S3 settings and the page in ``bench/s3_site.py``),
then uploads the same file of random bytes

(a) over the socket into ``S3MultipartWriter``: parts go to the bucket while the bytes arrive,
    each with its SHA-256; the writer completes the multipart upload and compares the bucket's
    composite checksum and size with its own before the page is told the upload is complete;
(b) over the socket into the default temp file, then ``default_storage.save`` in the ``save``
    handler: a second transfer, by boto3's managed upload (django-storages' own settings);
(c) straight from Chromium to the bucket (``allow_upload(..., external=S3Direct())``): the page
    PUTs presigned parts, the server checks part 1, completes the upload and verifies it (pending,
    and said so in the output, in a tree without ``djust.uploads.external``).

(a) and (b) run twice: from the protocol client (``bench/clients.py``, reading the file as it
sends) and from Chromium (``dj-upload``, driven over CDP by ``bench/cdp.py`` as bench/run.py
does), so that (c) compares with them in the same browser. For reference, (0) the bucket alone:
boto3's ``upload_file`` of the same file from the bench process (the managed transfer
django-storages uses), no djust: what moto ingests on this machine.

Each way is timed from the start (``upload_register`` for the protocol client, the input's
``change`` event in Chromium) to the reply of the ``save`` event, whose handler HEADs the object
(``default_storage.size``) after storing it: the object is in the bucket, complete, of the right
size. Ways are interleaved (one of each per round, the order alternating) after a small warm-up
of each. Outside the timing, every object is read back from the bucket and its SHA-256 compared
with the file's, then deleted, and no multipart upload may be left open. The bucket lets the
bench page's origin PUT (CORS), as a bucket must for (c).

Writes bench/.work/s3.json (or ``--json``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench.cdp import Chromium  # noqa: E402
from bench.clients import djust_client, djust_upload, saved_line  # noqa: E402
from bench.servers import MIB, BenchServer, Meter, cpu_seconds  # noqa: E402
from tests.engines import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.s3server import S3Server  # noqa: E402

WORK = ROOT / "bench" / ".work"
BUCKET = "djust-bench"
PAGE = "/bench/s3/"
# way: (slot, label). Those named *-chromium, and c, run in Chromium.
WAYS = {
    "0": ("", "the bucket alone: boto3 upload_file from the bench process, no djust"),
    "a": ("s3", "socket + S3MultipartWriter (protocol client)"),
    "b": ("tmp", "socket + temp file + default_storage.save (protocol client)"),
    "a-chromium": ("s3", "socket + S3MultipartWriter (Chromium)"),
    "b-chromium": ("tmp", "socket + temp file + default_storage.save (Chromium)"),
    "c": ("direct", "direct to S3 from Chromium (S3Direct)"),
}
# The clock starts at the input's change event; the page clicks Save once the upload is
# complete, and the clock stops when the saved line shows.
INIT = """
window.__bench = {connected: false};
addEventListener("djust:connected", () => { window.__bench.connected = true; });
addEventListener("change", (e) => {
  if (e.target && e.target.id.startsWith("pick-")) window.__bench.start = performance.now();
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
CORS = {  # what the page's PUTs of direct uploads need
    "AllowedMethods": ["PUT"],
    "AllowedHeaders": ["x-amz-checksum-sha256"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 600,
}


def log(*args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


class S3BenchServer(BenchServer):
    """The bench server with ``bench.s3_settings`` and the bucket on moto's server."""

    name = "djust-s3"

    def __init__(self, s3: S3Server) -> None:
        super().__init__()
        self.s3 = s3

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            **self.s3.env(BUCKET),
            "DJANGO_SETTINGS_MODULE": "bench.s3_settings",
        }


def in_browser(way: str) -> bool:
    return way == "c" or way.endswith("-chromium")


def external_available() -> bool:
    """Whether direct-to-S3 uploads (way c) exist in this tree yet."""
    return importlib.util.find_spec("djust.uploads.external") is not None


def write_source(directory: Path, size: int) -> tuple[Path, str]:
    """A file of ``size`` random bytes, written 1 MiB at a time; its path and SHA-256."""
    path = directory / f"bench-{size // MIB}mib.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return path, digest.hexdigest()


def read_back(s3: S3Server, key: str) -> tuple[int, str]:
    """The object's size and SHA-256, read from the bucket."""
    body = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"]
    digest, size = hashlib.sha256(), 0
    for block in body.iter_chunks(8 * MIB):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


def open_uploads(s3: S3Server) -> list[str]:
    listing = s3.client().list_multipart_uploads(Bucket=BUCKET)
    return [upload["Key"] for upload in listing.get("Uploads", [])]


def bucket_alone(s3: S3Server, source: Path) -> tuple[str, float]:
    """boto3's managed upload of ``source`` into the bucket and a HEAD: its key and seconds."""
    key = f"media/bench/alone-{source.name}"
    client = s3.client()
    start = time.monotonic()
    client.upload_file(str(source), BUCKET, key)
    assert client.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == source.stat().st_size
    return key, time.monotonic() - start


async def alone(s3: S3Server, source: Path, digest: str) -> dict[str, Any]:
    moto_cpu = cpu_seconds(s3.process.pid)  # type: ignore[union-attr]
    key, seconds = await asyncio.to_thread(bucket_alone, s3, source)
    moto_cpu = cpu_seconds(s3.process.pid) - moto_cpu  # type: ignore[union-attr]
    size, stored_digest = await asyncio.to_thread(read_back, s3, key)
    s3.client().delete_object(Bucket=BUCKET, Key=key)
    if size != source.stat().st_size or stored_digest != digest or open_uploads(s3):
        raise RuntimeError(f"the bucket alone: {key} is not the file")
    return {"seconds": seconds, "mb_s": size / seconds / 1e6, "moto_cpu_s": moto_cpu}


async def from_client(server: S3BenchServer, slot: str, source: Path) -> tuple[float, float, str]:
    """The protocol client: seconds in all, seconds to the upload's completion, the page."""
    client = await djust_client(server.url, PAGE)
    try:
        outcome = await djust_upload(client, source, source.name, media=server.media, slot=slot)
    finally:
        await client.close()
    if outcome.error:
        raise RuntimeError(f"{slot}: {outcome.error}")
    return outcome.total, outcome.phase("upload"), client.html


async def from_chromium(
    browser: Chromium, server: S3BenchServer, slot: str, source: Path
) -> tuple[float, float, str]:
    """A fresh page picks the file into ``slot`` and clicks Save once the upload completes."""
    page = await browser.page()
    try:
        await page.add_init_script(INIT)
        await page.goto(server.url + PAGE)
        await page.wait_for("window.__bench.connected")
        await page.set_input_files(f"#pick-{slot}", str(source))
        await page.wait_for("window.__bench.saved || window.__bench.error", 900)
        bench = await page.evaluate("window.__bench")
        if "error" in bench:
            raise RuntimeError(f"{slot} in Chromium: {bench['error']}")
        html = await page.inner_html("[dj-root]")
    finally:
        await page.close()
    seconds = (bench["saved"] - bench["start"]) / 1000
    return seconds, (bench["complete"] - bench["start"]) / 1000, html


async def one(
    way: str,
    server: S3BenchServer,
    s3: S3Server,
    browser: Chromium | None,
    source: Path,
    digest: str,
) -> dict[str, Any]:
    """One upload the ``way`` says, timed; then checked in the bucket and removed."""
    if way == "0":
        return await alone(s3, source, digest)
    slot = WAYS[way][0]
    meter = Meter(server.pid).start()
    moto_cpu = cpu_seconds(s3.process.pid)  # type: ignore[union-attr]
    if in_browser(way):
        assert browser is not None
        seconds, upload_s, html = await from_chromium(browser, server, slot, source)
    else:
        seconds, upload_s, html = await from_client(server, slot, source)
    used = meter.stop()
    moto_cpu = cpu_seconds(s3.process.pid) - moto_cpu  # type: ignore[union-attr]
    name, server_digest, stored = saved_line(html)
    key = f"media/{name}"  # AWS_LOCATION "media" (tests/settings.py)
    reading = time.monotonic()
    size, stored_digest = await asyncio.to_thread(read_back, s3, key)
    read_s = time.monotonic() - reading  # about what an adopted S3 entry's SHA-256 costs
    s3.client().delete_object(Bucket=BUCKET, Key=key)
    left = open_uploads(s3)
    verified = size == stored == source.stat().st_size and stored_digest == digest
    # The server sees no byte of a direct upload: it has no SHA-256 of its own to compare.
    if not verified or server_digest not in (digest, "None") or left:
        raise RuntimeError(f"way {way}: {key} is not the file ({size} bytes, {left} open)")
    return {
        "seconds": seconds,
        "upload_s": upload_s,
        "save_s": seconds - upload_s,
        "mb_s": source.stat().st_size / seconds / 1e6,
        "server_cpu_s": used["cpu_s"],
        "moto_cpu_s": moto_cpu,
        "machine_busy": used["machine_busy"],
        "server_rss_growth_mib": used["rss_growth_mib"],
        "read_back_s": read_s,
        "verified": True,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if isinstance(runs[0][k], float)]
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["seconds_min"] = min(r["seconds"] for r in runs)
    out["seconds_max"] = max(r["seconds"] for r in runs)
    out["runs"] = len(runs)
    return out


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("django", "uvicorn", "boto3", "botocore", "django-storages", "moto"):
        found[name] = metadata.version(name)
    return found


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ways = [w for w in args.ways if w != "c" or external_available()]
    # As S3 does: CORS by the bucket's own rules (moto answers every origin otherwise).
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    try:
        s3 = S3Server().start()
    finally:
        del os.environ["MOTO_DISABLE_GLOBAL_CORS"]
    server = S3BenchServer(s3)
    browser: Chromium | None = None
    out: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "size_mib": args.size_mib,
        "rounds": args.rounds,
        "machine": {"cpu_count": os.cpu_count(), "load_before": os.getloadavg()[0]},
        "versions": versions(),
        "ways": {w: {"label": WAYS[w][1]} for w in args.ways},
    }
    try:
        s3.client().create_bucket(Bucket=BUCKET)
        server.start()
        log(f"moto on {s3.endpoint} (pid {s3.process.pid}), djust on {server.url}")  # type: ignore[union-attr]
        cors = {**CORS, "AllowedOrigins": [server.url]}
        s3.client().put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [cors]})
        if any(in_browser(w) for w in ways):
            browser = await Chromium(CHROMIUM, CHROMIUM_ARGS).start()
            out["versions"]["chromium"] = browser.version
        with tempfile.TemporaryDirectory(prefix="djust-bench-s3-") as tmp:
            warm, warm_digest = write_source(Path(tmp), 16 * MIB)
            source, digest = write_source(Path(tmp), args.size_mib * MIB)
            for way in ways:
                await one(way, server, s3, browser, warm, warm_digest)
            runs: dict[str, list[dict[str, Any]]] = {w: [] for w in ways}
            for round_ in range(args.rounds):
                for way in ways if round_ % 2 == 0 else ways[::-1]:
                    run = await one(way, server, s3, browser, source, digest)
                    runs[way].append(run)
                    log(f"round {round_ + 1} ({way}) {run['seconds']:.2f} s {run['mb_s']:.0f} MB/s")
            for way in args.ways:
                if runs.get(way):
                    out["ways"][way].update(summary(runs[way]), all=runs[way])
                else:
                    out["ways"][way]["pending"] = "djust.uploads.external is not in this tree yet"
        out["machine"]["load_after"] = os.getloadavg()[0]
    finally:
        if browser is not None:
            await browser.close()
        server.stop()
        s3.stop()
    return out


def report(out: dict[str, Any]) -> str:
    lines = [f"{out['size_mib']} MiB into the bucket, median of {out['rounds']} (interleaved):", ""]
    for way, result in out["ways"].items():
        if "pending" in result:
            lines.append(f"({way}) {result['label']}: PENDING ({result['pending']})")
            continue
        spread = f"{result['seconds_min']:.2f}-{result['seconds_max']:.2f}"
        head = f"({way}) {result['label']}: {result['seconds']:.2f} s ({spread}), "
        if way == "0":
            lines.append(head + f"{result['mb_s']:.0f} MB/s; moto CPU {result['moto_cpu_s']:.1f} s")
            continue
        lines.append(
            head + f"{result['mb_s']:.0f} MB/s; "
            f"upload {result['upload_s']:.2f} s + save {result['save_s']:.2f} s; "
            f"server CPU {result['server_cpu_s']:.1f} s, moto CPU {result['moto_cpu_s']:.1f} s"
        )
    return "\n".join(lines)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ways", default=",".join(WAYS), help="comma-separated (default: all)")
    parser.add_argument("--json", type=Path, default=WORK / "s3.json")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    arguments.ways = [w for w in WAYS if w in arguments.ways.split(",")]
    result = asyncio.run(main(arguments))
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"wrote {arguments.json}")
