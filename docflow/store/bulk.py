"""Bulk loads and their cleanup, for the benchmarks: COPY of synthetic documents and chunks, the vector
index dropped and rebuilt around a load, lookups of documents by key prefix."""

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from docflow.store.db import Store
from docflow.store.search import TYPED_VECTOR_SQL, type_vector_index_name


def count_model_chunks(store: Store, model: str) -> int:
    """Chunks embedded with one model (a benchmark stores its rows under a model name of its own)."""
    with store.tx() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM docflow.chunks WHERE embedding_model = %s", (model,)
        ).fetchone()
    return int(row["n"]) if row else 0


# PGCOPY signature, flags, header extension length (the binary COPY format of the Postgres docs).
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
BINARY_CHUNK_COLUMNS = (
    "doc_id, chunk_index, text, page_start, page_end, n_tokens, metadata, embedding_model, embedding"
)


def copy_binary_chunks(
    store: Store, documents: Iterable[Sequence[Any]], chunk_blocks: Iterable[bytes]
) -> None:
    """COPY documents (text rows: doc_id, tenant, bucket, key, sha256, filename, status) and chunks in one
    transaction; the chunks as blocks of binary COPY tuples of BINARY_CHUNK_COLUMNS (no signature or trailer:
    added here), so that a caller formats millions of vectors with numpy rather than as decimal text."""
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


def vacuum_analyze(store: Store) -> None:
    """Fresh planner statistics and visibility map after a bulk load, as autovacuum would leave them later:
    until then the rows of an earlier delete stay dead in the table and its indexes, and every scan reads
    them (a search bench measured several times slower before autovacuum came)."""
    with psycopg.connect(store.url, autocommit=True) as conn:  # VACUUM runs outside a transaction
        conn.execute("VACUUM (ANALYZE) docflow.documents")
        conn.execute("VACUUM (ANALYZE) docflow.chunks")


def drop_vector_index(store: Store, dimension: int) -> None:
    """Inserting many rows into a live HNSW graph is far slower than building the graph once after them (the
    dimension's per-type indexes, `search.type_vector_index_name`, are dropped too)."""
    with store.tx() as conn:
        conn.execute(f"DROP INDEX IF EXISTS docflow.chunks_embedding_{dimension:d}")
        for row in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'docflow' AND indexname LIKE %s",
            (f"chunks_embedding_{dimension:d}_type_%",),
        ).fetchall():
            conn.execute(sql.SQL("DROP INDEX IF EXISTS docflow.{}").format(sql.Identifier(row["indexname"])))


def build_vector_index(
    store: Store,
    dimension: int,
    memory: str = "1GB",
    parallel_workers: int = 2,
    doc_type: str | None = None,
) -> None:
    """The index `Store.ensure_vector_index` makes, built in bulk. pgvector builds the graph in
    maintenance_work_mem and falls back to a far slower build on disk once the graph outgrows it: `memory`
    must hold the whole graph (about the vectors' size plus a quarter).

    With `doc_type`: a partial index of that type's chunks alone (`search.type_vector_index_name`), on the
    expression `search.TYPED_VECTOR_SQL` (the same vector, written so that only a search that chose this
    index can use it: the planner costs both graphs alike and keeps the whole table's). A search filtered
    on the type probes it (see docflow.store.search): pgvector < 0.8 filters only the rows a probe returns,
    and among the type's own nearest chunks a further filter (a tenant, an amount range) passes a share
    that the other types' rows dilute in the whole table's graph."""

    name, where = f"chunks_embedding_{dimension:d}", sql.SQL(f"vector_dims(embedding) = {dimension:d}")
    vector = sql.SQL(f"embedding::vector({dimension:d})")
    if doc_type is not None:
        name = type_vector_index_name(dimension, doc_type)
        where = sql.SQL("{} AND (metadata->>'doc_type') = {}").format(where, sql.Literal(doc_type))
        vector = sql.SQL(TYPED_VECTOR_SQL.format(column="embedding", dim=dimension))
    with store.tx() as conn:
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (memory,))
        conn.execute(
            "SELECT set_config('max_parallel_maintenance_workers', %s, true)", (str(parallel_workers),)
        )
        conn.execute(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON docflow.chunks USING hnsw (({}) vector_cosine_ops) WHERE {}"
            ).format(sql.Identifier(name), vector, where)
        )


def delete_model_rows(store: Store, model: str, tenants: str | Sequence[str]) -> None:
    """A benchmark's rows: the chunks of its model and the documents of its tenants."""
    names = [tenants] if isinstance(tenants, str) else list(tenants)
    with store.tx() as conn:
        conn.execute("DELETE FROM docflow.chunks WHERE embedding_model = %s", (model,))
        conn.execute("DELETE FROM docflow.documents WHERE tenant = ANY(%s)", (names,))


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
