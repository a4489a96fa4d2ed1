"""``@event_handler``: the only way to make a view method callable from the browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

MARK = "_djust_event_handler"


@overload
def event_handler(func: F) -> F: ...
@overload
def event_handler(func: None = None) -> Callable[[F], F]: ...
def event_handler(func: F | None = None) -> F | Callable[[F], F]:
    """Mark a view method as callable from the browser (with or without parentheses)."""

    def mark(f: F) -> F:
        setattr(f, MARK, True)
        return f

    return mark(func) if func is not None else mark


def is_event_handler(obj: object) -> bool:
    """True for functions decorated with ``@event_handler``."""
    return callable(obj) and getattr(obj, MARK, False) is True
