"""Text formats: plain text, markdown, CSV/TSV, JSON, XML and RTF."""

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from docflow.backends.parse.markdown import from_markdown, pipe_table, squash_blank_lines
from docflow.errors import BadDocument
from docflow.models import Block, ParsedDocument
from docflow.sniff import CSV, MARKDOWN, PLAIN, TSV, decode_text


def parse_plain(text: str, parser: str = "local/text") -> ParsedDocument:
    text = squash_blank_lines(text)
    paragraphs = [part.strip("\n") for part in re.split(r"\n\s*\n", text) if part.strip()]
    blocks = [Block(kind="paragraph", text=part) for part in paragraphs]
    return ParsedDocument(
        markdown=text, text="\n\n".join(paragraphs), blocks=blocks, parser=parser, warnings=[]
    )


def parse_markdown(text: str) -> ParsedDocument:
    return from_markdown(squash_blank_lines(text), parser="local/markdown")


def parse_delimited(text: str, delimiter: str | None = None) -> ParsedDocument:
    rows = _read_rows(text, delimiter)
    if not rows:
        return parse_plain(text)
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    table = pipe_table(rows)
    plain = "\n".join("\t".join(cell.strip() for cell in row) for row in rows)
    return ParsedDocument(
        markdown=table + "\n", text=plain, blocks=[Block(kind="table", text=table)], parser="local/csv"
    )


def _read_rows(text: str, delimiter: str | None) -> list[list[str]]:
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    return [row for row in reader if any(cell.strip() for cell in row)]


TEXT_PARSERS: dict[str, Callable[[str], ParsedDocument]] = {
    PLAIN: parse_plain,
    MARKDOWN: parse_markdown,
    CSV: parse_delimited,
    TSV: lambda text: parse_delimited(text, "\t"),
}


# --- JSON -----------------------------------------------------------------------------------------------


def parse_json(data: bytes) -> ParsedDocument:
    """A list of flat records becomes a table; anything else an outline of keys and values."""
    try:
        value = json.loads(decode_text(data))
    except ValueError as exc:
        raise BadDocument(f"the JSON is invalid ({exc})") from exc
    records = value if isinstance(value, list) else None
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), list):
        records = next(iter(value.values()))
    if records and all(isinstance(r, dict) and all(_scalar(v) for v in r.values()) for r in records):
        columns = list(dict.fromkeys(key for record in records for key in record))
        rows = [columns, *([_show(record.get(key)) for key in columns] for record in records)]
        return from_markdown(pipe_table(rows) + "\n", parser="local/json")
    lines: list[str] = []
    _outline(value, 0, lines)
    return from_markdown(squash_blank_lines("\n".join(lines)), parser="local/json")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _outline(value: Any, depth: int, lines: list[str], key: str | None = None) -> None:
    indent = "  " * depth
    label = f"**{key}**: " if key is not None else ""
    if isinstance(value, dict):
        if key is not None:
            lines.append(f"{indent}- **{key}**:")
            depth += 1
        for child_key, child in value.items():
            _outline(child, depth, lines, str(child_key))
    elif isinstance(value, list):
        if key is not None:
            lines.append(f"{indent}- **{key}**:")
            depth += 1
        for child in value:
            _outline(child, depth, lines)
    else:
        lines.append(f"{'  ' * depth}- {label}{_show(value)}")


# --- XML ------------------------------------------------------------------------------------------------


def parse_xml(data: bytes) -> ParsedDocument:
    """Elements as an outline: `- **tag**: text`, attributes after the tag, nesting kept."""
    if b"<!ENTITY" in data[:65536]:
        raise BadDocument("the XML declares entities (refused: entity expansion attacks)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise BadDocument(f"the XML is not well-formed ({exc})") from exc
    lines: list[str] = []
    _xml_outline(root, 0, lines)
    return from_markdown(squash_blank_lines("\n".join(lines)), parser="local/xml")


def _xml_outline(element: ET.Element, depth: int, lines: list[str]) -> None:
    tag = element.tag.rsplit("}", 1)[-1]
    attrs = " ".join(f"{k.rsplit('}', 1)[-1]}={v}" for k, v in element.attrib.items())
    text = " ".join((element.text or "").split())
    label = f"**{tag}**" + (f" ({attrs})" if attrs else "")
    lines.append(f"{'  ' * depth}- {label}" + (f": {text}" if text else ""))
    for child in element:
        _xml_outline(child, depth + 1, lines)


# --- RTF ------------------------------------------------------------------------------------------------


def parse_rtf(data: bytes) -> ParsedDocument:
    try:
        from striprtf.striprtf import rtf_to_text
    except ImportError as exc:  # pragma: no cover - a core dependency
        from docflow.errors import MissingExtra

        raise MissingExtra("striprtf", "parse", "RTF documents") from exc
    try:
        text = rtf_to_text(data.decode("latin-1"), errors="ignore")
    except Exception as exc:  # striprtf raises plain exceptions on broken groups
        raise BadDocument(f"the RTF is corrupt ({exc})") from exc
    return parse_plain(text, parser="local/rtf")
