"""The ``accept`` option of an upload slot: which file extensions and MIME types it takes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from djust.errors import BadType
from djust.uploads.names import safe_name
from djust.uploads.sniff import canonical_mime, declared_type, ignored_type, mime_for_name

__all__ = ["Accept", "parse_accept"]

_EXTENSION = re.compile(r"\.[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*")
# RFC 6838 restricted names, at most 127 characters each.
_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MIME = re.compile(rf"{_NAME}/{_NAME}")
_WILDCARD = re.compile(rf"(?P<type>{_NAME})/\*")


@dataclass(frozen=True, slots=True)
class Accept:
    """A parsed ``accept`` list; empty accepts everything."""

    extensions: frozenset[str] = frozenset()  # with the leading dot: ".jpg", ".tar.gz"
    mime_types: frozenset[str] = frozenset()  # "application/pdf"
    mime_wildcards: frozenset[str] = frozenset()  # the type part: "image"; "*" for "*/*"
    tokens: tuple[str, ...] = ()  # normalized, in the order given

    @property
    def html(self) -> str:
        """The value for the ``accept`` attribute of ``<input type="file">``."""
        return ",".join(self.tokens)

    @property
    def allows_all(self) -> bool:
        """Whether any file is accepted."""
        return not self.tokens or "*" in self.mime_wildcards

    def allows(self, client_name: str, client_type: str) -> bool:
        """Whether a file of that name and declared MIME type is accepted (uploads.md, 7.2)."""
        try:
            declared = declared_type(client_type)
        except BadType:
            return False
        if self.allows_all:
            return True
        # Match the name as it will be stored: no trailing dots or spaces, no hidden characters.
        name = safe_name(client_name).lower()
        if any(name.endswith(ext) for ext in self.extensions):
            return True
        # A type admits names by the type of their extension: the declared type is the client's
        # word, and "image/*" must not store shell.php because its client said image/png.
        named = mime_for_name(client_name)
        if named is None or not self._allows_type(named):
            return False
        return ignored_type(client_name, declared) or self._allows_type(canonical_mime(declared))

    def _allows_type(self, mime: str) -> bool:
        if not mime:
            return False
        listed = {canonical_mime(listed) for listed in self.mime_types}
        return mime in listed or mime.split("/", 1)[0] in self.mime_wildcards


def parse_accept(accept: str) -> Accept:
    """Parse a comma-separated ``accept`` list; raise ValueError naming any invalid token."""
    tokens: list[str] = []
    extensions: set[str] = set()
    mime_types: set[str] = set()
    wildcards: set[str] = set()
    for raw in accept.split(","):
        token = raw.strip().lower()
        if not token or token in tokens:
            continue
        if _EXTENSION.fullmatch(token):
            extensions.add(token)
        elif token == "*/*":
            wildcards.add("*")
        elif match := _WILDCARD.fullmatch(token):
            wildcards.add(match["type"])
        elif _MIME.fullmatch(token):
            mime_types.add(token)
        else:
            raise ValueError(
                f"invalid accept token {raw.strip()!r}: expected an extension like '.jpg', "
                "a MIME type like 'application/pdf' or a wildcard like 'image/*'"
            )
        tokens.append(token)
    return Accept(frozenset(extensions), frozenset(mime_types), frozenset(wildcards), tuple(tokens))
