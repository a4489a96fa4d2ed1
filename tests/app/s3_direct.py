"""Slots whose files go from the browser straight to the bucket (tests/*/test_s3_direct*.py).

Served by a server started with the S3 settings (``make_server(**s3.env(bucket))``); the
``S3Direct`` options are read only when a file registers, so every server can mount the view.
"""

from __future__ import annotations

from djust import event_handler
from djust.uploads.external import S3Direct

from .views import S3UploadsView, UploadsView

MiB = 1024 * 1024


class DirectView(S3UploadsView):
    """``direct`` parts of 5 MiB, three at a time; ``hooked`` is consumed as soon as it lands."""

    template_string = (
        "<input type='file' id='pick' dj-upload='direct' multiple>"
        "<div dj-upload-preview='direct'></div><div dj-upload-progress='direct'></div>"
        "<button id='store' dj-click='store' dj-value-slot='direct'>Store</button>"
        + UploadsView.template_string
    )

    def mount(self, request, **kwargs):
        self.allow_upload(
            "direct",
            max_entries=3,
            max_file_size=64 * MiB,
            external=S3Direct(part_size=5 * MiB, parts_in_flight=3, prefix="direct/"),
        )
        self.allow_upload("hooked", max_file_size=MiB, external=S3Direct())
        self.saved = []

    def handle_upload_complete(self, name, entry):
        if name == "hooked":
            for done in self.consume_uploaded_entries("hooked"):
                meta = done.meta
                self.saved.append(f"hooked {meta['name']} {meta['etag']} {bool(meta['url'])}")

    @event_handler
    def drop(self, slot: str = "direct", **kwargs):
        """Cancel every entry of the slot from the server's side."""
        for entry in list(self._djust_uploads.slot(slot).entries):
            self.cancel_upload(slot, entry.ref)
