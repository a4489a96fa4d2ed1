"""The origin check: a handshake's Origin must be the site's own (scheme, host, port) or listed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.test import override_settings

from djust.transport.origin import (
    Origin,
    OriginValidator,
    is_allowed,
    parse_origin,
    site_origin,
)

SITE = Origin("http", "127.0.0.1", 8767)


# -- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8767", SITE),
        ("https://app.example.com", Origin("https", "app.example.com", 443)),
        ("https://app.example.com:443", Origin("https", "app.example.com", 443)),
        ("http://example.com:80", Origin("http", "example.com", 80)),
        ("HTTPS://App.Example.COM", Origin("https", "app.example.com", 443)),
        ("https://example.com.", Origin("https", "example.com", 443)),
        ("http://[::1]:8000", Origin("http", "[::1]", 8000)),
    ],
)
def test_an_origin_is_normalised(value, expected) -> None:
    assert parse_origin(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "null",
        "",
        "127.0.0.1:8767",
        "ws://127.0.0.1:8767",
        "file://",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com?x",
        "https://user@app.example.com",
        "https://*.example.com",
        "https://app.example.com:0",
        "https://app.example.com:65536",
        "https://app.example.com:",
        "https://.",
        "http://[::1",
        "http://127.0.0.1:8767 http://evil.example",
    ],
)
def test_what_names_no_origin_is_none(value) -> None:
    assert parse_origin(value) is None


def test_the_default_port_is_left_out_when_written() -> None:
    assert str(Origin("https", "app.example.com", 443)) == "https://app.example.com"
    assert str(SITE) == "http://127.0.0.1:8767"


# -- the comparison ------------------------------------------------------------------------


def test_the_sites_own_origin_is_allowed() -> None:
    assert is_allowed("http://127.0.0.1:8767", SITE)


def test_another_port_is_refused() -> None:
    assert not is_allowed("http://127.0.0.1:1", SITE)


def test_another_scheme_is_refused() -> None:
    assert not is_allowed("https://127.0.0.1:8767", SITE)


def test_another_name_for_the_same_machine_is_refused() -> None:
    assert not is_allowed("http://localhost:8767", SITE)


def test_a_listed_origin_is_allowed() -> None:
    listed = [Origin("https", "app.example.com", 443)]
    assert is_allowed("https://app.example.com", SITE, listed)
    assert not is_allowed("http://app.example.com", SITE, listed)


def test_a_missing_origin_is_refused() -> None:
    assert not is_allowed(None, SITE)


def test_null_is_refused() -> None:
    assert not is_allowed("null", SITE)


def test_nothing_is_the_site_when_its_host_is_not_vouched_for() -> None:
    assert not is_allowed("http://127.0.0.1:8767", None)


# -- the site's origin, as the handshake shows it --------------------------------------------


def scope(host: str | None, scheme: str = "ws", **headers: str) -> dict[str, Any]:
    pairs = [(b"host", host.encode())] if host is not None else []
    pairs += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {
        "type": "websocket",
        "scheme": scheme,
        "path": "/djust/ws/",
        "headers": pairs,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8767),
    }


def test_the_site_is_the_host_header_over_ws() -> None:
    assert site_origin(scope("127.0.0.1:8767")) == SITE


def test_the_site_is_https_over_wss() -> None:
    assert site_origin(scope("127.0.0.1:8767", "wss")) == Origin("https", "127.0.0.1", 8767)


def test_the_site_is_https_when_the_proxy_header_says_so() -> None:
    # tests/settings.py: SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    handshake = scope("app.example.com", x_forwarded_proto="https")
    with override_settings(ALLOWED_HOSTS=["app.example.com"]):
        assert site_origin(handshake) == Origin("https", "app.example.com", 443)


@override_settings(ALLOWED_HOSTS=["app.example.com"], USE_X_FORWARDED_HOST=True)
def test_the_forwarded_host_is_the_site_when_django_trusts_it() -> None:
    handshake = scope("127.0.0.1:8000", x_forwarded_host="app.example.com")
    assert site_origin(handshake) == Origin("http", "app.example.com", 80)


@override_settings(ALLOWED_HOSTS=["app.example.com"], USE_X_FORWARDED_PORT=True)
def test_the_forwarded_port_counts_as_django_counts_it() -> None:
    # Django reads X-Forwarded-Port only for a request without a Host header.
    handshake = scope(None, x_forwarded_port="8443")
    handshake["server"] = ("app.example.com", 8000)
    assert site_origin(handshake) == Origin("http", "app.example.com", 8443)


def test_a_host_outside_allowed_hosts_is_no_site() -> None:
    assert site_origin(scope("evil.example:8767")) is None


@override_settings(ALLOWED_HOSTS=["*"])
def test_a_host_only_the_wildcard_matches_is_no_site() -> None:
    assert site_origin(scope("127.0.0.1:8767")) is None


@override_settings(ALLOWED_HOSTS=["*", ".example.com"])
def test_a_host_another_entry_matches_is_the_site_beside_the_wildcard() -> None:
    assert site_origin(scope("app.example.com")) == Origin("http", "app.example.com", 80)


@override_settings(ALLOWED_HOSTS=[], DEBUG=True)
def test_with_debug_and_no_allowed_hosts_localhost_is_the_site() -> None:
    assert site_origin(scope("localhost:8000")) == Origin("http", "localhost", 8000)


# -- the middleware ------------------------------------------------------------------------


def handshake(origin: str | None, host: str = "127.0.0.1:8767") -> str:
    """What the middleware answers a handshake with: ``accept`` (reached the app) or ``close``."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    async def run() -> str:
        headers = {"origin": origin} if origin is not None else {}
        communicator = ApplicationCommunicator(OriginValidator(inner), scope(host, **headers))
        await communicator.send_input({"type": "websocket.connect"})
        reply = await communicator.receive_output(5)
        await communicator.wait(5)
        return reply["type"].removeprefix("websocket.")

    return asyncio.run(run())


def test_the_middleware_lets_the_sites_own_origin_through() -> None:
    assert handshake("http://127.0.0.1:8767") == "accept"


def test_the_middleware_closes_another_origin_before_accepting() -> None:
    assert handshake("http://localhost:1") == "close"


def test_the_middleware_closes_a_handshake_without_origin() -> None:
    assert handshake(None) == "close"


@override_settings(ALLOWED_HOSTS=["*"])
def test_with_only_the_wildcard_the_hosts_own_origin_is_refused() -> None:
    # DNS rebinding: a page at any name that resolves here sends a Host and Origin that agree.
    assert handshake("http://rebound.example:8767", host="rebound.example:8767") == "close"


@override_settings(
    ALLOWED_HOSTS=["*"], DJUST={"ALLOWED_ORIGINS": ["https://app.example.com", "bad"]}
)
def test_with_the_wildcard_a_listed_origin_is_let_through() -> None:
    assert handshake("https://app.example.com", host="anything.example") == "accept"
