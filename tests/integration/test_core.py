"""The LiveView core through a real server and a real WebSocket client."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from websockets.exceptions import InvalidStatus

from djust.testing import ServerError, WebSocketTransport

from .conftest import fetch, run_async


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf"id='{element_id}'>(.*?)<", html)
    assert match, f"#{element_id} not in {html[:300]}"
    return match.group(1)


def test_http_get_renders_the_mounted_state_without_javascript(server):
    html = fetch(server.url + "/t/events/")
    assert "<p id='n'>0</p>" in html
    assert "dj-view=" in html and "djust/djust.js" in html


def test_mount_over_the_socket_sends_the_same_html(live):
    async def body():
        client = await live.connect("/t/events/")
        assert text_of(client.html, "n") == "0"

    live.run(body())


def test_event_re_renders_and_sends_the_new_html(live):
    async def body():
        client = await live.connect("/t/events/")
        reply = await client.event("add", by="5")
        assert text_of(reply["html"], "n") == "5"

    live.run(body())


def test_event_that_changes_nothing_sends_no_html(live):
    async def body():
        client = await live.connect("/t/events/")
        reply = await client.event("nothing")
        assert reply["t"] == "reply" and "html" not in reply

    live.run(body())


def test_parameters_are_coerced_by_annotations(live):
    async def body():
        client = await live.connect("/t/events/")
        reply = await client.event("typed", i="42", f="2.5", b="true", s="x")
        assert text_of(reply["html"], "kind") == "int float bool str"
        assert text_of(reply["html"], "last") == "42 2.5 True &#x27;x&#x27;"

    live.run(body())


@pytest.mark.parametrize(
    "params",
    [
        {"i": "4x", "f": "1", "b": "1", "s": ""},
        {"i": "1", "f": "nan", "b": "1", "s": ""},
        {"i": "1", "f": "1", "b": "maybe", "s": ""},
        {"i": "1", "f": "1", "b": "1"},
        {"i": "1", "f": "1", "b": "1", "s": "", "extra": "1"},
    ],
    ids=["bad-int", "nan-float", "bad-bool", "missing", "unexpected"],
)
def test_uncoercible_or_wrong_parameters_are_a_typed_error(live, params):
    async def body():
        client = await live.connect("/t/events/")
        with pytest.raises(ServerError) as caught:
            await client.event("typed", **params)
        assert caught.value.code == "bad_params"
        assert text_of((await client.event("add"))["html"], "n") == "1"  # still usable

    live.run(body())


@pytest.mark.parametrize(
    "name", ["mount", "not_a_handler", "_private", "__init__", "missing", "allow_upload", "a b"]
)
def test_only_decorated_handlers_can_be_called(live, name):
    async def body():
        client = await live.connect("/t/events/")
        with pytest.raises(ServerError) as caught:
            await client.event(name)
        assert caught.value.code == "unknown_event"
        reply = await client.event("add")
        assert text_of(reply["html"], "n") == "1"

    live.run(body())


def test_async_handlers_run(live):
    async def body():
        client = await live.connect("/t/events/")
        reply = await client.event("add_async", by=3)
        assert text_of(reply["html"], "n") == "3"

    live.run(body())


def test_handler_exception_is_a_typed_error_without_details(live):
    async def body():
        client = await live.connect("/t/events/")
        with pytest.raises(ServerError) as caught:
            await client.event("boom")
        assert caught.value.code == "handler_error"
        assert "secret detail" not in str(caught.value.payload)
        assert "Traceback" not in str(caught.value.payload)
        reply = await client.event("add")
        assert text_of(reply["html"], "n") == "0"  # -1 set before the raise, then +1

    live.run(body())


def test_url_kwargs_reach_mount_with_their_converter_types(live):
    async def body():
        client = await live.connect("/t/items/7/")
        assert text_of(client.html, "pk") == "int:7"

    live.run(body())


def test_request_carries_path_query_and_anonymous_user(live):
    async def body():
        client = await live.connect("/t/whoami/?q=hello")
        assert text_of(client.html, "user") == "anonymous"
        assert text_of(client.html, "path") == "/t/whoami/?hello"

    live.run(body())


@pytest.mark.parametrize(
    "mangle,code",
    [
        (lambda t: t[:-3] + "abc", "bad_token"),
        (lambda t: "x" + t, "bad_token"),
        (lambda t: "garbage", "bad_token"),
    ],
    ids=["tampered-signature", "tampered-payload", "forged"],
)
def test_bad_tokens_are_refused_with_a_clear_error(live, mangle, code):
    async def body():
        client = await live.connect("/t/events/", mount=False)
        with pytest.raises(ServerError) as caught:
            await client.mount(mangle(client.token))
        assert caught.value.code == code

    live.run(body())


def test_expired_token_is_refused(live):
    from unittest import mock

    from django.core import signing

    from djust import tokens

    async def body():
        client = await live.connect("/t/events/", mount=False)
        payload = signing.loads(client.token, salt=tokens.SALT)
        two_days_ago = time.time() - 2 * 86400
        with mock.patch("django.core.signing.time.time", return_value=two_days_ago):
            stale = signing.dumps(payload, salt=tokens.SALT, compress=True)
        with pytest.raises(ServerError) as caught:
            await client.mount(stale)
        assert caught.value.code == "expired_token"

    live.run(body())


def test_events_before_mount_are_refused(live):
    async def body():
        client = await live.connect("/t/events/", mount=False)
        with pytest.raises(ServerError) as caught:
            await client.event("add")
        assert caught.value.code == "not_mounted"

    live.run(body())


@pytest.mark.parametrize(
    "raw", ["not json", "[1,2]", '{"t":"nope"}', '{"t":"event","id":"1","name":"x","params":{}}']
)
def test_malformed_messages_get_bad_message_and_the_socket_stays_open(live, raw):
    async def body():
        client = await live.connect("/t/events/")
        await client.transport.send_text(raw)
        error = await client.wait_for(lambda m: m["t"] == "error")
        assert error["code"] == "bad_message"
        assert text_of((await client.event("add"))["html"], "n") == "1"

    live.run(body())


def test_foreign_origin_is_refused_at_the_handshake(server):
    async def body():
        with pytest.raises(InvalidStatus) as caught:
            await WebSocketTransport.connect(server.ws_url, "http://evil.example")
        assert caught.value.response.status_code == 403

    run_async(body())


def test_a_blocking_handler_does_not_stall_other_connections(live):
    async def body():
        slow = await live.connect("/t/slow/")
        other = await live.connect("/t/events/")
        blocked = asyncio.create_task(slow.event("block", seconds=1.5))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await other.event("add")
        elapsed = time.monotonic() - started
        await blocked
        assert elapsed < 0.5

    live.run(body())


def test_ping_is_answered(live):
    async def body():
        client = await live.connect("/t/events/")
        await client.ping()
        assert client.received[-1]["t"] == "pong"

    live.run(body())


@pytest.mark.parametrize("handler", ["block", "wait"], ids=["blocking", "async"])
def test_the_page_hears_from_the_server_every_second_while_a_handler_runs(live, handler):
    async def body() -> list[str]:
        client = await live.connect("/t/slow/")
        await client.event(handler, seconds=2.5)
        return [m["t"] for m in client.received]

    kinds = live.run(body())
    after_mount = kinds[kinds.index("mounted") + 1 :]
    assert after_mount[-1] == "reply"
    assert after_mount[:-1] and set(after_mount[:-1]) == {"busy"}  # twice, unless the VM lags
