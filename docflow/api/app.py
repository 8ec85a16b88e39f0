"""The HTTP service: uploads, URL ingest, status, live progress (SSE), search and ask, for many tenants.

It never processes a document itself: uploads are written to the bucket (the S3 sensor requests their runs),
reads come from Postgres (as the row-level-security role, bound to the caller's tenant) and the Dagster
instance's event log. `create_app()` is the uvicorn factory (`docflow api`); the schema is at /openapi.json.
"""

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.datastructures import Headers, QueryParams
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

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
UPLOAD_PATH = "/v1/documents"

Upload = Callable[[Headers, QueryParams, AsyncIterator[bytes]], Awaitable[Response]]


class DocflowApi(FastAPI):
    """FastAPI, except that `POST /v1/documents` (the hot path: a burst of uploads) is answered before the
    framework's middleware stack, routing and dependency injection, by the same function the declared route
    calls (the route documents it in the OpenAPI schema). The function does its own authentication, parameter
    validation (422 like FastAPI's) and error mapping, so both entrances answer alike. (Middleware added to
    the app does not see these uploads: wrap the app instead.)"""

    upload: Upload | None = None
    upload_fast: bool = True  # False: uploads go through FastAPI's route too (tests compare the two)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.upload_fast
            and self.upload is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in (UPLOAD_PATH, scope.get("root_path", "") + UPLOAD_PATH)
        ):
            try:
                response = await self.upload(
                    Headers(scope=scope), QueryParams(scope["query_string"]), _body(receive)
                )
            except ClientDisconnect:
                return  # nobody to answer
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (what Starlette's `Request.stream()` does)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if chunk := message.get("body", b""):
            yield chunk
        if not message.get("more_body", False):
            return


class _Invalid(Exception):
    """A query parameter or header of an upload that FastAPI's validation would refuse (422)."""

    def __init__(self, where: str, name: str, message: str, value: str) -> None:
        super().__init__(message)
        self.detail = {"type": "value_error", "loc": [where, name], "msg": message, "input": value}


_TRUE = {"true", "1", "on", "yes", "t", "y"}
_FALSE = {"false", "0", "off", "no", "f", "n"}


def _upload_params(query: QueryParams, headers: Headers) -> tuple[int, bool, str | None, str | None]:
    """priority, passthrough, filename and Idempotency-Key of an upload, checked as declared in the schema."""
    priority, passthrough = 0, False
    if (raw := query.get("priority")) is not None:
        try:
            priority = int(raw)
        except ValueError:
            raise _Invalid("query", "priority", "Input should be a valid integer", raw) from None
        if not -100 <= priority <= 100:
            raise _Invalid("query", "priority", "Input should be between -100 and 100", raw)
    if (raw := query.get("passthrough")) is not None:
        if raw.lower() not in _TRUE | _FALSE:
            raise _Invalid("query", "passthrough", "Input should be a valid boolean", raw)
        passthrough = raw.lower() in _TRUE
    filename = query.get("filename")
    if filename is not None and len(filename) > 300:
        raise _Invalid("query", "filename", "String should have at most 300 characters", filename)
    key = headers.get("idempotency-key")
    if key is not None and len(key) > 200:
        raise _Invalid("header", "Idempotency-Key", "String should have at most 200 characters", key)
    return priority, passthrough, filename, key


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
        # what the first upload would otherwise pay for, perhaps in the middle of a burst
        uploads.supported_types()
        self.s3.connect()
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


def create_app(settings: Settings | None = None, instance: "DagsterInstance | None" = None) -> DocflowApi:
    state = ApiState(settings or get_settings(), instance)
    app = DocflowApi(
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

    async def tenant_of(authorization: str | None, x_api_key: str | None) -> str:
        key = x_api_key
        if authorization and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if not key:
            raise HTTPException(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
        tenant = await state.keys.tenant(key)
        if tenant is None:
            raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        return tenant

    async def caller(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Ctx:
        tenant = await tenant_of(authorization, x_api_key)
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
        tenant: str,
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
        replay = await db.idempotency_begin(state.db, tenant, key, endpoint)
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
                    state.db, tenant, key, response.status_code, json.loads(response.body)
                )
            else:
                await db.idempotency_abandon(state.db, tenant, key)
            return response
        except BaseException:
            await asyncio.shield(db.idempotency_abandon(state.db, tenant, key))
            raise
        await db.idempotency_finish(state.db, tenant, key, 202, body)
        return JSONResponse(body, status_code=202, headers={"Location": body["url"]})

    def check_passthrough(tenant: str, passthrough: bool) -> None:
        if passthrough and db.get_webhook(state.runtime_for(tenant).store, tenant) is None:
            raise uploads.BadUpload("passthrough needs the tenant's webhook: PUT /v1/webhook first")

    # --- uploads -------------------------------------------------------------------------------------------
    async def upload(headers: Headers, query: QueryParams, stream: AsyncIterator[bytes]) -> Response:
        """POST /v1/documents, whichever way it came in (DocflowApi's hot path or the declared route)."""
        try:
            timings = uploads.Timings()
            started = time.perf_counter()
            tenant = await tenant_of(headers.get("authorization"), headers.get("x-api-key"))
            timings.add("auth", started)
            priority, passthrough, filename, idempotency_key = _upload_params(query, headers)
            max_bytes = state.settings.max_bytes
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes + UPLOAD_SLACK:
                raise TooLarge(f"{declared} bytes exceeds the limit of {max_bytes} bytes")

            async def handle() -> dict[str, Any]:
                nonlocal priority, passthrough
                started = time.perf_counter()
                content_type = headers.get("content-type", "")
                if content_type.startswith("multipart/form-data"):
                    staged, form = await uploads.read_multipart(content_type, stream, max_bytes)
                    try:
                        priority, passthrough = _form_options(form, priority, passthrough)
                    except uploads.BadUpload:
                        staged.cleanup()
                        raise
                else:
                    staged = await uploads.read_raw(stream, filename or "upload", max_bytes)
                timings.add("receive", started)
                try:
                    if passthrough:
                        await run_in_threadpool(check_passthrough, tenant, passthrough)
                    result = await state.accept(tenant, staged, priority, passthrough, timings)
                finally:
                    staged.cleanup()
                return accepted_body(result, priority, passthrough)

            return await idempotent(tenant, idempotency_key, "POST /v1/documents", handle, timings)
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        except _Invalid as exc:
            return JSONResponse({"detail": [exc.detail]}, status_code=422)
        except DocflowError as exc:
            return error_response(exc)

    app.upload = upload

    def header(name: str, description: str, max_length: int | None = None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        if max_length:
            schema["maxLength"] = max_length
        return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

    @app.post(
        UPLOAD_PATH,
        status_code=202,
        response_model=Accepted,
        responses=_UPLOAD_ERRORS,
        summary="Upload a document (multipart field `file`, or the raw bytes as the body)",
        openapi_extra={
            "parameters": [
                query(
                    "priority",
                    {"type": "integer", "minimum": -100, "maximum": 100, "default": 0},
                    "Run priority (the form field `priority` overrides it).",
                ),
                query(
                    "passthrough",
                    {"type": "boolean", "default": False},
                    "Zero retention: results go to the tenant's webhook, then everything is deleted.",
                ),
                query("filename", {"type": "string", "maxLength": 300}, "For a raw body: its file name."),
                header("Authorization", "`Bearer <key>`"),
                header("X-API-Key", "The key, instead of Authorization."),
                header("Idempotency-Key", "Makes retries of this request safe.", 200),
            ],
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
            },
        },
    )
    async def upload_document(request: Request) -> Response:
        """Streams the bytes to the bucket (hashed on the way, never held in memory) and answers 202 with the
        document id at once; the pipeline runs when the sensor sees the object. The same bytes for the same
        tenant give the same id and are processed once."""
        return await upload(request.headers, request.query_params, request.stream())

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
            check_passthrough(ctx.tenant, body.passthrough)
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

        return await idempotent(ctx.tenant, idempotency_key, "POST /v1/documents:fromUrl", handle)

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
        chunks: Annotated[bool, Query(description="chunks (several per document), not documents")] = False,
    ) -> SearchResults:
        """Hybrid (vector + full-text + name) search over the tenant's documents: one hit per document (its
        best chunk), or chunks with `chunks=true`."""
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
            chunks=chunks,
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
