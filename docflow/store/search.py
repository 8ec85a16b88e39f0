"""Hybrid search: pgvector (HNSW, cosine) and Postgres full-text, fused with reciprocal rank fusion."""

from collections.abc import Sequence

from docflow.models import SearchHit
from docflow.store.db import Store, _vector_literal

RRF_K = 60  # the usual constant of reciprocal rank fusion: score = sum 1 / (RRF_K + rank)
CANDIDATES = 50  # per retriever, before fusion

_SQL = """
WITH semantic AS (
    SELECT c.doc_id, c.chunk_index,
           row_number() OVER (ORDER BY c.embedding::vector({dim}) <=> %(qvec)s::vector({dim})) AS rank
    FROM docflow.chunks c JOIN docflow.documents d USING (doc_id)
    WHERE vector_dims(c.embedding) = {dim} AND c.embedding_model = %(model)s
      AND (%(tenant)s::text IS NULL OR d.tenant = %(tenant)s)
      AND (%(doc_type)s::text IS NULL OR c.metadata->>'doc_type' = %(doc_type)s)
    ORDER BY c.embedding::vector({dim}) <=> %(qvec)s::vector({dim})
    LIMIT %(candidates)s
),
lexical AS (
    SELECT c.doc_id, c.chunk_index,
           row_number() OVER (ORDER BY ts_rank_cd(c.tsv, q) DESC) AS rank
    FROM docflow.chunks c JOIN docflow.documents d USING (doc_id),
         websearch_to_tsquery('english', %(query)s) q
    WHERE c.tsv @@ q
      AND (%(tenant)s::text IS NULL OR d.tenant = %(tenant)s)
      AND (%(doc_type)s::text IS NULL OR c.metadata->>'doc_type' = %(doc_type)s)
    ORDER BY ts_rank_cd(c.tsv, q) DESC
    LIMIT %(candidates)s
),
fused AS (
    SELECT doc_id, chunk_index, sum(1.0 / (%(rrf_k)s + rank)) AS score
    FROM (SELECT * FROM semantic UNION ALL SELECT * FROM lexical) ranked
    GROUP BY doc_id, chunk_index
)
SELECT f.doc_id, d.key, d.filename, cl.doc_type, f.chunk_index, f.score, c.text, c.heading_path,
       c.page_start, c.page_end
FROM fused f
JOIN docflow.chunks c USING (doc_id, chunk_index)
JOIN docflow.documents d USING (doc_id)
LEFT JOIN docflow.classifications cl USING (doc_id)
ORDER BY f.score DESC, f.doc_id, f.chunk_index
LIMIT %(k)s
"""


def hybrid_search(
    store: Store,
    query: str,
    query_vector: Sequence[float],
    model: str,
    k: int = 10,
    tenant: str | None = None,
    doc_type: str | None = None,
) -> list[SearchHit]:
    dim = len(query_vector)
    params = {
        "qvec": _vector_literal(query_vector),
        "model": model,
        "query": query,
        "tenant": tenant,
        "doc_type": doc_type,
        "candidates": max(CANDIDATES, k),
        "rrf_k": RRF_K,
        "k": k,
    }
    with store.tx() as conn:
        conn.execute("SET LOCAL hnsw.ef_search = 100")
        rows = conn.execute(_SQL.format(dim=int(dim)), params).fetchall()
    return [SearchHit.model_validate({**r, "score": float(r["score"])}) for r in rows]
