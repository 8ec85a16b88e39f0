"""Content sniffing: what a blob of bytes is, decided by its content first and its file name last.

`sniff_content_type` returns a standard MIME type (no parameters). A file whose bytes say no more than
"binary", "zip", "OLE container" or "gzip" takes the type its extension names in data/formats.yaml, unless
that type is one the bytes would have shown (a garbage "x.pdf" stays binary). `count_pages` counts PDF pages.
`open_pdf`, `decode_text` and `read_text` are shared with the local parser.
"""

import codecs
import io
import json
import re
import threading
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from docflow import formats
from docflow.errors import BadDocument

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
MSG = "application/vnd.ms-outlook"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
OLE = "application/x-ole-storage"
ZIP = "application/zip"
EMAIL = "message/rfc822"
HTML = "text/html"
JSON = "application/json"
XML = "application/xml"
SVG = "image/svg+xml"
RTF = "application/rtf"
GZIP = "application/gzip"
XLSB = "application/vnd.ms-excel.sheet.binary.macroEnabled.12"
MARKDOWN = "text/markdown"
CSV = "text/csv"
TSV = "text/tab-separated-values"
PLAIN = "text/plain"
BINARY = "application/octet-stream"
TEXT_TYPES = (PLAIN, MARKDOWN, CSV, TSV)  # read as decoded text, whole

_HEAD = 64 * 1024  # bytes looked at for text decisions
_JSON_FULL_PARSE_LIMIT = 8 * 1024 * 1024
# Every byte but the C0 controls (tab, newlines, form feed and ^Z excepted) and DEL: deleting these
# from a text leaves its control bytes.
_TEXT_BYTES = bytes(b for b in range(256) if b >= 0x20 and b != 0x7F) + b"\t\n\r\f\x1a"

_MAGIC: list[tuple[bytes, int, str]] = [  # (signature, offset, type); PDF and zip/OLE are handled apart
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"WEBP", 8, "image/webp"),
    (b"{\\rtf", 0, RTF),
    (b"\x1f\x8b", 0, GZIP),
    (b"\xffWPC", 0, "application/vnd.wordperfect"),
]
# ISO base media files (at offset 4 "ftyp", then the major brand): HEIF images; other brands (MP4 audio and
# video) are left to the extension
_FTYP_BRANDS = {
    **dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"), "image/heic"),
    **dict.fromkeys((b"mif1", b"msf1", b"heif"), "image/heif"),
}
_BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)  # the DIB header sizes of the BMP versions

_OOXML_DIRS = {"word/": DOCX, "xl/": XLSX, "ppt/": PPTX}
_OLE_MARKERS: list[tuple[str, str]] = [  # stream names (UTF-16LE in the directory) -> type
    ("__substg1.0_", MSG),
    ("__properties_version1.0", MSG),
    ("WordDocument", DOC),
    ("Workbook", XLS),
    ("PowerPoint Document", PPT),
]
_OLE_EXT = {".msg": MSG, ".doc": DOC, ".xls": XLS, ".ppt": PPT}
_TEXT_EXT = {
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".csv": CSV,
    ".tsv": TSV,
    ".tab": TSV,
}

_HTML_STRONG = re.compile(rb"<(!doctype\s+html|html)[\s>]", re.IGNORECASE)
_HTML_LINE_START = re.compile(rb"^[ \t]*<(!doctype\s+html|html)[\s>]", re.IGNORECASE | re.MULTILINE)
_HTML_TAGS = re.compile(rb"<(head|body|table|div|p|meta|title|h[1-6]|ul|ol|span|br)[\s/>]", re.IGNORECASE)
_XML_START = re.compile(rb"<(\?xml|[A-Za-z_][\w.:-]*[\s/>]|!--)")
_SVG = re.compile(rb"<svg[\s>]", re.IGNORECASE)
_HEADER_LINE = re.compile(r"^[!-9;-~]+:[ \t]?")  # RFC 5322 field name: printable ASCII except ':'
_EMAIL_HEADERS = {
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "received",
    "return-path",
    "delivered-to",
    "reply-to",
    "content-type",
    "x-mailer",
    "in-reply-to",
    "references",
}


def sniff_content_type(data: bytes, filename: str = "", by_extension: bool = True) -> str:
    """The MIME type of `data`, by content first; the file name refines text (markdown, csv...) and, with
    `by_extension`, names what the bytes leave undecided (see `by_name`)."""
    if not data:
        return BINARY
    sniffed = _sniff_content(data, filename)
    return by_name(sniffed, filename) if by_extension else sniffed


def _sniff_content(data: bytes, filename: str) -> str:
    head = data[:_HEAD]
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(data, filename)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _sniff_ole(data, filename)
    for signature, offset, mime in _MAGIC:
        if head[offset : offset + len(signature)] == signature:
            return mime
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS:
        return _FTYP_BRANDS[head[8:12]]
    if _is_bmp(head):
        return "image/bmp"
    text = _decode_head(head)
    if text is None:
        return BINARY
    return _sniff_text(data, head, text, filename)


def _is_bmp(head: bytes) -> bool:
    """A BMP header: the letters BM (too weak a signature alone), zero reserved bytes, a known DIB size."""
    return (
        head[:2] == b"BM"
        and len(head) >= 18
        and head[6:10] == b"\x00\x00\x00\x00"
        and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
    )


def by_name(content_type: str, filename: str) -> str:
    """A container's or unknown binary's type named by the file's extension (data/formats.yaml), when the
    bytes could not have shown that type themselves; any other type as it is."""
    if content_type not in _UNDECIDED or not filename:
        return content_type
    named = formats.type_by_extension(filename)
    return named if named and named not in _BY_CONTENT else content_type


_ZIP_EXT = {
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".pptx": PPTX,
    ".odt": "application/vnd.oasis.opendocument.text",
    ".epub": "application/epub+zip",
}
_UNDECIDED = frozenset({BINARY, ZIP, OLE, GZIP})  # what the bytes alone say of a file of unknown format
# Types the bytes show when the file is one: a name never gives them to bytes that did not
_BY_CONTENT = frozenset(
    {PDF, DOCX, XLSX, PPTX, MSG, DOC, XLS, PPT, EMAIL, HTML, JSON, XML, SVG, XLSB, "image/bmp"}
    | set(TEXT_TYPES)
    | {mime for _, _, mime in _MAGIC}
    | set(_FTYP_BRANDS.values())
    | set(_ZIP_EXT.values())
)


def _sniff_zip(data: bytes, filename: str = "") -> str:
    """The package type; a zip too broken to list takes its type from the name, so parsing says 'corrupt'."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if "mimetype" in names:  # OpenDocument, EPUB: the type is stored verbatim
                declared = archive.read("mimetype").decode("ascii", "replace").strip()
                if re.fullmatch(r"[\w.+-]+/[\w.+-]+", declared):
                    return declared
    except (zipfile.BadZipFile, OSError, ValueError):
        return _ZIP_EXT.get(PurePosixPath(filename).suffix.lower(), ZIP)
    if "[Content_Types].xml" in names:
        for prefix, mime in _OOXML_DIRS.items():
            if any(name.startswith(prefix) for name in names):
                # a binary workbook (.xlsb) is an OOXML package no XML reader reads
                return XLSB if mime == XLSX and "xl/workbook.bin" in names else mime
    return ZIP  # iWork (.pages, .key, .numbers), Visio (.vsdx)...: named by `by_name`


def _sniff_ole(data: bytes, filename: str) -> str:
    for marker, mime in _OLE_MARKERS:
        if marker.encode("utf-16-le") in data:
            return mime
    return _OLE_EXT.get(PurePosixPath(filename).suffix.lower(), OLE)


def _decode_head(head: bytes) -> str | None:
    """The head as text, or None when it looks binary (NUL bytes, or more than 1% control bytes)."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom) : len(head) - (len(head) - len(bom)) % 2].decode(codec, "replace")
    body = head.removeprefix(codecs.BOM_UTF8)
    if b"\x00" in body or len(body.translate(None, _TEXT_BYTES)) > max(1, len(body) // 100):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) == _HEAD and exc.reason == "unexpected end of data":
            return body[: exc.start].decode("utf-8", "replace")  # a character cut by the head limit
    return body.decode("cp1252", "replace")


def _sniff_text(data: bytes, head: bytes, text: str, filename: str) -> str:
    start = text.lstrip("\ufeff \t\r\n")
    raw_start = head.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    if start.startswith("<"):
        markup = _sniff_markup(raw_start)
        if markup:
            return markup
    elif _HTML_LINE_START.search(raw_start[:1024]):  # a little junk before the document
        return HTML
    if _looks_like_email(text):
        return EMAIL
    if start[:1] in ("{", "[") and _is_json(data, start):
        return JSON
    return _TEXT_EXT.get(PurePosixPath(filename).suffix.lower(), PLAIN)


def _sniff_markup(raw_start: bytes) -> str | None:
    window = raw_start[:4096]
    if _HTML_STRONG.search(window):
        return HTML
    if not window.startswith(b"<?xml") and _HTML_TAGS.search(window[:1024]):
        return HTML
    if _XML_START.match(raw_start):
        return SVG if _SVG.search(window) else XML
    return None


def _looks_like_email(text: str) -> bool:
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].startswith("From "):  # mbox separator line
        lines = lines[1:]
    known = 0
    for index, line in enumerate(lines[:200]):
        if not line:
            return index > 0 and known >= 2
        if line[0] in " \t" and index > 0:
            continue  # folded header
        match = _HEADER_LINE.match(line)
        if not match:
            return False
        known += line[: match.end()].rstrip(": \t").lower() in _EMAIL_HEADERS
    return known >= 3


def _is_json(data: bytes, start: str) -> bool:
    if len(data) <= _JSON_FULL_PARSE_LIMIT:
        try:
            json.loads(decode_text(data))
        except ValueError:
            return False
        except RecursionError:
            return True  # JSON nested too deeply to load: the parser reports it as such
        return True
    return re.match(r'[\[{]\s*("|\{|\[|-?\d|true|false|null|\]|\})', start) is not None


# --- text decoding ------------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """Bytes as text: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252/latin-1; newlines = \\n."""
    if data.startswith(codecs.BOM_UTF8):
        text = data[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", "replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# Controls, unassigned, private-use and lone surrogates: what random bytes decode to and real text lacks.
_UNREADABLE = frozenset({"Cc", "Cn", "Co", "Cs"})
_UNREADABLE_SHARE = 0.05
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


def text_problem(text: str, whole: bool = True) -> str | None:
    """Why decoded text holds nothing to read, or None when it is text.

    Judged on the characters of the head that are not whitespace: more than a twentieth of them undecodable
    (U+FFFD), controls, unassigned or private-use is not text (random bytes behind a UTF-16 byte-order mark
    decode to such); no letter or digit in the whole text is no text (whitespace, punctuation). With
    `whole=False` (the start of a longer text) only the first rule applies: a letter may come later."""
    head = "".join(text[:_HEAD].split())
    bad = sum(1 for c in head if c == "\ufffd" or (unicodedata.category(c) in _UNREADABLE and c != "\x1a"))
    if bad > len(head) * _UNREADABLE_SHARE:
        return (
            f"not readable as text in any encoding: {bad / len(head):.0%} of its characters decode to"
            " control, unassigned or invalid code points"
        )
    if whole and not _LETTER_OR_DIGIT.search(text):
        what = "only whitespace" if not head else "no letter or digit, only punctuation and symbols"
        return f"no text: the document holds {what}"
    return None


def read_text(data: bytes) -> str:
    """`decode_text`, refusing with `BadDocument` bytes that hold no readable text (see `text_problem`)."""
    text = decode_text(data)
    if problem := text_problem(text):
        raise BadDocument(problem)
    return text


# --- PDF ----------------------------------------------------------------------------------------------

# PDFium is not thread-safe: every use of it in docflow goes through this lock.
PDFIUM_LOCK = threading.RLock()

_PDFIUM_ERRORS = {
    pdfium_c.FPDF_ERR_PASSWORD: "the PDF is encrypted and needs a password",
    pdfium_c.FPDF_ERR_SECURITY: "the PDF uses an unsupported security (encryption) handler",
    pdfium_c.FPDF_ERR_FORMAT: "the PDF is corrupt or truncated (PDFium: data format error)",
    pdfium_c.FPDF_ERR_FILE: "the PDF could not be read (PDFium: file error)",
}


@contextmanager
def open_pdf(data: bytes) -> Iterator[pdfium.PdfDocument]:
    """Open a PDF under the PDFium lock; corrupt, encrypted or empty PDFs raise `BadDocument`."""
    if not data:
        raise BadDocument("empty document (0 bytes)")
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            reason = _PDFIUM_ERRORS.get(getattr(exc, "err_code", None), f"the PDF cannot be opened ({exc})")
            raise BadDocument(reason) from exc
        try:
            if len(document) == 0:
                raise BadDocument("the PDF has no pages")
            yield document
        finally:
            document.close()


def count_pages(data: bytes, content_type: str) -> int | None:
    """Page count of a PDF (None for other types); `BadDocument` if the PDF is corrupt or encrypted."""
    if content_type != PDF:
        return None
    with open_pdf(data) as document:
        return len(document)
