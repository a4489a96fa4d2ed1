"""Coerce event parameters (strings from ``dj-value-*`` and forms) by the handler's annotations."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from djust.errors import BadParams

_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no", ""}


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip(), 10)
    raise ValueError


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        result = float(value.strip())
        if result != result or result in (float("inf"), float("-inf")):
            raise ValueError
        return result
    raise ValueError


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    str: _to_str,
}


def coerce(value: Any, annotation: Any) -> Any:
    """Convert ``value`` to ``annotation``; raise ``ValueError`` when it cannot be done."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option)
            except ValueError:
                continue
        raise ValueError
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        items = value if isinstance(value, list) else [value]
        return [coerce(v, item) for v in items]
    converter = _CONVERTERS.get(annotation)
    if converter is None:
        return value
    return converter(value)


def bind(handler: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments to call ``handler`` with; ``BadParams`` on any mismatch."""
    signature = inspect.signature(handler)
    try:
        hints = typing.get_type_hints(handler)
    except Exception:
        hints = {}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    # A bound method's first parameter ("self") is bound already: **kwargs cannot take it.
    func = getattr(handler, "__func__", None)
    bound = next(iter(inspect.signature(func).parameters), None) if func else None
    named = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    kwargs: dict[str, Any] = {}
    for name, value in params.items():
        parameter = named.get(name)
        if parameter is None:
            if accepts_any and name.isidentifier() and name != bound:
                kwargs[name] = value
                continue
            raise BadParams(f"{handler.__name__}() takes no parameter {name!r}")
        annotation = hints.get(name, parameter.annotation)
        try:
            kwargs[name] = coerce(value, annotation)
        except (ValueError, TypeError, OverflowError):
            expected = getattr(annotation, "__name__", str(annotation))
            raise BadParams(
                f"{handler.__name__}(): parameter {name!r} must be {expected}, got {value!r:.60}"
            ) from None
    missing = [name for name, p in named.items() if p.default is p.empty and name not in kwargs]
    if missing:
        raise BadParams(f"{handler.__name__}() is missing parameter(s): {', '.join(missing)}")
    return kwargs
