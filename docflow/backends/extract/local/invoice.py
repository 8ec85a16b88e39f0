"""Invoices and receipts: number, dates, totals, currency, tax, issuer, line items."""

import re
from datetime import date
from decimal import Decimal
from typing import Any

from docflow.backends.extract.local.lines import (
    Conf,
    Lines,
    Money,
    Raw,
    best_money,
    find_money,
    first_value,
    label_pattern,
)
from docflow.backends.extract.local.parties import find_vendor
from docflow.backends.extract.normalize import (
    clean_text,
    find_dates,
    parse_amount,
    parse_currency,
    parse_date,
    parse_percent,
)

_INVOICE_NUMBER = label_pattern(
    r"invoice\s*(?:number|no\.?|nr\.?|num\.?|#|n°|id)",
    r"(?:tax\s+)?invoice\s+no",
    r"bill\s*(?:number|no\.?|#)",
    r"receipt\s*(?:number|no\.?|#)",
    r"factuurnummer",
    r"facture\s*(?:n°|no|num[ée]ro)",
    r"num[ée]ro\s+de\s+facture",
    r"rechnungs?-?\s*(?:nr\.?|nummer|no\.?)",
    r"faktura\s*(?:vat\s*)?(?:nr|numer)\.?",
    r"factura\s*(?:n[º°o]\.?|n[úu]mero)",
    r"fattura\s*(?:n\.?|numero)",
)
_INVOICE_WORD = re.compile(r"^(?:invoice|facture|factuur|rechnung|faktura|factura|fattura)\s+(\S+)$", re.I)
_HASH_NUMBER = re.compile(r"^#\s*(\S+)$")
_ID_TOKEN = re.compile(r"^[#:№°\s]*([A-Z0-9][A-Z0-9_\-/.]*\d[A-Z0-9_\-/]*|\d[A-Z0-9_\-/]*)", re.I)

_INVOICE_DATE = [
    label_pattern(
        r"invoice\s+date",
        r"date\s+of\s+(?:issue|invoice)",
        r"issue\s+date",
        r"issued\s+on",
        r"date\s+issued",
        r"billing\s+date",
        r"factuurdatum",
        r"rechnungsdatum",
        r"date\s+de\s+(?:la\s+)?facture",
        r"data\s+wystawienia",
        r"fecha\s+de\s+(?:emisi[óo]n|factura)",
        r"data\s+(?:fattura|emissione)",
    ),
    re.compile(r"(?:^|(?<=\s))(?:date|datum|data|fecha)\s*[:\-—]|^(?:date|datum)$", re.I),
    label_pattern(r"payment\s+date", r"date\s+of\s+sale", r"order\s+date"),
]
_DUE_DATE = label_pattern(
    r"due\s+date",
    r"date\s+due",
    r"payment\s+due(?:\s+date)?",
    r"due\s+on",
    r"date\s+limite\s+de\s+paiement",
    r"[ée]ch[ée]ance",
    r"f[äa]llig(?:keitsdatum|\s+am)?",
    r"zahlbar\s+bis",
    r"vervaldatum",
    r"termin\s+p[łl]atno[śs]ci",
    r"fecha\s+de\s+vencimiento",
)
_TOTAL_STRONG = label_pattern(
    r"grand\s+total",
    r"total\s+amount(?:\s+due)?",
    r"total\s+due",
    r"total\s+(?:to\s+pay|payable)",
    r"amount\s+payable",
    r"invoice\s+(?:total|amount)",
    r"total\s+ttc",
    r"montant\s+ttc",
    r"net\s+[àa]\s+payer",
    r"somme\s+[àa]\s+payer",
    r"total\s+(?:incl\.?|including|inc\.?)(?:\s+(?:vat|tax|btw|gst))?",
    r"total\s+in\s+[A-Z]{3}",
    r"total\s+at\s+checkout",
    r"gesamtbetrag",
    r"rechnungsbetrag",
    r"endbetrag",
    r"bruttobetrag",
    r"summe\s+brutto",
    r"gesamtsumme",
    r"totaal\s+(?:incl\.?|te\s+betalen)",
    r"te\s+betalen",
    r"nale[żz]no[śs][ćc](?:\s+og[óo][łl]em)?",
    r"do\s+zap[łl]aty",
    r"importe\s+total",
    r"totale\s+fattura",
)
_TOTAL_PLAIN = label_pattern(
    r"total(?!\s*(?:ht|net|excl|hors|before|w/o|without|\(?excl|qty|quantity|items?|units|pcs|savings|discount|"
    r"tax|gst|vat|sales\s*\(?excl))",
    r"totaal(?!\s*excl)",
    r"summe",
    r"razem",
)
_TOTAL_DUE = label_pattern(r"amount\s+due", r"balance\s+due", r"balance", r"montant\s+du", r"[àa]\s+payer")
_SUBTOTAL = label_pattern(
    r"sub-?\s?total",
    r"subtotaal",
    r"net\s+amount",
    r"total\s+(?:net|ht|excl\.?(?:\s+(?:vat|tax))?)",
    r"zwischensumme",
    r"gesamtnetto",
    r"nettobetrag",
    r"exclusief\s+btw",
)
_TAX_WORD = re.compile(
    r"\b(?:vat|tva|btw|mwst|ust|iva|gst|hst|pst|tax|taxes|steuer|podatek|moms|alv)\b", re.I
)
_TAX_NOT = re.compile(
    r"\b(?:number|no\.?|nr|id|reg(?:istration)?|identification|ust-?id(?:nr)?|incl\.?|including|excl\.?|"
    r"total|subtotal|before|invoice|estimated|applicable|registered|account)\b|[A-Z]{2}\s?\d{6,}",
    re.I,
)
_REVERSE_CHARGE = re.compile(
    r"reverse[\s-]charge|autoliquidation|steuerschuldnerschaft|odwrotne\s+obci|verlegd|inversi[óo]n\s+del\s+sujeto",
    re.I,
)
_CURRENCY_LABEL = label_pattern(
    r"currency", r"payment\s+currency", r"devise", r"w[äa]hrung", r"waluta", r"valuta", r"moneda"
)


def extract_invoice(text: str) -> tuple[Raw, Conf]:
    lines = Lines(text)
    raw: Raw = {}
    conf: Conf = {}

    def put(name: str, found: tuple[Any, float] | None) -> None:
        if found is not None and name not in raw:
            raw[name], conf[name] = found

    put("invoice_number", _invoice_number(lines))
    put("vendor_name", find_vendor(lines))
    total = _total(lines)
    currency = _currency(lines, total)
    put("currency", currency)
    total = _total_in_currency(lines, total, currency)
    day_first = _day_first(text, currency)
    put("invoice_date", _invoice_date(lines, day_first))
    put("due_date", first_value(lines.labelled(_DUE_DATE), lambda t: parse_date(t, day_first)))
    if total is not None:
        put("total_amount", (total[0].value, total[1]))
    tax_rate, tax_amount = _tax(lines, text, raw.get("total_amount"))
    put("tax_rate", tax_rate)
    put("tax_amount", tax_amount)
    items = line_items(lines)
    if items:
        put("line_items", (items, 0.6))
        no_tax_line = not any(_TAX_WORD.search(ln) for ln in lines.lines)
        if no_tax_line and raw.get("total_amount") == sum(item["amount"] for item in items):
            put("tax_rate", (Decimal(0), 0.5))  # items add up to the total and no tax is mentioned
    return raw, conf


_CASH = label_pattern(r"cash(?!\s*(?:back|out))", r"tunai", r"tendered")
_CHANGE = label_pattern(r"change(?:\s+due)?", r"kembali", r"baki")


def _cash_minus_change(lines: Lines) -> Decimal | None:
    """Cash tendered minus change given, when a till receipt prints both."""
    amount = lambda t: (m := best_money(t)) and m.value  # noqa: E731
    cash = first_value(lines.labelled(_CASH), amount)
    change = first_value(lines.labelled(_CHANGE), amount)
    if cash is None or change is None or not 0 <= change[0] < cash[0]:
        return None
    return cash[0] - change[0]


def _invoice_number(lines: Lines) -> tuple[str, float] | None:
    def token(text: str) -> str | None:
        m = _ID_TOKEN.match(text)
        return m.group(1).rstrip(".-/") if m and len(m.group(1)) >= 3 else None

    found = first_value(lines.labelled(_INVOICE_NUMBER), token)
    if found:
        return found
    for line in lines.lines[:15]:
        m = _INVOICE_WORD.match(line) or _HASH_NUMBER.match(line)
        if m and any(c.isdigit() for c in m.group(1)):
            return m.group(1), 0.6
    return None


_NUMERIC_DATE = re.compile(r"(?<![\d.,/])([0-3]?\d)([/-])([0-3]?\d)\2(?:19|20)?\d{2}(?![\d/])")


def _day_first(text: str, currency: tuple[str, float] | None) -> bool:
    """Whether the document writes numeric dates day first: as its unambiguous dates do ("31/12/2017" and
    not "12/31/2017"), else month first only for US dollars."""
    day, month = 0, 0
    for m in _NUMERIC_DATE.finditer(text):
        a, b = int(m.group(1)), int(m.group(3))
        day += a > 12 >= b > 0
        month += b > 12 >= a > 0
    if day != month and not (day and month):
        return day > month
    return currency is None or currency[0] != "USD"


def _invoice_date(lines: Lines, day_first: bool) -> tuple[date, float] | None:
    for label in _INVOICE_DATE:
        found = first_value(lines.labelled(label), lambda t: parse_date(t, day_first))
        if found:
            return found
    for line in lines.lines:  # "Invoice no. 123 of 2 July 2015"
        if _INVOICE_NUMBER.search(line) and (d := parse_date(line, day_first)):
            return d, 0.7
    return _unlabelled_date(lines, day_first)


# words of the labels of the other dates of an invoice: delivery, service period, due, order, stay, print...
_OTHER_DATE = re.compile(
    r"deliver|liefer|leistung|versand|ship|dispatch|due\b|f[äa]llig|zahlbar|payable|period|zeitraum|"
    r"check[\s-]?(?:in|out)|arrival|departure|order|bestell|birth|valid|expir|livraison|p[ée]riode|"
    r"[ée]ch[ée]ance|dostaw|sprzeda|vencimiento|entrega|start|end\b|from\b|until\b|since\b|bis\b|print",
    re.I,
)
# the place before the date of a letter-style date line: "Berlin, den", "Paris, le", "Reichenschwand"
_PLACE = re.compile(
    r"[^\W\d_][\w.'’\-]*(?:\s[^\W\d_][\w.'’\-]*){0,3},?(?:\s+(?:den|le|am|on|the|dnia|dn\.|el|il))?"
)
_RANGE = re.compile(r"^\s*(?:[-–—]|to|bis|au|until|till|do|al)\s*$", re.I)


def _unlabelled_date(lines: Lines, day_first: bool) -> tuple[date, float] | None:
    """The issue date when no label names it, in order of the cues:

    1. a date line of the header, on its own or after a place ("Reichenschwand 04.07.2023"), 0.55;
    2. the first date not labelled as another date (delivery, period, due...) nor part of a range, 0.45;
    3. the first date of the document, 0.4.
    """
    dated = [(i, line, find_dates(line, day_first)) for i, line in enumerate(lines.lines)]
    dated = [(i, line, found) for i, line, found in dated if found]
    head = max(25, len(lines.lines) // 2)
    for i, line, found in dated:
        if i >= head or len(found) != 1 or line[found[0][2] :].strip(" .,;"):
            continue
        before = line[: found[0][1]].strip()
        previous = lines.lines[i - 1] if i else ""
        if before and (_OTHER_DATE.search(before) or not _PLACE.fullmatch(before)):
            continue
        if not before and _OTHER_DATE.search(previous) and not any(c.isdigit() for c in previous):
            continue  # the value of the label above it
        return found[0][0], 0.55
    for _, line, found in dated:
        if _OTHER_DATE.search(line[: found[0][1]]):
            continue
        if len(found) > 1 and _RANGE.match(line[found[0][2] : found[1][1]]):
            continue
        return found[0][0], 0.45
    return (dated[0][2][0][0], 0.4) if dated else None


def _total(lines: Lines) -> tuple[Money, float] | None:
    fallback: tuple[Money, float] | None = None
    for label in (_TOTAL_STRONG, _TOTAL_PLAIN, _TOTAL_DUE):
        for text, conf in lines.labelled(label, skip=lambda ln: bool(_SUBTOTAL.search(ln))):
            money = best_money(text)
            if money is None:
                continue
            if money.value != 0:
                return money, conf
            fallback = fallback or (money, conf * 0.6)
    return fallback


def _total_in_currency(
    lines: Lines, total: tuple[Money, float] | None, currency: tuple[str, float] | None
) -> tuple[Money, float] | None:
    """A total printed in several currencies side by side under a row of their codes ("USD  EUR"): the
    amount in the column of the document's own currency rather than the last one (a reference conversion)."""
    if total is None or currency is None or total[0].currency:
        return total
    for i, line in enumerate(lines.lines):
        codes = re.findall(r"\b[A-Z]{3}\b", line)
        if len(codes) < 2 or re.sub(r"\b[A-Z]{3}\b|\s", "", line) or currency[0] not in codes:
            continue
        if any(parse_currency(code) != code for code in codes):
            continue
        for row in lines.lines[i + 1 :]:
            if _SUBTOTAL.search(row) or not any(
                p.search(row) for p in (_TOTAL_STRONG, _TOTAL_PLAIN, _TOTAL_DUE)
            ):
                continue
            money = find_money(row)
            if len(money) == len(codes):
                return Money(money[codes.index(currency[0])].value, None, True), total[1]
            break
    return total


def _subtotal(lines: Lines) -> Decimal | None:
    found = first_value(lines.labelled(_SUBTOTAL), lambda t: (m := best_money(t)) and m.value)
    return found[0] if found else None


def _currency(lines: Lines, total: tuple[Money, float] | None) -> tuple[str, float] | None:
    if total and total[0].currency:
        return total[0].currency, 0.9
    labelled = first_value(lines.labelled(_CURRENCY_LABEL), parse_currency)
    if labelled:
        return labelled
    counts: dict[str, int] = {}
    for line in lines.lines:
        for money in find_money(line):
            if money.currency:
                counts[money.currency] = counts.get(money.currency, 0) + 1
    if counts:
        return max(counts, key=lambda c: counts[c]), 0.6
    return None


def _tax(lines: Lines, text: str, total: Decimal | None) -> tuple[tuple[Decimal, float] | None, ...]:
    """(tax_rate, tax_amount) from the tax line; a zero rate when no tax is charged."""
    rate: tuple[Decimal, float] | None = None
    amount: tuple[Decimal, float] | None = None
    candidates = [ln for ln in lines.lines if _TAX_WORD.search(ln) and not _TAX_NOT.search(ln)]
    candidates.sort(key=lambda ln: parse_percent(ln) is None)  # lines with a rate first (stable)
    for line in candidates:
        word = _TAX_WORD.search(line)
        after_word = line[word.start() :] if word else line
        percent = parse_percent(line)
        money = [m for m in find_money(after_word) if m.marked]
        if percent is None and not money:
            continue
        if money:
            amount = (money[-1].value, 0.8)
        if percent is not None:
            rate = (Decimal(0), 0.7) if amount and amount[0] == 0 else (percent, 0.85)
        elif amount and amount[0] == 0:
            rate = (Decimal(0), 0.5)
        break
    if rate is None and _REVERSE_CHARGE.search(text):
        rate = (Decimal(0), 0.6)
    if rate is None and total is not None and _subtotal(lines) == total:
        rate = (Decimal(0), 0.5)
    return rate, amount


_ITEM_ROW = re.compile(
    r"^(?P<desc>[^\W\d].*?)\s+(?P<qty>\d+(?:[.,]\d+)?)\s*(?:[x×@]\s+|[A-Za-z.]{1,6}\s+)?"
    r"(?P<unit>[€$£]?\s?-?\d[\d.,]*(?:\s?€)?)\s+(?:\d{1,2}(?:[.,]\d+)?\s?%\s+)?"
    r"(?P<amount>[€$£]?\s?-?\d[\d.,]*(?:\s?€)?)$"
)


def line_items(lines: Lines) -> list[dict[str, Any]]:
    """Rows "description quantity unit-price [rate%] amount" whose quantity x unit price gives the amount."""
    items = []
    for line in lines.lines:
        m = _ITEM_ROW.match(line)
        if not m:
            continue
        qty, unit, amount = (parse_amount(m.group(g)) for g in ("qty", "unit", "amount"))
        if qty is None or unit is None or amount is None or qty == 0:
            continue
        if abs(qty * unit - amount) <= max(Decimal("0.01"), abs(amount) * Decimal("0.01")):
            items.append(
                {
                    "description": clean_text(m.group("desc")),
                    "quantity": qty,
                    "unit_price": unit,
                    "amount": amount,
                }
            )
    return items


# ======================================================================================================
