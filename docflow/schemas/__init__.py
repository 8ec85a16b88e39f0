"""Per-document-type schemas and their registry (doc_type -> pydantic model).

`validate_fields` is the one way every extract backend turns raw values into stored, JSON-able fields:
invalid values are dropped and reported as messages, never raised; values that validate but that no
document would hold (`plausibility`) are kept and reported.
"""

import datetime as dt
import hashlib
from typing import Any

from pydantic import BaseModel, ValidationError

from docflow.schemas import plausibility
from docflow.schemas.models import (
    Contract,
    DocSchema,
    Education,
    Experience,
    FinancialStatement,
    Invoice,
    KeyValues,
    LineItem,
    Receipt,
    Resume,
    RevenueItem,
)

SCHEMAS: dict[str, type[DocSchema]] = {
    "invoice": Invoice,
    "receipt": Receipt,
    "contract": Contract,
    "resume": Resume,
    "financial_statement": FinancialStatement,
    "form": KeyValues,
}


def get_schema(doc_type: str) -> type[DocSchema]:
    """The schema of `doc_type`; any type without its own schema gets the generic `KeyValues`."""
    return SCHEMAS.get(doc_type, KeyValues)


def schema_fingerprint() -> str:
    """A short hash of every schema's name and version: changes when any schema changes."""
    parts = sorted(
        f"{doc_type}={model.__name__}:{model.schema_version}" for doc_type, model in SCHEMAS.items()
    )
    parts.append(f"*={KeyValues.__name__}:{KeyValues.schema_version}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def validate_fields(
    schema: type[BaseModel], raw: dict[str, Any], today: dt.date | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Validate `raw` against `schema`; return (JSON-able fields without empty values, error messages).

    A top-level field whose value does not validate is dropped (with a message naming it and the value);
    the other fields are kept. A value that validates but is implausible (`plausibility.check`, dates
    judged against `today`) is kept, with a message marked `implausible` that the typed views and the
    asset check read. Never raises on bad values.
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
    "Contract",
    "DocSchema",
    "Education",
    "Experience",
    "FinancialStatement",
    "Invoice",
    "KeyValues",
    "LineItem",
    "Receipt",
    "Resume",
    "RevenueItem",
    "get_schema",
    "plausibility",
    "schema_fingerprint",
    "validate_fields",
]
