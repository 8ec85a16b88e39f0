"""Per-document-type schemas and their registry (doc_type -> pydantic model), made from data.

A type's fields are a JSON Schema file named by its entry in the rules file (data/doc_types.yaml,
`schema: schemas/invoice.json`); `docflow.schemas.types` generates the pydantic model from it. The
registry of the packaged data folder is `SCHEMAS` (and `Invoice`, `Receipt`, ... its models); a data folder
of one's own (`Settings.rules_path`) is read with `load_types(rules_path)` or `get_schema(t, rules_path)`.

`validate_fields` is the one way every extract backend turns raw values into stored, JSON-able fields:
invalid values are dropped and reported as messages, never raised; values that validate but that no
document would hold (`plausibility`) are kept and reported.
"""

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from docflow.schemas import plausibility
from docflow.schemas.types import (
    Amount,
    Currency,
    DateOrText,
    DocSchema,
    DocType,
    FieldSpec,
    Percent,
    TypeRegistry,
    load_types,
    wire_schema,
)

_DEFAULT = load_types()
# the packaged types' models, as before they were data: doc_type -> model
SCHEMAS: dict[str, type[DocSchema]] = _DEFAULT.schemas
Invoice = SCHEMAS["invoice"]
Receipt = SCHEMAS["receipt"]
Contract = SCHEMAS["contract"]
Resume = SCHEMAS["resume"]
FinancialStatement = SCHEMAS["financial_statement"]
KeyValues = _DEFAULT.key_values.model


def get_schema(doc_type: str, rules_path: Path | str | None = None) -> type[DocSchema]:
    """The model of `doc_type` in the rules file `rules_path` (default data/doc_types.yaml); any type
    without a schema of its own gets the generic `KeyValues`."""
    return load_types(rules_path).get(doc_type).model


def get_type(doc_type: str, rules_path: Path | str | None = None) -> DocType:
    """Everything known of `doc_type`: model, schema file, fields and labels, view."""
    return load_types(rules_path).get(doc_type)


def schema_fingerprint(rules_path: Path | str | None = None) -> str:
    """A short hash of every schema's name, version and file: changes when any schema changes."""
    return load_types(rules_path).fingerprint()


def validate_fields(
    schema: type[BaseModel], raw: dict[str, Any], today: dt.date | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Validate `raw` against `schema`; return (JSON-able fields without empty values, error messages).

    A top-level field whose value does not validate is dropped (with a message naming it and the value);
    the other fields are kept. A value that validates but is implausible (`plausibility.check`, dates
    judged against `today`) is kept, with a message marked `implausible` that the typed views and the
    asset check read. Never raises on bad values (a field the schema file marks `required` is optional
    here: the `required_fields_present` check warns when it is missing).
    """
    values = {k: v for k, v in raw.items() if v is not None}
    errors: list[str] = []
    for _ in range(len(values) + 1):
        try:
            model = schema.model_validate(values)
        except ValidationError as exc:
            bad: set[str] = set()
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else "?"
                where = ".".join(str(p) for p in err["loc"]) or "?"
                errors.append(f"{where}: {err['msg']} (got {_short(err.get('input'))})")
                bad.add(field)
            if not bad & values.keys():
                break
            values = {k: v for k, v in values.items() if k not in bad}
            continue
        errors.extend(plausibility.messages(model, today))
        return model.model_dump(mode="json", exclude_none=True), errors
    return {}, errors


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "SCHEMAS",
    "Amount",
    "Contract",
    "Currency",
    "DateOrText",
    "DocSchema",
    "DocType",
    "FieldSpec",
    "FinancialStatement",
    "Invoice",
    "KeyValues",
    "Percent",
    "Receipt",
    "Resume",
    "TypeRegistry",
    "get_schema",
    "get_type",
    "load_types",
    "plausibility",
    "schema_fingerprint",
    "validate_fields",
    "wire_schema",
]
