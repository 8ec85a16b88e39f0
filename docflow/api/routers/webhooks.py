"""The tenant's completion webhook endpoints: each document's done/failed event is POSTed to every one of
them (docflow/webhooks.py). Reads and writes go through the caller's tenant-bound store (row-level security),
so another tenant's endpoints are invisible: deleting one answers 404."""

from fastapi import APIRouter, Response

from docflow.api.errors import READ_ERRORS, WRITE_ERRORS
from docflow.api.models import EndpointIn, EndpointOut, EndpointStats
from docflow.api.state import Authenticated
from docflow.errors import NotFound
from docflow.store import webhooks as store
from docflow.webhooks import check_url

router = APIRouter(tags=["webhooks"])


@router.post("/v1/webhooks", status_code=201, response_model=EndpointOut, responses=WRITE_ERRORS)
def add_endpoint(body: EndpointIn, who: Authenticated) -> EndpointOut:
    """Register an endpoint; the answer has its signing secret, shown only now."""
    check_url(body.url, who.state.allow)
    e = store.create_endpoint(who.store, who.tenant, body.url)
    return EndpointOut(id=e.id, url=e.url, created_at=e.created_at, disabled=e.disabled, secret=e.secret)


@router.get("/v1/webhooks", response_model=list[EndpointStats], responses=READ_ERRORS)
def list_endpoints(who: Authenticated) -> list[EndpointStats]:
    """The tenant's endpoints with their deliveries' counts and last error (no secrets)."""
    return [EndpointStats.model_validate(r) for r in store.list_endpoints(who.store, who.tenant)]


@router.delete("/v1/webhooks/{endpoint_id}", status_code=204, responses=READ_ERRORS)
def delete_endpoint(endpoint_id: str, who: Authenticated) -> Response:
    """Stop posting to an endpoint; its pending deliveries are dropped."""
    if not store.delete_endpoint(who.store, endpoint_id, who.tenant):
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    return Response(status_code=204)
