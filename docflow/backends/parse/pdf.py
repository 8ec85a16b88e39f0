"""PDF: the text layer page by page (pypdfium2), laid out to markdown by `layout`, and OCR for pages without
a usable text layer (no text, or fonts without a Unicode map)."""

import re

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from docflow import metering
from docflow.backends.parse import pdf_tables
from docflow.backends.parse.guard import Deadline
from docflow.backends.parse.layout import (
    COLUMN_GAP,
    COLUMN_GAP_WIDTH,
    GARBLED_RATIO,
    Line,
    Page,
    layout_document,
)
from docflow.backends.parse.ocr import ocr_lines
from docflow.errors import DocumentTooLarge
from docflow.models import ParsedDocument
from docflow.sniff import PDFIUM_LOCK, open_pdf

_NUMBERING = re.compile(r"^(\(?[0-9A-Za-z]{1,3}[.)]|\d+(\.\d+)+\.?|[•·*–-])$")


def parse_pdf(
    data: bytes, max_pages: int, deadline: Deadline | None = None, ocr: bool = True
) -> ParsedDocument:
    """The text layer of every page; pages without one (or with a garbled one) are OCRed when `ocr`."""
    deadline = deadline or Deadline(None)
    to_ocr: dict[int, object] = {}
    with open_pdf(data) as document:
        n_pages = len(document)
        if n_pages > max_pages:
            raise DocumentTooLarge(f"the PDF has {n_pages:,} pages, over the limit of {max_pages:,} pages")
        pages = []
        for index in range(n_pages):
            deadline.check(f"page {index + 1}")
            page = _read_page(document, index)
            if ocr and _needs_ocr(page):
                to_ocr[index] = render_page(document, index)
            pages.append(page)
    ocred = 0
    for index, image in to_ocr.items():
        deadline.check(f"OCR of page {index + 1}")
        metering.report("local", "rapidocr", ocr_pages=1)  # pages the parser read by OCR (usage metering)

        height = pages[index].height
        scale = pages[index].width / image.width  # type: ignore[attr-defined]
        lines = [
            Line(
                text,
                left * scale,
                right * scale,
                height - top * scale,
                height - bottom * scale,
                (bottom - top) * scale * 0.8,
                cells=[(left * scale, right * scale, text)],
            )
            for text, left, top, right, bottom in ocr_lines(image)
        ]
        garbled = pages[index].garbled
        pages[index] = Page(
            index + 1,
            lines,
            sum(len(line.text) for line in lines),
            garbled,
            pages[index].width,
            height,
            ocr=True,
        )
        ocred += 1
    parser = "local/pypdfium2" + ("+rapidocr" if ocred else "")
    return layout_document(pages, parser)


def render_page(document: pdfium.PdfDocument, index: int, dpi: int = 200):
    """A page as a PIL image (under the PDFium lock), for OCR."""
    with PDFIUM_LOCK:
        page = document[index]
        try:
            width, height = page.get_size()
            scale = min(dpi / 72, 4000 / max(width, height, 1))  # at most 4000 pixels on a side
            return page.render(scale=scale, grayscale=True).to_pil()
        finally:
            page.close()


def _needs_ocr(page: Page) -> bool:
    total = page.chars + page.garbled
    no_text = not any(line.text for line in page.lines)
    return no_text or (total > 0 and page.garbled / total > GARBLED_RATIO)


def _read_page(document: pdfium.PdfDocument, index: int) -> Page:
    """The page's text lines with their boxes (PDF units, y up), in PDFium's reading order."""
    page = document[index]
    textpage = page.get_textpage()
    try:
        result = _read_textpage(textpage.raw, index + 1)
        result.width, result.height = page.get_size()
        result.tables = _find_tables(page.raw, textpage.raw, result)
        return result
    finally:
        textpage.close()
        page.close()


_MIN_TABULAR_LINES = 3  # a page with fewer column gaps in its lines is not searched for borderless tables


def _find_tables(raw_page: object, raw_textpage: object, page: Page) -> list[pdf_tables.Table]:
    """Ruled and aligned-text tables of the page. Only pages with a grid of rules or with column gaps are
    searched (on a page with rules only, only the words of lines in a grid are looked at)."""
    if not page.chars or page.garbled > GARBLED_RATIO * (page.chars + page.garbled):
        return []
    grids = pdf_tables.rule_grids(*pdf_tables.page_rules(raw_page))
    tabular = sum(len(line.cells) - 1 for line in page.lines if line.tabular) >= _MIN_TABULAR_LINES
    if not (grids or tabular):
        return []
    near_grid = [
        line.chars
        for line in page.lines
        if any(grid.overlaps(line.left, line.right, line.bottom, line.top) for grid in grids)
    ]
    ranges = [line.chars for line in page.lines] if tabular else near_grid
    words = pdf_tables.page_words(raw_textpage, ranges)
    tables = [table for grid in grids if (table := pdf_tables.grid_table(grid, words))]
    if tabular:
        rest = [w for w in words if not any(t.contains(w.cx, w.cy) for t in tables)]
        tables += pdf_tables.aligned_tables(rest)
    return tables


def _read_textpage(raw_textpage: object, number: int) -> Page:
    result = Page(number)
    rect = pdfium_c.FS_RECTF()
    chars: list[str] = []
    starts: list[float] = []  # left edge of each cell of the current line
    ends: list[float] = []  # right edge of each closed cell
    first = last = -1
    size = 0.0
    gap_from: float | None = None  # right edge of the character before a run of spaces
    count = pdfium_c.FPDFText_CountChars(raw_textpage)
    for index in range(count + 1):
        code = pdfium_c.FPDFText_GetUnicode(raw_textpage, index) if index < count else 0x0A
        if code == 0x0A:  # PDFium's generated line break (or the end of the page)
            if first >= 0:
                line = _make_line(raw_textpage, rect, "".join(chars), first, last, size)
                line.chars = (first, last)
                ends.append(line.right)
                texts = [" ".join(cell.split()) for cell in "".join(chars).split("\t")]
                line.cells = [(a, b, t) for a, b, t in zip(starts, ends, texts, strict=False) if t]
                result.lines.append(line)
            chars, starts, ends, first, last, gap_from = [], [], [], -1, -1, None
            continue
        if code in (0x0D, 0x02):  # CR of a line break; 0x02 marks a hyphen PDFium removed at a line end
            continue
        if (code < 0x20 and code != 0x09) or code in (0xFFFD, 0xFFFE, 0xFFFF) or 0xD800 <= code < 0xE000:
            result.garbled += 1
            continue
        result.chars += 1
        char = chr(code)
        if char.isspace():
            if first >= 0 and gap_from is None:
                pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, last, rect)
                gap_from = rect.right
            chars.append(" ")
            continue
        if first < 0:
            first = index
            pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, index, rect)
            size = rect.top - rect.bottom
            starts.append(rect.left)
        elif gap_from is not None:
            pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, index, rect)
            if rect.left - gap_from > COLUMN_GAP_WIDTH * max(size, 1.0):
                chars.append("\t")
                ends.append(gap_from)
                starts.append(rect.left)
        gap_from = None
        chars.append(char)
        last = index
    return result


def _make_line(
    raw_textpage: object, rect: pdfium_c.FS_RECTF, text: str, first: int, last: int, size: float
) -> Line:
    """A line from its characters; a tab in `text` marks a column gap."""
    cells = [" ".join(cell.split()) for cell in text.split("\t")]
    cells = [cell for cell in cells if cell]
    numbered = len(cells) == 2 and _NUMBERING.match(cells[0]) is not None  # "1.1   The term..."
    line = Line(COLUMN_GAP.join(cells), tabular=len(cells) > 1 and not numbered)
    pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, first, rect)
    line.left, line.top = rect.left, rect.top
    line.size = max(size, 0.1)
    pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, last, rect)
    line.right, line.bottom = rect.right, rect.bottom
    return line


def pdf_quick_text(data: bytes, max_pages: int, max_chars: int) -> str:
    parts: list[str] = []
    size = 0
    with open_pdf(data) as document:
        for index in range(min(len(document), max_pages)):
            page = document[index]
            textpage = page.get_textpage()
            text = textpage.get_text_range()
            textpage.close()
            page.close()
            text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd\ufffe]", "", text).replace("\r\n", "\n")
            parts.append(text.strip())
            size += len(text)
            if size >= max_chars:
                break
    return "\n\n".join(parts)[:max_chars]
