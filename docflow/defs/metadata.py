"""Materialization metadata for the Dagster UI: pure functions from typed step results to metadata entries.

No I/O here: the assets pass in what they have. The order of the entries is the order the UI shows them,
most useful first.
"""

import json
from typing import Any

import dagster as dg

from docflow.backends.extract.provenance import leaves
from docflow.models import Classification, Document, Extraction, ParsedDocument, RawFile
from docflow.pipeline import EmbedResult

Metadata = dict[str, Any]
PREVIEW_CHARS = 3000
VALUE_CHARS = 200

# What a passthrough document's metadata may carry into Dagster's event log: counts, sizes, timings and
# which backend ran. Nothing read from the document (text, previews, field values, the classifier's
# evidence, validation or parser messages that quote values) and nothing naming it (file name, object key,
# content hash): the event log outlives the document's runs in backups and in other records.
PASSTHROUGH_KEYS = frozenset(
    {
        "size_bytes",
        "size",
        "pages",
        "content_type",
        "duration_s",
        "backend",
        "doc_type",
        "confidence",
        "characters",
        "blocks",
        "tables",
        "field_count",
        "chunks",
        "tokens",
        "embedding_model",
        "dimension",
        "schema",
    }
)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def show_value(value: Any, limit: int = VALUE_CHARS) -> str:
    """A field value as one short line of text (lists and objects as compact JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def raw_file_metadata(raw: RawFile, doc: Document, object_url: str, seconds: float) -> Metadata:
    return {
        "filename": raw.filename,
        "size": human_size(raw.size),
        "size_bytes": dg.MetadataValue.int(raw.size),
        "pages": dg.MetadataValue.int(raw.pages or 0),
        "content_type": raw.content_type,
        "tenant": doc.tenant,
        "object": dg.MetadataValue.url(object_url),
        "s3_uri": f"s3://{doc.bucket}/{doc.key}",
        "sha256": raw.sha256,
        "duration_s": dg.MetadataValue.float(round(seconds, 3)),
        "backend": "s3",
    }


def counts_only(meta: Metadata) -> Metadata:
    """A passthrough document's metadata: the entries of PASSTHROUGH_KEYS, and a flag saying why."""
    return {"passthrough": True, **{k: v for k, v in meta.items() if k in PASSTHROUGH_KEYS}}


def classification_metadata(c: Classification, seconds: float) -> Metadata:
    scores = sorted(c.scores.items(), key=lambda kv: -kv[1])[:8]
    return {
        "doc_type": c.doc_type,
        "confidence": dg.MetadataValue.float(round(float(c.confidence), 4)),
        "reasoning": dg.MetadataValue.text(c.reasoning),
        "scores": dg.MetadataValue.table(
            records=[dg.TableRecord({"doc_type": t, "score": round(float(s), 4)}) for t, s in scores],
            schema=dg.TableSchema(
                columns=[dg.TableColumn("doc_type", "string"), dg.TableColumn("score", "float")]
            ),
        ),
        "duration_s": dg.MetadataValue.float(round(seconds, 3)),
        "backend": c.backend,
    }


def parsed_metadata(p: ParsedDocument, seconds: float) -> Metadata:
    preview = p.markdown[:PREVIEW_CHARS]
    if len(p.markdown) > PREVIEW_CHARS:
        preview += f"\n\n*… {len(p.markdown) - PREVIEW_CHARS} more characters*"
    return {
        "preview": dg.MetadataValue.md(preview or "*(no text)*"),
        "pages": dg.MetadataValue.int(p.pages or 0),
        "characters": dg.MetadataValue.int(len(p.markdown)),
        "blocks": dg.MetadataValue.int(len(p.blocks)),
        "tables": dg.MetadataValue.int(sum(1 for b in p.blocks if b.kind == "table")),
        "warnings": "\n".join(p.warnings) or "none",
        "duration_s": dg.MetadataValue.float(round(seconds, 3)),
        "backend": p.parser,
    }


def fields_table(e: Extraction) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "field": name,
                    "value": show_value(value),
                    "confidence": round(float(e.field_confidence.get(name, 0.0)), 3),
                }
            )
            for name, value in e.fields.items()
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("field", "string"),
                dg.TableColumn("value", "string"),
                dg.TableColumn("confidence", "float"),
            ]
        ),
    )


def provenance_table(e: Extraction) -> dg.TableMetadataValue:
    """Where each value was read: its page and the text of its box (values found on no page left out)."""
    values = dict(leaves(e.fields))
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "field": path,
                    "value": show_value(values.get(path)),
                    "page": source.page,
                    "source_text": show_value(source.text),
                    "confidence": round(float(source.confidence), 3),
                }
            )
            for path, source in e.provenance.items()
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("field", "string"),
                dg.TableColumn("value", "string"),
                dg.TableColumn("page", "int"),
                dg.TableColumn("source_text", "string"),
                dg.TableColumn("confidence", "float"),
            ]
        ),
    )


def extraction_metadata(e: Extraction, seconds: float) -> Metadata:
    # "provenance" quotes the document's text: not in PASSTHROUGH_KEYS, so counts_only drops it
    return {
        "doc_type": e.doc_type,
        "fields": fields_table(e),
        "provenance": provenance_table(e),
        "field_count": dg.MetadataValue.int(len(e.fields)),
        "validation_errors": "\n".join(e.validation_errors) or "none",
        "schema": f"{e.schema_name} v{e.schema_version}",
        "fields_json": dg.MetadataValue.json(e.fields),
        "duration_s": dg.MetadataValue.float(round(seconds, 3)),
        "backend": e.backend,
    }


def summary_markdown(doc: Document, c: Classification, e: Extraction, r: EmbedResult) -> str:
    """One card that tells the whole story of a document, shown on the last asset's partition page."""
    rows = "\n".join(f"| {name} | {_cell(value)} |" for name, value in e.fields.items())
    table = f"| field | value |\n|---|---|\n{rows}" if rows else "*no fields extracted*"
    errors = "".join(f"\n- {m}" for m in e.validation_errors)
    return (
        f"### {doc.filename}\n\n"
        f"**{c.doc_type}** (confidence {c.confidence:.2f}, {c.backend}) · {doc.content_type} · "
        f"{human_size(doc.size)} · {doc.pages or 0} page(s) · tenant `{doc.tenant}`\n\n"
        f"> {c.reasoning}\n\n{table}\n\n"
        + (f"**Validation errors**{errors}\n\n" if errors else "")
        + f"{r.chunks} chunks · {r.tokens} tokens · {r.model} ({r.dimension} dimensions)"
    )


def _cell(value: Any) -> str:
    return show_value(value, 120).replace("|", "\\|").replace("\n", " ")


def embeddings_metadata(r: EmbedResult, seconds: float, summary: str | None) -> Metadata:
    meta: Metadata = {
        "chunks": dg.MetadataValue.int(r.chunks),
        "tokens": dg.MetadataValue.int(r.tokens),
        "embedding_model": r.model,
        "dimension": dg.MetadataValue.int(r.dimension),
        "duration_s": dg.MetadataValue.float(round(seconds, 3)),
        "backend": r.model.split("/", 1)[0],
    }
    if summary:
        meta = {"document": dg.MetadataValue.md(summary), **meta}
    return meta
