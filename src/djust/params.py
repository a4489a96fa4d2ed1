"""Bind an event's parameters to an ``@event_handler``'s signature, converted by its annotations.

The rules (form names, multi-value fields, ``QueryDict``, ``Optional``, dates, ...) are written
for users in ``docs/events.md``.
"""

from __future__ import annotations

import datetime
import enum
import functools
import inspect
import math
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import QueryDict
from django.utils import dateparse, timezone

from djust.errors import BadParams

try:  # Python 3.14+: annotations are lazy; an unresolvable one must not hide the others.
    from annotationlib import Format

    _SIGNATURE_OPTIONS: dict[str, Any] = {"annotation_format": Format.FORWARDREF}
except ImportError:
    _SIGNATURE_OPTIONS = {}

__all__ = ["AllowNonFinite", "bind", "check_handler", "coerce"]

Convert = Callable[[Any], Any]
_NONE = type(None)
_EMPTY = inspect.Parameter.empty
# What a converter raises when a value does not fit (Decimal's errors are ArithmeticErrors).
_MISFIT = (ValueError, TypeError, ArithmeticError)


class _AllowNonFinite:
    def __repr__(self) -> str:
        return "AllowNonFinite"


AllowNonFinite: typing.Final = _AllowNonFinite()
"""``Annotated[float, AllowNonFinite]`` (or ``Decimal``) accepts NaN and the infinities."""


class _Unsupported(Exception):
    """An annotation, or a part of one, that event parameters cannot be converted to."""


# -- scalars ---------------------------------------------------------------------------------

_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no", ""}


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError


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


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError


def _to_float(value: Any, non_finite: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        result = float(value.strip())
    else:
        raise ValueError
    # JSON's NaN, Infinity and 1e999 arrive as floats: `amount > balance` is then always false.
    if not non_finite and not math.isfinite(result):
        raise ValueError
    return result


def _to_decimal(value: Any, non_finite: bool = False) -> Decimal:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))  # 0.1 stays 0.1, not its binary expansion
    elif isinstance(value, str):
        result = Decimal(value.strip())
    else:
        raise ValueError
    if not non_finite and not result.is_finite():
        raise ValueError
    return result


def _to_date(value: Any) -> datetime.date:
    result = dateparse.parse_date(value.strip()) if isinstance(value, str) else None
    if result is None:
        raise ValueError
    return result


def _to_datetime(value: Any) -> datetime.datetime:
    result = dateparse.parse_datetime(value.strip()) if isinstance(value, str) else None
    if result is None:
        raise ValueError
    # Django's forms do the same: a wall-clock time is in the current time zone.
    if settings.USE_TZ:
        return timezone.make_aware(result) if timezone.is_naive(result) else result
    return timezone.make_naive(result) if timezone.is_aware(result) else result


def _to_time(value: Any) -> datetime.time:
    result = dateparse.parse_time(value.strip()) if isinstance(value, str) else None
    if result is None:
        raise ValueError
    return result


def _to_uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError
    return uuid.UUID(value.strip())


def _to_enum(cls: type[enum.Enum], value: Any) -> enum.Enum:
    if isinstance(value, cls):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError
    try:
        return cls(value)
    except (ValueError, TypeError):
        pass
    # By value as the browser writes it ("2" for 2), then by name.
    text = str(value)
    for member in cls:
        if str(member.value) == text:
            return member
    if text in cls.__members__:
        return cls.__members__[text]
    raise ValueError


_SCALARS: dict[Any, tuple[Convert, str]] = {
    str: (_to_str, "a string"),
    int: (_to_int, "an integer"),
    bool: (_to_bool, "a boolean (true/false, on/off, yes/no, 1/0)"),
    float: (_to_float, "a finite number"),
    Decimal: (_to_decimal, "a finite decimal number"),
    datetime.date: (_to_date, "a date (YYYY-MM-DD)"),
    datetime.datetime: (_to_datetime, "a date and time (ISO 8601)"),
    datetime.time: (_to_time, "a time (HH:MM[:SS])"),
    uuid.UUID: (_to_uuid, "a UUID"),
}
_NON_FINITE: dict[Any, tuple[Convert, str]] = {
    float: (functools.partial(_to_float, non_finite=True), "a number"),
    Decimal: (functools.partial(_to_decimal, non_finite=True), "a decimal number"),
}


# -- annotations -----------------------------------------------------------------------------


def _unwrap(annotation: Any, non_finite: bool) -> tuple[Any, bool]:
    """``Annotated[X, ...]`` is ``X``, with ``AllowNonFinite`` noted."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *meta = typing.get_args(annotation)
        non_finite = non_finite or any(m is AllowNonFinite for m in meta)
    return annotation, non_finite


def _name(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_list(annotation: Any) -> bool:
    return annotation is list or typing.get_origin(annotation) is list


def _is_enum(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def _no_value(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _same(value: Any) -> Any:
    return value


def _union(options: list[Convert], optional: bool, value: Any) -> Any:
    if optional and _no_value(value):
        return None
    for option in options:
        try:
            return option(value)
        except _MISFIT:
            continue
    raise ValueError


def _list(item: Convert, value: Any) -> list[Any]:
    if value is None:
        raise ValueError
    if isinstance(value, str) and value == "":
        return []  # what `dj-change` on an unchecked box sends
    return [item(v) for v in (value if isinstance(value, list) else [value])]


def _literal(choices: list[tuple[Any, Convert]], optional: bool, value: Any) -> Any:
    if optional and _no_value(value):
        return None
    for choice, convert in choices:
        try:
            if convert(value) == choice:
                return choice
        except _MISFIT:
            continue
    raise ValueError


def _last(convert: Convert, value: Any) -> Any:
    # One value wanted, several sent (a repeated form field): the last, as QueryDict[name].
    if isinstance(value, list):
        if not value:
            raise ValueError
        value = value[-1]
    return convert(value)


def _converter(annotation: Any, non_finite: bool = False) -> Convert:
    """A function converting one value (never a list of values for a scalar)."""
    annotation, non_finite = _unwrap(annotation, non_finite)
    if annotation is _EMPTY or annotation is Any:
        return _same
    if _is_union(annotation):
        args = typing.get_args(annotation)
        options = [_converter(a, non_finite) for a in args if a is not _NONE]
        return functools.partial(_union, options, _NONE in args)
    if _is_list(annotation):
        (item,) = typing.get_args(annotation) or (Any,)
        return functools.partial(_list, _converter(item, non_finite))
    if typing.get_origin(annotation) is typing.Literal:
        values = typing.get_args(annotation)
        choices = [(v, _converter(type(v))) for v in values if v is not None]
        return functools.partial(_literal, choices, None in values)
    if _is_enum(annotation):
        return functools.partial(_to_enum, annotation)
    try:
        table = _NON_FINITE if non_finite and annotation in _NON_FINITE else _SCALARS
        return table[annotation][0]
    except (KeyError, TypeError):
        raise _Unsupported(annotation) from None


def _takes_lists(annotation: Any) -> bool:
    annotation, _ = _unwrap(annotation, False)
    if annotation is _EMPTY or annotation is Any or _is_list(annotation):
        return True
    return _is_union(annotation) and any(_takes_lists(a) for a in typing.get_args(annotation))


def _parameter_converter(annotation: Any) -> Convert:
    convert = _converter(annotation)
    return convert if _takes_lists(annotation) else functools.partial(_last, convert)


def _describe(annotation: Any, non_finite: bool = False) -> str:
    """What a parameter expects, in words for the ``bad_params`` message."""
    annotation, non_finite = _unwrap(annotation, non_finite)
    if annotation is _EMPTY or annotation is Any:
        return "any value"
    if _is_union(annotation):
        args = typing.get_args(annotation)
        words = [_describe(a, non_finite) for a in args if a is not _NONE]
        return " or ".join(words + (["empty"] if _NONE in args else []))
    if _is_list(annotation):
        (item,) = typing.get_args(annotation) or (Any,)
        return "a list" if item is Any else f"a list (each item {_describe(item, non_finite)})"
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(annotation)))
    if _is_enum(annotation):
        values = ", ".join(repr(str(m.value)) for m in annotation)
        return f"a {annotation.__name__} value ({values}) or name"
    table = _NON_FINITE if non_finite and annotation in _NON_FINITE else _SCALARS
    return table[annotation][1]


def coerce(value: Any, annotation: Any) -> Any:
    """Convert one parameter's ``value`` by ``annotation``; ``ValueError`` if it does not fit.

    An annotation that parameters cannot be converted to is ``ImproperlyConfigured``.
    """
    try:
        convert = _parameter_converter(annotation)
    except _Unsupported as exc:
        raise ImproperlyConfigured(
            f"event parameters cannot be converted to {_name(exc.args[0])}"
        ) from None
    try:
        return convert(value)
    except _MISFIT:
        raise ValueError(f"{value!r:.60} is not {_describe(annotation)}") from None


# -- handlers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parameter:
    convert: Convert
    expected: str
    required: bool
    is_list: bool


@dataclass(frozen=True)
class _Plan:
    """What ``bind`` needs to know about a handler, worked out once."""

    named: dict[str, _Parameter]
    takes_any: bool  # has **kwargs
    querydict: str | None  # the name of the parameter that receives all data
    reserved: frozenset[str]  # names **kwargs must not take: the instance, the QueryDict


_SUPPORTED = (
    "no annotation, Any, str, int, float, bool, Decimal, date, datetime, time, UUID, Enum "
    "subclasses, Literal[...], list[X], Optional[X] / X | None and unions of these, "
    "Annotated[X, ...], and QueryDict for the whole submitted data"
)


def _resolve(where: str, name: str, raw: Any, globalns: dict[str, Any]) -> Any:
    """One parameter's annotation, evaluated on its own so that another's error cannot spread."""
    if raw is _EMPTY:
        return raw
    holder = types.SimpleNamespace(__annotations__={name: raw})
    try:
        return typing.get_type_hints(holder, globalns=globalns, include_extras=True)[name]
    except Exception as exc:
        text = raw if isinstance(raw, str) else getattr(raw, "__forward_arg__", raw)
        raise ImproperlyConfigured(
            f"{where}(): the annotation {text!r} of parameter {name!r} cannot be resolved when "
            f"the class is defined ({type(exc).__name__}: {exc}). Event parameters are converted "
            f"by their annotations, so each must name something importable at that point: a "
            f"forward reference (a name imported only under `if TYPE_CHECKING:`, or defined "
            f"further down the module) is not resolved later. Import the name above the view, "
            f"or annotate the parameter with a supported type and look the object up in the "
            f"handler."
        ) from exc


@functools.lru_cache(maxsize=4096)
def _plan(func: Callable[..., Any], skip_instance: bool) -> _Plan:
    where = getattr(func, "__qualname__", repr(func))
    try:
        signature = inspect.signature(func, **_SIGNATURE_OPTIONS)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{where} has no signature to bind events to: {exc}") from exc
    parameters = list(signature.parameters.values())
    reserved: set[str] = set()
    if (
        skip_instance
        and parameters
        and parameters[0].kind
        in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
    ):
        reserved.add(parameters.pop(0).name)
    globalns = getattr(inspect.unwrap(func), "__globals__", {})
    named: dict[str, _Parameter] = {}
    takes_any, querydict = False, None
    for p in parameters:
        if p.kind is p.VAR_KEYWORD:
            takes_any = True
            continue
        if p.kind is p.VAR_POSITIONAL or (p.kind is p.POSITIONAL_ONLY and p.default is not _EMPTY):
            continue
        if p.kind is p.POSITIONAL_ONLY:
            raise ImproperlyConfigured(
                f"{where}(): parameter {p.name!r} is positional-only, but an event passes its "
                f"parameters by name. Remove the '/' or give it a default."
            )
        annotation = _resolve(where, p.name, p.annotation, globalns)
        if annotation is QueryDict:
            if querydict is not None:
                raise ImproperlyConfigured(
                    f"{where}(): parameters {querydict!r} and {p.name!r} are both annotated "
                    f"QueryDict; one receives all the submitted data."
                )
            querydict = p.name
            reserved.add(p.name)
            continue
        try:
            convert = _parameter_converter(annotation)
        except _Unsupported as exc:
            whole, part = _name(p.annotation), _name(exc.args[0])
            raise ImproperlyConfigured(
                f"{where}(): parameter {p.name!r} is annotated {whole}"
                f"{'' if part == whole else f' (with {part} in it)'}, which event parameters "
                f"cannot be converted to. Supported: {_SUPPORTED}. Annotate it Any (or not at "
                f"all) to receive the JSON value unchanged."
            ) from None
        required = p.default is _EMPTY
        is_list = _is_list(_unwrap(annotation, False)[0])
        named[p.name] = _Parameter(convert, _describe(annotation), required, is_list)
    return _Plan(named, takes_any, querydict, frozenset(reserved))


def check_handler(func: Callable[..., Any]) -> None:
    """Raise ``ImproperlyConfigured`` if events cannot be bound to this handler's parameters.

    ``func`` is the handler as found in the class body (its first parameter is the instance)
    or bound to one.
    """
    if isinstance(func, staticmethod):
        _plan(func.__func__, False)
    elif isinstance(func, classmethod) or inspect.ismethod(func):
        _plan(func.__func__, True)
    else:
        _plan(func, True)


def _form_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"  # what Django's CheckboxInput reads
    if isinstance(value, int | float):
        return str(value)
    raise ValueError


def _querydict(where: str, params: Mapping[str, Any]) -> QueryDict:
    data = QueryDict(mutable=True)
    for name, value in params.items():
        values = [v for v in (value if isinstance(value, list) else [value]) if v is not None]
        try:
            if values:
                data.setlist(name, [_form_value(v) for v in values])
        except ValueError:
            raise BadParams(
                f"{where}(): parameter {name!r} must be a string or a list of strings to go "
                f"into a QueryDict, got {value!r:.60}"
            ) from None
    return data


def bind(handler: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments to call ``handler`` with; ``BadParams`` on any mismatch."""
    bound = inspect.ismethod(handler)
    plan = _plan(handler.__func__ if bound else handler, bound)  # type: ignore[attr-defined]
    where = getattr(handler, "__name__", "handler")
    kwargs: dict[str, Any] = {}
    for name, value in params.items():
        parameter = plan.named.get(name)
        if parameter is not None:
            try:
                kwargs[name] = parameter.convert(value)
            except _MISFIT:
                raise BadParams(
                    f"{where}(): parameter {name!r} must be {parameter.expected}, got {value!r:.60}"
                ) from None
        elif plan.takes_any and name not in plan.reserved:
            kwargs[name] = value
        elif plan.querydict is None:
            raise BadParams(f"{where}() takes no parameter {name!r}")
    missing = []
    for name, parameter in plan.named.items():
        if parameter.required and name not in kwargs:
            if parameter.is_list:
                kwargs[name] = []  # a form sends nothing at all for a group with none checked
            else:
                missing.append(name)
    if missing:
        raise BadParams(f"{where}() is missing parameter(s): {', '.join(missing)}")
    if plan.querydict is not None:
        kwargs[plan.querydict] = _querydict(where, params)
    return kwargs
