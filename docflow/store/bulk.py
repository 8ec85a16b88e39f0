"""Bulk loads and their cleanup, for the benchmarks: COPY of synthetic documents and chunks, the vector
index dropped and rebuilt around a load, lookups of documents by key prefix."""

from collections.abc import Iterable, Sequence
from typing import Any

from docflow.store.db import Store


def count_model_chunks(store: Store, model: str) -> int:
    """Chunks embedded with one model (a benchmark stores its rows under a model name of its own)."""
    with store.tx() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM docflow.chunks WHERE embedding_model = %s", (model,)
        ).fetchone()
    return int(row["n"]) if row else 0


def copy_documents_and_chunks(
    store: Store, documents: Iterable[Sequence[Any]], chunks: Iterable[Sequence[Any]]
) -> None:
    """COPY rows in one transaction. Documents: (doc_id, tenant, bucket, key, sha256, filename, status);
    chunks: (doc_id, chunk_index, text, heading_path, page_start, page_end, n_tokens, metadata,
    embedding_model, embedding)."""
    with store.tx() as conn:
        with conn.cursor().copy(
            "COPY docflow.documents (doc_id, tenant, bucket, key, sha256, filename, status) FROM STDIN"
        ) as copy:
            for row in documents:
                copy.write_row(row)
        with conn.cursor().copy(
            "COPY docflow.chunks (doc_id, chunk_index, text, heading_path, page_start, page_end, n_tokens, "
            "metadata, embedding_model, embedding) FROM STDIN"
        ) as copy:
            for row in chunks:
                copy.write_row(row)


def analyze(store: Store) -> None:
    """Fresh planner statistics after a bulk load."""
    with store.tx() as conn:
        conn.execute("ANALYZE docflow.documents")
        conn.execute("ANALYZE docflow.chunks")


def drop_vector_index(store: Store, dimension: int) -> None:
    """Inserting many rows into a live HNSW graph is far slower than building the graph once after them."""
    with store.tx() as conn:
        conn.execute(f"DROP INDEX IF EXISTS docflow.chunks_embedding_{dimension:d}")


def build_vector_index(store: Store, dimension: int) -> None:
    """The index `Store.ensure_vector_index` makes, built in bulk with enough memory for the graph."""
    with store.tx() as conn:
        conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
        conn.execute("SET LOCAL max_parallel_maintenance_workers = 2")
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS chunks_embedding_{dimension:d} ON docflow.chunks "
            f"USING hnsw ((embedding::vector({dimension:d})) vector_cosine_ops) "
            f"WHERE vector_dims(embedding) = {dimension:d}"
        )


def delete_model_rows(store: Store, model: str, tenant: str) -> None:
    """A benchmark's rows: the chunks of its model and the documents of its tenant."""
    with store.tx() as conn:
        conn.execute("DELETE FROM docflow.chunks WHERE embedding_model = %s", (model,))
        conn.execute("DELETE FROM docflow.documents WHERE tenant = %s", (tenant,))


def keys_by_prefix(store: Store, prefix: str) -> dict[str, str]:
    """Object key -> doc_id for every key of every document that starts with `prefix`."""
    pattern = prefix.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    with store.tx() as conn:
        rows = conn.execute(
            "SELECT doc_id, keys FROM docflow.documents WHERE EXISTS "
            "(SELECT 1 FROM unnest(keys) k WHERE k LIKE %s)",
            (pattern,),
        ).fetchall()
    return {key: row["doc_id"] for row in rows for key in row["keys"]}
