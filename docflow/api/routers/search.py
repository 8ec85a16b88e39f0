"""Search and ask over the caller's documents."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from docflow.api.errors import READ_ERRORS
from docflow.api.models import AskIn, SearchResults
from docflow.api.state import Authenticated
from docflow.models import Answer

router = APIRouter(tags=["search"])


@router.get("/v1/search", response_model=SearchResults, responses=READ_ERRORS)
def search(
    who: Authenticated,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    doc_type: Annotated[str | None, Query(alias="type")] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    amount_min: float | None = None,
    amount_max: float | None = None,
    field: Annotated[list[str] | None, Query(description="name:value (substring), repeatable")] = None,
    chunks: Annotated[bool, Query(description="chunks (several per document), not documents")] = False,
) -> SearchResults:
    """Hybrid (vector + full-text + name) search over the tenant's documents: one hit per document (its
    best chunk), or chunks with `chunks=true`."""
    from docflow.retrieval import search as do_search

    fields = dict(f.split(":", 1) for f in field or [] if ":" in f)
    hits = do_search(
        who.rt,
        q,
        k=k,
        tenant=who.tenant,
        doc_type=doc_type,
        date_from=date_from,
        date_to=date_to,
        fields=fields,
        amount_min=amount_min,
        amount_max=amount_max,
        chunks=chunks,
    )
    return SearchResults(query=q, hits=hits)


@router.post("/v1/ask", response_model=Answer, responses=READ_ERRORS)
def ask(body: AskIn, who: Authenticated) -> Answer:
    """An answer from the tenant's documents, always with its sources."""
    from docflow.retrieval import ask as do_ask

    return do_ask(who.rt, body.question, k=body.k, tenant=who.tenant, doc_type=body.doc_type)
