"""Safe file names: what the browser claims a file is called, made usable as one path component."""

from __future__ import annotations

import re
import unicodedata
import uuid

__all__ = [
    "COLLISION_SUFFIX",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_EXTENSION",
    "extension",
    "safe_name",
    "safe_path",
    "unique_name",
]

# Parts of a folder upload's relative path (a folder 32 levels deep is already absurd).
MAX_DEPTH = 32

# An extension longer than this is more likely part of the name than a real extension.
MAX_EXTENSION = 16

# A storage makes a taken name free by adding to it: Django's get_available_name adds "_" and 7
# letters or digits. A name must leave room for that under the usual 255-byte limit of a file
# system, or saving it a second time fails (ENAMETOOLONG) after the upload was consumed.
COLLISION_SUFFIX = 8
MAX_BYTES = 255 - COLLISION_SUFFIX

# The fallback must fit, and truncation must leave room for one code point (up to 4 bytes).
_MIN_BYTES = 8

_SEPARATORS = re.compile(r"[/\\]")

# Control characters, format characters (bidi overrides and isolates, zero-width joiners, BOM),
# lone surrogates (not encodable as UTF-8) and the line and paragraph separators.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# Characters Windows (and often SMB or FAT on other systems) refuses in a file name.
_UNSAFE = str.maketrans(dict.fromkeys('<>:"|?*/\\', "_"))

# What Django's get_valid_filename (FileField, Storage.get_valid_name) removes from a name; it
# turns spaces into "_". A name must mean the same once these are gone.
_STORAGE_DROPS = re.compile(r"[^-\w. ]")

# What unique_name keeps of an extension: plain, short and the same in every storage.
_PLAIN_EXTENSION = re.compile(rf"\.[a-z0-9]{{1,{MAX_EXTENSION - 1}}}", re.ASCII)
_STEM_CHARS = 32

# Windows opens a device instead of a file for these, whatever the extension.
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"}
)


def safe_name(raw: str, *, max_bytes: int = MAX_BYTES) -> str:
    """Return ``raw`` as a safe single path component of at most ``max_bytes`` UTF-8 bytes.

    The result also survives Django's own filename handling (``get_valid_filename``) with the
    same meaning: it does not become a hidden file, an empty name or another extension there.
    """
    if max_bytes < _MIN_BYTES:
        raise ValueError(f"max_bytes must be at least {_MIN_BYTES}, not {max_bytes}")
    name = _SEPARATORS.split(unicodedata.normalize("NFC", raw))[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED)
    # Dropping a character can bring a base letter next to its combining mark: compose again.
    name = unicodedata.normalize("NFC", name)
    name = " ".join(name.split())
    name = _strip_start(name.translate(_UNSAFE)).rstrip(" .")
    if not name:
        return "upload"
    # Checked once cut to size: "CONSOLE.txt" can become "CON.txt", "★★1" become "★★".
    name = _fit(name, max_bytes)
    if _is_reserved(name) or _hidden_in_storage(name):
        name = _fit("_" + name, max_bytes)
    return _storable_extension(name)


def safe_path(raw: str, name: str) -> str:
    """Return a folder upload's relative path (``"photos/2024/a.jpg"``), each part made safe.

    ``raw`` must be a plain relative path of at most ``MAX_DEPTH`` parts separated by ``/`` that
    ends in the file's ``name``; anything else (``..``, a leading ``/``, a backslash, an empty
    part) raises ``ValueError``.
    """
    parts = raw.split("/")
    if len(parts) > MAX_DEPTH:
        raise ValueError(f"a relative path has at most {MAX_DEPTH} parts")
    if "\\" in raw or any(part in ("", ".", "..") for part in parts):
        raise ValueError("not a plain relative path")
    if parts[-1] != name:
        raise ValueError("the path does not end in the file's name")
    return "/".join(safe_name(part) for part in parts)


def extension(name: str) -> str:
    """Return the lower-cased extension, with its dot, that ``name`` has once made safe."""
    return _split_extension(safe_name(name))[1].lower()


def unique_name(client_name: str, prefix: str = "", *, keep_stem: bool = False) -> str:
    """A storage name no other upload gets: ``prefix``, 32 random hex digits, the extension.

    The extension is kept when it is plain (ASCII letters and digits, lower-cased); with
    ``keep_stem`` the name starts with up to 32 characters of ``client_name``'s stem.
    """
    ext = extension(client_name)
    if not _PLAIN_EXTENSION.fullmatch(ext):
        ext = ""
    name = uuid.uuid4().hex
    if keep_stem:
        stem = _split_extension(safe_name(client_name))[0]
        # As storage would write it, with no dot that a server could read as a second extension.
        stem = _STORAGE_DROPS.sub("", stem).replace(" ", "_").replace(".", "_")
        stem = stem[:_STEM_CHARS].strip("_-")
        if stem:
            name = f"{stem}-{name}"
    return f"{prefix}{name}{ext}"


def _strip_start(name: str) -> str:
    # Leading dots hide files or climb directories; a leading combining mark has no letter to
    # combine with (and storage would drop it, leaving what follows in front).
    while name and (name[0] in " ." or unicodedata.category(name[0]).startswith("M")):
        name = name[1:]
    return name


def _hidden_in_storage(name: str) -> bool:
    # Storage drops characters such as "!", "(" or "★": "!.htaccess" would be saved as
    # ".htaccess", and "★" as nothing at all (an error).
    stored = _STORAGE_DROPS.sub("", name)
    return not stored or stored[0] == "."


def _storable_extension(name: str) -> str:
    # Storage would drop these and read another extension: "x.sv(g" would be saved as "x.svg".
    stem, ext = _split_extension(name)
    return stem + _STORAGE_DROPS.sub("_", ext)


def _split_extension(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def _is_reserved(name: str) -> bool:
    # Also as storage will write it: "C(ON.txt" would be saved as "CON.txt".
    return any(
        form.split(".", 1)[0].rstrip(" ").upper() in _RESERVED
        for form in (name, _STORAGE_DROPS.sub("", name))
    )


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
