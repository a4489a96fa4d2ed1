"""``djust_serve`` with DEBUG on listens on this machine only, unless told otherwise."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from djust import server


@pytest.fixture
def served(monkeypatch) -> list[dict[str, Any]]:
    """The calls ``djust_serve`` makes to uvicorn's boundary, recorded instead of serving."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "serve", lambda app, **options: calls.append(options))
    return calls


@pytest.mark.parametrize("addrport", ["0.0.0.0:8000", "192.168.1.5:8000", "[::]:8000", "h:80"])
@override_settings(DEBUG=True)
def test_debug_on_a_public_address_is_refused(addrport, served) -> None:
    with pytest.raises(CommandError, match="--allow-debug-public"):
        call_command("djust_serve", addrport)
    assert served == []


@override_settings(DEBUG=True)
def test_the_refusal_says_why(served) -> None:
    with pytest.raises(CommandError, match="tracebacks"):
        call_command("djust_serve", "0.0.0.0:8000")


@pytest.mark.parametrize(
    "addrport", ["127.0.0.1:8000", "127.0.0.2:8000", "localhost:8000", "[::1]:8000", "8000"]
)
@override_settings(DEBUG=True)
def test_debug_on_loopback_is_served(addrport, served) -> None:
    call_command("djust_serve", addrport, stdout=io.StringIO())
    assert len(served) == 1


@override_settings(DEBUG=True)
def test_the_flag_allows_debug_on_a_public_address(served) -> None:
    call_command("djust_serve", "0.0.0.0:8000", "--allow-debug-public", stdout=io.StringIO())
    assert served[0]["host"] == "0.0.0.0"


@override_settings(DEBUG=False)
def test_without_debug_a_public_address_is_served(served) -> None:
    call_command("djust_serve", "0.0.0.0:8000", stdout=io.StringIO())
    assert served[0]["host"] == "0.0.0.0"


def test_an_ipv6_address_is_bound_without_its_brackets(served) -> None:
    call_command("djust_serve", "[::1]:8000", stdout=io.StringIO())
    assert served[0]["host"] == "::1"
