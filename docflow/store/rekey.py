"""Renaming documents registered under the old ids (`<tenant>-<32 hex>`) to ids that name the file
(`docflow.bucket.make_doc_id`): the Postgres half of `docflow rekey`. No Dagster here.

A rename is one UPDATE of the document's id (its classification, parse, extraction and chunks follow by
ON UPDATE CASCADE, migration 0009) plus a row in `doc_id_renames`, in one transaction. Only documents that
are done or failed are renamed: a pending or running one has a run writing under its old id.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from docflow.bucket import legacy_doc_id, make_doc_id
from docflow.store.db import Store

_LEGACY = re.compile(r"-[0-9a-f]{32}$")


@dataclass(frozen=True)
class Rename:
    old_id: str
    new_id: str
    status: str | None  # the document's status (None: it has been deleted since it was renamed)


def legacy_documents(store: Store) -> list[Rename]:
    """Documents whose id is the old one for their tenant and bytes, oldest first, with their new ids."""
    with store.tx() as conn:
        rows = conn.execute(
            r"""SELECT doc_id, tenant, sha256, filename, status FROM docflow.documents
                WHERE doc_id ~ '-[0-9a-f]{32}$' ORDER BY created_at, doc_id"""
        ).fetchall()
    return [
        Rename(r["doc_id"], make_doc_id(r["tenant"], r["sha256"], r["filename"]), r["status"])
        for r in rows
        if _LEGACY.search(r["doc_id"]) and r["doc_id"] == legacy_doc_id(r["tenant"], r["sha256"])
    ]


def rename(store: Store, renames: Sequence[Rename]) -> list[Rename]:
    """Rename those of `renames` that are done or failed now, in one transaction; returns them."""
    done: list[Rename] = []
    with store.tx() as conn:
        for r in renames:
            row = conn.execute(
                """UPDATE docflow.documents SET doc_id = %(new)s
                   WHERE doc_id = %(old)s AND status IN ('done', 'failed') RETURNING status""",
                {"old": r.old_id, "new": r.new_id},
            ).fetchone()
            if row is None:
                continue
            conn.execute(
                "UPDATE docflow.documents SET superseded_by = %(new)s WHERE superseded_by = %(old)s",
                {"old": r.old_id, "new": r.new_id},
            )
            conn.execute(
                """INSERT INTO docflow.doc_id_renames (old_id, new_id) VALUES (%(old)s, %(new)s)
                   ON CONFLICT (old_id) DO UPDATE SET new_id = excluded.new_id, dagster_at = NULL""",
                {"old": r.old_id, "new": r.new_id},
            )
            done.append(Rename(r.old_id, r.new_id, row["status"]))
    return done


def unfollowed(store: Store) -> list[Rename]:
    """Renames Dagster has not followed yet (a rename interrupted before its partitions were moved)."""
    with store.tx() as conn:
        rows = conn.execute(
            """SELECT r.old_id, r.new_id, d.status FROM docflow.doc_id_renames r
               LEFT JOIN docflow.documents d ON d.doc_id = r.new_id
               WHERE r.dagster_at IS NULL ORDER BY r.renamed_at, r.old_id"""
        ).fetchall()
    return [Rename(r["old_id"], r["new_id"], r["status"]) for r in rows]


def followed(store: Store, old_ids: Sequence[str]) -> None:
    """Dagster has the renamed documents under their new ids."""
    with store.tx() as conn:
        conn.execute(
            "UPDATE docflow.doc_id_renames SET dagster_at = now() WHERE old_id = ANY(%s)", (list(old_ids),)
        )


def renamed_to(store: Store, old_id: str) -> str | None:
    """The id a renamed document has now, for an old id people or clients kept."""
    with store.tx() as conn:
        row = conn.execute(
            "SELECT new_id FROM docflow.doc_id_renames WHERE old_id = %s", (old_id,)
        ).fetchone()
    return row["new_id"] if row else None
