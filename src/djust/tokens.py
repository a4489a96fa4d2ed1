"""Signed view tokens: the page tells the WebSocket which view to mount, and nobody can forge it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.utils.module_loading import import_string

from djust import conf
from djust.errors import BadToken, ExpiredToken

SALT = "djust.view-token"


@dataclass(frozen=True)
class ViewToken:
    """What a token names: the view class, the page's path, query string and URL kwargs, the
    user it was rendered for (``""`` for anonymous), so another session cannot replay it, and the
    script name the site is served under (the part of ``path`` before the URLconf's paths)."""

    view: str
    path: str
    query: str
    kwargs: dict[str, Any]
    user: str = ""
    script_name: str = ""


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def user_key(user: Any) -> str:
    """Who a token is for: the user's primary key, or ``""`` for anonymous."""
    return str(user.pk) if user is not None and user.is_authenticated else ""


def dumps(
    view_class: type,
    path: str,
    query: str,
    kwargs: dict[str, Any],
    user: str = "",
    script_name: str = "",
) -> str:
    """Sign a token for ``view_class`` rendered at ``path`` for ``user`` (see ``user_key``)."""
    payload = {
        "v": f"{view_class.__module__}.{view_class.__qualname__}",
        "p": path,
        "q": query,
        "k": {k: _jsonable(v) for k, v in kwargs.items()},
        "u": user,
    }
    if script_name:
        payload["s"] = script_name
    return signing.dumps(payload, salt=SALT, compress=True)


def loads(token: str) -> ViewToken:
    """Verify a token; ``BadToken`` if forged or tampered with, ``ExpiredToken`` if too old."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=conf.get("TOKEN_MAX_AGE"))
    except signing.SignatureExpired:
        raise ExpiredToken("the view token has expired; reload the page") from None
    except signing.BadSignature:
        raise BadToken("the view token is invalid") from None
    try:
        token = ViewToken(
            payload["v"],
            payload["p"],
            payload["q"],
            dict(payload["k"]),
            str(payload["u"]),
            str(payload.get("s", "")),
        )
    except (KeyError, TypeError, ValueError):
        raise BadToken("the view token is malformed") from None
    if not (isinstance(token.view, str) and isinstance(token.path, str)):
        raise BadToken("the view token is malformed")
    if not (isinstance(token.query, str) and token.path.startswith(token.script_name)):
        raise BadToken("the view token is malformed")
    return token


def view_class(token: ViewToken, base: type) -> type:
    """The class a verified token names, which must be a subclass of ``base``."""
    try:
        cls = import_string(token.view)
    except ImportError:
        raise BadToken(f"no view named {token.view!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise BadToken(f"{token.view!r} is not a {base.__name__}")
    return cls
