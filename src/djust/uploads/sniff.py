"""Content validation by magic bytes: does a file's content match its name and declared type?"""

from __future__ import annotations

import codecs
import functools
import mimetypes
import re
from dataclasses import dataclass

from djust.errors import BadType, ContentMismatch
from djust.uploads.names import extension, safe_name

__all__ = [
    "FORMATS",
    "SNIFF_BYTES",
    "ContentSniffer",
    "Format",
    "Signature",
    "canonical_mime",
    "check_content",
    "content_type_of",
    "declared_type",
    "ignored_type",
    "is_active",
    "mime_for_name",
    "sniff",
]

# Bytes that must all be present, each at its offset, for a signature to match.
Signature = tuple[tuple[int, bytes], ...]

# Types that say nothing about the content: browsers send them when they do not know.
_UNKNOWN_TYPES = frozenset({"", "application/octet-stream"})

# One media type (RFC 6838 restricted names, at most 127 characters each), then optional
# parameters (RFC 9110): what a browser's File.type can be. No commas anywhere: a list of types
# lets each reader pick its own.
_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_TOKEN = r"[a-z0-9!#$%&'*+.^_`|~-]+"
_QUOTED = r'"[\t !#-+\--\[\]-~]*"'
_DECLARED = re.compile(
    rf"(?P<type>{_NAME}/{_NAME})(?:[ \t]*;[ \t]*(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))?)*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Format:
    """A known file format: its MIME type, extensions and magic bytes."""

    mime: str
    label: str  # with its article, for messages: "a JPEG image"
    extensions: tuple[str, ...] = ()
    signatures: tuple[Signature, ...] = ()  # any one of them identifies the format
    content: tuple[str, ...] = ()  # other sniffed types that are valid content for it
    aliases: tuple[str, ...] = ()  # other names clients give the type
    misdeclared: tuple[str, ...] = ()  # wrong types browsers are known to declare for it
    executable: bool = False
    active: bool = False  # browsers run scripts in it

    @property
    def signed(self) -> bool:
        """Whether the content of this format can be checked at all."""
        return bool(self.signatures or self.content)

    @property
    def accepts(self) -> frozenset[str]:
        """The sniffed types that are valid content for this format."""
        own = (self.mime,) if self.signatures else ()
        return frozenset((*own, *self.content))


def _magic(*prefixes: bytes) -> tuple[Signature, ...]:
    return tuple(((0, prefix),) for prefix in prefixes)


def _riff(form: bytes) -> tuple[Signature, ...]:
    return (((0, b"RIFF"), (8, form)),)


def _ftyp(*brands: bytes) -> tuple[Signature, ...]:
    # ISO base media files open with an "ftyp" box: size, b"ftyp", then the major brand.
    return tuple(((4, b"ftyp"), (8, brand)) for brand in brands)


def _atom(*names: bytes) -> tuple[Signature, ...]:
    return tuple(((4, name),) for name in names)


_ZIP = ("application/zip",)
_OLE2 = ("application/x-ole-storage",)
_OGG = ("application/ogg",)
_MKV = ("video/x-matroska",)
_MP4 = ("video/mp4", "video/quicktime")
_HEIF = ("image/heif",)
_OPENXML = "application/vnd.openxmlformats-officedocument"
_OPENDOC = "application/vnd.oasis.opendocument"

# Order matters: sniff() returns the first format whose signature matches, so the specific
# ftyp brands come before the generic MP4 entry.
FORMATS: tuple[Format, ...] = (
    # -- images
    Format(
        "image/jpeg",
        "a JPEG image",
        (".jpg", ".jpeg", ".jpe", ".jfif"),
        _magic(b"\xff\xd8\xff"),
        aliases=("image/jpg", "image/pjpeg", "image/jfif"),
    ),
    Format(
        "image/png",
        "a PNG image",
        (".png", ".apng"),
        _magic(b"\x89PNG\r\n\x1a\n"),
        aliases=("image/x-png", "image/apng"),
    ),
    Format("image/gif", "a GIF image", (".gif",), _magic(b"GIF87a", b"GIF89a")),
    Format("image/webp", "a WebP image", (".webp",), _riff(b"WEBP")),
    Format(
        "image/bmp",
        "a BMP image",
        (".bmp", ".dib"),
        _magic(b"BM"),
        aliases=("image/x-bmp", "image/x-ms-bmp"),
    ),
    Format(
        "image/tiff",
        "a TIFF image",
        (".tif", ".tiff"),
        _magic(b"II*\x00", b"MM\x00*"),
        aliases=("image/x-tiff",),
    ),
    Format(
        "image/x-icon",
        "an icon",
        (".ico",),
        _magic(b"\x00\x00\x01\x00"),
        aliases=("image/vnd.microsoft.icon", "image/ico"),
    ),
    Format("image/avif", "an AVIF image", (".avif",), _ftyp(b"avif", b"avis"), _HEIF),
    Format(
        "image/heic",
        "a HEIC image",
        (".heic", ".heics"),
        _ftyp(b"heic", b"heix", b"hevc", b"hevx"),
        _HEIF,
        aliases=("image/heic-sequence",),
    ),
    # mif1 and msf1 are the generic HEIF brands; AVIF and HEIC encoders both write them.
    Format(
        "image/heif",
        "a HEIF image",
        (".heif", ".heifs", ".hif"),
        _ftyp(b"mif1", b"msf1"),
        ("image/heic", "image/avif"),
        aliases=("image/heif-sequence",),
    ),
    # -- documents and archives
    Format(
        "application/pdf",
        "a PDF document",
        (".pdf",),
        _magic(b"%PDF-"),
        aliases=("application/x-pdf",),
    ),
    Format(
        "application/rtf", "an RTF document", (".rtf",), _magic(b"{\\rtf"), aliases=("text/rtf",)
    ),
    Format(
        "application/zip",
        "a ZIP archive",
        (".zip",),
        _magic(b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"),
        aliases=("application/x-zip-compressed", "application/x-zip", "multipart/x-zip"),
    ),
    # ZIP-based formats cannot be told from any other ZIP archive by their first bytes.
    Format(f"{_OPENXML}.wordprocessingml.document", "a Word document", (".docx",), content=_ZIP),
    Format(f"{_OPENXML}.spreadsheetml.sheet", "an Excel workbook", (".xlsx",), content=_ZIP),
    Format(
        f"{_OPENXML}.presentationml.presentation",
        "a PowerPoint presentation",
        (".pptx",),
        content=_ZIP,
    ),
    Format(f"{_OPENDOC}.text", "an OpenDocument text", (".odt",), content=_ZIP),
    Format(f"{_OPENDOC}.spreadsheet", "an OpenDocument spreadsheet", (".ods",), content=_ZIP),
    Format(f"{_OPENDOC}.presentation", "an OpenDocument presentation", (".odp",), content=_ZIP),
    Format("application/epub+zip", "an EPUB book", (".epub",), content=_ZIP),
    Format(
        "application/java-archive",
        "a Java archive",
        (".jar",),
        content=_ZIP,
        aliases=("application/x-java-archive",),
    ),
    Format(
        "application/vnd.android.package-archive", "an Android package", (".apk",), content=_ZIP
    ),
    # Likewise for the OLE2 compound files of the older Microsoft Office formats.
    Format(
        "application/x-ole-storage",
        "an OLE2 compound document",
        signatures=_magic(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    ),
    Format("application/msword", "a Word document", (".doc", ".dot"), content=_OLE2),
    Format("application/vnd.ms-excel", "an Excel workbook", (".xls", ".xlt"), content=_OLE2),
    Format(
        "application/vnd.ms-powerpoint",
        "a PowerPoint presentation",
        (".ppt", ".pps", ".pot"),
        content=_OLE2,
    ),
    Format("application/vnd.ms-outlook", "an Outlook message", (".msg",), content=_OLE2),
    Format(
        "application/gzip",
        "a gzip archive",
        (".gz", ".tgz"),
        _magic(b"\x1f\x8b"),
        aliases=("application/x-gzip", "application/x-gtar", "application/x-tgz"),
    ),
    Format(
        "application/x-7z-compressed", "a 7-Zip archive", (".7z",), _magic(b"7z\xbc\xaf\x27\x1c")
    ),
    Format(
        "application/x-rar-compressed",
        "a RAR archive",
        (".rar",),
        _magic(b"Rar!\x1a\x07"),
        aliases=("application/vnd.rar", "application/x-rar"),
    ),
    Format(
        "application/x-bzip2",
        "a bzip2 archive",
        (".bz2", ".tbz2"),
        _magic(b"BZh"),
        aliases=("application/x-bzip",),
    ),
    Format("application/x-xz", "an xz archive", (".xz", ".txz"), _magic(b"\xfd7zXZ\x00")),
    # -- audio and video
    Format(
        "audio/mpeg",
        "an MP3 file",
        (".mp3",),
        # An ID3 tag, or straight into an MPEG audio frame (versions 1, 2 and 2.5; with or
        # without CRC).
        _magic(
            b"ID3", b"\xff\xfb", b"\xff\xfa", b"\xff\xf3", b"\xff\xf2", b"\xff\xe3", b"\xff\xe2"
        ),
        aliases=("audio/mp3", "audio/mpeg3", "audio/x-mpeg-3", "audio/x-mp3", "audio/x-mpeg"),
    ),
    Format(
        "audio/wav",
        "a WAV file",
        (".wav",),
        _riff(b"WAVE"),
        aliases=("audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/x-pn-wav"),
    ),
    Format(
        "video/x-msvideo",
        "an AVI video",
        (".avi",),
        _riff(b"AVI "),
        aliases=("video/avi", "video/msvideo"),
    ),
    Format("application/ogg", "an Ogg file", (".ogx",), _magic(b"OggS")),
    Format(
        "audio/ogg",
        "an Ogg audio file",
        (".ogg", ".oga", ".opus"),
        content=_OGG,
        aliases=("audio/opus", "audio/vorbis", "audio/x-ogg"),
    ),
    Format("video/ogg", "an Ogg video", (".ogv",), content=_OGG),
    Format("audio/flac", "a FLAC file", (".flac",), _magic(b"fLaC"), aliases=("audio/x-flac",)),
    # Any ftyp brand not claimed above: mp41, mp42, isom, avc1, "M4A ", "M4V ", "qt  "...
    Format(
        "video/mp4",
        "an MP4 video",
        (".mp4", ".m4v", ".m4p"),
        _atom(b"ftyp"),
        ("video/quicktime",),
        aliases=("video/x-m4v", "application/mp4"),
    ),
    Format(
        "audio/mp4",
        "an MP4 audio file",
        (".m4a", ".m4b"),
        content=_MP4,
        aliases=("audio/x-m4a", "audio/m4a"),
    ),
    # Older QuickTime files open with another atom than ftyp.
    Format(
        "video/quicktime",
        "a QuickTime video",
        (".mov", ".qt"),
        _atom(b"moov", b"mdat", b"wide", b"pnot"),
        ("video/mp4",),
    ),
    # The Matroska doctype ("webm" or "matroska") sits too deep in the header to sniff.
    Format(
        "video/x-matroska",
        "a Matroska video",
        (".mkv", ".mka", ".mk3d"),
        _magic(b"\x1a\x45\xdf\xa3"),
        aliases=("audio/x-matroska",),
    ),
    Format("video/webm", "a WebM video", (".webm",), content=_MKV, aliases=("audio/webm",)),
    # -- fonts and code
    Format(
        "font/woff", "a WOFF font", (".woff",), _magic(b"wOFF"), aliases=("application/font-woff",)
    ),
    Format(
        "font/woff2",
        "a WOFF2 font",
        (".woff2",),
        _magic(b"wOF2"),
        aliases=("application/font-woff2",),
    ),
    Format(
        "font/ttf",
        "a TrueType font",
        (".ttf",),
        _magic(b"\x00\x01\x00\x00"),
        aliases=("application/x-font-ttf", "font/sfnt"),
    ),
    Format(
        "font/otf",
        "an OpenType font",
        (".otf",),
        _magic(b"OTTO"),
        aliases=("application/x-font-otf",),
    ),
    Format("application/wasm", "a WebAssembly module", (".wasm",), _magic(b"\x00asm")),
    # -- programs
    Format(
        "application/x-msdownload",
        "a Windows program",
        (".exe", ".dll", ".sys", ".scr"),
        _magic(b"MZ"),
        aliases=(
            "application/x-dosexec",
            "application/vnd.microsoft.portable-executable",
            "application/x-ms-dos-executable",
            "application/exe",
            "application/x-exe",
            "application/x-winexe",
        ),
        executable=True,
    ),
    # DOS .com programs have no header at all.
    Format("application/x-msdos-program", "a DOS program", (".com",), executable=True),
    Format(
        "application/x-executable",
        "an ELF program",
        (".elf", ".so", ".o", ".ko"),
        _magic(b"\x7fELF"),
        aliases=(
            "application/x-elf",
            "application/x-sharedlib",
            "application/x-pie-executable",
            "application/x-object",
        ),
        executable=True,
    ),
    Format(
        "application/x-mach-binary",
        "a macOS program",
        (".dylib",),
        # 32- and 64-bit, either byte order, and universal ("fat") binaries.
        _magic(
            b"\xfe\xed\xfa\xce",
            b"\xfe\xed\xfa\xcf",
            b"\xce\xfa\xed\xfe",
            b"\xcf\xfa\xed\xfe",
            b"\xca\xfe\xba\xbe",
        ),
        aliases=("application/x-mach-o-executable",),
        executable=True,
    ),
    # -- text: no signature to check
    Format("text/plain", "a text file", (".txt", ".text", ".log")),
    # Windows with Excel installed declares CSV files as Excel workbooks.
    Format(
        "text/csv",
        "a CSV file",
        (".csv",),
        aliases=(
            "text/comma-separated-values",
            "text/x-csv",
            "application/csv",
            "application/x-csv",
        ),
        misdeclared=("application/vnd.ms-excel",),
    ),
    Format("application/json", "a JSON file", (".json",), aliases=("text/json",)),
    Format("text/markdown", "a Markdown file", (".md", ".markdown"), aliases=("text/x-markdown",)),
    Format("text/css", "a stylesheet", (".css",)),
    # -- active: browsers run scripts in these
    Format("image/svg+xml", "an SVG image", (".svg", ".svgz"), active=True),
    Format("text/html", "an HTML page", (".html", ".htm", ".shtml"), active=True),
    Format("application/xhtml+xml", "an XHTML page", (".xhtml", ".xht"), active=True),
    Format(
        "text/javascript",
        "a JavaScript file",
        (".js", ".mjs", ".cjs"),
        aliases=(
            "application/javascript",
            "application/x-javascript",
            "application/ecmascript",
            "text/ecmascript",
        ),
        active=True,
    ),
    Format(
        "application/xml",
        "an XML document",
        (".xml", ".xsl", ".xslt", ".xsd", ".xpdl"),
        aliases=("text/xml", "application/xslt+xml", "text/xsl"),
        active=True,
    ),
    # Browsers render every XML type as XML, and run the XHTML or SVG inside, under any prefix.
    Format("application/rdf+xml", "an RDF document", (".rdf",), active=True),
    Format("application/rss+xml", "an RSS feed", (".rss",), active=True),
    Format("application/atom+xml", "an Atom feed", (".atom",), active=True),
    Format("application/mathml+xml", "a MathML document", (".mml",), active=True),
    Format("application/wsdl+xml", "a WSDL document", (".wsdl",), active=True),
    Format(
        "application/vnd.mozilla.xul+xml",
        "a XUL document",
        (".xul",),
        aliases=("text/xul",),
        active=True,
    ),
    # A saved web page: HTML with its resources, which Internet Explorer and Edge rendered.
    Format(
        "multipart/related",
        "an MHTML archive",
        (".mht", ".mhtml"),
        aliases=("application/x-mimearchive",),
        active=True,
    ),
)

_BY_EXTENSION = {ext: fmt for fmt in FORMATS for ext in fmt.extensions}
_BY_MIME = {mime: fmt for fmt in FORMATS for mime in (fmt.mime, *fmt.aliases)}
_SNIFFABLE = tuple(fmt for fmt in FORMATS if fmt.signatures)

# How many leading bytes decide: room for every signature, and for a BOM and some
# whitespace before the markup is_active() looks for.
SNIFF_BYTES = 32

_ACTIVE_EXTENSIONS = tuple(ext for fmt in FORMATS if fmt.active for ext in fmt.extensions)
_ACTIVE_TYPES = frozenset(
    mime for fmt in FORMATS if fmt.active for mime in (fmt.mime, *fmt.aliases)
)

# Markup that makes browsers render a document as HTML, SVG or XML (after the WHATWG sniffing
# rules). The short tags count only when a space or ">" ends them.
_ACTIVE_MARKUP = (
    "<svg", "<!doctype", "<html", "<script", "<?xml", "<head", "<body", "<iframe",
    "<title", "<style", "<table", "<div", "<font", "<!--",
)  # fmt: skip
_ACTIVE_TAGS = ("<a", "<b", "<p", "<br", "<h1")
# In XML a prefix can name the XHTML or SVG namespace: <h:html xmlns:h="...xhtml"> is a page
# and <x:script> runs. Such elements count whatever the prefix.
_ACTIVE_ELEMENTS = frozenset(
    {
        "html", "head", "body", "script", "style", "title", "iframe", "object", "embed", "img",
        "table", "div", "font", "a", "b", "p", "br", "h1", "svg", "foreignobject", "use",
        "animate", "set", "handler", "math",
    }
)  # fmt: skip
_PREFIXED = re.compile(r"<[a-z_][\w.-]*:([a-z_][\w.-]*)")
# A leading element that declares a namespace is XML, which browsers render as XML.
_NAMESPACE_DECLARATION = re.compile(r"\sxmlns(?::[\w.-]*)?\s*=")
_ACTIVE_NAMESPACES = (
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/1998/math/mathml",
    "http://www.w3.org/1999/xsl/transform",
    "http://www.mozilla.org/keymaster/gatekeeper/there.is.only.xul",
)
# MHTML opens with mail headers and declares itself multipart/related.
_HEADER_LINE = re.compile(r"[a-z0-9-]+:")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _check_table() -> None:
    # The lookups above would silently keep the last of two claims; refuse that instead.
    extensions = [ext for fmt in FORMATS for ext in fmt.extensions]
    mimes = [mime for fmt in FORMATS for mime in (fmt.mime, *fmt.aliases)]
    if len(extensions) != len(_BY_EXTENSION) or len(mimes) != len(_BY_MIME):
        raise AssertionError("two formats claim the same extension or MIME type")
    for fmt in FORMATS:
        if any(
            offset + len(magic) > SNIFF_BYTES for sig in fmt.signatures for offset, magic in sig
        ):
            raise AssertionError(f"a signature of {fmt.mime} does not fit in SNIFF_BYTES")
        if any(mime not in _BY_MIME or not _BY_MIME[mime].signatures for mime in fmt.content):
            raise AssertionError(f"{fmt.mime} names content without a signature")


_check_table()


def canonical_mime(mime: str) -> str:
    """Return ``mime`` without parameters, lower-cased, and with known aliases resolved."""
    mime = mime.split(";", 1)[0].strip().lower()
    fmt = _BY_MIME.get(mime)
    return fmt.mime if fmt else mime


def declared_type(client_type: str) -> str:
    """Return the one MIME type a client declared, lower-cased, without parameters, or "".

    Raise BadType for anything else: a list, a comma, spaces inside the type, garbage.
    """
    text = client_type.strip()
    if not text:
        return ""
    match = _DECLARED.fullmatch(text)
    if match is None:
        raise BadType(f"the declared type {text[:80]!r} is not one MIME type like 'image/png'")
    return match["type"].lower()


def mime_for_name(name: str) -> str | None:
    """Return the MIME type of the extension of ``name`` (djust's table, then Python's), or None."""
    ext = extension(name)
    fmt = _BY_EXTENSION.get(ext)
    if fmt is not None:
        return fmt.mime
    strict, common = _python_types()
    guessed = strict.get(ext) or common.get(ext)
    return canonical_mime(guessed) if guessed else None


def ignored_type(client_name: str, client_type: str) -> bool:
    """Whether a declared type says nothing: none, generic, or known to be wrong for the name."""
    declared = canonical_mime(client_type)
    if declared in _UNKNOWN_TYPES:
        return True
    fmt = _BY_EXTENSION.get(extension(client_name))
    return fmt is not None and declared in fmt.misdeclared


def content_type_of(client_name: str, head: bytes = b"") -> str:
    """The MIME type to store a file under: from its first bytes and its extension only.

    Never the type the client declared: storages such as S3 serve the file with it.
    """
    by_name = _BY_EXTENSION.get(extension(client_name))
    found = sniff(head)
    if by_name is not None and found in by_name.accepts:
        return by_name.mime  # the specific format: a .docx holds a ZIP archive
    if found is not None:
        return found
    return mime_for_name(client_name) or "application/octet-stream"


@functools.cache
def _python_types() -> tuple[dict[str, str], dict[str, str]]:
    # Python's built-in table only: the system's mime.types differ from machine to machine.
    table = mimetypes.MimeTypes()
    return table.types_map[True], table.types_map[False]


def sniff(head: bytes) -> str | None:
    """Return the MIME type the first bytes of a file identify, or None."""
    for fmt in _SNIFFABLE:
        if any(_matches(head, sig) for sig in fmt.signatures):
            return fmt.mime
    return None


def check_content(head: bytes, client_name: str, client_type: str, *, complete: bool) -> None:
    """Raise ContentMismatch unless the first bytes of a file fit its name and declared type.

    ``head`` holds at least SNIFF_BYTES bytes, or the whole file when ``complete`` is true.
    """
    shown = safe_name(client_name)  # the raw name may hold control characters
    ext = extension(client_name)
    by_name = _BY_EXTENSION.get(ext)
    declared = canonical_mime(client_type)
    by_type = None if ignored_type(client_name, client_type) else _BY_MIME.get(declared)
    if (
        by_name is not None
        and by_type is not None
        and by_name.signed
        and by_type.signed
        and not by_name.accepts & by_type.accepts
    ):
        raise ContentMismatch(
            f"{shown} is declared as {declared}, which does not match its {ext} extension"
        )
    found = sniff(head)
    for fmt in (by_name, by_type):
        if fmt is not None and fmt.signed and found not in fmt.accepts:
            raise ContentMismatch(_mismatch(shown, fmt, found, head, complete))
    if (
        found is not None
        and _BY_MIME[found].executable
        and not (by_name is not None and by_name.executable)
        and not (by_type is not None and by_type.executable)
    ):
        raise ContentMismatch(f"{shown} is a program ({found}), which its name does not say")


def is_active(client_name: str, client_type: str, head: bytes = b"") -> bool:
    """Whether browsers would run scripts in the file, judged by name, declared type or content."""
    # Check the name as it will be stored, and as systems that ignore trailing dots and spaces
    # or stop at a NUL would read it.
    raw = client_name.lower()
    names = (
        safe_name(client_name).lower(),
        raw.rstrip(". \x00"),
        raw.split("\x00", 1)[0].rstrip(". "),
    )
    if any(name.endswith(_ACTIVE_EXTENSIONS) for name in names):
        return True
    # Every member of a list counts: a reader may pick any of them.
    if any(_is_active_type(part) for part in client_type.split(",")):
        return True
    return _looks_like_markup(head)


class ContentSniffer:
    """Checks a file's content as its first bytes arrive, keeping no more than SNIFF_BYTES."""

    def __init__(self, client_name: str, client_type: str) -> None:
        self.client_name = client_name
        self.client_type = client_type
        self._head = bytearray()
        self._done = False
        self._error: ContentMismatch | None = None

    @property
    def head(self) -> bytes:
        """The first bytes of the file seen so far (at most SNIFF_BYTES)."""
        return bytes(self._head)

    @property
    def done(self) -> bool:
        """Whether the verdict is in."""
        return self._done

    @property
    def content_type(self) -> str:
        """The type to store the file under: by content once checked, else by extension."""
        return content_type_of(self.client_name, bytes(self._head) if self._done else b"")

    def feed(self, data: bytes) -> bool:
        """Take the next bytes; return True once the content has been checked."""
        if self._done:
            return self._verdict()
        self._head += data[: SNIFF_BYTES - len(self._head)]
        if len(self._head) < SNIFF_BYTES:
            return False
        self._check(complete=False)
        return True

    def finish(self) -> None:
        """Check whatever arrived, for a file that ended before SNIFF_BYTES bytes."""
        if self._done:
            self._verdict()
            return
        self._check(complete=True)

    def _check(self, *, complete: bool) -> None:
        self._done = True
        try:
            check_content(bytes(self._head), self.client_name, self.client_type, complete=complete)
        except ContentMismatch as exc:
            self._error = exc
            raise

    def _verdict(self) -> bool:
        # A rejected file stays rejected, however many more bytes the client sends.
        if self._error is not None:
            raise self._error
        return True


def _matches(head: bytes, signature: Signature) -> bool:
    return all(head[offset : offset + len(magic)] == magic for offset, magic in signature)


def _needed(fmt: Format) -> int:
    # The fewest bytes that could hold valid content for the format.
    signatures = (sig for mime in fmt.accepts for sig in _BY_MIME[mime].signatures)
    return min(max(offset + len(magic) for offset, magic in sig) for sig in signatures)


def _mismatch(shown: str, fmt: Format, found: str | None, head: bytes, complete: bool) -> str:
    if not head:
        return f"{shown} is empty, so it cannot be {fmt.label}"
    if complete and found is None and len(head) < _needed(fmt):
        return f"{shown} is too short to be {fmt.label}"
    return f"{shown} does not look like {fmt.label} (its content is {found or 'unrecognised'})"


def _is_active_type(mime: str) -> bool:
    mime = canonical_mime(mime)
    # Any XML type can carry XHTML, and with it scripts.
    return mime in _ACTIVE_TYPES or mime.endswith("+xml")


def _looks_like_markup(head: bytes) -> bool:
    encoding = "latin-1"  # byte for byte: enough to compare ASCII markup
    for bom, name in _BOMS:
        if head.startswith(bom):
            head, encoding = head[len(bom) :], name
            break
    text = head.decode(encoding, "ignore").lstrip(" \t\r\n\f").lower()
    if text.startswith(_ACTIVE_MARKUP):
        return True
    if any(
        text.startswith(tag) and text[len(tag) : len(tag) + 1] in (" ", ">") for tag in _ACTIVE_TAGS
    ):
        return True
    if (prefixed := _PREFIXED.match(text)) and prefixed[1] in _ACTIVE_ELEMENTS:
        return True
    if text.startswith("<") and (
        _NAMESPACE_DECLARATION.search(text) or any(ns in text for ns in _ACTIVE_NAMESPACES)
    ):
        return True
    return bool(_HEADER_LINE.match(text)) and "multipart/related" in text
