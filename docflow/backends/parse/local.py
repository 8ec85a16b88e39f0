"""The local parser: every format docflow reads without a service, dispatched on the sniffed type.

`LocalParser.parse` returns markdown (headings, lists, tables as pipe tables, `<!-- page N -->` before each
page of paged formats), plain text and blocks with their page. `quick_text` is a cheap plain-text peek at
the start of a document for classifiers. The work per format family lives in its own module:

| module | formats | libraries |
|------------|---------------------------------------------------------------|-----------------------------------|
| pdf.py | PDF text layer, OCR of pages without one | pypdfium2, rapidocr               |
| pdf_tables.py | ruled and borderless tables on PDF pages | pypdfium2 (rules, character boxes) |
| ocr.py | PNG, JPEG, TIFF (multi-page), GIF, WebP, BMP | Pillow, rapidocr                  |
| office.py | DOCX, PPTX, ODT | zipfile + ElementTree |
| sheets.py | XLSX, XLS | openpyxl, xlrd |
| mail.py | EML, MSG (attachments listed) | email, olefile |
| epub.py | EPUB | zipfile + ElementTree, html.py |
| html.py | HTML, XHTML | BeautifulSoup, markdownify |
| text.py | plain text, markdown, CSV/TSV, JSON, XML, RTF | csv, json, ElementTree, striprtf |
"""

import re
from collections.abc import Callable
from typing import Self

from docflow.backends.parse import epub, mail, ocr, office, pdf, sheets, text
from docflow.backends.parse.guard import Deadline
from docflow.backends.parse.html import clean_soup, parse_html
from docflow.backends.parse.markdown import markdown_blocks, markdown_to_text, squash_blank_lines
from docflow.errors import BadDocument, DocumentTooLarge, UnsupportedFormat
from docflow.models import ParsedDocument, RawFile
from docflow.settings import Settings
from docflow.sniff import (
    DOCX,
    EMAIL,
    HTML,
    JSON,
    MARKDOWN,
    MSG,
    PDF,
    PPTX,
    RTF,
    TEXT_TYPES,
    XLS,
    XLSX,
    XML,
    decode_text,
    read_text,
    text_problem,
)

__all__ = ["SUPPORTED_TYPES", "LocalParser", "markdown_blocks", "markdown_to_text", "quick_text"]

XHTML = "application/xhtml+xml"
ODT = "application/vnd.oasis.opendocument.text"
EPUB = "application/epub+zip"
IMAGES = ("image/png", "image/jpeg", "image/tiff", "image/gif", "image/webp", "image/bmp")

# type -> parse(data, parser, deadline)
_PARSERS: dict[str, Callable[[bytes, "LocalParser", Deadline], ParsedDocument]] = {
    PDF: lambda data, p, deadline: pdf.parse_pdf(data, p.max_pages, deadline, ocr=p.ocr),
    HTML: lambda data, p, deadline: parse_html(data),
    XHTML: lambda data, p, deadline: parse_html(data),
    DOCX: lambda data, p, deadline: office.parse_docx(data, deadline),
    PPTX: lambda data, p, deadline: office.parse_pptx(data, deadline),
    ODT: lambda data, p, deadline: office.parse_odt(data, deadline),
    XLSX: lambda data, p, deadline: sheets.parse_xlsx(data, deadline),
    XLS: lambda data, p, deadline: sheets.parse_xls(data, deadline),
    EPUB: lambda data, p, deadline: epub.parse_epub(data, deadline),
    EMAIL: lambda data, p, deadline: mail.parse_eml(data),
    MSG: lambda data, p, deadline: mail.parse_msg(data),
    JSON: lambda data, p, deadline: text.parse_json(data),
    XML: lambda data, p, deadline: text.parse_xml(data),
    RTF: lambda data, p, deadline: text.parse_rtf(data),
    **{t: (lambda data, p, deadline, t=t: text.TEXT_PARSERS[t](read_text(data))) for t in TEXT_TYPES},
    **{t: (lambda data, p, deadline: ocr.parse_image(data, p.max_pages, deadline)) for t in IMAGES},
}
SUPPORTED_TYPES = tuple(_PARSERS)
_READABLE = frozenset(SUPPORTED_TYPES)


class LocalParser:
    """Parses every supported format locally; raises `UnsupportedFormat` for the others."""

    name = "local"

    def __init__(
        self,
        max_pages: int = 2000,
        max_bytes: int = 100 * 1024 * 1024,
        timeout_s: float | None = None,
        ocr: bool = True,
    ) -> None:
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.ocr = ocr

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            max_pages=settings.max_pages, max_bytes=settings.max_bytes, timeout_s=settings.parse_timeout_s
        )

    @staticmethod
    def readable_types() -> frozenset[str]:
        return _READABLE

    @staticmethod
    def formats_read() -> str:
        return "the local parser reads " + ", ".join(SUPPORTED_TYPES)

    def parse(self, data: bytes, raw: RawFile) -> ParsedDocument:
        content_type = _base_type(raw.content_type)
        _check_input(data, content_type, raw.filename, self.max_bytes)
        try:
            result = _PARSERS[content_type](data, self, Deadline(self.timeout_s))
        except (BadDocument, MemoryError):
            raise
        except RecursionError as exc:
            raise BadDocument(f"the {content_type} document is nested too deeply to parse") from exc
        if result.pages and result.pages > self.max_pages:
            raise DocumentTooLarge(
                f"the document has {result.pages:,} pages, over the limit of {self.max_pages:,}"
            )
        return result


def quick_text(data: bytes, content_type: str, max_pages: int = 3, max_chars: int = 20000) -> str:
    """Plain text of the first `max_pages` pages (PDF) or the first `max_chars` characters, cheaply.

    No OCR: a scan yields little text here (the classifier then works from the file name and layout)."""
    content_type = _base_type(content_type)
    _check_input(data, content_type, "", max_bytes=None)
    if content_type == PDF:
        return pdf.pdf_quick_text(data, max_pages, max_chars)
    if content_type in (HTML, XHTML):
        return squash_blank_lines(clean_soup(data).get_text("\n"))[:max_chars]
    if content_type in TEXT_TYPES:
        text = decode_text(data[: max_chars * 4])
        peek = text[:max_chars]
        if problem := text_problem(peek, whole=len(data) <= max_chars * 4 and len(text) <= max_chars):
            raise BadDocument(problem)  # as parsing would: a classifier must not read a type into noise
        return markdown_to_text(peek) if content_type == MARKDOWN else peek
    if content_type in IMAGES:
        ocr.open_image(data)  # corrupt images fail here as in parse
        return ""
    parsed = _PARSERS[content_type](data, LocalParser(max_pages=max_pages, ocr=False), Deadline(30))
    return re.sub(r"\n{3,}", "\n\n", parsed.text)[:max_chars]


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _check_input(data: bytes, content_type: str, filename: str, max_bytes: int | None) -> None:
    what = f" ({filename})" if filename else ""
    if not data:
        raise BadDocument(f"empty document (0 bytes){what}")
    if max_bytes is not None and len(data) > max_bytes:
        raise DocumentTooLarge(
            f"document{what} is {len(data):,} bytes, over the limit of {max_bytes:,} bytes"
        )
    if content_type not in _PARSERS:
        supported = ", ".join(SUPPORTED_TYPES)
        raise UnsupportedFormat(
            f"the local parser cannot read {content_type or 'an unknown type'}{what}; it reads: {supported}"
        )
