"""Error mapping, in one place: docflow's exceptions become JSON answers `{"error": code, "detail": message}`
through the app's exception handlers (the idempotency store asks `status_of` what a failure will answer)."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from docflow.api.models import ErrorOut
from docflow.api.ratelimit import RateLimited
from docflow.api.uploads import BadUpload
from docflow.errors import BackendUnavailable, BadDocument, DocflowError, NotFound, UnsupportedFormat
from docflow.netguard import BlockedAddress, FetchError, TooLarge
from docflow.store.reviews import InvalidReview, NotExtracted
from docflow.store.tenants import IdempotencyConflict, QuotaExceeded
from docflow.store.webhooks import TooManyEndpoints
from docflow.webhooks import BadWebhookUrl


class InProgress(DocflowError):
    """The document is pending or running: it is being processed already."""


_STATUS: list[tuple[type[Exception], int, str]] = [  # most specific first
    (InProgress, 409, "in_progress"),
    (QuotaExceeded, 429, "quota_exceeded"),
    (RateLimited, 429, "rate_limited"),
    (IdempotencyConflict, 409, "idempotency_conflict"),
    (TooLarge, 413, "too_large"),
    (UnsupportedFormat, 415, "unsupported_type"),
    (BlockedAddress, 400, "blocked_address"),
    (BadUpload, 400, "bad_request"),
    (BadWebhookUrl, 400, "bad_request"),
    (TooManyEndpoints, 409, "too_many_endpoints"),
    (FetchError, 422, "fetch_failed"),
    (BadDocument, 422, "bad_document"),
    (InvalidReview, 422, "invalid_field"),
    (NotExtracted, 409, "not_extracted"),
    (NotFound, 404, "not_found"),
    (BackendUnavailable, 503, "unavailable"),
]


def status_of(exc: DocflowError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status code, JSON body and headers a docflow error is answered with."""
    status, code = next(((s, c) for t, s, c in _STATUS if isinstance(exc, t)), (500, "internal"))
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QuotaExceeded | RateLimited) else {}
    if status == 503:
        headers["Retry-After"] = "5"
    return status, {"error": code, "detail": str(exc)}, headers


async def _docflow_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DocflowError)
    status, body, headers = status_of(exc)
    return JSONResponse(body, status_code=status, headers=headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # the client went away mid-body: nobody reads this answer, but the server must not log a 500
    return Response(status_code=400)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DocflowError, _docflow_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)


# The OpenAPI documentation of the answers above, per kind of endpoint.
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or unknown API key."},
    404: {"model": ErrorOut, "description": "No such document for this tenant."},
    429: {"model": ErrorOut, "description": "The API key's request rate limit; see Retry-After."},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    400: {"model": ErrorOut, "description": "Malformed request, or a URL to a blocked address."},
    409: {"model": ErrorOut, "description": "Idempotency-Key reused for another endpoint or still running."},
    413: {"model": ErrorOut, "description": "Larger than DOCFLOW_MAX_BYTES."},
    415: {"model": ErrorOut, "description": "Not a document type docflow reads (sniffed from the bytes)."},
    422: {"model": ErrorOut, "description": "Empty document, invalid parameters, or the URL failed."},
    429: {"model": ErrorOut, "description": "Daily quota or the key's rate limit exceeded; see Retry-After."},
}
