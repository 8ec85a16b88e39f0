"""The local parser: PDF text layers (pypdfium2), HTML, markdown, plain text and CSV, with no service.

`LocalParser.parse` returns markdown (tables as pipe tables, `<!-- page N -->` before each PDF page), plain
text and blocks with their page. `quick_text` is a cheap plain-text peek at the first pages for classifiers.
"""

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from markdownify import MarkdownConverter

from docflow.errors import BadDocument, DocumentTooLarge, UnsupportedFormat
from docflow.models import Block, ParsedDocument, RawFile
from docflow.settings import Settings
from docflow.sniff import CSV, HTML, MARKDOWN, PDF, PLAIN, TSV, decode_text, open_pdf

TEXT_TYPES = (PLAIN, MARKDOWN, CSV, TSV)
SUPPORTED_TYPES = (PDF, HTML, "application/xhtml+xml", *TEXT_TYPES)


class LocalParser:
    """Parses the formats that need no model or service; raises `UnsupportedFormat` for the others."""

    name = "local"

    def __init__(self, max_pages: int = 2000, max_bytes: int = 100 * 1024 * 1024) -> None:
        self.max_pages = max_pages
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(max_pages=settings.max_pages, max_bytes=settings.max_bytes)

    def parse(self, data: bytes, raw: RawFile) -> ParsedDocument:
        content_type = _base_type(raw.content_type)
        _check_input(data, content_type, raw.filename, self.max_bytes)
        if content_type == PDF:
            return parse_pdf(data, self.max_pages)
        if content_type in (HTML, "application/xhtml+xml"):
            return parse_html(data)
        return _TEXT_PARSERS[content_type](decode_text(data))


def quick_text(data: bytes, content_type: str, max_pages: int = 3, max_chars: int = 20000) -> str:
    """Plain text of the first `max_pages` pages (PDF) or the first `max_chars` characters, cheaply."""
    content_type = _base_type(content_type)
    _check_input(data, content_type, "", max_bytes=None)
    if content_type == PDF:
        return _pdf_quick_text(data, max_pages, max_chars)
    if content_type in (HTML, "application/xhtml+xml"):
        soup = _clean_soup(data)
        return _squash_blank_lines(soup.get_text("\n"))[:max_chars]
    text = decode_text(data[: max_chars * 4])[:max_chars]
    return markdown_to_text(text) if content_type == MARKDOWN else text


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
    if content_type not in SUPPORTED_TYPES:
        supported = ", ".join(SUPPORTED_TYPES)
        raise UnsupportedFormat(
            f"the local parser cannot read {content_type or 'an unknown type'}{what}; it reads: {supported}"
        )


# --- PDF ----------------------------------------------------------------------------------------------

_BULLETS = "•◦▪▫‣⁃●○■□–-*·"
_LIST_START = re.compile(rf"^\s*([{re.escape(_BULLETS)}]|\(?\d{{1,3}}[.)]|\(?[a-z][.)])\s+\S")
_NUMBERING = re.compile(r"^(\(?[0-9A-Za-z]{1,3}[.)]|\d+(\.\d+)+\.?|[•·*–-])$")
_GARBLED_RATIO = 0.3
_COLUMN_GAP = 2.0  # a horizontal gap wider than this many font sizes separates columns
COLUMN_GAP = "  "  # how a column gap shows in a line of PDF text
_HEADING_RATIO = 1.15  # a line this much bigger than the body text may be a heading
_MAX_HEADING_CHARS = 120
_SAME_SIZE = 1.07  # sizes within 7% are one size
_HEADING_SHARE = 0.15  # at most this share of the characters are in one heading size


@dataclass
class _Line:
    """One text line: its first character's size and top, its last character's bottom (PDF units, y up)."""

    text: str
    left: float = 0.0
    right: float = 0.0
    top: float = 0.0
    bottom: float = 0.0
    size: float = 1.0  # height of the first character's (loose) box: the rendered font size
    tabular: bool = False  # has a column gap: never joined to its neighbours as wrapped prose


@dataclass
class _Page:
    number: int
    lines: list[_Line] = field(default_factory=list)
    chars: int = 0
    garbled: int = 0


def parse_pdf(data: bytes, max_pages: int) -> ParsedDocument:
    with open_pdf(data) as document:
        n_pages = len(document)
        if n_pages > max_pages:
            raise DocumentTooLarge(f"the PDF has {n_pages:,} pages, over the limit of {max_pages:,} pages")
        pages = [_read_page(document, index) for index in range(n_pages)]
    for page in pages:
        page.lines = _merge_rows(page.lines)
    _unify_sizes(pages)
    warnings = [warning for page in pages for warning in _page_warnings(page)]
    weights = _size_weights(pages)
    body_size = max(weights, key=lambda size: weights[size]) if weights else 0.0
    levels = _heading_levels(pages, weights, body_size)
    blocks: list[Block] = []
    markdown_parts: list[str] = []
    text_parts: list[str] = []
    for page in pages:
        markdown_parts.append(f"<!-- page {page.number} -->")
        for block, plain in _page_blocks(page, body_size, levels):
            blocks.append(block)
            markdown_parts.append(block.text)
            text_parts.append(plain)
    text = "\n\n".join(text_parts)
    return ParsedDocument(
        markdown="\n\n".join(markdown_parts) + "\n",
        text=text,
        pages=n_pages,
        blocks=blocks,
        parser="local/pypdfium2",
        warnings=warnings,
    )


def _read_page(document: pdfium.PdfDocument, index: int) -> _Page:
    """The page's text lines with their boxes (PDF units, y up), in PDFium's reading order."""
    page = document[index]
    textpage = page.get_textpage()
    try:
        return _read_textpage(textpage.raw, index + 1)
    finally:
        textpage.close()
        page.close()


def _read_textpage(raw_textpage: object, number: int) -> _Page:
    result = _Page(number)
    rect = pdfium_c.FS_RECTF()
    chars: list[str] = []
    first = last = -1
    size = 0.0
    gap_from: float | None = None  # right edge of the character before a run of spaces
    count = pdfium_c.FPDFText_CountChars(raw_textpage)
    for index in range(count + 1):
        code = pdfium_c.FPDFText_GetUnicode(raw_textpage, index) if index < count else 0x0A
        if code == 0x0A:  # PDFium's generated line break (or the end of the page)
            if first >= 0:
                result.lines.append(_make_line(raw_textpage, rect, "".join(chars), first, last, size))
            chars, first, last, gap_from = [], -1, -1, None
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
        elif gap_from is not None:
            pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, index, rect)
            if rect.left - gap_from > _COLUMN_GAP * max(size, 1.0):
                chars.append("\t")
        gap_from = None
        chars.append(char)
        last = index
    return result


def _make_line(
    raw_textpage: object, rect: pdfium_c.FS_RECTF, text: str, first: int, last: int, size: float
) -> _Line:
    """A line from its characters; a tab in `text` marks a column gap."""
    cells = [" ".join(cell.split()) for cell in text.split("\t")]
    cells = [cell for cell in cells if cell]
    numbered = len(cells) == 2 and _NUMBERING.match(cells[0]) is not None  # "1.1   The term..."
    line = _Line(COLUMN_GAP.join(cells), tabular=len(cells) > 1 and not numbered)
    pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, first, rect)
    line.left, line.top = rect.left, rect.top
    line.size = max(size, 0.1)
    pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, last, rect)
    line.right, line.bottom = rect.right, rect.bottom
    return line


def _merge_rows(lines: list[_Line]) -> list[_Line]:
    """PDFium breaks a visual line at superscripts and wide gaps: put such pieces back on one line."""
    merged: list[_Line] = []
    for line in lines:
        previous = merged[-1] if merged else None
        if previous and line.left >= previous.right - 1 and _same_row(previous, line):
            gap = line.left - previous.right
            separator = "" if gap < 0.15 * previous.size else " "
            if gap > _COLUMN_GAP * previous.size:
                separator, previous.tabular = COLUMN_GAP, True
            previous.text = f"{previous.text}{separator}{line.text}".strip()
            previous.right, previous.bottom = line.right, min(previous.bottom, line.bottom)
            if line.size > previous.size and len(line.text) > len(previous.text) / 2:
                previous.size = line.size
        else:
            merged.append(line)
    return merged


def _same_row(a: _Line, b: _Line) -> bool:
    overlap = min(a.top, b.top) - max(a.bottom, b.bottom)
    return overlap > 0.4 * min(a.top - a.bottom, b.top - b.bottom)


def _page_warnings(page: _Page) -> list[str]:
    if not any(line.text for line in page.lines) and page.garbled == 0:
        return [f"page {page.number} has no text layer (OCR not available in this parser yet)"]
    total = page.chars + page.garbled
    if total and page.garbled / total > _GARBLED_RATIO:
        return [
            f"page {page.number} text layer looks garbled ({page.garbled} of {total} characters have no "
            "Unicode mapping; OCR needed)"
        ]
    return []


def _size_weights(pages: list[_Page]) -> dict[float, int]:
    """Characters per line height (rounded to half a unit)."""
    weights: dict[float, int] = {}
    for page in pages:
        for line in page.lines:
            key = _size_key(line)
            weights[key] = weights.get(key, 0) + len(line.text)
    return weights


def _size_key(line: _Line) -> float:
    return round(line.size, 1)


def _unify_sizes(pages: list[_Page]) -> None:
    """Sizes within a few percent of each other (one font, measured on different glyphs) become one."""
    lines = sorted((line for page in pages for line in page.lines), key=lambda line: line.size)
    start = 0.0
    for line in lines:
        if line.size > start * _SAME_SIZE:
            start = line.size
        line.size = start


def _is_heading_candidate(line: _Line, body_size: float) -> bool:
    return (
        body_size > 0
        and line.size >= body_size * _HEADING_RATIO
        and len(line.text) <= _MAX_HEADING_CHARS
        and sum(char.isalpha() for char in line.text) >= 2
        and not line.text.endswith((".", ",", ";"))
    )


def _heading_levels(pages: list[_Page], weights: dict[float, int], body_size: float) -> dict[float, int]:
    """Heading sizes, biggest first, mapped to levels 1..6; a size that holds much of the text is body."""
    total = sum(weights.values())
    sizes = {
        _size_key(line)
        for page in pages
        for line in page.lines
        if _is_heading_candidate(line, body_size) and weights[_size_key(line)] <= _HEADING_SHARE * total
    }
    return {size: min(rank + 1, 6) for rank, size in enumerate(sorted(sizes, reverse=True))}


@dataclass
class _Group:
    kind: str
    lines: list[_Line]
    level: int | None = None


def _page_blocks(page: _Page, body_size: float, levels: dict[float, int]) -> list[tuple[Block, str]]:
    """The page's blocks, each with its plain text."""
    groups: list[_Group] = []
    page_width = max((line.right - line.left for line in page.lines), default=0.0)
    for line in page.lines:
        if not line.text:
            continue
        level = levels.get(_size_key(line)) if _is_heading_candidate(line, body_size) else None
        kind = "heading" if level else "list" if _LIST_START.match(line.text) else "paragraph"
        current = groups[-1] if groups else None
        if current and _continues(current, kind, level, line, page_width):
            current.lines.append(line)
        else:
            groups.append(_Group(kind, [line], level))
    return [_group_block(group, page.number) for group in groups]


def _continues(group: _Group, kind: str, level: int | None, line: _Line, page_width: float) -> bool:
    previous = group.lines[-1]
    height = min(previous.size, line.size)
    gap = previous.bottom - line.top
    if gap > 0.8 * height or line.top > previous.top + 2 * height:
        return False  # a blank space, or a jump up to a new column
    if abs(previous.size - line.size) > 0.1 * max(previous.size, line.size):
        return False
    if group.kind == "heading" or kind == "heading":
        wrapped = previous.right - previous.left >= 0.5 * page_width  # a long title wrapped
        return group.kind == kind and group.level == level and wrapped
    return kind == "paragraph"  # a list item starts a new block; its wrapped lines continue it


def _group_block(group: _Group, page_number: int) -> tuple[Block, str]:
    text = group.lines[0].text
    right = max(line.right for line in group.lines)
    for previous, line in zip(group.lines, group.lines[1:], strict=False):
        text = _join_lines(text, line.text, _wrapped(previous, line, right))
    if group.kind == "heading":
        text = text.replace("\n", " ")
        markdown = f"{'#' * (group.level or 1)} {text}"
        return Block(kind="heading", text=markdown, page=page_number, level=group.level), text
    if group.kind == "list":
        item = re.sub(rf"^[{re.escape(_BULLETS)}]\s*", "- ", text)
        item = item if item.startswith("- ") else f"- {item}"
        return Block(kind="list", text=item, page=page_number), text
    return Block(kind="paragraph", text=_escape_line_starts(text), page=page_number), text


def _wrapped(previous: _Line, line: _Line, right: float) -> bool:
    """Whether `line` continues `previous` as prose: its first word would not have fit on `previous`."""
    if previous.tabular or line.tabular:
        return False
    first_word = line.text.split(" ", 1)[0]
    return previous.right + 0.4 * line.size * len(first_word) >= right


def _join_lines(text: str, line: str, wrapped: bool) -> str:
    """Join a wrapped line to its paragraph; undo hyphenation; keep short (table-like) lines apart."""
    if re.search(r"[a-zà-ÿ]-$", text) and line[:1].islower():
        return text[:-1] + line
    return f"{text} {line}" if wrapped and not text.endswith(":") else f"{text}\n{line}"


def _escape_line_starts(text: str) -> str:
    return re.sub(r"(?m)^(#{1,6}\s|>|\|)", r"\\\1", text)


def _pdf_quick_text(data: bytes, max_pages: int, max_chars: int) -> str:
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


# --- HTML ---------------------------------------------------------------------------------------------

_DROP_TAGS = ["script", "style", "nav", "noscript", "template", "svg", "iframe", "head", "object", "embed"]


class _Converter(MarkdownConverter):
    """markdownify with ATX headings, '-' bullets, first-row table headers, no images."""

    def __init__(self) -> None:
        super().__init__(heading_style="ATX", bullets="-", table_infer_header=True, strip=["img"])


def parse_html(data: bytes) -> ParsedDocument:
    soup = _clean_soup(data)
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    _flatten_nested_tables(soup)
    _drop_empty_table_rows(soup)
    markdown = _squash_blank_lines(_Converter().convert_soup(soup))
    if title and not re.search(r"(?m)^# ", markdown):
        markdown = f"# {title}\n\n{markdown}"
    return _from_markdown(markdown, parser="local/html")


def _clean_soup(data: bytes) -> BeautifulSoup:
    """The HTML without scripts, styles, comments, doctype and XML processing instructions."""
    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    for node in soup.find_all(string=lambda node: isinstance(node, PreformattedString)):
        node.extract()
    return soup


def _flatten_nested_tables(soup: BeautifulSoup) -> None:
    """A pipe table cannot hold a table: inner tables become one line ('cells, cells; next row')."""
    for table in reversed(soup.find_all("table")):
        if isinstance(table, Tag) and table.find_parent("table") is not None:
            rows = [
                " ".join(cell.get_text(" ", strip=True) for cell in row.find_all(["td", "th"]))
                for row in table.find_all("tr")
            ]
            table.replace_with(NavigableString("; ".join(row for row in rows if row)))


def _drop_empty_table_rows(soup: BeautifulSoup) -> None:
    for row in soup.find_all("tr"):
        if isinstance(row, Tag) and not row.get_text(strip=True):
            row.decompose()


def _squash_blank_lines(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


# --- text, markdown, CSV ------------------------------------------------------------------------------


def parse_plain(text: str) -> ParsedDocument:
    text = _squash_blank_lines(text)
    paragraphs = [part.strip("\n") for part in re.split(r"\n\s*\n", text) if part.strip()]
    blocks = [Block(kind="paragraph", text=part) for part in paragraphs]
    return ParsedDocument(
        markdown=text, text="\n\n".join(paragraphs), blocks=blocks, parser="local/text", warnings=[]
    )


def parse_markdown(text: str) -> ParsedDocument:
    return _from_markdown(_squash_blank_lines(text), parser="local/markdown")


def parse_delimited(text: str, delimiter: str | None = None) -> ParsedDocument:
    rows = _read_rows(text, delimiter)
    if not rows:
        return parse_plain(text)
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    table = _pipe_table(rows)
    plain = "\n".join("\t".join(cell.strip() for cell in row) for row in rows)
    return ParsedDocument(
        markdown=table + "\n",
        text=plain,
        blocks=[Block(kind="table", text=table)],
        parser="local/csv",
        warnings=[],
    )


def _read_rows(text: str, delimiter: str | None) -> list[list[str]]:
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    return [row for row in reader if any(cell.strip() for cell in row)]


def _pipe_table(rows: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return " ".join(value.split()).replace("|", "\\|")

    header, *body = rows
    lines = ["| " + " | ".join(cell(value) for value in header) + " |"]
    lines.append("| " + " | ".join("---" for _ in header) + " |")
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in body)
    return "\n".join(lines)


_TEXT_PARSERS: dict[str, Callable[[str], ParsedDocument]] = {
    PLAIN: parse_plain,
    MARKDOWN: parse_markdown,
    CSV: parse_delimited,
    TSV: lambda text: parse_delimited(text, "\t"),
}


# --- markdown -> blocks, plain text -------------------------------------------------------------------

_PAGE_MARKER = re.compile(r"^<!-- page (\d+) -->$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_blocks(markdown: str) -> list[Block]:
    """Split markdown into heading, paragraph, list, table and code blocks; page markers set `page`."""
    blocks: list[Block] = []
    pending: list[str] = []
    pending_kind = "paragraph"
    page: int | None = None
    in_fence = False

    def flush() -> None:
        nonlocal pending
        if any(line.strip() for line in pending):
            blocks.append(Block(kind=pending_kind, text="\n".join(pending).strip("\n"), page=page))
        pending = []

    for line in markdown.split("\n"):
        if in_fence:
            pending.append(line)
            if _FENCE.match(line):
                in_fence = False
                flush()
            continue
        kind = _line_kind(line)
        if kind == "marker":
            flush()
            page = int(_PAGE_MARKER.match(line.strip()).group(1))  # type: ignore[union-attr]
        elif kind == "blank":
            flush()
        elif kind == "heading":
            flush()
            level = len(_HEADING.match(line).group(1))  # type: ignore[union-attr]
            blocks.append(Block(kind="heading", text=line.strip(), page=page, level=level))
        elif pending and (kind == pending_kind or (kind == "paragraph" and pending_kind == "list")):
            pending.append(line)
        else:
            flush()
            pending_kind, pending = kind, [line]
            in_fence = kind == "code"
    flush()
    return blocks


def _line_kind(line: str) -> str:
    stripped = line.strip()
    if not stripped:
        return "blank"
    if _PAGE_MARKER.match(stripped):
        return "marker"
    if _FENCE.match(line):
        return "code"
    if _HEADING.match(line):
        return "heading"
    if stripped.startswith("|"):
        return "table"
    if _LIST_ITEM.match(line):
        return "list"
    return "paragraph"


_INLINE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"<br\s*/?>", re.IGNORECASE), " "),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])"), r"\1"),
]


def _inline_plain(text: str) -> str:
    for pattern, replacement in _INLINE_RULES:
        text = pattern.sub(replacement, text)
    return text


def _block_plain_text(block: Block) -> str:
    if block.kind == "heading":
        match = _HEADING.match(block.text)
        return _inline_plain(match.group(2) if match else block.text.lstrip("# "))
    if block.kind == "table":
        rows = [line.strip().strip("|") for line in block.text.split("\n")]
        cells = [[_inline_plain(cell.strip()) for cell in re.split(r"(?<!\\)\|", row)] for row in rows]
        return "\n".join("\t".join(row) for row in cells if not all(re.fullmatch(r":?-+:?", c) for c in row))
    if block.kind == "list":
        return "\n".join(_inline_plain(_LIST_ITEM.sub("", line)) for line in block.text.split("\n"))
    if block.kind == "code":
        return "\n".join(line for line in block.text.split("\n") if not _FENCE.match(line))
    return _inline_plain(block.text)


def markdown_to_text(markdown: str) -> str:
    """Plain text of markdown: syntax removed, one blank line between blocks."""
    return "\n\n".join(_block_plain_text(block) for block in markdown_blocks(markdown))


def _from_markdown(markdown: str, parser: str) -> ParsedDocument:
    blocks = markdown_blocks(markdown)
    text = "\n\n".join(_block_plain_text(block) for block in blocks)
    return ParsedDocument(markdown=markdown, text=text, blocks=blocks, parser=parser, warnings=[])
