"""Text lines with their boxes to markdown: headings by size, lists, paragraphs, tables. Shared by the
PDF text layer (`pdf`) and OCR (`ocr`), which both produce `Page`s of `Line`s (PDF units, y up)."""

import re
from dataclasses import dataclass, field

from docflow.backends.parse import pdf_tables
from docflow.backends.parse.markdown import escape_line_starts, pipe_table
from docflow.models import Block, ParsedDocument, Span

_BULLETS = "•◦▪▫‣⁃●○■□–-*·"
_LIST_START = re.compile(rf"^\s*([{re.escape(_BULLETS)}]|\(?\d{{1,3}}[.)]|\(?[a-z][.)])\s+\S")
GARBLED_RATIO = 0.3
COLUMN_GAP_WIDTH = 2.0  # a horizontal gap wider than this many font sizes separates columns
COLUMN_GAP = "  "  # how a column gap shows in a line of PDF text
_HEADING_RATIO = 1.15  # a line this much bigger than the body text may be a heading
_MAX_HEADING_CHARS = 120
_SAME_SIZE = 1.07  # sizes within 7% are one size
_HEADING_SHARE = 0.15  # at most this share of the characters are in one heading size


@dataclass
class Line:
    """One text line: its first character's size and top, its last character's bottom (PDF units, y up)."""

    text: str
    left: float = 0.0
    right: float = 0.0
    top: float = 0.0
    bottom: float = 0.0
    size: float = 1.0  # height of the first character's (loose) box: the rendered font size
    tabular: bool = False  # has a column gap: never joined to its neighbours as wrapped prose
    cells: list[tuple[float, float, str]] = field(default_factory=list)  # (left, right, text) per column
    table: list[list[str]] | None = None  # stands for a whole table found by pdf_tables
    covered: list["Line"] = field(default_factory=list)  # the text lines that table replaces
    chars: tuple[int, int] = (0, -1)  # PDFium indexes of its first and last character


@dataclass
class Page:
    number: int
    lines: list[Line] = field(default_factory=list)
    chars: int = 0
    garbled: int = 0
    width: float = 0.0
    height: float = 0.0
    ocr: bool = False
    tables: list[pdf_tables.Table] = field(default_factory=list)


def layout_document(pages: list[Page], parser: str) -> ParsedDocument:
    """Lines of every page (PDF units, y up) to markdown: headings by size, lists, paragraphs, tables."""
    spans = [span for page in pages for span in _page_spans(page)]  # before tables replace their lines
    for page in pages:
        _place_tables(page)
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
    return ParsedDocument(
        markdown="\n\n".join(markdown_parts) + "\n",
        text="\n\n".join(text_parts),
        pages=len(pages),
        blocks=blocks,
        parser=parser,
        warnings=warnings,
        spans=spans,
    )


def _page_spans(page: Page) -> list[Span]:
    """Each cell of each line as a span in page fractions (origin top-left)."""
    if page.width <= 0 or page.height <= 0:
        return []
    w, h = page.width, page.height
    spans = []
    for line in page.lines:
        for left, right, text in line.cells or [(line.left, line.right, line.text)]:
            if text.strip():
                box = (left / w, (h - line.top) / h, right / w, (h - line.bottom) / h)
                x0, y0, x1, y1 = (round(min(max(v, 0.0), 1.0), 4) for v in box)
                spans.append(Span(page=page.number, text=text, x0=x0, y0=y0, x1=x1, y1=y1, ocr=page.ocr))
    return spans


def _place_tables(page: Page) -> None:
    """Lines inside a found table give way to one line standing for the table, where its first line was."""
    if not page.tables:
        return
    lines: list[Line] = []
    placed: dict[int, Line] = {}
    for line in page.lines:
        x, y = (line.left + line.right) / 2, (line.top + line.bottom) / 2
        k = next((k for k, t in enumerate(page.tables) if t.contains(x, y)), None)
        if k is None:
            lines.append(line)
            continue
        if k not in placed:
            t = page.tables[k]
            placed[k] = Line("\t", t.left, t.right, t.top, t.bottom, line.size, True, table=t.rows)
            lines.append(placed[k])
        placed[k].covered.append(line)
    page.lines = lines


def _merge_rows(lines: list[Line]) -> list[Line]:
    """PDFium breaks a visual line at superscripts and wide gaps: put such pieces back on one line."""
    merged: list[Line] = []
    for line in lines:
        previous = merged[-1] if merged else None
        joinable = previous is not None and previous.table is None and line.table is None
        if previous and joinable and line.left >= previous.right - 1 and _same_row(previous, line):
            gap = line.left - previous.right
            separator = "" if gap < 0.15 * previous.size else " "
            if gap > COLUMN_GAP_WIDTH * previous.size:
                separator, previous.tabular = COLUMN_GAP, True
                previous.cells = previous.cells + line.cells
            elif previous.cells and line.cells:
                a, _, text = previous.cells[-1]
                previous.cells = [
                    *previous.cells[:-1],
                    (a, line.cells[0][1], f"{text}{separator}{line.cells[0][2]}"),
                ]
                previous.cells += line.cells[1:]
            previous.text = f"{previous.text}{separator}{line.text}".strip()
            previous.tabular = previous.tabular or line.tabular
            previous.right, previous.bottom = line.right, min(previous.bottom, line.bottom)
            if line.size > previous.size and len(line.text) > len(previous.text) / 2:
                previous.size = line.size
        else:
            merged.append(line)
    return merged


def _same_row(a: Line, b: Line) -> bool:
    overlap = min(a.top, b.top) - max(a.bottom, b.bottom)
    return overlap > 0.4 * min(a.top - a.bottom, b.top - b.bottom)


def _page_warnings(page: Page) -> list[str]:
    if page.ocr:
        why = "text layer looks garbled" if page.garbled else "has no text layer"
        return [f"page {page.number} {why}: OCRed"]
    if not any(line.text for line in page.lines) and page.garbled == 0:
        return [f"page {page.number} has no text layer (OCR is off)"]
    total = page.chars + page.garbled
    if total and page.garbled / total > GARBLED_RATIO:
        return [
            f"page {page.number} text layer looks garbled ({page.garbled} of {total} characters have no "
            "Unicode mapping; OCR needed)"
        ]
    return []


def _size_weights(pages: list[Page]) -> dict[float, int]:
    """Characters per line height (rounded to half a unit)."""
    weights: dict[float, int] = {}
    for page in pages:
        for line in page.lines:
            key = _size_key(line)
            weights[key] = weights.get(key, 0) + len(line.text)
    return weights


def _size_key(line: Line) -> float:
    return round(line.size, 1)


def _unify_sizes(pages: list[Page]) -> None:
    """Sizes within a few percent of each other (one font, measured on different glyphs) become one."""
    lines = sorted((line for page in pages for line in page.lines), key=lambda line: line.size)
    start = 0.0
    for line in lines:
        if line.size > start * _SAME_SIZE:
            start = line.size
        line.size = start


def _is_heading_candidate(line: Line, body_size: float) -> bool:
    return (
        body_size > 0
        and line.size >= body_size * _HEADING_RATIO
        and len(line.text) <= _MAX_HEADING_CHARS
        and sum(char.isalpha() for char in line.text) >= 2
        and not line.text.endswith((".", ",", ";"))
    )


def _heading_levels(pages: list[Page], weights: dict[float, int], body_size: float) -> dict[float, int]:
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
    lines: list[Line]
    level: int | None = None


def _page_blocks(page: Page, body_size: float, levels: dict[float, int]) -> list[tuple[Block, str]]:
    """The page's blocks, each with its plain text; runs of two or more tabular rows are one table."""
    groups: list[_Group] = []
    page_width = max((line.right - line.left for line in page.lines), default=0.0)
    lines = [line for line in page.lines if line.text]
    index = 0
    while index < len(lines):
        if lines[index].table is not None:
            groups.append(_Group("table", [lines[index]]))
            index += 1
            continue
        end = index
        while (
            end < len(lines)
            and _table_row(lines[end])
            and (end == index or _near(lines[end - 1], lines[end]))
        ):
            end += 1
        if end - index >= 2:
            groups.append(_Group("table", lines[index:end]))
            index = end
            continue
        line = lines[index]
        index += 1
        level = levels.get(_size_key(line)) if _is_heading_candidate(line, body_size) else None
        kind = "heading" if level else "list" if _LIST_START.match(line.text) else "paragraph"
        current = groups[-1] if groups else None
        if current and current.kind != "table" and _continues(current, kind, level, line, page_width):
            current.lines.append(line)
        else:
            groups.append(_Group(kind, [line], level))
    return [_group_block(group, page.number) for group in groups]


def _table_row(line: Line) -> bool:
    return line.tabular and len(line.cells) >= 2 and line.table is None


def _near(previous: Line, line: Line) -> bool:
    """`line` is the next table row under `previous`: below it, at most a blank line between."""
    height = min(previous.size, line.size)
    return line.top <= previous.top and previous.bottom - line.top < 2.5 * height


def _table_block(lines: list[Line], page_number: int) -> tuple[Block, str]:
    """Rows of cells to a grid: the columns are those of the most common row width; every cell goes to the
    column it overlaps most (a spanning cell to its widest overlap), cells of one column are joined."""
    counts: dict[int, int] = {}
    for line in lines:
        counts[len(line.cells)] = counts.get(len(line.cells), 0) + 1
    width = max(counts, key=lambda n: (counts[n], n))
    model = [line for line in lines if len(line.cells) == width]
    columns = [
        (min(line.cells[k][0] for line in model), max(line.cells[k][1] for line in model))
        for k in range(width)
    ]

    def column_of(left: float, right: float) -> int:
        def score(k: int) -> float:
            a, b = columns[k]
            overlap = min(right, b) - max(left, a)
            return overlap if overlap > 0 else -abs((left + right) / 2 - (a + b) / 2)

        return max(range(width), key=score)

    rows = []
    for line in lines:
        row = [""] * width
        for left, right, text in line.cells:
            k = column_of(left, right)
            row[k] = f"{row[k]} {text}".strip()
        rows.append(row)
    if any(_prose(row[k] for row in rows) for k in range(width)):  # text columns side by side
        texts = [" ".join(row[k] for row in rows if row[k]) for k in range(width)]
        text = "\n\n".join(escape_line_starts(t) for t in texts if t)
        return Block(kind="paragraph", text=text, page=page_number), "\n\n".join(t for t in texts if t)
    plain = "\n".join("\t".join(cell for cell in row if cell) for row in rows)
    return Block(kind="table", text=pipe_table(rows), page=page_number), plain


def _prose(cells) -> bool:
    """Whether a column's cells hold sentences rather than table values (many words per cell)."""
    counts = [len(cell.split()) for cell in cells if cell]
    return bool(counts) and sum(counts) / len(counts) > pdf_tables.PROSE_WORDS


def _continues(group: _Group, kind: str, level: int | None, line: Line, page_width: float) -> bool:
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
    if group.kind == "table" and group.lines[0].table is not None:
        # the plain text keeps the text layer's own order of the table's lines (label columns before
        # value columns as the PDF writes them), which the text-based extractors read
        plain = "\n".join(line.text for line in group.lines[0].covered)
        return Block(kind="table", text=pipe_table(group.lines[0].table), page=page_number), plain
    if group.kind == "table":
        return _table_block(group.lines, page_number)
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
    return Block(kind="paragraph", text=escape_line_starts(text), page=page_number), text


def _wrapped(previous: Line, line: Line, right: float) -> bool:
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
