"""Reviews of extracted values: a person confirms or corrects a field, and the review wins over every later
re-extraction. No Dagster here.

A review names a field path ("total_amount", "line_items.0.amount", "key_values.Date") and is one row of
docflow.field_reviews per document and path (a new review of the path replaces the old one). Recording a
review writes it and applies it to extractions.fields in one transaction; `Store.save_extraction` calls
`apply_reviews` in its own transaction, so a re-extraction's values never replace a reviewed one and the
typed views, which read extractions.fields, always show the reviewed value. Corrected values are validated
against the document type's schema first: a value that does not validate is refused, naming the field.
"""

import copy
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from docflow.errors import DocflowError, NotFound
from docflow.schemas import get_schema, validate_fields

Action = Literal["confirm", "correct"]
FieldPath = list[str | int]


class InvalidReview(DocflowError):
    """An unknown field path, or a value the document type's schema refuses."""


class NotExtracted(DocflowError):
    """The document has no extracted fields yet: there is nothing to review."""


@dataclass(frozen=True)
class Review:
    field: str
    action: Action
    value: Any
    extracted_value: Any
    reviewer: str
    reviewed_at: datetime

    def out(self) -> dict[str, Any]:
        """The review as the API and the CLI show it (keyed by its field elsewhere)."""
        return {
            "action": self.action,
            "value": self.value,
            "extracted_value": self.extracted_value,
            "reviewer": self.reviewer,
            "reviewed_at": self.reviewed_at,
        }


# --- paths ---------------------------------------------------------------------------------------------


def parse_path(path: str) -> FieldPath:
    """ "line_items.0.amount" -> ["line_items", 0, "amount"] (a part of digits is a list index)."""
    parts = path.strip().split(".")
    if not path.strip() or any(not p for p in parts):
        raise InvalidReview(f"{path!r}: not a field path (e.g. total_amount or line_items.0.amount)")
    return [int(p) if p.isdigit() else p for p in parts]


def check_path(schema: type[BaseModel], path: str) -> FieldPath:
    """The parsed path, or InvalidReview when the schema has no such field (a list index needs a list, a
    name a model field or a mapping)."""
    parts = parse_path(path)
    annotation: Any = schema
    for i, part in enumerate(parts):
        annotation = _child(annotation, part)
        if annotation is None:
            where = ".".join(str(p) for p in parts[: i + 1])
            raise InvalidReview(f"{path}: unknown field {where!r} for {schema.__name__}")
    return parts


def _child(annotation: Any, part: str | int) -> Any:
    """The annotation of `part` inside a value of type `annotation`, or None when it cannot hold it."""
    for option in _options(annotation):
        origin = typing.get_origin(option)
        if isinstance(option, type) and issubclass(option, BaseModel):
            if isinstance(part, str) and part in option.model_fields:
                return option.model_fields[part].annotation or Any
        elif origin in (list, Sequence) and isinstance(part, int):
            args = typing.get_args(option)
            return args[0] if args else Any
        elif origin in (dict, Mapping) and isinstance(part, str):
            args = typing.get_args(option)
            return args[1] if len(args) == 2 else Any
        elif option is Any:
            return Any
    return None


def _options(annotation: Any) -> list[Any]:
    """The non-None members of a union (Annotated metadata stripped), or the annotation alone."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [o for a in typing.get_args(annotation) if a is not type(None) for o in _options(a)]
    return [annotation]


def get_path(fields: Any, parts: FieldPath) -> Any:
    """The value at `parts`, None where the path leads nowhere."""
    value = fields
    for part in parts:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def set_path(fields: dict[str, Any], parts: FieldPath, value: Any, strict: bool) -> None:
    """Set (or, for None, remove) the value at `parts`, making the containers on the way. `strict` refuses a
    list index past the end (a person names an item that exists, or the next one); otherwise (a review
    applied again to a re-extraction with fewer items) the list is padded with empty items."""
    node: Any = fields
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt = None if last else parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list):
                raise InvalidReview(f"{_join(parts[:i])} is not a list")
            if part > len(node) and strict:
                raise InvalidReview(f"{_join(parts)}: {_join(parts[:i])} has {len(node)} items")
            while len(node) <= part:
                node.append({} if isinstance(nxt, str) else [] if isinstance(nxt, int) else None)
            if last:
                node[part] = value
            elif not isinstance(node[part], dict | list):
                node[part] = {} if isinstance(nxt, str) else []
        else:
            if not isinstance(node, dict):
                raise InvalidReview(f"{_join(parts[:i])} is not an object")
            if last:
                if value is None:
                    node.pop(part, None)
                else:
                    node[part] = value
            elif not isinstance(node.get(part), dict | list):
                node[part] = {} if isinstance(nxt, str) else []
        if not last:
            node = node[part]


def _join(parts: FieldPath) -> str:
    return ".".join(str(p) for p in parts)


def _covers(path: str, message: str) -> bool:
    """A validation message ('<path>: ...') about the reviewed path or a value inside it."""
    return message.startswith(f"{path}:") or message.startswith(f"{path}.")


# --- applying ------------------------------------------------------------------------------------------


def normalized(schema: type[BaseModel], fields: dict[str, Any], parts: FieldPath, value: Any) -> Any:
    """`value` as the schema stores it at `parts` (dates ISO, currency codes upper case...), validated with
    the rest of its top-level field; InvalidReview names the path and why when it does not validate."""
    path = _join(parts)
    top = parts[0]
    assert isinstance(top, str)
    candidate = {top: copy.deepcopy(fields.get(top))}
    set_path(candidate, parts, value, strict=True)
    if candidate.get(top) is None:
        return None
    clean, errors = validate_fields(schema, candidate)
    refused = [m for m in errors if ": implausible: " not in m]
    if refused or top not in clean:
        # the schema's messages start with the path of the value they refuse
        raise InvalidReview("; ".join(refused) or f"{path}: the value does not validate")
    return get_path(clean, parts)


def applied(
    fields: dict[str, Any],
    errors: list[str],
    confidence: dict[str, float],
    reviews: Iterable[tuple[str, Any]],
) -> tuple[dict[str, Any], list[str], dict[str, float]]:
    """Fields, validation errors and confidences with `reviews` ((path, value), oldest first, so that a later
    review of a whole field wins over an earlier one inside it) applied. A reviewed path's validation
    messages go (a person has judged the value); a reviewed top-level field's confidence is 1. The paths
    were checked against the schema when reviewed (the store does not know the configured types): a review
    stays applied if the document is later classified as another type, until it is removed. A path the
    fields cannot hold (a list where an object was reviewed) is left out."""
    fields = copy.deepcopy(fields)
    confidence = dict(confidence)
    for path, value in reviews:
        try:
            parts = parse_path(path)
            set_path(fields, parts, value, strict=False)
        except InvalidReview:
            continue
        errors = [m for m in errors if not _covers(path, m)]
        if len(parts) == 1:
            confidence[path] = 1.0
    return fields, errors, confidence


_REVIEWS = """SELECT field, action, value, extracted_value, reviewer, reviewed_at FROM docflow.field_reviews
              WHERE doc_id = %s ORDER BY reviewed_at, field"""


def apply_reviews(conn: psycopg.Connection, doc_id: str) -> bool:
    """Apply the document's reviews to its stored extraction, inside the caller's transaction (the one that
    saved the extraction). Returns whether there were any."""
    rows = conn.execute(_REVIEWS, (doc_id,)).fetchall()
    if not rows:
        return False
    row = conn.execute(
        """SELECT doc_type, fields, validation_errors, field_confidence, provenance FROM docflow.extractions
           WHERE doc_id = %s FOR UPDATE""",
        (doc_id,),
    ).fetchone()
    if row is None:
        return False
    done = [(r["field"], r["value"]) for r in rows]
    fields = row["fields"] or {}
    _write(
        conn,
        doc_id,
        *applied(fields, row["validation_errors"] or [], row["field_confidence"] or {}, done),
        provenance=located(fields, row["provenance"] or {}, done),
    )
    return True


def located(
    fields: dict[str, Any], provenance: dict[str, Any], reviews: Iterable[tuple[str, Any]]
) -> dict[str, Any]:
    """The provenance that still describes the fields once `reviews` are applied: a reviewed value other
    than the one the extractor placed on the page loses its place (and the values inside it), since the
    page's text there says something else; a confirmed or unchanged value keeps it."""
    kept = dict(provenance)
    for path, value in reviews:
        if get_path(fields, parse_path(path)) != value:
            kept = {p: src for p, src in kept.items() if p != path and not p.startswith(f"{path}.")}
    return kept


def _write(
    conn: psycopg.Connection,
    doc_id: str,
    fields: dict[str, Any],
    errors: list[str],
    confidence: dict[str, float],
    provenance: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        """UPDATE docflow.extractions SET fields = %s, validation_errors = %s, field_confidence = %s,
               provenance = coalesce(%s, provenance)
           WHERE doc_id = %s""",
        (
            Jsonb(fields),
            Jsonb(errors),
            Jsonb(confidence),
            None if provenance is None else Jsonb(provenance),
            doc_id,
        ),
    )


# --- recording -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reviewed:
    doc_id: str
    doc_type: str
    fields: dict[str, Any]
    reviews: dict[str, Review]


def record(
    store: Any,
    doc_id: str,
    corrections: Mapping[str, Any] | None = None,
    confirms: Iterable[str] = (),
    reviewer: str = "",
    rules_path: Path | str | None = None,
) -> Reviewed:
    """Record corrections (path -> value; None removes the value) and confirmations (paths, the value as it
    is) of one document, and apply them to its fields, in one transaction. Every path is checked against
    the type's schema and every corrected value validated before anything is written: one bad path or
    value refuses the whole request (InvalidReview). `store` is a Store or a TenantStore (whose row-level
    security makes another tenant's document NotFound); `rules_path` holds the configured document types
    (settings.rules_path; None: data/doc_types.yaml)."""
    corrections = dict(corrections or {})
    confirms = [p for p in dict.fromkeys(confirms) if p not in corrections]
    if not corrections and not confirms:
        raise InvalidReview("nothing to review: give fields to correct or paths to confirm")
    if not reviewer.strip():
        raise InvalidReview("a review needs a reviewer")
    with store.tx() as conn:
        if conn.execute("SELECT 1 FROM docflow.documents WHERE doc_id = %s", (doc_id,)).fetchone() is None:
            raise NotFound(f"document {doc_id!r} is not registered")
        row = _locked_extraction(conn, doc_id)
        schema = get_schema(row["doc_type"], rules_path)
        fields: dict[str, Any] = row["fields"] or {}
        earlier = {r["field"]: r for r in conn.execute(_REVIEWS, (doc_id,)).fetchall()}
        new: list[tuple[str, Action, Any]] = []
        for path, value in corrections.items():
            parts = check_path(schema, path)
            new.append((_join(parts), "correct", normalized(schema, fields, parts, value)))
        for path in confirms:
            parts = check_path(schema, path)
            new.append((_join(parts), "confirm", get_path(fields, parts)))
        for path, action, value in new:
            # what the extractor had said: kept from the first review of the path (fields hold the reviewed
            # value since)
            extracted = (
                earlier[path]["extracted_value"] if path in earlier else get_path(fields, parse_path(path))
            )
            conn.execute(
                """INSERT INTO docflow.field_reviews
                       (doc_id, field, action, value, extracted_value, reviewer, reviewed_at)
                   VALUES (%s, %s, %s, %s, %s, %s, clock_timestamp())
                   ON CONFLICT (doc_id, field) DO UPDATE SET action = excluded.action, value = excluded.value,
                       reviewer = excluded.reviewer, reviewed_at = excluded.reviewed_at""",
                (doc_id, path, action, Jsonb(value), Jsonb(extracted), reviewer),
            )
        apply_reviews(conn, doc_id)
        return _reviewed(conn, doc_id)


def _locked_extraction(conn: Any, doc_id: str) -> dict[str, Any]:
    """The document's extraction, locked until the transaction ends (reviews of it are serialised)."""
    row = conn.execute(
        """SELECT doc_type, fields, validation_errors, field_confidence FROM docflow.extractions
           WHERE doc_id = %s FOR UPDATE""",
        (doc_id,),
    ).fetchone()
    if row is None:
        raise NotExtracted(f"document {doc_id!r} has no extracted fields yet")
    return row


def remove(store: Any, doc_id: str, paths: Iterable[str]) -> Reviewed:
    """Take reviews back: each path gets the value the extractor had given it when it was first reviewed
    (the stored fields hold the reviewed value until then), and later re-extractions replace it again.
    Paths without a review are ignored."""
    with store.tx() as conn:
        if conn.execute("SELECT 1 FROM docflow.documents WHERE doc_id = %s", (doc_id,)).fetchone() is None:
            raise NotFound(f"document {doc_id!r} is not registered")
        gone = conn.execute(
            """DELETE FROM docflow.field_reviews WHERE doc_id = %s AND field = ANY(%s)
               RETURNING field, extracted_value, reviewed_at""",
            (doc_id, list(paths)),
        ).fetchall()
        row = _locked_extraction(conn, doc_id)
        restore = [(r["field"], r["extracted_value"]) for r in sorted(gone, key=lambda r: r["reviewed_at"])]
        fields, _, _ = applied(row["fields"] or {}, [], {}, restore)
        _write(conn, doc_id, fields, row["validation_errors"] or [], row["field_confidence"] or {})
        apply_reviews(conn, doc_id)  # the reviews left win over what was restored
        return _reviewed(conn, doc_id)


# --- reading -------------------------------------------------------------------------------------------


def _reviewed(conn: psycopg.Connection, doc_id: str) -> Reviewed:
    row = conn.execute(
        "SELECT doc_type, fields FROM docflow.extractions WHERE doc_id = %s", (doc_id,)
    ).fetchone()
    return Reviewed(doc_id, row["doc_type"], row["fields"] or {}, _rows(conn, doc_id))


def _rows(conn: psycopg.Connection, doc_id: str) -> dict[str, Review]:
    return {r["field"]: Review(**r) for r in conn.execute(_REVIEWS, (doc_id,)).fetchall()}


def reviews_of(store: Any, doc_id: str) -> dict[str, Review]:
    """The document's reviews by path (oldest first); {} when it has none (or is another tenant's)."""
    with store.tx() as conn:
        return _rows(conn, doc_id)


def reviewed(store: Any, doc_id: str) -> Reviewed:
    """The document's fields (reviews applied) and its reviews."""
    with store.tx() as conn:
        if conn.execute("SELECT 1 FROM docflow.extractions WHERE doc_id = %s", (doc_id,)).fetchone() is None:
            raise NotFound(f"no extraction for document {doc_id!r}")
        return _reviewed(conn, doc_id)


@dataclass(frozen=True)
class ReviewedDocument:
    doc_id: str
    tenant: str
    filename: str
    key: str
    doc_type: str
    reviews: dict[str, Review]


def reviewed_documents(
    store: Any, tenant: str | None = None, doc_type: str | None = None
) -> list[ReviewedDocument]:
    """Documents with at least one review (of `tenant`, of extracted type `doc_type`), oldest first."""
    with store.tx() as conn:
        docs = conn.execute(
            """SELECT d.doc_id, d.tenant, d.filename, d.key, e.doc_type FROM docflow.documents d
               JOIN docflow.extractions e USING (doc_id)
               WHERE EXISTS (SELECT 1 FROM docflow.field_reviews r WHERE r.doc_id = d.doc_id)
                 AND (%(tenant)s::text IS NULL OR d.tenant = %(tenant)s)
                 AND (%(doc_type)s::text IS NULL OR e.doc_type = %(doc_type)s)
               ORDER BY d.created_at, d.doc_id""",
            {"tenant": tenant, "doc_type": doc_type},
        ).fetchall()
        return [ReviewedDocument(**d, reviews=_rows(conn, d["doc_id"])) for d in docs]
