from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from djust import LiveView, event_handler
from djust.uploads import UploadMixin

MIXIN_METHODS = [
    "allow_upload",
    "consume_uploaded_entries",
    "get_uploads",
    "cancel_upload",
    "get_context_data",
]
BASE_ORDERS = {"view-first": (LiveView, UploadMixin), "mixin-first": (UploadMixin, LiveView)}


def define(bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    return type("UserView", bases, {"__module__": "myapp.views", **namespace})


@pytest.mark.parametrize("order", BASE_ORDERS)
@pytest.mark.parametrize("name", MIXIN_METHODS)
def test_a_handler_shadowing_an_upload_mixin_method_is_refused(order: str, name: str) -> None:
    def handler(self, **kwargs):
        pass

    with pytest.raises(ImproperlyConfigured) as caught:
        define(BASE_ORDERS[order], {name: event_handler(handler)})
    assert name in str(caught.value)


@pytest.mark.parametrize("order", BASE_ORDERS)
def test_the_spec_example_cancel_upload_handler_is_refused(order: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        if order == "view-first":

            class DocumentsView(LiveView, UploadMixin):
                @event_handler
                def cancel_upload(self, ref, **kwargs):
                    self.cancel_upload("files", ref)

        else:

            class DocumentsView(UploadMixin, LiveView):  # type: ignore[no-redef]
                @event_handler
                def cancel_upload(self, ref, **kwargs):
                    self.cancel_upload("files", ref)

    message = str(caught.value)
    assert "DocumentsView.cancel_upload" in message and "UploadMixin" in message


@pytest.mark.parametrize("order", BASE_ORDERS)
def test_a_shadowing_handler_in_a_subclass_is_refused(order: str) -> None:
    base = define(BASE_ORDERS[order], {})
    with pytest.raises(ImproperlyConfigured):
        define((base,), {"cancel_upload": event_handler(lambda self, **kw: None)})


@pytest.mark.parametrize("order", BASE_ORDERS)
def test_a_handler_shadowing_a_live_view_method_is_refused(order: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        define(BASE_ORDERS[order], {"mount": event_handler(lambda self, request, **kw: None)})


@pytest.mark.parametrize("order", BASE_ORDERS)
def test_plain_overrides_and_other_handler_names_are_fine(order: str) -> None:
    def get_context_data(self, **kwargs):
        return super(cls, self).get_context_data(**kwargs)

    cls = define(
        BASE_ORDERS[order],
        {
            "get_context_data": get_context_data,
            "cancel_file": event_handler(lambda self, ref, **kw: None),
        },
    )
    assert issubclass(cls, LiveView) and issubclass(cls, UploadMixin)


@pytest.mark.parametrize("order", BASE_ORDERS)
def test_uploads_are_in_the_context_in_both_orders(order: str) -> None:
    cls = define(BASE_ORDERS[order], {})
    view = cls()
    view.allow_upload("files")
    context = view.get_context_data()
    assert list(context["uploads"]) == ["files"]
    assert context["view"] is view


# -- a LiveView is a Django class-based view ------------------------------------------------------


def test_public_class_attributes_are_context_but_methods_and_properties_are_not() -> None:
    class Page(LiveView):
        __module__ = "myapp.views"
        title = "Hello"
        _private = "hidden"

        @property
        def computed(self) -> str:
            raise AssertionError("not evaluated")

        def helper(self) -> None:
            pass

    context = Page().get_context_data()
    assert context["title"] == "Hello"
    assert not {"_private", "computed", "helper"} & set(context)


def test_instance_attributes_win_over_class_attributes_in_the_context() -> None:
    class Page(LiveView):
        __module__ = "myapp.views"
        title = "class"

    assert Page(title="instance").get_context_data()["title"] == "instance"


def test_as_view_refuses_initkwargs_that_are_not_class_attributes() -> None:
    class Page(LiveView):
        __module__ = "myapp.views"

    with pytest.raises(TypeError):
        Page.as_view(nonsense=1)


def test_redirect_resolves_a_url_name_like_djangos_redirect() -> None:
    class Page(LiveView):
        __module__ = "myapp.views"

    page = Page()
    page.redirect("counter")
    assert page.__dict__["_djust_redirect"] == "/counter/"


def test_push_event_refuses_a_payload_that_is_not_json() -> None:
    class Page(LiveView):
        __module__ = "myapp.views"

    with pytest.raises(TypeError):
        Page().push_event("saved", {"when": object()})
