"""Any type with a schema file and no hand-written extractor: its fields read by their labels.

A field's labels are its title, its name in words ("po_number" -> "po number") and its `x-aliases`
(docflow.schemas.types.FieldSpec.labels). A label found at the start of a line, else anywhere in one, gives
its value as the other heuristics read it (`Lines.labelled`: the rest of the line, the value printed in a
column next to a column of labels, or the next line); with the parser's text boxes, the label/answer pairs
of the layout (`keyvalues.layout_key_values`) are tried next. The value is parsed by the field's kind
(amount, percent, currency, date, date-or-text, number, integer, boolean, string); a currency with no label
of its own is read from the text of an amount found. Lists and nested objects are left to remote backends.
"""

import re
from collections.abc import Callable
from typing import Any

from docflow.backends.extract.local.keyvalues import layout_key_values
from docflow.backends.extract.local.lines import Conf, Lines, Raw, first_value
from docflow.backends.extract.normalize import (
    clean_text,
    parse_amount,
    parse_currency,
    parse_date,
    parse_percent,
)
from docflow.models import Span
from docflow.schemas import FieldSpec

LAYOUT_CONFIDENCE = 0.75  # a value paired to its label by the boxes' layout
_MARKUP = re.compile(r"^[\s*_`#>|]+|[\s*_`|]+$")
_LABELLED_LINE = re.compile(r"^[^\W\d][\w .#/()-]{0,40}:\s*\S")  # "Order Date: ..." is a label, not a value
_TRUE = {"yes", "y", "true", "x", "[x]", "☑", "☒", "ja", "oui", "si", "sí"}
_FALSE = {"no", "n", "false", "[ ]", "☐", "nein", "non"}


def _text(value: str) -> str:
    return clean_text(_MARKUP.sub("", value))


def _string(spec: FieldSpec) -> Callable[[str], str | None]:
    pattern = spec.spec.get("pattern")

    def parse(value: str) -> str | None:
        text = _text(value)
        if not text or _LABELLED_LINE.match(text):
            return None
        if pattern and not re.search(str(pattern), text):
            return None
        return text

    return parse


def _integer(value: str) -> int | None:
    number = parse_amount(value)
    return int(number) if number is not None and number == number.to_integral_value() else None


def _boolean(value: str) -> bool | None:
    word = _text(value).lower()
    return True if word in _TRUE else False if word in _FALSE else None


def _date_or_text(value: str) -> Any:
    return parse_date(value) or _text(value) or None


def parser(spec: FieldSpec) -> Callable[[str], Any] | None:
    """How a value of the field's kind is read from text; None for lists and objects."""
    kinds: dict[str, Callable[[str], Any]] = {
        "amount": parse_amount,
        "number": parse_amount,
        "integer": _integer,
        "percent": lambda v: parse_percent(v) or parse_amount(v),
        "currency": parse_currency,
        "date": parse_date,
        "date-or-text": _date_or_text,
        "boolean": _boolean,
        "string": _string(spec),
    }
    return kinds.get(spec.kind)


def _label_alternatives(spec: FieldSpec) -> list[str]:
    # longest first: "total amount" before "total"; any spacing and an optional dot between words
    labels = sorted(spec.labels, key=len, reverse=True)
    return [r"\s*".join(re.escape(w) for w in label.split()) for label in labels if label.split()]


def _norm(label: str) -> str:
    return re.sub(r"[^\w]+", " ", label.lower()).strip()


def extract_by_schema(text: str, spans: list[Span] | None, fields: tuple[FieldSpec, ...]) -> tuple[Raw, Conf]:
    lines = Lines(text)
    pairs = layout_key_values(spans) if spans else []
    raw: Raw = {}
    conf: Conf = {}
    found_text: dict[str, str] = {}  # field -> the text its value was read from (currency of an amount)
    for spec in fields:
        parse = parser(spec)
        alternatives = _label_alternatives(spec)
        if parse is None or not alternatives:
            continue
        joined = "|".join(alternatives)
        at_start = re.compile(rf"^[\W_]*(?:{joined})(?![^\W_])", re.I)
        anywhere = re.compile(rf"(?<![^\W_])(?:{joined})(?![^\W_])", re.I)
        hit = None
        for label in (at_start, anywhere):
            candidates = list(lines.labelled(label))
            hit = first_value(candidates, parse)
            if hit is not None:
                found_text[spec.name] = next(t for t, _ in candidates if parse(t) is not None)
                break
        if hit is None and pairs:
            wanted = {_norm(label) for label in spec.labels}
            for key, answer in pairs:
                value = answer if isinstance(answer, str) else " ".join(answer)
                if _norm(key) in wanted and (parsed := parse(value)) is not None:
                    hit, found_text[spec.name] = (parsed, LAYOUT_CONFIDENCE), value
                    break
        if hit is not None:
            raw[spec.name], conf[spec.name] = hit
    for spec in fields:
        if spec.kind == "currency" and spec.name not in raw:
            for name, source in found_text.items():
                if name in raw and (code := parse_currency(source)):
                    raw[spec.name], conf[spec.name] = code, 0.6
                    break
    return raw, conf
