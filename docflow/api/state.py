"""What the routers depend on: the app's shared `ApiState` (in `app.state.docflow`), the authenticated caller
and the request's idempotency, each obtained with `Depends`."""

import asyncio
import functools
import gc
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from docflow import backends
from docflow.api import errors, events, uploads
from docflow.api.ratelimit import RateLimiter
from docflow.api.s3put import S3Writer
from docflow.api.spool import Spool
from docflow.errors import DocflowError
from docflow.netguard import parse_networks
from docflow.pipeline import Runtime
from docflow.runtime import resolve_settings, runtime
from docflow.settings import Settings
from docflow.store import tenants

if TYPE_CHECKING:
    from dagster import DagsterInstance


class ApiState:
    """What every request shares: resolved settings, the owner's bucket, the API role's database URL, the
    upload path's connection pool, S3 writer and spool."""

    def __init__(self, settings: Settings, instance: "DagsterInstance | None" = None) -> None:
        self.settings = resolve_settings(settings)
        self.owner = runtime(self.settings)
        self.api_url = tenants.api_database_url(self.settings)
        self.db = tenants.ApiDb(self.api_url)  # the upload path's asyncio pool (reads use TenantStore)
        # progress streams poll once a second each: their own small pool, so that many open streams never
        # take the connections an upload's registration is waiting for
        self.progress_db = tenants.ApiDb(self.api_url, max_size=2)
        self.rows = events.RowWatch(self.progress_db)
        self.s3 = S3Writer(self.settings)
        spool_dir = self.settings.api_spool_dir or self.settings.home / "api-spool"
        self.spool = None if str(spool_dir) == "off" else Spool(spool_dir.resolve(), self.s3)
        self.keys = tenants.KeyCache(self.db)
        self.limits = tenants.Limits(self.settings.api_docs_per_day, self.settings.api_bytes_per_day)
        self.rate = RateLimiter(self.settings.api_requests_per_minute, self.settings.api_request_burst)
        self.registrar = tenants.Registrar(self.db, self.limits)
        self.allow = parse_networks(self.settings.api_fetch_allow_networks)
        self._instance = instance
        self._lock = threading.Lock()

    def runtime_for(self, tenant: str) -> Runtime:
        store = tenants.TenantStore(self.api_url, tenant)
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
            functools.partial(backends.check_readable, self.settings),
            timings,
        )

    def check_passthrough(self, tenant: str, passthrough: bool) -> None:
        if passthrough and tenants.get_webhook(self.runtime_for(tenant).store, tenant) is None:
            raise uploads.BadUpload("passthrough needs the tenant's webhook: PUT /v1/webhook first")

    async def startup(self) -> None:
        await self.db.pool()
        # what the first upload would otherwise pay for, perhaps in the middle of a burst
        backends.readable_types(self.settings)
        self.s3.connect()
        if self.spool is not None:
            self.spool.start()  # also writes what a stopped process left in the spool to the bucket
        # what is loaded by now (modules, settings, the pools) lives as long as the process: leave it out of
        # the cyclic garbage collector's full passes, which a burst of requests triggers while it is served
        gc.freeze()

    async def aclose(self) -> None:
        if self.spool is not None:
            await self.spool.aclose()
        await self.keys.close()
        await self.rows.close()
        await self.s3.aclose()
        await self.progress_db.close()
        await self.db.close()

    def instance(self) -> "DagsterInstance":
        from docflow.orchestration.instance import dagster_instance

        with self._lock:
            if self._instance is None:
                self._instance = dagster_instance(self.settings)
            return self._instance


@dataclass
class Caller:
    """The authenticated caller: its tenant, and (built when first used) a runtime whose store only sees
    that tenant's rows."""

    tenant: str
    state: ApiState
    auth_ms: float = 0.0

    @cached_property
    def rt(self) -> Runtime:
        return self.state.runtime_for(self.tenant)

    @property
    def store(self) -> tenants.TenantStore:
        assert isinstance(self.rt.store, tenants.TenantStore)
        return self.rt.store


class KeyAuth(HTTPBearer):
    """The caller, from its API key: `Authorization: Bearer <key>` or `X-API-Key: <key>`. A security scheme
    of FastAPI's (OpenAPI documents it as the API's security), and one dependency: FastAPI solves every
    dependency node again on each request, and uploads are the hot path."""

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        started = time.perf_counter()
        state: ApiState = request.app.state.docflow
        scheme, _, key = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            key = request.headers.get("x-api-key") or ""
        key = key.strip()
        if not key:
            raise HTTPException(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
        tenant = await state.keys.tenant(key)
        if tenant is None:
            raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        state.rate.take(tenants.hash_key(key))  # raises RateLimited: 429 with Retry-After
        return Caller(tenant, state, (time.perf_counter() - started) * 1000)


caller = KeyAuth(
    scheme_name="ApiKey",
    description="`Authorization: Bearer <key>`, or the key alone in an `X-API-Key` header.",
    auto_error=False,
)


Authenticated = Annotated[Caller, Depends(caller)]


@dataclass
class Idempotency:
    """Runs a write once per Idempotency-Key: a retry (or a twin arriving at the same moment) gets the first
    request's answer. Server-side failures free the key; client errors are kept."""

    db: tenants.ApiDb
    endpoint: str
    key: str | None

    async def respond(
        self,
        tenant: str,
        handler: Callable[[], Awaitable[dict[str, Any]]],
        timings: uploads.Timings | None = None,
    ) -> JSONResponse:
        if not self.key:
            return _accepted(await handler(), timings)
        replay = await tenants.idempotency_begin(self.db, tenant, self.key, self.endpoint)
        if replay is not None:
            return JSONResponse(
                replay.body, status_code=replay.status_code, headers={"Idempotent-Replayed": "true"}
            )
        try:
            body = await handler()
        except DocflowError as exc:
            status, error, _ = errors.status_of(exc)
            if 400 <= status < 500 and status != 429:
                await tenants.idempotency_finish(self.db, tenant, self.key, status, error)
            else:
                await tenants.idempotency_abandon(self.db, tenant, self.key)
            raise  # answered by the exception handler, as without a key
        except BaseException:
            await asyncio.shield(tenants.idempotency_abandon(self.db, tenant, self.key))
            raise
        await tenants.idempotency_finish(self.db, tenant, self.key, 202, body)
        return _accepted(body, timings)


def _accepted(body: dict[str, Any], timings: uploads.Timings | None) -> JSONResponse:
    headers = {"Location": body["url"]}
    if timings is not None:
        headers["Server-Timing"] = timings.header()
    return JSONResponse(body, status_code=202, headers=headers)


async def idempotency(
    request: Request,
    key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", max_length=200, description="Makes retries of this request safe."),
    ] = None,
) -> Idempotency:
    route = request.scope.get("route")
    endpoint = f"{request.method} {getattr(route, 'path', request.url.path)}"
    return Idempotency(request.app.state.docflow.db, endpoint, key)


Idempotent = Annotated[Idempotency, Depends(idempotency)]
