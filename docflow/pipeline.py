"""The five steps of docflow as plain functions over (settings, store, bucket). No Dagster here.

The assets in defs/assets.py call one step each; `process` runs all five in a plain loop (what
`docflow bench` measures Dagster's overhead against).
"""

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from docflow import backends, metering
from docflow.backends.embed.chunking import chunk_markdown
from docflow.backends.extract import provenance
from docflow.bucket import Bucket, ObjectInfo, unsafe_key
from docflow.errors import BadDocument, DocumentTooLarge
from docflow.models import Classification, Extraction, ParsedDocument, RawFile
from docflow.schemas import schema_fingerprint
from docflow.settings import Settings, data_dir, get_settings
from docflow.sniff import TEXT_TYPES, count_pages, read_text, sniff_content_type
from docflow.store import Store
from docflow.store.usage import record as record_usage

_log = logging.getLogger(__name__)


class RecentBytes:
    """The bytes of the documents `raw_file` verified last, for the two steps that read them again
    (classification and parsing): one S3 request per document instead of three. Keyed by document id and
    content hash, so never stale; at most `budget` bytes, the oldest dropped first. A step that misses (a
    batch larger than the budget, another process) downloads the bytes and does not keep them: over a batch
    read in order, keeping them would push out the ones the next documents need. Passthrough documents'
    bytes are never put here: a warm worker would hold them after the document is deleted."""

    def __init__(self, budget: int = 64 * 2**20) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def put(self, doc_id: str, sha256: str, data: bytes) -> None:
        if len(data) > self.budget:
            return
        with self._lock:
            old = self._items.pop((doc_id, sha256), b"")
            self._items[(doc_id, sha256)] = data
            self._size += len(data) - len(old)
            while self._size > self.budget:
                self._size -= len(self._items.popitem(last=False)[1])

    def get(self, doc_id: str, sha256: str | None) -> bytes | None:
        with self._lock:
            return self._items.get((doc_id, sha256 or ""))


@dataclass
class Runtime:
    """What a step needs: settings, the database and the bucket (and the bytes it read last)."""

    store: Store
    bucket: Bucket
    settings: Settings = field(default_factory=get_settings)
    recent: RecentBytes = field(default_factory=RecentBytes)


@dataclass(frozen=True)
class EmbedResult:
    chunks: int
    model: str
    dimension: int
    tokens: int


def config_fingerprint(settings: Settings) -> str:
    """Backends, model and schema versions a document was processed with; a change means re-processing."""
    parts = [
        settings.parse_backend,
        settings.classify_backend,
        settings.extract_backend,
        settings.embed_backend,
        settings.embed_model or "bundled-minilm",
        str(settings.chunk_tokens),
        str(settings.chunk_overlap),
        schema_fingerprint(settings.rules_path),
        _classifier_model_hash(settings),
    ]
    if settings.parse_backend == "llamacloud":  # the tier decides the markdown
        parts.append(settings.llama_parse_tier)
    if settings.embed_backend == "openai":  # the remote model and vector size decide the vectors too
        parts += [settings.openai_embed_model, str(settings.openai_embed_dimensions or "")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _classifier_model_hash(settings: Settings) -> str:
    """A retrained local classifier classifies differently: its file is part of the configuration."""
    if settings.classify_backend != "local" or not settings.classify_learned:
        return ""
    path = settings.classifier_model_path or data_dir() / "classifier.json"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else ""


def load_bytes(rt: Runtime, key: str) -> tuple[ObjectInfo, bytes]:
    """An object's info and bytes in one request; one over the size limit is refused with its body unread."""
    info, data = rt.bucket.get(key, rt.settings.max_bytes)
    if data is None:
        raise DocumentTooLarge(f"{info.size} bytes exceeds the limit of {rt.settings.max_bytes} bytes")
    return info, data


def raw_file(rt: Runtime, doc_id: str) -> RawFile:
    """Pin the object: verify the bytes hash to the document id, sniff the type, count pages; refuse a type
    the configured parse backend does not read."""
    doc = rt.store.get_document(doc_id)
    if reason := unsafe_key(doc.key):
        raise BadDocument(f"unsafe object key {doc.key[:120]!r}: {reason}")
    info, data = load_bytes(rt, doc.key)
    sha256 = hashlib.sha256(data).hexdigest()
    if doc.sha256 and sha256 != doc.sha256:
        raise BadDocument(
            f"object {doc.key} changed since it was registered (sha256 {sha256[:12]} != {doc.sha256[:12]})"
        )
    if not data:
        raise BadDocument("the file is empty (0 bytes)")
    content_type = sniff_content_type(data, doc.filename)
    if content_type in TEXT_TYPES:
        read_text(data)  # whitespace, or garbage behind a byte-order mark: refused before any backend
    raw = RawFile(
        doc_id=doc_id,
        sha256=sha256,
        size=len(data),
        content_type=content_type,
        filename=doc.filename,
        pages=count_pages(data, content_type),
    )
    if raw.pages and raw.pages > rt.settings.max_pages:
        raise DocumentTooLarge(f"{raw.pages} pages exceeds the limit of {rt.settings.max_pages} pages")
    rt.store.save_raw(raw, info.etag)  # the sniffed type is kept, also for a document refused next
    backends.check_readable(rt.settings, content_type, doc.filename)
    if not doc.passthrough:  # a passthrough document's bytes are read again from the bucket, never kept
        rt.recent.put(doc_id, sha256, data)
    return raw


def _raw(rt: Runtime, doc_id: str) -> tuple[RawFile, bytes]:
    doc = rt.store.get_document(doc_id)
    raw = RawFile(
        doc_id=doc_id,
        sha256=doc.sha256,
        size=doc.size,
        content_type=doc.content_type,
        filename=doc.filename,
        pages=doc.pages,
    )
    data = rt.recent.get(doc_id, doc.sha256)
    return raw, data if data is not None else load_bytes(rt, doc.key)[1]


@contextmanager
def _deterministic(what: str) -> Iterator[None]:
    """Errors that repeat on every try with the same input are the document's fault: never retried."""
    try:
        yield
    except RecursionError as exc:
        raise BadDocument(f"the {what} is nested too deeply to read") from exc


def classification(rt: Runtime, doc_id: str) -> Classification:
    raw, data = _raw(rt, doc_id)
    with _deterministic(raw.content_type or "document"):
        result = backends.get_classifier(rt.settings).classify(data, raw)
    rt.store.save_classification(doc_id, result)
    return result


def parsed_markdown(rt: Runtime, doc_id: str) -> ParsedDocument:
    raw, data = _raw(rt, doc_id)
    with _deterministic(raw.content_type or "document"):
        result = backends.get_parser(rt.settings).parse(data, raw)
    rt.store.save_parsed(doc_id, result)
    return result


def extracted_fields(rt: Runtime, doc_id: str) -> Extraction:
    parsed = rt.store.load_parsed(doc_id)
    classified = rt.store.load_classification(doc_id)
    result = backends.get_extractor(rt.settings).extract(parsed, classified)
    result = provenance.locate(result, parsed)  # every backend's values traced to the page the same way
    rt.store.save_extraction(doc_id, result)
    # as stored: a person's reviews win over the extractor's values (the UI's metadata shows those)
    return rt.store.load_extraction(doc_id)


def embeddings(rt: Runtime, doc_id: str) -> EmbedResult:
    parsed = rt.store.load_parsed(doc_id)
    extraction = rt.store.load_extraction(doc_id)
    doc = rt.store.get_document(doc_id)
    metadata = {
        "doc_type": extraction.doc_type,
        "tenant": doc.tenant,
        "filename": doc.filename,
        "fields": extraction.fields,
    }
    chunks = chunk_markdown(parsed, rt.settings.chunk_tokens, rt.settings.chunk_overlap, metadata)
    chunks = provenance.with_boxes(chunks, parsed.spans)
    embedder = backends.get_embedder(rt.settings)
    vectors = embedder.embed([c.text for c in chunks])
    rt.store.ensure_vector_index(embedder.dimension)
    rt.store.save_chunks(doc_id, chunks, vectors, embedder.name, config_fingerprint(rt.settings))
    return EmbedResult(len(chunks), embedder.name, embedder.dimension, sum(c.n_tokens for c in chunks))


def _metered(name: str, step: Callable[[Runtime, str], Any]) -> Callable[[Runtime, str], Any]:
    """The step, metered (docflow/metering.py): what it did is added to the tenant's usage of the day in one
    statement when it ends, failed or not (a failed attempt's remote calls were made)."""

    @functools.wraps(step)
    def run(rt: Runtime, doc_id: str) -> Any:
        with metering.metered() as meter:
            try:
                result = step(rt, doc_id)
            except BaseException:
                try:
                    _record_usage(rt, doc_id, name, meter)
                except Exception:  # never hide the step's own error behind the meter's
                    _log.warning("the usage of a failed %s was not recorded", name, exc_info=True)
                raise
            if isinstance(result, RawFile):  # the documents and bytes read, the pages parsed
                meter.add("bucket", documents=1, bytes=result.size)
            elif isinstance(result, ParsedDocument):
                meter.add(rt.settings.parse_backend, pages=result.pages or 0)
            _record_usage(rt, doc_id, name, meter)
            return result

    return run


def _record_usage(rt: Runtime, doc_id: str, name: str, meter: metering.Meter) -> None:
    record_usage(rt.store, doc_id, name, meter.rows(metering.load_prices(rt.settings.prices_path)))


STEPS = {
    name: _metered(name, step)
    for name, step in {
        "raw_file": raw_file,
        "classification": classification,
        "parsed_markdown": parsed_markdown,
        "extracted_fields": extracted_fields,
        "embeddings": embeddings,
    }.items()
}


def process(rt: Runtime, doc_id: str, steps: Iterable[str] = STEPS) -> None:
    """The five steps (or those named) for one document in a plain loop (no Dagster), recording failure like
    the assets do."""
    for name in steps:
        step = STEPS[name]
        try:
            step(rt, doc_id)
        except BadDocument as exc:
            rt.store.set_status(doc_id, "failed", stage=name, error=f"{name}: {exc}")
            return
