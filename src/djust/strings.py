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
}


def client_strings() -> dict[str, str]:
    """The texts in the active language (call it where the page's language is active)."""
    return {key: str(text) for key, text in CLIENT_STRINGS.items()}
