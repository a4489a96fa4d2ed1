"""A real PostgreSQL server with few connections: idle live pages hold none of them.

The server (Debian's ``postgresql``, installed by scripts/test) runs for the module with a data
directory of its own and ``max_connections`` of 10; a djust server process uses it as its
database. Every page of ``/t/users/`` runs a query when it renders, over HTTP and on mount.
"""

from __future__ import annotations

import asyncio
import shutil
import sys

import pytest

from djust.transport.threads import IDLE_TIMEOUT

from ..conftest import make_server
from ..postgres import PostgresServer, find_bindir
from .conftest import Live, fetch, wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(sys.platform != "linux", reason="PostgreSQL from Debian's binaries"),
]

MAX_CONNECTIONS = 10
PAGE = "/t/users/"


@pytest.fixture(scope="module")
def postgres():
    if find_bindir() is None:
        pytest.fail("PostgreSQL is missing: run scripts/test, which installs it")
    pg = PostgresServer(max_connections=MAX_CONNECTIONS).start()
    yield pg
    pg.remove()


@pytest.fixture(scope="module")
def pg_server(postgres):
    server = make_server(TEST_DATABASE_URL=postgres.url).start()
    yield server
    server.stop()
    shutil.rmtree(server.state_dir, ignore_errors=True)


async def open_idle_pages(live: Live, count: int) -> None:
    """Open ``count`` pages one after another; each queries on its GET, its mount and an event."""
    for _ in range(count):
        client = await live.connect(PAGE)
        assert "<ul id='users'>" in client.html
        # After the event the last call of the page is a render, and it queried.
        await client.event("refresh")


def test_idle_pages_hold_no_database_connection(postgres, pg_server) -> None:
    live = Live(pg_server)

    async def body() -> None:
        await open_idle_pages(live, 3 * MAX_CONNECTIONS)
        # A connection is closed as its call ends; the server notices within moments. Waiting
        # until a thread has been idle long enough to end would hide a connection kept open.
        released = await wait_until(
            lambda: postgres.client_connections() == 0, timeout=IDLE_TIMEOUT / 2, interval=0.1
        )
        assert released, f"{postgres.client_connections()} connections held by idle pages"

    live.run(body())


def test_a_plain_request_gets_a_connection_while_pages_are_idle(postgres, pg_server) -> None:
    live = Live(pg_server)

    async def body() -> None:
        await open_idle_pages(live, 3 * MAX_CONNECTIONS)
        html = await asyncio.to_thread(fetch, pg_server.url + PAGE)  # a 500 would raise
        assert "<ul id='users'>" in html
        assert postgres.client_connections() <= 2

    live.run(body())
