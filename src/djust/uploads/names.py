"""Safe file names: what the browser claims a file is called, made usable as one path component."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_EXTENSION", "extension", "safe_name"]

# An extension longer than this is more likely part of the name than a real extension.
MAX_EXTENSION = 16

# The fallback must fit, and truncation must leave room for one code point (up to 4 bytes).
_MIN_BYTES = 8

_SEPARATORS = re.compile(r"[/\\]")

# Control characters, format characters (bidi overrides and isolates, zero-width joiners, BOM),
# lone surrogates (not encodable as UTF-8) and the line and paragraph separators.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# Characters Windows (and often SMB or FAT on other systems) refuses in a file name.
_UNSAFE = str.maketrans(dict.fromkeys('<>:"|?*/\\', "_"))

# Windows opens a device instead of a file for these, whatever the extension.
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"}
)


def safe_name(raw: str, *, max_bytes: int = 255) -> str:
    """Return ``raw`` as a safe single path component of at most ``max_bytes`` UTF-8 bytes."""
    if max_bytes < _MIN_BYTES:
        raise ValueError(f"max_bytes must be at least {_MIN_BYTES}, not {max_bytes}")
    name = _SEPARATORS.split(unicodedata.normalize("NFC", raw))[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED)
    # Dropping a character can bring a base letter next to its combining mark: compose again.
    name = unicodedata.normalize("NFC", name)
    name = " ".join(name.split())
    # Leading dots hide files or climb directories; Windows drops trailing dots and spaces.
    name = name.translate(_UNSAFE).strip(" .")
    if not name:
        return "upload"
    if _is_reserved(name):
        name = "_" + name
    name = _fit(name, max_bytes)
    if _is_reserved(name):  # truncation can cut "CONSOLE.txt" down to "CON.txt"
        name = _fit("_" + name, max_bytes)
    return name


def extension(name: str) -> str:
    """Return the lower-cased extension, with its dot, that ``name`` has once made safe."""
    return _split_extension(safe_name(name))[1].lower()


def _split_extension(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def _is_reserved(name: str) -> bool:
    return name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED


def _fit(name: str, max_bytes: int) -> str:
    if len(name.encode()) <= max_bytes:
        return name
    stem, ext = _split_extension(name)
    budget = max_bytes - len(ext.encode())
    if len(ext) > MAX_EXTENSION or budget < 4:
        stem, ext, budget = name, "", max_bytes
    # Cutting the bytes may split a character; "ignore" drops its incomplete tail.
    stem = stem.encode()[:budget].decode("utf-8", "ignore")
    # The stem starts with neither a dot nor a space, so it cannot strip to nothing.
    return stem.rstrip(" .") + ext
