"""Synthetic document rows for the partition bench: registered in bulk with COPY (timestamps given, so that
a retention window has something to archive), counted, listed and removed by tenant."""

from collections.abc import Iterable, Sequence
from typing import Any

from docflow.store.db import Store

COLUMNS = "doc_id, tenant, bucket, key, keys, sha256, filename, content_type, status, created_at, updated_at"
TYPES = [
    "text",
    "text",
    "text",
    "text",
    "text[]",
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
]


def copy_documents(store: Store, rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows (doc_id, tenant, bucket, key, keys, sha256, filename, content_type, status, created_at,
    updated_at) in one transaction; returns how many."""
    n = 0
    with store.tx() as conn, conn.cursor().copy(f"COPY docflow.documents ({COLUMNS}) FROM STDIN") as copy:
        copy.set_types(TYPES)
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def doc_ids(store: Store, tenant: str, archived: bool | None = None) -> list[str]:
    """A tenant's document ids in id order (all, only the archived ones, or only the others)."""
    with store.tx() as conn:
        rows = conn.execute(
            """SELECT doc_id FROM docflow.documents WHERE tenant = %(tenant)s
               AND (%(archived)s::boolean IS NULL OR (archived_at IS NOT NULL) = %(archived)s)
               ORDER BY doc_id""",
            {"tenant": tenant, "archived": archived},
        ).fetchall()
    return [r["doc_id"] for r in rows]


def count(store: Store, tenant: str) -> tuple[int, int]:
    """(documents, archived documents) of a tenant."""
    with store.tx() as conn:
        row = conn.execute(
            """SELECT count(*) AS n, count(archived_at) AS archived FROM docflow.documents
               WHERE tenant = %s""",
            (tenant,),
        ).fetchone()
    return (int(row["n"]), int(row["archived"])) if row else (0, 0)


def delete_tenant(store: Store, tenant: str) -> int:
    """Remove every document of a tenant (their other rows cascade)."""
    with store.tx() as conn:
        return conn.execute("DELETE FROM docflow.documents WHERE tenant = %s", (tenant,)).rowcount
