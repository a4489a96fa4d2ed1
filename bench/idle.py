"""What an idle page costs the server: threads, file descriptors, memory, database connections.

    .venv/bin/python bench/idle.py                  # 200 pages, on PostgreSQL when installed
    .venv/bin/python bench/idle.py --pages 50 --sqlite

Starts the test project under ``djust_serve`` (on a private PostgreSQL server from Debian's
binaries when they are installed, SQLite otherwise), then opens ``--pages`` pages of
``/t/users/``, whose every render runs a query: the HTTP GET, then a WebSocket (the
``websockets`` client) that mounts the view and fires one event, each rendering again. The pages
stay open and idle. Prints what the server process holds (``/proc/PID``) and how many client
connections PostgreSQL counts: once warm, right after the last page opened, after ``--settle``
seconds of idleness and once the pages are closed. The figures are in docs/deployment.md
("What an idle page costs").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench.servers import MIB, BenchServer, proc_status  # noqa: E402
from djust.testing import LiveClient, WebSocketTransport, token_from_html  # noqa: E402
from tests.postgres import PostgresServer, find_bindir  # noqa: E402

PATH = "/t/users/"


class IdleServer(BenchServer):
    """The test project (``tests.settings``, which has ``/t/users/``) under ``djust_serve``."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "DJANGO_SETTINGS_MODULE": "tests.settings"}


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def snapshot(pid: int, pg: PostgresServer | None) -> dict[str, object]:
    """What the server process holds now."""
    return {
        "threads": len(os.listdir(f"/proc/{pid}/task")),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss_mib": proc_status(pid, "VmRSS") / MIB,
        "db_connections": pg.client_connections() if pg is not None else None,
    }


async def open_page(server: IdleServer, limit: asyncio.Semaphore) -> LiveClient:
    """GET the page, mount it over a WebSocket of its own, fire one event: three queries."""
    async with limit:
        html = await asyncio.to_thread(fetch, server.url + PATH)
        ws_url = server.url.replace("http", "ws", 1) + "/djust/ws/"
        transport = await WebSocketTransport.connect(ws_url, server.url)
        client = LiveClient(transport, timeout=60)
        await client.mount(token_from_html(html))
        await client.event("refresh")  # the page's last call is a render that queried
        return client


async def measure(
    server: IdleServer, pg: PostgresServer | None, pages: int, concurrency: int, settle: float
) -> list[tuple[str, dict[str, object]]]:
    pid = server.pid
    warm = await open_page(server, asyncio.Semaphore(1))  # imports, templates, first query
    await warm.close()
    await asyncio.sleep(settle)
    rows = [("warm, no page open", snapshot(pid, pg))]
    limit = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    clients = await asyncio.gather(*(open_page(server, limit) for _ in range(pages)))
    opened = time.monotonic() - started
    rows.append((f"{pages} pages, right after the last opened ({opened:.1f} s)", snapshot(pid, pg)))
    await asyncio.sleep(settle)
    rows.append((f"{pages} idle pages, {settle:g} s later", snapshot(pid, pg)))
    for client in clients:
        await client.close()
    await asyncio.sleep(settle)
    rows.append(("pages closed", snapshot(pid, pg)))
    return rows


def report(rows: list[tuple[str, dict[str, object]]], pages: int) -> None:
    print("| server process | threads | fds | RSS MiB | PostgreSQL connections |")
    print("|---|---:|---:|---:|---:|")
    for label, row in rows:
        db = "-" if row["db_connections"] is None else row["db_connections"]
        print(f"| {label} | {row['threads']} | {row['fds']} | {row['rss_mib']:.1f} | {db} |")
    base, idle = rows[0][1], rows[2][1]
    per_page = [
        f"{(idle[key] - base[key]) * scale / pages:.2f} {unit}"  # type: ignore[operator]
        for key, unit, scale in (
            ("threads", "threads", 1),
            ("fds", "fds", 1),
            ("rss_mib", "KiB", 1024),
        )
    ]
    if base["db_connections"] is not None:
        held = idle["db_connections"] - base["db_connections"]  # type: ignore[operator]
        per_page.append(f"{held / pages:.2f} database connections")
    print(f"\neach idle page: {', '.join(per_page)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200, help="idle pages to open (200)")
    parser.add_argument("--concurrency", type=int, default=10, help="pages opened at once (10)")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds to wait idle (8)")
    parser.add_argument("--sqlite", action="store_true", help="no PostgreSQL, even if installed")
    args = parser.parse_args()
    pg = None
    if not args.sqlite and find_bindir() is not None:
        # Room for one connection per page: a version that holds them must still be measurable.
        pg = PostgresServer(max_connections=args.pages + 20).start()
        os.environ["TEST_DATABASE_URL"] = pg.url  # read by tests/settings.py
    server = IdleServer()
    try:
        server.start()
        print(f"{'PostgreSQL ' + pg.url if pg else 'SQLite'}; server pid {server.pid}\n")
        rows = asyncio.run(measure(server, pg, args.pages, args.concurrency, args.settle))
        report(rows, args.pages)
    finally:
        server.stop()
        if pg is not None:
            pg.remove()


if __name__ == "__main__":
    main()
