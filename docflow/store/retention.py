"""Partition retention, the Postgres half: which documents have been processed long enough ago to leave
Dagster's dynamic partitions, and the `archived_at` mark (migration 0016). No Dagster here: the partitions
themselves are removed and added back by docflow.orchestration.retention.

An archived document keeps every row (results, chunks, run ids); its Dagster partition and asset events are
gone, and `documents.lineage` (migration 0019) keeps their summary: per asset, the latest materialization's
run id, timestamp and data version.
Only a document that is done or failed is archived; one that goes back to pending or running is unarchived
by the database (the trigger of migration 0016), whatever path re-runs it.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from docflow.store.db import Store

_MARK = """UPDATE docflow.documents SET archived_at = now()
           WHERE doc_id = ANY(%s) AND archived_at IS NULL AND status IN ('done', 'failed')
           RETURNING doc_id"""


def expired(
    store: Store, days: int, limit: int, now: datetime | None = None, tenant: str | None = None
) -> list[str]:
    """Documents done or failed, last updated more than `days` ago and not archived (of one tenant, or all):
    oldest first, at most `limit` (the partial index documents_archivable serves exactly this)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    of_tenant = "AND tenant = %(tenant)s" if tenant is not None else ""
    with store.tx() as conn:
        rows = conn.execute(
            f"""SELECT doc_id FROM docflow.documents
                WHERE archived_at IS NULL AND status IN ('done', 'failed') AND updated_at < %(cutoff)s
                {of_tenant} ORDER BY updated_at LIMIT %(limit)s""",
            {"cutoff": cutoff, "limit": limit, "tenant": tenant},
        ).fetchall()
    return [r["doc_id"] for r in rows]


def mark_archived(store: Store, doc_ids: Sequence[str]) -> list[str]:
    """Mark those of `doc_ids` that are still done or failed and not archived; returns them."""
    with archiving(store, doc_ids) as marked:
        return marked


@contextmanager
def archiving(
    store: Store,
    doc_ids: Sequence[str],
    lineage: Callable[[list[str]], Mapping[str, Any]] | None = None,
) -> Iterator[list[str]]:
    """Mark documents archived (those still done or failed) in a transaction that commits when the block
    ends, yielding the marked ids. With `lineage`, each marked document's `lineage` is set, in the same
    transaction, to what `lineage(marked)` maps its id to (`{}` for one it leaves out). The rows stay locked
    meanwhile, so a run cannot start on one (its status update waits) while the caller removes their
    partitions; an error in the block leaves none marked and no summary written."""
    with store.tx() as conn:
        marked = [r["doc_id"] for r in conn.execute(_MARK, (list(doc_ids),)).fetchall()]
        if lineage is not None and marked:
            found = lineage(marked)
            conn.execute(
                """UPDATE docflow.documents d SET lineage = s.value
                   FROM jsonb_each(%s) s WHERE d.doc_id = s.key""",
                (Jsonb({doc_id: found.get(doc_id, {}) for doc_id in marked}),),
            )
        yield marked


def lineage(store: Store, doc_id: str) -> dict[str, Any] | None:
    """The lineage summary recorded when the document was last archived (asset name -> run_id, timestamp,
    data_version), or None if it never was."""
    with store.tx() as conn:
        row = conn.execute("SELECT lineage FROM docflow.documents WHERE doc_id = %s", (doc_id,)).fetchone()
    return row["lineage"] if row else None


def mark_restored(store: Store, doc_ids: Sequence[str]) -> list[str]:
    """Clear the mark of those of `doc_ids` that are archived; returns them."""
    with store.tx() as conn:
        rows = conn.execute(
            """UPDATE docflow.documents SET archived_at = NULL
               WHERE doc_id = ANY(%s) AND archived_at IS NOT NULL RETURNING doc_id""",
            (list(doc_ids),),
        ).fetchall()
    return [r["doc_id"] for r in rows]


def archived(store: Store, doc_ids: Sequence[str]) -> set[str]:
    """Those of `doc_ids` that are archived."""
    with store.tx() as conn:
        rows = conn.execute(
            "SELECT doc_id FROM docflow.documents WHERE doc_id = ANY(%s) AND archived_at IS NOT NULL",
            (list(doc_ids),),
        ).fetchall()
    return {r["doc_id"] for r in rows}


def archived_count(store: Store, tenant: str | None = None) -> int:
    """Archived documents (of one tenant, or all)."""
    with store.tx() as conn:
        row = conn.execute(
            """SELECT count(*) AS n FROM docflow.documents
               WHERE archived_at IS NOT NULL AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s)""",
            {"tenant": tenant},
        ).fetchone()
    return int(row["n"]) if row else 0


def stale_archived(store: Store, fingerprint: str) -> int:
    """Archived documents made with another configuration than `fingerprint`: the stale-documents sensor
    leaves them alone (it would add back every partition retention removed) and re-processes them once
    they are restored."""
    with store.tx() as conn:
        row = conn.execute(
            """SELECT count(*) AS n FROM docflow.documents
               WHERE archived_at IS NOT NULL AND status = 'done'
                 AND config_fingerprint IS DISTINCT FROM %s""",
            (fingerprint,),
        ).fetchone()
    return int(row["n"]) if row else 0
