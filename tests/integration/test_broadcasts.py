"""Broadcasts within one server process (Channels' in-memory layer): one view's handler
re-renders every other view subscribed to the group. Several processes: test_redis.py."""

from __future__ import annotations

import asyncio
import re

import pytest

from djust.testing import ServerError

from .conftest import Live, fetch


def lines(html: str) -> list[str]:
    return re.findall(r"<li>(.*?)</li>", html)


async def rendered(client, timeout: float = 5.0) -> list[str]:
    """The lines of the next ``render`` message."""
    message = await asyncio.wait_for(client.wait_for(lambda m: m["t"] == "render"), timeout)
    return lines(message["html"])


async def nothing_more(client) -> None:
    """Nothing arrives for ``client`` but the answer to a ping sent after a short wait."""
    await asyncio.sleep(0.2)
    await client.ping()
    assert [m for m in client._backlog if m["t"] in ("render", "error")] == []


def test_a_broadcast_re_renders_another_subscribed_view(live: Live):
    async def body():
        alice, bob = await live.connect("/t/room/"), await live.connect("/t/room/")
        await alice.event("say", text="hello")
        assert (await rendered(bob))[-1].startswith("room said hello ")

    live.run(body())


def test_the_sender_s_own_view_gets_its_broadcast_after_the_reply(live: Live):
    async def body():
        alice = await live.connect("/t/room/")
        reply = await alice.event("say", text="echo")
        assert "html" not in reply  # the handler itself changed nothing
        assert await rendered(alice) == [f"room said echo {alice_pid(alice)}"]

    live.run(body())


def alice_pid(client) -> str:
    return re.search(r"<p id='pid'>(\d+)</p>", client.html).group(1)


def test_a_view_in_another_group_gets_nothing(live: Live):
    async def body():
        alice = await live.connect("/t/room/")
        carol = await live.connect("/t/room/?group=other")
        await alice.event("say", text="not for carol")
        await rendered(alice)
        await nothing_more(carol)
        assert lines(carol.html) == []

    live.run(body())


def test_subscribe_in_a_handler_joins_the_group(live: Live):
    async def body():
        alice = await live.connect("/t/room/")
        carol = await live.connect("/t/room/?group=other")
        await carol.event("join", group="room")
        await alice.event("say", text="now for carol")
        assert (await rendered(carol))[-1].startswith("room said now for carol ")

    live.run(body())


def test_unsubscribe_in_a_handler_leaves_the_group(live: Live):
    async def body():
        alice, bob = await live.connect("/t/room/"), await live.connect("/t/room/")
        await bob.event("leave", group="room")
        await alice.event("say", text="bob has left")
        await rendered(alice)
        await nothing_more(bob)
        assert lines(bob.html) == []

    live.run(body())


def test_an_async_sender_and_an_async_receiver(live: Live):
    async def body():
        alice = await live.connect("/t/room/")
        dave = await live.connect("/t/room-async/")
        await alice.event("say_async", text="from a coroutine")
        assert await rendered(dave) == ["async room said from a coroutine"]

    live.run(body())


def test_a_receiver_that_raises_gets_a_typed_error_and_keeps_its_connection(live: Live):
    async def body():
        alice, bob = await live.connect("/t/room/"), await live.connect("/t/room/")
        await alice.event("say", text="x", event="boom")
        error = await asyncio.wait_for(bob.wait_for(lambda m: m["t"] == "error"), 5)
        assert error["code"] == "handler_error"
        assert "secret detail" not in error["message"]  # DEBUG is off
        await alice.event("say", text="after the error")
        assert (await rendered(bob))[-1].startswith("room said after the error ")

    live.run(body())


def test_an_invalid_group_is_refused_by_the_handler_that_broadcasts(live: Live):
    async def body():
        alice = await live.connect("/t/room/")
        with pytest.raises(ServerError) as refused:
            await alice.event("say", text="x", group="no spaces allowed")
        assert refused.value.code == "handler_error"
        await alice.ping()

    live.run(body())


def test_many_subscribers_each_get_one_render(live: Live):
    async def body():
        viewers = [await live.connect("/t/room/?group=crowd") for _ in range(20)]
        await viewers[0].event("say", text="to all", group="crowd")
        for viewer in viewers:
            assert len(await rendered(viewer)) == 1

    live.run(body())


def test_a_plain_django_view_can_broadcast(live: Live):
    async def body():
        alice = await live.connect("/t/room/?group=news")
        answer = await asyncio.to_thread(fetch, live.server.url + "/t/announce/?group=news&text=hi")
        assert answer == "sent"
        assert await rendered(alice) == ["news said hi 0"]

    live.run(body())
