"""Broadcasts without a server: group names, payload checks, the view's subscriptions, and the
socket's memberships in Channels' in-memory layer."""

from __future__ import annotations

import asyncio
import contextvars
import math

import pytest
from channels.layers import InMemoryChannelLayer
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from djust import LiveView, broadcasts


class Subscriber(LiveView):
    template_string = "<p>{{ n }}</p>"

    def mount(self, request, **kwargs):
        self.n = 0
        self.subscribe("news")


@pytest.mark.parametrize("group", ["a", "room", "user.42", "big-room_1", "x" * 80])
def test_valid_group_names(group):
    assert broadcasts.check_group(group) == group


@pytest.mark.parametrize("group", ["", "two words", "é", "a/b", "x" * 81, "tab\t"])
def test_invalid_group_names_are_a_value_error(group):
    with pytest.raises(ValueError, match="invalid broadcast group"):
        broadcasts.check_group(group)


def test_a_group_that_is_not_a_str_is_a_type_error():
    with pytest.raises(TypeError, match="not int"):
        broadcasts.check_group(42)


@pytest.mark.parametrize("payload", [{"when": object()}, {"x": math.nan}, {"b": b"bytes"}])
def test_a_payload_that_is_not_json_is_refused_before_sending(payload):
    with pytest.raises(TypeError, match="not JSON-serializable"):
        broadcasts.broadcast("room", "said", **payload)


def test_an_empty_event_name_is_refused():
    with pytest.raises(ValueError, match="event name"):
        broadcasts.broadcast("room", "")


@override_settings(CHANNEL_LAYERS={})
def test_without_a_channel_layer_broadcast_says_what_to_configure():
    with pytest.raises(ImproperlyConfigured, match="CHANNEL_LAYERS"):
        broadcasts.broadcast("room", "said")


def test_subscribe_and_unsubscribe_record_the_groups():
    view = Subscriber()
    view.mount(None)
    view.subscribe("sports")
    view.unsubscribe("news")
    view.unsubscribe("never-joined")
    assert view._djust_groups == {"sports"}


def test_subscribe_refuses_an_invalid_group_at_once():
    with pytest.raises(ValueError):
        Subscriber().subscribe("bad group")


def test_the_groups_are_not_template_context():
    view = Subscriber()
    view.mount(None)
    assert "_djust_groups" not in view.get_context_data()
    assert view.render_template() == "<p>0</p>"


# -- the socket's side: Subscriptions on the in-memory layer --------------------------------


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: dict) -> None:
        self.messages.append(message)
        self.arrived.set()


def members(layer: InMemoryChannelLayer, group: str) -> set[str]:
    return set(layer.groups.get(broadcasts.GROUP_PREFIX + group, {}))


@pytest.fixture
def layer(monkeypatch):
    memory = InMemoryChannelLayer()
    monkeypatch.setattr(broadcasts, "get_channel_layer", lambda: memory)
    return memory


def test_update_joins_new_groups_and_leaves_old_ones(layer):
    async def body():
        subs = broadcasts.Subscriptions(Recorder())
        await subs.update({"a", "b"})
        joined = (members(layer, "a"), members(layer, "b"))
        await subs.update({"b", "c"})
        after = (members(layer, "a"), members(layer, "b"), members(layer, "c"))
        await subs.close()
        return subs.channel, joined, after

    channel, joined, after = asyncio.run(body())
    assert joined == ({channel}, {channel})
    assert after == (set(), {channel}, {channel})


def test_close_leaves_every_group(layer):
    async def body():
        subs = broadcasts.Subscriptions(Recorder())
        await subs.update({"a", "b"})
        await subs.close()

    asyncio.run(body())
    assert members(layer, "a") == members(layer, "b") == set()


def test_a_broadcast_is_delivered_with_its_group_event_and_payload(layer):
    async def body():
        recorder = Recorder()
        subs = broadcasts.Subscriptions(recorder)
        await subs.update({"room"})
        await broadcasts.abroadcast("room", "said", text="hi", n=[1, 2])
        await asyncio.wait_for(recorder.arrived.wait(), 5)
        await subs.close()
        return recorder.messages

    assert asyncio.run(body()) == [
        {
            "type": "djust.broadcast",
            "group": "room",
            "event": "said",
            "payload": {"text": "hi", "n": [1, 2]},
        }
    ]


def test_broadcast_from_a_session_thread_is_sent_on_the_session_loop(layer):
    async def body():
        recorder = Recorder()
        subs = broadcasts.Subscriptions(recorder)
        await subs.update({"room"})
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        context.run(broadcasts.session_loop.set, loop)
        await loop.run_in_executor(
            None, context.run, lambda: broadcasts.broadcast("room", "said", text="thread")
        )
        await asyncio.wait_for(recorder.arrived.wait(), 5)
        await subs.close()
        return recorder.messages[0]["payload"]

    assert asyncio.run(body()) == {"text": "thread"}


def test_a_delivery_that_raises_does_not_stop_the_listener(layer):
    async def body():
        seen = []

        async def flaky(message):
            seen.append(message["payload"]["n"])
            if len(seen) == 1:
                raise RuntimeError("first one fails")

        subs = broadcasts.Subscriptions(flaky)
        await subs.update({"room"})
        await broadcasts.abroadcast("room", "said", n=1)
        await broadcasts.abroadcast("room", "said", n=2)
        deadline = asyncio.get_running_loop().time() + 5
        while len(seen) < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await subs.close()
        return seen

    assert asyncio.run(body()) == [1, 2]
