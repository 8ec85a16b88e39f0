"""The HTTP service: uploads, URL ingest, status, live progress (SSE), search and ask, for many tenants.

It never processes a document itself: uploads are written to the bucket (the S3 sensor requests their runs),
reads come from Postgres (as the row-level-security role, bound to the caller's tenant) and the Dagster
instance's event log. `create_app()` is the uvicorn factory (`docflow api`); the schema is at /openapi.json.
Every request goes through FastAPI's middleware, routing and dependencies (docflow.api.state).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from docflow.api import errors
from docflow.api.routers import admin, documents, events, pages, search, webhooks
from docflow.api.state import ApiState
from docflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from dagster import DagsterInstance


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ApiState = app.state.docflow
    await state.startup()
    try:
        yield
    finally:
        await state.aclose()


def create_app(settings: Settings | None = None, instance: "DagsterInstance | None" = None) -> FastAPI:
    app = FastAPI(
        title="docflow",
        version="1",
        description="Upload documents, watch them being classified, parsed, extracted and embedded, search "
        "and ask. Authenticate with `Authorization: Bearer <key>` (or `X-API-Key`).",
        lifespan=lifespan,
    )
    app.state.docflow = ApiState(settings or get_settings(), instance)
    errors.install(app)
    for router in (documents.router, events.router, search.router, admin.router, webhooks.router):
        app.include_router(router)
    app.include_router(pages.router)
    return app
