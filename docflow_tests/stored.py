"""Documents written straight to the store (registered, chunked, embedded) for tests of what reads them:
search, ask, the query embedder. The pipeline itself is tested elsewhere."""

import uuid

from docflow.models import Chunk, Document
from docflow.pipeline import config_fingerprint


def add_document(
    rt, tenant: str, name: str, texts: list[str], vectors, model: str, metadata: dict | None = None
) -> str:
    """A done-looking document of `texts`, one chunk a page, under `<tenant>/<name>.pdf`; returns its id."""
    doc_id = f"{tenant}-{uuid.uuid4().hex}"
    rt.store.register(
        Document(
            doc_id=doc_id,
            tenant=tenant,
            bucket="b",
            key=f"{tenant}/{name}.pdf",
            sha256=doc_id,  # one document per content
            filename=f"{name}.pdf",
        )
    )
    chunks = [
        Chunk(index=i, text=t, page_start=i + 1, page_end=i + 1, metadata=metadata or {})
        for i, t in enumerate(texts)
    ]
    rt.store.ensure_vector_index(len(vectors[0]))
    rt.store.save_chunks(doc_id, chunks, vectors, model, config_fingerprint(rt.settings))  # not stale
    return doc_id
