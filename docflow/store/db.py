"""Postgres access for docflow's tables: migrations, per-document upserts, reads. No Dagster here.

Every write for one asset of one document is one transaction; re-running converges to the same rows.
"""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from docflow.errors import BackendUnavailable, DocflowError, NotFound
from docflow.models import (
    Chunk,
    Classification,
    DocStatus,
    Document,
    Extraction,
    ParsedDocument,
    RawFile,
)
from docflow.schemas import load_types
from docflow.store import quotas, reviews, typed_views
from docflow.store.quotas import Limits

_MIGRATION_LOCK = 0x646F63666C6F77  # "docflow"
_pools: dict[str, ConnectionPool] = {}
_indexed: set[tuple[str, int]] = set()  # (url, dimension) whose HNSW index this process has ensured


def _configure(conn: psycopg.Connection) -> None:
    with suppress(psycopg.ProgrammingError):  # the extension is created by the first migration
        register_vector(conn)
    conn.commit()


def _pool(url: str) -> ConnectionPool:
    """One small pool per database URL and process."""
    if url not in _pools:
        # no server-side prepared statements: a migration that adds a column (`SELECT d.*`) would make
        # their cached plans fail ("cached plan must not change result type") on long-lived connections
        _pools[url] = ConnectionPool(
            url,
            min_size=0,
            max_size=4,
            configure=_configure,
            open=True,
            timeout=30,
            max_idle=60,
            check=ConnectionPool.check_connection,  # a server restart leaves dead connections in the pool
            kwargs={"prepare_threshold": None},
        )
    return _pools[url]


class Registered(NamedTuple):
    doc_id: str  # the id the bytes are stored under: use it, not the one asked for
    new: bool


class Admitted(NamedTuple):
    """A registration counted against the tenant's daily quota."""

    doc_id: str
    new: bool
    refused: str | None = None  # 'quota exceeded: ...': the new document was registered as failed


# Identity is the tenant and the content (unique index documents_tenant_sha256), not the id, which names the
# file: the same bytes under two names are one document. The insert takes no conflict target so that a race
# on either unique index (the id or the bytes) ends in DO NOTHING rather than an error; the update that
# follows, in a new snapshot, sees the row that won and returns its id.
_INSERT_DOCUMENT = """
INSERT INTO docflow.documents
    (doc_id, tenant, bucket, key, keys, etag, sha256, size, content_type, filename, status)
VALUES (%(doc_id)s, %(tenant)s, %(bucket)s, %(key)s, ARRAY[%(key)s], %(etag)s, %(sha256)s,
        %(size)s, %(content_type)s, %(filename)s, 'pending')
ON CONFLICT DO NOTHING
RETURNING doc_id
"""
_ADD_KEY = """
UPDATE docflow.documents SET keys = CASE WHEN %(key)s = ANY(keys) THEN keys ELSE keys || %(key)s END
WHERE tenant = %(tenant)s AND sha256 = %(sha256)s
RETURNING doc_id
"""


def register_document(conn: psycopg.Connection, params: dict[str, Any], attempts: int = 3) -> Registered:
    """`Store.register` inside the caller's transaction (read committed)."""
    for _ in range(attempts):  # the row that won may be deleted before we read it: insert again
        if row := conn.execute(_INSERT_DOCUMENT, params).fetchone():
            return Registered(row["doc_id"], True)
        if row := conn.execute(_ADD_KEY, params).fetchone():
            return Registered(row["doc_id"], False)
    raise DocflowError(
        f"cannot register {params['key']!r} as {params['doc_id']!r}: that id belongs to other bytes "
        "(a hash prefix shared by two files of the same name)"
    )


class Store:
    """docflow's Postgres tables for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    @contextmanager
    def tx(self) -> Iterator[psycopg.Connection]:
        """A connection inside one transaction (committed on success, rolled back on error)."""
        try:
            with _pool(self.url).connection() as conn, conn.transaction():
                conn.row_factory = dict_row
                yield conn
        except psycopg.OperationalError as exc:
            raise BackendUnavailable(f"Postgres unavailable: {exc}") from exc

    # --- schema ------------------------------------------------------------------------------------
    def migrate(self, rules_path: Path | str | None = None) -> list[str]:
        """Apply the SQL files in store/migrations that have not run yet, then create or replace the typed
        view of every document type of the rules file `rules_path` (default data/doc_types.yaml) whose
        definition changed (store.typed_views); returns the SQL files' names."""
        files = sorted(
            (f for f in resources.files("docflow.store").joinpath("migrations").iterdir()),
            key=lambda f: f.name,
        )
        applied: list[str] = []
        with psycopg.connect(self.url, autocommit=False) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE SCHEMA IF NOT EXISTS docflow")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS docflow.schema_migrations "
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT name FROM docflow.schema_migrations")}
            for f in files:
                if f.name.endswith(".sql") and f.name not in done:
                    conn.execute(f.read_text())
                    conn.execute("INSERT INTO docflow.schema_migrations (name) VALUES (%s)", (f.name,))
                    applied.append(f.name)
            typed_views.ensure_views(conn, load_types(rules_path))
            conn.commit()
        return applied

    def ensure_vector_index(self, dimension: int) -> None:
        """An HNSW (cosine) index for vectors of one dimension; chunks of other models are not in it."""
        if (self.url, dimension) in _indexed:
            return
        with self.tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK + dimension,))
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS chunks_embedding_{dimension:d} ON docflow.chunks "
                f"USING hnsw ((embedding::vector({dimension:d})) vector_cosine_ops) "
                f"WHERE vector_dims(embedding) = {dimension:d}"
            )
        _indexed.add((self.url, dimension))

    # --- documents ---------------------------------------------------------------------------------
    def register(self, doc: Document) -> Registered:
        """Record a document as pending, or add `doc.key` to the document that holds the same bytes for the
        tenant, whatever it is called. Returns the id stored for the bytes (the first registration's, which
        differs from `doc.doc_id` when they were first registered under another name) and whether it is new.
        """
        with self.tx() as conn:
            return register_document(conn, doc.model_dump())

    def register_counted(self, doc: Document, limits: Limits | None) -> Admitted:
        """`register`, and a new document is counted against its tenant's daily quota in the same transaction
        (the sensor's and `docflow run`'s entrance; the API counts its own uploads). Over the quota the
        document is registered all the same, as failed with the refusal as its error (a dead letter that
        `docflow retry --failed` counts again), and nothing is counted. `limits` None counts nothing (tests,
        benches)."""
        with self.tx() as conn:
            doc_id, new = register_document(conn, doc.model_dump())
            refused = None
            if new and limits is not None:
                refused = quotas.charge(conn, doc.tenant, doc.size, limits)
                if refused:
                    conn.execute(
                        """UPDATE docflow.documents SET status = 'failed', error = %s, updated_at = now()
                           WHERE doc_id = %s""",
                        (refused, doc_id),
                    )
        return Admitted(doc_id, new, refused)

    def readmit(self, doc_id: str, limits: Limits) -> str | None:
        """Count a document the quota refused against today's quota now, and make it pending again when it
        fits (for `docflow retry --failed`). Returns the refusal when it still does not fit (it stays failed,
        with the current limit in its error); None when it was counted, or was not a quota refusal."""
        with self.tx() as conn:
            row = conn.execute(  # the row lock: two retries at once count the document once
                "SELECT tenant, size, status, error FROM docflow.documents WHERE doc_id = %s FOR UPDATE",
                (doc_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"document {doc_id!r} is not registered")
            if row["status"] != "failed" or not quotas.is_quota_error(row["error"]):
                return None
            refused = quotas.charge(conn, row["tenant"], row["size"] or 0, limits)
            conn.execute(
                """UPDATE docflow.documents SET status = %s, error = %s, updated_at = now()
                   WHERE doc_id = %s""",
                ("failed" if refused else "pending", refused, doc_id),
            )
        return refused

    def known(self, doc_ids: Sequence[str]) -> dict[str, DocStatus]:
        """Status of those of `doc_ids` that are registered."""
        with self.tx() as conn:
            rows = conn.execute(
                "SELECT doc_id, status FROM docflow.documents WHERE doc_id = ANY(%s)", (list(doc_ids),)
            ).fetchall()
        return {r["doc_id"]: r["status"] for r in rows}

    def failed_at(self, doc_ids: Sequence[str]) -> dict[str, float]:
        """Those of `doc_ids` that are failed, with when they failed (Unix time)."""
        with self.tx() as conn:
            rows = conn.execute(
                "SELECT doc_id, extract(epoch FROM updated_at)::float8 AS at FROM docflow.documents "
                "WHERE doc_id = ANY(%s) AND status = 'failed'",
                (list(doc_ids),),
            ).fetchall()
        return {r["doc_id"]: r["at"] for r in rows}

    def get_document(self, doc_id: str) -> Document:
        docs = self.list_documents(doc_id=doc_id)
        if not docs:
            raise NotFound(f"document {doc_id!r} is not registered")
        return docs[0]

    def list_documents(
        self,
        doc_id: str | None = None,
        tenant: str | None = None,
        status: DocStatus | None = None,
        limit: int = 1000,
    ) -> list[Document]:
        with self.tx() as conn:
            rows = conn.execute(
                """
                SELECT d.*, c.doc_type FROM docflow.documents d
                LEFT JOIN docflow.classifications c USING (doc_id)
                WHERE (%(doc_id)s::text IS NULL OR d.doc_id = %(doc_id)s)
                  AND (%(tenant)s::text IS NULL OR d.tenant = %(tenant)s)
                  AND (%(status)s::text IS NULL OR d.status = %(status)s)
                ORDER BY d.created_at, d.doc_id LIMIT %(limit)s
                """,
                {"doc_id": doc_id, "tenant": tenant, "status": status, "limit": limit},
            ).fetchall()
        return [Document.model_validate(r) for r in rows]

    def set_status(
        self, doc_id: str, status: DocStatus, stage: str | None = None, error: str | None = None
    ) -> None:
        with self.tx() as conn:
            conn.execute(
                """UPDATE docflow.documents SET status = %s, stage = coalesce(%s, stage), error = %s,
                   updated_at = now() WHERE doc_id = %s""",
                (status, stage, error, doc_id),
            )

    # --- lifecycle: changed objects, deleted objects, configuration changes -------------------------
    def move_key(self, key: str, to_doc_id: str) -> list[str]:
        """`key` now holds the bytes of `to_doc_id`: take it from other documents. Those left with no key
        are marked superseded by `to_doc_id`. Returns the ids of the documents that lost the key."""
        with self.tx() as conn:
            rows = conn.execute(
                """UPDATE docflow.documents SET keys = array_remove(keys, %(key)s),
                       superseded_by = CASE WHEN keys = ARRAY[%(key)s] THEN %(to)s ELSE superseded_by END,
                       updated_at = now()
                   WHERE keys @> ARRAY[%(key)s] AND doc_id <> %(to)s RETURNING doc_id""",
                {"key": key, "to": to_doc_id},
            ).fetchall()
        return [r["doc_id"] for r in rows]

    def removable_superseded(self) -> list[str]:
        """Superseded documents whose successor has finished (done or failed): safe to remove now."""
        with self.tx() as conn:
            rows = conn.execute(
                """SELECT old.doc_id FROM docflow.documents old
                   JOIN docflow.documents new ON new.doc_id = old.superseded_by
                   WHERE cardinality(old.keys) = 0 AND new.status IN ('done', 'failed')
                     -- a successor the quota refused has not been processed yet: keep the old one till then
                     AND NOT (new.status = 'failed' AND starts_with(coalesce(new.error, ''), %s))""",
                (quotas.QUOTA_ERROR,),
            ).fetchall()
        return [r["doc_id"] for r in rows]

    def stale_documents(self, fingerprint: str, limit: int) -> list[Document]:
        """Done documents processed with another configuration, oldest first; archived ones (no partition:
        partition retention) are left out, and come back once restored."""
        with self.tx() as conn:
            rows = conn.execute(
                """SELECT d.*, c.doc_type FROM docflow.documents d
                   LEFT JOIN docflow.classifications c USING (doc_id)
                   WHERE d.status = 'done' AND d.config_fingerprint IS DISTINCT FROM %s
                     AND d.archived_at IS NULL
                   ORDER BY d.updated_at LIMIT %s""",
                (fingerprint, limit),
            ).fetchall()
        return [Document.model_validate(r) for r in rows]

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents with all their rows (classifications, parsed, extractions, chunks cascade)."""
        if not doc_ids:
            return 0
        with self.tx() as conn:
            cur = conn.execute("DELETE FROM docflow.documents WHERE doc_id = ANY(%s)", (list(doc_ids),))
            return cur.rowcount

    # --- per-asset results -------------------------------------------------------------------------
    def save_raw(self, raw: RawFile, etag: str) -> None:
        with self.tx() as conn:
            conn.execute(
                """UPDATE docflow.documents SET sha256 = %s, size = %s, content_type = %s, pages = %s,
                   etag = %s, status = 'running', stage = 'raw_file', error = NULL, updated_at = now()
                   WHERE doc_id = %s""",
                (raw.sha256, raw.size, raw.content_type, raw.pages, etag, raw.doc_id),
            )

    def save_classification(self, doc_id: str, c: Classification) -> None:
        with self.tx() as conn:
            conn.execute(
                """INSERT INTO docflow.classifications
                       (doc_id, doc_type, confidence, reasoning, scores, backend)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (doc_id) DO UPDATE SET doc_type = excluded.doc_type,
                       confidence = excluded.confidence, reasoning = excluded.reasoning,
                       scores = excluded.scores, backend = excluded.backend, updated_at = now()""",
                (doc_id, c.doc_type, c.confidence, c.reasoning, Jsonb(c.scores), c.backend),
            )
            _stage(conn, doc_id, "classification")

    def save_parsed(self, doc_id: str, p: ParsedDocument) -> None:
        blocks = [b.model_dump() for b in p.blocks]
        spans = [s.model_dump() for s in p.spans]
        with self.tx() as conn:
            conn.execute(
                """INSERT INTO docflow.parsed_documents
                       (doc_id, markdown, text, pages, blocks, parser, warnings, spans)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (doc_id) DO UPDATE SET markdown = excluded.markdown, text = excluded.text,
                       pages = excluded.pages, blocks = excluded.blocks, parser = excluded.parser,
                       warnings = excluded.warnings, spans = excluded.spans, updated_at = now()""",
                (
                    doc_id,
                    p.markdown,
                    p.text,
                    p.pages,
                    Jsonb(blocks),
                    p.parser,
                    Jsonb(p.warnings),
                    Jsonb(spans),
                ),
            )
            _stage(conn, doc_id, "parsed_markdown")

    def save_extraction(self, doc_id: str, e: Extraction) -> None:
        with self.tx() as conn:
            conn.execute(
                """INSERT INTO docflow.extractions (doc_id, doc_type, schema_name, schema_version, fields,
                       field_confidence, validation_errors, backend, provenance)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (doc_id) DO UPDATE SET doc_type = excluded.doc_type,
                       schema_name = excluded.schema_name, schema_version = excluded.schema_version,
                       fields = excluded.fields, field_confidence = excluded.field_confidence,
                       validation_errors = excluded.validation_errors, backend = excluded.backend,
                       provenance = excluded.provenance, updated_at = now()""",
                (
                    doc_id,
                    e.doc_type,
                    e.schema_name,
                    e.schema_version,
                    Jsonb(jsonable(e.fields)),
                    Jsonb(e.field_confidence),
                    Jsonb(e.validation_errors),
                    e.backend,
                    Jsonb({path: source.model_dump() for path, source in e.provenance.items()}),
                ),
            )
            _stage(conn, doc_id, "extracted_fields")
            # reviewed values win over the extractor's, in the same transaction (never a moment without them)
            reviews.apply_reviews(conn, doc_id)

    def save_chunks(
        self,
        doc_id: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        model: str,
        fingerprint: str,
    ) -> None:
        """Replace the document's chunks atomically and mark it done (readers see old or new, never none)."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        with self.tx() as conn:
            found = conn.execute(
                "SELECT tenant FROM docflow.documents WHERE doc_id = %s FOR UPDATE", (doc_id,)
            ).fetchone()
            if found is None:
                raise NotFound(f"no document {doc_id!r} to save chunks for")
            # the metadata's tenant is the document's: search filters read it (migration 0018)
            rows = [
                (
                    doc_id,
                    c.index,
                    c.text,
                    c.heading_path,
                    c.page_start,
                    c.page_end,
                    c.n_tokens,
                    Jsonb({**jsonable(c.metadata), "tenant": found["tenant"]}),
                    model,
                    _vector_literal(v),
                    Jsonb([b.model_dump() for b in c.boxes]),
                )
                for c, v in zip(chunks, vectors, strict=True)
            ]
            conn.execute("DELETE FROM docflow.chunks WHERE doc_id = %s", (doc_id,))
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO docflow.chunks (doc_id, chunk_index, text, heading_path, page_start,
                           page_end, n_tokens, metadata, embedding_model, embedding, boxes)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::vector, %s)""",
                    rows,
                )
            conn.execute(
                """UPDATE docflow.documents SET status = 'done', stage = 'embeddings', error = NULL,
                   config_fingerprint = %s, updated_at = now() WHERE doc_id = %s""",
                (fingerprint, doc_id),
            )

    # --- reads for downstream assets ---------------------------------------------------------------
    def load_classification(self, doc_id: str) -> Classification:
        row = self._one("SELECT * FROM docflow.classifications WHERE doc_id = %s", doc_id, "classification")
        return Classification.model_validate(row)

    def load_parsed(self, doc_id: str) -> ParsedDocument:
        row = self._one("SELECT * FROM docflow.parsed_documents WHERE doc_id = %s", doc_id, "parsed markdown")
        return ParsedDocument.model_validate(row)

    def load_extraction(self, doc_id: str) -> Extraction:
        row = self._one("SELECT * FROM docflow.extractions WHERE doc_id = %s", doc_id, "extraction")
        return Extraction.model_validate(row)

    def count_chunks(self, doc_id: str) -> int:
        with self.tx() as conn:
            row = conn.execute("SELECT count(*) AS n FROM docflow.chunks WHERE doc_id = %s", (doc_id,))
            return int(row.fetchone()["n"])

    # --- reads for asset checks and the reconciliation report --------------------------------------
    def chunk_vectors(self, doc_id: str) -> dict[tuple[str, int], int]:
        """Number of the document's chunks per (embedding model, vector dimension)."""
        with self.tx() as conn:
            rows = conn.execute(
                """SELECT embedding_model, vector_dims(embedding) AS dims, count(*) AS n
                   FROM docflow.chunks WHERE doc_id = %s GROUP BY 1, 2""",
                (doc_id,),
            ).fetchall()
        return {(r["embedding_model"], int(r["dims"])): int(r["n"]) for r in rows}

    def counts_by_type(self) -> list[dict[str, Any]]:
        """Documents per (doc_type or NULL when not classified yet, status): rows of doc_type, status, n."""
        with self.tx() as conn:
            return conn.execute(
                """SELECT c.doc_type, d.status, count(*) AS n FROM docflow.documents d
                   LEFT JOIN docflow.classifications c USING (doc_id) GROUP BY 1, 2 ORDER BY 1, 2"""
            ).fetchall()

    def document_keys(self) -> list[dict[str, Any]]:
        """Every document's id, status, error, bucket, object keys and whether it is archived (for drift
        between bucket, table and partitions)."""
        with self.tx() as conn:
            return conn.execute(
                "SELECT doc_id, status, error, bucket, keys, created_at, archived_at IS NOT NULL AS archived "
                "FROM docflow.documents "
                "ORDER BY doc_id"
            ).fetchall()

    def _one(self, sql: str, doc_id: str, what: str) -> dict[str, Any]:
        with self.tx() as conn:
            row = conn.execute(sql, (doc_id,)).fetchone()
        if row is None:
            raise NotFound(f"no {what} for document {doc_id!r}: materialize the upstream asset first")
        return row


def _stage(conn: psycopg.Connection, doc_id: str, stage: str) -> None:
    conn.execute(
        "UPDATE docflow.documents SET stage = %s, updated_at = now() WHERE doc_id = %s", (stage, doc_id)
    )


def _vector_literal(v: Sequence[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v) + "]"


def jsonable(value: Any) -> Any:
    """Round-trip through JSON so Decimals, dates and the like become plain JSON values."""
    return json.loads(json.dumps(value, default=str))
