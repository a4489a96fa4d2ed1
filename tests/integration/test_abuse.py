"""Holding the server's resources costs an attacker what it costs the server.

Each test runs attackers against a real server, most with small limits, and checks that an
honest neighbour is still served: upload quota (bytes really received, a minimum rate, limits per
address and per user), text frames (a budget per connection, turns per process) and file
descriptors (opened lazily, refused before they run out).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from djust.testing import LiveClient, WebSocketTransport, token_from_html
from djust.transport.protocol import CLOSE_RATE_LIMITED, encode_chunk

from ..conftest import Server
from .conftest import Live, fetch, wait_until
from .test_auth_sessions import Browser, create_users

SMALL_WINDOW = {"TEST_UPLOAD_WINDOW": "65536", "TEST_MAX_FRAME_SIZE": str(65536 + 13)}


async def registered(client: LiveClient, size: int, slot: str = "any", name: str = "a.bin") -> str:
    reply = await client.register(slot, name, size)
    assert reply["t"] == "upload_registered", reply
    return reply["ref"]


def upload_errors(client: LiveClient) -> list[dict[str, Any]]:
    return [m for m in client.received if m["t"] == "upload_error"]


# -- 3. upload quota -------------------------------------------------------------------------


def test_five_sockets_declaring_the_whole_process_quota_leave_room_for_an_honest_upload(servers):
    # Issue 11: five sockets each declare a fifth of the process's quota and send a byte.
    srv = servers(TEST_MAX_PROCESS_BYTES="1000000", **SMALL_WINDOW)
    live = Live(srv)
    data = os.urandom(300_000)

    async def body() -> None:
        attackers = [await live.connect() for _ in range(5)]
        for attacker in attackers:
            ref = await registered(attacker, 200_000, name="hold.bin")
            await attacker.transport.send_bytes(encode_chunk(ref, 0, b"x"))
            await attacker.ping()
        honest = await live.connect()
        result = await honest.upload("any", "honest.bin", data)
        assert result.status == "complete", result
        for attacker in attackers:  # still holding their uploads: room was never theirs
            await attacker.ping()
            assert upload_errors(attacker) == []

    live.run(body())


def test_an_upload_fails_quota_exceeded_at_the_first_byte_the_process_cannot_hold(servers):
    srv = servers(TEST_MAX_PROCESS_BYTES="1000000", **SMALL_WINDOW)
    live = Live(srv)

    async def body() -> None:
        holder = await live.connect()
        kept = await holder.upload("any", "kept.bin", os.urandom(800_000))
        assert kept.status == "complete", kept  # unconsumed: its 800,000 bytes stay charged
        late = await live.connect()
        result = await late.upload("any", "late.bin", os.urandom(300_000))
        assert (result.status, result.code) == ("error", "quota_exceeded"), result
        assert result.acks and result.acks[-1] <= 200_000  # it streamed until the room ran out
        assert await wait_until(lambda: len(srv.temp_files()) == 1)  # only kept.bin

    live.run(body())


def test_an_upload_slower_than_the_minimum_rate_fails_stalled(servers):
    srv = servers(TEST_MIN_RATE="4096", TEST_MIN_RATE_WINDOW="2", TEST_STALL_TIMEOUT="3")
    live = Live(srv)

    async def body() -> None:
        slow, steady = await live.connect(), await live.connect()
        slow_ref = await registered(slow, 100_000, name="slow.bin")
        steady_ref = await registered(steady, 1_000_000, name="steady.bin")
        sent = 0
        # Bytes often enough for the stall timeout, far too few for the minimum rate; the
        # neighbour sends 16 KiB each time (four times the minimum even at a round a second).
        while not upload_errors(slow) and sent < 45:
            await slow.transport.send_bytes(encode_chunk(slow_ref, sent * 50, b"x" * 50))
            await steady.transport.send_bytes(encode_chunk(steady_ref, sent * 16384, bytes(16384)))
            sent += 1
            await slow.ping()
            await asyncio.sleep(0.1)
        (error,) = upload_errors(slow)
        assert error["code"] == "stalled" and "bytes a second" in error["message"], error
        await steady.ping()
        assert upload_errors(steady) == []

    live.run(body())


def test_an_address_holds_at_most_max_uploads_per_client_unfinished_uploads(servers):
    srv = servers(TEST_MAX_UPLOADS_PER_CLIENT="3")
    live = Live(srv)

    async def body() -> None:
        first, second = await live.connect(), await live.connect()
        refs = [await registered(first, 1000), await registered(first, 1000)]
        await registered(second, 1000)
        third = await live.connect()
        refused = await third.register("any", "fourth.bin", 1000)
        assert (refused["t"], refused["code"]) == ("upload_error", "quota_exceeded")
        assert "one address" in refused["message"]
        await first.send({"t": "upload_cancel", "ref": refs[0]})
        await first.wait_for(lambda m: m["t"] == "upload_cancelled")
        await registered(third, 1000)

    live.run(body())


def test_a_signed_in_user_is_counted_as_the_user_not_as_the_address(servers):
    srv = servers(TEST_MAX_UPLOADS_PER_USER="2", TEST_MAX_UPLOADS_PER_CLIENT="2")
    create_users(srv, ["ada", "bob"])
    live = Live(srv)
    ada, ada_phone, bob = Browser(srv), Browser(srv), Browser(srv)
    for browser, name in ((ada, "ada"), (ada_phone, "ada"), (bob, "bob")):
        browser.log_in(name)

    async def body() -> None:
        on_laptop = await ada.open(live, "/t/uploads/")
        on_phone = await ada_phone.open(live, "/t/uploads/")
        await registered(on_laptop, 1000)
        await registered(on_phone, 1000)
        refused = await on_laptop.register("any", "third.bin", 1000)
        assert (refused["t"], refused["code"]) == ("upload_error", "quota_exceeded")
        assert "per user" in refused["message"]
        # Bob and anonymous visitors share ada's address; ada's uploads are not theirs.
        bobs = await bob.open(live, "/t/uploads/")
        await registered(bobs, 1000)
        await registered(bobs, 1000)
        anonymous = await live.connect()
        await registered(anonymous, 1000)

    live.run(body())


# -- 4. text frames --------------------------------------------------------------------------


async def flood(client: LiveClient, frames: list[str | bytes]) -> None:
    with contextlib.suppress(ConnectionClosed):
        for frame in frames:
            if isinstance(frame, str):
                await client.transport.send_text(frame)
            else:
                await client.transport.send_bytes(frame)


async def closed_with(client: LiveClient) -> int | None:
    ws = client.transport.ws  # type: ignore[attr-defined]
    await asyncio.wait_for(ws.wait_closed(), 10)
    return ws.close_code


def pings(count: int) -> list[str | bytes]:
    return [json.dumps({"t": "ping", "id": i}) for i in range(1, count + 1)]


def test_a_text_flood_within_the_frame_rate_is_closed_and_the_neighbour_answers(live):
    async def body() -> None:
        flooder, honest = await live.connect(), await live.connect()
        await flood(flooder, pings(1000))  # a twentieth of the frame rate's burst
        error = await flooder.wait_for(lambda m: m["t"] == "error")
        assert error["code"] == "rate_limited" and "text frames" in error["message"], error
        assert await closed_with(flooder) == CLOSE_RATE_LIMITED
        await honest.ping()

    live.run(body())


def test_binary_frames_that_are_no_upload_count_as_text(live):
    async def body() -> None:
        flooder, honest = await live.connect(), await live.connect()
        await flood(flooder, [encode_chunk(4242, 0, b"x")] * 1000)  # each answered bad_ref
        error = await flooder.wait_for(lambda m: m.get("code") == "rate_limited")
        assert error["t"] == "error"
        assert await closed_with(flooder) == CLOSE_RATE_LIMITED
        await honest.ping()

    live.run(body())


def test_late_chunks_of_a_cancelled_upload_cost_no_text_budget(live):
    async def body() -> None:
        client = await live.connect()
        ref = await registered(client, 1_000_000)
        await client.send({"t": "upload_cancel", "ref": ref})
        await client.wait_for(lambda m: m["t"] == "upload_cancelled")
        late = [encode_chunk(ref, i * 1024, bytes(1024)) for i in range(400)]
        await flood(client, late)  # twice the text budget: dropped quietly
        await client.ping()
        assert [m for m in client.received if m["t"] == "error"] == []

    live.run(body())


def test_connections_take_turns_when_the_process_budget_is_spent(servers):
    srv = servers(TEST_MAX_TEXT_FPS="5000", TEST_MAX_PROCESS_TEXT_FPS="1000")
    live = Live(srv)
    count = 2000  # within the flooder's own budget; the process's lets 100 pass at once

    async def body() -> None:
        flooder, honest = await live.connect(), await live.connect()
        pongs = 0

        async def read_pongs() -> None:
            nonlocal pongs
            while pongs < count:
                await flooder.wait_for(lambda m: m["t"] == "pong")
                pongs += 1

        reader = asyncio.create_task(read_pongs())
        await flood(flooder, pings(count))
        assert await wait_until(lambda: pongs > 0)  # the server is busy with the flood
        await honest.ping()
        # The honest ping waited for one turn, not behind the flooder's queue...
        assert pongs < count // 5, pongs
        # ...and the flooder is slowed down, not refused: every ping is answered.
        await asyncio.wait_for(reader, 15)
        assert [m for m in flooder.received if m["t"] == "error"] == []

    live.run(body())


# -- 5. file descriptors ---------------------------------------------------------------------


def upload_descriptors(server: Server) -> int:
    """How many of the server's descriptors are open on files in its upload directory."""
    count = 0
    assert server.process is not None
    for fd in Path(f"/proc/{server.process.pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            if os.readlink(fd).startswith(str(server.upload_dir)):
                count += 1
    return count


def test_registered_uploads_hold_no_descriptor_until_their_first_bytes(live):
    async def body() -> None:
        client = await live.connect()
        refs = [await registered(client, 100_000) for _ in range(4)]
        await client.ping()
        assert upload_descriptors(live.server) == 0
        await client.transport.send_bytes(encode_chunk(refs[0], 0, bytes(16 * 1024)))
        assert await wait_until(lambda: upload_descriptors(live.server) == 1)

    live.run(body())


def test_registrations_stop_before_the_process_runs_out_of_descriptors(servers):
    # No limit per address or process: the descriptors alone must hold the line, against
    # sockets that each register four uploads and start them, under a limit of 256.
    srv = servers(
        TEST_NOFILE="256",
        TEST_MAX_UPLOADS_PER_CLIENT="100000",
        TEST_MAX_UPLOADS_PER_PROCESS="100000",
    )
    live = Live(srv)

    async def body() -> None:
        refused = []
        for _ in range(60):
            attacker = await live.connect()
            for _ in range(4):
                reply = await attacker.register("any", "hold.bin", 100_000)
                if reply["t"] == "upload_error":
                    refused.append(reply)
                    continue
                await attacker.transport.send_bytes(encode_chunk(reply["ref"], 0, bytes(16384)))
        assert refused, "no registration was refused"
        assert {(r["code"], "file descriptors" in r["message"]) for r in refused} == {
            ("quota_exceeded", True)
        }
        # The honest visitor: a page over HTTP, a live page over a socket, an event.
        html = await asyncio.to_thread(fetch, srv.url + "/t/uploads/")
        transport = await WebSocketTransport.connect(srv.ws_url, srv.url)
        honest = LiveClient(transport, timeout=15)
        live.clients.append(honest)
        await honest.mount(token_from_html(html))
        await honest.event("save")
        await honest.ping()
        with urllib.request.urlopen(srv.url + "/t/events/", timeout=10) as response:
            assert response.status == 200

    live.run(body())
