from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from djust.uploads.names import extension, safe_name


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
    assert len(result.encode()) <= 255
    assert result.endswith(".txt")
    assert result == "a" * 251 + ".txt"


def test_truncation_never_cuts_a_multibyte_character() -> None:
    result = safe_name("é" * 300 + ".txt")
    assert len(result.encode()) <= 255
    assert result == "é" * 125 + ".txt"


def test_truncation_of_four_byte_characters() -> None:
    result = safe_name("😀" * 100 + ".png", max_bytes=30)
    assert result == "😀" * 6 + ".png"


def test_long_extension_is_not_kept_when_truncating() -> None:
    result = safe_name("name." + "x" * 300)
    assert result == ("name." + "x" * 300)[:255]


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
    _invariants(safe_name(raw), 255)


@settings(max_examples=300)
@given(st.text(), st.integers(8, 64))
def test_safe_name_result_fits_max_bytes(raw: str, max_bytes: int) -> None:
    _invariants(safe_name(raw, max_bytes=max_bytes), max_bytes)
