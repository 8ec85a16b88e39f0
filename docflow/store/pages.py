"""What the review page reads of one document besides its detail: the markdown and the chunks with the page
boxes they cover. Called with a tenant-bound store in the API, so row-level security scopes every query."""

from typing import Any

from docflow.errors import NotFound
from docflow.store.db import Store


def markdown(store: Store, doc_id: str) -> str:
    """The parsed markdown; `NotFound` until the document has been parsed."""
    with store.tx() as conn:
        row = conn.execute(
            "SELECT markdown FROM docflow.parsed_documents WHERE doc_id = %s", (doc_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"document {doc_id!r} has not been parsed yet")
    return row["markdown"]


def chunks(store: Store, doc_id: str, offset: int = 0, limit: int = 200) -> list[dict[str, Any]]:
    """The document's chunks in order (text, heading path, pages, metadata, boxes), without their vectors."""
    with store.tx() as conn:
        return conn.execute(
            """SELECT chunk_index AS index, text, heading_path, page_start, page_end, n_tokens, metadata,
                      boxes
               FROM docflow.chunks WHERE doc_id = %s ORDER BY chunk_index OFFSET %s LIMIT %s""",
            (doc_id, offset, limit),
        ).fetchall()
