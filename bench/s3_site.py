"""The page bench/s3.py uploads to: into the bucket by the S3 writer, a temp file, or directly.

All end the same way: the ``save`` event leaves the object in the bucket under a storage name
and checks it is there, whole (a ``HEAD``), before the page is told.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.urls import path

from bench.urls import urlpatterns as bench_urlpatterns
from djust import LiveView, event_handler
from djust.uploads import UploadMixin
from djust.uploads.s3 import S3MultipartWriter

GIB = 1024**3
SLOTS = ("s3", "tmp", "direct")


class S3BenchView(LiveView, UploadMixin):
    """``s3``: ``S3MultipartWriter`` (its defaults: 8 MiB parts, 4 in flight); ``tmp``: the
    default temp file, copied by ``default_storage.save`` (django-storages, boto3's transfer);
    ``direct``: from the browser to the bucket (``S3Direct``'s defaults), where it exists."""

    template_string = (
        "{% for slot in slots %}<p><input type='file' id='pick-{{ slot }}' "
        "dj-upload='{{ slot }}'><button id='save-{{ slot }}' dj-click='save' "
        "dj-value-slot='{{ slot }}'>Save</button></p>{% endfor %}"
        "<pre id='saved'>{% for s in saved %}{{ s }}\n{% endfor %}</pre>"
    )

    def mount(self, request, **kwargs):
        self.allow_upload("s3", max_file_size=2 * GIB, writer=S3MultipartWriter)
        self.allow_upload("tmp", max_file_size=2 * GIB)
        self.slots = ["s3", "tmp"]
        try:
            from djust.uploads.external import S3Direct
        except ImportError:
            pass  # not in this tree yet: bench/s3.py says (c) is pending
        else:
            self.allow_upload("direct", max_file_size=2 * GIB, external=S3Direct())
            self.slots.append("direct")
        self.saved = []

    @event_handler
    def save(self, slot: str = "tmp", **kwargs):
        for entry in self.consume_uploaded_entries(slot):
            if entry.path is None:
                name = entry.meta["name"]  # in the bucket already, its checksum verified
            else:
                name = default_storage.save(f"bench/{entry.client_name}", entry.file)
            size = default_storage.size(name)
            self.saved.append(f"{name} {entry.sha256} {size}")


urlpatterns = [path("bench/s3/", S3BenchView.as_view()), *bench_urlpatterns]
