"""The HTTP service: uploads, URL ingest, status, live progress (SSE), search and ask, for many tenants.

It never processes a document itself: uploads are written to the bucket (the S3 sensor requests their runs),
reads come from Postgres (as the row-level-security role, bound to the caller's tenant) and the Dagster
instance's event log. `create_app()` is the uvicorn factory (`docflow api`); the schema is at /openapi.json.
"""

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from docflow import services
from docflow.api import db, events, uploads
from docflow.api.models import (
    Accepted,
    AskIn,
    DocumentDetail,
    DocumentList,
    DocumentOut,
    ErrorOut,
    FromUrl,
    SearchResults,
    Usage,
    WebhookIn,
    WebhookOut,
)
from docflow.api.netguard import BlockedAddress, FetchError, TooLarge, download, parse_networks, resolve
from docflow.api.s3put import S3Writer
from docflow.api.spool import Spool
from docflow.errors import BackendUnavailable, BadDocument, DocflowError, NotFound, UnsupportedFormat
from docflow.models import Answer
from docflow.pipeline import Runtime
from docflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

SSE_POLL_S = 1.0
SSE_HEARTBEAT_S = 15.0
UPLOAD_SLACK = 64 * 1024  # multipart framing on top of the document's bytes


class ApiState:
    """What every request shares: resolved settings, the owner's bucket, the API role's database URL."""

    def __init__(self, settings: Settings, instance: "DagsterInstance | None" = None) -> None:
        self.settings = services.resolve_settings(settings)
        self.owner = services.runtime(self.settings)
        self.api_url = db.api_database_url(self.settings)
        self.db = db.ApiDb(self.api_url)  # the upload path's asyncio pool (reads use TenantStore)
        self.s3 = S3Writer(self.settings)
        spool_dir = self.settings.api_spool_dir or self.settings.home / "api-spool"
        self.spool = None if str(spool_dir) == "off" else Spool(spool_dir.resolve(), self.s3)
        self.keys = db.KeyCache(self.db)
        self.limits = db.Limits(self.settings.api_docs_per_day, self.settings.api_bytes_per_day)
        self.registrar = db.Registrar(self.db, self.limits)
        self.allow = parse_networks(self.settings.api_fetch_allow_networks)
        self._instance = instance
        self._lock = threading.Lock()

    def runtime_for(self, tenant: str) -> Runtime:
        store = db.TenantStore(self.api_url, tenant)
        return Runtime(store=store, bucket=self.owner.bucket, settings=self.settings)

    async def accept(
        self,
        tenant: str,
        staged: uploads.Staged,
        priority: int,
        passthrough: bool,
        timings: uploads.Timings | None = None,
    ) -> uploads.Accepted:
        return await uploads.accept(
            self.registrar,
            self.s3,
            self.spool,
            tenant,
            self.owner.bucket.name,
            self.settings.prefix,
            staged,
            priority,
            passthrough,
            timings,
        )

    async def startup(self) -> None:
        await self.db.pool()
        if self.spool is not None:
            self.spool.start()  # also writes what a stopped process left in the spool to the bucket

    async def aclose(self) -> None:
        if self.spool is not None:
            await self.spool.aclose()
        await self.s3.aclose()
        await self.db.close()

    def instance(self) -> "DagsterInstance":
        with self._lock:
            if self._instance is None:
                self._instance = services.dagster_instance(self.settings)
            return self._instance


@dataclass(frozen=True)
class Ctx:
    """The caller: its tenant and a runtime whose store only sees that tenant's rows."""

    tenant: str
    rt: Runtime

    @property
    def store(self) -> db.TenantStore:
        assert isinstance(self.rt.store, db.TenantStore)
        return self.rt.store


# --- errors ------------------------------------------------------------------------------------------------

_STATUS: list[tuple[type[Exception], int, str]] = [  # most specific first
    (db.QuotaExceeded, 429, "quota_exceeded"),
    (db.IdempotencyConflict, 409, "idempotency_conflict"),
    (TooLarge, 413, "too_large"),
    (UnsupportedFormat, 415, "unsupported_type"),
    (BlockedAddress, 400, "blocked_address"),
    (uploads.BadUpload, 400, "bad_request"),
    (FetchError, 422, "fetch_failed"),
    (BadDocument, 422, "bad_document"),
    (NotFound, 404, "not_found"),
    (BackendUnavailable, 503, "unavailable"),
]


def error_response(exc: DocflowError) -> JSONResponse:
    status, code = next(((s, c) for t, s, c in _STATUS if isinstance(exc, t)), (500, "internal"))
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, db.QuotaExceeded) else {}
    if status == 503:
        headers["Retry-After"] = "5"
    return JSONResponse({"error": code, "detail": str(exc)}, status_code=status, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or unknown API key."},
    404: {"model": ErrorOut, "description": "No such document for this tenant."},
}
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    400: {"model": ErrorOut, "description": "Malformed request, or a URL to a blocked address."},
    409: {"model": ErrorOut, "description": "Idempotency-Key reused for another endpoint or still running."},
    413: {"model": ErrorOut, "description": "Larger than DOCFLOW_MAX_BYTES."},
    415: {"model": ErrorOut, "description": "Not a document type docflow reads (sniffed from the bytes)."},
    422: {"model": ErrorOut, "description": "Empty document, invalid parameters, or the URL failed."},
    429: {"model": ErrorOut, "description": "Daily quota exceeded; see Retry-After."},
}


# --- the app -----------------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, instance: "DagsterInstance | None" = None) -> FastAPI:
    state = ApiState(settings or get_settings(), instance)
    app = FastAPI(
        title="docflow",
        version="1",
        description="Upload documents, watch them being classified, parsed, extracted and embedded, search "
        "and ask. Authenticate with `Authorization: Bearer <key>` (or `X-API-Key`).",
    )
    app.state.docflow = state
    app.router.add_event_handler("startup", state.startup)
    app.router.add_event_handler("shutdown", state.aclose)

    @app.exception_handler(DocflowError)
    async def _docflow_error(request: Request, exc: DocflowError) -> JSONResponse:
        return error_response(exc)

    async def caller(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Ctx:
        key = x_api_key
        if authorization and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if not key:
            raise HTTPException(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
        tenant = await state.keys.tenant(key)
        if tenant is None:
            raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        return Ctx(tenant, state.runtime_for(tenant))

    Caller = Annotated[Ctx, Depends(caller)]
    IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

    def accepted_body(a: uploads.Accepted, priority: int, passthrough: bool) -> dict[str, Any]:
        return Accepted(
            doc_id=a.doc_id,
            status="pending",
            duplicate=a.duplicate,
            filename=a.filename,
            size=a.size,
            content_type=a.content_type,
            priority=priority,
            passthrough=passthrough,
            url=f"/v1/documents/{a.doc_id}",
            events_url=f"/v1/documents/{a.doc_id}/events",
        ).model_dump()

    async def idempotent(
        ctx: Ctx,
        key: str | None,
        endpoint: str,
        handler: Callable[[], Awaitable[dict[str, Any]]],
        timings: uploads.Timings | None = None,
    ) -> JSONResponse:
        """Run `handler` once per Idempotency-Key: a retry (or a twin arriving at the same moment) gets the
        first request's response. Server-side failures free the key; client errors are kept."""
        if not key:
            body = await handler()
            headers = {"Location": body["url"]}
            if timings is not None:
                headers["Server-Timing"] = timings.header()
            return JSONResponse(body, status_code=202, headers=headers)
        replay = await db.idempotency_begin(state.db, ctx.tenant, key, endpoint)
        if replay is not None:
            return JSONResponse(
                replay.body, status_code=replay.status_code, headers={"Idempotent-Replayed": "true"}
            )
        try:
            body = await handler()
        except DocflowError as exc:
            response = error_response(exc)
            if 400 <= response.status_code < 500 and response.status_code != 429:
                await db.idempotency_finish(
                    state.db, ctx.tenant, key, response.status_code, json.loads(response.body)
                )
            else:
                await db.idempotency_abandon(state.db, ctx.tenant, key)
            return response
        except BaseException:
            await asyncio.shield(db.idempotency_abandon(state.db, ctx.tenant, key))
            raise
        await db.idempotency_finish(state.db, ctx.tenant, key, 202, body)
        return JSONResponse(body, status_code=202, headers={"Location": body["url"]})

    def check_passthrough(ctx: Ctx, passthrough: bool) -> None:
        if passthrough and db.get_webhook(ctx.store, ctx.tenant) is None:
            raise uploads.BadUpload("passthrough needs the tenant's webhook: PUT /v1/webhook first")

    # --- uploads -------------------------------------------------------------------------------------------
    @app.post(
        "/v1/documents",
        status_code=202,
        response_model=Accepted,
        responses=_UPLOAD_ERRORS,
        summary="Upload a document (multipart field `file`, or the raw bytes as the body)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "priority": {"type": "integer", "minimum": -100, "maximum": 100},
                                "passthrough": {"type": "boolean"},
                            },
                        }
                    },
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def upload_document(
        request: Request,
        ctx: Caller,
        idempotency_key: IdemKey = None,
        priority: Annotated[int, Query(ge=-100, le=100)] = 0,
        passthrough: bool = False,
        filename: Annotated[str | None, Query(max_length=300)] = None,
    ) -> JSONResponse:
        """Streams the bytes to the bucket (hashed on the way, never held in memory) and answers 202 with the
        document id at once; the pipeline runs when the sensor sees the object. The same bytes for the same
        tenant give the same id and are processed once."""
        max_bytes = state.settings.max_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes + UPLOAD_SLACK:
            raise TooLarge(f"{declared} bytes exceeds the limit of {max_bytes} bytes")

        timings = uploads.Timings()

        async def handle() -> dict[str, Any]:
            nonlocal priority, passthrough
            started = time.perf_counter()
            content_type = request.headers.get("content-type", "")
            if content_type.startswith("multipart/form-data"):
                staged, form = await uploads.read_multipart(content_type, request.stream(), max_bytes)
                try:
                    priority, passthrough = _form_options(form, priority, passthrough)
                except uploads.BadUpload:
                    staged.cleanup()
                    raise
            else:
                staged = await uploads.read_raw(request.stream(), filename or "upload", max_bytes)
            timings.add("receive", started)
            try:
                if passthrough:
                    await run_in_threadpool(check_passthrough, ctx, passthrough)
                result = await state.accept(ctx.tenant, staged, priority, passthrough, timings)
            finally:
                staged.cleanup()
            return accepted_body(result, priority, passthrough)

        return await idempotent(ctx, idempotency_key, "POST /v1/documents", handle, timings)

    @app.post(
        "/v1/documents:fromUrl",
        status_code=202,
        response_model=Accepted,
        responses=_UPLOAD_ERRORS,
        summary="Ingest a document from an http(s) URL",
    )
    async def upload_from_url(body: FromUrl, ctx: Caller, idempotency_key: IdemKey = None) -> JSONResponse:
        """Downloads the URL (timeout, size limit; private, loopback, link-local and metadata addresses are
        refused after DNS resolution and on every redirect), then as an upload."""

        def fetch() -> uploads.Staged:
            check_passthrough(ctx, body.passthrough)
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
                staged.filename = uploads.safe_filename(
                    uploads.filename_from(fetched.url, fetched.disposition)
                )
            return staged

        async def handle() -> dict[str, Any]:
            staged = await run_in_threadpool(fetch)
            try:
                result = await state.accept(ctx.tenant, staged, body.priority, body.passthrough)
            finally:
                staged.cleanup()
            return accepted_body(result, body.priority, body.passthrough)

        return await idempotent(ctx, idempotency_key, "POST /v1/documents:fromUrl", handle)

    # --- reads ---------------------------------------------------------------------------------------------
    @app.get("/v1/documents", response_model=DocumentList, responses=_ERRORS)
    def list_documents(
        ctx: Caller,
        status: Annotated[str | None, Query(pattern="^(pending|running|done|failed)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> DocumentList:
        """The tenant's documents, oldest first. (No tenant filter here: row-level security scopes it.)"""
        docs = ctx.store.list_documents(status=status, limit=limit)  # type: ignore[arg-type]
        return DocumentList(documents=[DocumentOut.model_validate(d.model_dump()) for d in docs])

    @app.get("/v1/documents/{doc_id}", response_model=DocumentDetail, responses=_ERRORS)
    def get_document(doc_id: str, ctx: Caller) -> DocumentDetail:
        """Status, type with confidence and reasoning, extracted fields, error."""
        doc = ctx.store.get_document(doc_id)
        detail = DocumentDetail.model_validate(
            {**doc.model_dump(), "events_url": f"/v1/documents/{doc_id}/events"}
        )
        try:
            c = ctx.store.load_classification(doc_id)
            detail.confidence, detail.reasoning, detail.doc_type = c.confidence, c.reasoning, c.doc_type
        except NotFound:
            pass
        try:
            e = ctx.store.load_extraction(doc_id)
            detail.fields, detail.field_confidence = e.fields, e.field_confidence
            detail.validation_errors = e.validation_errors
        except NotFound:
            pass
        detail.chunks = ctx.store.count_chunks(doc_id)
        return detail

    @app.delete("/v1/documents/{doc_id}", status_code=204, responses=_ERRORS)
    def delete_document(doc_id: str, ctx: Caller) -> Response:
        """Removes the object(s), the rows (results and chunks) and the document's partition."""
        from docflow.api.passthrough import purge

        ctx.store.get_document(doc_id)  # 404 unless it is the caller's
        purge(ctx.rt, state.instance(), doc_id)
        return Response(status_code=204)

    @app.get(
        "/v1/documents/{doc_id}/events",
        responses={
            **_ERRORS,
            200: {
                "content": {"text/event-stream": {}},
                "description": "uploaded, classified, parsed, "
                "extracted, embedded, done (or error with a message); `id` is the event's position.",
            },
        },
    )
    async def document_events(
        doc_id: str,
        ctx: Caller,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        """Server-Sent Events, one per stage, from the Dagster event log; resume with `Last-Event-ID`."""
        await run_in_threadpool(ctx.store.get_document, doc_id)
        start = int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else 0
        tracker = events.Tracker(ctx.store, state.instance, doc_id)
        return StreamingResponse(
            _sse(tracker, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/search", response_model=SearchResults, responses=_ERRORS)
    def search(
        ctx: Caller,
        q: Annotated[str, Query(min_length=1, max_length=2000)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        doc_type: Annotated[str | None, Query(alias="type")] = None,
        date_from: date | None = None,
        date_to: date | None = None,
        amount_min: float | None = None,
        amount_max: float | None = None,
        field: Annotated[list[str] | None, Query(description="name:value (substring), repeatable")] = None,
    ) -> SearchResults:
        """Hybrid (vector + full-text) search over the tenant's documents."""
        from docflow.retrieval import search as do_search

        fields = dict(f.split(":", 1) for f in field or [] if ":" in f)
        hits = do_search(
            ctx.rt,
            q,
            k=k,
            tenant=ctx.tenant,
            doc_type=doc_type,
            date_from=date_from,
            date_to=date_to,
            fields=fields,
            amount_min=amount_min,
            amount_max=amount_max,
        )
        return SearchResults(query=q, hits=hits)

    @app.post("/v1/ask", response_model=Answer, responses=_ERRORS)
    def ask(body: AskIn, ctx: Caller) -> Answer:
        """An answer from the tenant's documents, always with its sources."""
        from docflow.retrieval import ask as do_ask

        return do_ask(ctx.rt, body.question, k=body.k, tenant=ctx.tenant, doc_type=body.doc_type)

    # --- tenant settings -----------------------------------------------------------------------------------
    @app.put("/v1/webhook", response_model=WebhookOut, responses=_UPLOAD_ERRORS)
    def put_webhook(body: WebhookIn, ctx: Caller) -> WebhookOut:
        """Where passthrough results are POSTed; returns the signing secret (only now)."""
        if body.url:
            import httpx

            url = httpx.URL(body.url)
            if url.scheme not in ("http", "https") or not url.host:
                raise uploads.BadUpload("the webhook must be an http(s) URL")
            resolve(url.host, url.port or 443, state.allow)  # BlockedAddress for an inside address
        return WebhookOut(url=body.url, secret=db.set_webhook(ctx.store, body.url))

    @app.get("/v1/usage", response_model=Usage, responses=_ERRORS)
    def usage(ctx: Caller) -> Usage:
        """Today's usage against the tenant's quotas."""
        return Usage(tenant=ctx.tenant, **db.usage(ctx.store, state.limits))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(resources.files("docflow.api").joinpath("static/index.html").read_text())

    return app


def _form_options(form: dict[str, str], priority: int, passthrough: bool) -> tuple[int, bool]:
    if "priority" in form:
        try:
            priority = int(form["priority"])
        except ValueError:
            raise uploads.BadUpload(f"priority must be an integer, not {form['priority']!r}") from None
        if not -100 <= priority <= 100:
            raise uploads.BadUpload("priority must be between -100 and 100")
    if "passthrough" in form:
        value = form["passthrough"].strip().lower()
        if value not in ("true", "false", "1", "0", "on", "off", ""):
            raise uploads.BadUpload(f"passthrough must be true or false, not {form['passthrough']!r}")
        passthrough = value in ("true", "1", "on")
    return priority, passthrough


async def _sse(tracker: events.Tracker, start: int):
    yield "retry: 2000\n\n"
    sent, beat = start, time.monotonic()
    while True:
        found, final = await run_in_threadpool(tracker.poll)
        for position, event in enumerate(found, 1):
            if position > sent:
                yield f"id: {position}\nevent: {event.stage}\ndata: {json.dumps(event.data, default=str)}\n\n"
                sent, beat = position, time.monotonic()
        if final:
            return
        if time.monotonic() - beat > SSE_HEARTBEAT_S:
            yield ": keep-alive\n\n"
            beat = time.monotonic()
        await asyncio.sleep(SSE_POLL_S)
