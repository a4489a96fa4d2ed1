from __future__ import annotations

import inspect
from typing import Any, Optional, Union

import pytest

from djust.errors import BadParams
from djust.params import bind, coerce

# -- coerce --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), (" -7 ", -7), (3, 3), (4.0, 4), ("0", 0)],
)
def test_int_from_strings_ints_and_whole_floats(value: Any, expected: int) -> None:
    result = coerce(value, int)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value", ["4x", "", "1.5", "0x10", 1.5, True, False, None, [], {}])
def test_int_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, int)


@pytest.mark.parametrize(
    ("value", "expected"), [("2.5", 2.5), (" 1e3 ", 1000.0), (3, 3.0), (0.25, 0.25), ("-0", -0.0)]
)
def test_float_from_strings_and_numbers(value: Any, expected: float) -> None:
    result = coerce(value, float)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "x", "", True, None, []])
def test_float_refuses_non_finite_and_non_numbers(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, float)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("on", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        ("off", False),
        ("no", False),
        ("", False),
        (1, True),
        (0, False),
    ],
)
def test_bool_from_words_and_bits(value: Any, expected: bool) -> None:
    assert coerce(value, bool) is expected


@pytest.mark.parametrize("value", ["maybe", "2", 2, -1, 1.0, None, []])
def test_bool_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, bool)


@pytest.mark.parametrize(("value", "expected"), [("x", "x"), ("", ""), (5, "5"), (2.5, "2.5")])
def test_str_from_strings_and_numbers(value: Any, expected: str) -> None:
    assert coerce(value, str) == expected


@pytest.mark.parametrize("value", [True, None, [], {}])
def test_str_refuses_bools_and_containers(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, str)


@pytest.mark.parametrize(
    "annotation",
    [Optional[int], int | None, Union[None, int]],  # noqa: UP007, UP045
)
def test_optional_takes_none_or_the_type(annotation: Any) -> None:
    assert coerce(None, annotation) is None
    assert coerce("3", annotation) == 3
    with pytest.raises(ValueError):
        coerce("x", annotation)


def test_union_tries_each_type_in_order() -> None:
    assert coerce("3", int | str) == 3
    assert coerce("x", int | str) == "x"


def test_list_coerces_each_item() -> None:
    assert coerce(["1", "2"], list[int]) == [1, 2]


def test_list_wraps_a_single_value() -> None:
    assert coerce("7", list[int]) == [7]


def test_list_refuses_a_bad_item() -> None:
    with pytest.raises(ValueError):
        coerce(["1", "x"], list[int])


def test_bare_list_keeps_its_items() -> None:
    assert coerce(["a", 1], list) == ["a", 1]


@pytest.mark.parametrize("annotation", [inspect.Parameter.empty, Any, dict, object])
def test_unannotated_any_and_unknown_types_pass_through(annotation: Any) -> None:
    value = {"a": [1]}
    assert coerce(value, annotation) is value


# -- bind ----------------------------------------------------------------------------------


class View:
    def typed(self, i: int, f: float, b: bool, s: str) -> None: ...

    def defaults(self, by: int = 1, label: Optional[str] = None) -> None: ...  # noqa: UP045

    def kwargs(self, by: int = 1, **kwargs: Any) -> None: ...

    def keyword_only(self, *, n: int) -> None: ...

    def listed(self, ids: list[int]) -> None: ...


def test_bind_coerces_by_the_annotations() -> None:
    kwargs = bind(View().typed, {"i": "42", "f": "2.5", "b": "true", "s": "x"})
    assert kwargs == {"i": 42, "f": 2.5, "b": True, "s": "x"}
    assert [type(v) for v in kwargs.values()] == [int, float, bool, str]


def test_bind_resolves_string_annotations() -> None:
    # This module uses ``from __future__ import annotations``: every annotation is a string.
    assert bind(View().listed, {"ids": ["1", "2"]}) == {"ids": [1, 2]}


def test_bind_leaves_defaults_to_the_call() -> None:
    assert bind(View().defaults, {}) == {}
    assert bind(View().defaults, {"label": None}) == {"label": None}


def test_bind_handles_keyword_only_parameters() -> None:
    assert bind(View().keyword_only, {"n": "3"}) == {"n": 3}


def test_a_missing_parameter_is_bad_params() -> None:
    with pytest.raises(BadParams) as caught:
        bind(View().typed, {"i": "1", "f": "1", "b": "1"})
    assert caught.value.code == "bad_params" and "s" in caught.value.message


def test_an_unexpected_parameter_is_bad_params() -> None:
    with pytest.raises(BadParams) as caught:
        bind(View().defaults, {"by": "1", "extra": "x"})
    assert "extra" in caught.value.message


@pytest.mark.parametrize(("name", "value"), [("i", "4x"), ("f", "nan"), ("b", "maybe")])
def test_an_uncoercible_parameter_is_bad_params(name: str, value: str) -> None:
    params = {"i": "1", "f": "1", "b": "1", "s": "", name: value}
    with pytest.raises(BadParams) as caught:
        bind(View().typed, params)
    assert repr(name) in caught.value.message


def test_kwargs_receives_extra_parameters_unchanged() -> None:
    extra = {"ref": "12", "nested": {"a": [1]}}
    assert bind(View().kwargs, {"by": "2", **extra}) == {"by": 2, **extra}


def test_kwargs_does_not_take_names_that_are_not_identifiers() -> None:
    with pytest.raises(BadParams):
        bind(View().kwargs, {"a b": "1"})


def test_self_is_not_a_parameter() -> None:
    with pytest.raises(BadParams):
        bind(View().defaults, {"self": "x"})


def test_kwargs_does_not_take_self_either() -> None:
    # Passed on, it would collide with the bound instance: a TypeError in the call.
    with pytest.raises(BadParams):
        bind(View().kwargs, {"self": "x"})
