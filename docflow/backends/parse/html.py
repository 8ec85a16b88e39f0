"""HTML (and XHTML) to markdown: BeautifulSoup + markdownify; tables as pipe tables."""

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


def _drop_empty_table_rows(soup: BeautifulSoup) -> None:
    for row in soup.find_all("tr"):
        if isinstance(row, Tag) and not row.get_text(strip=True):
            row.decompose()
