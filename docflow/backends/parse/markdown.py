"""Markdown helpers shared by every parser: blocks with pages, plain text, pipe tables."""

import re

from docflow.models import Block, ParsedDocument

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


def from_markdown(
    markdown: str, parser: str, warnings: list[str] | None = None, pages: int | None = None
) -> ParsedDocument:
    blocks = markdown_blocks(markdown)
    text = "\n\n".join(_block_plain_text(block) for block in blocks)
    return ParsedDocument(
        markdown=markdown, text=text, blocks=blocks, parser=parser, warnings=warnings or [], pages=pages
    )


def squash_blank_lines(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def pipe_cell(value: str) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def pipe_table(rows: list[list[str]]) -> str:
    """A pipe table; the first row is the header. Rows are padded to the widest."""
    width = max(len(row) for row in rows)
    rows = [list(row) + [""] * (width - len(row)) for row in rows]
    header, *body = rows
    lines = ["| " + " | ".join(pipe_cell(value) for value in header) + " |"]
    lines.append("| " + " | ".join("---" for _ in header) + " |")
    lines.extend("| " + " | ".join(pipe_cell(value) for value in row) + " |" for row in body)
    return "\n".join(lines)


def escape_line_starts(text: str) -> str:
    return re.sub(r"(?m)^(#{1,6}\s|>|\|)", r"\\\1", text)
