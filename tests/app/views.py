"""Views made for tests: every kind of handler, and upload slots with small limits."""

import asyncio
import errno
import os
import time

from django import forms
from django.core.files.storage import default_storage
from django.http import QueryDict

from djust import LiveView, abroadcast, broadcast, event_handler
from djust.uploads import UploadMixin
from djust.uploads.writers import TempFileWriter


class EventsView(LiveView):
    template_string = "<p id='n'>{{ n }}</p><p id='last'>{{ last }}</p><p id='kind'>{{ kind }}</p>"

    def mount(self, request, **kwargs):
        self.n = 0
        self.last = ""
        self.kind = ""

    @event_handler
    def add(self, by: int = 1, **kwargs):
        self.n += by

    @event_handler
    def typed(self, i: int, f: float, b: bool, s: str):
        self.last = f"{i!r} {f!r} {b!r} {s!r}"
        self.kind = f"{type(i).__name__} {type(f).__name__} {type(b).__name__} {type(s).__name__}"

    @event_handler
    async def add_async(self, by: int = 1, **kwargs):
        await asyncio.sleep(0)
        self.n += by

    @event_handler
    def boom(self, **kwargs):
        self.n = -1
        raise RuntimeError("secret detail")

    @event_handler
    def nothing(self, **kwargs):
        pass

    def not_a_handler(self, **kwargs):
        self.n = 999

    def _private(self, **kwargs):
        self.n = 998


class ItemView(LiveView):
    template_string = "<p id='pk'>{{ pk_repr }}</p>"

    def mount(self, request, pk, **kwargs):
        self.pk_repr = f"{type(pk).__name__}:{pk}"


class SlowView(LiveView):
    template_string = "<p id='done'>{{ done }}</p>"

    def mount(self, request, **kwargs):
        self.done = 0

    @event_handler
    def block(self, seconds: float = 1.0, **kwargs):
        time.sleep(seconds)
        self.done += 1


class WhoAmIView(LiveView):
    template_string = "<p id='user'>{{ who }}</p><p id='path'>{{ path }}?{{ q }}</p>"

    def mount(self, request, **kwargs):
        self.who = request.user.username if request.user.is_authenticated else "anonymous"
        self.path = request.path
        self.q = request.GET.get("q", "")


class DiskFullWriter(TempFileWriter):
    """A temp file on a disk that fills up after ``capacity`` bytes."""

    capacity = 40_000

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: memoryview) -> None:
        room = self.capacity - self.written
        if len(data) > room:
            super().write(data[: max(room, 0)])
            self.written = self.capacity
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(data)
        self.written += len(data)


class FullOnCloseWriter(TempFileWriter):
    """Writes fine; flushing at ``close`` fails as a full disk or a lost storage service would."""

    aborting = False

    def close(self) -> None:
        super().close()
        if not self.aborting:  # abort() closes too, to discard the file
            raise OSError(errno.ENOSPC, "No space left on device")

    def abort(self) -> None:
        self.aborting = True
        super().abort()


class UploadsView(LiveView, UploadMixin):
    """Slots with small limits for the integration tests."""

    template_string = (
        "{% for name, slot in uploads.items %}"
        "<ul id='slot-{{ name }}'>{% for e in slot.entries %}"
        "<li data-ref='{{ e.ref }}'>{{ e.client_name }} {{ e.progress }} {{ e.complete }}</li>"
        "{% endfor %}</ul>"
        "<ol id='errors-{{ name }}'>"
        "{% for err in slot.errors %}<li>{{ err.code }}</li>{% endfor %}</ol>"
        "{% endfor %}<pre id='saved'>{% for s in saved %}{{ s }}\n{% endfor %}</pre>"
    )

    def mount(self, request, **kwargs):
        self.allow_upload("any", max_entries=8, max_file_size=4_000_000, chunk_size=16 * 1024)
        self.allow_upload("docs", accept=".pdf,.txt,.docx", max_entries=3, max_file_size=1000)
        self.allow_upload("images", accept="image/*", max_entries=2, max_file_size=200_000)
        self.allow_upload("svg", accept=".svg", allow_active_content=True, max_file_size=10_000)
        self.allow_upload("big", max_file_size=2 * 1024**3)  # for bench/run.py
        self.allow_upload("fails", max_entries=2, chunk_size=16 * 1024, writer=DiskFullWriter)
        self.allow_upload("fails_close", chunk_size=16 * 1024, writer=FullOnCloseWriter)
        self.saved = []

    @event_handler
    def save(self, slot: str = "any", **kwargs):
        for entry in self.consume_uploaded_entries(slot):
            path = default_storage.save(f"saved/{entry.client_name}", entry.file)
            self.saved.append(f"{path} {entry.sha256} {entry.received}")

    @event_handler
    def save_first(self, slot: str = "any", **kwargs):
        for entry in self.consume_uploaded_entries(slot):
            self.saved.append(f"{entry.client_name} {entry.data[:4]!r}")
            break

    @event_handler
    def note_types(self, slot: str = "any", **kwargs):
        """What a storage would be told: the declared type, then the file's ``content_type``."""
        for entry in self.consume_uploaded_entries(slot):
            self.saved.append(f"{entry.client_name} {entry.client_type} {entry.file.content_type}")

    @event_handler
    def save_then_fail(self, slot: str = "any", **kwargs):
        for entry in self.consume_uploaded_entries(slot):
            self.saved.append(entry.client_name)
            raise ValueError("storage is down")

    @event_handler
    def cancel_entry(self, ref: str, slot: str = "any", **kwargs):
        self.cancel_upload(slot, ref)


class ReversedBasesView(UploadMixin, LiveView):
    template_string = "<p id='count'>{{ uploads.files.entries|length }}</p>"

    def mount(self, request, **kwargs):
        self.allow_upload("files", max_entries=2)


class RoomView(LiveView):
    """Broadcasts: subscribes to ``?group=`` (``room``); ``say`` broadcasts from its process."""

    template_string = (
        "<p id='pid'>{{ pid }}</p>"
        "<ul id='lines'>{% for line in lines %}<li>{{ line }}</li>{% endfor %}</ul>"
    )

    def mount(self, request, **kwargs):
        self.pid = os.getpid()
        self.lines = []
        self.subscribe(request.GET.get("group", "room"))

    @event_handler
    def say(self, text: str, group: str = "room", event: str = "said"):
        broadcast(group, event, text=text, pid=os.getpid())

    @event_handler
    async def say_async(self, text: str, group: str = "room"):
        await abroadcast(group, "said", text=text, pid=os.getpid())

    @event_handler
    def join(self, group: str):
        self.subscribe(group)

    @event_handler
    def leave(self, group: str):
        self.unsubscribe(group)

    def handle_broadcast(self, group, event, payload):
        if event == "boom":
            raise RuntimeError("secret detail")
        self.lines.append(f"{group} {event} {payload['text']} {payload['pid']}")


class AsyncRoomView(RoomView):
    async def handle_broadcast(self, group, event, payload):
        await asyncio.sleep(0)
        self.lines.append(f"async {group} {event} {payload['text']}")


def announce(request):
    """A plain Django view (run on a thread by Django's ASGI handler) that broadcasts."""
    from django.http import HttpResponse

    broadcast(request.GET.get("group", "room"), "said", text=request.GET["text"], pid=0)
    return HttpResponse("sent")


class UsersView(LiveView):
    """Each render runs a query: what holds a database connection shows in the PostgreSQL tests."""

    template_string = (
        "<ul id='users'>{% for user in view.users %}<li>{{ user.username }}</li>{% endfor %}</ul>"
    )

    @property
    def users(self):
        from django.contrib.auth import get_user_model

        return get_user_model().objects.order_by("pk")

    @event_handler
    def refresh(self):
        pass  # the render after it queries


class BillingForm(forms.Form):
    street = forms.CharField()
    extras = forms.MultipleChoiceField(choices=[("gift", "Gift"), ("fast", "Fast")])


class FormParamsView(LiveView):
    """Form-shaped events: prefixed and indexed names, a multi-value field, a QueryDict."""

    template_string = "<p id='got'>{{ got }}</p>"

    def mount(self, request, **kwargs):
        self.got = ""

    @event_handler
    def pick(self, extras: list[str], **fields):
        self.got = f"{extras!r} {sorted(fields.items())!r}"

    @event_handler
    def save(self, data: QueryDict):
        form = BillingForm(data, prefix="billing")
        self.got = repr(form.cleaned_data) if form.is_valid() else form.errors.as_text()
