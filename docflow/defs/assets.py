"""The five document assets. Each body calls one step of docflow.pipeline and reports metadata.

Retry policies (exponential backoff with +/- jitter so that many failing runs do not retry in lock-step):
- raw_file: S3 blips are short and frequent at scale -> many quick retries (6 x from 1 s).
- classification / extracted_fields: remote APIs answer 429/5xx for tens of seconds -> 5 x from 5 s.
- parsed_markdown: parsing is long and mostly deterministic; a retry helps only for a remote parser or
  a killed worker -> 2 x from 15 s.
- embeddings: a local model rarely fails transiently, an embedding API may rate-limit -> 4 x from 3 s.
A `BadDocument` (corrupt, encrypted, too large...) is never retried: the document is marked failed at once.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg

from docflow import pipeline
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.errors import BadDocument
from docflow.models import Classification, Extraction, ParsedDocument, RawFile
from docflow.store.db import jsonable

GROUP = "documents"
OWNERS = ["team:data-platform"]

# Pool limits applied to the instance by `docflow up` / `make dev` (see docflow.cli); production sets its own.
POOLS = {"docflow_s3": 8, "docflow_parse": 2, "docflow_api": 4, "docflow_embed": 1}


def _retry(max_retries: int, delay: float) -> dg.RetryPolicy:
    return dg.RetryPolicy(
        max_retries=max_retries, delay=delay, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    )


def _k8s(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    """Run resources for `k8s_job_executor`: each step's pod gets these requests/limits."""
    resources = {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }
    return {"dagster-k8s/config": {"container_config": {"resources": resources}}}


RETRY = {
    "raw_file": _retry(6, 1),
    "classification": _retry(5, 5),
    "parsed_markdown": _retry(2, 15),
    "extracted_fields": _retry(5, 5),
    "embeddings": _retry(4, 3),
}


def run_step(context: dg.AssetExecutionContext, docflow: DocflowResource, step: str) -> Any:
    """Run one pipeline step for the partition's document; record failures against the document."""
    rt = docflow.runtime()
    doc_id = context.partition_key
    try:
        return pipeline.STEPS[step](rt, doc_id)
    except BadDocument as exc:
        rt.store.set_status(doc_id, "failed", stage=step, error=f"{step}: {exc}")
        raise dg.Failure(description=f"{step}: {exc}", allow_retries=False) from exc
    except Exception as exc:
        if context.retry_number >= RETRY[step].max_retries:
            error = f"{step}: {type(exc).__name__}: {exc} (after {context.retry_number} retries)"
            rt.store.set_status(doc_id, "failed", stage=step, error=error)
        raise


def _asset(
    name: str, description: str, pool: str, k8s: dict[str, Any], kinds: set[str], deps: list[str]
) -> Callable:
    return dg.asset(
        name=name,
        description=description,
        partitions_def=documents,
        deps=deps,
        group_name=GROUP,
        owners=OWNERS,
        kinds=kinds,
        pool=pool,
        retry_policy=RETRY[name],
        op_tags=k8s,
    )


@_asset(
    "raw_file",
    "The uploaded object pinned: content hash verified, type sniffed from the bytes, pages counted.",
    "docflow_s3",
    _k8s("100m", "256Mi", "500m", "1Gi"),
    {"s3", "python"},
    [],
)
def raw_file(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    raw: RawFile = run_step(context, docflow, "raw_file")
    return dg.MaterializeResult(
        metadata={
            "filename": raw.filename,
            "size_bytes": raw.size,
            "content_type": raw.content_type,
            "pages": raw.pages or 0,
            "sha256": raw.sha256,
        }
    )


@_asset(
    "classification",
    "Document type (invoice, receipt, contract, ...) with a calibrated confidence and the evidence.",
    "docflow_api",
    _k8s("250m", "512Mi", "1", "2Gi"),
    {"python"},
    ["raw_file"],
)
def classification(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    result: Classification = run_step(context, docflow, "classification")
    return dg.MaterializeResult(
        metadata={
            "doc_type": result.doc_type,
            "confidence": float(result.confidence),
            "reasoning": result.reasoning,
            "backend": result.backend,
        }
    )


@_asset(
    "parsed_markdown",
    "Faithful markdown and plain text of the document, page by page, tables as markdown tables.",
    "docflow_parse",
    _k8s("1", "1Gi", "2", "4Gi"),
    {"python", "markdown"},
    ["raw_file"],
)
def parsed_markdown(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    result: ParsedDocument = run_step(context, docflow, "parsed_markdown")
    return dg.MaterializeResult(
        metadata={
            "parser": result.parser,
            "pages": result.pages or 0,
            "characters": len(result.markdown),
            "warnings": "\n".join(result.warnings) or "none",
            "preview": dg.MetadataValue.md(result.markdown[:3000]),
        }
    )


@_asset(
    "extracted_fields",
    "Typed fields for the document's type, validated against its pydantic schema.",
    "docflow_api",
    _k8s("250m", "512Mi", "1", "2Gi"),
    {"python", "pydantic"},
    ["classification", "parsed_markdown"],
)
def extracted_fields(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    result: Extraction = run_step(context, docflow, "extracted_fields")
    return dg.MaterializeResult(
        metadata={
            "doc_type": result.doc_type,
            "schema": f"{result.schema_name} v{result.schema_version}",
            "fields": dg.MetadataValue.json(jsonable(result.fields)),
            "validation_errors": "\n".join(result.validation_errors) or "none",
            "backend": result.backend,
        }
    )


@_asset(
    "embeddings",
    "Structure-aware chunks with vectors (pgvector, HNSW) and a full-text index, ready for search.",
    "docflow_embed",
    _k8s("1", "2Gi", "2", "4Gi"),
    {"pgvector", "postgres"},
    ["parsed_markdown", "extracted_fields"],
)
def embeddings(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    result: pipeline.EmbedResult = run_step(context, docflow, "embeddings")
    return dg.MaterializeResult(
        metadata={
            "chunks": result.chunks,
            "tokens": result.tokens,
            "embedding_model": result.model,
            "dimension": result.dimension,
        }
    )


ASSETS = [raw_file, classification, parsed_markdown, extracted_fields, embeddings]

process_documents = dg.define_asset_job(
    "process_documents",
    selection=dg.AssetSelection.assets(*ASSETS),
    description="All five assets for one document (what the sensor and `docflow run` launch).",
)
