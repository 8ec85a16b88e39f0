"""Structure-aware chunking of parsed markdown into retrieval units.

The markdown is cut into *sections* at headings (ATX `#` headings; the heading path is tracked, e.g.
`["Invoice", "Line items"]`), each section into *blocks* (paragraphs, lists, fenced code, pipe tables) and the
blocks are packed into chunks of at most `max_tokens` tokens:

* a block that fits is never split; a pipe table that fits stays whole, a longer one is split by rows with its
  header (and separator) row repeated in every part;
* a longer paragraph/list/code block is split at sentence or line boundaries, then at word boundaries -
  never inside a word (only a single "word" longer than a whole chunk is cut, at token boundaries);
* consecutive chunks of one section share about `overlap` tokens of prose (never table rows);
* every chunk of a split section starts with the section's heading line so that it reads on its own;
  headings with no text of their own (a title directly followed by a sub-heading) are carried into the next
  section's first chunk instead of forming a chunk alone;
* `<!-- page N -->` markers (written by the parsers between pages) set `page_start`/`page_end` and are
  removed from the text. Content before the first marker is on the page before it (at least 1). Without
  markers the pages are unknown (None), except for a one-page document.

Tokens are *estimated*, not produced by a model tokenizer: a token is a run of word characters or a single
other non-space character (`re.findall(r"\\w+|[^\\w\\s]", text)`). The estimate is cheap and deterministic;
for English prose it is close to a word-piece count (model tokenizers split rare words further, so keep
`max_tokens` somewhat below the embedding model's sequence limit).
"""

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from docflow.models import Chunk, ParsedDocument

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PAGE_MARKER_RE = re.compile(r"<!--\s*page\s+(\d+)\s*-->", re.IGNORECASE)
_HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_FENCE_RE = re.compile(r"^\s{0,3}(```|~~~)")
_TABLE_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?;:])\s+")
_WORD_RE = re.compile(r"\S+")

PageRange = tuple[int | None, int | None]


def count_tokens(text: str) -> int:
    """Cheap, deterministic token estimate: word-character runs plus single punctuation/symbol characters."""
    return len(_TOKEN_RE.findall(text))


# --- reading the markdown: lines with pages, blocks, sections ----------------------------------------------


@dataclass
class _Line:
    text: str
    page_start: int | None
    page_end: int | None


@dataclass
class _Block:
    kind: str  # "heading", "paragraph", "table", "code"
    lines: list[_Line]
    level: int = 0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass
class _Section:
    heading_path: list[str]
    heading_lines: list[_Line] = field(default_factory=list)  # this heading and any empty parents before it
    blocks: list[_Block] = field(default_factory=list)


def _initial_page(markdown: str, pages: int | None) -> int | None:
    first = _PAGE_MARKER_RE.search(markdown)
    if first is None:
        return 1 if pages == 1 else None
    number = int(first.group(1))
    return max(1, number - 1) if markdown[: first.start()].strip() else number


def _lines_with_pages(markdown: str, pages: int | None) -> list[_Line]:
    """Split into lines, strip page markers and give each line the page(s) its text lies on.

    A line holding only a marker disappears (it does not break a paragraph or table across pages).
    """
    page = _initial_page(markdown, pages)
    lines: list[_Line] = []
    for raw in markdown.splitlines():
        # re.split with one group alternates: text, page number, text, page number, ..., text
        parts = _PAGE_MARKER_RE.split(raw)
        text_pages: list[int | None] = []
        for k, part in enumerate(parts):
            if k % 2:
                page = int(part)
            elif part.strip():
                text_pages.append(page)
        text = "".join(parts[0::2]).rstrip()
        if not text_pages:
            if not _PAGE_MARKER_RE.search(raw):
                lines.append(_Line("", page, page))  # a blank line: it separates blocks
            continue
        known = [p for p in text_pages if p is not None]
        lines.append(_Line(text, min(known, default=None), max(known, default=None)))
    return lines


def _is_table_line(text: str) -> bool:
    return text.lstrip().startswith("|")


def _blocks(lines: list[_Line]) -> Iterator[_Block]:
    """Group lines into blocks: headings, fenced code, pipe tables and blank-line separated paragraphs."""
    i = 0
    while i < len(lines):
        text = lines[i].text
        if not text.strip():
            i += 1
        elif fence_match := _FENCE_RE.match(text):
            fence = fence_match.group(1)
            j = i + 1
            while j < len(lines) and not lines[j].text.lstrip().startswith(fence):
                j += 1
            yield _Block("code", lines[i : j + 1])
            i = j + 1
        elif heading := _HEADING_RE.match(text):
            yield _Block("heading", [lines[i]], level=len(heading.group(1)))
            i += 1
        elif _is_table_line(text):
            j = i
            while j < len(lines) and _is_table_line(lines[j].text):
                j += 1
            yield _Block("table", lines[i:j])
            i = j
        else:
            j = i
            while j < len(lines) and _continues_paragraph(lines[j].text):
                j += 1
            yield _Block("paragraph", lines[i:j])
            i = j


def _continues_paragraph(text: str) -> bool:
    return bool(text.strip()) and not (
        _FENCE_RE.match(text) or _HEADING_RE.match(text) or _is_table_line(text)
    )


def _heading_title(text: str) -> str:
    match = _HEADING_RE.match(text)
    title = match.group(2) if match else text
    return re.sub(r"[*_`]{1,3}", "", title).strip()


def _sections(blocks: Iterator[_Block]) -> list[_Section]:
    """Cut the blocks at headings; a heading with no blocks joins the next section's heading lines."""
    sections: list[_Section] = []
    stack: list[tuple[int, str]] = []
    current = _Section(heading_path=[])
    for block in blocks:
        if block.kind != "heading":
            current.blocks.append(block)
            continue
        stack = [(level, title) for level, title in stack if level < block.level]
        stack.append((block.level, _heading_title(block.lines[0].text)))
        carried = [] if current.blocks else current.heading_lines
        if current.blocks:
            sections.append(current)
        current = _Section(
            heading_path=[title for _, title in stack], heading_lines=[*carried, block.lines[0]]
        )
    if current.blocks or current.heading_lines:
        sections.append(current)
    return sections


# --- splitting blocks into pieces that fit -----------------------------------------------------------------


@dataclass
class _Piece:
    text: str
    tokens: int
    page_start: int | None
    page_end: int | None
    kind: str  # "table" pieces are never used for overlap
    joiner: str = "\n\n"  # how this piece attaches to the previous piece of the same chunk


def _page_range(lines: list[_Line]) -> PageRange:
    starts = [line.page_start for line in lines if line.page_start is not None]
    ends = [line.page_end for line in lines if line.page_end is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _piece(lines: list[_Line], kind: str, joiner: str = "\n\n") -> _Piece:
    text = "\n".join(line.text for line in lines)
    return _Piece(text, count_tokens(text), *_page_range(lines), kind=kind, joiner=joiner)


def _split_words(text: str, limit: int) -> list[str]:
    """Greedy split at whitespace into parts of at most `limit` tokens; an over-long word is cut at tokens."""
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for word in _WORD_RE.findall(text):
        n = count_tokens(word)
        if n > limit:
            if current:
                parts.append(" ".join(current))
                current, used = [], 0
            tokens = _TOKEN_RE.findall(word)
            parts.extend("".join(tokens[k : k + limit]) for k in range(0, len(tokens), limit))
            continue
        if current and used + n > limit:
            parts.append(" ".join(current))
            current, used = [], 0
        current.append(word)
        used += n
    if current:
        parts.append(" ".join(current))
    return parts


def _split_line(line: _Line, limit: int, kind: str) -> list[_Piece]:
    """Split one over-long line into sentences, then words, and pack them back up to `limit` tokens."""
    units: list[str] = []
    for sentence in _SENTENCE_END_RE.split(line.text.strip()):
        units.extend([sentence] if count_tokens(sentence) <= limit else _split_words(sentence, limit))
    pieces: list[_Piece] = []
    for unit in units:
        n = count_tokens(unit)
        if pieces and pieces[-1].tokens + n <= limit:
            pieces[-1].text += " " + unit
            pieces[-1].tokens += n
        else:
            pieces.append(_Piece(unit, n, line.page_start, line.page_end, kind, joiner=" "))
    return pieces


def _split_prose(block: _Block, limit: int) -> list[_Piece]:
    """Pieces of a paragraph/list/code block, each at most `limit` tokens, cut at lines, sentences, words."""
    pieces: list[_Piece] = []
    last_is_whole_lines = False
    for line in block.lines:
        n = count_tokens(line.text)
        if n > limit:
            parts = _split_line(line, limit, block.kind)
            parts[0].joiner = "\n"
            pieces.extend(parts)
            last_is_whole_lines = False
        elif last_is_whole_lines and pieces[-1].tokens + n <= limit:
            last = pieces[-1]
            start, end = _page_range([_Line("", last.page_start, last.page_end), line])
            pieces[-1] = _Piece(last.text + "\n" + line.text, last.tokens + n, start, end, last.kind, "\n")
        else:
            pieces.append(_piece([line], block.kind, joiner="\n"))
            last_is_whole_lines = True
    return pieces


def _split_table(block: _Block, limit: int) -> list[_Piece]:
    """Row groups of a long table, each starting with the header (and separator) row."""
    lines = block.lines
    n_header = 2 if len(lines) > 1 and _TABLE_SEPARATOR_RE.match(lines[1].text) else 1
    header, rows = lines[:n_header], lines[n_header:]
    header_tokens = sum(count_tokens(line.text) for line in header)
    if header_tokens * 2 > limit or not rows:  # header too wide to repeat: split as plain lines
        return _split_prose(_Block("table", lines), limit)
    pieces: list[_Piece] = []
    group: list[_Line] = []
    used = header_tokens
    for row in rows:
        n = count_tokens(row.text)
        if group and used + n > limit:
            pieces.append(_piece([*header, *group], "table"))
            group, used = [], header_tokens
        if header_tokens + n > limit:  # a single huge row: cut it, without the header
            pieces.extend(_split_line(row, limit, "table"))
            continue
        group.append(row)
        used += n
    if group:
        pieces.append(_piece([*header, *group], "table"))
    return pieces


def _pieces(block: _Block, limit: int, split_limit: int) -> list[_Piece]:
    """The block whole if it fits `limit`, else parts of at most `split_limit` (leaving room for overlap)."""
    whole = _piece(block.lines, block.kind)
    if whole.tokens <= limit:
        return [whole]
    parts = _split_table(block, limit) if block.kind == "table" else _split_prose(block, split_limit)
    if parts:
        parts[0].joiner = "\n\n"
    return parts


# --- packing pieces into chunks ----------------------------------------------------------------------------


def _tail(text: str, overlap: int) -> str:
    """The last words of `text` adding up to at most `overlap` tokens (whole words only)."""
    if overlap <= 0:
        return ""
    spans = list(_WORD_RE.finditer(text))
    used, start = 0, None
    for match in reversed(spans):
        n = count_tokens(match.group())
        if used + n > overlap:
            break
        used += n
        start = match.start()
    return text[start:] if start is not None else ""


def _heading_text(lines: list[_Line], max_tokens: int) -> str:
    text = "\n".join(line.text.strip() for line in lines)
    if count_tokens(text) > max_tokens // 2:  # absurdly long heading: keep its first words
        text = _split_words(text, max_tokens // 2)[0]
    return text


def _pack_section(section: _Section, max_tokens: int, overlap: int) -> list[tuple[str, PageRange]]:
    heading = _heading_text(section.heading_lines, max_tokens)
    heading_tokens = count_tokens(heading)
    budget = max_tokens - heading_tokens
    overlap = max(0, min(overlap, budget // 2))
    pieces = [piece for block in section.blocks for piece in _pieces(block, budget, budget - overlap)]
    if not pieces:
        return [(heading, _page_range(section.heading_lines))]

    chunks: list[tuple[str, PageRange]] = []
    body: list[_Piece] = []
    for piece in pieces:
        used = sum(p.tokens for p in body)
        if body and used + piece.tokens > budget:
            chunks.append(_render(heading, body))
            body = _overlap_start(body[-1], piece, overlap, budget)
        body.append(piece)
    chunks.append(_render(heading, body))
    return chunks


def _overlap_start(previous: _Piece, following: _Piece, overlap: int, budget: int) -> list[_Piece]:
    """The piece carried from the end of the previous chunk into the next one, if any."""
    if previous.kind == "table" or following.kind == "table":
        return []
    tail = _tail(previous.text, min(overlap, budget - following.tokens))
    if not tail:
        return []
    return [_Piece(tail, count_tokens(tail), previous.page_end, previous.page_end, "overlap")]


def _render(heading: str, body: list[_Piece]) -> tuple[str, PageRange]:
    text = ""
    for index, piece in enumerate(body):
        text += piece.text if index == 0 else piece.joiner + piece.text
    if heading:
        text = heading + "\n\n" + text
    starts = [p.page_start for p in body if p.page_start is not None]
    ends = [p.page_end for p in body if p.page_end is not None]
    return text.strip(), (min(starts) if starts else None, max(ends) if ends else None)


def chunk_markdown(
    parsed: ParsedDocument, max_tokens: int, overlap: int, metadata: dict[str, Any] | None = None
) -> list[Chunk]:
    """Cut `parsed.markdown` into chunks of at most `max_tokens` estimated tokens (see `count_tokens`).

    `overlap` tokens of prose are repeated between consecutive chunks of one section (capped at half of what
    is left of a chunk after its heading). Each chunk gets its heading path, page range and a copy of
    `metadata`. Empty markdown gives `[]`; the output is deterministic.
    """
    if max_tokens < 8:
        raise ValueError(f"max_tokens must be at least 8, got {max_tokens}")
    if not parsed.markdown.strip():
        return []
    lines = _lines_with_pages(parsed.markdown, parsed.pages)
    chunks: list[Chunk] = []
    for section in _sections(_blocks(lines)):
        for text, (page_start, page_end) in _pack_section(section, max_tokens, overlap):
            if not text:
                continue
            chunks.append(
                Chunk(
                    index=len(chunks),
                    text=text,
                    heading_path=list(section.heading_path),
                    page_start=page_start,
                    page_end=page_end,
                    n_tokens=count_tokens(text),
                    metadata=copy.deepcopy(metadata) if metadata else {},
                )
            )
    return chunks
