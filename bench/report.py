"""Medians, ratios, targets and the markdown of docs/performance.md, from bench/run.py's results."""

from __future__ import annotations

import statistics
from typing import Any

MIB = 1024 * 1024
BROWSER_KINDS = {
    "djust": "dj-upload, default 64 KiB chunks (sent in runs of up to 16)",
    "djust_1m": "dj-upload, a slot with `chunk_size=1 MiB`",
    "post": "fetch + FormData POST",
    "sink_64k_blob": "raw sink, 64 KiB frames, each a Blob(header, File.slice)",
    "sink_64k_buffer": "raw sink, 64 KiB frames, ArrayBuffers cut from 1 MiB reads",
    "sink_1m_blob": "raw sink, 1 MiB frames, each a Blob(header, File.slice)",
}
PATHS = {
    "djust": "djust (this repo), protocol client + consume",
    "raw": "raw ASGI WebSocket sink (same uvicorn)",
    "post": "plain Django multipart POST (same uvicorn)",
    "peer": "djust 1.2.6 (PyPI), limits raised",
}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _all_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    return results["djust"]["runs"] + results.get("peer", {}).get("runs", [])


def _stats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return _median(values) if values else None

    return {
        "runs": len(runs),
        "mb_s": med("mb_s"),
        "mb_s_min": min(r["mb_s"] for r in runs),
        "mb_s_max": max(r["mb_s"] for r in runs),
        "mb_s_transfer": med("mb_s_transfer"),
        "upload_seconds": med("upload_seconds"),
        "consume_seconds": med("consume_seconds"),
        "cpu_s_per_gib": med("cpu_s_per_gib"),
        "client_cpu_s_per_gib": med("client_cpu_s_per_gib"),
        "machine_busy": med("machine_busy"),
        "rss_growth_mib": med("rss_growth_mib"),
        "rss_growth_mib_max": max(r["rss_growth_mib"] for r in runs),
    }


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    runs = _all_runs(results)
    sizes = results["sizes_mib"]
    paths: dict[str, dict[str, Any]] = {}
    for size in sizes:
        for path in PATHS:
            mine = [r for r in runs if r["path"] == path and r["size_mib"] == size]
            if mine:
                paths[f"{path}/{size}"] = _stats(mine)
    ratios = {}
    for size in sizes:
        ours = paths[f"djust/{size}"]["mb_s"]
        for other in ("raw", "post", "peer"):
            if f"{other}/{size}" in paths:
                ratios[f"{other}/{size}"] = ours / paths[f"{other}/{size}"]["mb_s"]
    summary: dict[str, Any] = {"paths": paths, "ratios": ratios}
    browser = results["djust"].get("browser")
    if browser:
        b = summary["browser"] = {
            kind: {
                "runs": len(entries),
                "mb_s": _median([r["mb_s"] for r in entries]),
                "seconds": _median([r["seconds"] for r in entries]),
                "upload_seconds": _median([r["upload_seconds"] for r in entries]),
                "cpu_s_per_gib": _median([r["cpu_s_per_gib"] for r in entries]),
                "rss_growth_mib": _median([r["rss_growth_mib"] for r in entries]),
            }
            for kind, entries in browser["runs"].items()
            if entries
        }
        b["ratio"] = b["djust"]["mb_s"] / b["post"]["mb_s"]
        if "djust_1m" in b:
            b["ratio_1m"] = b["djust_1m"]["mb_s"] / b["post"]["mb_s"]
    summary["targets"] = targets(results, summary)
    return summary


def targets(results: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    big, small = max(results["sizes_mib"]), min(results["sizes_mib"])
    label = f"{big} MiB" if big < 1024 else f"{big // 1024} GiB"
    paths, ratios = summary["paths"], summary["ratios"]
    ours = results["djust"]
    rows: list[dict[str, Any]] = []

    def add(name: str, measured: float | None, limit: float, unit: str, higher: bool) -> None:
        if measured is None:
            rows.append({"target": name, "measured": None, "pass": None, "shown": "not run"})
            return
        passed = measured >= limit if higher else measured <= limit
        shown = f"{measured:.2f}×" if unit == "x" else f"{measured:.{1 if unit else 2}f} {unit}"
        rows.append({"target": name, "measured": measured, "pass": passed, "shown": shown})

    add(f"{label} throughput ≥ 0.6× raw ASGI sink", ratios.get(f"raw/{big}"), 0.6, "x", True)
    add(f"{label} throughput ≥ 1.0× plain Django POST", ratios.get(f"post/{big}"), 1.0, "x", True)
    add(f"{label} throughput ≥ 3.5× djust 1.2.6", ratios.get(f"peer/{big}"), 3.5, "x", True)
    djust_big = paths[f"djust/{big}"]
    add(
        f"server peak RSS growth ≤ 32 MiB ({label}, worst run)",
        djust_big["rss_growth_mib_max"],
        32,
        "MiB",
        False,
    )
    add(f"server CPU ≤ 4 s/GiB ({label}, median)", djust_big["cpu_s_per_gib"], 4, "s/GiB", False)
    for phase in ("upload", "consume"):
        stats = ours["ping"].get(f"djust/{big}/{phase}", {})
        add(
            f"second connection ping p99 ≤ 20 ms during {phase} ({label}; n={stats.get('n', 0)})",
            stats.get("p99_ms"),
            20,
            "ms",
            False,
        )
    browser = summary.get("browser")
    add(
        "Chromium dj-upload ≥ 0.8× browser POST (same file, same browser)",
        browser["ratio"] if browser else None,
        0.8,
        "x",
        True,
    )
    exe = ours["exe"]
    add(
        f"renamed {_size(exe['file_mib'])} .exe rejected having received ≤ 1 MiB "
        "(bytes the client sent before the error arrived)",
        exe["client_sent_before_error"] / MIB,
        1,
        "MiB",
        False,
    )
    concurrent = ours["concurrent"]
    add(
        f"{concurrent['connections']} concurrent {small} MiB uploads: aggregate ≥ 0.8× single",
        concurrent["aggregate_mb_s"] / paths[f"djust/{small}"]["mb_s"],
        0.8,
        "x",
        True,
    )
    return rows


# -- markdown ------------------------------------------------------------------------------


PROFILE_KINDS = [
    (
        "_write_all (djust/uploads/writers",
        "disk writes (`os.write` of whole blocks, mostly waiting on the device)",
    ),
    (
        "TempFileWriter.write",
        "disk writes (`os.write` of whole blocks, mostly waiting on the device)",
    ),
    ("_WorkItem.run", "SHA-256 in the hasher threads (`hashlib` called by the thread pool)"),
    ("Spool.", "copying chunks into blocks, handing blocks to the writer (`Spool`)"),
    (
        "_worker (concurrent/futures",
        "writer and hasher threads between blocks (`_worker`: `work_queue.get`)",
    ),
    ("Runner.run", "event loop in C, under `Runner.run` (uvloop: socket reads, epoll, callbacks)"),
    ("websockets/", "WebSocket frame parsing (websockets, uvicorn)"),
    ("uvicorn/", "WebSocket frame parsing (websockets, uvicorn)"),
    ("djust/", "djust's Python (consumer, session, chunk checks, acks)"),
    ("channels/", "Channels"),
]


def profile_kinds(profile: dict[str, Any]) -> list[tuple[str, float, float]]:
    """Self time grouped by kind of work (only the top functions py-spy reported)."""
    totals: dict[str, list[float]] = {}
    for row in profile["self"]:
        kind = next((k for pattern, k in PROFILE_KINDS if pattern in row["function"]), "other")
        entry = totals.setdefault(kind, [0.0, 0.0])
        entry[0] += row["seconds"]
        entry[1] += row["share"]
    return sorted(((k, v[0], v[1]) for k, v in totals.items()), key=lambda t: -t[1])


def _f(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _size(mib: int) -> str:
    return f"{mib} MiB" if mib < 1024 else f"{mib // 1024} GiB"


def markdown(results: dict[str, Any]) -> str:
    s = results["summary"]
    m, v = results["machine"], results["versions"]
    ours = results["djust"]
    out: list[str] = []
    w = out.append
    w("# Performance")
    w("")
    w(
        f"Generated by `{results['command']}` on {results['generated'][:10]} "
        f"({results['minutes']:.1f} minutes). Regenerate it with the same command; the raw numbers "
        "are in `bench/results.json`."
    )
    w("")
    w(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, Linux {m['kernel']}; "
        "shared with other work, so every figure is a median of several runs. Loopback "
        "(127.0.0.1), client and server on the same two cores."
    )
    w("")
    w(
        f"Versions: djust {v['djust']}; djust {v['djust_peer']} (PyPI) for comparison; "
        f"Python {v['python']}, Django {v.get('django')}, Channels {v.get('channels')}, "
        f"uvicorn {v.get('uvicorn')} (uvloop {v.get('uvloop')}, httptools {v.get('httptools')}), "
        f"websockets {v.get('websockets')} (client and server)"
        + (f", Chromium {ours['browser']['chromium']}" if ours.get("browser") else "")
        + "."
    )
    w("")
    opts = results["uvicorn_options"]
    w(
        "Every server is uvicorn with djust's options (`djust.server`, as `manage.py "
        f"djust_serve` runs it: `ws={opts['ws']}`, "
        f"`ws_per_message_deflate={opts['ws_per_message_deflate']}`, "
        f"`ws_max_size={opts.get('ws_max_size')}`), one worker."
    )
    w("")
    w("## Targets")
    w("")
    w("| target | measured | pass |")
    w("|---|---|---|")
    for row in s["targets"]:
        verdict = "–" if row["pass"] is None else ("**pass**" if row["pass"] else "**FAIL**")
        w(f"| {row['target']} | {row['shown']} | {verdict} |")
    w("")
    w("## Throughput")
    w("")
    w(
        "The same file of random bytes through each path, written to disk by the benchmark and "
        "read back in streaming fashion by the client. MB/s = 10⁶ bytes per second, from the "
        "first message to the file being in `default_storage` (for djust and djust 1.2.6: "
        "register → last chunk acknowledged → the `save` event's reply; for the POST: request "
        "→ response; for the raw sink: first frame → its byte count). Transfer-only MB/s stops "
        "at the upload's completion. CPU is the server process's user + system time over the "
        "run; RSS growth is its peak (VmHWM after resetting it through `/proc/PID/clear_refs`) "
        "minus its RSS before the run. Client CPU is the benchmark process's own (its clients, "
        'all threads); "both cores busy" is the share of the machine\'s CPU time in use '
        "during the run, by anything (`/proc/stat`): near 100 % the machine, not the path, is "
        'the limit. "Consume" is the `save` event (for djust a rename of the finished temp '
        "file). Every stored file was checked byte-identical (SHA-256)."
    )
    w("")
    for size in results["sizes_mib"]:
        w(f"### {_size(size)}")
        w("")
        w(
            "| path | runs | MB/s median (min–max) | transfer-only MB/s | consume | djust ÷ this "
            "| server CPU s/GiB | client CPU s/GiB | both cores busy | server peak RSS growth "
            "(median / worst) |"
        )
        w("|---|---|---|---|---|---|---|---|---|---|")
        for path, title in PATHS.items():
            p = s["paths"].get(f"{path}/{size}")
            if p is None:
                continue
            ratio = "1" if path == "djust" else f"{s['ratios'][f'{path}/{size}']:.2f}×"
            transfer = "–" if path in ("raw", "post") else _f(p["mb_s_transfer"])
            consume = p["consume_seconds"]
            consume_text = "–" if consume is None else f"{consume * 1000:,.0f} ms"
            w(
                f"| {title} | {p['runs']} | **{_f(p['mb_s'])}** ({_f(p['mb_s_min'])}–"
                f"{_f(p['mb_s_max'])}) | {transfer} | {consume_text} | {ratio} | "
                f"{_f(p['cpu_s_per_gib'], 2)} | {_f(p['client_cpu_s_per_gib'], 2)} | "
                f"{p['machine_busy'] * 100:.0f} % | "
                f"{_f(p['rss_growth_mib'], 1)} / {_f(p['rss_growth_mib_max'], 1)} MiB |"
            )
        w("")
    w("## A second connection while an upload runs")
    w("")
    w(
        "A separate process holds a second WebSocket to the same server (mounted on `/counter/` "
        "for djust, on the upload view for djust 1.2.6) and pings every 5 ms (`ping` → `pong`, "
        "one at a time). A round trip counts for a phase when it overlaps it; all runs of a size "
        "pooled. For the POST and the raw sink the second connection is a djust one on the same "
        "server. djust's consume of a large file (a rename) can be shorter than that interval, "
        "so for djust a third connection also sends one ping at the moment the `save` event is "
        "sent, counted with the consume's."
    )
    w("")
    idle = ours["idle_ping"]
    w(
        f"At rest: median {_f(idle['median_ms'], 2)} ms, p99 {_f(idle['p99_ms'], 2)} ms "
        f"(n={idle['n']}); the pings cost the server {_f(idle['server_cpu_ms_per_s'], 1)} CPU-ms "
        "per second, which the CPU figures above include."
    )
    w("")
    w("| path | size | phase | n | median | p99 | max |")
    w("|---|---|---|---|---|---|---|")
    pings = {**ours["ping"], **results.get("peer", {}).get("ping", {})}
    for key, stats in pings.items():
        path, size, phase = key.split("/")
        if not stats.get("n"):
            continue
        w(
            f"| {PATHS[path].split(' (')[0].split(',')[0]} | {_size(int(size))} | {phase} | "
            f"{stats['n']} | {_f(stats['median_ms'], 2)} ms | {_f(stats['p99_ms'], 2)} ms | "
            f"{_f(stats['max_ms'], 1)} ms |"
        )
    w("")
    browser = ours.get("browser")
    if browser:
        b = s["browser"]
        w(f"## Chromium: {_size(browser['size_mib'])} through `dj-upload` and through a POST")
        w("")
        w(
            "Debian's Chromium, headless, driven over the DevTools protocol by `bench/cdp.py` "
            "without its Network domain: with it on (as under Playwright, which the browser tests "
            "use) Chromium copies every binary WebSocket message, base64-encoded, to the driver, "
            "and ArrayBuffer sends run at a quarter of their speed. On a bench-only page "
            "(`bench/views.py`, "
            "`/bench/upload/`), one fresh page per run, kinds interleaved. dj-upload: from the "
            "input's `change` event to the `save` event's re-render showing the stored file (the "
            "page clicks Save on `djust:upload:progress` `complete`). POST: `fetch` with a "
            "`FormData` of the same file to the plain Django view, from the call to the response. "
            "Raw sink: the same file sent from the page to the raw ASGI sink in djust's frames "
            "(13-byte header + chunk; either one `Blob` of header + `File.slice` per frame or "
            "ArrayBuffers cut from 1 MiB reads; at most 2 MiB buffered), until the sink's byte "
            "count comes back: the browser's own WebSocket ceiling. Times measured in the page "
            "(`performance.now()`); stored files checked byte-identical."
        )
        w("")
        w("| path | runs | MB/s (median) | ÷ POST | seconds | of which upload | server CPU s/GiB |")
        w("|---|---|---|---|---|---|---|")
        for kind, title in BROWSER_KINDS.items():
            k = b.get(kind)
            if k is None:
                continue
            w(
                f"| {title} | {k['runs']} | **{_f(k['mb_s'])}** | "
                f"{k['mb_s'] / b['post']['mb_s']:.2f}× | {_f(k['seconds'], 2)} | "
                f"{_f(k['upload_seconds'], 2)} | {_f(k['cpu_s_per_gib'], 2)} |"
            )
        w("")
        sinks = [k for k in ("sink_64k_blob", "sink_64k_buffer") if k in b]
        if sinks and "sink_1m_blob" in b:
            best = max(sinks, key=lambda k: b[k]["mb_s"])
            w(
                "dj-upload sends its 64 KiB chunks in runs of up to 16 per message (1 MiB "
                "ArrayBuffer messages, each read from the file while the previous one is sent): "
                f"{b['djust']['mb_s'] / b['sink_1m_blob']['mb_s']:.2f}× of what this Chromium's "
                "WebSocket carried to the raw sink in 1 MiB Blob frames, and "
                f"{b['djust']['mb_s'] / b[best]['mb_s']:.1f}× the best it carried with one 64 KiB "
                f"chunk per message ({BROWSER_KINDS[best]}). The browser's WebSocket, not the "
                "server, is the limit: compare the server CPU."
            )
            w("")
    exe = ours["exe"]
    w(f"## A renamed {_size(exe['file_mib'])} Windows program")
    w("")
    w(
        f"`x.jpg`, declared `image/jpeg`, {exe['file_mib']} MiB starting with `MZ`, into a slot "
        f'with `accept=".jpg"`, through the same windowed client. The server answered '
        f'`{exe["code"]}` ("{exe["message"]}") after {exe["seconds_to_error"] * 1000:.1f} ms.'
    )
    w("")
    w("| bytes | MiB |")
    w("|---|---|")
    sent = exe["client_sent_before_error"] / MIB
    w(f"| sent by the client before the error reached it | {sent:.2f} |")
    w(
        f"| read by the server process by then (`/proc/PID/io` rchar, sockets included) | "
        f"{exe['server_read_by_then'] / MIB:.2f} |"
    )
    w(
        f"| written by the server process by then (wchar: its replies, no file data) | "
        f"{exe['server_wrote_by_then'] / MIB:.3f} |"
    )
    w("")
    w(
        "Until the first bytes pass the content checks, the client keeps at most the first "
        "window in flight (`min(UPLOAD_WINDOW, 4 × chunk_size)`, 256 KiB by default), as "
        "djust.js does; the verdict comes with the first chunk, after which the "
        "server writes nothing of the file and drops the chunks still arriving. By the time "
        "the error is back at the client, the rest of the window has already crossed the "
        "socket, which is what the target counts."
    )
    w("")
    w(
        "Temp files left in the upload directory afterwards: "
        f"{', '.join(exe['temp_files_left']) or 'none'}."
    )
    w("")
    c = ours["concurrent"]
    single = s["paths"][f"djust/{c['size_mib']}"]["mb_s"]
    w(f"## {c['connections']} concurrent {_size(c['size_mib'])} uploads, one worker")
    w("")
    w(
        f"{c['connections']} connections, each registering, streaming and consuming its own "
        f"upload at the same time: **{_f(c['aggregate_mb_s'])} MB/s** aggregate "
        f"({c['aggregate_mb_s'] / single:.2f}× one upload's {_f(single)} MB/s); per connection "
        f"{_f(min(c['per_connection_mb_s']))}–{_f(max(c['per_connection_mb_s']))} MB/s; server "
        f"{_f(c['cpu_s_per_gib'], 2)} CPU-s/GiB, peak RSS growth {_f(c['rss_growth_mib'], 1)} "
        f"MiB; all {c['byte_identical']} stored files byte-identical. Second connection's ping "
        f"meanwhile: median {_f(c['ping'].get('median_ms'), 2)} ms, p99 "
        f"{_f(c['ping'].get('p99_ms'), 2)} ms, max {_f(c['ping'].get('max_ms'), 1)} ms."
    )
    w("")
    clicks = ours["click_ms"]
    w("## Click round trip")
    w("")
    w(
        f"Event → re-rendered HTML on `/counter/`, 200 events, Python client: median "
        f"{clicks['median']:.2f} ms, p99 {clicks['p99']:.2f} ms."
    )
    w("")
    profile = ours.get("profile")
    if profile:
        w(f"## Where the djust server spends its time ({_size(max(results['sizes_mib']))})")
        w("")
        up = profile["upload"]
        w(
            f"py-spy {profile['rate_hz']} Hz (`--nonblocking`, idle samples excluded) on the "
            f"server during one upload + consume ({_f(up['mb_s'])} MB/s under the profiler): "
            f"{profile['active_seconds']:.1f} s of samples. Self time, top functions (C calls "
            "such as `os.write` and `hashlib` count for the Python function that makes them). "
            "py-spy's idle filter does not recognise every wait on this VM (a thread blocked in "
            "`work_queue.get` or in uvloop's epoll can count as active), so read the shares "
            "with the CPU by thread below, which is what the threads really used:"
        )
        w("")
        w("| function | lines | self s | share |")
        w("|---|---|---|---|")
        for row in profile["self"][:15]:
            lines = ", ".join(row["lines"])
            w(
                f"| `{row['function']}` | {lines} | {row['seconds']:.2f} | "
                f"{row['share'] * 100:.1f} % |"
            )
        w("")
        threads = profile.get("thread_cpu")
        if threads:
            seconds = up["seconds"]
            w(
                f"CPU by thread over the upload + consume ({seconds:.2f} s wall, "
                "`/proc/PID/task`): "
                + "; ".join(
                    f"{t['thread']} {t['cpu_s']:.2f} CPU-s ({t['busy'] * 100:.0f} % of the wall "
                    "time)"
                    for t in threads
                )
                + f". The machine was {up['machine_busy'] * 100:.0f} % busy (both cores, client "
                "included)."
            )
            w("")
        w("By kind of work (self time of the functions above):")
        w("")
        w("| work | s | share |")
        w("|---|---|---|")
        for kind, seconds, share in profile_kinds(profile):
            w(f"| {kind} | {seconds:.2f} | {share * 100:.0f} % |")
        w("")
        w(
            "Threads: "
            + "; ".join(f"{t['function']} {t['share'] * 100:.0f} %" for t in profile["threads"][:4])
            + "."
        )
        w("")
    disk = results.get("disk")
    if disk:
        w(f"## Writing a {_size(disk['mib'])} file to disk")
        w("")
        w(
            "djust's `TempFileWriter` alone, in 1 MiB page-aligned blocks (as the upload path "
            f"hands them over), median of {disk['runs']} runs: CPU of the writing thread and "
            "MB/s. *Cold*: after 3 s idle, by which time this VM has returned the memory of the "
            "last deleted file to its host (free page reporting), so that cached writes fault "
            "every page in again; between uploads this is the usual case. *Warm*: right after "
            "another file of the same size was written and deleted. djust writes files declared "
            "at least `DJUST['UPLOAD_DIRECT_IO']` bytes (16 MiB) with O_DIRECT."
        )
        w("")
        w("| writes | memory | CPU s/GiB | MB/s |")
        w("|---|---|---|---|")
        for memory in ("cold", "warm"):
            for mode, label in (("cached", "page cache"), ("direct", "O_DIRECT")):
                row = disk[f"{mode}/{memory}"]
                w(f"| {label} | {memory} | {row['cpu_s_per_gib']:.2f} | {_f(row['mb_s'])} |")
        w("")
    w("## Method notes")
    w("")
    w(
        "- One command starts everything: `bench/run.py` generates the files (os.urandom, 1 MiB "
        "at a time, in a temp directory that it deletes), starts the test project's server with "
        "`DJANGO_SETTINGS_MODULE=bench.settings` (tests.settings plus `bench/urls.py`, "
        "`bench/views.py` and the raw sink in `bench/asgi.py`) through `manage.py djust_serve`, "
        "and djust 1.2.6's server from `bench/.peer/venv` (created on first use, "
        "`pip install djust==1.2.6` and our uvicorn stack)."
    )
    w(
        "- djust 1.2.6 runs with `LIVEVIEW_CONFIG` `max_message_size` 2 MiB and its rate limits "
        "raised (`bench/peer_site/settings.py`): with its defaults every 64 KiB chunk frame "
        "(65,557 bytes) is refused and the upload-frame bucket disconnects the client. Its "
        "client (`bench/clients.py`) speaks its protocol as its own JavaScript does: 21-byte "
        "chunk headers sent back to back (no acknowledgements), a completion frame, then the "
        "`save` event; its `save` handler does the same work as ours (SHA-256, "
        "`default_storage.save`)."
    )
    w(
        "- The raw sink counts bytes only (no storage, no hash): the ceiling for any WebSocket "
        "upload in this server. The POST view reads `request.FILES` with Django's default "
        "upload handlers (the body is spooled to a temp file by Django's ASGI handler, then "
        "parsed into another), hashes and saves."
    )
    w(
        "- Runs of djust, the raw sink and the POST are interleaved (one of each per round), "
        "after one warm-up of each; the second connection's pinger runs during all of them. "
        "Before anything, 4 GiB are written and deleted: on this VM, page-cache writes into "
        "memory the kernel has not used recently cost several times more CPU."
    )
    w("")
    return "\n".join(out)
