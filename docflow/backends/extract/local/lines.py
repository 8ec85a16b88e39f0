"""Lines of text, labels and their values, money tokens: the building blocks of every field heuristic."""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from docflow.backends.extract.normalize import find_dates, parse_amount, parse_currency

Raw = dict[str, Any]
Conf = dict[str, float]


_LABEL_ONLY = re.compile(r"^[^\d:]{1,40}:$")


def _is_label_only(line: str) -> bool:
    return bool(_LABEL_ONLY.match(line)) and len(line.split()) <= 5


_AMOUNT_TOKEN = re.compile(r"[-(]?[$€£]?\d[\d.,]*\)?%?")


def _is_value(line: str) -> bool:
    return ":" not in line and (any(c.isdigit() for c in line) or len(line.split()) <= 3)


class Lines:
    """The non-empty lines of a document, with values paired to columns of labels.

    `paragraph[i]` numbers the blank-line separated block line `i` belongs to (layout: an address block).
    """

    def __init__(self, text: str) -> None:
        self.lines: list[str] = []
        self.paragraph: list[int] = []
        block = 0
        for raw in text.replace("|", "  ").splitlines():
            if raw.strip():
                self.lines.append(raw.strip())
                self.paragraph.append(block)
            elif self.lines and self.paragraph[-1] == block:
                block += 1
        self.column_values = self._pair_columns()

    def block_after(self, index: int, limit: int = 7) -> range:
        """The lines after a label line that belong to it: the rest of its paragraph, or the next paragraph
        when the label stands at the end of its own; at most `limit` lines."""
        n = len(self.lines)
        start = index + 1
        if start < n and self.paragraph[start] != self.paragraph[index]:
            block = self.paragraph[start]
        else:
            block = self.paragraph[index]
        end = start
        while end < n and end < start + limit and self.paragraph[end] == block:
            end += 1
        return range(start, end)

    def _pair_columns(self) -> dict[int, str]:
        """Pair a run of label-only lines ("Date:", "Total:") with as many value lines after or before it."""
        pairs: dict[int, str] = {}
        i, n = 0, len(self.lines)
        while i < n:
            j = i
            while j < n and _is_label_only(self.lines[j]):
                j += 1
            k = j - i
            # "Notes:  Subtotal:" then "Tax:", "Total:": the column of labels starts at the end of a line
            mid_line = k >= 2 and i > 0 and self.lines[i - 1].endswith(":")
            row = self.lines[j].split() if k >= 2 and j < n else []
            if row and all(_AMOUNT_TOKEN.fullmatch(t) for t in row) and len(row) in (k, k + mid_line):
                first = i - (len(row) - k)  # the values printed as one row: "75.87 0.00 75.87"
                pairs.update({first + t: row[t] for t in range(len(row))})
                i = j + 1
                continue
            if mid_line and self._values_after(j) == k + 1:
                i, k = i - 1, k + 1
            if k >= 2:
                after, before = self.lines[j : j + k], self.lines[max(0, i - k) : i]
                for values in (after, before):
                    if len(values) == k and all(_is_value(v) for v in values):
                        pairs.update({i + t: values[t] for t in range(k)})
                        break
            i = max(j, i + 1)
        return pairs

    def _values_after(self, j: int) -> int:
        count = 0
        while j + count < len(self.lines) and _is_value(self.lines[j + count]):
            count += 1
        return count

    def labelled(
        self, label: re.Pattern[str], skip: Callable[[str], bool] | None = None
    ) -> Iterator[tuple[str, float]]:
        """Candidate values for `label`: the rest of its line, its column value, then the next line."""
        for i, line in enumerate(self.lines):
            m = label.search(line)
            if not m or (skip and skip(line)):
                continue
            rest = line[m.end() :].strip(" \t:#.-—–=")
            if rest:
                yield rest, 0.9
            if i in self.column_values:
                yield self.column_values[i], 0.85
            elif i + 1 < len(self.lines):
                yield self.lines[i + 1], 0.8


def label_pattern(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?:(?<=\W)|(?!\w))", re.I)


def first_value(
    candidates: Iterable[tuple[str, float]], parse: Callable[[str], Any]
) -> tuple[Any, float] | None:
    for text, conf in candidates:
        value = parse(text)
        if value is not None:
            return value, conf
    return None


# --- money tokens --------------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?<![\w.,/:])(?:\d{1,3}(?:(?:[.,'’]|\s(?=\d{3}(?![\d.,]\d)))\d{3})+|\d+)(?:[.,]\d{1,2})?(?:,-)?(?![\w/%]|[.,]\d|\s?%)"
)


@dataclass(frozen=True)
class Money:
    value: Decimal
    currency: str | None
    marked: bool  # has decimals or a currency next to it: likely an amount, not a count or a year


def find_money(text: str) -> list[Money]:
    """Amounts written in `text` (dates and percentages ignored), in reading order."""
    for _, start, end in find_dates(text):
        text = text[:start] + " " * (end - start) + text[end:]
    found: list[Money] = []
    for m in _NUMBER.finditer(text):
        value = parse_amount(m.group())
        if value is None:
            continue
        before, after = text[max(0, m.start() - 6) : m.start()], text[m.end() : m.end() + 6]
        if re.search(r"(?:^|[\s(])[-−]\s?$|\(\s?$", before) and not re.search(r"\d\s*[-−]\s?$", before):
            value = -value
        currency = parse_currency(before) or parse_currency(after.split("(")[0])
        marked = bool(re.search(r"[.,]\d{2}$", m.group())) or currency is not None
        found.append(Money(value, currency, marked))
    return found


def best_money(text: str) -> Money | None:
    """The amount a labelled line most likely holds: the last marked amount, else the last number."""
    money = find_money(text)
    marked = [m for m in money if m.marked]
    return (marked or money or [None])[-1]
