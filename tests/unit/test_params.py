from __future__ import annotations

import datetime
import enum
import inspect
import math
import textwrap
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, Union

import pytest
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.http import QueryDict
from django.utils import timezone

from djust import LiveView, event_handler
from djust.errors import BadParams
from djust.params import AllowNonFinite, bind, check_handler, coerce


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Size(enum.IntEnum):
    S = 1
    M = 2


class Tricky(enum.Enum):
    # A member's value that is another member's name: the value wins.
    a = "b"
    b = "x"


# -- coerce: str, int, float, bool -----------------------------------------------------------


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


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "x", "", True, None, []])
def test_float_refuses_non_finite_strings_and_non_numbers(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, float)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_float_refuses_non_finite_json_numbers(value: float) -> None:
    # JSON's NaN, Infinity and 1e999 reach the server as float objects, not strings.
    with pytest.raises(ValueError):
        coerce(value, float)


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e999", math.nan, -math.inf])
def test_allow_non_finite_float_takes_nan_and_the_infinities(value: Any) -> None:
    result = coerce(value, Annotated[float, AllowNonFinite])
    assert type(result) is float and not math.isfinite(result)


@pytest.mark.parametrize("value", ["x", "", True, None])
def test_allow_non_finite_float_still_refuses_non_numbers(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, Annotated[float, AllowNonFinite])


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


# -- coerce: Decimal, date, datetime, time, UUID, Enum, Literal ------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.10", "1.10"), (" -3 ", "-3"), ("1e999", "1E+999"), (2, "2"), (0.1, "0.1")],
)
def test_decimal_from_strings_and_numbers(value: Any, expected: str) -> None:
    result = coerce(value, Decimal)
    assert type(result) is Decimal and str(result) == expected


@pytest.mark.parametrize(
    "value", ["NaN", "sNaN", "Infinity", "-inf", "x", "", "1,5", True, None, [], math.nan]
)
def test_decimal_refuses_non_finite_and_non_numbers(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, Decimal)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", math.inf])
def test_allow_non_finite_decimal_takes_nan_and_the_infinities(value: Any) -> None:
    result = coerce(value, Annotated[Decimal, AllowNonFinite])
    assert type(result) is Decimal and not result.is_finite()


def test_date_from_iso_8601() -> None:
    assert coerce(" 2024-02-29 ", datetime.date) == datetime.date(2024, 2, 29)


@pytest.mark.parametrize("value", ["2024-02-30", "29/02/2024", "", "x", 20240229, None])
def test_date_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, datetime.date)


def test_a_naive_datetime_is_made_aware_in_the_current_time_zone() -> None:
    with timezone.override("Europe/Paris"):
        result = coerce("2024-01-15T10:30", datetime.datetime)
    assert result.tzinfo is not None
    assert result.isoformat() == "2024-01-15T10:30:00+01:00"


def test_a_datetime_with_an_offset_keeps_it() -> None:
    with timezone.override("Europe/Paris"):
        result = coerce("2024-01-15T10:30:00Z", datetime.datetime)
    assert result == datetime.datetime(2024, 1, 15, 10, 30, tzinfo=datetime.UTC)


def test_a_datetime_is_naive_local_time_without_use_tz(settings) -> None:
    settings.USE_TZ = False
    with timezone.override("Europe/Paris"):
        result = coerce("2024-01-15T10:30:00+00:00", datetime.datetime)
    assert result == datetime.datetime(2024, 1, 15, 11, 30) and result.tzinfo is None


@pytest.mark.parametrize("value", ["2024-01-15T25:00", "yesterday", "", 1705314600, None])
def test_datetime_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, datetime.datetime)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10:30", datetime.time(10, 30)), ("10:30:15.5", datetime.time(10, 30, 15, 500000))],
)
def test_time_from_iso_8601(value: str, expected: datetime.time) -> None:
    assert coerce(value, datetime.time) == expected


@pytest.mark.parametrize("value", ["25:00", "noon", "", 1030, None])
def test_time_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, datetime.time)


@pytest.mark.parametrize(
    "value",
    [
        "12345678-1234-5678-1234-567812345678",
        "12345678123456781234567812345678",
        "{12345678-1234-5678-1234-567812345678}",
        "12345678-1234-5678-1234-567812345678".upper(),
    ],
)
def test_uuid_from_its_text_forms(value: str) -> None:
    assert coerce(value, uuid.UUID) == uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize("value", ["1234", "", 5, None])
def test_uuid_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, uuid.UUID)


def test_enum_by_value() -> None:
    assert coerce("red", Color) is Color.RED


def test_an_int_enum_by_value_as_the_browser_writes_it() -> None:
    assert coerce("2", Size) is Size.M


def test_enum_by_name() -> None:
    assert coerce("GREEN", Color) is Color.GREEN


def test_enum_value_wins_over_name() -> None:
    assert coerce("b", Tricky) is Tricky.a


@pytest.mark.parametrize("value", ["blue", "red ", "", "Red", True, None])
def test_enum_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, Color)


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [("desc", Literal["asc", "desc"], "desc"), ("2", Literal[1, 2], 2)],
)
def test_literal_takes_one_of_its_values(value: Any, annotation: Any, expected: Any) -> None:
    result = coerce(value, annotation)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("value", ["up", "", "ASC", None])
def test_literal_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        coerce(value, Literal["asc", "desc"])


# -- coerce: unions, lists, several values ---------------------------------------------------


@pytest.mark.parametrize(
    "annotation",
    [Optional[int], int | None, Union[None, int]],  # noqa: UP007, UP045
)
def test_optional_takes_none_or_the_type(annotation: Any) -> None:
    assert coerce(None, annotation) is None
    assert coerce("3", annotation) == 3
    with pytest.raises(ValueError):
        coerce("x", annotation)


@pytest.mark.parametrize(
    "annotation",
    [
        Optional[int],  # noqa: UP045
        int | None,
        str | None,
        Decimal | None,
        datetime.date | None,
        Color | None,
        Literal["asc", None],
    ],
)
def test_optional_maps_an_empty_string_to_none(annotation: Any) -> None:
    assert coerce("", annotation) is None


def test_union_tries_each_type_in_order() -> None:
    assert coerce("3", int | str) == 3
    assert coerce("x", int | str) == "x"


def test_list_coerces_each_item() -> None:
    assert coerce(["1", "2"], list[int]) == [1, 2]


def test_list_wraps_a_single_value() -> None:
    assert coerce("7", list[int]) == [7]


def test_list_takes_an_empty_string_as_an_empty_list() -> None:
    # What `dj-change` on a checkbox group sends when no box is checked.
    assert coerce("", list[str]) == []


def test_list_refuses_null() -> None:
    with pytest.raises(ValueError):
        coerce(None, list)


def test_list_refuses_a_bad_item() -> None:
    with pytest.raises(ValueError):
        coerce(["1", "x"], list[int])


def test_bare_list_keeps_its_items() -> None:
    assert coerce(["a", 1], list) == ["a", 1]


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        (["1", "2"], int, 2),
        (["a", "b"], str, "b"),
        (["0", "on"], bool, True),  # a hidden "0" before a checkbox of the same name
        (["red", "green"], Color, Color.GREEN),
        (["3", ""], int | None, None),
    ],
)
def test_a_scalar_takes_the_last_of_several_values(
    value: list[str], annotation: Any, expected: Any
) -> None:
    assert coerce(value, annotation) == expected


@pytest.mark.parametrize("annotation", [inspect.Parameter.empty, Any])
def test_unannotated_and_any_pass_the_value_through(annotation: Any) -> None:
    value = {"a": [1]}
    assert coerce(value, annotation) is value


@pytest.mark.parametrize("annotation", [dict, object, set[int], tuple[int], bytes, list[dict]])
def test_an_unsupported_annotation_is_improperly_configured(annotation: Any) -> None:
    with pytest.raises(ImproperlyConfigured):
        coerce("x", annotation)


# -- bind ------------------------------------------------------------------------------------


class View:
    def typed(self, i: int, f: float, b: bool, s: str) -> None: ...

    def defaults(self, by: int = 1, label: Optional[str] = None) -> None: ...  # noqa: UP045

    def kwargs(self, by: int = 1, **kwargs: Any) -> None: ...

    def keyword_only(self, *, n: int) -> None: ...

    def listed(self, ids: list[int]) -> None: ...

    def instance_named_this(this, **kwargs: Any) -> None: ...

    def save(self, data: QueryDict) -> None: ...

    def save_counted(self, submitted: QueryDict, n: int) -> None: ...

    def save_with_kwargs(self, data: QueryDict, **kwargs: Any) -> None: ...

    def unresolved_return(self, n: int) -> NotDefinedAnywhere: ...  # noqa: F821

    def unresolved_kwargs(self, n: int, **kwargs: NotDefinedAnywhere) -> None: ...  # noqa: F821


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


def test_a_missing_list_parameter_is_an_empty_list() -> None:
    # A form sends nothing at all for a group of checkboxes with none checked.
    assert bind(View().listed, {}) == {"ids": []}


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


def test_a_bad_value_is_named_with_what_was_expected() -> None:
    with pytest.raises(BadParams) as caught:
        bind(View().typed, {"i": "4x", "f": "1", "b": "1", "s": ""})
    assert caught.value.code == "bad_params"
    assert caught.value.message == "typed(): parameter 'i' must be an integer, got '4x'"


def test_kwargs_receives_extra_parameters_unchanged() -> None:
    extra = {"ref": "12", "nested": {"a": [1]}}
    assert bind(View().kwargs, {"by": "2", **extra}) == {"by": 2, **extra}


@pytest.mark.parametrize(
    "name", ["form-0-title", "billing-street", "user.email", "items[0][name]", "a b", "2fa"]
)
def test_kwargs_takes_names_that_are_not_identifiers(name: str) -> None:
    assert bind(View().kwargs, {name: "x"}) == {name: "x"}


def test_self_is_not_a_parameter() -> None:
    with pytest.raises(BadParams):
        bind(View().defaults, {"self": "x"})


@pytest.mark.parametrize(("method", "name"), [("kwargs", "self"), ("instance_named_this", "this")])
def test_kwargs_does_not_take_self_either(method: str, name: str) -> None:
    # Passed on, it would collide with the bound instance: a TypeError in the call.
    with pytest.raises(BadParams):
        bind(getattr(View(), method), {name: "x"})


# -- bind: QueryDict -------------------------------------------------------------------------


def test_a_querydict_parameter_receives_every_parameter() -> None:
    data = bind(View().save, {"title": "x", "billing-street": "1 Main St"})["data"]
    assert isinstance(data, QueryDict)
    assert data.dict() == {"title": "x", "billing-street": "1 Main St"}


def test_a_querydict_holds_a_list_as_several_values() -> None:
    data = bind(View().save, {"tags": ["a", "b"]})["data"]
    assert data.getlist("tags") == ["a", "b"] and data["tags"] == "b"


def test_a_querydict_also_holds_the_named_parameters() -> None:
    kwargs = bind(View().save_counted, {"n": "3", "note": "x"})
    assert kwargs["n"] == 3 and kwargs["submitted"].dict() == {"n": "3", "note": "x"}


def test_the_querydict_parameter_cannot_be_replaced_by_the_client() -> None:
    data = bind(View().save, {"data": "x"})["data"]
    assert isinstance(data, QueryDict) and data["data"] == "x"


def test_kwargs_does_not_take_the_querydict_parameter_name() -> None:
    kwargs = bind(View().save_with_kwargs, {"data": "x", "other": "y"})
    assert set(kwargs) == {"data", "other"} and isinstance(kwargs["data"], QueryDict)


def test_a_querydict_holds_numbers_and_booleans_as_form_strings() -> None:
    data = bind(View().save, {"n": 3, "f": 2.5, "yes": True, "no": False})["data"]
    assert data.dict() == {"n": "3", "f": "2.5", "yes": "true", "no": "false"}


def test_a_querydict_leaves_out_null() -> None:
    data = bind(View().save, {"gone": None, "kept": [None, "x"]})["data"]
    assert "gone" not in data and data.getlist("kept") == ["x"]


@pytest.mark.parametrize("value", [{"a": "b"}, [["a"]]])
def test_a_querydict_refuses_objects_and_nested_lists(value: Any) -> None:
    with pytest.raises(BadParams) as caught:
        bind(View().save, {"address": value})
    assert "'address'" in caught.value.message and "QueryDict" in caught.value.message


class BillingForm(forms.Form):
    street = forms.CharField()
    amount = forms.DecimalField()
    extras = forms.MultipleChoiceField(choices=[("gift", "Gift"), ("fast", "Fast")])


def test_a_querydict_validates_in_a_django_form_with_a_prefix() -> None:
    params = {
        "billing-street": "1 Main St",
        "billing-amount": "9.50",
        "billing-extras": ["gift", "fast"],
    }
    form = BillingForm(bind(View().save, params)["data"], prefix="billing")
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {
        "street": "1 Main St",
        "amount": Decimal("9.50"),
        "extras": ["gift", "fast"],
    }


# -- annotations, one parameter at a time ----------------------------------------------------


def test_an_unresolvable_return_annotation_does_not_stop_coercion() -> None:
    assert bind(View().unresolved_return, {"n": "3"}) == {"n": 3}


def test_an_unresolvable_kwargs_annotation_does_not_stop_coercion() -> None:
    assert bind(View().unresolved_kwargs, {"n": "3", "x-y": "1"}) == {"n": 3, "x-y": "1"}


def test_an_unresolvable_annotation_is_refused_naming_its_parameter() -> None:
    def handler(self, a: int, b: NotDefinedAnywhere) -> None: ...  # noqa: F821

    with pytest.raises(ImproperlyConfigured) as caught:
        check_handler(handler)
    message = str(caught.value)
    assert "'b'" in message and "NotDefinedAnywhere" in message and "'a'" not in message


# -- check_handler ---------------------------------------------------------------------------


class Handlers:
    def everything(
        self,
        plain,
        anything: Any,
        s: str,
        i: int,
        f: float,
        b: bool,
        d: Decimal,
        day: datetime.date,
        at: datetime.datetime,
        hour: datetime.time,
        key: uuid.UUID,
        color: Color,
        size: Size,
        order: Literal["asc", "desc"],
        ids: list[int],
        tags: list,
        maybe: Optional[int],  # noqa: UP045
        either: int | str | None,
        ratio: Annotated[float, AllowNonFinite],
        data: QueryDict,
        *args: Any,
        **kwargs: Any,
    ) -> None: ...

    def options(self, options: dict[str, str]) -> None: ...

    def two_forms(self, a: QueryDict, b: QueryDict) -> None: ...

    def positional(self, n: int, /) -> None: ...

    def ignored(self: NotDefinedAnywhere, **kwargs: NotDefinedAnywhere) -> Nowhere: ...  # noqa: F821


def test_check_accepts_every_supported_annotation() -> None:
    check_handler(Handlers.everything)


def test_check_refuses_an_unsupported_annotation_naming_class_method_and_parameter() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        check_handler(Handlers.options)
    message = str(caught.value)
    assert "Handlers.options()" in message and "'options'" in message and "dict" in message


@pytest.mark.parametrize(
    "annotation", ["list[dict]", "int | dict", "Optional[set]", "list[QueryDict]", "bytes"]
)
def test_check_refuses_an_unsupported_type_anywhere_in_the_annotation(annotation: str) -> None:
    def handler(self, value): ...

    handler.__annotations__ = {"value": annotation}
    with pytest.raises(ImproperlyConfigured):
        check_handler(handler)


def test_check_refuses_two_querydict_parameters() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        check_handler(Handlers.two_forms)
    assert "'a'" in str(caught.value) and "'b'" in str(caught.value)


def test_check_refuses_a_required_positional_only_parameter() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        check_handler(Handlers.positional)
    assert "'n'" in str(caught.value)


def test_check_ignores_the_instance_return_and_kwargs_annotations() -> None:
    check_handler(Handlers.ignored)


def define_module(source: str) -> dict[str, Any]:
    """Run ``source`` as the body of a module ``myapp.views``."""
    namespace: dict[str, Any] = {"__name__": "myapp.views"}
    exec(textwrap.dedent(source), namespace)
    return namespace


def test_a_live_view_with_an_unsupported_annotation_is_refused_when_defined() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:

        class Settings(LiveView):
            @event_handler
            def save(self, options: dict) -> None: ...

    assert "Settings.save()" in str(caught.value)


def test_a_forward_reference_imported_for_type_checking_only_is_refused_saying_so() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        define_module(
            """
            from __future__ import annotations
            from typing import TYPE_CHECKING
            from djust import LiveView, event_handler
            if TYPE_CHECKING:
                from django.contrib.auth.models import User

            class ProfileView(LiveView):
                @event_handler
                def save(self, user: User) -> None: ...
            """
        )
    message = str(caught.value)
    assert "ProfileView.save()" in message and "'user'" in message
    assert "forward reference" in message and "TYPE_CHECKING" in message


def test_a_name_defined_further_down_the_module_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        define_module(
            """
            from __future__ import annotations
            import enum
            from djust import LiveView, event_handler

            class PaletteView(LiveView):
                @event_handler
                def pick(self, shade: Shade) -> None: ...

            class Shade(enum.Enum):
                DARK = "dark"
            """
        )
    assert "'Shade'" in str(caught.value) and "further down the module" in str(caught.value)


# -- analysis once per handler ---------------------------------------------------------------


def test_a_handler_is_analysed_once_for_all_its_events() -> None:
    from djust.params import _plan

    class Once:
        def add(self, by: int = 1) -> None: ...

    before = _plan.cache_info()
    for by in range(5):
        bind(Once().add, {"by": str(by)})
    after = _plan.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 4)
