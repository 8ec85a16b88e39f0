"""Forms and everything else: key/value pairs.

With the text's boxes (`ParsedDocument.spans`) the pairs come from the layout: a label ("Date:", "Project
Name_", or a short caption) and its answer, the nearest box to its right on the same row or the block
directly below it; a box holding both ("Date: 12/1/98") is split. Without boxes, "Key: value" lines of the
plain text.
"""

import re
import unicodedata
from dataclasses import dataclass

from docflow.backends.extract.local.lines import Conf, Lines, Raw
from docflow.backends.extract.normalize import clean_text
from docflow.models import Span

_KEY_VALUE = re.compile(r"^(?P<key>[^\W\d][^:]{0,60}?)\s*:\s*(?P<value>\S.*)$")

# A label and its answer in one box: "Date: 6/24/94", "Attn:Dr. Smith" (the key starts with a letter and
# does not end with a digit, so times and ratios are not split), or "Project Name_ Charcoal" with a fill-in
# underline (no digits in the key: OCR also reads a space inside an answer as "_")
_INLINE_COLON = re.compile(r"^(?P<key>[^\W\d_][^:]{0,50}?)(?<!\d)\s*:+\s*(?P<value>[^\s_].*)$")
_INLINE_LINE = re.compile(r"^(?P<key>[^\W\d_][^\d:_]{0,50}?)\s*_+\s*(?P<value>[^\s_].*)$")
# A box that is a label alone: text then a colon (or OCR's ';' for one)...
_LABEL_COLON = re.compile(r"^(?P<key>[^\W_].{0,60}?)\s*[:;]$")
# ... or then a fill-in underline or leader dots
_LABEL_LINE = re.compile(r"^(?P<key>[^\W_].{0,60}?)\s*(?:_+|\.{2,})$")
_NOISE = re.compile(r"^[\W_]*$")  # checkboxes, rules, stray marks: no letter or digit at all
_FILL = re.compile(r"^[_\s.|\[\]□■☐☑☒]+|[_\s|\[\]□■☐☑☒]+$")
_ITEM = re.compile(r"^(?:\(?[a-zA-Z0-9]{1,2}[).]|[•*·-])\s*\S")  # "a) ...", "1. ...", "• ..."
MAX_KEY_WORDS = 8
MAX_INLINE_KEY_WORDS = 5  # a longer text before a colon in a box is a sentence, not a label
ROW_OVERLAP = 0.4  # two boxes share a row when they overlap this share of the lower one's height
BELOW_GAP = 1.6  # an answer below its label starts within this many label heights
NEXT_LINE_GAP = 0.8  # a multi-line answer's next line starts within this many line heights
ROW_GAP = 3.0  # boxes of one answer on a row are at most this many heights apart
NEAR = 4.0  # a caption's answer to its right is within this many heights, else it is looked for below
ALIGN = 0.03  # left edges this close (page fraction) are one column

STRONG, WEAK = 2, 1  # label kinds: a colon, a fill-in line


@dataclass
class _Box:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    kind: int = 0  # STRONG, WEAK or 0: not a label by its text
    key: str | None = None  # a label's key
    inline: str | None = None  # the answer written in the label's own box
    used: bool = False  # taken as an answer, or a label with its answer

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1e-6)


def _same_row(a: _Box, b: _Box) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return overlap >= ROW_OVERLAP * min(a.height, b.height)


def _short_key(key: str) -> bool:
    return bool(key) and len(key.split()) <= MAX_KEY_WORDS and any(c.isalpha() for c in key)


def _classify(box: _Box) -> None:
    """Set a box's label kind, key and in-box answer from its text."""
    for kind, pattern in ((STRONG, _LABEL_COLON), (WEAK, _LABEL_LINE)):
        if (m := pattern.match(box.text)) and _short_key(key := clean_text(m.group("key"))):
            box.kind, box.key = kind, key
            return
    for kind, pattern in ((STRONG, _INLINE_COLON), (WEAK, _INLINE_LINE)):
        if m := pattern.match(box.text):
            key, value = clean_text(m.group("key")), _clean_answer(m.group("value"))
            if _short_key(key) and len(key.split()) <= MAX_INLINE_KEY_WORDS and value:
                box.kind, box.key, box.inline = kind, key, value
                return


def _clean_answer(text: str) -> str:
    return clean_text(_FILL.sub("", text.strip()))


def _caption(text: str) -> bool:
    """A box without a separator that may still be a label: a short run of words starting with a letter."""
    letters = sum(c.isalpha() for c in text)
    return 1 <= len(text.split()) <= 5 and text[0].isalpha() and letters >= 0.6 * len(text.replace(" ", ""))


def _boxes(spans: list[Span]) -> list[_Box]:
    boxes = []
    for span in spans:
        # NFKC: OCR models trained on CJK text give full-width punctuation ("：", "，")
        text = " ".join(unicodedata.normalize("NFKC", span.text).split())
        if text and not _NOISE.match(text):
            boxes.append(_Box(text, span.x0, span.y0, span.x1, span.y1))
    boxes.sort(key=lambda b: ((b.y0 + b.y1) / 2, b.x0))
    for box in boxes:
        _classify(box)
    return boxes


def _right_of(label: _Box, boxes: list[_Box]) -> _Box | None:
    """The nearest box on the label's row that starts right of the label's middle (OCR boxes overlap)."""
    middle = (label.x0 + label.x1) / 2
    row = [b for b in boxes if b is not label and b.x0 > middle and _same_row(label, b)]
    return min(row, key=lambda b: b.x0, default=None)


def _overlap(a: _Box, b: _Box) -> float:
    return min(a.x1, b.x1) - max(a.x0, b.x0)


def _below(label: _Box, boxes: list[_Box], gap: float) -> _Box | None:
    """The first box under `label` in its column: overlapping its width, starting close under it, and not
    under another box of the label's row more than under the label (a wide answer under a header row)."""
    row = [b for b in boxes if b is not label and _same_row(label, b)]
    under = [
        b
        for b in boxes
        if b is not label
        and b.y0 >= label.y0 + 0.5 * label.height
        and b.y0 - label.y1 <= gap * label.height
        and _overlap(b, label) > 0
        and not _same_row(label, b)
        and all(_overlap(b, other) <= _overlap(b, label) for other in row)
    ]
    return min(under, key=lambda b: (b.y0, b.x0), default=None)


def _free(box: _Box | None, absorb: int = 0) -> bool:
    """Free to be an answer: not taken, and not a label stronger than `absorb`."""
    return box is not None and not box.used and box.kind <= absorb


def _row_run(first: _Box, boxes: list[_Box]) -> list[_Box]:
    """`first` and the free boxes following it closely on its row."""
    run = [first]
    while (nxt := _right_of(run[-1], boxes)) is not None and _free(nxt):
        if nxt.x0 - run[-1].x1 > ROW_GAP * run[-1].height:
            break
        run.append(nxt)
    return run


def _next_lines(
    label: _Box, first: list[_Box], boxes: list[_Box], taken: list[_Box], captions: bool
) -> list[list[_Box]]:
    """The lines under an answer's first line that continue it: starting in one of its columns, close under
    it, free, and with nothing left of them in the label's column (that would be the next label's row).
    Under a caption's answer a caption is the next label, not more answer, unless `captions`."""
    lines: list[list[_Box]] = []
    last = first
    columns = [b.x0 for b in first]
    while True:
        bottom = max(b.y1 for b in last)
        height = max(b.height for b in last)
        candidates = [
            b
            for b in boxes
            if _free(b)
            and b not in taken
            and (captions or not _caption(b.text))
            and any(abs(b.x0 - x) <= ALIGN for x in columns)
            and b.y0 >= min(x.y0 for x in last) + 0.5 * height
            and b.y0 - bottom <= NEXT_LINE_GAP * height
        ]
        start = min(candidates, key=lambda b: (b.y0, b.x0), default=None)
        if start is not None:  # the row's first box in one of the columns ("b)" before its text)
            start = min((b for b in candidates if _same_row(b, start)), key=lambda b: b.x0)
        if start is None or any(
            b is not start and b is not label and _same_row(b, start) and label.x0 - ALIGN <= b.x0 < start.x0
            for b in boxes
        ):
            return lines
        last = _row_run(start, boxes)
        taken += last
        lines.append(last)


def _label_above(label: _Box, boxes: list[_Box]) -> _Box | None:
    """The first line of a two-line label ("PLAINTIFF'S" over "COUNSEL:"): a caption right over the label,
    left-aligned with it, with nothing else on its row right of it."""
    above = [
        b
        for b in boxes
        if not b.used
        and b.kind == 0
        and abs(b.x0 - label.x0) <= ALIGN
        and b.y1 <= label.y0 + 0.5 * label.height
        and label.y0 - b.y1 <= 0.5 * label.height
        and _caption(b.text)
        and b.x1 - b.x0 <= 1.5 * (label.x1 - label.x0)  # not a title over the label
    ]
    first = max(above, key=lambda b: b.y0, default=None)
    if first is None or _right_of(first, boxes) is not None:
        return None
    return first


def _has_answer(caption: _Box, boxes: list[_Box]) -> bool:
    """A caption with a free box close on its right: a label of its own rather than a far answer."""
    right = _right_of(caption, boxes)
    return (
        _caption(caption.text)
        and right is not None
        and _free(right)
        and right.x0 - caption.x1 <= NEAR * caption.height
    )


def _answer(label: _Box, boxes: list[_Box]) -> str | list[str] | None:
    right = _right_of(label, boxes)
    if label.kind:
        if _free(right, absorb=WEAK):
            start: _Box | None = right
        else:
            start = _below(label, boxes, BELOW_GAP)
            start = start if _free(start) else None
    else:  # a caption: an answer close on its right, else one under it, else one farther right
        below = _below(label, boxes, 1.0)
        near = right is not None and right.x0 - label.x1 <= NEAR * label.height
        # a row of captions, each over its answer, is a header row ("Fax Number   Voice Number")
        header = right is not None and _caption(right.text) and _free(_below(right, boxes, 1.0))
        if near and _free(right) and not (header and _free(below)):
            start = right
        elif _free(below):
            start = below
        elif _free(right) and not header and not _has_answer(right, boxes):
            start = right
        else:
            start = None
    if start is None:
        return None
    first = _row_run(start, boxes)
    lines = [first]
    lines += _next_lines(label, first, boxes, list(first), captions=label.kind > 0)
    for line in lines:
        for box in line:
            box.used = True
    texts = [" ".join(b.text for b in line) for line in lines]
    if sum(bool(_ITEM.match(t)) for t in texts) >= 2 and _ITEM.match(texts[0]):
        items: list[str] = []
        for text in texts:
            if _ITEM.match(text) or not items:
                items.append(text)
            else:
                items[-1] += " " + text
        return [_clean_answer(item) for item in items]
    return _clean_answer(" ".join(texts))


def layout_key_values(spans: list[Span]) -> list[tuple[str, str | list[str]]]:
    """(key, answer) pairs read from the boxes of each page, in reading order; an answer written as
    an enumeration ("a) ...", "b) ...") is a list."""
    pairs: list[tuple[str, str | list[str]]] = []
    for page in sorted({s.page for s in spans}):
        boxes = _boxes([s for s in spans if s.page == page])
        found: list[tuple[_Box, str, str | list[str]]] = []
        for label in boxes:
            above = _label_above(label, boxes) if label.kind == STRONG and label.inline is None else None
            if above is not None:
                above.used = True
                label.key = f"{above.text} {label.key}"
        # labels by separator first, colons before fill-in lines: they claim their answers before captions
        order = [b for b in boxes if b.kind == STRONG] + [b for b in boxes if b.kind == WEAK] + boxes
        for label in order:
            if label.used or (label.kind == 0 and not _caption(label.text)):
                continue
            key = label.key if label.key is not None else clean_text(label.text)
            answer = label.inline if label.inline is not None else _answer(label, boxes)
            if answer:
                label.used = True
                found.append((label, key, answer))
        found.sort(key=lambda f: ((f[0].y0 + f[0].y1) / 2, f[0].x0))
        pairs += [(key, answer) for _, key, answer in found]
    return pairs


def extract_key_values(text: str, spans: list[Span] | None = None) -> tuple[Raw, Conf]:
    pairs: dict[str, str | list[str]] = {}

    def add(key: str, value: str | list[str]) -> None:
        key = clean_text(key)
        values = [v for v in (clean_text(v) for v in (value if isinstance(value, list) else [value])) if v]
        if not key or not values or len(key.split()) > MAX_KEY_WORDS:
            return
        existing = pairs.get(key)
        if existing is None:
            pairs[key] = values[0] if len(values) == 1 else values
        else:
            pairs[key] = [*(existing if isinstance(existing, list) else [existing]), *values]

    if spans:
        for key, value in layout_key_values(spans):
            add(key, value)
        return ({"key_values": pairs}, {"key_values": 0.5}) if pairs else ({}, {})
    lines = Lines(text)
    for i, line in enumerate(lines.lines):
        if i in lines.column_values:
            add(line, lines.column_values[i])
        elif m := _KEY_VALUE.match(line):
            add(m.group("key"), m.group("value"))
    return ({"key_values": pairs}, {"key_values": 0.5}) if pairs else ({}, {})
