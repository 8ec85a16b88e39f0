"""The tenant's settings and usage, the health check and the web page."""

from datetime import date
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from docflow.api.errors import READ_ERRORS, WRITE_ERRORS
from docflow.api.models import Usage, WebhookIn, WebhookOut
from docflow.api.state import Authenticated
from docflow.api.uploads import BadUpload
from docflow.netguard import resolve
from docflow.store import tenants
from docflow.store import usage as metered

router = APIRouter()


@router.put("/v1/webhook", response_model=WebhookOut, responses=WRITE_ERRORS, tags=["tenant"])
def put_webhook(body: WebhookIn, who: Authenticated) -> WebhookOut:
    """Where passthrough results are POSTed; returns the signing secret (only now)."""
    if body.url:
        import httpx

        url = httpx.URL(body.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise BadUpload("the webhook must be an http(s) URL")
        resolve(url.host, url.port or 443, who.state.allow)  # BlockedAddress for an inside address
    return WebhookOut(url=body.url, secret=tenants.set_webhook(who.store, body.url))


@router.get("/v1/usage", response_model=Usage, responses=READ_ERRORS, tags=["tenant"])
def usage(
    who: Authenticated,
    from_: Annotated[
        date | None, Query(alias="from", description="First UTC day [29 days before `to`].")
    ] = None,
    to: Annotated[date | None, Query(description="Last UTC day [today].")] = None,
) -> Usage:
    """Today's usage against the tenant's quotas, and what the pipeline did per UTC day (`days`)."""
    start, end = metered.default_range(from_, to)
    if not 0 <= (end - start).days < metered.MAX_DAYS:
        raise BadUpload(f"`from` must be on or before `to`, at most {metered.MAX_DAYS} days apart")
    days = metered.daily(who.store, who.tenant, start, end)
    return Usage(tenant=who.tenant, **tenants.usage(who.store, who.state.limits), days=days)


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(resources.files("docflow.api").joinpath("static/index.html").read_text())
