"""What the review page shows besides a document's detail: its pages as images (to draw the extracted values'
boxes on), its markdown and its chunks. Every route first reads the document through the tenant-bound
store: another tenant's document is a 404 before any byte is read from the bucket."""

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from docflow import pageimage
from docflow.api.errors import READ_ERRORS
from docflow.api.state import Authenticated
from docflow.errors import NotFound
from docflow.models import Chunk
from docflow.pipeline import load_bytes
from docflow.sniff import sniff_content_type
from docflow.store import pages

router = APIRouter(tags=["documents"])

# A document id names its bytes (tenant + sha256): its page images never change, and only its tenant may
# keep them.
PAGE_CACHE = "private, max-age=86400, immutable"


class ChunkList(BaseModel):
    doc_id: str
    chunks: list[Chunk]


@router.get(
    "/v1/documents/{doc_id}/pages/{number}",
    response_class=Response,
    responses={
        **READ_ERRORS,
        200: {"content": {"image/png": {}}, "description": "The page as a PNG (X-Page-Count: pages)."},
        304: {"description": "The copy named by If-None-Match is current."},
        404: {"description": "No such document for this tenant, no such page, or a format without pages."},
    },
    summary="A page of a PDF or image document as a PNG",
)
def page_image(
    doc_id: str,
    number: Annotated[int, Path(ge=1, le=100_000, description="1-based page number.")],
    who: Authenticated,
    dpi: Annotated[
        int, Query(ge=pageimage.MIN_DPI, le=pageimage.MAX_DPI, description="Rendering resolution of PDFs.")
    ] = pageimage.DEFAULT_DPI,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """PDF pages rendered at `dpi` (at most 2000 pixels on a side), image frames (TIFF pages) as PNG. Boxes
    in the document's detail (`provenance`) and chunks are fractions of this image."""
    doc = who.store.get_document(doc_id)  # 404 unless it is the caller's
    etag = f'"{doc.sha256[:24]}-{number}-{dpi}"' if doc.sha256 else None
    headers = {"Cache-Control": PAGE_CACHE, **({"ETag": etag} if etag else {})}
    if etag and if_none_match and ({etag, "*"} & {t.strip() for t in if_none_match.split(",")}):
        return Response(status_code=304, headers=headers)
    if doc.content_type and not pageimage.has_pages(doc.content_type):
        raise pageimage.NoPages(f"a {doc.content_type} document has no page images")
    _, data = load_bytes(who.rt, doc.key)
    if doc.sha256 and hashlib.sha256(data).hexdigest() != doc.sha256:
        raise NotFound(f"the object of document {doc_id!r} has been replaced")
    content_type = doc.content_type or sniff_content_type(data, doc.filename)
    png, count = pageimage.page_png(data, content_type, number, dpi)
    return Response(png, media_type="image/png", headers={**headers, "X-Page-Count": str(count)})


@router.get(
    "/v1/documents/{doc_id}/markdown",
    response_class=Response,
    responses={**READ_ERRORS, 200: {"content": {"text/markdown": {}}, "description": "The markdown."}},
    summary="The document's parsed markdown",
)
def get_markdown(doc_id: str, who: Authenticated) -> Response:
    who.store.get_document(doc_id)
    return Response(pages.markdown(who.store, doc_id), media_type="text/markdown")


@router.get("/v1/documents/{doc_id}/chunks", response_model=ChunkList, responses=READ_ERRORS)
def get_chunks(
    doc_id: str,
    who: Authenticated,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ChunkList:
    """The document's chunks in order: text, heading path, pages and the page boxes they cover."""
    who.store.get_document(doc_id)
    rows = pages.chunks(who.store, doc_id, offset, limit)
    return ChunkList(doc_id=doc_id, chunks=[Chunk.model_validate(r) for r in rows])
