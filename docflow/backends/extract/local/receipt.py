"""Receipts read by their layout: the store at the top, its address below it, the total near the bottom.

A till receipt is a column of blocks: the merchant's name (the first prominent line, often with a legal
form such as "Sdn Bhd"), the address lines under it up to the phone / tax-registration lines, then the
items, and the total after a total label. OCR of a photographed receipt merges and splits lines, so the
rows are rebuilt from the parser's spans (text boxes) when there are any: spans whose vertical extents
overlap form one row, read left to right. Without spans the plain text lines are the rows.
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from docflow.backends.extract.local.invoice import (
    _cash_minus_change,
    _currency,
    _day_first,
    _invoice_date,
    _total,
    line_items,
)
from docflow.backends.extract.local.lines import Conf, Lines, Raw, first_value, label_pattern
from docflow.backends.extract.local.parties import company_name
from docflow.backends.extract.normalize import clean_text, find_dates, parse_currency
from docflow.models import Span


@dataclass
class Row:
    text: str
    y0: float | None = None
    y1: float | None = None

    @property
    def height(self) -> float | None:
        return None if self.y0 is None or self.y1 is None else self.y1 - self.y0


def rows_from_spans(spans: list[Span]) -> list[Row]:
    """Rows of text from OCR / PDF boxes: a span joins the row whose band it overlaps most (at least half
    of the smaller height) when it does not overlap a span of that row horizontally."""
    page = min((s.page for s in spans), default=1)
    boxes = sorted((s for s in spans if s.page == page and s.text.strip()), key=lambda s: (s.y0 + s.y1) / 2)
    rows: list[list[Span]] = []
    for span in boxes:
        best, best_overlap = None, 0.0
        for row in rows[-4:]:
            anchor = row[0]  # the band of the first span: a tilted photo must not chain rows together
            overlap = min(span.y1, anchor.y1) - max(span.y0, anchor.y0)
            need = 0.5 * min(span.y1 - span.y0, anchor.y1 - anchor.y0)
            if overlap >= need and overlap > best_overlap and not any(_x_overlap(span, s) for s in row):
                best, best_overlap = row, overlap
        if best is None:
            rows.append([span])
        else:
            best.append(span)
    out = []
    for row in rows:
        row.sort(key=lambda s: s.x0)
        heights = sorted(s.y1 - s.y0 for s in row)
        top = min(s.y0 for s in row)
        out.append(Row("  ".join(s.text.strip() for s in row), top, top + heights[len(heights) // 2]))
    return out


def _x_overlap(a: Span, b: Span) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0.3 * min(a.x1 - a.x0, b.x1 - b.x0)


# --- OCR repairs --------------------------------------------------------------------------------------------

_GLUED_TIME = re.compile(r"(\d{1,2}([/.-])\d{1,2}\2(?:(?:19|20)\d{2}|\d{2}))(?=\d{1,2}:\d{2})")
_OCR_AMOUNT = re.compile(r"(?<=\d)[oO](?=[oO\d]|\b)|(?<=\d[.:])[oO]|(?<=\d):(?=[\doO]{2}\b)")


def _repair(text: str) -> str:
    """Undo OCR habits that hide dates and amounts: a time glued to the year ("23-01-201913:14"), the letter
    O for a zero and a colon for the decimal point in an amount ("RM5:OO")."""
    text = _GLUED_TIME.sub(lambda m: m.group(1) + " ", text)
    for _ in range(2):
        text = _OCR_AMOUNT.sub(lambda m: "." if m.group() == ":" else "0", text)
    return text


# --- the store and its address ------------------------------------------------------------------------------

_LEGAL_FORM = re.compile(
    r"(?:SDN\.?\s*BHD|BHD|BERHAD|S/B|(?<=\s)SB|PTE\.?\s*LTD|LTD|LIMITED|PLC|LLC|INC|CORP(?:ORATION)?|"
    r"GMBH|CO\.?,?\s*LTD)\.?(?=$|[\s,.()])",
    re.I,
)
# words that name a kind of shop: a line holding one is a trading name even without a legal form
_TRADE_WORD = re.compile(
    r"\b(?:ENTERPRISES?|TRADING|SYARIKAT|RESTORAN|RESTAURANT|KEDAI|CAFE|BAKERY|BAKERIES|MART|"
    r"SUPERMARKET|HYPERMARKET|MINIMARKET|STORES?|SHOP|HARDWARE|PHARMACY|FARMASI|STATIONERY|BOOKSTORE|"
    r"MARKETING|INDUSTRIES|HOLDINGS|TRADERS?|AGENCY|KITCHEN|FOOD|HOTEL)\b",
    re.I,
)
# a company registration number printed on its own line: "(801580-T)", "CO REG NO: 210038-K", "123456-X"
_REGISTRATION = re.compile(
    r"^[(（\[][^()（）]*\d[^()（）]*[)）\]]?\.?$|^(?:co\.?|company|roc)\s*(?:reg(?:istration)?\.?|no\.?)|"
    r"^\d{4,}\s*-\s*[A-Z]$",
    re.I,
)
_REGISTRATION_TAIL = re.compile(r"\s*[(（\[][^()（）]*\d{4,}[^()（）]*[)）\]]?\s*$")
_TITLE = re.compile(
    r"^[\W_]*(?:(?:full|simplified|official)\s+)?(?:tax\s*invoice|invoice|receipt|cash\s*(?:bill|sale|receipt)|"
    r"bill|welcome|thank\s*you|original|copy|duplicate|order)\b",
    re.I,
)
# the lines that end the address block: contact, registration and tax numbers, document data
_ADDRESS_END = re.compile(
    r"\b(?:tel|tel\.|phone|ph|hp|fax|mobile|h/p|e-?mail|www|http|gst|sst|reg|registration|co\.?\s*no|"
    r"company\s+no|roc|tax|invoice|receipt|bill|date|time|cashier|table|order|no\.?\s*:|"
    r"server|counter|terminal|pos)\b|@|\.com\b",
    re.I,
)
_POSTCODE = re.compile(r"\b\d{5}\b")
_STREET = re.compile(r"^(?:no\.?\s*\d|lot\b|jalan\b|jln\b|\d+[,\s])", re.I)
_PHONE = re.compile(r"(?<![\w-])\+?\(?\d{2,4}\)?[\s-]\d{3,4}[\s-]?\d{3,4}(?![\w-])")


def _letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def _name_like(text: str) -> bool:
    """A line that can be a shop's name: mostly letters, not lower case only (handwriting read by OCR),
    few digits, not a title, a date or an address line."""
    text = text.strip()
    if _letters(text) < 3 or sum(c.isdigit() for c in text) > 3 or _TITLE.match(text):
        return False
    if text == text.lower() or find_dates(text) or _ADDRESS_END.search(text):
        return False
    return not _POSTCODE.search(text) and not re.match(r"^(?:no\.?|lot|jalan|jln)\b", text, re.I)


def _clean_name(text: str) -> str:
    text = _REGISTRATION_TAIL.sub("", text)  # "99 SPEED MART S/B (519537-X)"
    return clean_text(re.sub(r"\s{2,}", " ", text).strip(" .,:;-*"))


def _header_end(rows: list[Row]) -> int:
    """Index of the first row of the body: the first row with a total label or an amount of money."""
    for i, row in enumerate(rows):
        if _TOTAL_LABEL.search(row.text) or (_AMOUNT.search(row.text) and i >= 2):
            return i
    return len(rows)


def _store(rows: list[Row]) -> tuple[int, int, str, float] | None:
    """(first row, last row, name, confidence) of the store, looked for first in the name block (the header
    rows above the first address or contact line), then in the whole header: a line with a legal form, else
    one with a trade word, else the first prominent name-like line. A legal name printed only below the
    address is the owner's or operator's ("Owned by X Sdn Bhd"), not the name the shop goes by."""
    head = rows[: min(_header_end(rows), 10)]
    block = next((i for i, row in enumerate(head) if _address_start(row.text)), len(head))
    for top in (head[:block], head):
        found = _named(rows, top) or _prominent(top)
        if found:
            return found
    return None


def _address_start(text: str) -> bool:
    text = text.strip()
    if _ADDRESS_END.search(text) and not _LEGAL_FORM.search(text):
        return True
    return bool(_POSTCODE.search(text) or _STREET.match(text))


def _named(rows: list[Row], top: list[Row]) -> tuple[int, int, str, float] | None:
    for pattern, conf in ((_LEGAL_FORM, 0.8), (_TRADE_WORD, 0.7)):
        for i, row in enumerate(top):
            # the cell of the row that holds the word, not a stamp printed beside it
            text = next((c for c in _cells(row.text) if pattern.search(c)), "")
            m = pattern.search(text)
            if not m or _TITLE.match(text) or _ADDRESS_END.search(text[: m.start()]):
                continue
            if pattern is _LEGAL_FORM:
                name = _clean_name(company_name(text) or text[: m.end()])
            else:
                name = _clean_name(text)
            first = i
            if i > 0 and _continues(rows[i - 1], row) and not any(_name_like(r.text) for r in rows[: i - 1]):
                name, first = f"{_clean_name(rows[i - 1].text)} {name}", i - 1  # a name on two lines
            if _letters(name) >= 3:
                return first, i, name, conf
    return None


def _prominent(top: list[Row]) -> tuple[int, int, str, float] | None:
    """The first name-like line among the first four, in type about as large as the largest of them."""
    candidates = [(i, row) for i, row in enumerate(top) if _name_like(row.text)][:4]
    tallest = max((row.height for _, row in candidates if row.height is not None), default=0.0)
    for i, row in candidates:
        if row.height is None or row.height >= 0.8 * tallest:
            return i, i, _clean_name(_cells(row.text)[0]), 0.5
    return None


def _repair_name(text: str) -> str:
    return re.sub(r"\s{2,}", " ", text.strip())


def _cells(text: str) -> list[str]:
    """The cells of a row: its spans, or the parts of a text line split at wide gaps."""
    return [c for c in re.split(r"\s{2,}", text.strip()) if c]


def _continues(above: Row, row: Row) -> bool:
    """Whether `above` is the first half of a name continued on `row`: name-like, no legal form of its own,
    in type as large, right above it."""
    if not _name_like(above.text) or _LEGAL_FORM.search(above.text) or _REGISTRATION.match(above.text):
        return False
    if above.height is None or row.height is None or above.y1 is None or row.y0 is None:
        return False
    return above.height >= 0.7 * row.height and row.y0 - above.y1 < 0.6 * row.height


def _address(rows: list[Row], after: int) -> tuple[str, float] | None:
    """The lines under the store's name up to its phone / registration / document lines. Registration
    numbers and tax ids printed before the first address line are skipped."""
    parts: list[str] = []
    previous: Row | None = None
    skipped = 0
    for row in rows[after + 1 : after + 10]:
        text = _repair_name(row.text)
        if not parts:
            if _REGISTRATION.match(text) or _ADDRESS_END.search(text) or find_dates(text):
                continue  # "(123456-X)", "(GST Reg No. ...)", a date printed under the name
            if not re.search(r"\d", text) and skipped < 2:
                skipped += 1
                continue  # a second name under the name (legal, trading): addresses start with a number
        else:
            if _ADDRESS_END.search(text) or _REGISTRATION.match(text) or _TITLE.match(text):
                break
            if _PHONE.search(text):
                break
            if find_dates(text) or _AMOUNT.search(text):
                break
            if not _letters(text) and sum(c.isdigit() for c in text) >= 7:
                break  # a phone number printed without its label
            gap = _gap(previous, row)
            if gap is not None and gap > 1.5:
                break
        parts.append(text)
        previous = row
        if len(parts) == 6:
            break
    if not parts:
        return None
    joined = ""
    for part in parts:  # lines that end in a comma or a full stop need no separator of their own
        joined += part if not joined else (" " if joined[-1] in ",." else ", ") + part
    return clean_text(joined), 0.6


def _gap(above: Row | None, row: Row) -> float | None:
    """The blank space between two rows, in line heights."""
    if above is None or above.y1 is None or row.y0 is None or not row.height:
        return None
    return (row.y0 - above.y1) / row.height


# --- the total ---------------------------------------------------------------------------------------------

_TOTAL_LABEL = re.compile(
    r"\b(?:total|jumlah|amount\s+(?:due|payable)|nett?\s+(?:amount|sales|payable)|grand\s+total|"
    r"balance\s+due|to\s+pay)\b",
    re.I,
)
_NOT_TOTAL = re.compile(
    r"\bsub[\s-]*to\s?tal|\bsubtotal|\btotal\s*(?:qty|quantity|items?|item\s+count|no\.?\s+of|pcs|units?|"
    r"savings?|discounts?|disc|points?|weight|tender|count)|\b(?:excl(?:uding|usive|uded|\.)?|before|"
    r"w/o|without)\b|\btotal\s*(?:gst|tax|vat|sst)\b(?!\s*incl)|\b(?:cash|change|tendered|paid|"
    r"rounding|round\s+adj)",
    re.I,
)
_AMOUNT = re.compile(r"(?<![\d.,])(?:RM|MYR|\$)?\s?(-?\d{1,3}(?:,\d{3})+|-?\d+)[.,](\d{2})(?![\d%])")
_SUMMARY = re.compile(r"\b(?:gst|tax|vat)\s*(?:summary|analysis)\b", re.I)


def _amounts(text: str) -> list[Decimal]:
    text = text.replace(" . ", ".")
    found = []
    for m in _AMOUNT.finditer(text):
        whole = m.group(1).replace(",", "")
        found.append(Decimal(f"{whole}.{m.group(2)}"))
    return found


def _row_total(rows: list[Row]) -> tuple[Decimal, float, str | None] | None:
    """The largest amount written after a total label (on its row, else on the row under it), and the
    currency named on such a row; not a subtotal, a count, an amount before tax, cash tendered or change.
    Rows below a tax summary table are not read (its "Total" is the summary's)."""
    found: list[Decimal] = []
    currency: str | None = None
    for i, row in enumerate(rows):
        text = _repair(row.text)
        if _SUMMARY.search(text):
            break
        m = _TOTAL_LABEL.search(text)
        if not m or _NOT_TOTAL.search(text):
            continue
        amounts = [a for a in _amounts(text[m.end() :]) if a > 0]
        if not amounts and i + 1 < len(rows) and not _TOTAL_LABEL.search(rows[i + 1].text):
            amounts = [a for a in _amounts(_repair(rows[i + 1].text)) if a > 0][-1:]
        if amounts:
            found.append(amounts[-1])
            currency = currency or parse_currency(text)
    if not found:
        return None
    return max(found), 0.8, currency


# --- dates and currency ------------------------------------------------------------------------------------

_DATE_LABEL = label_pattern(r"date", r"tarikh", r"dated")
_NOT_DATE = re.compile(r"expir|valid|due|birth|print|deliver", re.I)
_MALAYSIAN = re.compile(r"\bRM\s?\d|\bMYR\b|\bringgit\b|\(RM\)|SDN\.?\s*BHD|\bBERHAD\b|\bS/B\b", re.I)


def _date(lines: Lines, day_first: bool) -> tuple[date, float] | None:
    labelled = first_value(lines.labelled(_DATE_LABEL), lambda t: _plausible(find_dates(t, day_first)))
    if labelled:
        return labelled
    for line in lines.lines:
        if _NOT_DATE.search(line):
            continue
        found = _plausible(find_dates(line, day_first))
        if found:
            return found, 0.6
    return _invoice_date(lines, day_first)


def _plausible(found: list[tuple[date, int, int]]) -> date | None:
    for value, _, _ in found:
        if 1990 <= value.year <= date.today().year + 1:
            return value
    return None


# --- the receipt ---------------------------------------------------------------------------------------


def extract_receipt(text: str, spans: list[Span] | None = None) -> tuple[Raw, Conf]:
    rows = rows_from_spans(spans) if spans else [Row(line) for line in Lines(text).lines]
    repaired = "\n".join(_repair(row.text) for row in rows)
    lines = Lines(repaired)
    raw: Raw = {}
    conf: Conf = {}
    store = _store(rows)
    by_row = _row_total(rows)
    total = by_row[:2] if by_row else None
    if total is None:
        labelled = _total(lines)
        if labelled is not None and labelled[0].marked:
            total = labelled[0].value, labelled[1] * 0.9
    if total is None and (paid := _cash_minus_change(lines)) is not None:
        total = paid, 0.6  # a till receipt: what was paid is cash tendered minus change
    currency = (by_row[2], 0.9) if by_row and by_row[2] else _currency(lines, None)
    if currency is None and _MALAYSIAN.search(repaired):
        currency = "MYR", 0.5  # ringgit amounts or a Malaysian company form (Sdn Bhd, Berhad)
    day_first = _day_first(repaired, currency)
    found = {
        "store_name": store[2:] if store else None,
        "date": _date(lines, day_first),
        "total": total,
        "currency": currency,
        "address": _address(rows, store[1]) if store else None,
        "payment_method": first_value(
            lines.labelled(label_pattern(r"payment\s+(?:method|mode|type)", r"paid\s+(?:by|with|via)")),
            lambda t: clean_text(t) or None,
        ),
        "items": (line_items(lines) or None, 0.6),
    }
    for name, value in found.items():
        if value is not None and value[0] is not None:
            raw[name], conf[name] = value
    return raw, conf
