"""Local field extraction: declarative per-issuer templates first, then label/value heuristics.

No model, no network. Heuristics read the plain text line by line: a label ("Invoice number:", "Total",
"Due date", ...) followed by its value on the same line, on the next line, or in a column of values printed
next to a column of labels. Values go through `normalize` and are validated by the type's schema;
validation errors are recorded in `Extraction.validation_errors`, never raised.

`fields` is the schema's JSON dump: dates as ISO strings, amounts and rates as JSON numbers (floats).
`field_confidence`: 0.95 template match, 0.9 labelled value on the same line, 0.85 value from a column of
values, 0.8 value on the next line, 0.4-0.7 inferred or guessed values.
"""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

import yaml

from docflow.backends.extract.normalize import (
    clean_text,
    find_dates,
    parse_amount,
    parse_currency,
    parse_date,
    parse_percent,
)
from docflow.errors import ConfigError
from docflow.models import Classification, Extraction, ParsedDocument
from docflow.schemas import get_schema, validate_fields
from docflow.settings import Settings, data_dir

Raw = dict[str, Any]
Conf = dict[str, float]

# ======================================================================================================
# Lines, labels and values
# ======================================================================================================

_LABEL_ONLY = re.compile(r"^[^\d:]{1,40}:$")


def _is_label_only(line: str) -> bool:
    return bool(_LABEL_ONLY.match(line)) and len(line.split()) <= 5


def _is_value(line: str) -> bool:
    return ":" not in line and (any(c.isdigit() for c in line) or len(line.split()) <= 3)


class Lines:
    """The non-empty lines of a document, with values paired to columns of labels."""

    def __init__(self, text: str) -> None:
        self.lines = [ln.strip() for ln in text.replace("|", "  ").splitlines() if ln.strip()]
        self.column_values = self._pair_columns()

    def _pair_columns(self) -> dict[int, str]:
        """Pair a run of label-only lines ("Date:", "Total:") with as many value lines after or before it."""
        pairs: dict[int, str] = {}
        i, n = 0, len(self.lines)
        while i < n:
            j = i
            while j < n and _is_label_only(self.lines[j]):
                j += 1
            k = j - i
            if k >= 2:
                after, before = self.lines[j : j + k], self.lines[max(0, i - k) : i]
                for values in (after, before):
                    if len(values) == k and all(_is_value(v) for v in values):
                        pairs.update({i + t: values[t] for t in range(k)})
                        break
            i = max(j, i + 1)
        return pairs

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


def _label(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?:(?<=\W)|(?!\w))", re.I)


def _first(candidates: Iterable[tuple[str, float]], parse: Callable[[str], Any]) -> tuple[Any, float] | None:
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


# ======================================================================================================
# Templates (invoice2data-like): issuer keywords + one regex per field
# ======================================================================================================


@dataclass
class Template:
    name: str
    keywords: list[str]
    fields: dict[str, str]
    issuer: str | None = None
    doc_types: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def matches(self, text: str, doc_type: str) -> bool:
        if self.doc_types and doc_type not in self.doc_types:
            return False
        return all(re.search(k, text, re.I | re.M) for k in self.keywords)


def load_templates(folder: Path) -> list[Template]:
    """Every `*.yaml`/`*.yml` template in `folder` (sorted by file name); a broken one raises ConfigError."""
    templates = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []:
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for regex in [*spec.get("keywords", []), *spec.get("fields", {}).values()]:
                re.compile(regex)
            templates.append(
                Template(
                    name=path.stem,
                    keywords=list(spec["keywords"]),
                    fields=dict(spec.get("fields", {})),
                    issuer=spec.get("issuer"),
                    doc_types=list(spec.get("doc_types", [])),
                    options=dict(spec.get("options", {})),
                )
            )
        except (KeyError, TypeError, yaml.YAMLError, re.error) as exc:
            raise ConfigError(f"bad extraction template {path}: {exc}") from exc
    return templates


# ======================================================================================================
# The extractor
# ======================================================================================================


class LocalExtractor:
    """Heuristic extraction of the fields of each document type; see the module docstring."""

    name = "local/heuristics"

    def __init__(self, templates: list[Template] | None = None) -> None:
        self.templates = templates or []

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(load_templates(data_dir() / "templates"))

    def extract(self, parsed: ParsedDocument, classification: Classification) -> Extraction:
        doc_type = classification.doc_type
        schema = get_schema(doc_type)
        text = _document_text(parsed)
        raw, conf = self._heuristics(doc_type, text)
        for template in self.templates:
            if template.matches(text, doc_type):
                t_raw, t_conf = apply_template(template, text, doc_type)
                raw.update(t_raw)
                conf.update(t_conf)
                break
        fields, errors = validate_fields(schema, raw)
        return Extraction(
            doc_type=doc_type,
            schema_name=schema.__name__,
            schema_version=schema.schema_version,
            fields=fields,
            field_confidence={k: v for k, v in conf.items() if k in fields},
            validation_errors=errors,
            backend=self.name,
        )

    def _heuristics(self, doc_type: str, text: str) -> tuple[Raw, Conf]:
        extractors: dict[str, Callable[[str], tuple[Raw, Conf]]] = {
            "invoice": extract_invoice,
            "receipt": extract_receipt,
            "contract": extract_contract,
            "resume": extract_resume,
            "financial_statement": extract_financial,
        }
        return extractors.get(doc_type, extract_key_values)(text)


def _document_text(parsed: ParsedDocument) -> str:
    if parsed.text.strip():
        return parsed.text
    md = re.sub(r"^\s*\|?\s*:?-{3,}.*$", "", parsed.markdown, flags=re.M)  # table rules
    return re.sub(r"[*_`]{1,3}|^#{1,6}\s+", "", md, flags=re.M)


# --- templates -----------------------------------------------------------------------------------------

_AMOUNT_FIELDS = {"total_amount", "tax_amount", "total"}
_DATE_FIELDS = {"invoice_date", "due_date", "date", "agreement_date", "effective_date"}


def apply_template(template: Template, text: str, doc_type: str) -> tuple[Raw, Conf]:
    raw: Raw = {}
    day_first = bool(template.options.get("day_first", True))
    if template.issuer:
        raw["store_name" if doc_type == "receipt" else "vendor_name"] = template.issuer
    if template.options.get("currency"):
        raw["currency"] = template.options["currency"]
    for name, regex in template.fields.items():
        m = re.search(regex, text, re.I | re.M)
        if m:
            value = m.group(1) if m.groups() else m.group()
            raw[name] = _convert(name, value, day_first)
    return raw, dict.fromkeys(raw, 0.95)


def _convert(name: str, value: str, day_first: bool) -> Any:
    """Typed value for a template capture; unparseable captures stay raw so validation reports them."""
    converted: Any = None
    if name in _AMOUNT_FIELDS:
        converted = parse_amount(value)
    elif name in _DATE_FIELDS:
        converted = parse_date(value, day_first=day_first)
    elif name == "currency":
        converted = value.strip() if re.fullmatch(r"\s*[A-Za-z]{3}\s*", value) else parse_currency(value)
    elif name == "tax_rate":
        converted = parse_percent(value) or parse_amount(value)
    return converted if converted is not None else clean_text(value)


# ======================================================================================================
# Invoices and receipts
# ======================================================================================================

_INVOICE_NUMBER = _label(
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
    _label(
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
    _label(r"payment\s+date", r"date\s+of\s+sale", r"order\s+date"),
]
_DUE_DATE = _label(
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
_TOTAL_STRONG = _label(
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
_TOTAL_PLAIN = _label(
    r"total(?!\s*(?:ht|net|excl|hors|before|w/o|without|\(?excl))", r"totaal(?!\s*excl)", r"summe", r"razem"
)
_TOTAL_DUE = _label(r"amount\s+due", r"balance\s+due", r"balance", r"montant\s+du", r"[àa]\s+payer")
_SUBTOTAL = _label(
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
_CURRENCY_LABEL = _label(
    r"currency", r"payment\s+currency", r"devise", r"w[äa]hrung", r"waluta", r"valuta", r"moneda"
)

_LEGAL = (
    r"(?:Inc|Incorporated|INC|Ltd|LTD|Limited|LIMITED|LLC|L\.L\.C|LLP|LP|L\.P|PLC|plc|"
    r"GmbH(?:\s*&\s*Co\.?\s*KG(?:aA)?)?|AG|KG|SE|B\.\s?V|BV|N\.\s?V|NV|S\.A\.S|SAS|S\.\s?A|SA|SARL|S\.?à\s?r\.?l|"
    r"S\.r\.l|Srl|S\.p\.A|SpA|Sp\.\s?z\s?o\.\s?o|sp\.\s?z\s?o\.\s?o|Oy|AB|AS|A/S|ApS|Pty(?:\s+Ltd)?|"
    r"Pvt\.?\s+Ltd|Private\s+Limited|Corp|Corporation|CORPORATION|Co|Company|COMPANY|S\.L|SL|K\.K)\.?"
)
_COMPANY = re.compile(rf"^(?P<name>[A-Z0-9][^:@]{{0,60}}?[\s,]+{_LEGAL}(?:[\s,]+{_LEGAL})*)(?=$|[\s,;.()])")
_SEGMENT_CUT = re.compile(r"\s+[–—•|·]\s+|\s{2,}|\t| - ")
_VENDOR_LABEL = _label(
    r"seller",
    r"vendor",
    r"supplier",
    r"service\s+provider",
    r"provided\s+by",
    r"issued\s+by",
    r"sold\s+by",
    r"bill\s+from",
    r"from:",
    r"sprzedawca",
    r"verk[äa]ufer",
    r"lieferant",
    r"vendeur",
    r"fournisseur",
    r"leverancier",
    r"proveedor",
    r"fornitore",
)
_BUYER_LABEL = _label(
    r"bill(?:ed)?\s+to",
    r"invoice\s+to",
    r"sold\s+to",
    r"ship(?:ped)?\s+to",
    r"deliver(?:ed)?\s+to",
    r"customer",
    r"client",
    r"buyer",
    r"nabywca",
    r"rechnungsempf[äa]nger",
    r"destinataire",
    r"factur[ée]\s+[àa]",
    r"factureren\s+aan",
    r"cliente",
)
_ACCOUNT_HOLDER = _label(
    r"titulaire\s+du\s+compte", r"account\s+holder", r"account\s+name", r"beneficiary", r"kontoinhaber"
)
_TITLE_LINE = re.compile(
    r"^(?:tax\s+)?(?:invoice|facture|factuur|rechnung|faktura|factura|fattura|receipt|payment\s+receipt|"
    r"quittung|bill|statement|credit\s+note)\b",
    re.I,
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
    day_first = currency is None or currency[0] != "USD"
    put("invoice_date", _invoice_date(lines, day_first))
    put("due_date", _first(lines.labelled(_DUE_DATE), lambda t: parse_date(t, day_first)))
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


def extract_receipt(text: str) -> tuple[Raw, Conf]:
    lines = Lines(text)
    raw: Raw = {}
    conf: Conf = {}
    vendor = find_vendor(lines)
    total = _total(lines)
    currency = _currency(lines, total)
    day_first = currency is None or currency[0] != "USD"
    found = {
        "store_name": vendor,
        "date": _invoice_date(lines, day_first),
        "total": (total[0].value, total[1]) if total else None,
        "currency": currency,
        "address": _address_after(lines, vendor[0]) if vendor else None,
        "payment_method": _first(
            lines.labelled(_label(r"payment\s+(?:method|mode|type)", r"paid\s+(?:by|with|via)")),
            lambda t: clean_text(t) or None,
        ),
        "items": (line_items(lines) or None, 0.6),
    }
    for name, value in found.items():
        if value is not None and value[0] is not None:
            raw[name], conf[name] = value
    return raw, conf


def _invoice_number(lines: Lines) -> tuple[str, float] | None:
    def token(text: str) -> str | None:
        m = _ID_TOKEN.match(text)
        return m.group(1).rstrip(".-/") if m and len(m.group(1)) >= 3 else None

    found = _first(lines.labelled(_INVOICE_NUMBER), token)
    if found:
        return found
    for line in lines.lines[:15]:
        m = _INVOICE_WORD.match(line) or _HASH_NUMBER.match(line)
        if m and any(c.isdigit() for c in m.group(1)):
            return m.group(1), 0.6
    return None


def _invoice_date(lines: Lines, day_first: bool) -> tuple[date, float] | None:
    for label in _INVOICE_DATE:
        found = _first(lines.labelled(label), lambda t: parse_date(t, day_first))
        if found:
            return found
    for line in lines.lines:  # "Invoice no. 123 of 2 July 2015", then the first date of the document
        if _INVOICE_NUMBER.search(line) and (d := parse_date(line, day_first)):
            return d, 0.7
    first = parse_date("\n".join(lines.lines), day_first)
    return (first, 0.4) if first else None


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


def _subtotal(lines: Lines) -> Decimal | None:
    found = _first(lines.labelled(_SUBTOTAL), lambda t: (m := best_money(t)) and m.value)
    return found[0] if found else None


def _currency(lines: Lines, total: tuple[Money, float] | None) -> tuple[str, float] | None:
    if total and total[0].currency:
        return total[0].currency, 0.9
    labelled = _first(lines.labelled(_CURRENCY_LABEL), parse_currency)
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


def find_vendor(lines: Lines) -> tuple[str, float] | None:
    """The issuer: a labelled seller, else the first company-looking line outside the buyer block."""
    buyer_lines: set[int] = set()
    for i, line in enumerate(lines.lines):
        if _BUYER_LABEL.search(line) and len(line.split()) <= 6:
            buyer_lines.update(range(i, i + 7))
    for i, line in enumerate(lines.lines):
        m = _VENDOR_LABEL.search(line)
        if not m or _BUYER_LABEL.search(line):
            continue
        rest = line[m.end() :].strip(" :")
        following = [rest] if rest else lines.lines[i + 1 : i + 4]
        for candidate in following:
            name = _company_name(candidate) or _plain_name(candidate)
            if name:
                return name, 0.9
    for i, line in enumerate(lines.lines):
        name = _company_name(line)
        if name and i not in buyer_lines:
            return name, 0.7
    holder = _first(lines.labelled(_ACCOUNT_HOLDER), _plain_name)
    if holder:
        return holder[0], 0.6
    for line in lines.lines[:4]:
        if not _TITLE_LINE.match(line) and (name := _plain_name(line)) and len(name.split()) <= 4:
            return name, 0.3
    return None


def _company_name(line: str) -> str | None:
    for segment in _SEGMENT_CUT.split(line.strip()):
        m = _COMPANY.match(segment.strip())
        if m and len(m.group("name").split()) <= 8:
            return clean_text(m.group("name"))
    return None


def _plain_name(line: str) -> str | None:
    """A line that reads like a name: starts with a letter, no parentheses, not a sentence."""
    segment = _SEGMENT_CUT.split(line.strip())[0]
    if not segment or not segment[0].isalpha() or segment.startswith("(") or "@" in segment:
        return None
    if len(segment.split()) > 6 or ":" in segment or sum(c.isdigit() for c in segment) > 2:
        return None
    return clean_text(segment)


def _address_after(lines: Lines, name: str) -> tuple[str, float] | None:
    for i, line in enumerate(lines.lines):
        if name in line:
            parts = []
            for nxt in lines.lines[i + 1 : i + 5]:
                if re.search(r"tel|phone|fax|@|www\.|http|vat|gst|reg|invoice|receipt|date", nxt, re.I):
                    break
                parts.append(nxt)
            return (", ".join(parts), 0.5) if parts else None
    return None


_ITEM_ROW = re.compile(
    r"^(?P<desc>[^\W\d].*?)\s+(?P<qty>\d+(?:[.,]\d+)?)\s*(?:x\s+|[A-Za-z.]{1,6}\s+)?"
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
# Contracts
# ======================================================================================================

_ABBREVIATIONS = set(
    [
        "inc",
        "ltd",
        "co",
        "corp",
        "no",
        "nos",
        "sec",
        "l.p",
        "u.s",
        "s.a",
        "mr",
        "ms",
        "mrs",
        "dr",
        "st",
        "e.g",
        "i.e",
        "art",
        "arts",
        "v",
        "vs",
        "n.a",
        "l.l.c",
        "b.v",
        "n.v",
        "p.c",
        "jr",
        "sr",
        "etc",
        "p",
        "pp",
        "para",
    ]
)
_SENTENCE_END = re.compile(
    r"(?<=[.!?])[\"”’)]?\s+(?=[A-Z0-9“\"(\[])|\s(?=(?:Section|SECTION|Article|ARTICLE)\s+[\dIVX]+(?:\.\d+)*\.?\s+[A-Z])"
)
_HEADING_PREFIX = re.compile(
    r"^(?:(?:section|article)\s+)?[\dIVX]+(?:\.\d+)*\.?\s+|^[A-Z][A-Z0-9;,&/'’\- ]{2,}?\s+(?=[A-Z][a-z])"
)
_DEFINED_GENERIC = {
    "party",
    "parties",
    "agreement",
    "effective date",
    "this agreement",
    "term",
    "initial term",
}


def sentences(text: str) -> list[str]:
    """Split running text into sentences, keeping abbreviations such as "Inc." and "L.P." inside.

    A bare section number ("8.", "14.2") is kept with the sentence after it, where `_clause` strips it.
    """
    flat = re.sub(r"\s+", " ", text.replace("\u00ad", "")).strip()
    pieces: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(flat):
        last_word = flat[start : m.start()].rsplit(" ", 1)[-1].rstrip(".").lower()
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
            continue
        pieces.append(flat[start : m.start()].strip())
        start = m.end()
    pieces.append(flat[start:].strip())
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        if re.fullmatch(r"(?:(?:section|article)\s+)?[\dIVX]+(?:\.\d+)*\.?", piece, re.I):
            carry += piece + " "
            continue
        merged.append(carry + piece)
        carry = ""
    return [p for p in merged if len(p) > 2]


def _clause(sentence: str) -> str:
    """A sentence as a clause: heading numbers/titles removed, straight quotes."""
    for _ in range(3):
        stripped = _HEADING_PREFIX.sub("", sentence, count=1)
        if stripped == sentence:
            break
        sentence = stripped
    return sentence.replace("“", '"').replace("”", '"').replace("’", "'").strip()


_EXPIRY_SIGNALS = [
    (r"\bterm of this agreement\b", 3),
    (r"\binitial term\b", 2),
    (r"\b(?:shall|will)\s+(?:expire|terminate)\s+(?:on|upon|at)\b", 3),
    (
        r"\b(?:shall|will)\s+(?:continue|remain)\s+"
        r"(?:(?:to\s+be\s+)?in\s+(?:full\s+)?(?:force|effect)|until|for|through)\b",
        2,
    ),
    (
        r"\b(?:this|the) agreement (?:shall|will) "
        r"(?:continue|remain|expire|terminate|commence|become effective|be valid)",
        2,
    ),
    (r"\bin perpetuity\b|\bperpetual\b", 2),
    (r"\b(?:shall|will)\s+(?:commence|become effective|be effective)\b", 1),
    (r"\b(?:years?|months?)\b", 1),
    (r"^[\"“][^\"”]{1,80}[\"”]\s+(?:means|shall mean)\b", -3),
    (r"\bgoverned by\b|\bnotice\b|\bupon (?:any )?(?:such )?termination\b|\bright to terminate\b", -3),
]
_LAW_SIGNALS = [
    (r"\bgoverned\s+(?:in all respects\s+)?by\b", 2),
    (r"\bconstrued\b|\binterpreted\b", 1),
    (r"\blaws?\s+of\b", 2),
    (r"\bin\s+accordance\s+with\s+the\s+(?:\w+\s+)?laws?\b", 1),
    (r"\bjurisdiction\b|\bvenue\b|\barbitration\b", -1),
]
_DATED = re.compile(
    r"\b(?:dated|made\s+and\s+entered\s+into|entered\s+into|made|executed|concluded|signed|effective)\b"
    r"(?:\s+(?:as\s+of|on|this|the|at|and))*\s*",
    re.I,
)
_EFFECTIVE = re.compile(
    r"\beffective\s+(?:as\s+of|on|from)\s+|[\"“]effective\s+date[\"”]\s*(?:means|shall\s+mean)\s+", re.I
)
_BETWEEN = re.compile(r"\b(?:by\s+and\s+)?(?:between|among)\b", re.I)
_PREAMBLE_END = re.compile(r"\bWHEREAS\b|\bWITNESSETH\b|\bRECITALS?\b|\bNOW,?\s+THEREFORE\b|\bBACKGROUND\b")
_PARTY_SPLIT = re.compile(r"(?<=\)),\s*(?:and\s+)?(?=[A-Z])|,?\s+and\s+(?=[A-Z“\"])|;\s*(?:and\s+)?")
_NAME_END = re.compile(
    r"\s*\(|,\s+(?=[a-z])|\s+located\b|\s+having\b|\s+with\s+(?:its|offices)\b|\s+on\s+behalf\b"
)
_ALIAS = re.compile(
    r"\([^()]*?[\"“]([^\"”]{1,60})[\"”]|(?:referred\s+to\s+(?:herein\s+)?as|hereinafter)\s+(?:the\s+)?[\"“]([^\"”]{1,60})[\"”]",
    re.I,
)


def extract_contract(text: str) -> tuple[Raw, Conf]:
    raw: Raw = {}
    conf: Conf = {}
    head = re.sub(r"\s+", " ", text[:6000])
    sents = sentences(text[:400_000])

    title = _title(text)
    if title:
        raw["title"], conf["title"] = title, 0.7
    parties = _parties(head)
    if parties:
        raw["parties"], conf["parties"] = parties, 0.7
    agreement = _date_after(_DATED, head[:3000])
    if agreement:
        raw["agreement_date"], conf["agreement_date"] = agreement, 0.8
    elif (first := parse_date(head[:2000])) is not None:
        raw["agreement_date"], conf["agreement_date"] = first, 0.4
    effective = _date_after(_EFFECTIVE, head) or _date_before_effective_date(head)
    if effective:
        raw["effective_date"], conf["effective_date"] = effective, 0.8
    elif "agreement_date" in raw:  # absent a stated effective date, an agreement takes effect on its date
        raw["effective_date"], conf["effective_date"] = raw["agreement_date"], 0.4
    expiry = _best_sentence(sents, _EXPIRY_SIGNALS, minimum=4)
    if expiry:
        raw["expiration_date"], conf["expiration_date"] = expiry, 0.6
    law = _best_sentence(sents, _LAW_SIGNALS, minimum=4)
    if law:
        raw["governing_law"], conf["governing_law"] = law, 0.8
    return raw, conf


def _title(text: str) -> str | None:
    """An upper-case heading naming an agreement/contract among the first lines."""
    for line in text.splitlines()[:15]:
        line = line.strip()
        if line.isupper() and len(line.split()) <= 10 and re.search(r"\bAGREEMENT\b|\bCONTRACT\b", line):
            return line
    return None


def _date_after(pattern: re.Pattern[str], text: str) -> date | None:
    for m in pattern.finditer(text):
        found = find_dates(text[m.end() : m.end() + 60])
        if found and found[0][1] < 15:
            return found[0][0]
    return None


def _date_before_effective_date(text: str) -> date | None:
    m = re.search(r"\((?:the\s+)?[\"“]effective\s+date[\"”]\)", text, re.I)
    if not m:
        return None
    found = find_dates(text[max(0, m.start() - 60) : m.start()])
    return found[-1][0] if found else None


def _parties(head: str) -> list[str]:
    m = _BETWEEN.search(head)
    if not m:
        return []
    segment = head[m.end() : m.end() + 1200]
    end = _PREAMBLE_END.search(segment)
    segment = sentences(segment[: end.start()] if end else segment)[0] if segment.strip() else ""
    names: list[str] = []
    for part in _PARTY_SPLIT.split(segment):
        part = part.strip(" ,.")
        company = _COMPANY.match(part)
        name = clean_text(company.group("name") if company else _NAME_END.split(part, maxsplit=1)[0])
        if name and name[0].isupper() and len(name.split()) <= 12:
            names.append(name)
        for alias in _ALIAS.findall(part):
            alias_text = clean_text(alias[0] or alias[1])
            if (
                alias_text
                and alias_text.lower() not in _DEFINED_GENERIC
                and not alias_text.lower().endswith("date")
            ):
                names.append(alias_text)
    return list(dict.fromkeys(names))


def _best_sentence(sents: list[str], signals: list[tuple[str, int]], minimum: int) -> str | None:
    best, best_score = None, minimum - 1
    for sentence in sents:
        if len(sentence) > 900:
            continue
        score = sum(weight for pattern, weight in signals if re.search(pattern, sentence, re.I))
        if score > best_score:
            best, best_score = sentence, score
    return _clause(best) if best else None


# ======================================================================================================
# Resumes
# ======================================================================================================

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w])(\(?\+?\(?\d[\d\s().\-]{6,}\d)")
_PHONE_LABEL = _label(
    r"tel", r"phone", r"mobile", r"cell", r"telephone", r"t[ée]l[ée]?phone", r"telefon", r"handy"
)
_NAME_CUT = re.compile(
    r"\s{2,}|\s[|·•]\s|\b(?:e-?mail|phone|mobile|tel|cell|address|linkedin|github)\b|@|\d", re.I
)
_SECTION = re.compile(
    r"^(?:technical\s+|programming\s+|core\s+|key\s+)?"
    r"(?:skills|experience|work experience|employment|education|projects|publications|honors|awards|"
    r"summary|profile|certifications?|certificates|languages|interests|"
    r"activities|extracurricular|presentations|writing|references|volunteer(?:ing)?|leadership)(?:\s*&.*)?:?$",
    re.I,
)


def extract_resume(text: str) -> tuple[Raw, Conf]:
    lines = Lines(text)
    raw: Raw = {}
    conf: Conf = {}
    for line in lines.lines[:5]:
        name = _NAME_CUT.split(line, maxsplit=1)[0].strip(" ,")
        if 2 <= len(name.split()) <= 5 and all(w[0].isupper() for w in name.split() if w[0].isalpha()):
            raw["name"], conf["name"] = clean_text(name), 0.8
            break
    if m := _EMAIL.search(text):
        raw["email"], conf["email"] = m.group(), 0.95
    phone = _first(lines.labelled(_PHONE_LABEL), _phone) or _first(
        ((ln, 0.6) for ln in lines.lines[:30]), _phone
    )
    if phone:
        raw["phone"], conf["phone"] = phone
    skills = _skills(lines.lines)
    if skills:
        raw["skills"], conf["skills"] = skills, 0.6
    return raw, conf


def _phone(text: str) -> str | None:
    for m in _PHONE.finditer(text):
        candidate = m.group(1).strip(" .-")
        digits = sum(c.isdigit() for c in candidate)
        if 8 <= digits <= 15 and not re.fullmatch(r"(?:19|20)\d{2}\s*[-–]\s*(?:19|20)\d{2}", candidate):
            return candidate
    return None


def _skills(lines: list[str]) -> list[str]:
    skills: list[str] = []
    for i, line in enumerate(lines):
        if not (_SECTION.match(line) and "skill" in line.lower()):
            continue
        for nxt in lines[i + 1 : i + 16]:
            if _SECTION.match(nxt):
                break
            body = nxt.split(":", 1)[-1]
            for item in re.split(r"[,;•·]|\s{2,}", body):
                item = clean_text(item)
                if item and len(item.split()) <= 4:
                    skills.append(item)
        break
    return list(dict.fromkeys(skills))[:50]


# ======================================================================================================
# Financial statements
# ======================================================================================================

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
    if lines and (name := _company_name(lines[0]) or _plain_name(lines[0])):
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
# Forms and everything else: key/value pairs
# ======================================================================================================

_KEY_VALUE = re.compile(r"^(?P<key>[^\W\d][^:]{0,60}?)\s*:\s*(?P<value>\S.*)$")


def extract_key_values(text: str) -> tuple[Raw, Conf]:
    lines = Lines(text)
    pairs: dict[str, str | list[str]] = {}

    def add(key: str, value: str) -> None:
        key, value = clean_text(key), clean_text(value)
        if not key or not value or len(key.split()) > 8:
            return
        if key not in pairs:
            pairs[key] = value
        else:
            existing = pairs[key]
            pairs[key] = [*existing, value] if isinstance(existing, list) else [existing, value]

    for i, line in enumerate(lines.lines):
        if i in lines.column_values:
            add(line, lines.column_values[i])
        elif m := _KEY_VALUE.match(line):
            add(m.group("key"), m.group("value"))
    return ({"key_values": pairs}, {"key_values": 0.5}) if pairs else ({}, {})
