"""Financial statements: revenue lines with unit, currency and period end."""

import re
from datetime import date
from typing import Any

from docflow.backends.extract.local.lines import Conf, Lines, Raw, find_money
from docflow.backends.extract.local.parties import company_name, plain_name
from docflow.backends.extract.normalize import find_dates, parse_amount, parse_currency
from docflow.models import Span

_REVENUE_LINE = re.compile(
    r"^(?:total\s+|net\s+|group\s+)?(?:revenues?|net\s+sales|sales(?:\s+revenues?)?|turnover|umsatz(?:erl[öo]se)?|"
    r"umsatzerl[öo]se|chiffre\s+d'affaires|income\s+from\s+operations)\b",
    re.I,
)
_UNIT = [
    (re.compile(r"\bin\s+billions?\b|\bbn\b|€\s?bn|\bbillions?\b", re.I), "billions"),
    (
        re.compile(
            r"\bin\s+millions?\b|\bmillions?\b|\bmio\.?\b|\bmn\b|€\s?m\b|\b[A-Z]{3}\s?m\b|\bm[€$]", re.I
        ),
        "millions",
    ),
    (re.compile(r"\bin\s+thousands?\b|\bthousands?\b|\bk€|€\s?k\b|\bTEUR\b|\b000s\b", re.I), "thousands"),
]
_YEAR_HEADER = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


def extract_financial(text: str, spans: list[Span] | None = None) -> tuple[Raw, Conf]:
    lines = Lines(text).lines
    raw: Raw = {}
    conf: Conf = {}
    unit = next((name for line in lines for pattern, name in _UNIT if pattern.search(line)), None)
    currency = next((c for line in lines if _UNIT[0][0].search(line) or _UNIT[1][0].search(line)
                     if (c := parse_currency(line))), None) or _most_common_currency(lines)  # fmt: skip
    # by layout first: a revenue row's figures sit under their period columns, which plain text loses
    # when a page holds two tables side by side or a header carries more than the years
    revenue: list[dict[str, Any]] = [
        {"value": value, "unit": unit, "currency": currency, "period_end": period}
        for value, period in revenue_by_layout(spans or [], _statement_date(lines))
    ]
    for i, line in enumerate([] if revenue else lines):
        if not _REVENUE_LINE.match(line):
            continue
        values = [m.value for m in find_money(line) if abs(m.value) >= 1]
        years = _years_above(lines, i)
        for k, value in enumerate(values[: max(len(years), 1) if years else 2]):
            period = date(int(years[k]), 12, 31) if k < len(years) else None
            revenue.append({"value": value, "unit": unit, "currency": currency, "period_end": period})
        if revenue:
            break
    if revenue:
        raw["revenue"], conf["revenue"] = revenue, 0.5
    if currency:
        raw["currency"], conf["currency"] = currency, 0.6
    if unit:
        raw["unit"], conf["unit"] = unit, 0.6
    if lines and (name := company_name(lines[0]) or plain_name(lines[0])):
        raw["institution"], conf["institution"] = name, 0.4
    return raw, conf


def _years_above(lines: list[str], index: int) -> list[str]:
    for line in reversed(lines[max(0, index - 12) : index]):
        years = _YEAR_HEADER.findall(line)
        rest = _YEAR_HEADER.sub("", line)
        if len(years) >= 2 and len(re.sub(r"[^A-Za-z]", "", rest)) <= 20:
            return years
    return []


def _most_common_currency(lines: list[str]) -> str | None:
    counts: dict[str, int] = {}
    for line in lines:
        if c := parse_currency(line):
            counts[c] = counts.get(c, 0) + 1
    return max(counts, key=lambda c: counts[c]) if counts else None


# ======================================================================================================

# a span that is only a revenue label (a footnote mark allowed): "Net sales", "Revenue", "Sales 1"
_REVENUE_LABEL = re.compile(
    r"^(?:total\s+|net\s+|group\s+)?(?:revenues?|net\s+sales|sales(?:\s+revenues?)?|turnover|"
    r"umsatz(?:erl[öo]se)?|chiffre\s+d'affaires)\s*(?:\d|\*+|\(\w\)|[¹²³])?\s*:?$",
    re.I,
)
_FIGURE = re.compile(
    r"^[(\-−–]?\s?\d{1,3}(?:[,.\s]\d{3})*(?:[.,]\d{1,2})?\s?\)?$|^[(\-−–]?\d+(?:[.,]\d{1,2})?\)?$"
)
# a period column heading: a year, optionally after a quarter/half/nine-months/fiscal-year mark
_PERIOD = re.compile(r"(?<![\w-])(?:(Q[1-4]|H[12]|[69]M|FY)\s*)?((?:19|20)\d{2})(?![\w-])", re.I)
_PERIOD_MONTH_DAY = {"Q1": (3, 31), "Q2": (6, 30), "H1": (6, 30), "6M": (6, 30), "Q3": (9, 30), "9M": (9, 30)}
_STATEMENT_DATE = re.compile(r"\b(?:as\s+(?:of|at)|ended|ending|to)\s+(.{6,25}?(?:19|20)\d{2})", re.I)


def revenue_by_layout(spans: list[Span], statement: date | None = None) -> list[tuple[float, date | None]]:
    """(value, period end) of every revenue row read from text boxes: a box holding only a revenue label,
    the figures to its right on the same row, each under the period heading nearest above it.

    A year heading alone ends on the statement's own closing day-month (`statement`, else 31 December);
    a quarter/half-year heading (Q2 2019, H1 2019) ends on that quarter's last day.
    """
    found: list[tuple[float, date | None]] = []
    for i, label in enumerate(spans):
        if not _REVENUE_LABEL.match(label.text.strip()):
            continue
        figures = _row_figures(spans[i + 1 :], label)
        if not figures:
            continue
        columns = _period_columns(spans, label, figures)
        for fig in figures:
            amount = parse_amount(fig.text)
            if amount is None:
                continue
            value = float(-abs(amount) if fig.text.strip()[0] in "(-−–" else amount)
            if columns:
                centre = (fig.x0 + fig.x1) / 2
                x, mark, year = min(columns, key=lambda c: abs(c[0] - centre))
                if abs(x - centre) > 0.05:  # under no period heading: a note number, a change column
                    continue
                month, day = _PERIOD_MONTH_DAY.get(mark.upper(), (12, 31) if mark or not statement
                                                   else (statement.month, statement.day))  # fmt: skip
                period: date | None = date(year, month, day)
            elif len(figures) > 2:
                continue
            else:
                period = None
            if abs(value) >= 1 and (value, period) not in found:
                found.append((value, period))
    return found


def _row_figures(following: list[Span], label: Span) -> list[Span]:
    """The figures right of `label` on its row, in the parser's reading order: it keeps two rows apart
    where their boxes overlap vertically; the row ends at a box of words (the next table, prose)."""
    figures: list[Span] = []
    for s in following:
        if (
            s.page != label.page
            or not _same_row(s, label)
            or s.x0 < (figures[-1].x1 if figures else label.x1) - 0.005
        ):
            break
        text = s.text.strip()
        if _FIGURE.match(text):
            figures.append(s)
        elif len(re.sub(r"[^A-Za-z]", "", text)) > 3:
            break
    return figures


def _same_row(a: Span, b: Span) -> bool:
    centre = (a.y0 + a.y1) / 2
    other = (b.y0 + b.y1) / 2
    return b.y0 <= centre <= b.y1 or a.y0 <= other <= a.y1


def _period_columns(spans: list[Span], label: Span, figures: list[Span]) -> list[tuple[float, str, int]]:
    """(x centre, mark, year) of the period headings of the nearest row above `label` that has some over
    the figures' horizontal range; a box holding several headings is split by character position."""
    left, right = figures[0].x0 - 0.03, figures[-1].x1 + 0.03
    rows: dict[float, list[tuple[float, str, int]]] = {}
    for s in spans:
        if s.page != label.page or s.y1 > (label.y0 + label.y1) / 2 or label.y0 - s.y0 > 0.3:
            continue
        text = s.text
        for m in _PERIOD.finditer(text):
            x = s.x0 + (s.x1 - s.x0) * (m.start() + m.end()) / 2 / max(len(text), 1)
            if left <= x <= right:
                rows.setdefault(round(s.y0, 3), []).append((x, m.group(1) or "", int(m.group(2))))
    if not rows:
        return []
    return sorted(rows[max(rows)])


def _statement_date(lines: list[str]) -> date | None:
    """The date a statement is made up to ('as of June 30, 2019', 'period ... to December 31, 2020')."""
    for line in lines[:40]:
        for m in _STATEMENT_DATE.finditer(line):
            dates = find_dates(m.group(1), day_first=True)
            if dates:
                return dates[0][0]
    return None
