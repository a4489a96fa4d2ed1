"""A Django ``HttpRequest`` built from a WebSocket scope, for ``mount`` and templates."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, QueryDict
from django.http.cookie import parse_cookie


def from_scope(scope: dict[str, Any], path: str, query: str) -> HttpRequest:
    """A GET request for ``path`` carrying the socket's user, session, cookies and headers."""
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = path
    meta: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": scope.get("root_path", ""),
    }
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("localhost", 80)
    meta["REMOTE_ADDR"], meta["REMOTE_PORT"] = client[0], client[1]
    meta["SERVER_NAME"], meta["SERVER_PORT"] = server[0], str(server[1])
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin1").upper().replace("-", "_")
        value = raw_value.decode("latin1")
        key = name if name in ("CONTENT_LENGTH", "CONTENT_TYPE") else f"HTTP_{name}"
        meta[key] = f"{meta[key]},{value}" if key in meta else value
    request.META = meta
    request.GET = QueryDict(query)
    request.COOKIES = scope.get("cookies") or parse_cookie(meta.get("HTTP_COOKIE", ""))
    if "session" in scope:
        request.session = scope["session"]
    if "user" in scope:
        request.user = scope["user"]
    request.scope = scope  # type: ignore[attr-defined]
    return request
