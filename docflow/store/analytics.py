"""Reads for analysts (docflow.analytics turns them into DataFrames): the typed views, documents with their
types, counts per type, and any SQL an analyst writes. The typed views are those of the document types'
schema files (store.typed_views), so a type added in a data folder is readable here too."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from psycopg.rows import tuple_row

from docflow.schemas import load_types
from docflow.store.db import Store
from docflow.store.typed_views import view_columns

Rows = tuple[list[str], list[tuple[Any, ...]]]  # (column names in SELECT order, rows)


def views(rules_path: Path | str | None = None) -> dict[str, dict[str, str]]:
    """The typed views of the types in `rules_path` (default data/doc_types.yaml): view -> column -> SQL type
    of its typed columns."""
    return view_columns(load_types(rules_path))


# the packaged types' views and their date columns
VIEWS: dict[str, tuple[str, ...]] = {
    name: tuple(c for c, kind in cols.items() if kind == "date") for name, cols in views().items()
}


def query(store: Store, statement: str, params: Sequence[Any] | dict[str, Any] = ()) -> Rows:
    """Any SQL (an analyst's own) with its columns in the order of its SELECT."""
    with store.tx() as conn, conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(statement, params)  # type: ignore[arg-type]  # an analyst's SQL, not a literal
        rows = cursor.fetchall()
        columns = [c.name for c in cursor.description or []]
    return columns, rows


def view(store: Store, name: str, tenant: str | None = None, rules_path: Path | str | None = None) -> Rows:
    """Every row of one typed view (`invoices`, `receipts`, ...), optionally of one tenant."""
    known = views(rules_path)
    if name not in known:
        raise ValueError(f"unknown view {name!r}; known: {', '.join(known)}")
    where, params = ("WHERE tenant = %s", [tenant]) if tenant else ("", [])
    return query(store, f"SELECT * FROM docflow.{name} {where} ORDER BY doc_id", params)


def documents(store: Store, tenant: str | None = None, status: str | None = None) -> Rows:
    """Every document with its status, type and classification confidence, oldest first."""
    clauses, params = [], []
    if tenant:
        clauses.append("d.tenant = %s")
        params.append(tenant)
    if status:
        clauses.append("d.status = %s")
        params.append(status)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    statement = (
        "SELECT d.doc_id, d.tenant, d.filename, d.key, d.content_type, d.size, d.pages, d.status, d.error, "
        "c.doc_type, c.confidence AS classification_confidence, c.backend AS classify_backend, "
        "d.created_at, d.updated_at "
        "FROM docflow.documents d LEFT JOIN docflow.classifications c USING (doc_id) "
        f"{where} ORDER BY d.created_at, d.doc_id"
    )
    return query(store, statement, params)


def doc_type_counts(store: Store, tenant: str | None = None) -> Rows:
    """Documents per type (unclassified ones as type None): doc_type, documents, mean_confidence."""
    where, params = ("WHERE d.tenant = %s", [tenant]) if tenant else ("", [])
    statement = (
        "SELECT c.doc_type, count(*) AS documents, avg(c.confidence)::float8 AS mean_confidence "
        "FROM docflow.documents d LEFT JOIN docflow.classifications c USING (doc_id) "
        f"{where} GROUP BY c.doc_type ORDER BY count(*) DESC, c.doc_type"
    )
    return query(store, statement, params)
