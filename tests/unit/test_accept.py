from __future__ import annotations

import dataclasses
import re

import pytest

from djust.uploads.accept import Accept, parse_accept


def test_extensions_are_parsed() -> None:
    accept = parse_accept(".jpg,.png,.webp")
    assert accept.extensions == {".jpg", ".png", ".webp"}
    assert not accept.mime_types and not accept.mime_wildcards


def test_wildcards_keep_the_type_part() -> None:
    accept = parse_accept("image/*,video/*")
    assert accept.mime_wildcards == {"image", "video"}
    assert not accept.extensions and not accept.mime_types


def test_mixed_extensions_and_mime_types_are_parsed() -> None:
    accept = parse_accept(".pdf,application/msword")
    assert accept.extensions == {".pdf"}
    assert accept.mime_types == {"application/msword"}


def test_multi_dot_extension_is_parsed() -> None:
    assert parse_accept(".tar.gz").extensions == {".tar.gz"}


@pytest.mark.parametrize(
    "token",
    [
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "image/svg+xml",
        "application/x-7z-compressed",
        "audio/x-ms-wma",
    ],
)
def test_rfc6838_mime_types_are_parsed(token: str) -> None:
    assert parse_accept(token).mime_types == {token}


def test_tokens_are_trimmed_and_lower_cased() -> None:
    accept = parse_accept("  .JPG ,\tImage/PNG , VIDEO/* ")
    assert accept.extensions == {".jpg"}
    assert accept.mime_types == {"image/png"}
    assert accept.mime_wildcards == {"video"}


def test_blank_tokens_are_ignored() -> None:
    assert parse_accept(",.jpg,, ,.png,").html == ".jpg,.png"


def test_html_keeps_the_original_order() -> None:
    assert parse_accept(".PDF, image/*, application/msword").html == (
        ".pdf,image/*,application/msword"
    )


def test_html_drops_duplicates() -> None:
    assert parse_accept(".jpg,.JPG,.png").html == ".jpg,.png"


@pytest.mark.parametrize("accept", ["", " ", ",,", " , "])
def test_empty_accept_allows_all(accept: str) -> None:
    parsed = parse_accept(accept)
    assert parsed.allows_all
    assert parsed.html == ""
    assert parsed.allows("virus.exe", "application/x-msdownload")


def test_any_wildcard_allows_all() -> None:
    parsed = parse_accept("*/*")
    assert parsed.allows_all
    assert parsed.allows("anything.bin", "")


def test_listed_accept_does_not_allow_all() -> None:
    assert not parse_accept(".jpg").allows_all


@pytest.mark.parametrize(
    "token",
    [
        "jpg",
        "image/",
        "/png",
        "*/png",
        "../x",
        ".",
        "..",
        ".tar..gz",
        ".jp g",
        "image /png",
        "image/ png",
        "image/png/x",
        "image/*/*",
        "*",
        ".jpg;",
        "image/png;q=1",
        "-image/png",
    ],
)
def test_invalid_token_is_refused_by_name(token: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(token))):
        parse_accept(f".png,{token}")


def test_accept_is_frozen() -> None:
    accept = parse_accept(".jpg")
    with pytest.raises(dataclasses.FrozenInstanceError):
        accept.extensions = frozenset()  # type: ignore[misc]


def test_default_accept_allows_all() -> None:
    assert Accept().allows_all


@pytest.mark.parametrize("name", ["photo.jpg", "PHOTO.JPG", "Photo.Jpg", "dir/photo.jpg"])
def test_extension_matches_whatever_its_case(name: str) -> None:
    assert parse_accept(".jpg,.png").allows(name, "")


@pytest.mark.parametrize("name", ["photo.gif", "photo.jpg.exe", "photojpg", "jpg", ".jpg"])
def test_unlisted_extension_is_refused(name: str) -> None:
    assert not parse_accept(".jpg,.png").allows(name, "")


def test_extension_match_ignores_the_declared_type() -> None:
    assert parse_accept(".jpg").allows("photo.jpg", "application/octet-stream")


def test_extension_of_a_name_with_trailing_dot_matches() -> None:
    assert parse_accept(".svg").allows("drawing.svg.", "")


def test_multi_dot_extension_matches_as_a_suffix() -> None:
    accept = parse_accept(".tar.gz")
    assert accept.allows("backup.TAR.GZ", "")
    assert not accept.allows("backup.gz", "")


@pytest.mark.parametrize(
    ("name", "declared"),
    [
        ("photo.png", "image/png"),
        ("photo.jpg", "image/jpeg"),
        ("photo.webp", "image/webp"),
        ("photo.png", "image/x-new"),
    ],
)
def test_wildcard_accepts_any_image_subtype(name: str, declared: str) -> None:
    assert parse_accept("image/*").allows(name, declared)


@pytest.mark.parametrize("declared", ["video/mp4", "application/pdf", "imagex/png", "text/plain"])
def test_wildcard_refuses_other_types(declared: str) -> None:
    assert not parse_accept("image/*").allows("upload", declared)


def test_exact_mime_type_is_accepted() -> None:
    assert parse_accept(".pdf,application/msword").allows("letter.doc", "application/msword")


def test_exact_mime_type_refuses_another() -> None:
    assert not parse_accept("application/msword").allows("letter.rtf", "application/rtf")


def test_declared_type_parameters_are_ignored() -> None:
    assert parse_accept("text/csv").allows("data.csv", " Text/CSV ; charset=utf-8")


def test_declared_type_aliases_are_accepted() -> None:
    assert parse_accept("image/jpeg").allows("photo.jpg", "image/pjpeg")


def test_listed_type_aliases_are_accepted() -> None:
    assert parse_accept("image/jpg").allows("photo.jpg", "image/jpeg")


@pytest.mark.parametrize("declared", ["", "application/octet-stream", " "])
def test_missing_type_falls_back_to_the_extension(declared: str) -> None:
    assert parse_accept("image/*").allows("photo.png", declared)


def test_missing_type_fallback_refuses_other_extensions() -> None:
    assert not parse_accept("image/*").allows("notes.txt", "")


def test_missing_type_fallback_matches_exact_types() -> None:
    assert parse_accept("application/pdf").allows("doc.PDF", "")


def test_no_fallback_when_a_type_is_declared() -> None:
    assert not parse_accept("image/*").allows("photo.png", "text/plain")


def test_extension_only_accept_refuses_by_type() -> None:
    assert not parse_accept(".pdf").allows("photo", "application/pdf")


# -- the declared type is one MIME type ----------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "name", "declared"),
    [
        ("image/*", "avatar.png", "image/png,text/html"),
        (".jpg,.png,.txt", "avatar.png", "image/png,text/html"),
        (".jpg,.png,.txt", "notes.txt", "text/plain,text/html"),
        ("text/plain", "notes.txt", "text/plain, text/html"),
        (".png", "avatar.png", "image/png;x=1,text/html"),
        (".png", "avatar.png", "image /png"),
        (".png", "avatar.png", "<script>"),
    ],
)
def test_a_declared_type_that_is_not_one_mime_type_is_refused(
    accept: str, name: str, declared: str
) -> None:
    assert not parse_accept(accept).allows(name, declared)


# -- a MIME-only list admits only names of its types ---------------------------------------


@pytest.mark.parametrize("name", ["shell.php", "x.phtml", "x.hta", "x.py", "x.PHP.", "x.html"])
def test_mime_only_list_refuses_names_of_other_types_whatever_the_declared_type(
    name: str,
) -> None:
    assert not parse_accept("image/*").allows(name, "image/png")


@pytest.mark.parametrize("name", ["avatar", "avatar.", "photo.unknownext"])
def test_mime_only_list_refuses_names_without_a_known_extension(name: str) -> None:
    assert not parse_accept("image/png,application/pdf").allows(name, "image/png")


def test_mime_only_list_admits_extensions_only_pythons_table_knows() -> None:
    assert parse_accept("image/*").allows("scan.pbm", "")


def test_exact_type_list_admits_only_extensions_of_that_type() -> None:
    accept = parse_accept("image/png,application/pdf")
    assert accept.allows("a.png", "image/png") and accept.allows("b.pdf", "application/pdf")
    assert not accept.allows("c.jpg", "image/png")


def test_mime_list_takes_a_type_browsers_misdeclare_for_the_extension() -> None:
    assert parse_accept("text/csv").allows("data.csv", "application/vnd.ms-excel")


def test_listed_extension_is_accepted_whatever_single_type_is_declared() -> None:
    assert parse_accept(".pdf,application/msword").allows("paper.pdf", "text/plain")
