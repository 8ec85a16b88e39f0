"""Hybrid search: pgvector (HNSW, cosine) and Postgres full-text, fused with reciprocal rank fusion.

One search is a few statements; the three rankings run at once, each in a transaction on a connection of its
own (a search costs the slowest of them, not their sum), then one transaction fuses them and reads the hits:

1. *semantic*: the nearest chunks of the query's model (`embedding_model`, so vectors of two models never
   meet) through the HNSW index of the vector's dimension, filters applied to what the index returns.
   pgvector < 0.8 returns at most `hnsw.ef_search` rows from the index, so a filter can leave fewer than
   wanted. The share of the first probe's rows that passed estimates how wide a second probe must be
   (`hnsw.ef_search` set per statement with SET LOCAL); when even pgvector's maximum would not do (a small
   tenant among many chunks, a narrow date range...), the same query runs *exactly* over the rows that pass
   the filters (the planner reaches them through the chunks' indexes of migrations 0005 and 0018: tenant +
   doc type, tenant + document date, amount), which is cheap because the filter is selective: only while
   at most `EXACT_MAX_ROWS` chunks are estimated to pass (that share times the table, or the planner's
   estimate when nothing passed). A broader filter takes pgvector's widest probe, even when short.
   A filter naming a doc type that has an HNSW index of its own (a partial index of the type's chunks,
   `store.bulk.build_vector_index`'s `doc_type`, on `TYPED_VECTOR_SQL`) probes that graph instead: the
   other types' chunks no longer take the probe's places, and a broad filter within the type (a large
   tenant, an amount range) passes enough of them.
2. *lexical*: `websearch_to_tsquery` over the generated `tsv` (GIN index), ranked by `ts_rank_cd`; when no
   chunk holds all the words, any of them (OR) is tried, ranked the same way (questions and long names).
   `ts_rank_cd` costs ~10 us a row, and common words match tens of thousands of rows: only the first
   `LEXICAL_POOL` matching rows (in storage order) are ranked. A query matching more than that is made of
   common words, whose ranking says little; the semantic side carries it. The statement reads the GIN index
   by a bitmap scan (no sequential scan, no walk of another index with the words as a filter: under the
   LIMIT the planner bets on matches coming soon, and they may come only after most of a tenant).
3. reciprocal rank fusion of both lists (score = sum of 1 / (60 + rank)), then the details of the top `k`.

Filters (`SearchFilters`): tenant, doc type, a date range over the *document date* (the first ISO date among
the extracted fields in `DATE_FIELDS`, else the day the document was registered), extracted fields (a
case-insensitive substring of the field's value, e.g. `{"vendor_name": "acme"}`) and an amount range over the
document amount (the first numeric field of `AMOUNT_FIELDS`). They read the chunk's metadata (`doc_type`,
`tenant`, `fields`, written by the embeddings step; `Store.save_chunks` sets the tenant to the document's)
and the document row.

By document (`by_document=True`, what `docflow search` returns unless asked for chunks): each chunk ranking
becomes a ranking of documents (a document's place is that of its first chunk), a third ranking joins them —
*names*: documents whose name-like values (extracted name fields, filename, first line; trigram sets of
migration 0008) hold at least `NAME_MIN_SHARE` of the query's name trigrams, by that share — and the three
are fused by reciprocal rank (the names ranking weighted by its share, see `NAME_WEIGHT`); documents of a
type the query names (`boost_types`) have their score multiplied by `TYPE_BOOST`. Each document comes with
its best chunk (by the chunks' own fusion; its first chunk when only its name matched). `name_query` (the
query without the words naming a type) feeds the full-text and name rankings, so that "receipt <store>" does
not require the word "receipt" in the receipt.

Candidates for the names ranking come from the GIN index: first the documents holding every trigram of the
query (all found; when they fill the candidates, nothing else could rank among them); then those holding at
least m of the n trigrams, which contain *all* trigrams of at least one of n - m + 1 disjoint groups of them
(at most n - m are missing), so an OR of `@>` tests on those groups finds every such document; at most
`NAME_POOL` of those are scored (a query whose groups match more is a phrase of common words, not a name).
"""

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from docflow.models import SearchHit
from docflow.store.db import Store, _vector_literal

RRF_K = 60  # the usual constant of reciprocal rank fusion: score = sum 1 / (RRF_K + rank)
CANDIDATES = 50  # per retriever, before fusion
EF_SEARCH = 200  # HNSW candidate list (recall vs speed); raised to the candidates asked for when larger
EF_MAX = 1000  # pgvector's maximum hnsw.ef_search
# Under filters the second probe's ef_search is the candidates wanted / the share of the first probe's rows
# that passed, times this margin (the share is an estimate from few rows).
EF_MARGIN = 1.5
# Beyond this many rows estimated to pass the filters, an exact search costs more than pgvector's widest probe
# (each row is fetched and its filters and distance computed): the widest probe's rows are taken even when
# fewer than the candidates asked for (pgvector >= 0.8's iterative scans would go on until enough pass).
EXACT_MAX_ROWS = 50_000
LEXICAL_POOL = 200  # matching rows ranked by the full-text retriever, at most (2x the candidates by document)
DOC_CANDIDATES_PER_HIT = 10  # by document: chunk candidates per document asked for (one long file has many)
NAME_MIN_SHARE = 0.5  # share of the query's name trigrams a document's names must hold to rank by name
# A document's place in the names ranking counts NAME_WEIGHT times as much as a place in a chunk ranking when
# its names hold all of the query's name trigrams, linearly less down to nothing at NAME_MIN_SHARE: a query
# that is a document's name says more than words found in its text, a half-matching name says little.
NAME_WEIGHT = 2.0
# Partial name matches scored, at most (in storage order): a query whose groups of trigrams match more
# documents than that is a phrase of common words, not a name; full matches are always all found.
NAME_POOL = 200
NAME_MIN_KEY = 3  # letters/digits in the query's name key below which the names ranking is skipped
TYPE_BOOST = 1.25  # score factor of documents of a type the query names

# Extracted fields that date a document, in order of preference (invoice, receipt, contract, statement...).
DATE_FIELDS = ("invoice_date", "date", "agreement_date", "effective_date", "issue_date", "statement_date")
# Extracted fields holding a document's amount (invoice gross total, receipt total, ...).
AMOUNT_FIELDS = ("total_amount", "total", "amount")

# The document date as the chunk carries it (the first of DATE_FIELDS holding an ISO date; an SQL function of
# migration 0018, indexed per tenant), else the day the document was registered.
CHUNK_DATE_SQL = "docflow.chunk_date(c.metadata)"
REGISTERED_DATE_SQL = "to_char(d.created_at, 'YYYY-MM-DD')"
DOC_DATE_SQL = f"coalesce({CHUNK_DATE_SQL}, {REGISTERED_DATE_SQL})"
# The first of AMOUNT_FIELDS as numeric (NULL when not a plain number): an SQL function of migration 0005, so
# that its index serves the amount filters and gives the planner statistics about them.
AMOUNT_SQL = "docflow.chunk_amount(c.metadata)"


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
            # the chunk's copy of the tenant (migration 0018) reaches the tenant's rows through its index
            parts.append("d.tenant = %(f_tenant)s AND c.metadata->>'tenant' = %(f_tenant)s")
            params["f_tenant"] = self.tenant
        if self.doc_type is not None:
            parts.append("c.metadata->>'doc_type' = %(f_doc_type)s")
            params["f_doc_type"] = self.doc_type
        if self.date_from is not None or self.date_to is not None:
            # DOC_DATE_SQL in range, written so that the chunk's date reaches its index
            def in_range(expr: str) -> str:
                bounds = [f"{expr} >= %(f_date_from)s"] if self.date_from is not None else []
                bounds += [f"{expr} <= %(f_date_to)s"] if self.date_to is not None else []
                return " AND ".join(bounds)

            # (dated and in range) or (undated and registered in range), as a condition on the chunk alone,
            # which its index serves, and one joining the document, which reads the chunk's date only once
            parts.append(f"({in_range(CHUNK_DATE_SQL)} OR {CHUNK_DATE_SQL} IS NULL)")
            parts.append(f"({in_range(REGISTERED_DATE_SQL)} OR {CHUNK_DATE_SQL} IS NOT NULL)")
            if self.date_from is not None:
                params["f_date_from"] = self.date_from.isoformat()
            if self.date_to is not None:
                params["f_date_to"] = self.date_to.isoformat()
        for i, (name, value) in enumerate(sorted(self.fields.items())):
            parts.append(f"c.metadata->'fields'->>%(f_key{i})s ILIKE %(f_value{i})s")
            params[f"f_key{i}"] = name
            params[f"f_value{i}"] = f"%{_escape_like(str(value))}%"
        if self.amount_min is not None:
            parts.append(f"{AMOUNT_SQL} >= %(f_amount_min)s::numeric")
            params["f_amount_min"] = self.amount_min
        if self.amount_max is not None:
            parts.append(f"{AMOUNT_SQL} <= %(f_amount_max)s::numeric")
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
# A doc type's own HNSW index (store.bulk.build_vector_index's doc_type: a partial index of the type's
# chunks) is on this expression: the same vector through a round trip by real[], so that only a probe that
# asks for it uses it (the planner costs the type's graph and the whole table's alike and keeps the latter).
TYPED_VECTOR_SQL = "({column}::real[])::vector({dim})"
_TYPED_DISTANCE = TYPED_VECTOR_SQL.format(column="c.embedding", dim="{dim}") + " <=> %(qvec)s::vector({dim})"

_LEXICAL_SQL = """
SELECT m.doc_id, m.chunk_index
FROM (
    SELECT c.doc_id, c.chunk_index, c.tsv, q
    FROM docflow.chunks c JOIN docflow.documents d USING (doc_id), {tsquery} q
    WHERE c.tsv @@ q AND c.embedding_model = %(model)s{filters}
    LIMIT %(pool)s
) m
ORDER BY ts_rank_cd(m.tsv, m.q) DESC, m.doc_id, m.chunk_index
LIMIT %(candidates)s
"""
_ALL_WORDS = "websearch_to_tsquery('english', %(query)s)"
_ANY_WORD = "to_tsquery('simple', replace(plainto_tsquery('english', %(query)s)::text, ' & ', ' | '))"

_DETAILS_SQL = """
SELECT c.doc_id, d.key, d.filename, coalesce(cl.doc_type, c.metadata->>'doc_type') AS doc_type,
       c.chunk_index, c.text, c.heading_path, c.page_start, c.page_end, c.boxes
FROM unnest(%(doc_ids)s::text[], %(indexes)s::int[]) AS t(doc_id, chunk_index)
JOIN docflow.chunks c USING (doc_id, chunk_index)
JOIN docflow.documents d USING (doc_id)
LEFT JOIN docflow.classifications cl USING (doc_id)
"""

_NAME_TRIGRAMS_SQL = "SELECT docflow.name_key(%(q)s) AS key, docflow.name_trigrams(%(q)s) AS trigrams"
# Documents whose names hold every trigram of the query: share 1, the fewest names first (fit = n / all).
_FULL_NAMES_SQL = """
SELECT c.doc_id, 1.0::float AS share, %(n_q)s::float / greatest(cardinality(c.name_trgm), 1) AS fit
FROM docflow.chunks c JOIN docflow.documents d USING (doc_id)
WHERE c.chunk_index = 0 AND c.embedding_model = %(model)s AND c.name_trgm @> %(qtri)s::text[]{filters}
ORDER BY fit DESC, c.doc_id
LIMIT %(candidates)s
"""
# Documents holding at least `min_hits` of them, found by the groups' tests, at most NAME_POOL scored.
_NAMES_SQL = """
SELECT p.doc_id, m.hits::float / %(n_q)s AS share,
       m.hits::float / greatest(cardinality(p.name_trgm), 1) AS fit
FROM (
    SELECT c.doc_id, c.name_trgm
    FROM docflow.chunks c JOIN docflow.documents d USING (doc_id)
    WHERE c.chunk_index = 0 AND c.embedding_model = %(model)s AND ({groups}){filters}
    LIMIT %(pool)s
) p,
     LATERAL (SELECT count(*) AS hits FROM unnest(p.name_trgm) t WHERE t = ANY(%(qtri)s::text[])) m
WHERE m.hits >= %(min_hits)s
ORDER BY share DESC, fit DESC, p.doc_id
LIMIT %(candidates)s
"""

Key = tuple[str, int]
# The retrievers of a search run on these threads, each in a transaction of its own (see hybrid_search).
_RETRIEVERS = ThreadPoolExecutor(max_workers=6, thread_name_prefix="docflow-search")


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
    *,
    by_document: bool = False,
    name_query: str | None = None,
    boost_types: Sequence[str] = (),
) -> list[SearchHit]:
    """The `k` best chunks of `model`'s vectors for `query`, fused from vector and full-text rankings; with
    `by_document`, the `k` best documents (see the module's docstring), each as its best chunk.

    `tenant`/`doc_type` are shorthands for the same fields of `filters` (which win when both are given).
    `name_query` and `boost_types` are used by document only."""
    if filters is None:
        filters = SearchFilters(tenant=tenant, doc_type=doc_type)
    dim = len(query_vector)
    where, params = filters.sql()
    n = max(candidates, k * DOC_CANDIDATES_PER_HIT if by_document else k)
    words = (name_query if by_document and name_query and name_query.strip() else query).strip()
    params.update(
        {
            "qvec": _vector_literal(query_vector),
            "model": model,
            "query": words,
            "candidates": n,
            "pool": max(LEXICAL_POOL, n),
        }
    )

    def semantic() -> list[Key]:
        with store.tx() as conn:
            return _semantic(conn, dim, where, dict(params), n)[0]

    def lexical() -> list[Key]:
        if not words:
            return []
        with store.tx() as conn:
            return _lexical(conn, where, params)

    def names() -> list[tuple[str, float]]:
        if not by_document:
            return []
        with store.tx() as conn:
            conn.execute("SELECT set_config('enable_seqscan', 'off', true)")  # as for the full text
            return _names_ranking(conn, words, where, dict(params))

    # the retrievers are independent statements: run at once on connections of their own, a search costs
    # the slowest of them rather than their sum (no connection is held while waiting for another)
    jobs = [_RETRIEVERS.submit(fn) for fn in (semantic, lexical, names)]
    semantic_keys, lexical_keys, name_keys = (job.result() for job in jobs)
    with store.tx() as conn:
        if by_document:
            types = _doc_types(conn, semantic_keys, lexical_keys, name_keys) if boost_types else {}
            fused = fuse_documents(semantic_keys, lexical_keys, name_keys, types, boost_types)[:k]
        else:
            fused = rrf(semantic_keys, lexical_keys)[:k]
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


def semantic_search(
    store: Store,
    query_vector: Sequence[float],
    model: str,
    filters: SearchFilters | None = None,
    candidates: int = CANDIDATES,
) -> tuple[list[Key], str]:
    """The semantic retriever of `hybrid_search` alone: the `candidates` nearest chunks passing `filters`,
    and how they were found (`index`, `index_wider` or `exact`, see the module's docstring)."""
    where, params = _filtered(filters, model, qvec=_vector_literal(query_vector), candidates=candidates)
    with store.tx() as conn:
        return _semantic(conn, len(query_vector), where, params, candidates)


def exact_search(
    store: Store,
    query_vector: Sequence[float],
    model: str,
    filters: SearchFilters | None = None,
    k: int = 10,
) -> list[Key]:
    """The true `k` nearest chunks passing `filters` (every passing row compared: the truth recall is
    measured against)."""
    where, params = _filtered(filters, model, qvec=_vector_literal(query_vector), candidates=k)
    with store.tx() as conn:
        conn.execute("SELECT set_config('enable_indexscan', 'off', true)")
        rows = conn.execute(_semantic_sql(len(query_vector), where, exact=True), params).fetchall()
    return [(r["doc_id"], r["chunk_index"]) for r in rows]


def distances(store: Store, query_vector: Sequence[float], keys: Sequence[Key]) -> list[float]:
    """Cosine distances of the chunks `keys` to the query, in the order of `keys`."""
    if not keys:
        return []
    with store.tx() as conn:
        rows = conn.execute(
            """SELECT c.embedding <=> %(qvec)s::vector AS distance
               FROM unnest(%(doc_ids)s::text[], %(indexes)s::int[])
                    WITH ORDINALITY AS t(doc_id, chunk_index, i)
               JOIN docflow.chunks c USING (doc_id, chunk_index) ORDER BY t.i""",
            {
                "qvec": _vector_literal(query_vector),
                "doc_ids": [key[0] for key in keys],
                "indexes": [key[1] for key in keys],
            },
        ).fetchall()
    return [float(r["distance"]) for r in rows]


def count_matching(store: Store, model: str, filters: SearchFilters | None = None) -> int:
    """Chunks of `model` passing `filters`."""
    where, params = _filtered(filters, model)
    sql = (
        "SELECT count(*) AS n FROM docflow.chunks c JOIN docflow.documents d USING (doc_id) "
        f"WHERE c.embedding_model = %(model)s{where}"
    )
    with store.tx() as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row["n"]) if row else 0


def _filtered(filters: SearchFilters | None, model: str, **values: Any) -> tuple[str, dict[str, Any]]:
    """The filters' SQL and parameters, with the model's and the statement's own values."""
    where, params = (filters or SearchFilters()).sql()
    params.update(model=model, **values)
    return where, params


def _lexical(conn, where: str, params: dict[str, Any]) -> list[Key]:
    """The full-text ranking: chunks holding all the words, else any of them (see the module's docstring)."""
    # no parallel workers: the pool (LIMIT before ORDER BY) must be the same rows every time; bitmap scans
    # only: under the LIMIT the planner bets that the words' matches come soon in any order, and a sequential
    # scan (or a scan of the tenant's index with the words as a filter) reads the whole table (or tenant)
    # when they come late, e.g. words of the type last in that index's order
    conn.execute(
        "SELECT set_config('max_parallel_workers_per_gather', '0', true), "
        "set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)"
    )

    def keys(sql: str) -> list[Key]:
        return [(r["doc_id"], r["chunk_index"]) for r in conn.execute(sql, params).fetchall()]

    found = keys(_LEXICAL_SQL.format(tsquery=_ALL_WORDS, filters=where))
    return found or keys(_LEXICAL_SQL.format(tsquery=_ANY_WORD, filters=where))


def _semantic(conn, dim: int, where: str, params: dict[str, Any], n: int) -> tuple[list[Key], str]:
    """The `n` nearest chunks passing the filters `where` and how they were found."""

    def keys(sql: str) -> list[Key]:
        return [(r["doc_id"], r["chunk_index"]) for r in conn.execute(sql, params).fetchall()]

    ef = min(max(EF_SEARCH, n), EF_MAX)
    # no parallel workers: they cost more than they save on statements of milliseconds
    row = conn.execute(
        "SELECT set_config('hnsw.ef_search', %(ef)s, true), "
        "set_config('max_parallel_workers_per_gather', '0', true), "
        "to_regclass(%(type_index)s) IS NOT NULL AS typed",
        {"ef": str(ef), "type_index": _type_index(dim, params.get("f_doc_type"))},
    ).fetchone()
    # a filter naming a type that has an index of its own probes that graph (see TYPED_VECTOR_SQL)
    typed = bool(row and row["typed"])
    found = keys(_semantic_sql(dim, where, exact=False, typed=typed))
    strategy = "index"
    if len(found) < n:  # the filters (and the model) passed too few of the index's candidates: wider
        passing = _passing_rows(conn, dim, where, params, ef, len(found))
        wider = _wider_ef(ef, len(found), n)
        if wider is None and passing > EXACT_MAX_ROWS:
            wider = EF_MAX  # too many rows pass for an exact search: the widest probe, however short
        if wider is not None:
            conn.execute("SELECT set_config('hnsw.ef_search', %(ef)s, true)", {"ef": str(wider)})
            found = keys(_semantic_sql(dim, where, exact=False, typed=typed))
            strategy = "index_wider"
        if len(found) < n and (passing <= EXACT_MAX_ROWS or not found):
            # even so, and the filter is selective enough: search its rows exactly
            found = keys(_semantic_sql(dim, where, exact=True))
            strategy = "exact"
    return found, strategy


def _passing_rows(conn, dim: int, where: str, params: dict[str, Any], ef: int, passed: int) -> float:
    """Chunks estimated to pass the filters: the share of the probe's `ef` rows that passed times the chunks
    (the planner's count); when none passed, the planner's estimate of the filters."""
    if passed:
        row = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'docflow.chunks'::regclass").fetchone()
        return passed / max(ef, 1) * max(float(row["reltuples"] if row else 0.0), 0.0)
    sql = (
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM docflow.chunks c JOIN docflow.documents d USING (doc_id) "
        f"WHERE vector_dims(c.embedding) = {dim:d} AND c.embedding_model = %(model)s{where}"
    )
    plan = conn.execute(sql, params).fetchone()
    return float(plan["QUERY PLAN"][0]["Plan"]["Plan Rows"]) if plan else 0.0


def fuse_documents(
    semantic: Sequence[Key],
    lexical: Sequence[Key],
    names: Sequence[tuple[str, float]],
    doc_types: Mapping[str, str | None] | None = None,
    boost_types: Sequence[str] = (),
    k: int = RRF_K,
) -> list[tuple[Key, float]]:
    """Documents fused by reciprocal rank of their place in each ranking (chunk rankings reduced to
    documents; `names` as (doc_id, share of the query's name trigrams), weighted by `name_weight`), times
    `TYPE_BOOST` for a type in `boost_types`; each as its best chunk by the chunks' own fusion, else its first
    chunk. Ties by key for determinism."""
    scores: dict[str, float] = {}
    for ranking in (semantic, lexical):
        for rank, doc_id in enumerate(dict.fromkeys(doc_id for doc_id, _ in ranking), 1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    for rank, (doc_id, share) in enumerate(names, 1):
        scores[doc_id] = scores.get(doc_id, 0.0) + name_weight(share) / (k + rank)
    boosted = set(boost_types)
    for doc_id in scores:
        if (doc_types or {}).get(doc_id) in boosted:
            scores[doc_id] *= TYPE_BOOST
    best: dict[str, Key] = {}
    for key, _ in rrf(semantic, lexical, k=k):
        best.setdefault(key[0], key)
    fused = [(best.get(doc_id, (doc_id, 0)), score) for doc_id, score in scores.items()]
    return sorted(fused, key=lambda item: (-item[1], item[0]))


def name_weight(share: float) -> float:
    """NAME_WEIGHT at a full match, falling linearly to 0 at NAME_MIN_SHARE."""
    return NAME_WEIGHT * max(0.0, (share - NAME_MIN_SHARE) / (1.0 - NAME_MIN_SHARE))


def name_groups(trigrams: Sequence[str], min_hits: int) -> list[list[str]]:
    """`len(trigrams) - min_hits + 1` disjoint groups of the trigrams: a set holding at least `min_hits` of
    them holds every trigram of at least one group (see the module's docstring)."""
    n_groups = max(1, len(trigrams) - min_hits + 1)
    groups: list[list[str]] = [[] for _ in range(min(n_groups, len(trigrams)))]
    for i, trigram in enumerate(sorted(trigrams)):
        groups[i % len(groups)].append(trigram)
    return groups


def _names_ranking(conn, words: str, where: str, params: dict[str, Any]) -> list[tuple[str, float]]:
    """Documents whose names hold at least NAME_MIN_SHARE of the query's name trigrams, best first."""
    row = conn.execute(_NAME_TRIGRAMS_SQL, {"q": words}).fetchone()
    trigrams = list(row["trigrams"] or [])
    if len(row["key"] or "") < NAME_MIN_KEY or not trigrams:
        return []
    min_hits = max(1, math.ceil(NAME_MIN_SHARE * len(trigrams)))
    groups = name_groups(trigrams, min_hits)
    tests = " OR ".join(f"c.name_trgm @> %(g{i})s::text[]" for i in range(len(groups)))
    named = {
        **params,
        **{f"g{i}": group for i, group in enumerate(groups)},
        "qtri": trigrams,
        "n_q": len(trigrams),
        "min_hits": min_hits,
    }
    full = conn.execute(_FULL_NAMES_SQL.format(filters=where), named).fetchall()
    if len(full) >= named["candidates"]:  # no partial match could rank among them
        return [(r["doc_id"], r["share"]) for r in full]
    named["pool"] = NAME_POOL
    rows = conn.execute(_NAMES_SQL.format(groups=tests, filters=where), named).fetchall()
    best = {r["doc_id"]: (r["share"], r["fit"]) for r in rows}
    best.update({r["doc_id"]: (r["share"], r["fit"]) for r in full})
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
    return [(doc_id, share) for doc_id, (share, _) in ranked[: named["candidates"]]]


def _doc_types(conn, *rankings: Sequence[Any]) -> dict[str, str | None]:
    """The type of every document in the rankings (classification, else the chunks' metadata)."""
    ids = {item[0] for ranking in rankings for item in ranking}
    if not ids:
        return {}
    rows = conn.execute(
        """SELECT d.doc_id, coalesce(cl.doc_type, c.metadata->>'doc_type') AS doc_type
           FROM unnest(%(ids)s::text[]) AS d(doc_id)
           LEFT JOIN docflow.classifications cl USING (doc_id)
           LEFT JOIN docflow.chunks c ON c.doc_id = d.doc_id AND c.chunk_index = 0""",
        {"ids": sorted(ids)},
    ).fetchall()
    return {r["doc_id"]: r["doc_type"] for r in rows}


def _wider_ef(ef: int, passed: int, wanted: int) -> int | None:
    """The ef_search that should let `wanted` rows pass the filters when `passed` of `ef` did, or None when
    even pgvector's maximum would not (or nothing passed: no estimate) and an exact search is the way."""
    if passed == 0 or ef >= EF_MAX:
        return None
    needed = math.ceil(wanted * ef / passed * EF_MARGIN)
    if needed > EF_MAX * EF_MARGIN:
        return None
    return min(max(needed, ef + 1), EF_MAX)


def _semantic_sql(dim: int, where: str, exact: bool, typed: bool = False) -> str:
    distance = _EXACT_DISTANCE if exact else _TYPED_DISTANCE if typed else _HNSW_DISTANCE
    return _SEMANTIC_SQL.format(dim=dim, filters=where, distance=distance.format(dim=dim))


def type_vector_index_name(dimension: int, doc_type: str) -> str:
    """A doc type's own index's name: the type's letters and a digest (any type name, within 63 bytes)."""
    slug = re.sub(r"[^a-z0-9]+", "_", doc_type.lower())[:24]
    return f"chunks_embedding_{dimension:d}_type_{slug}_{hashlib.sha1(doc_type.encode()).hexdigest()[:8]}"


def _type_index(dim: int, doc_type: str | None) -> str | None:
    """The qualified name of `doc_type`'s own index for the dimension (None without a type)."""
    return None if doc_type is None else f"docflow.{type_vector_index_name(dim, doc_type)}"
