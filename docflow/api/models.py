"""Request and response bodies of the HTTP API (they make the published OpenAPI schema)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from docflow.models import DocStatus, FieldSource, SearchHit


class Accepted(BaseModel):
    doc_id: str
    status: DocStatus
    duplicate: bool = Field(description="The tenant already had these bytes: no second processing.")
    filename: str
    size: int
    content_type: str
    priority: int
    passthrough: bool
    url: str = Field(description="GET this for the document's status and results.")
    events_url: str = Field(description="Server-Sent Events with the document's stages.")


class UploadOptions(BaseModel):
    """An upload's options, validated by this one model wherever they come from: the query string of
    `POST /v1/documents`, the form fields next to its `file` (a form field wins over the query), or the JSON
    body of `POST /v1/documents:fromUrl`. Booleans follow pydantic's one rule: true/false, 1/0, yes/no,
    on/off, t/f, y/n, in any case."""

    priority: int = Field(0, ge=-100, le=100, description="Run priority (dagster/priority); higher first.")
    passthrough: bool = Field(False, description="Zero retention: results go to the webhook, then deleted.")
    filename: str | None = Field(
        None,
        max_length=300,
        description="The document's file name. Default: the form part's file name, the download's, or "
        "`upload` for a raw body.",
    )


class UploadForm(UploadOptions):
    """The multipart/form-data body of an upload (its schema in the OpenAPI document)."""

    file: bytes = Field(description="The document.")


class FromUrl(UploadOptions):
    url: str = Field(max_length=4096, description="http(s) URL to download (public addresses only).")


class DocumentOut(BaseModel):
    doc_id: str
    filename: str
    status: DocStatus
    stage: str | None = None
    doc_type: str | None = None
    error: str | None = None
    size: int = 0
    content_type: str = ""
    pages: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    archived_at: datetime | None = Field(
        None,
        description="When partition retention removed the document's Dagster partition (its results stay); "
        "`POST /v1/documents/{doc_id}:reprocess` processes it again.",
    )


class Reprocessing(BaseModel):
    doc_id: str
    restored: bool = Field(description="The document was archived and got its Dagster partition back.")
    backfill_id: str = Field(description="The Dagster backfill that runs it (the daemon launches its run).")
    url: str


class DocumentDetail(DocumentOut):
    confidence: float | None = None
    reasoning: str | None = None
    fields: dict[str, Any] | None = None
    field_confidence: dict[str, float] | None = None
    provenance: dict[str, FieldSource] = Field(
        default_factory=dict,
        description="Where each value was read: field path (`total_amount`, `line_items.0.amount`) -> page, "
        "box (x0, y0, x1, y1: fractions of the page, origin top-left), the source text and a confidence.",
    )
    validation_errors: list[str] = Field(default_factory=list)
    chunks: int = 0
    lineage: dict[str, Any] | None = Field(
        None,
        description="An archived document's lineage summary, recorded when partition retention removed its "
        "Dagster partition and asset events: per asset, the latest materialization's `run_id`, `timestamp` "
        "(epoch seconds) and `data_version`. Null for a document that is not archived.",
    )
    events_url: str
    reviews: dict[str, "ReviewOut"] = Field(
        default_factory=dict,
        description="Reviewed field paths: their values are in `fields` and win over re-extractions.",
    )


class ReviewOut(BaseModel):
    action: Literal["confirm", "correct"]
    value: Any = Field(None, description="The reviewed value (null: the field has no value).")
    extracted_value: Any = Field(None, description="What the extractor had said when it was first reviewed.")
    reviewer: str
    reviewed_at: datetime


class FieldsPatch(BaseModel):
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description="Corrections: a field path (`total_amount`, `line_items.0.amount`, `key_values.Date`) -> "
        "its value, validated against the document type's schema; null removes the value.",
    )
    confirm: list[str] = Field(default_factory=list, description="Paths whose extracted value is right.")
    reviewer: str | None = Field(None, max_length=200, description="Who reviewed [default: the tenant].")


class ReviewedFields(BaseModel):
    doc_id: str
    doc_type: str
    fields: dict[str, Any] = Field(description="The document's fields with every review applied.")
    reviews: dict[str, ReviewOut]


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class SearchResults(BaseModel):
    query: str
    hits: list[SearchHit]


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=50)
    doc_type: str | None = None


class WebhookIn(BaseModel):
    url: str | None = Field(
        None, max_length=2048, description="https URL to POST passthrough results to; null clears it."
    )


class WebhookOut(BaseModel):
    url: str | None
    secret: str | None = Field(description="HMAC-SHA256 key of X-Docflow-Signature (shown once).")


class EndpointIn(BaseModel):
    url: str = Field(max_length=2048, description="http(s) URL each document's done/failed event goes to.")


class EndpointOut(BaseModel):
    id: str
    url: str
    created_at: datetime
    disabled: bool = False
    secret: str | None = Field(
        None, description="HMAC-SHA256 key of X-Docflow-Signature: returned when created, never again."
    )


class EndpointStats(BaseModel):
    id: str
    url: str
    created_at: datetime
    disabled: bool
    delivered: int
    pending: int
    dead: int = Field(description="Deliveries given up after DOCFLOW_WEBHOOK_MAX_ATTEMPTS failed attempts.")
    last_delivered_at: datetime | None
    last_error: str | None


class Usage(BaseModel):
    tenant: str
    day: str
    documents: int
    bytes: int
    docs_per_day: int
    bytes_per_day: int
    days: list["UsageDay"] = Field(
        default_factory=list,
        description="What the pipeline did per UTC day from `from` to `to` (days without usage left out).",
    )


class UsageFigures(BaseModel):
    documents: int = Field(description="Documents whose raw_file step ran (a re-processed one counts again).")
    pages: int = Field(description="Pages parsed.")
    bytes: int = Field(description="Bytes of those documents.")
    ocr_pages: int = Field(description="Page images read by OCR (classification and parsing).")
    remote_calls: int = Field(description="Requests sent to remote backends, failed attempts included.")
    input_tokens: int
    output_tokens: int
    pages_billed: int = Field(description="Pages a remote backend bills (LlamaParse, LlamaCloud).")
    credits: float = Field(description="Credits LlamaCloud reported for its jobs.")
    cost_usd: float = Field(description="Estimated from the price table (data/prices.yaml); not a bill.")


class UsageBackend(UsageFigures):
    backend: str
    model: str


class UsageDay(UsageFigures):
    day: str
    backends: list[UsageBackend] = Field(description="The figures of each backend and model.")


class ErrorOut(BaseModel):
    error: str
    detail: str


Usage.model_rebuild()  # `days` names a model defined after it
DocumentDetail.model_rebuild()  # `reviews` too
