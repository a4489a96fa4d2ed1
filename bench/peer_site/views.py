"""The peer's upload view: the same slot and the same consume work as ``bench.views``."""

import hashlib

from django.core.files.storage import default_storage

from djust import LiveView, event_handler
from djust.uploads import UploadMixin


class PeerUploadView(LiveView, UploadMixin):
    login_required = False
    template = (
        "<div dj-root><input type='file' dj-upload='big'>"
        "<pre id='saved'>{% for s in saved %}{{ s }}\n{% endfor %}</pre></div>"
    )

    def mount(self, request, **kwargs):
        self.allow_upload("big", max_file_size=2 * 1024**3)
        self.saved = []

    @event_handler
    def save(self, **kwargs):
        for entry in self.consume_uploaded_entries("big"):
            file = entry.file
            digest = hashlib.sha256()
            for block in iter(lambda f=file: f.read(1024 * 1024), b""):
                digest.update(block)
            file.seek(0)
            path = default_storage.save(f"bench/{entry.safe_client_name}", file)
            self.saved.append(f"{path} {digest.hexdigest()} {entry.client_size}")
