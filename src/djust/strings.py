"""The client's user-facing texts, translated on the server in the page's language.

The client formats them with ``{name}`` placeholders (``docs/protocol.md``, ``mounted``); the
keys are part of the protocol, the English texts are its fallbacks.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

CLIENT_STRINGS = {
    # An upload in progress: "42% · 1.2 MB of 3.0 MB".
    "uploading": _("{percent}% · {done} of {total}"),
    # Measured by the server: "850 KB/s · 3 s left".
    "speed": _("{speed}/s · {left} left"),
    # Chosen, waiting for the form that sends it (auto_upload=False).
    "ready": _("Ready to send · {total}"),
    "paused": _("Paused, reconnecting…"),
    "complete": _("Complete"),
    "error": _("Failed: {message}"),
    "dismiss": _("Dismiss"),
    "cancel": _("Cancel"),
    "drop_here": _("Drop files here or press Enter to choose"),
    # The name of a file input that has no label of its own.
    "choose_file": _("Choose a file"),
    "choose_files": _("Choose files"),
    # Announced to screen readers.
    "refused": _("{name} was refused: {message}"),
    "uploaded": _("{name} uploaded"),
    # The browser's own checks, before a byte moves.
    "too_large": _("{name} is larger than {limit}"),
    "not_accepted": _("{name} is not an accepted file type ({accept})"),
    "too_many_files": _("Too many files (at most {max})"),
    # The file changed or went away on the user's disk after it was picked.
    "read_failed": _("the file changed or was removed after it was picked; choose it again"),
    # A paused upload cannot continue: the file on the user's disk is no longer the one picked.
    "file_changed": _("the file changed while its upload was paused; choose it again"),
    # An upload cut off by a dropped connection cannot go on (the server's refusals).
    "resume_expired": _("{name} waited too long to continue; choose it again"),
    "resume_denied": _("{name} was started by another user or in another session"),
    "resume_unavailable": _("{name} cannot continue on this server; choose it again"),
    "resume_other_file": _("{name} is not the file this upload started with; choose it again"),
    # The server's own refusal of content a browser would run.
    "active_content": _("{name}: SVG, HTML and scripts are not accepted here"),
}


def client_strings() -> dict[str, str]:
    """The texts in the active language (call it where the page's language is active)."""
    return {key: str(text) for key, text in CLIENT_STRINGS.items()}


def text(key: str, **values: object) -> str:
    """One of the texts in the active language, its ``{name}`` placeholders filled in."""
    return str(CLIENT_STRINGS[key]).format(**values)


def size(count: int) -> str:
    """A byte count in decimal units, as the client shows sizes: "25.0 MB", "1.25 GB"."""
    if count < 1000:
        return f"{count} B"
    if count < 1000**2:
        return f"{count / 1000:.1f} KB"
    if count < 1000**3:
        return f"{count / 1000**2:.1f} MB"
    return f"{count / 1000**3:.2f} GB"
