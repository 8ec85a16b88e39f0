"""Hybrid search: pgvector (HNSW, cosine) and Postgres full-text, fused with reciprocal rank fusion.

One search is a few statements in one transaction:

1. *semantic*: the nearest chunks of the query's model (`embedding_model`, so vectors of two models never
   meet) through the HNSW index of the vector's dimension, filters applied to what the index returns.
   pgvector < 0.8 returns at most `hnsw.ef_search` rows from the index, so a selective filter (a small
   tenant among many chunks, a date range...) can leave fewer than wanted; then the same query runs
   *exactly* over the rows that pass the filters (the planner reaches them through the tenant/doc indexes),
   which is cheap precisely because the filter is selective.
2. *lexical*: `websearch_to_tsquery` over the generated `tsv` (GIN index), ranked by `ts_rank_cd`; when no
   chunk holds all the words, any of them (OR) is tried, ranked the same way (questions and long names).
3. reciprocal rank fusion of both lists (score = sum of 1 / (60 + rank)), then the details of the top `k`.

Filters (`SearchFilters`): tenant, doc type, a date range over the *document date* (the first ISO date among
the extracted fields in `DATE_FIELDS`, else the day the document was registered), extracted fields (a
case-insensitive substring of the field's value, e.g. `{"vendor_name": "acme"}`) and an amount range over the
document amount (the first numeric field of `AMOUNT_FIELDS`). They read the chunk's metadata (`doc_type`,
`fields`, written by the embeddings step) and the document row.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from docflow.models import SearchHit
from docflow.store.db import Store, _vector_literal

RRF_K = 60  # the usual constant of reciprocal rank fusion: score = sum 1 / (RRF_K + rank)
CANDIDATES = 50  # per retriever, before fusion
EF_SEARCH = 100  # HNSW candidate list (recall vs speed); raised to the candidates asked for when larger
# Under filters, wider candidate lists are tried before an exact search (1000 = pgvector's maximum): a filter
# passing 1 row in 5 still fills 50 candidates from the index at ef_search 400.
EF_ESCALATION = (400, 1000)

# Extracted fields that date a document, in order of preference (invoice, receipt, contract, statement...).
DATE_FIELDS = ("invoice_date", "date", "agreement_date", "effective_date", "issue_date", "statement_date")
# Extracted fields holding a document's amount (invoice gross total, receipt total, ...).
AMOUNT_FIELDS = ("total_amount", "total", "amount")

_ISO_DATE = r"'^\d{4}-\d{2}-\d{2}'"
_NUMBER = r"'^-?[0-9]+(\.[0-9]+)?$'"


def _doc_date_sql() -> str:
    cases = [
        f"CASE WHEN c.metadata->'fields'->>'{name}' ~ {_ISO_DATE} "
        f"THEN left(c.metadata->'fields'->>'{name}', 10) END"
        for name in DATE_FIELDS
    ]
    return f"coalesce({', '.join(cases)}, to_char(d.created_at, 'YYYY-MM-DD'))"


def _amount_sql() -> str:
    values = ", ".join(f"c.metadata->'fields'->>'{name}'" for name in AMOUNT_FIELDS)
    value = f"coalesce({values})"
    return f"(CASE WHEN {value} ~ {_NUMBER} THEN ({value})::numeric END)"


DOC_DATE_SQL = _doc_date_sql()
AMOUNT_SQL = _amount_sql()


@dataclass(frozen=True)
class SearchFilters:
    """What a hit must satisfy; every part is optional (None / empty = no constraint)."""

    tenant: str | None = None
    doc_type: str | None = None
    date_from: date | None = None  # document date >= this
    date_to: date | None = None  # document date <= this
    fields: Mapping[str, str] = field(default_factory=dict)  # field name -> substring, case-insensitive
    amount_min: float | None = None
    amount_max: float | None = None

    def sql(self) -> tuple[str, dict[str, Any]]:
        """` AND ...` conditions over `c` (chunks) and `d` (documents), and their parameters."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        if self.tenant is not None:
            parts.append("d.tenant = %(f_tenant)s")
            params["f_tenant"] = self.tenant
        if self.doc_type is not None:
            parts.append("c.metadata->>'doc_type' = %(f_doc_type)s")
            params["f_doc_type"] = self.doc_type
        if self.date_from is not None:
            parts.append(f"{DOC_DATE_SQL} >= %(f_date_from)s")
            params["f_date_from"] = self.date_from.isoformat()
        if self.date_to is not None:
            parts.append(f"{DOC_DATE_SQL} <= %(f_date_to)s")
            params["f_date_to"] = self.date_to.isoformat()
        for i, (name, value) in enumerate(sorted(self.fields.items())):
            parts.append(f"c.metadata->'fields'->>%(f_key{i})s ILIKE %(f_value{i})s")
            params[f"f_key{i}"] = name
            params[f"f_value{i}"] = f"%{_escape_like(str(value))}%"
        if self.amount_min is not None:
            parts.append(f"{AMOUNT_SQL} >= %(f_amount_min)s")
            params["f_amount_min"] = self.amount_min
        if self.amount_max is not None:
            parts.append(f"{AMOUNT_SQL} <= %(f_amount_max)s")
            params["f_amount_max"] = self.amount_max
        return "".join(f"\n      AND {p}" for p in parts), params


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_SEMANTIC_SQL = """
SELECT c.doc_id, c.chunk_index
FROM docflow.chunks c JOIN docflow.documents d USING (doc_id)
WHERE vector_dims(c.embedding) = {dim} AND c.embedding_model = %(model)s{filters}
ORDER BY {distance}
LIMIT %(candidates)s
"""
# The HNSW index is on the expression embedding::vector(dim): this ordering can use it ...
_HNSW_DISTANCE = "c.embedding::vector({dim}) <=> %(qvec)s::vector({dim})"
# ... and this one (the same distance) cannot: exact search over the rows passing the filters.
_EXACT_DISTANCE = "c.embedding <=> %(qvec)s::vector"

_LEXICAL_SQL = """
SELECT c.doc_id, c.chunk_index
FROM docflow.chunks c JOIN docflow.documents d USING (doc_id), {tsquery} q
WHERE c.tsv @@ q AND c.embedding_model = %(model)s{filters}
ORDER BY ts_rank_cd(c.tsv, q) DESC, c.doc_id, c.chunk_index
LIMIT %(candidates)s
"""
_ALL_WORDS = "websearch_to_tsquery('english', %(query)s)"
_ANY_WORD = "to_tsquery('simple', replace(plainto_tsquery('english', %(query)s)::text, ' & ', ' | '))"

_DETAILS_SQL = """
SELECT c.doc_id, d.key, d.filename, coalesce(cl.doc_type, c.metadata->>'doc_type') AS doc_type,
       c.chunk_index, c.text, c.heading_path, c.page_start, c.page_end
FROM unnest(%(doc_ids)s::text[], %(indexes)s::int[]) AS t(doc_id, chunk_index)
JOIN docflow.chunks c USING (doc_id, chunk_index)
JOIN docflow.documents d USING (doc_id)
LEFT JOIN docflow.classifications cl USING (doc_id)
"""

Key = tuple[str, int]


def rrf(*rankings: Sequence[Key], k: int = RRF_K) -> list[tuple[Key, float]]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) (rank from 1); ties by key for determinism."""
    scores: dict[Key, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def hybrid_search(
    store: Store,
    query: str,
    query_vector: Sequence[float],
    model: str,
    k: int = 10,
    tenant: str | None = None,
    doc_type: str | None = None,
    filters: SearchFilters | None = None,
    candidates: int = CANDIDATES,
) -> list[SearchHit]:
    """The `k` best chunks of `model`'s vectors for `query`, fused from vector and full-text rankings.

    `tenant`/`doc_type` are shorthands for the same fields of `filters` (which win when both are given)."""
    if filters is None:
        filters = SearchFilters(tenant=tenant, doc_type=doc_type)
    dim = len(query_vector)
    where, params = filters.sql()
    n = max(candidates, k)
    params.update({"qvec": _vector_literal(query_vector), "model": model, "query": query, "candidates": n})
    with store.tx() as conn:

        def keys(sql: str) -> list[Key]:
            return [(r["doc_id"], r["chunk_index"]) for r in conn.execute(sql, params).fetchall()]

        semantic: list[Key] = []
        for ef in sorted({max(EF_SEARCH, n), *(e for e in EF_ESCALATION if e > n)}):
            conn.execute(f"SET LOCAL hnsw.ef_search = {ef:d}")
            semantic = keys(_semantic_sql(dim, where, exact=False))
            if len(semantic) >= n:
                break
        if len(semantic) < n:  # the index's candidates ran out under the filters: search the rows exactly
            semantic = keys(_semantic_sql(dim, where, exact=True))
        lexical = keys(_LEXICAL_SQL.format(tsquery=_ALL_WORDS, filters=where)) if query.strip() else []
        if not lexical and query.strip():
            lexical = keys(_LEXICAL_SQL.format(tsquery=_ANY_WORD, filters=where))
        fused = rrf(semantic, lexical)[:k]
        if not fused:
            return []
        rows = conn.execute(
            _DETAILS_SQL,
            {"doc_ids": [key[0] for key, _ in fused], "indexes": [key[1] for key, _ in fused]},
        ).fetchall()
    by_key = {(r["doc_id"], r["chunk_index"]): r for r in rows}
    return [
        SearchHit.model_validate({**by_key[key], "score": round(score, 6)})
        for key, score in fused
        if key in by_key  # a chunk replaced between the statements is skipped, never an error
    ]


def _semantic_sql(dim: int, where: str, exact: bool) -> str:
    distance = (_EXACT_DISTANCE if exact else _HNSW_DISTANCE).format(dim=dim)
    return _SEMANTIC_SQL.format(dim=dim, filters=where, distance=distance)
