"""The per-engine bench page: the upload bench view with a chosen build of the client.

``/bench/engines/page/?client=NAME&ui=UI`` is ``BenchUploadView`` whose page loads
``/bench/client/NAME/djust/djust.js``: djust.js as shipped (``shipped``), or with the variants
below applied (``patches``), so that a variant is measured against the real server without
editing the file users get. ``ui``: ``full`` (the progress bars), ``bare`` (none) or ``slide``
(the bars with a 0.2 s width transition, as in the spec's example stylesheet).
"""

from __future__ import annotations

import re
from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse

from bench.views import BenchUploadView

CLIENT = Path(__file__).resolve().parent.parent / "src" / "djust" / "static" / "djust" / "djust.js"
MIB = 1024 * 1024

# The lines of djust.js that the variants change.
_RUN = "const run = Math.max(1, Math.floor((this.maxFrame - HEADER_SIZE) / entry.chunkSize));"
_LIMIT = "const limit = Math.min(entry.size, entry.acked + entry.window,"
_BLOB_RUNS = r"const BLOB_RUNS = /(Firefox|Chrome)\/\d/.test(navigator.userAgent);"
_PROBE = "            if (!probed) {"
_CHECK = "            entry.blobs = true;"
_COPY = """          const frame = new Uint8Array(HEADER_SIZE + end - entry.sent);
          frame.set(new Uint8Array(this.header(entry)));
          const reading = this.read(entry, entry.sent, end);"""
_COPIED = (
    """          frame.set(new Uint8Array(await reading, 0, end - entry.sent), HEADER_SIZE);"""
)
_READ = """    const bytes = await new Response(entry.file.slice(start, end)).arrayBuffer();
    if (bytes.byteLength !== end - start) {"""
_PAINT = "const PAINT_EVERY = 250;"


def _variant(token: str) -> list[tuple[str, str]]:
    """One token of a build's name.

    ``f4m``: runs of at most 4 MiB; ``w16m``: at most 16 MiB in flight; ``reads``: every engine
    reads each run and sends an ArrayBuffer (djust.js before Blob runs); ``blobs``: every engine
    sends Blob runs (WebKit too, where that is not safe); ``noprobe``: Blob runs without the
    probe of the file's last byte; ``check``: Blob runs that check the file's size and time
    before each run, not only once per pass; ``compose``: each run read as
    Blob([header, slice]) into one buffer, no copy in script; ``paintN``: progress items drawn
    at most every N ms.
    """
    if token[0] in "fw" and token.endswith("m") and token[1:-1].isdigit():
        cap = int(token[1:-1]) * MIB
        if token[0] == "f":
            return [(_RUN, _RUN.replace("this.maxFrame", f"Math.min(this.maxFrame, {cap + 64})"))]
        return [(_LIMIT, _LIMIT.replace("entry.window", f"Math.min(entry.window, {cap})"))]
    if token in ("reads", "blobs"):
        return [(_BLOB_RUNS, f"const BLOB_RUNS = {str(token == 'blobs').lower()};")]
    if token == "noprobe":
        return [(_PROBE, "            if (false) {")]
    if token == "check":
        return [(_CHECK, "            unchanged(entry);\n            entry.blobs = true;")]
    if token == "compose":
        return [
            (_COPY, "          const reading = this.read(entry, entry.sent, end);"),
            (
                _COPIED,
                "          const frame = "
                "new Uint8Array(await reading, 0, HEADER_SIZE + end - entry.sent);",
            ),
            # Every run is read as Blob([header, slice]): one buffer, the header in front; the
            # probe of the last byte (one byte, no header) keeps the plain read.
            (
                _READ,
                """    const head = new ArrayBuffer(end - start > 1 ? HEADER_SIZE : 0);
    if (head.byteLength) {
      const view = new DataView(head);
      view.setUint8(0, FRAME_RUN);
      view.setUint32(1, Number(entry.ref));
      view.setBigUint64(5, BigInt(start));
    }
    const bytes = await new Response(new Blob([head, entry.file.slice(start, end)])).arrayBuffer();
    if (bytes.byteLength !== head.byteLength + end - start) {""",
            ),
        ]
    if token.startswith("paint") and token[5:].isdigit():
        return [(_PAINT, f"const PAINT_EVERY = {int(token[5:])};")]
    raise KeyError(token)


def patches(name: str) -> list[tuple[str, str]]:
    """The replacements of the client build ``name``: ``shipped``, or tokens joined by ``_``."""
    if name == "shipped":
        return []
    return [patch for token in name.split("_") for patch in _variant(token)]


class EngineBenchView(BenchUploadView):
    """The upload bench page, loading the client build named by ``?client=``."""

    page_title = "djust engine bench"

    def mount(self, request, **kwargs):
        super().mount(request, **kwargs)
        self.client = request.GET.get("client", "shipped")
        # "bare": no progress bars (what the bars cost the page is measured against it)
        self.ui = request.GET.get("ui", "full")
        try:
            patches(self.client)
        except (KeyError, IndexError):
            raise Http404(f"no client build {self.client!r}") from None

    def render_template(self, request=None):
        body = super().render_template(request)
        if self.ui == "bare":
            body = re.sub(r"<div dj-upload-progress='[^']*'></div>", "", body)
        elif self.ui == "slide":  # bars with the spec's example transition
            body += "<style>.upload-progress-bar { transition: width 0.2s; }</style>"
        script = (
            f'<script src="/bench/client/{self.client}/djust/djust.js" '
            'data-djust-ws="/djust/ws/" defer></script>'
        )
        return (
            f"<html><head><title>{self.page_title}</title></head><body>{body}</body>{script}</html>"
        )


def client_script(request: HttpRequest, name: str) -> HttpResponse:
    """djust.js with the variant ``name``'s replacements, each of which must apply exactly once."""
    try:
        replacements = patches(name)
    except (KeyError, IndexError):
        raise Http404(f"no client build {name!r}") from None
    text = CLIENT.read_text()
    for old, new in replacements:
        if text.count(old) != 1:
            raise Http404(f"{name}: the patched text is not in djust.js exactly once: {old[:80]!r}")
        text = text.replace(old, new)
    response = HttpResponse(text, content_type="text/javascript")
    response["Cache-Control"] = "no-store"
    return response
