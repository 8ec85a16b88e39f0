"""Data-quality rules behind the asset checks: pure functions over the typed step results. No Dagster here.

A rule returns a `Verdict`: passed, or failed with a severity (`error` blocks publishing downstream,
`warn` only flags) and a message for people. defs/checks.py turns verdicts into Dagster check results.
"""

from typing import Any, Literal

from pydantic import BaseModel, Field

from docflow.models import Extraction
from docflow.schemas import get_schema, validate_fields

# Fields without which a document of a type is of little use to analysts. Types not listed require none.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "invoice": ("invoice_number", "vendor_name", "total_amount"),
    "receipt": ("store_name", "total"),
    "contract": ("title", "parties"),
    "resume": ("name",),
    "financial_statement": ("institution",),
}


class Verdict(BaseModel):
    passed: bool
    severity: Literal["error", "warn"] = "error"
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


def schema_valid(extraction: Extraction) -> Verdict:
    """The stored fields validate against the current schema of their type (an error: analysts' typed
    views and the chunks' metadata would carry invalid values); values the extractor had to drop, or an
    outdated schema version, are warnings."""
    schema = get_schema(extraction.doc_type)
    _, errors = validate_fields(schema, extraction.fields)
    details: dict[str, Any] = {"schema": f"{schema.__name__} v{schema.schema_version}"}
    if errors:
        return Verdict(
            passed=False,
            message=f"{len(errors)} stored value(s) do not validate against {schema.__name__}: {errors[0]}",
            details={**details, "errors": errors},
        )
    if extraction.schema_version != schema.schema_version or extraction.schema_name != schema.__name__:
        return Verdict(
            passed=False,
            severity="warn",
            message=f"extracted with {extraction.schema_name} v{extraction.schema_version}, current is "
            f"{schema.__name__} v{schema.schema_version}: re-extract",
            details=details,
        )
    if extraction.validation_errors:
        return Verdict(
            passed=False,
            severity="warn",
            message=f"the extractor dropped {len(extraction.validation_errors)} invalid value(s): "
            f"{extraction.validation_errors[0]}",
            details={**details, "errors": extraction.validation_errors},
        )
    return Verdict(passed=True, message=f"all {len(extraction.fields)} fields are valid", details=details)


def required_fields_present(extraction: Extraction) -> Verdict:
    """Every field the document's type requires has a value (a warning: the document is still searchable)."""
    required = REQUIRED_FIELDS.get(extraction.doc_type, ())
    missing = [f for f in required if _empty(extraction.fields.get(f))]
    details = {"required": list(required), "missing": missing}
    if missing:
        return Verdict(
            passed=False,
            severity="warn",
            message=f"{extraction.doc_type} lacks {', '.join(missing)}",
            details=details,
        )
    what = f"all of {', '.join(required)}" if required else f"no field is required for {extraction.doc_type}"
    return Verdict(passed=True, message=f"present: {what}", details=details)


def chunks_present(chunks: int) -> Verdict:
    """A document that is done must be findable: at least one chunk (an error)."""
    if chunks <= 0:
        return Verdict(passed=False, message="no chunks: the document cannot be found by search")
    return Verdict(passed=True, message=f"{chunks} chunks", details={"chunks": chunks})


def dimension_matches(dimensions: dict[int, int], expected: int) -> Verdict:
    """Every vector of the document has the dimension of the configured embedding model (an error: a
    mismatch means vectors from another model, invisible to the HNSW index and to search)."""
    wrong = {d: n for d, n in dimensions.items() if d != expected}
    details = {"expected": expected, "found": {str(d): n for d, n in dimensions.items()}}
    if wrong:
        counts = ", ".join(f"{n} of dimension {d}" for d, n in sorted(wrong.items()))
        return Verdict(
            passed=False, message=f"expected dimension {expected}, found {counts}", details=details
        )
    return Verdict(passed=True, message=f"all vectors have dimension {expected}", details=details)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}
