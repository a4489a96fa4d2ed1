from __future__ import annotations

import codecs
import mimetypes

import pytest

from djust.errors import BadType, ContentMismatch
from djust.uploads.sniff import (
    FORMATS,
    SNIFF_BYTES,
    ContentSniffer,
    canonical_mime,
    check_content,
    content_type_of,
    declared_type,
    is_active,
    mime_for_name,
    sniff,
)


def pad(head: bytes) -> bytes:
    """Fill up to SNIFF_BYTES the way a real file would continue."""
    return head + b"\x00" * (SNIFF_BYTES - len(head))


EXE = pad(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00")
ELF = pad(b"\x7fELF\x02\x01\x01")
JPEG = pad(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
PNG = pad(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
PDF = pad(b"%PDF-1.7\n")
ZIP = pad(b"PK\x03\x04\x14\x00\x06\x00")
OLE2 = pad(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
HTML = b"<!DOCTYPE html><html><body>hi</body></html>"[:SNIFF_BYTES]
TEXT = b"Dear all, the minutes are below.\n"[:SNIFF_BYTES]

# Real-world first bytes of each format: (file name, expected sniffed type, content).
SAMPLES = [
    ("photo.jpg", "image/jpeg", JPEG),
    ("photo.jpeg", "image/jpeg", pad(b"\xff\xd8\xff\xe1\x00\x18Exif")),
    ("photo.jpe", "image/jpeg", JPEG),
    ("photo.jfif", "image/jpeg", JPEG),
    ("image.png", "image/png", PNG),
    ("old.gif", "image/gif", pad(b"GIF87a\x01\x00")),
    ("anim.gif", "image/gif", pad(b"GIF89a\x01\x00")),
    ("image.webp", "image/webp", pad(b"RIFF\x24\x00\x00\x00WEBPVP8 ")),
    ("image.bmp", "image/bmp", pad(b"BM\x36\x00\x0c\x00")),
    ("intel.tif", "image/tiff", pad(b"II*\x00\x08\x00")),
    ("motorola.tiff", "image/tiff", pad(b"MM\x00*\x00\x00")),
    ("favicon.ico", "image/x-icon", pad(b"\x00\x00\x01\x00\x01\x00")),
    ("image.avif", "image/avif", pad(b"\x00\x00\x00\x20ftypavif\x00\x00\x00\x00")),
    ("anim.avif", "image/avif", pad(b"\x00\x00\x00\x20ftypavis\x00\x00\x00\x00")),
    ("image.heic", "image/heic", pad(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00")),
    ("image.heic", "image/heic", pad(b"\x00\x00\x00\x18ftypheix\x00\x00\x00\x00")),
    ("image.heic", "image/heic", pad(b"\x00\x00\x00\x18ftyphevc\x00\x00\x00\x00")),
    ("image.heic", "image/heif", pad(b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00")),
    ("image.avif", "image/heif", pad(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00avif")),
    ("image.heif", "image/heif", pad(b"\x00\x00\x00\x18ftypmsf1\x00\x00\x00\x00")),
    ("doc.pdf", "application/pdf", PDF),
    ("doc.rtf", "application/rtf", pad(b"{\\rtf1\\ansi")),
    ("a.zip", "application/zip", ZIP),
    ("empty.zip", "application/zip", pad(b"PK\x05\x06")),
    ("spanned.zip", "application/zip", pad(b"PK\x07\x08")),
    ("old.doc", "application/x-ole-storage", OLE2),
    ("a.gz", "application/gzip", pad(b"\x1f\x8b\x08\x00")),
    ("a.tgz", "application/gzip", pad(b"\x1f\x8b\x08\x00")),
    ("a.7z", "application/x-7z-compressed", pad(b"7z\xbc\xaf\x27\x1c\x00\x04")),
    ("a.rar", "application/x-rar-compressed", pad(b"Rar!\x1a\x07\x00")),
    ("a5.rar", "application/x-rar-compressed", pad(b"Rar!\x1a\x07\x01\x00")),
    ("a.bz2", "application/x-bzip2", pad(b"BZh91AY&SY")),
    ("a.xz", "application/x-xz", pad(b"\xfd7zXZ\x00\x00\x04")),
    ("tagged.mp3", "audio/mpeg", pad(b"ID3\x04\x00\x00")),
    ("frame.mp3", "audio/mpeg", pad(b"\xff\xfb\x90\x64")),
    ("mpeg2.mp3", "audio/mpeg", pad(b"\xff\xf3\x90\x64")),
    ("mpeg2crc.mp3", "audio/mpeg", pad(b"\xff\xf2\x90\x64")),
    ("sound.wav", "audio/wav", pad(b"RIFF\x24\x08\x00\x00WAVEfmt ")),
    ("clip.avi", "video/x-msvideo", pad(b"RIFF\x24\x08\x00\x00AVI LIST")),
    ("song.ogg", "application/ogg", pad(b"OggS\x00\x02")),
    ("clip.ogv", "application/ogg", pad(b"OggS\x00\x02")),
    ("song.flac", "audio/flac", pad(b"fLaC\x00\x00\x00\x22")),
    ("clip.mp4", "video/mp4", pad(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00")),
    ("clip.mp4", "video/mp4", pad(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00")),
    ("clip.m4v", "video/mp4", pad(b"\x00\x00\x00\x18ftypM4V \x00\x00\x00\x00")),
    ("song.m4a", "video/mp4", pad(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00")),
    ("clip.mov", "video/mp4", pad(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00")),
    ("old.mov", "video/quicktime", pad(b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat")),
    ("clip.mkv", "video/x-matroska", pad(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81")),
    ("clip.webm", "video/x-matroska", pad(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81")),
    ("font.woff", "font/woff", pad(b"wOFF\x00\x01\x00\x00")),
    ("font.woff2", "font/woff2", pad(b"wOF2\x00\x01\x00\x00")),
    ("font.ttf", "font/ttf", pad(b"\x00\x01\x00\x00\x00\x10")),
    ("font.otf", "font/otf", pad(b"OTTO\x00\x0a")),
    ("module.wasm", "application/wasm", pad(b"\x00asm\x01\x00\x00\x00")),
    ("setup.exe", "application/x-msdownload", EXE),
    ("lib.dll", "application/x-msdownload", EXE),
    ("libc.so", "application/x-executable", ELF),
    ("lib.dylib", "application/x-mach-binary", pad(b"\xfe\xed\xfa\xce")),
    ("lib.dylib", "application/x-mach-binary", pad(b"\xfe\xed\xfa\xcf")),
    ("lib.dylib", "application/x-mach-binary", pad(b"\xce\xfa\xed\xfe")),
    ("lib.dylib", "application/x-mach-binary", pad(b"\xcf\xfa\xed\xfe")),
    ("lib.dylib", "application/x-mach-binary", pad(b"\xca\xfe\xba\xbe")),
]


@pytest.mark.parametrize(("name", "mime", "head"), SAMPLES)
def test_sniff_identifies_the_format(name: str, mime: str, head: bytes) -> None:
    assert sniff(head) == mime


@pytest.mark.parametrize(("name", "mime", "head"), SAMPLES)
def test_content_matching_its_extension_passes(name: str, mime: str, head: bytes) -> None:
    check_content(head, name, "", complete=False)


@pytest.mark.parametrize(
    ("mime", "signature"),
    [(fmt.mime, sig) for fmt in FORMATS for sig in fmt.signatures],
)
def test_every_table_signature_sniffs_as_its_format(
    mime: str, signature: tuple[tuple[int, bytes], ...]
) -> None:
    head = bytearray(SNIFF_BYTES)
    for offset, magic in signature:
        head[offset : offset + len(magic)] = magic
    assert sniff(bytes(head)) == mime


def test_every_signature_fits_in_sniff_bytes() -> None:
    ends = [off + len(magic) for fmt in FORMATS for sig in fmt.signatures for off, magic in sig]
    assert max(ends) <= SNIFF_BYTES


def test_no_two_formats_claim_an_extension() -> None:
    extensions = [ext for fmt in FORMATS for ext in fmt.extensions]
    assert len(extensions) == len(set(extensions))


@pytest.mark.parametrize("head", [b"", TEXT, pad(b"\x00\x00\x00\x00"), pad(b"PK")])
def test_sniff_returns_none_for_unknown_content(head: bytes) -> None:
    assert sniff(head) is None


def test_sniff_needs_the_whole_signature() -> None:
    assert sniff(b"\x89PNG\r\n") is None


@pytest.mark.parametrize(
    "name", ["a.docx", "a.xlsx", "a.pptx", "a.odt", "a.ods", "a.odp", "a.epub", "a.jar", "a.apk"]
)
def test_zip_content_is_valid_for_zip_based_formats(name: str) -> None:
    check_content(ZIP, name, "", complete=False)


@pytest.mark.parametrize(
    ("name", "declared"),
    [
        ("a.doc", "application/msword"),
        ("a.xls", "application/vnd.ms-excel"),
        ("a.ppt", "application/vnd.ms-powerpoint"),
        ("a.msg", "application/vnd.ms-outlook"),
    ],
)
def test_ole2_content_is_valid_for_old_office_formats(name: str, declared: str) -> None:
    check_content(OLE2, name, declared, complete=False)


def test_docx_declared_as_zip_passes() -> None:
    check_content(ZIP, "report.docx", "application/zip", complete=False)


def test_docx_with_openxml_type_passes() -> None:
    declared = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    check_content(ZIP, "report.docx", declared, complete=False)


def test_docx_with_pdf_content_is_rejected() -> None:
    with pytest.raises(ContentMismatch):
        check_content(PDF, "report.docx", "", complete=False)


@pytest.mark.parametrize(
    ("name", "declared", "head"),
    [
        ("photo.jpg", "image/jpg", JPEG),
        ("photo.jpg", "image/pjpeg", JPEG),
        ("image.png", "image/x-png", PNG),
        ("a.zip", "application/x-zip-compressed", ZIP),
        ("song.mp3", "audio/mp3", pad(b"ID3\x04")),
        ("sound.wav", "audio/x-wav", pad(b"RIFF\x00\x00\x00\x00WAVE")),
        ("doc.pdf", "application/x-pdf", PDF),
    ],
)
def test_well_known_type_aliases_pass(name: str, declared: str, head: bytes) -> None:
    check_content(head, name, declared, complete=False)


@pytest.mark.parametrize(
    ("name", "declared", "head"),
    [
        ("photo.jpg", "image/jpeg", EXE),
        ("photo.jpg", "", EXE),
        ("notes.txt", "text/plain", EXE),
        ("notes.txt", "", ELF),
        ("report.pdf", "application/pdf", EXE),
        ("notes", "", EXE),
        ("notes", "application/octet-stream", ELF),
        ("song.mp3", "audio/mpeg", ELF),
    ],
)
def test_renamed_executable_is_rejected(name: str, declared: str, head: bytes) -> None:
    with pytest.raises(ContentMismatch):
        check_content(head, name, declared, complete=False)


@pytest.mark.parametrize(
    ("name", "declared", "head"),
    [
        ("setup.exe", "application/x-msdownload", EXE),
        ("setup.exe", "", EXE),
        ("tool", "application/x-dosexec", EXE),
        ("server", "application/x-executable", ELF),
        ("libfoo.so", "", ELF),
    ],
)
def test_executable_passes_under_an_executable_name_or_type(
    name: str, declared: str, head: bytes
) -> None:
    check_content(head, name, declared, complete=False)


def test_executable_message_names_file_and_content() -> None:
    with pytest.raises(ContentMismatch, match=r"notes\.txt .*application/x-msdownload"):
        check_content(EXE, "notes.txt", "text/plain", complete=False)


def test_png_content_named_jpg_is_rejected() -> None:
    with pytest.raises(ContentMismatch, match=r"photo\.jpg does not look like a JPEG image"):
        check_content(PNG, "photo.jpg", "image/jpeg", complete=False)


def test_html_content_named_pdf_is_rejected() -> None:
    with pytest.raises(ContentMismatch, match="PDF"):
        check_content(HTML, "invoice.pdf", "application/pdf", complete=False)


def test_mismatch_message_names_the_content_type() -> None:
    expected = (
        r"photo\.jpg does not look like a JPEG image \(its content is application/x-msdownload\)"
    )
    with pytest.raises(ContentMismatch, match=expected):
        check_content(EXE, "photo.jpg", "image/jpeg", complete=False)


def test_mismatch_has_content_mismatch_code() -> None:
    with pytest.raises(ContentMismatch) as info:
        check_content(PNG, "photo.jpg", "", complete=False)
    assert info.value.code == "content_mismatch"


def test_message_shows_the_safe_name() -> None:
    with pytest.raises(ContentMismatch) as info:
        check_content(PNG, "../\x1bphoto\u202e.jpg", "", complete=False)
    assert info.value.message.startswith("photo.jpg ")


def test_declared_type_is_checked_when_the_name_has_no_extension() -> None:
    with pytest.raises(ContentMismatch):
        check_content(JPEG, "photo", "image/png", complete=False)


def test_extension_and_declared_type_that_disagree_are_rejected() -> None:
    with pytest.raises(ContentMismatch, match="declared as image/png"):
        check_content(JPEG, "photo.jpg", "image/png", complete=False)


@pytest.mark.parametrize("declared", ["", "application/octet-stream", "APPLICATION/OCTET-STREAM"])
def test_unknown_declared_type_defers_to_the_extension(declared: str) -> None:
    check_content(JPEG, "photo.jpg", declared, complete=False)


def test_unlisted_declared_type_is_not_checked() -> None:
    check_content(JPEG, "photo.jpg", "image/x-something-new", complete=False)


def test_declared_type_parameters_are_ignored() -> None:
    check_content(PDF, "doc.pdf", "Application/PDF; charset=binary", complete=False)


def test_csv_declared_as_excel_by_windows_passes() -> None:
    check_content(b"name,age\nann,3\n", "people.csv", "application/vnd.ms-excel", complete=True)


def test_excel_content_named_csv_is_not_mistaken_for_a_program() -> None:
    check_content(OLE2, "people.csv", "application/vnd.ms-excel", complete=False)


@pytest.mark.parametrize("name", ["notes.txt", "data.csv", "data.json", "README.md", "noext"])
def test_text_content_passes_for_unsigned_formats(name: str) -> None:
    check_content(TEXT, name, "", complete=False)


@pytest.mark.parametrize("name", ["PHOTO.JPG", "photo.jpg.", "photo.jpg ", "dir/photo.Jpg"])
def test_extension_is_found_whatever_its_case_or_trailing_dots(name: str) -> None:
    with pytest.raises(ContentMismatch):
        check_content(EXE, name, "", complete=False)


@pytest.mark.parametrize("name", ["photo.jpg", "doc.pdf", "a.docx", "a.zip"])
def test_empty_content_is_rejected_when_a_signature_is_required(name: str) -> None:
    with pytest.raises(ContentMismatch, match="empty"):
        check_content(b"", name, "", complete=True)


@pytest.mark.parametrize("name", ["notes.txt", "empty", "data.csv"])
def test_empty_content_passes_when_no_signature_is_required(name: str) -> None:
    check_content(b"", name, "", complete=True)


def test_complete_content_shorter_than_the_signature_is_rejected() -> None:
    with pytest.raises(ContentMismatch, match="too short to be a JPEG image"):
        check_content(b"\xff\xd8", "photo.jpg", "", complete=True)


def test_complete_content_holding_just_the_signature_passes() -> None:
    check_content(b"%PDF-", "doc.pdf", "", complete=True)


def test_complete_short_text_passes() -> None:
    check_content(b"hi\n", "notes.txt", "text/plain", complete=True)


def test_complete_short_content_of_the_wrong_format_is_rejected() -> None:
    with pytest.raises(ContentMismatch, match="does not look like"):
        check_content(b"hello", "doc.pdf", "", complete=True)


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("photo.JPG", "image/jpeg"),
        ("photo.jfif", "image/jpeg"),
        ("a.png", "image/png"),
        ("a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("a.doc", "application/msword"),
        ("a.xls", "application/vnd.ms-excel"),
        ("a.tar.gz", "application/gzip"),
        ("a.mp3", "audio/mpeg"),
        ("a.mov", "video/quicktime"),
        ("a.txt", "text/plain"),
        ("a.csv", "text/csv"),
        ("a.json", "application/json"),
        ("a.md", "text/markdown"),
        ("a.svg", "image/svg+xml"),
        ("a.html", "text/html"),
        ("a.htm", "text/html"),
        ("a.js", "text/javascript"),
        ("a.mjs", "text/javascript"),
        ("a.xml", "application/xml"),
        ("a.exe", "application/x-msdownload"),
    ],
)
def test_mime_for_name_looks_up_the_extension(name: str, mime: str) -> None:
    assert mime_for_name(name) == mime


@pytest.mark.parametrize("name", ["README", "a.unknownext", "", ".png", "shell.php", "x.hta"])
def test_mime_for_name_returns_none_without_a_known_extension(name: str) -> None:
    assert mime_for_name(name) is None


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("x.py", "text/x-python"),
        ("scan.pbm", "image/x-portable-bitmap"),
        ("a.eml", "message/rfc822"),
    ],
)
def test_mime_for_name_falls_back_to_pythons_built_in_table(name: str, mime: str) -> None:
    assert mime_for_name(name) == mime


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("image/jpg", "image/jpeg"),
        (" Image/PJPEG ; q=1", "image/jpeg"),
        ("application/x-zip-compressed", "application/zip"),
        ("text/html; charset=utf-8", "text/html"),
        ("x-custom/thing", "x-custom/thing"),
    ],
)
def test_canonical_mime_resolves_aliases_and_drops_parameters(declared: str, expected: str) -> None:
    assert canonical_mime(declared) == expected


# -- ContentSniffer ------------------------------------------------------------------


def test_sniffer_fed_one_byte_at_a_time_decides_at_sniff_bytes() -> None:
    sniffer = ContentSniffer("photo.jpg", "image/jpeg")
    data = JPEG + b"rest of the image" * 10
    verdicts = [sniffer.feed(data[i : i + 1]) for i in range(len(data))]
    assert verdicts.index(True) == SNIFF_BYTES - 1
    assert all(verdicts[SNIFF_BYTES - 1 :])
    sniffer.finish()


def test_sniffer_fed_one_byte_at_a_time_rejects_an_executable() -> None:
    sniffer = ContentSniffer("photo.jpg", "image/jpeg")
    for byte in EXE[:-1]:
        assert sniffer.feed(bytes([byte])) is False
    with pytest.raises(ContentMismatch):
        sniffer.feed(EXE[-1:])


def test_sniffer_keeps_at_most_sniff_bytes() -> None:
    sniffer = ContentSniffer("notes.txt", "text/plain")
    sniffer.feed(b"x" * 10)
    sniffer.feed(b"y" * 1000)
    sniffer.feed(b"z" * 1000)
    assert sniffer.head == b"x" * 10 + b"y" * (SNIFF_BYTES - 10)


def test_sniffer_decides_on_one_large_chunk() -> None:
    sniffer = ContentSniffer("a.zip", "application/zip")
    assert sniffer.feed(ZIP * 100) is True
    assert sniffer.done


def test_sniffer_stays_rejected_after_a_mismatch() -> None:
    sniffer = ContentSniffer("photo.jpg", "")
    with pytest.raises(ContentMismatch):
        sniffer.feed(PNG)
    with pytest.raises(ContentMismatch):
        sniffer.feed(b"more")
    with pytest.raises(ContentMismatch):
        sniffer.finish()


def test_sniffer_finish_checks_a_short_file() -> None:
    sniffer = ContentSniffer("doc.pdf", "application/pdf")
    assert sniffer.feed(b"%PDF-1.4\n") is False
    sniffer.finish()
    assert sniffer.done


def test_sniffer_finish_rejects_an_empty_file_that_needs_a_signature() -> None:
    sniffer = ContentSniffer("photo.jpg", "image/jpeg")
    with pytest.raises(ContentMismatch, match="empty"):
        sniffer.finish()


def test_sniffer_finish_rejects_a_truncated_signature() -> None:
    sniffer = ContentSniffer("image.png", "")
    for byte in b"\x89PNG":
        sniffer.feed(bytes([byte]))
    with pytest.raises(ContentMismatch, match="too short"):
        sniffer.finish()


def test_sniffer_finish_after_a_verdict_does_nothing() -> None:
    sniffer = ContentSniffer("photo.jpg", "")
    sniffer.feed(JPEG)
    sniffer.finish()
    sniffer.finish()


# -- active content ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "evil.svg",
        "EVIL.SVG",
        "evil.svg.",
        "evil.svg ",
        "evil.svg. . ",
        "evil.svg\x00",
        "evil.svg\x00.png",
        "evil.svg\u200b",
        "drawing.svgz",
        "page.html",
        "page.HTM",
        "page.xhtml",
        "page.xht",
        "page.shtml",
        "app.js",
        "app.mjs",
        "app.cjs",
        "feed.xml",
        "style.xsl",
        "style.xslt",
        "../dir/evil.svg",
    ],
)
def test_active_by_name(name: str) -> None:
    assert is_active(name, "")


@pytest.mark.parametrize("name", ["photo.png", "svg.png", "html", "notes.txt", "js", "x.json"])
def test_inactive_names(name: str) -> None:
    assert not is_active(name, "")


@pytest.mark.parametrize(
    "declared",
    [
        "image/svg+xml",
        "image/svg+xml; charset=utf-8",
        "Text/HTML",
        " text/html ;charset=utf-8",
        "application/xhtml+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "text/xml",
        "application/xml",
        "application/atom+xml",
    ],
)
def test_active_by_declared_type(declared: str) -> None:
    assert is_active("upload", declared)


@pytest.mark.parametrize(
    "declared", ["", "text/plain", "image/png", "application/json", "application/octet-stream"]
)
def test_inactive_declared_types(declared: str) -> None:
    assert not is_active("upload", declared)


@pytest.mark.parametrize(
    "head",
    [
        b"<svg xmlns='http://www.w3.org/2000/svg'>",
        b"<SVG>",
        b"<!DOCTYPE html>",
        b"<!doctype HTML>",
        b"<html>",
        b"<script>alert(1)</script>",
        b"<?xml version='1.0'?>",
        b"<head>",
        b"<body onload=x>",
        b"<iframe src=x>",
        b"  \r\n\t<html>",
        b"<a href=x>",
        b"<p>hi",
    ],
)
def test_active_by_content(head: bytes) -> None:
    assert is_active("notes.txt", "text/plain", head)


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_active_by_content_after_a_bom(bom: bytes, encoding: str) -> None:
    head = (bom + " <svg onload=alert(1)>".encode(encoding))[:SNIFF_BYTES]
    assert is_active("image.png", "image/png", head)


@pytest.mark.parametrize(
    "head", [b"", TEXT, PNG, b"a < b", b"<abc>", b"<pre>", codecs.BOM_UTF8 + b"plain text"]
)
def test_inactive_content(head: bytes) -> None:
    assert not is_active("notes.txt", "text/plain", head)


@pytest.mark.parametrize(
    "name",
    [
        "feed.rdf",
        "feed.rss",
        "feed.atom",
        "formula.mml",
        "service.wsdl",
        "app.xul",
        "schema.xsd",
        "process.xpdl",
        "page.mht",
        "page.MHTML",
        "feed.rss.",
    ],
)
def test_xml_family_and_mhtml_names_are_active(name: str) -> None:
    assert is_active(name, "")


@pytest.mark.parametrize(
    "declared",
    [
        "image/png,text/html",
        "text/plain, text/html",
        "image/png,image/svg+xml",
        "multipart/related",
        "application/x-mimearchive",
        "text/xul",
        "application/rss+xml",
    ],
)
def test_active_when_any_declared_type_is(declared: str) -> None:
    assert is_active("upload", declared)


def test_every_extension_python_gives_an_active_type_is_active() -> None:
    table = mimetypes.MimeTypes()
    found = {
        ext: mime
        for types in table.types_map
        for ext, mime in types.items()
        if is_active("upload", mime)
    }
    assert found  # .html, .svg, .xml, .rdf, .wsdl, .xpdl, .xul...
    assert [ext for ext in sorted(found) if not is_active(f"x{ext}", "")] == []


@pytest.mark.parametrize(
    "head",
    [
        b'<h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:body onload="alert(1)"/></h:html>',
        b'<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>',
        b"<x:script>alert(1)</x:script>",
        b'<s:svg xmlns:s="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b'<root xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></root>',
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>',
        b'<doc><x:a xmlns:x="http://www.w3.org/1999/xhtml" href="javascript:alert(1)">x</x:a>',
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">',
        codecs.BOM_UTF8 + b' <H:HTML xmlns:h="http://www.w3.org/1999/xhtml">',
    ],
)
def test_active_by_namespaced_markup(head: bytes) -> None:
    assert is_active("notes.txt", "text/plain", head)


def test_active_by_mhtml_content() -> None:
    head = (
        b"From: <Saved by Blink>\r\nSubject: page\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related;\r\n\ttype="text/html";\r\n\tboundary="--b"\r\n'
    )
    assert is_active("notes.txt", "text/plain", head)


@pytest.mark.parametrize(
    "head",
    [
        b"<abc>hello</abc>",
        b"<x:y>not a known element</x:y>",
        b"see http://www.w3.org/1999/xhtml for the namespace",
        b"From: a@example.com\r\nSubject: hi\r\nContent-Type: multipart/mixed\r\n",
        b"key: value\nother: thing\n",
    ],
)
def test_inactive_xml_like_content(head: bytes) -> None:
    assert not is_active("notes.txt", "text/plain", head)


# -- the declared type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("", ""),
        ("  ", ""),
        ("image/png", "image/png"),
        (" Image/PNG ", "image/png"),
        ("text/plain; charset=utf-8", "text/plain"),
        ('text/plain ;charset="utf-8"; format=flowed', "text/plain"),
        ("image/png;", "image/png"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", None),
        ("image/svg+xml", None),
        ("x-custom/a.b-c_d+e!#$&^", None),
    ],
)
def test_declared_type_is_one_mime_type_without_parameters(
    declared: str, expected: str | None
) -> None:
    assert declared_type(declared) == (expected if expected is not None else declared)


@pytest.mark.parametrize(
    "declared",
    [
        "image/png,text/html",
        "text/plain,text/html",
        "image/png, text/html",
        ",",
        "image/png,",
        "image/png;x=1,text/html",
        'text/plain; a="b,c"',
        "image /png",
        "image/ png",
        "image/p ng",
        "image",
        "image/",
        "/png",
        "*/*",
        "image/*",
        "image/png/x",
        "-image/png",
        "<script>alert(1)</script>",
        "image/png; charset",
        "image/png; a=b c",
        "image/pn\u00e9",
        "text/html\x00",
        "image/" + "a" * 128,
    ],
)
def test_declared_type_other_than_one_mime_type_is_refused(declared: str) -> None:
    with pytest.raises(BadType) as caught:
        declared_type(declared)
    assert caught.value.code == "bad_type"


# -- the content type a storage is given ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("avatar.png", PNG, "image/png"),
        ("avatar", PNG, "image/png"),
        ("notes.txt", PNG, "image/png"),
        (
            "report.docx",
            ZIP,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("archive.bin", ZIP, "application/zip"),
        ("notes.txt", TEXT, "text/plain"),
        ("data.csv", TEXT, "text/csv"),
        ("script.py", TEXT, "text/x-python"),
        ("notes", TEXT, "application/octet-stream"),
        ("shell.php", TEXT, "application/octet-stream"),
    ],
)
def test_content_type_comes_from_content_then_extension(
    name: str, head: bytes, expected: str
) -> None:
    assert content_type_of(name, head) == expected


def test_sniffer_content_type_is_the_extensions_until_the_verdict() -> None:
    sniffer = ContentSniffer("avatar.txt", "text/html")
    assert sniffer.content_type == "text/plain"
    sniffer.feed(PNG)
    assert sniffer.content_type == "image/png"
