"""Provenance: where on the page each extracted value was read, and which boxes a chunk's text covers.

Runs after any extract backend (local, llamacloud, openai: `pipeline.extracted_fields` calls `locate` once),
so every backend's values are traced the same way, from the parser's spans (`ParsedDocument.spans`: text
with its box, PDF text cells or OCR boxes). For each value (a leaf of the fields, keyed by its path:
"invoice_number", "line_items.0.amount", "key_values.<label>") the locator finds the span, or the run of
consecutive spans, whose text contains the value after normalization (`contains`):

- numbers and amounts: any number written in the text equals the value ("1.234,56", "$1,234.56", "19 %");
- dates: any date written in the text, in any format `normalize.find_dates` reads, is the value's ISO date;
- currencies: the code, or a symbol or word naming it ("€", "RM 12.00");
- scales of amounts: a word naming the scale ("millions": "in € million", "EUR m", "mn");
- text: the value's words, case-folded with punctuation and whitespace ignored, are a run of the text's words
  (a value of symbols only, "$", as written).

Where several places contain the value, the one next to the field's label wins (the label's words in the
span itself, on its line to the left, or just above it; a form's label is its question), then the one on
the row of a sibling value already located (a line item's description and amount), then the first in
reading order. A value no span contains exactly (an OCR error the extractor repaired, a value a remote model
rewrote) is placed at the most similar span when the similarity is high, with its confidence lowered; the
asset check `provenance_matches` (docflow.quality) flags those. A value read from nothing on the page (a
currency inferred from a country) gets no entry.

Entries a backend made itself are kept; an entry with page 0 is a citation to place (its text is located
instead of the value).
"""

import bisect
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from difflib import SequenceMatcher
from typing import Any

from docflow.backends.extract.normalize import ISO_CURRENCIES, find_dates, parse_amount, parse_currency
from docflow.models import Box, Chunk, Extraction, FieldSource, ParsedDocument, Span

FUZZY = 0.85  # least similarity of a value to the text it is placed at when no text contains it
MAX_RUN = 80  # most spans one value may be read from (a clause over several lines)
MAX_SIMILAR_CHARS = 200  # longest value placed by similarity when no text holds it
TOLERANCE = Decimal("0.005")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# a number is a run of digits and separators ("1.234,56", "(12.00)", ".5"), also with its thousands
# separated by spaces ("1 234,56"): both readings are kept ("12 150.00" may be a quantity and a price)
_NUMBERS = (
    re.compile(r"(?<![\d.,])[-−(]?\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?(?![\d.,])"),
    re.compile(r"(?<![\d.,])[-−(]?\d[\d.,]*\)?-?|(?<!\d)[.,]\d+"),
)
# currency symbols written as a word of their own ("Amount (RM)", "Rs 120", "12,00 zł")
_CURRENCY_TOKENS = {"rm": "MYR", "rs": "INR", "rp": "IDR", "zł": "PLN", "kč": "CZK", "ft": "HUF"}
# the words a scale of amounts is written with ("in € million", "EUR m", "TEUR", "bn")
_SCALES: dict[str, frozenset[str]] = {
    "thousands": frozenset({"thousand", "thousands", "k", "tsd", "000", "000s", "teur", "tusd", "keur"}),
    "millions": frozenset({"million", "millions", "m", "mn", "mio", "mln", "mill", "meur", "musd", "eurm"}),
    "billions": frozenset({"billion", "billions", "bn", "bln", "mrd"}),
}
# words that stand for a field name's words in labels ("Amount due", "Invoice No.", "VAT %")
_LABEL_WORDS: dict[str, tuple[str, ...]] = {
    "amount": ("total", "due", "balance", "sum", "amount"),
    "total": ("total", "due", "balance", "sum"),
    "number": ("no", "nr", "num", "number", "n", "id", "ref"),
    "tax": ("tax", "vat", "gst", "tva", "mwst", "ust"),
    "rate": ("rate", "%"),
    "date": ("date", "dated", "on"),
    "name": (),
}


# --- normalization --------------------------------------------------------------------------------------


def norm_words(text: str) -> str:
    """Case-folded words separated by one space: punctuation, symbols and whitespace are ignored."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    return " ".join(re.findall(r"[^\W_]+", text))


def value_kind(value: Any) -> str:
    """How a value is compared with text: "number", "date", "currency", "text" (or "skip" for booleans)."""
    if isinstance(value, bool):
        return "skip"
    if isinstance(value, int | float | Decimal):
        return "number"
    text = str(value).strip()
    if _ISO_DATE.match(text) and _iso_date(text) is not None:
        return "date"
    if text.upper() == text and text in ISO_CURRENCIES:
        return "currency"
    if text.casefold() in _SCALES:
        return "scale"
    if norm_words(text):
        return "text"
    return "symbol" if text else "skip"  # "$", "%", "-": compared as written


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def numbers_in(text: str) -> set[Decimal]:
    found: set[Decimal] = set()
    for pattern in _NUMBERS:
        for m in pattern.finditer(text):
            value = parse_amount(m.group())
            if value is not None:
                found.add(abs(value))
    return found


_YEAR_THEN_TIME = re.compile(r"((?:19|20)\d{2})(?=\d{1,2}:\d{2})")  # "03/02/201815:28": OCR lost a space


def dates_in(text: str) -> set[date]:
    text = _YEAR_THEN_TIME.sub(r"\1 ", text)
    return {d for first in (True, False) for d, _, _ in find_dates(text, day_first=first)}


def currencies_in(text: str) -> set[str]:
    codes = {c for c in re.findall(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])", text) if c in ISO_CURRENCIES}
    named = parse_currency(text)
    words = {_CURRENCY_TOKENS[w] for w in norm_words(text).split() if w in _CURRENCY_TOKENS}
    return codes | words | ({named} if named else set())


def contains(text: str, value: Any) -> bool:
    """Whether `text` holds `value` after normalization (see the module docstring); False for a value of
    no comparable kind."""
    kind = value_kind(value)
    if kind == "number":
        target = abs(Decimal(str(value)))
        return any(abs(n - target) <= TOLERANCE for n in numbers_in(text))
    if kind == "date":
        return _iso_date(str(value)) in dates_in(text)
    if kind == "currency":
        return str(value).strip() in currencies_in(text)
    if kind == "scale":
        return bool(_SCALES[str(value).strip().casefold()] & set(norm_words(text).split()))
    if kind == "text":
        return f" {norm_words(value)} " in f" {norm_words(text)} "
    if kind == "symbol":
        return str(value).strip() in text
    return False


def leaves(fields: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every scalar value of the fields with its path: keys and list indexes joined by dots."""

    def walk(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield from walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(f"{prefix}.{index}", item)
        elif value is not None and value != "":
            yield prefix, value

    yield from walk("", fields)


# --- locating values ------------------------------------------------------------------------------------


@dataclass
class _Doc:
    """The spans with what the locator reads from them, computed once per document."""

    spans: list[Span]
    words: list[str] = field(default_factory=list)
    joined: str = ""  # the words of every span that has some, in reading order, one space apart
    starts: list[int] = field(default_factory=list)  # where those spans' words start in `joined`
    order: list[int] = field(default_factory=list)  # the index of each of those spans
    by_page: dict[int, list[int]] = field(default_factory=dict)
    _numbers: dict[int, set[Decimal]] = field(default_factory=dict)
    _dates: dict[int, set[date]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pos = 0
        for i, span in enumerate(self.spans):
            w = norm_words(span.text)
            self.words.append(w)
            self.by_page.setdefault(span.page, []).append(i)
            if w:
                self.order.append(i)
                self.starts.append(pos)
                pos += len(w) + 1
        self.joined = " ".join(self.words[i] for i in self.order)

    def numbers(self, i: int) -> set[Decimal]:
        if i not in self._numbers:
            self._numbers[i] = numbers_in(self.spans[i].text)
        return self._numbers[i]

    def dates(self, i: int) -> set[date]:
        if i not in self._dates:
            self._dates[i] = dates_in(self.spans[i].text)
        return self._dates[i]

    def holds(self, i: int, value: Any, kind: str) -> bool:
        if kind == "number":
            target = abs(Decimal(str(value)))
            return any(abs(n - target) <= TOLERANCE for n in self.numbers(i))
        if kind == "date":
            return _iso_date(str(value)) in self.dates(i)
        return contains(self.spans[i].text, value)

    def text_runs(self, value: Any) -> list[tuple[int, int]]:
        """(first, last) span indexes of every run of consecutive spans whose words hold the value's."""
        needle = f" {norm_words(value)} "
        haystack = f" {self.joined} "
        runs: list[tuple[int, int]] = []
        at = haystack.find(needle)
        while at >= 0:
            first = self.order[max(bisect.bisect_right(self.starts, at) - 1, 0)]
            last = self.order[max(bisect.bisect_right(self.starts, at + len(needle) - 3) - 1, 0)]
            if last - first < MAX_RUN:
                runs.append((first, last))
            at = haystack.find(needle, at + 1)
        return runs


@dataclass
class _Found:
    first: int
    last: int
    similarity: float = 1.0  # 1.0: the text contains the value
    members: tuple[int, ...] = ()  # spans not consecutive in reading order, in the value's order

    @property
    def indexes(self) -> list[int]:
        return list(self.members) or list(range(self.first, self.last + 1))


def _candidates(doc: _Doc, value: Any, kind: str) -> list[_Found]:
    n = len(doc.spans)
    if kind == "text":
        found = [_Found(a, b) for a, b in doc.text_runs(value)]
    else:
        found = [_Found(i, i) for i in range(n) if doc.holds(i, value, kind)]
        if not found:  # a value written over two spans ("USD" | "1,234.56", "March 4," | "2021")
            found = [
                _Found(i, i + 1)
                for i in range(n - 1)
                if doc.spans[i].page == doc.spans[i + 1].page
                and contains(doc.spans[i].text + " " + doc.spans[i + 1].text, value)
            ]
    if found or kind != "text":
        return found
    return _cover(doc, norm_words(value)) or _similar(doc, norm_words(value))


MAX_COVER_HEIGHT = 0.25  # spans that tile a value lie this close together (a fraction of the page)


def _cover(doc: _Doc, target: str) -> list[_Found]:
    """Spans of one page, near each other, whose words tile the value's words in order though reading order
    puts other text between them (an answer over two lines that OCR read in another order, a wrapped
    address beside a second column)."""
    padded = f" {target} "
    if len(target.split()) < 2:
        return []
    found: list[_Found] = []
    for indexes in doc.by_page.values():
        starts: dict[int, list[tuple[int, int]]] = {}  # offset in the value -> (offset after, span)
        for i in indexes:
            w = doc.words[i]
            if len(w) < 2:
                continue
            at = padded.find(f" {w} ")
            while at >= 0:
                starts.setdefault(at, []).append((at + len(w) + 1, i))
                at = padded.find(f" {w} ", at + 1)
        tiling = _tile(starts, 0, len(padded) - 1, {})
        if tiling is None:
            continue
        spans = [doc.spans[i] for i in tiling]
        if max(s.y1 for s in spans) - min(s.y0 for s in spans) <= MAX_COVER_HEIGHT:
            found.append(_Found(min(tiling), max(tiling), 1.0, tuple(tiling)))
    return found


def _tile(
    starts: dict[int, list[tuple[int, int]]], at: int, end: int, memo: dict[int, list[int] | None]
) -> list[int] | None:
    """Span indexes whose words follow each other from offset `at` to `end` of the value (longest first)."""
    if at == end:
        return []
    if at not in memo:
        memo[at] = None
        for after, i in sorted(starts.get(at, []), reverse=True):
            rest = _tile(starts, after, end, memo)
            if rest is not None:
                memo[at] = [i, *rest]
                break
    return memo[at]


def _similar(doc: _Doc, target: str) -> list[_Found]:
    """Runs of one to three spans most similar to a value no text contains (OCR errors, rewritten values)."""
    if len(target) > MAX_SIMILAR_CHARS:  # a clause no text holds is not looked for word by word
        return []
    tokens = set(target.split())
    best: list[_Found] = []
    best_ratio = FUZZY
    for i, w in enumerate(doc.words):
        if not tokens & set(w.split()) and not (len(target) >= 4 and target[:4] in w):
            continue
        for j in range(i, min(i + 3, len(doc.words))):
            text = " ".join(doc.words[i : j + 1])
            ratio = SequenceMatcher(None, target, text, autojunk=False).ratio()
            if ratio > best_ratio + 1e-9:
                best, best_ratio = [_Found(i, j, ratio)], ratio
            elif abs(ratio - best_ratio) <= 1e-9 and ratio >= FUZZY:
                best.append(_Found(i, j, ratio))
            if len(text) > len(target) * 1.5:
                break
    return best


def label_words(path: str) -> set[str]:
    """The words a label of the value at `path` would hold: the field's name (with common stand-ins), or
    for a key-value pair its key (a form's question)."""
    parts = [p for p in path.split(".") if not p.isdigit()]
    if len(parts) >= 2 and parts[0] == "key_values":
        return set(norm_words(".".join(parts[1:])).split())
    words: set[str] = set()
    for word in parts[-1].split("_") if parts else []:
        words.add(word)
        words.update(_LABEL_WORDS.get(word, ()))
    return {w for w in words if w}


def _overlap_y(a: Span | Box, b: Span | Box) -> float:
    inter = min(a.y1, b.y1) - max(a.y0, b.y0)
    return inter / max(min(a.y1 - a.y0, b.y1 - b.y0), 1e-6)


def _label_score(doc: _Doc, found: _Found, value: Any, labels: set[str]) -> float:
    """How strongly the field's label stands next to a candidate: in the span itself, left of it on its
    line, or above it."""
    if not labels:
        return 0.0
    first = doc.spans[found.first]
    own = set(doc.words[found.first].split()) - set(norm_words(value).split())
    score = 2.0 * len(labels & own) / len(labels)
    left = above = 0.0
    height = max(first.y1 - first.y0, 0.005)
    for i in doc.by_page.get(first.page, []):
        span = doc.spans[i]
        if i == found.first:
            continue
        hits = len(labels & set(doc.words[i].split())) / len(labels)
        if not hits:
            continue
        if _overlap_y(span, first) >= 0.5 and span.x1 <= first.x0 + 0.01:
            left = max(left, hits)
        elif 0 <= first.y0 - span.y1 <= 2.5 * height and span.x0 <= first.x1 and first.x0 <= span.x1:
            above = max(above, hits)
    return score + 2.0 * left + 1.0 * above


def _source(doc: _Doc, found: _Found, confidence: float) -> FieldSource:
    run = [doc.spans[i] for i in found.indexes]
    page = run[0].page
    on_page = [s for s in run if s.page == page]
    return FieldSource(
        page=page,
        x0=round(min(s.x0 for s in on_page), 5),
        y0=round(min(s.y0 for s in on_page), 5),
        x1=round(max(s.x1 for s in on_page), 5),
        y1=round(max(s.y1 for s in on_page), 5),
        text=" ".join(s.text for s in run),
        confidence=round(confidence, 4),
        ocr=any(s.ocr for s in run),
    )


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def locate_value(
    doc: _Doc, path: str, value: Any, siblings: dict[str, FieldSource] | None = None
) -> tuple[FieldSource, float] | None:
    """The best place of one value and how similar its text is to the value (1.0: contained)."""
    kind = value_kind(value)
    if kind == "skip" or not doc.spans:
        return None
    found = _candidates(doc, value, kind)
    if not found:
        return None
    labels = label_words(path)
    near = [s for p, s in (siblings or {}).items() if _parent(p) == _parent(path) and _parent(path)]

    def score(f: _Found) -> tuple[float, int]:
        s = _label_score(doc, f, value, labels) if len(found) > 1 else 0.0
        first = doc.spans[f.first]
        if any(b.page == first.page and _overlap_y(b, first) >= 0.5 for b in near):
            s += 1.5
        if kind == "text" and doc.words[f.first] == norm_words(value):
            s += 0.5  # the value is the whole span, not a word inside a longer text
        return s - 0.05 * (f.last - f.first), -f.first

    best = max(found, key=score)
    return _source(doc, best, 1.0), best.similarity


def locate(extraction: Extraction, parsed: ParsedDocument) -> Extraction:
    """The extraction with a `FieldSource` for every value found on the page (entries the backend made
    itself are kept; page-0 citations are placed by their text). Confidence: the field's own (of its
    top-level field), else 1.0, lowered by the similarity when no text contains the value exactly."""
    doc = _Doc(list(parsed.spans))
    if not doc.spans:
        return extraction
    provenance: dict[str, FieldSource] = {}
    # text first: a line item's description places the row its numbers are looked for on
    ordered = sorted(leaves(extraction.fields), key=lambda pv: value_kind(pv[1]) != "text")
    for path, value in ordered:
        given = extraction.provenance.get(path)
        if given is not None and given.page > 0:
            provenance[path] = given
            continue
        target = given.text if given is not None and given.text.strip() else value
        placed = locate_value(doc, path, target, provenance)
        if placed is None and given is not None:
            placed = locate_value(doc, path, value, provenance)
        if placed is None:
            continue
        source, similarity = placed
        top = path.split(".", 1)[0]
        if given is not None and given.confidence > 0:  # the backend's own confidence of this value
            base = given.confidence
        else:
            base = extraction.field_confidence.get(top, 1.0)
        source.confidence = round(base * similarity, 4)
        provenance[path] = source
    ordered_paths = [p for p, _ in leaves(extraction.fields) if p in provenance]
    return extraction.model_copy(update={"provenance": {p: provenance[p] for p in ordered_paths}})


def mismatches(extraction: Extraction) -> list[str]:
    """Paths of values whose recorded source text does not contain them (after normalization)."""
    values = dict(leaves(extraction.fields))
    return [
        path
        for path, source in extraction.provenance.items()
        if path in values and not contains(source.text, values[path])
    ]


# --- chunks ---------------------------------------------------------------------------------------------

_MD_NOISE = re.compile(r"<!--.*?-->", re.S)
LINE_GAP = 0.025  # spans closer than this (or than their own height) belong to one box


def chunk_boxes(chunk: Chunk, spans: list[Span]) -> list[Box]:
    """The boxes of the spans whose text the chunk's text holds, on the chunk's pages: one box per page for
    each run of such spans one under the other (a column of text, a table)."""
    text = f" {norm_words(_MD_NOISE.sub(' ', chunk.text))} "
    lo = chunk.page_start or 1
    hi = chunk.page_end or chunk.page_start or 10**9
    matched = [
        s
        for s in spans
        if lo <= s.page <= hi and (w := norm_words(s.text)) and len(w) >= 2 and f" {w} " in text
    ]
    boxes: list[tuple[Box, int]] = []  # a box and how many characters of text it holds
    for span in sorted(matched, key=lambda s: (s.page, s.y0, s.x0)):
        chars = len(span.text.strip())
        gap = max(LINE_GAP, 1.2 * (span.y1 - span.y0))  # the space between two lines of one text
        if boxes and boxes[-1][0].page == span.page and span.y0 <= boxes[-1][0].y1 + gap:
            box, n = boxes[-1]
            merged = Box(
                page=box.page,
                x0=min(box.x0, span.x0),
                y0=min(box.y0, span.y0),
                x1=max(box.x1, span.x1),
                y1=max(box.y1, span.y1),
            )
            boxes[-1] = (merged, n + chars)
        else:
            boxes.append((Box(page=span.page, x0=span.x0, y0=span.y0, x1=span.x1, y1=span.y1), chars))
    # a lone short word matched away from the chunk's text (a page number, "Total") is no place of it
    kept = [b for b, n in boxes if n >= 8] or [b for b, _ in boxes]
    return [
        Box(page=b.page, x0=round(b.x0, 5), y0=round(b.y0, 5), x1=round(b.x1, 5), y1=round(b.y1, 5))
        for b in kept
    ]


def with_boxes(chunks: list[Chunk], spans: list[Span]) -> list[Chunk]:
    """The chunks with their boxes (unchanged when the parser gave no spans)."""
    if not spans:
        return chunks
    return [c.model_copy(update={"boxes": chunk_boxes(c, spans)}) for c in chunks]


# --- citations of remote backends -----------------------------------------------------------------------

_INDICATORS = ("citation", "confidence", "extraction_confidence")


def citations(metadata: Any, prefix: str = "") -> dict[str, FieldSource]:
    """LlamaExtract's per-field metadata (`extract_metadata.field_metadata.document_metadata`: a field's
    entry holds `citation`, a list of {page, matching_text}, and confidences; a list field a list of such
    objects per item) as page-0 entries for `locate` to place: the cited text, not its page, is kept, since
    the pages are those of the markdown docflow uploaded, not of the document."""
    out: dict[str, FieldSource] = {}
    if isinstance(metadata, dict) and any(k in metadata for k in _INDICATORS):
        cited = metadata.get("citation") or []
        text = " ".join(
            str(c.get("matching_text") or "") for c in cited if isinstance(c, dict) and c.get("matching_text")
        )
        confidence = metadata.get("extraction_confidence", metadata.get("confidence"))
        if prefix and (text or isinstance(confidence, int | float)):
            conf = float(confidence) if isinstance(confidence, int | float) else 0.0
            out[prefix] = FieldSource(page=0, x0=0, y0=0, x1=0, y1=0, text=text, confidence=conf)
        return out
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            out.update(citations(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(metadata, list):
        for index, value in enumerate(metadata):
            out.update(citations(value, f"{prefix}.{index}"))
    return out
