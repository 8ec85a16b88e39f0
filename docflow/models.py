"""Typed values passed between steps. Pure pydantic: no Dagster, no database."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

DocStatus = Literal["pending", "running", "done", "failed"]


class Document(BaseModel):
    """One row of `docflow.documents`: a unique content for a tenant, possibly under several keys."""

    doc_id: str
    tenant: str
    bucket: str
    key: str
    etag: str = ""
    sha256: str = ""
    size: int = 0
    content_type: str = ""
    filename: str = ""
    pages: int | None = None
    status: DocStatus = "pending"
    stage: str | None = None  # the last asset that completed (or failed)
    error: str | None = None
    doc_type: str | None = None
    config_fingerprint: str | None = None
    passthrough: bool = False  # zero retention: delivered to the webhook, then deleted
    archived_at: datetime | None = None  # partition retention: when its Dagster partition was removed
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RawFile(BaseModel):
    """What `raw_file` establishes about the bytes of a document."""

    doc_id: str
    sha256: str
    size: int
    content_type: str  # sniffed from the content, e.g. "application/pdf"
    filename: str
    pages: int | None = None


class Block(BaseModel):
    """A piece of parsed content in reading order, with the page it came from (1-based)."""

    kind: Literal["heading", "paragraph", "list", "table", "code"] = "paragraph"
    text: str  # markdown of this block
    page: int | None = None
    level: int | None = None  # heading level (1-6) for kind == "heading"


class Span(BaseModel):
    """A run of text where it stands on its page: the layout that extraction reads beside the markdown.

    Coordinates are fractions of the page (0..1, origin top-left), the same for PDF text and OCR boxes;
    a span is one column cell of a line (text separated by a wide gap is two spans).
    """

    page: int  # 1-based
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    ocr: bool = False  # read by OCR (its text may hold recognition errors)


class Box(BaseModel):
    """A rectangle on a page, in the coordinates of `Span` (fractions of the page, origin top-left)."""

    page: int  # 1-based
    x0: float
    y0: float
    x1: float
    y1: float


class FieldSource(Box):
    """Where an extracted value was read: its page and box (the union of the spans it was read from), the
    text of those spans and the value's confidence. Keyed in `Extraction.provenance` by the value's path
    ("invoice_number", "line_items.0.amount", "key_values.<label>")."""

    text: str
    confidence: float = 0.0
    ocr: bool = False  # read by OCR


class ParsedDocument(BaseModel):
    """Output of a parse backend."""

    markdown: str
    text: str  # plain text (markdown syntax removed), used for classification and full-text search
    pages: int | None = None
    blocks: list[Block] = Field(default_factory=list)
    parser: str  # e.g. "local/pypdfium2"
    warnings: list[str] = Field(default_factory=list)
    spans: list[Span] = Field(default_factory=list)  # text with boxes, where the parser knows them


class Classification(BaseModel):
    """Output of a classify backend."""

    doc_type: str  # one of the types in data/doc_types.yaml, "other" below the threshold
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str  # human-readable evidence, e.g. "matched: 'invoice number', 'due date', 'total'"
    scores: dict[str, float] = Field(default_factory=dict)  # per type, for inspection
    backend: str  # e.g. "local/rules"


class Extraction(BaseModel):
    """Output of an extract backend: fields as JSON-able values (validated against the type's schema)."""

    doc_type: str
    schema_name: str
    schema_version: str
    fields: dict[str, Any]
    field_confidence: dict[str, float] = Field(default_factory=dict)
    validation_errors: list[str] = Field(default_factory=list)  # stored, never raised
    backend: str
    provenance: dict[str, FieldSource] = Field(default_factory=dict)  # value path -> where it was read


class Chunk(BaseModel):
    """A retrieval unit cut from the markdown."""

    index: int
    text: str
    heading_path: list[str] = Field(default_factory=list)
    page_start: int | None = None
    page_end: int | None = None
    n_tokens: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)
    boxes: list[Box] = Field(default_factory=list)  # where the chunk's text stands on its pages


class SearchHit(BaseModel):
    doc_id: str
    key: str
    filename: str
    doc_type: str | None
    chunk_index: int
    score: float
    text: str
    heading_path: list[str] = Field(default_factory=list)
    page_start: int | None = None
    page_end: int | None = None
    boxes: list[Box] = Field(default_factory=list)


class Answer(BaseModel):
    question: str
    answer: str
    extractive: bool  # True when no LLM is configured: the answer is the best supporting passages
    sources: list[SearchHit]
