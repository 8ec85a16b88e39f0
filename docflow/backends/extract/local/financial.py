"""Financial statements: revenue lines with unit, currency and period end."""

import re
from datetime import date
from typing import Any

from docflow.backends.extract.local.lines import Conf, Lines, Raw, find_money
from docflow.backends.extract.local.parties import company_name, plain_name
from docflow.backends.extract.normalize import parse_currency

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


def extract_financial(text: str) -> tuple[Raw, Conf]:
    lines = Lines(text).lines
    raw: Raw = {}
    conf: Conf = {}
    unit = next((name for line in lines for pattern, name in _UNIT if pattern.search(line)), None)
    currency = next((c for line in lines if _UNIT[0][0].search(line) or _UNIT[1][0].search(line)
                     if (c := parse_currency(line))), None) or _most_common_currency(lines)  # fmt: skip
    revenue: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
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
