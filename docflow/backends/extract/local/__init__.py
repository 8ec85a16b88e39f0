"""Local field extraction: declarative per-issuer templates first, then label/value heuristics.

No model, no network. Heuristics read the plain text line by line: a label ("Invoice number:", "Total",
"Due date", ...) followed by its value on the same line, on the next line, or in a column of values printed
next to a column of labels. Values go through `normalize` and are validated by the type's schema;
validation errors are recorded in `Extraction.validation_errors`, never raised.

`fields` is the schema's JSON dump: dates as ISO strings, amounts and rates as JSON numbers (floats).
`field_confidence`: 0.95 template match, 0.9 labelled value on the same line, 0.85 value from a column of
values, 0.8 value on the next line, 0.4-0.7 inferred or guessed values; a value `validate_fields` finds
implausible (kept, with an error) is capped at `plausibility.LOW_CONFIDENCE`.

The heuristics live in one module per concern: `lines` (labels, values, money tokens), `templates`,
`parties` (legal-entity names, the issuer), `invoice` (invoices), `receipt` (receipts, read by the layout
of their text boxes), `contract`, `resume`, `financial` (revenue rows read under their period columns from
the text boxes), `keyvalues`, and `generic`: a type with a schema file and no module of its own (one added
in a data folder) has its fields read by the labels and aliases its schema names.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Self

from docflow.backends.extract.local.contract import extract_contract, sentences
from docflow.backends.extract.local.financial import extract_financial
from docflow.backends.extract.local.generic import extract_by_schema
from docflow.backends.extract.local.invoice import extract_invoice, line_items
from docflow.backends.extract.local.keyvalues import extract_key_values
from docflow.backends.extract.local.lines import Conf, Lines, Money, Raw, best_money, find_money
from docflow.backends.extract.local.parties import company_name, find_vendor
from docflow.backends.extract.local.receipt import extract_receipt
from docflow.backends.extract.local.resume import extract_resume
from docflow.backends.extract.local.templates import Template, apply_template, load_templates
from docflow.models import Classification, Extraction, ParsedDocument, Span
from docflow.schemas import get_type, plausibility, validate_fields
from docflow.settings import Settings, data_dir

__all__ = [
    "BUILT_IN",
    "Lines",
    "LocalExtractor",
    "Money",
    "Template",
    "apply_template",
    "best_money",
    "company_name",
    "extract_by_schema",
    "extract_contract",
    "extract_financial",
    "extract_invoice",
    "extract_key_values",
    "extract_receipt",
    "extract_resume",
    "find_money",
    "find_vendor",
    "line_items",
    "load_templates",
    "sentences",
]


# receipts (blocks of the slip) and financial statements (revenue rows under their period columns) read the
# parser's text boxes when it has them; the others read lines
BY_LAYOUT: dict[str, Callable[[str, list[Span]], tuple[Raw, Conf]]] = {
    "receipt": extract_receipt,
    "financial_statement": extract_financial,
}
BY_LINES: dict[str, Callable[[str], tuple[Raw, Conf]]] = {
    "invoice": extract_invoice,
    "contract": extract_contract,
    "resume": extract_resume,
}
BUILT_IN = frozenset({*BY_LAYOUT, *BY_LINES, "form"})  # the types with a hand-written extractor


class LocalExtractor:
    """Heuristic extraction of the fields of each document type; see the module docstring."""

    name = "local/heuristics"

    def __init__(self, templates: list[Template] | None = None, rules_path: Path | None = None) -> None:
        self.templates = templates or []
        self.rules_path = rules_path  # the types and their schema files (None: data/doc_types.yaml)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(load_templates(data_dir() / "templates"), settings.rules_path)

    def extract(self, parsed: ParsedDocument, classification: Classification) -> Extraction:
        doc_type = classification.doc_type
        described = get_type(doc_type, self.rules_path)
        schema = described.model
        text = _document_text(parsed)
        if doc_type not in BUILT_IN and described.own_schema and described.fields:
            raw, conf = extract_by_schema(text, parsed.spans, described.fields)
        else:
            raw, conf = self._heuristics(doc_type, text, parsed.spans)
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
            field_confidence=plausibility.lower_confidence(
                {k: v for k, v in conf.items() if k in fields}, errors
            ),
            validation_errors=errors,
            backend=self.name,
        )

    def _heuristics(self, doc_type: str, text: str, spans: list[Span]) -> tuple[Raw, Conf]:
        if doc_type in BY_LAYOUT:
            return BY_LAYOUT[doc_type](text, spans)
        if doc_type in BY_LINES:
            return BY_LINES[doc_type](text)
        # forms pair labels and answers by layout when the parser gave boxes; the other types keep their
        # "Key: value" lines (captions over paragraphs would read as pairs in reports and letters)
        return extract_key_values(text, spans if doc_type == "form" else None)


def _document_text(parsed: ParsedDocument) -> str:
    if parsed.text.strip():
        return parsed.text
    md = re.sub(r"^\s*\|?\s*:?-{3,}.*$", "", parsed.markdown, flags=re.M)  # table rules
    return re.sub(r"[*_`]{1,3}|^#{1,6}\s+", "", md, flags=re.M)
