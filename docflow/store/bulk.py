"""Bulk loads and their cleanup, for the benchmarks: COPY of synthetic documents and chunks, the vector
index dropped and rebuilt around a load, lookups of documents by key prefix."""

import struct
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


# PGCOPY signature, flags, header extension length (the binary COPY format of the Postgres docs).
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
BINARY_CHUNK_COLUMNS = (
    "doc_id, chunk_index, text, page_start, page_end, n_tokens, metadata, embedding_model, embedding"
)


def copy_binary_chunks(
    store: Store, documents: Iterable[Sequence[Any]], chunk_blocks: Iterable[bytes]
) -> None:
    """COPY documents (text rows as in `copy_documents_and_chunks`) and chunks in one transaction; the chunks
    as blocks of binary COPY tuples of BINARY_CHUNK_COLUMNS (no signature or trailer: added here), so that a
    caller formats millions of vectors with numpy rather than as decimal text."""
    with store.tx() as conn:
        with conn.cursor().copy(
            "COPY docflow.documents (doc_id, tenant, bucket, key, sha256, filename, status) FROM STDIN"
        ) as copy:
            for row in documents:
                copy.write_row(row)
        with conn.cursor().copy(
            f"COPY docflow.chunks ({BINARY_CHUNK_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(COPY_SIGNATURE)
            for block in chunk_blocks:
                copy.write(block)
            copy.write(COPY_TRAILER)


def analyze(store: Store) -> None:
    """Fresh planner statistics after a bulk load."""
    with store.tx() as conn:
        conn.execute("ANALYZE docflow.documents")
        conn.execute("ANALYZE docflow.chunks")


def drop_vector_index(store: Store, dimension: int) -> None:
    """Inserting many rows into a live HNSW graph is far slower than building the graph once after them."""
    with store.tx() as conn:
        conn.execute(f"DROP INDEX IF EXISTS docflow.chunks_embedding_{dimension:d}")


def build_vector_index(store: Store, dimension: int, memory: str = "1GB", parallel_workers: int = 2) -> None:
    """The index `Store.ensure_vector_index` makes, built in bulk. pgvector builds the graph in
    maintenance_work_mem and falls back to a far slower build on disk once the graph outgrows it: `memory`
    must hold the whole graph (about the vectors' size plus a quarter)."""
    with store.tx() as conn:
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (memory,))
        conn.execute(
            "SELECT set_config('max_parallel_maintenance_workers', %s, true)", (str(parallel_workers),)
        )
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS chunks_embedding_{dimension:d} ON docflow.chunks "
            f"USING hnsw ((embedding::vector({dimension:d})) vector_cosine_ops) "
            f"WHERE vector_dims(embedding) = {dimension:d}"
        )


def delete_model_rows(store: Store, model: str, tenants: str | Sequence[str]) -> None:
    """A benchmark's rows: the chunks of its model and the documents of its tenants."""
    names = [tenants] if isinstance(tenants, str) else list(tenants)
    with store.tx() as conn:
        conn.execute("DELETE FROM docflow.chunks WHERE embedding_model = %s", (model,))
        conn.execute("DELETE FROM docflow.documents WHERE tenant = ANY(%s)", (names,))


def count_tenant_documents(store: Store, tenant: str) -> int:
    with store.tx() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM docflow.documents WHERE tenant = %s", (tenant,)
        ).fetchone()
    return int(row["n"]) if row else 0


def relation_sizes(store: Store, dimension: int) -> dict[str, int]:
    """Bytes of the chunks table (with its TOAST, without indexes), of the dimension's HNSW index and of all
    the chunks' indexes."""
    with store.tx() as conn:
        row = conn.execute(
            "SELECT pg_table_size('docflow.chunks') AS table_bytes, "
            "coalesce(pg_relation_size(to_regclass(%s)), 0) AS hnsw_bytes, "
            "pg_indexes_size('docflow.chunks') AS indexes_bytes",
            (f"docflow.chunks_embedding_{dimension:d}",),
        ).fetchone()
    return dict(row) if row else {}


def backend_pid(store: Store) -> int:
    with store.tx() as conn:
        row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
    return int(row["pid"]) if row else 0


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
