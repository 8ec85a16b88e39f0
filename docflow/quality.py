"""Data-quality rules behind the asset checks: pure functions over the typed step results. No Dagster here.

A rule returns a `Verdict`: passed, or failed with a severity (`error` blocks publishing downstream,
`warn` only flags) and a message for people. defs/checks.py turns verdicts into Dagster check results.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from docflow.backends.extract import provenance
from docflow.models import Extraction
from docflow.schemas import get_schema, plausibility, validate_fields


class Verdict(BaseModel):
    passed: bool
    severity: Literal["error", "warn"] = "error"
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


def schema_valid(extraction: Extraction, rules_path: Path | None = None) -> Verdict:
    """The stored fields validate against the current schema of their type (an error: analysts' typed
    views and the chunks' metadata would carry invalid values); values the extractor had to drop, values
    kept but implausible (left out of the typed views' columns), or an outdated schema version, are
    warnings. `rules_path`: the types' rules file (default data/doc_types.yaml)."""
    schema = get_schema(extraction.doc_type, rules_path)
    _, errors = validate_fields(schema, extraction.fields)
    invalid = [e for e in errors if not plausibility.is_implausible(e)]
    details: dict[str, Any] = {"schema": f"{schema.__name__} v{schema.schema_version}"}
    if invalid:
        return Verdict(
            passed=False,
            message=f"{len(invalid)} stored value(s) do not validate against {schema.__name__}: {invalid[0]}",
            details={**details, "errors": invalid},
        )
    if extraction.schema_version != schema.schema_version or extraction.schema_name != schema.__name__:
        return Verdict(
            passed=False,
            severity="warn",
            message=f"extracted with {extraction.schema_name} v{extraction.schema_version}, current is "
            f"{schema.__name__} v{schema.schema_version}: re-extract",
            details=details,
        )
    stored = extraction.validation_errors
    kept = [e for e in stored if plausibility.is_implausible(e)]
    dropped = [e for e in stored if not plausibility.is_implausible(e)]
    # judged again on the stored fields: a row extracted before a rule existed is not marked for the views
    marked = {plausibility.flagged_path(e) for e in kept}
    unmarked = [e for e in errors if plausibility.flagged_path(e) not in marked]
    if kept or unmarked or dropped:
        parts = []
        if kept:
            names = ", ".join(plausibility.implausible_fields(kept))
            parts.append(f"{len(kept)} implausible value(s) kept but left out of the typed views ({names})")
        if unmarked:
            names = ", ".join(plausibility.implausible_fields(unmarked))
            parts.append(
                f"{len(unmarked)} implausible value(s) not marked in the stored row ({names}): re-extract"
            )
        if dropped:
            parts.append(f"the extractor dropped {len(dropped)} invalid value(s)")
        everything = kept + unmarked + dropped
        return Verdict(
            passed=False,
            severity="warn",
            message="; ".join(parts) + f": {everything[0]}",
            details={**details, "errors": everything},
        )
    return Verdict(passed=True, message=f"all {len(extraction.fields)} fields are valid", details=details)


def required_fields_present(extraction: Extraction, rules_path: Path | None = None) -> Verdict:
    """Every field the document's type requires (its schema file's `required`: the fields without which a
    document is of little use to analysts) has a value (a warning: the document is still searchable)."""
    required = get_schema(extraction.doc_type, rules_path).required_fields
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


def provenance_matches(extraction: Extraction) -> Verdict:
    """Every value's recorded source text holds the value after normalization (a warning: a value placed
    at text that does not say it was repaired, rewritten or misread, and deserves a look)."""
    wrong = provenance.mismatches(extraction)
    n_values = sum(1 for _ in provenance.leaves(extraction.fields))
    details: dict[str, Any] = {
        "values": n_values,
        "located": len(extraction.provenance),
        "mismatched": len(wrong),
    }
    if wrong:
        return Verdict(
            passed=False,
            severity="warn",
            message=f"{len(wrong)} value(s) not found in their source text: {', '.join(wrong[:10])}",
            details={**details, "fields": wrong},
        )
    return Verdict(
        passed=True,
        message=f"{len(extraction.provenance)} of {n_values} values located, each in its source text",
        details=details,
    )


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
