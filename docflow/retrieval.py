"""Search and ask as Python functions (the CLI and the API call these)."""

from docflow import backends
from docflow.models import Answer, SearchHit
from docflow.pipeline import Runtime
from docflow.store import hybrid_search


def search(
    rt: Runtime, query: str, k: int = 10, tenant: str | None = None, doc_type: str | None = None
) -> list[SearchHit]:
    if not query.strip():
        return []
    embedder = backends.get_embedder(rt.settings)
    vector = embedder.embed([query])[0]
    return hybrid_search(rt.store, query, vector, embedder.name, k=k, tenant=tenant, doc_type=doc_type)


def ask(rt: Runtime, question: str, k: int = 5, tenant: str | None = None) -> Answer:
    """Retrieve, then answer. Without an LLM configured the answer is the best passages, labelled extractive.
    Never an answer without sources: no hits -> an explicit 'no supporting passages' answer."""
    hits = search(rt, question, k=k, tenant=tenant)
    if not hits:
        return Answer(question=question, answer="No supporting passages found.", extractive=True, sources=[])
    passages = [f"[{i}] {' '.join(h.text.split())[:600]}" for i, h in enumerate(hits[:3], 1)]
    return Answer(question=question, answer="\n".join(passages), extractive=True, sources=hits)
