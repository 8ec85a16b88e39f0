"""Documents: upload (multipart or raw body), ingest from a URL, list, read, reprocess, delete."""

import functools
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from docflow.api import uploads
from docflow.api.errors import READ_ERRORS, WRITE_ERRORS, InProgress
from docflow.api.models import (
    Accepted,
    DocumentDetail,
    DocumentList,
    DocumentOut,
    ErrorOut,
    FieldsPatch,
    FromUrl,
    Reprocessing,
    ReviewedFields,
    ReviewOut,
    UploadForm,
    UploadOptions,
)
from docflow.api.state import Authenticated, Idempotent
from docflow.errors import NotFound
from docflow.netguard import TooLarge, download
from docflow.settings import Settings
from docflow.store import retention as store_retention
from docflow.store import reviews

if TYPE_CHECKING:
    import dagster as dg

UPLOAD_SLACK = 64 * 1024  # multipart framing on top of the document's bytes

router = APIRouter(tags=["documents"])

# The body is read by the route itself (streamed, never whole in memory), so FastAPI cannot infer its schema;
# it is the JSON schema of the models that validate it.
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": UploadForm.model_json_schema()},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


def with_form(options: UploadOptions, form: dict[str, str]) -> UploadOptions:
    """The query's options with the form's fields over them, validated by the same model (a form error is a
    422 like a query error, located in the body)."""
    given = {name: value for name, value in form.items() if name in UploadOptions.model_fields}
    if not given:
        return options
    try:
        fields = UploadOptions.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None
    return options.model_copy(update=fields.model_dump(exclude_unset=True))


def accepted_body(a: uploads.Accepted, options: UploadOptions) -> dict[str, Any]:
    return Accepted(
        doc_id=a.doc_id,
        status="pending",
        duplicate=a.duplicate,
        filename=a.filename,
        size=a.size,
        content_type=a.content_type,
        priority=options.priority,
        passthrough=options.passthrough,
        url=f"/v1/documents/{a.doc_id}",
        events_url=f"/v1/documents/{a.doc_id}/events",
    ).model_dump()


@router.post(
    "/v1/documents",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_ERRORS,
    summary="Upload a document (multipart field `file`, or the raw bytes as the body)",
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
async def upload_document(
    request: Request,
    who: Authenticated,
    options: Annotated[UploadOptions, Query()],
    idempotency: Idempotent,
) -> Response:
    """Streams the bytes to the bucket (hashed on the way, never held in memory) and answers 202 with the
    document id at once; the pipeline runs when the sensor sees the object. The same bytes for the same
    tenant give the same id and are processed once."""
    state = who.state
    timings = uploads.Timings({"auth": who.auth_ms})
    max_bytes = state.settings.max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + UPLOAD_SLACK:
        raise TooLarge(f"{declared} bytes exceeds the limit of {max_bytes} bytes")

    async def handle() -> dict[str, Any]:
        started = time.perf_counter()
        opts = options
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            staged, form = await uploads.read_multipart(content_type, request.stream(), max_bytes)
            try:
                opts = with_form(options, form)
            except BaseException:
                staged.cleanup()
                raise
            if opts.filename:
                staged.filename = uploads.safe_filename(opts.filename)
        else:
            staged = await uploads.read_raw(request.stream(), opts.filename or "upload", max_bytes)
        timings.add("receive", started)
        try:
            if opts.passthrough:
                await run_in_threadpool(state.check_passthrough, who.tenant, True)
            result = await state.accept(who.tenant, staged, opts.priority, opts.passthrough, timings)
        finally:
            staged.cleanup()
        return accepted_body(result, opts)

    return await idempotency.respond(who.tenant, handle, timings)


@router.post(
    "/v1/documents:fromUrl",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_ERRORS,
    summary="Ingest a document from an http(s) URL",
)
async def upload_from_url(body: FromUrl, who: Authenticated, idempotency: Idempotent) -> Response:
    """Downloads the URL (timeout, size limit; private, loopback, link-local and metadata addresses are
    refused after DNS resolution and on every redirect), then as an upload."""
    state = who.state

    def fetch() -> uploads.Staged:
        state.check_passthrough(who.tenant, body.passthrough)
        staged = uploads.stage(body.filename or "download", state.settings.max_bytes)
        try:
            fetched = download(
                body.url,
                staged,  # type: ignore[arg-type]  # a sink with write()
                state.allow,
                state.settings.api_fetch_timeout_s,
                state.settings.api_fetch_max_redirects,
                state.settings.max_bytes,
            )
        except BaseException:
            staged.cleanup()
            raise
        staged.close()
        if not body.filename:
            staged.filename = uploads.safe_filename(uploads.filename_from(fetched.url, fetched.disposition))
        return staged

    async def handle() -> dict[str, Any]:
        staged = await run_in_threadpool(fetch)
        try:
            result = await state.accept(who.tenant, staged, body.priority, body.passthrough)
        finally:
            staged.cleanup()
        return accepted_body(result, body)

    return await idempotency.respond(who.tenant, handle)


@router.get("/v1/documents", response_model=DocumentList, responses=READ_ERRORS)
def list_documents(
    who: Authenticated,
    status: Annotated[str | None, Query(pattern="^(pending|running|done|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DocumentList:
    """The tenant's documents, oldest first. (No tenant filter here: row-level security scopes it.)"""
    docs = who.store.list_documents(status=status, limit=limit)  # type: ignore[arg-type]
    return DocumentList(documents=[DocumentOut.model_validate(d.model_dump()) for d in docs])


@router.get("/v1/documents/{doc_id}", response_model=DocumentDetail, responses=READ_ERRORS)
def get_document(doc_id: str, who: Authenticated) -> DocumentDetail:
    """Status, type with confidence and reasoning, extracted fields, error."""
    doc = who.store.get_document(doc_id)
    detail = DocumentDetail.model_validate(
        {**doc.model_dump(), "events_url": f"/v1/documents/{doc_id}/events"}
    )
    try:
        c = who.store.load_classification(doc_id)
        detail.confidence, detail.reasoning, detail.doc_type = c.confidence, c.reasoning, c.doc_type
    except NotFound:
        pass
    try:
        e = who.store.load_extraction(doc_id)
        detail.fields, detail.field_confidence = e.fields, e.field_confidence
        detail.validation_errors = e.validation_errors
        detail.provenance = e.provenance
    except NotFound:
        pass
    detail.chunks = who.store.count_chunks(doc_id)
    if doc.archived_at is not None:
        detail.lineage = store_retention.lineage(who.store, doc_id)
    detail.reviews = _reviews_out(reviews.reviews_of(who.store, doc_id))
    return detail


REVIEW_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    409: {"model": ErrorOut, "description": "The document has no extracted fields yet."},
    422: {"model": ErrorOut, "description": "An unknown field path, or a value its type's schema refuses."},
}


def _reviews_out(done: dict[str, reviews.Review]) -> dict[str, ReviewOut]:
    return {path: ReviewOut.model_validate(r.out()) for path, r in done.items()}


def _reviewed_out(done: reviews.Reviewed) -> ReviewedFields:
    return ReviewedFields(
        doc_id=done.doc_id, doc_type=done.doc_type, fields=done.fields, reviews=_reviews_out(done.reviews)
    )


@router.patch(
    "/v1/documents/{doc_id}/fields",
    response_model=ReviewedFields,
    responses=REVIEW_ERRORS,
    summary="Correct or confirm extracted values (they win over any later re-extraction)",
)
def review_fields(doc_id: str, body: FieldsPatch, who: Authenticated) -> ReviewedFields:
    """Records each correction and confirmation with who and when, and applies them to the document's fields
    in one transaction: one unknown path or invalid value refuses the whole request (422, naming it). A new
    review of a path replaces the old one. Answers the fields after review with every review of the
    document."""
    reviewer = body.reviewer or who.tenant
    done = reviews.record(
        who.store, doc_id, body.fields, body.confirm, reviewer, who.state.settings.rules_path
    )
    return _reviewed_out(done)


@router.delete(
    "/v1/documents/{doc_id}/reviews/{path}",
    response_model=ReviewedFields,
    responses=REVIEW_ERRORS,
    summary="Take a review back",
)
def remove_review(doc_id: str, path: str, who: Authenticated) -> ReviewedFields:
    """The path gets the value the extractor had given it when it was first reviewed, and re-extractions
    replace it again. A path without a review changes nothing."""
    return _reviewed_out(reviews.remove(who.store, doc_id, [path]))


@router.post(
    "/v1/documents/{doc_id}:reprocess",
    status_code=202,
    response_model=Reprocessing,
    responses={
        **READ_ERRORS,
        409: {"model": ErrorOut, "description": "The document is pending or running already."},
    },
    summary="Process a document again (all five steps)",
)
def reprocess_document(doc_id: str, who: Authenticated) -> Reprocessing:
    """Requests a run of all five steps for a done or failed document, as a backfill the Dagster daemon
    launches. A document archived by partition retention gets its Dagster partition back first."""
    from docflow.defs.assets import ASSET_KEYS
    from docflow.orchestration.backfill import launch_asset_backfill
    from docflow.orchestration.retention import restore

    doc = who.store.get_document(doc_id)  # 404 unless it is the caller's
    if doc.status in ("pending", "running"):
        raise InProgress(f"document {doc_id!r} is {doc.status} already")
    instance = who.state.instance()
    restored = restore(instance, who.store, [doc_id])
    backfill_id = launch_asset_backfill(
        instance, _definitions(who.state.settings), [doc_id], ASSET_KEYS, f"reprocess {doc_id} (API)"
    )
    return Reprocessing(
        doc_id=doc_id, restored=bool(restored), backfill_id=backfill_id, url=f"/v1/documents/{doc_id}"
    )


@functools.cache
def _definitions(settings: Settings) -> "dg.Definitions":
    """The code location's definitions (the asset graph a backfill is planned on), built once."""
    from docflow.defs import build_defs

    return build_defs(settings)


@router.delete("/v1/documents/{doc_id}", status_code=204, responses=READ_ERRORS)
def delete_document(doc_id: str, who: Authenticated) -> Response:
    """Removes the object(s), the rows (results and chunks) and the document's partition."""
    from docflow.passthrough import purge

    who.store.get_document(doc_id)  # 404 unless it is the caller's
    purge(who.rt, who.state.instance(), doc_id)
    return Response(status_code=204)
