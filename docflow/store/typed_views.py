"""The typed SQL view of each document type, generated from its JSON Schema file (docflow.schemas.types).

One view per type with a schema of its own, `docflow.<view>` (the type's `view`, default its name + "s"):
the document's columns, one column per field with a real type, then validation_errors, extracted_at and
provenance. A field's column by its kind:

    string            text                        date          date (NULL if implausible or not a date)
    amount, percent,  numeric (NULL if            date-or-text  date, and the text in `<column>_text`
    number, integer   implausible or not numeric) currency      upper-cased text
    boolean           boolean                     array of strings   text[]
    array, object     jsonb (+ `x-count-column`: the array's length)

A property's `x-column` renames its column, `x-text-column` names a date-or-text field's text column (and
`"x-view": "date-or-text"` reads a plain string field as one), the schema's `x-column-order` orders the
columns, `"x-view": false` makes no view. Casts never fail (docflow.try_* of migration 0002).

`ensure_views` runs after the SQL migrations (Store.migrate): idempotent, it replaces a view only when its
SQL changed, and a type added in a data folder gets its view on the next migrate.
"""

import hashlib
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from docflow.errors import ConfigError
from docflow.schemas.types import DocType, FieldSpec, TypeRegistry

# the views the SQL migrations made before they were generated: replaced by the generated ones
MIGRATED = frozenset({"invoices", "receipts", "contracts", "resumes", "financial_statements"})
LEADING = ("doc_id", "tenant", "filename", "key", "classification_confidence")
TRAILING = ("validation_errors", "extracted_at", "provenance")
_NUMERIC_KINDS = ("amount", "percent", "number", "integer")
_TEXT_ITEMS = ("string", "currency", "date", "date-or-text")


def columns(doc_type: DocType) -> list[tuple[str, sql.Composable, str]]:
    """(column name, SQL expression over the view's `fields`, SQL type) of a type's fields, in order."""
    out: list[tuple[str, sql.Composable, str]] = []
    texts: list[tuple[str, sql.Composable, str]] = []
    for spec in doc_type.fields:
        out += _field_columns(spec, texts)
    out += texts
    order = doc_type.json_schema.get("x-column-order")
    if isinstance(order, list):
        rank = {name: i for i, name in enumerate(order)}
        out.sort(key=lambda c: rank.get(c[0], len(rank)))  # stable: unlisted columns keep their order
    return out


def _field_columns(
    spec: FieldSpec, texts: list[tuple[str, sql.Composable, str]]
) -> list[tuple[str, sql.Composable, str]]:
    name = sql.Literal(spec.name)
    column = str(spec.spec.get("x-column") or spec.name)
    raw = sql.SQL("fields ->> {}").format(name)
    plausible = sql.SQL("docflow.plausible(fields, validation_errors, {})").format(name)
    kind = spec.kind
    if kind == "string" and spec.spec.get("x-view") == "date-or-text":
        kind = "date-or-text"
    if kind == "date":
        return [(column, sql.SQL("docflow.try_date({})").format(plausible), "date")]
    if kind == "date-or-text":
        # the date columns first, then the texts after the last field (or where x-column-order puts them)
        texts.append((str(spec.spec.get("x-text-column") or f"{column}_text"), raw, "text"))
        return [(column, sql.SQL("docflow.try_date({})").format(plausible), "date")]
    if kind in _NUMERIC_KINDS:
        return [(column, sql.SQL("docflow.try_numeric({})").format(plausible), "numeric")]
    if kind == "currency":
        return [(column, sql.SQL("upper({})").format(raw), "text")]
    if kind == "boolean":
        expr = sql.SQL("CASE WHEN jsonb_typeof(fields -> {0}) = 'boolean' THEN (fields ->> {0})::boolean END")
        return [(column, expr.format(name), "boolean")]
    if kind == "array" and spec.items in _TEXT_ITEMS:
        return [(column, sql.SQL("docflow.try_text_array(fields -> {})").format(name), "text[]")]
    if kind in ("array", "object"):
        json_type = sql.Literal(kind)
        expr = sql.SQL("CASE WHEN jsonb_typeof(fields -> {0}) = {1} THEN fields -> {0} END")
        found = [(column, expr.format(name, json_type), "jsonb")]
        if kind == "array" and spec.spec.get("x-count-column"):
            count = sql.SQL(
                "CASE WHEN jsonb_typeof(fields -> {0}) = 'array' THEN jsonb_array_length(fields -> {0}) END"
            )
            found.append((str(spec.spec["x-count-column"]), count.format(name), "integer"))
        return found
    return [(column, raw, "text")]


# views made by the SQL migrations over the generated ones, with their column types (0002, 0007)
DERIVED: dict[str, dict[str, str]] = {
    "revenue_figures": {
        "doc_id": "text",
        "figure_index": "bigint",
        "value": "numeric",
        "unit": "text",
        "currency": "text",
        "period_end": "date",
        "period_end_text": "text",
    }
}


def view_columns(registry: TypeRegistry) -> dict[str, dict[str, str]]:
    """Every typed view analysts read (generated and derived) -> its typed columns -> SQL type."""
    found = {
        t.view: {name: kind for name, _, kind in columns(t)}
        for t in registry.types.values()
        if t.view and t.own_schema
    }
    return {**found, **DERIVED}


def view_sql(doc_type: DocType) -> sql.Composed:
    """CREATE OR REPLACE VIEW for one type (its `view` must be set)."""
    assert doc_type.view
    parts: list[sql.Composable] = [sql.Identifier(c) for c in LEADING]
    parts += [sql.SQL("{} AS {}").format(expr, sql.Identifier(col)) for col, expr, _ in columns(doc_type)]
    parts += [sql.Identifier(c) for c in TRAILING]
    return sql.SQL(
        "CREATE OR REPLACE VIEW docflow.{view} AS\nSELECT\n    {cols}\n"
        "FROM docflow.extracted_documents\nWHERE doc_type = {doc_type}"
    ).format(
        view=sql.Identifier(doc_type.view),
        cols=sql.SQL(",\n    ").join(parts),
        doc_type=sql.Literal(doc_type.name),
    )


def ensure_views(conn: psycopg.Connection[Any], registry: TypeRegistry) -> list[str]:
    """Create or replace the typed view of every type of `registry` whose SQL changed (or whose view is
    missing), inside the caller's transaction; returns the views written. A view whose columns changed in a
    way Postgres cannot replace (a field removed or renamed) is dropped and created again; if other views
    depend on it, a ConfigError says which view to drop by hand."""
    written: list[str] = []
    cur = conn.cursor(row_factory=tuple_row)  # whatever rows the caller's connection makes
    known = {r[0]: r[1] for r in cur.execute("SELECT view_name, sql_sha256 FROM docflow.type_views")}
    views: dict[str, str] = {}
    for doc_type in registry.types.values():
        if not doc_type.view or not doc_type.own_schema:
            continue
        if doc_type.view in views:
            raise ConfigError(
                f"types {views[doc_type.view]!r} and {doc_type.name!r} both name the view {doc_type.view!r}"
            )
        views[doc_type.view] = doc_type.name
        statement = view_sql(doc_type).as_string(conn)
        digest = hashlib.sha256(statement.encode()).hexdigest()
        row = cur.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'docflow' AND c.relname = %s",
            (doc_type.view,),
        ).fetchone()
        relkind = row[0] if row else None
        if relkind is not None and (
            relkind != "v" or (doc_type.view not in known and doc_type.view not in MIGRATED)
        ):
            raise ConfigError(
                f"type {doc_type.name!r}: docflow.{doc_type.view} exists and was not made from a schema; "
                "name the type's view with `view:` in its entry"
            )
        if known.get(doc_type.view) == digest and relkind == "v":
            continue
        try:
            with conn.transaction():
                conn.execute(statement)  # type: ignore[arg-type]  # composed from quoted parts above
        except psycopg.errors.InvalidTableDefinition:
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("DROP VIEW docflow.{}").format(sql.Identifier(doc_type.view)))
                    conn.execute(statement)  # type: ignore[arg-type]
            except psycopg.errors.DependentObjectsStillExist as exc:
                raise ConfigError(
                    f"the columns of view docflow.{doc_type.view} changed and other views depend on it: "
                    f"drop them, then migrate again ({exc})"
                ) from exc
        conn.execute(
            """INSERT INTO docflow.type_views (view_name, doc_type, schema_file, sql_sha256)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (view_name) DO UPDATE SET doc_type = excluded.doc_type, schema_file =
                   excluded.schema_file, sql_sha256 = excluded.sql_sha256, updated_at = now()""",
            (doc_type.view, doc_type.name, str(doc_type.schema_file), digest),
        )
        written.append(doc_type.view)
    return written
