"""HTML (and XHTML) to markdown: BeautifulSoup + markdownify; tables as pipe tables.

A cell spanning rows or columns (`rowspan`, `colspan`) is repeated in every position it covers, as the
office formats do: a pipe table cannot express a span, and without the copies the cells after a row span
would slide into the wrong columns. A cell spanning the whole width of its table (a title or section row)
heads no column and is not repeated across it.
"""

import copy
import re

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from markdownify import MarkdownConverter

from docflow.backends.parse.markdown import from_markdown, squash_blank_lines
from docflow.models import ParsedDocument

# --- HTML ---------------------------------------------------------------------------------------------

_DROP_TAGS = ["script", "style", "nav", "noscript", "template", "svg", "iframe", "head", "object", "embed"]


class _Converter(MarkdownConverter):
    """markdownify with ATX headings, '-' bullets, first-row table headers, no images."""

    def __init__(self) -> None:
        super().__init__(heading_style="ATX", bullets="-", table_infer_header=True, strip=["img"])


def parse_html(data: bytes) -> ParsedDocument:
    soup = clean_soup(data)
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    _flatten_nested_tables(soup)
    _expand_spans(soup)
    _drop_empty_table_rows(soup)
    markdown = squash_blank_lines(_Converter().convert_soup(soup))
    if title and not re.search(r"(?m)^# ", markdown):
        markdown = f"# {title}\n\n{markdown}"
    return from_markdown(markdown, parser="local/html")


def clean_soup(data: bytes) -> BeautifulSoup:
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


def _span(cell: Tag, name: str) -> int:
    value = str(cell.get(name) or "1").strip()
    return min(max(int(value), 1), 64) if value.isdigit() else 1


def _expand_spans(soup: BeautifulSoup) -> None:
    """Copies of a spanning cell in the positions it covers, so that every row has one cell per column."""
    for table in soup.find_all("table"):
        if isinstance(table, Tag):
            pending: dict[int, tuple[int, Tag]] = {}  # column -> (rows still covered, the spanning cell)
            rows = [row for row in table.find_all("tr") if isinstance(row, Tag)]
            width = max((sum(_span(c, "colspan") for c in _cells(row)) for row in rows), default=0)
            for row in rows:
                _expand_row(soup, row, pending, width)


def _cells(row: Tag) -> list[Tag]:
    return [c for c in row.find_all(["td", "th"], recursive=False) if isinstance(c, Tag)]


def _expand_row(soup: BeautifulSoup, row: Tag, pending: dict[int, tuple[int, Tag]], width: int) -> None:
    cells = _cells(row)
    out: list[Tag] = []
    column = 0
    for cell in cells:
        while column in pending:  # positions covered by a cell spanning down from a row above
            out.append(copy.copy(pending[column][1]))
            column += 1
        span, height = _span(cell, "colspan"), _span(cell, "rowspan")
        for name in ("colspan", "rowspan"):
            cell.attrs.pop(name, None)
        for offset in range(span):
            copied = cell if not offset else soup.new_tag(cell.name) if 1 < width <= span else copy.copy(cell)
            out.append(copied)
            if height > 1:
                pending[column + offset] = (height, copied)
        column += span
    for covered in sorted(c for c in pending if c >= column):  # row spans reaching past this row's cells
        while column < covered:
            out.append(soup.new_tag("td"))
            column += 1
        out.append(copy.copy(pending[covered][1]))
        column += 1
    if len(out) > len(cells):  # rebuilt only when a span was expanded: the row's own layout otherwise
        for child in list(row.children):
            if (isinstance(child, Tag) and child.name in ("td", "th")) or (
                isinstance(child, str) and not child.strip()
            ):
                child.extract()
        for cell in out:
            row.append(cell)
    for key, (remaining, cell) in list(pending.items()):
        if remaining <= 1:
            del pending[key]
        else:
            pending[key] = (remaining - 1, cell)


def _drop_empty_table_rows(soup: BeautifulSoup) -> None:
    for row in soup.find_all("tr"):
        if isinstance(row, Tag) and not row.get_text(strip=True):
            row.decompose()
