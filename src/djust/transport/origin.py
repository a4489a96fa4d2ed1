"""The socket's origin check: a handshake must come from one of the site's own pages.

A browser attaches the site's cookies to a WebSocket handshake whatever page opened it, and
sends that page's origin (scheme, host and port) in the ``Origin`` header, which a page cannot
forge. So the origin is what tells the site's own pages from another site's (cross-site
WebSocket hijacking): it must equal the site's origin as the handshake shows it, or be listed in
``DJUST["ALLOWED_ORIGINS"]``. A handshake without an ``Origin`` header is refused: browsers
always send one, and other clients can send the site's origin themselves.

A host that only ``"*"`` in ``ALLOWED_HOSTS`` matches never makes an origin the site's own: with
DNS rebinding, a page at any name that resolves to the server sends a ``Host`` and an ``Origin``
that agree.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http.request import split_domain_port, validate_host

from djust import conf
from djust.transport.request import http_scope

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}
# scheme://host[:port] and nothing else: a DNS name or IPv4 address, or an IPv6 one in brackets.
_ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[a-f0-9:.]+\])(?::([0-9]{1,5}))?")


@dataclass(frozen=True)
class Origin:
    """A web origin: scheme, host (lowercase, no trailing dot) and port (default filled in)."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{self.host}" + ("" if default else f":{self.port}")


def parse_origin(value: str) -> Origin | None:
    """The origin ``value`` names (``https://host[:port]``), or None (``null``, a path, junk)."""
    match = _ORIGIN.fullmatch(value.lower())
    if match is None:
        return None
    scheme, host, port = match.groups()
    host = host.removesuffix(".")
    number = int(port) if port else DEFAULT_PORTS[scheme]
    if not host or host.startswith(".") or not 0 < number < 65536:
        return None
    return Origin(scheme, host, number)


def is_allowed(origin: str | None, site: Origin | None, listed: Iterable[Origin] = ()) -> bool:
    """Whether a handshake's ``Origin`` header is the site's own origin or a listed one."""
    parsed = parse_origin(origin) if origin is not None else None
    return parsed is not None and (parsed == site or parsed in set(listed))


def allowed_origins() -> list[Origin]:
    """``DJUST["ALLOWED_ORIGINS"]``, parsed; entries that name no origin are left out (and
    reported by the system check ``djust.E008``)."""
    entries = conf.get("ALLOWED_ORIGINS")
    if isinstance(entries, str) or not isinstance(entries, list | tuple):
        return []
    parsed = (parse_origin(entry) for entry in entries if isinstance(entry, str))
    return [origin for origin in parsed if origin is not None]


def _allowed_hosts() -> list[str]:
    # As Django's get_host(): with DEBUG and no ALLOWED_HOSTS, localhost is the site.
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def site_origin(scope: dict[str, Any]) -> Origin | None:
    """The site's own origin as a WebSocket handshake shows it, or None if its host is not one
    the site vouches for.

    Host and scheme are Django's own (``get_host()``, ``scheme``) for the same connection, so
    ``ALLOWED_HOSTS``, ``USE_X_FORWARDED_HOST``, ``USE_X_FORWARDED_PORT`` and
    ``SECURE_PROXY_SSL_HEADER`` count as they do for the pages.
    """
    request = ASGIRequest(http_scope(scope, "/", "", ""), io.BytesIO())
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    domain, _ = split_domain_port(host)
    if not validate_host(domain, [h for h in _allowed_hosts() if h != "*"]):
        return None
    return parse_origin(f"{request.scheme}://{host}")


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class OriginValidator:
    """ASGI middleware: refuses (HTTP 403) a WebSocket handshake from another origin."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            origin, site = _header(scope, b"origin"), site_origin(scope)
            if not is_allowed(origin, site, allowed_origins()):
                logger.warning(
                    "refused a WebSocket handshake from origin %r (this site: %s)",
                    origin,
                    site or "a host that ALLOWED_HOSTS names only by '*' or not at all",
                )
                await _refuse(receive, send)
                return
        await self.app(scope, receive, send)


async def _refuse(receive: Any, send: Any) -> None:
    # Closing before the accept makes the server answer the handshake with HTTP 403.
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})
