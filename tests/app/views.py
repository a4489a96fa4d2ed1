"""Views made for tests: every kind of handler, and upload slots with small limits."""

import asyncio
import errno
import functools
import os
import threading
import time

from django import forms
from django.core.files.storage import default_storage
from django.http import QueryDict

from djust import LiveView, abroadcast, broadcast, event_handler
from djust.uploads import UploadMixin
from djust.uploads.s3 import S3MultipartWriter
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

    @event_handler
    async def wait(self, seconds: float = 1.0, **kwargs):
        await asyncio.sleep(seconds)
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
    """Writes fine; flushing at ``finish`` fails as a full disk or a lost storage service would."""

    def finish(self) -> None:
        super().finish()
        raise OSError(errno.ENOSPC, "No space left on device")


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


class BigUploadView(UploadsView):
    """The ``big`` slot on a page: pick a file, watch it, save it (tests/browser/test_engines)."""

    template_string = (
        "<input type='file' dj-upload='big'><div dj-upload-progress='big'></div>"
        "<button id='save' dj-click='save' dj-value-slot='big'>Save</button>"
        "<pre id='saved'>{% for s in saved %}{{ s }}\n{% endfor %}</pre>"
    )


class LateContainersView(UploadsView):
    """Upload containers that a render adds or replaces (test_upload_ui_browser.py)."""

    template_string = (
        "<input type='file' dj-upload='any' id='pick'>"
        "{% if uploads.any.entries %}<div dj-upload-preview='any' id='late-preview'></div>"
        "<div dj-upload-progress='any' id='late-progress'></div>{% endif %}"
        "<div dj-upload-progress='any' id='progress-{{ uploads.any.entries|length }}'></div>"
    )


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


class UploadUIView(LiveView, UploadMixin):
    """The upload UI's server half: refusals listed, folder paths, loading states, waiting."""

    template_string = (
        "<div dj-upload-drop='files' id='zone'><input type='file' dj-upload='files' id='pick'>"
        "</div><input type='file' dj-upload='folder' webkitdirectory id='folder'>"
        "<textarea dj-upload-paste='images' id='paste'></textarea>"
        "<ul id='entries'>{% for name, slot in uploads.items %}{% for e in slot.entries %}"
        "<li>{{ name }}:{{ e.client_path|default:e.client_name }}:{{ e.complete }}</li>"
        "{% endfor %}{% endfor %}</ul>"
        "<ul id='errors'>{% for name, slot in uploads.items %}{% for err in slot.errors %}"
        "<li>{{ name }}:{{ err.code }}:{{ err.client_name }}</li>{% endfor %}{% endfor %}</ul>"
        "<button id='save' dj-click='save' dj-disable-with='Saving…'>Saved {{ saves }}</button>"
        "<button id='fail' dj-click='fail' dj-disable-with='Trying…'>Try</button>"
        "<button id='upload-all' dj-click='save' dj-upload-wait='files'>Upload All</button>"
    )

    def mount(self, request, **kwargs):
        # The spec's DocumentsView slot.
        self.allow_upload(
            "files", accept=".pdf,.doc,.docx,.txt", max_entries=10, max_file_size=25_000_000
        )
        self.allow_upload("folder", max_entries=10, max_file_size=1_000_000)
        self.allow_upload("images", accept="image/*", max_entries=3, max_file_size=1_000_000)
        self.saves = 0

    @event_handler
    def save(self, **kwargs):
        for name in ("files", "folder", "images"):
            for _entry in self.consume_uploaded_entries(name):
                pass
        self.saves += 1

    @event_handler
    def fail(self, **kwargs):
        raise ValueError("the handler failed")


# -- writers and lifecycle hooks (tests/unit/test_writers.py, tests/integration/test_uploads.py)

# What each file's writer was asked, by client name: in-process tests read it.
WRITER_CALLS: dict[str, list[str]] = {}


class RecordingWriter(TempFileWriter):
    """A temp-file writer made from the entry, noting each call and the thread it ran on."""

    def __init__(self, entry) -> None:
        super().__init__()
        self.entry = entry
        self.calls = WRITER_CALLS.setdefault(entry.client_name, [])
        config = entry.config
        self.calls.append(f"init {entry.upload_name} {entry.client_size} {config.max_entries}")

    def open(self) -> None:
        self.calls.append(f"open {threading.current_thread().name}")
        super().open()

    def write(self, data: memoryview) -> None:
        self.calls.append(f"write {len(data)}")
        super().write(data)

    def finish(self) -> None:
        self.calls.append("finish")
        super().finish()

    def meta(self) -> dict:
        return {"path": self.path, "calls": len(self.calls)}

    def close(self, reason) -> None:
        self.calls.append(f"close {reason} {threading.current_thread().name}")
        super().close(reason)


class LifecycleView(UploadsView):
    """``handle_upload_complete`` stores ``avatar`` files as they land and fails on ``broken``."""

    def mount(self, request, **kwargs):
        super().mount(request, **kwargs)
        self.allow_upload("avatar", max_entries=2)
        self.allow_upload("broken")
        self.allow_upload("recorded", max_entries=3, max_file_size=1000, writer=RecordingWriter)

    def handle_upload_complete(self, name, entry):
        if name == "avatar":
            self.saved.append(f"hook {entry.client_name} {threading.current_thread().name}")
            for done in self.consume_uploaded_entries(name):
                path = default_storage.save(done.unique_name("avatars/"), done.file)
                self.saved.append(f"{path} {done.sha256} {done.received}")
        elif name == "broken":
            for _ in self.consume_uploaded_entries(name):
                raise ValueError("storage is down")

    @event_handler
    def save_or_postpone(self, slot: str = "any", **kwargs):
        """Files named ``ok…`` are stored; the save of the others fails, so they are kept."""
        for entry in self.consume_uploaded_entries(slot):
            if entry.client_name.startswith("ok"):
                self.saved.append(f"stored {entry.client_name}")
            else:
                entry.postpone()
                self.saved.append(f"postponed {entry.client_name}")

    @event_handler
    def note_uploaded(self, slot: str = "any", **kwargs):
        completed, in_progress = self.uploaded_entries(slot)
        self.saved.append("completed " + " ".join(e.client_name for e in completed))
        self.saved.append("in progress " + " ".join(e.client_name for e in in_progress))

    @event_handler
    def describe(self, slot: str = "recorded", **kwargs):
        for entry in self.consume_uploaded_entries(slot):
            writer = entry.writer
            self.saved.append(f"{type(writer).__name__} {writer.entry is entry} {entry.meta}")


# -- S3 (tests/integration/test_s3.py, on a server started with the S3 settings) -----------

MiB = 1024 * 1024


class CorruptingS3Writer(S3MultipartWriter):
    """Damages the second part on its way to the bucket; its checksum is the true one."""

    def _send_part(self, number, body, checksum):
        if number == 2:
            body = bytearray(body)
            body[100] ^= 0xFF
        return super()._send_part(number, body, checksum)


class S3UploadsView(UploadsView):
    """Slots that stream into the bucket; ``store`` keeps each object where it landed."""

    def mount(self, request, **kwargs):
        self.allow_upload(
            "files",
            max_entries=3,
            max_file_size=64 * MiB,
            writer=functools.partial(S3MultipartWriter, part_size=5 * MiB),
        )
        self.allow_upload(
            "corrupt",
            max_file_size=64 * MiB,
            writer=functools.partial(CorruptingS3Writer, part_size=5 * MiB),
        )
        self.saved = []

    @event_handler
    def store(self, slot: str = "files", **kwargs):
        """What a model's FileField needs is the storage name: nothing is copied or fetched."""
        for entry in self.consume_uploaded_entries(slot):
            meta = entry.meta
            try:
                local = entry.file.name
            except ValueError:
                local = "-"
            size = default_storage.size(meta["name"])
            self.saved.append(
                f"{meta['key']} {meta['name']} {size} {meta['etag']} {meta['checksum_sha256']} "
                f"{entry.sha256} {type(entry.writer).__name__} {local}"
            )


# -- lifecycle races (tests/integration/test_lifecycle_races.py) ----------------------------


def _state_file(folder: str, client_name: str):
    from django.conf import settings

    return settings.STATE_DIR / folder / client_name


class GatedWriter(TempFileWriter):
    """A slow storage: each write waits until the test writes the file's gate, ``go`` or
    ``fail`` (then it raises); each close notes its reason and thread for the test."""

    def __init__(self, entry) -> None:
        super().__init__()
        self.gate = _state_file("gates", entry.client_name)
        self.closes = _state_file("closes", entry.client_name)

    def write(self, data: memoryview) -> None:
        deadline = time.monotonic() + 30  # never holds a thread past the test
        while not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.gate.exists() and self.gate.read_text() == "fail":
            raise OSError(errno.EIO, "the storage went away")
        super().write(data)

    def close(self, reason) -> None:
        self.closes.parent.mkdir(exist_ok=True)
        with open(self.closes, "a") as notes:
            notes.write(f"{reason} {threading.current_thread().name}\n")
        super().close(reason)


def no_credentials(entry):
    """A writer factory that cannot make a writer (its storage is not configured)."""
    raise RuntimeError("no credentials for the bucket")


class UnopenableWriter(TempFileWriter):
    def open(self) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")


class NappingUploadView(BigUploadView):
    """The ``big`` slot beside a button whose handler takes long (the page waits for its reply),
    and a ``hooked`` slot whose ``handle_upload_complete`` takes long (nothing the page asked)."""

    template_string = BigUploadView.template_string + (
        "<button id='nap' dj-click='nap' dj-value-seconds='4'>Nap</button>"
        "<input type='file' id='hooked' dj-upload='hooked'>"
    )

    def mount(self, request, **kwargs):
        super().mount(request, **kwargs)
        self.allow_upload("hooked")

    def handle_upload_complete(self, name, entry):
        if name == "hooked":
            time.sleep(4)
            self.saved.append(f"hooked {entry.client_name}")

    @event_handler
    def nap(self, seconds: float = 1.0, **kwargs):
        time.sleep(seconds)
        self.saved.append(f"napped {seconds}")


class RacesView(UploadsView):
    """Slots whose writers are slow, cannot be made or cannot open; a handler that takes long."""

    def mount(self, request, **kwargs):
        super().mount(request, **kwargs)
        self.allow_upload("gated", max_entries=8, chunk_size=16 * 1024, writer=GatedWriter)
        self.allow_upload("no_factory", writer=no_credentials)
        self.allow_upload("no_open", writer=UnopenableWriter)

    @event_handler
    def nap(self, seconds: float = 1.0, **kwargs):
        time.sleep(seconds)
        self.saved.append(f"napped {seconds}")
