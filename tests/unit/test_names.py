from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils.text import get_valid_filename
from hypothesis import given, settings
from hypothesis import strategies as st

from djust.uploads.entry import UploadEntry
from djust.uploads.names import COLLISION_SUFFIX, MAX_BYTES, extension, safe_name, unique_name
from djust.uploads.writers import TempFileWriter


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/etc/passwd", "passwd"),
        ("C:\\Users\\x\\a.txt", "a.txt"),
        ("a/b\\c/d.txt", "d.txt"),
        ("photos/", "upload"),
    ],
)
def test_only_the_last_path_component_is_kept(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


def test_plain_name_is_unchanged() -> None:
    assert safe_name("Holiday photo 2024.jpg") == "Holiday photo 2024.jpg"


def test_non_ascii_name_is_kept() -> None:
    assert safe_name("résumé – 履歴書.pdf") == "résumé – 履歴書.pdf"


def test_name_is_nfc_normalized() -> None:
    assert safe_name("cafe\u0301.txt") == "caf\u00e9.txt"


def test_nul_is_removed() -> None:
    assert safe_name("evil.php\x00.jpg") == "evil.php.jpg"


@pytest.mark.parametrize("char", ["\x01", "\x1b", "\t", "\n", "\r", "\x7f", "\x85", "\x9b"])
def test_control_characters_are_removed(char: str) -> None:
    assert safe_name(f"re{char}port.txt") == "report.txt"


@pytest.mark.parametrize(
    "char",
    [
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",
        "\u200e",
        "\u200f",
        "\u200b",
        "\u200c",
        "\u200d",
        "\ufeff",
    ],
)
def test_format_characters_are_removed(char: str) -> None:
    assert safe_name(f"invoice{char}.pdf") == "invoice.pdf"


def test_right_to_left_override_cannot_disguise_extension() -> None:
    assert safe_name("photo\u202egnp.exe") == "photognp.exe"


@pytest.mark.parametrize("char", ["\u2028", "\u2029"])
def test_line_and_paragraph_separators_are_removed(char: str) -> None:
    assert safe_name(f"a{char}b.txt") == "ab.txt"


def test_whitespace_runs_collapse_to_one_space() -> None:
    assert safe_name("a  \u00a0\u3000 b.txt") == "a b.txt"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (".htaccess", "htaccess"),
        ("evil.svg.", "evil.svg"),
        ("  report.pdf  ", "report.pdf"),
        ("...name...", "name"),
        (". . name . .", "name"),
    ],
)
def test_leading_and_trailing_dots_and_spaces_are_stripped(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


@pytest.mark.parametrize("raw", ["", ".", "..", "...", "   ", " . ", "\x00", "\u202e", "../"])
def test_nothing_left_becomes_upload(raw: str) -> None:
    assert safe_name(raw) == "upload"


@pytest.mark.parametrize("char", ["<", ">", ":", '"', "|", "?", "*"])
def test_characters_unsafe_on_windows_are_replaced(char: str) -> None:
    assert safe_name(f"a{char}b.txt") == "a_b.txt"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("PRN.tar.gz", "_PRN.tar.gz"),
        ("aux", "_aux"),
        ("Nul.json", "_Nul.json"),
        ("COM1.txt", "_COM1.txt"),
        ("com9", "_com9"),
        ("LPT1", "_LPT1"),
        ("lpt9.log", "_lpt9.log"),
        ("CON .txt", "_CON .txt"),
    ],
)
def test_windows_reserved_names_are_prefixed(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


@pytest.mark.parametrize("raw", ["CONSOLE.txt", "COM10", "icon.png", "auxiliary", "nul_file"])
def test_names_merely_starting_like_reserved_names_are_kept(raw: str) -> None:
    assert safe_name(raw) == raw


def test_very_long_name_is_truncated_keeping_extension() -> None:
    result = safe_name("a" * 10_000 + ".txt")
    assert result == "a" * 243 + ".txt"


def test_truncation_never_cuts_a_multibyte_character() -> None:
    result = safe_name("é" * 300 + ".txt")
    assert result == "é" * 121 + ".txt"


def test_truncation_of_four_byte_characters() -> None:
    result = safe_name("a" + "😀" * 100 + ".png", max_bytes=30)
    assert result == "a" + "😀" * 6 + ".png"


def test_long_extension_is_not_kept_when_truncating() -> None:
    result = safe_name("name." + "x" * 300)
    assert result == ("name." + "x" * 300)[:MAX_BYTES]


def test_max_bytes_is_respected() -> None:
    assert safe_name("abcdefghij.txt", max_bytes=10) == "abcdef.txt"


def test_truncation_does_not_leave_trailing_dot() -> None:
    assert safe_name("abcdefg.h" + "i" * 40, max_bytes=8) == "abcdefg"


def test_truncation_cannot_produce_a_reserved_name() -> None:
    assert safe_name("COM1XYZ.txt", max_bytes=8) == "_COM.txt"


def test_too_small_max_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        safe_name("a.txt", max_bytes=4)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("photo.JPG", ".jpg"),
        ("archive.tar.gz", ".gz"),
        ("README", ""),
        (".bashrc", ""),
        ("evil.svg.", ".svg"),
        ("evil.svg ", ".svg"),
        ("../dir.d/file", ""),
        ("C:\\x\\a.Txt", ".txt"),
    ],
)
def test_extension_is_lower_cased_with_dot(name: str, expected: str) -> None:
    assert extension(name) == expected


def _invariants(result: str, max_bytes: int) -> None:
    assert result
    assert result not in (".", "..")
    assert "/" not in result and "\\" not in result
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in result)
    assert len(result.encode()) <= max_bytes
    assert result == result.strip(" .")


@settings(max_examples=300)
@given(st.text())
def test_safe_name_is_idempotent(raw: str) -> None:
    once = safe_name(raw)
    assert safe_name(once) == once


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400), st.integers(8, 300))
def test_safe_name_is_idempotent_when_truncating(raw: str, max_bytes: int) -> None:
    once = safe_name(raw, max_bytes=max_bytes)
    assert safe_name(once, max_bytes=max_bytes) == once


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("a./\\\x00 \u202e\u200b:CON\x1fé😀\u0301"), max_size=300))
def test_safe_name_result_is_always_a_safe_component(raw: str) -> None:
    _invariants(safe_name(raw), MAX_BYTES)


@settings(max_examples=300)
@given(st.text(), st.integers(8, 64))
def test_safe_name_result_fits_max_bytes(raw: str, max_bytes: int) -> None:
    _invariants(safe_name(raw, max_bytes=max_bytes), max_bytes)


# -- through Django's own filename handling ---------------------------------------------------
#
# FileField and Storage.get_valid_name pass a name through get_valid_filename, which drops every
# character but letters, digits, "-", "_" and "." (and turns spaces into "_"); a storage that
# finds the name taken adds "_" and 7 characters. A safe name must mean the same after both.


def stored_extension(name: str) -> str:
    """The extension of ``name`` as Django's FileField would save it."""
    return extension(get_valid_filename(name))


@pytest.mark.parametrize(
    ("raw", "expected", "stored"),
    [
        ("!.htaccess", "_!.htaccess", "_.htaccess"),
        ("(.user.ini", "_(.user.ini", "_.user.ini"),
        ("🎉.png", "_🎉.png", "_.png"),
    ],
)
def test_characters_django_drops_cannot_uncover_a_leading_dot(
    raw: str, expected: str, stored: str
) -> None:
    assert safe_name(raw) == expected
    assert get_valid_filename(safe_name(raw)) == stored


@pytest.mark.parametrize(("raw", "expected"), [("\u0301.env", "env"), ("\u0301notes", "notes")])
def test_a_leading_combining_mark_is_removed(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


def test_a_model_file_field_accepts_a_name_of_symbols_only() -> None:
    field = models.FileField(upload_to="avatars/")
    assert field.generate_filename(None, safe_name("★")) == "avatars/_"


@pytest.mark.parametrize("raw", ["(draft) notes.txt", "[2024] report.pdf", "★ notes.txt"])
def test_leading_punctuation_before_a_letter_is_kept(raw: str) -> None:
    assert safe_name(raw) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("x.sv(g", "x.sv_g"), ("evil.svg★", "evil.svg_"), ("page.ht'ml", "page.ht_ml")],
)
def test_characters_django_drops_cannot_make_another_extension(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected
    assert stored_extension(safe_name(raw)) == extension(raw)


def test_truncation_cannot_leave_an_extension_django_reads_otherwise() -> None:
    # Cut at MAX_BYTES, this name ends in ".sv(g": it must not be saved as ".svg".
    raw = "a" * (MAX_BYTES - len(".sv(g")) + ".sv(g." + "x" * 300
    assert stored_extension(safe_name(raw)) == ".sv_g"


def test_a_name_django_reads_as_a_windows_device_is_prefixed() -> None:
    assert safe_name("C(ON.txt") == "_C(ON.txt"


def test_a_name_leaves_room_for_the_storage_collision_suffix() -> None:
    assert len(safe_name("a" * 300 + ".txt").encode()) == 255 - COLLISION_SUFFIX


def test_the_longest_name_can_be_saved_twice(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=tmp_path)
    name = safe_name("n" * 251 + ".txt")
    first = storage.save(name, ContentFile(b"one"))
    second = storage.save(name, ContentFile(b"two"))  # the storage adds "_" and 7 characters
    assert first != second
    assert (tmp_path / second).read_bytes() == b"two"


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_django_keeps_the_meaning_of_every_safe_name(raw: str) -> None:
    name = safe_name(raw)
    stored = get_valid_filename(name)  # raises SuspiciousFileOperation for an empty result
    assert not stored.startswith(".")
    assert stored_extension(name) == extension(name).replace(" ", "_")
    assert len(stored.encode()) <= 255 - COLLISION_SUFFIX


@settings(max_examples=200)
@given(st.text(alphabet=st.sampled_from("a.!(★\u0301 _-é"), max_size=20))
def test_a_model_file_field_accepts_every_safe_name(raw: str) -> None:
    field = models.FileField(upload_to="up/")
    stored = field.generate_filename(None, safe_name(raw))
    assert stored.startswith("up/") and not stored.removeprefix("up/").startswith(".")


# -- unique names ---------------------------------------------------------------------------


def test_unique_names_of_one_client_name_differ() -> None:
    assert unique_name("me.png") != unique_name("me.png")


def test_unique_name_is_prefix_random_hex_and_the_lower_cased_extension() -> None:
    assert re.fullmatch(r"avatars/[0-9a-f]{32}\.jpg", unique_name("Me.JPG", "avatars/"))


@pytest.mark.parametrize("client_name", ["README", "a.b c", "x.日本", "notes." + "t" * 20])
def test_unique_name_drops_an_extension_that_is_not_plain(client_name: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", unique_name(client_name))


def test_unique_name_can_keep_a_readable_stem() -> None:
    name = unique_name("Résumé (final) v2.1.pdf", "docs/", keep_stem=True)
    assert re.fullmatch(r"docs/Résumé_final_v2_1-[0-9a-f]{32}\.pdf", name)


def test_a_readable_stem_is_at_most_32_characters() -> None:
    name = unique_name("s" * 100 + ".txt", keep_stem=True)
    assert re.fullmatch(r"s{32}-[0-9a-f]{32}\.txt", name)


@settings(max_examples=300)
@given(st.text(), st.booleans())
def test_django_stores_a_unique_name_unchanged(raw: str, keep_stem: bool) -> None:
    name = unique_name(raw, keep_stem=keep_stem)
    assert get_valid_filename(name) == name


def test_the_entry_names_its_file_uniquely(tmp_path: Path) -> None:
    entry = UploadEntry(
        ref="0",
        upload_name="avatar",
        client_name="me.png",
        raw_name="me.png",
        client_type="image/png",
        client_size=3,
        writer=TempFileWriter(tmp_path),
    )
    assert re.fullmatch(r"avatars/[0-9a-f]{32}\.png", entry.unique_name("avatars/"))
    assert re.fullmatch(r"me-[0-9a-f]{32}\.png", entry.unique_name(keep_stem=True))


def test_unique_names_keep_two_users_files_on_a_storage_that_overwrites(tmp_path: Path) -> None:
    # django-storages' S3 and GCS backends overwrite by default, as this storage does.
    storage = FileSystemStorage(location=tmp_path, allow_overwrite=True)
    alice = storage.save(f"avatars/{unique_name('me.png')}", ContentFile(b"alice"))
    bob = storage.save(f"avatars/{unique_name('me.png')}", ContentFile(b"bob"))
    assert (tmp_path / alice).read_bytes() == b"alice"
    assert (tmp_path / bob).read_bytes() == b"bob"
