"""Bench-only views: a LiveView with large upload slots and the plain Django POST equivalent.

Both do the same work with an uploaded file: its SHA-256 and a save to ``default_storage``.
"""

from __future__ import annotations

import hashlib

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from djust import LiveView, event_handler
from djust.uploads import UploadMixin

GIB = 1024**3


class BenchUploadView(LiveView, UploadMixin):
    """``big`` takes anything up to 2 GiB (``big_1m`` too, in 1 MiB chunks instead of the default
    64 KiB); ``jpg`` only JPEG images (for the renamed .exe)."""

    page_title = "djust upload bench"
    template_string = (
        "<h1>Upload bench</h1>"
        "<p><input type='file' id='live-file' dj-upload='big'>"
        "<button id='save-big' dj-click='save' dj-value-slot='big'>Save</button></p>"
        "<div dj-upload-progress='big'></div>"
        "<p><input type='file' id='live-file-1m' dj-upload='big_1m'>"
        "<button id='save-big_1m' dj-click='save' dj-value-slot='big_1m'>Save</button></p>"
        "<div dj-upload-progress='big_1m'></div>"
        "<p><input type='file' id='post-file'></p>"
        "<ul id='entries'>{% for e in uploads.big.entries %}"
        "<li>{{ e.client_name }} {{ e.progress }}</li>{% endfor %}</ul>"
        "<pre id='saved'>{% for s in saved %}{{ s }}\n{% endfor %}</pre>"
    )

    def mount(self, request, **kwargs):
        self.allow_upload("big", max_file_size=2 * GIB)
        self.allow_upload("big_1m", max_file_size=2 * GIB, chunk_size=1024 * 1024)
        self.allow_upload("jpg", accept=".jpg", max_file_size=2 * GIB)
        self.saved = []

    @event_handler
    def save(self, slot: str = "big", **kwargs):
        # entry.sha256 was computed while the bytes arrived; the save moves the temp file.
        for entry in self.consume_uploaded_entries(slot):
            path = default_storage.save(f"bench/{entry.client_name}", entry.file)
            self.saved.append(f"{path} {entry.sha256} {entry.received}")


@csrf_exempt
def post_upload(request: HttpRequest) -> JsonResponse | HttpResponseBadRequest:
    """A plain multipart POST: Django's default upload handlers, SHA-256, default_storage."""
    if request.method != "POST" or "file" not in request.FILES:
        return HttpResponseBadRequest("POST a multipart form with a 'file' field")
    upload = request.FILES["file"]
    digest = hashlib.sha256()
    for block in upload.chunks():
        digest.update(block)
    upload.seek(0)
    path = default_storage.save(f"post/{upload.name}", upload)
    return JsonResponse({"path": path, "sha256": digest.hexdigest(), "size": upload.size})
