"""The five document assets. Each body calls one step of docflow.pipeline and reports metadata for the UI
(built by defs/metadata.py; every asset shows `duration_s` and `backend`).

Retry policies (exponential backoff with +/- jitter so that many failing runs do not retry in lock-step):
- raw_file: S3 blips are short and frequent at scale -> many quick retries (6 x from 1 s).
- classification / extracted_fields: remote APIs answer 429/5xx for tens of seconds -> 5 x from 5 s.
- parsed_markdown: parsing is long and mostly deterministic; a retry helps only for a remote parser or
  a killed worker -> 2 x from 15 s.
- embeddings: a local model rarely fails transiently, an embedding API may rate-limit -> 4 x from 3 s.
A `BadDocument` (corrupt, encrypted, too large...) is never retried: the document is marked failed at once.
"""

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from docflow import pipeline
from docflow.defs import metadata as md
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.errors import BadDocument, NotFound
from docflow.orchestration.events import log_observations
from docflow.settings import Settings
from docflow.store.tenants import passthrough_ids

GROUP = "documents"
OWNERS = ["team:data-platform"]

# Pool limits applied to the instance by `docflow up` / `make dev` (see docflow.cli); production sets its own.
# None is below dagster.yaml's max_concurrent_runs: a batch run holds a pool slot for a whole batch step, so a
# pool no larger than one tenant's run slots lets its bulk load block every other tenant's steps that long.
POOLS = {"docflow_s3": 8, "docflow_parse": 4, "docflow_api": 4, "docflow_embed": 4}


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


class WithheldError(Exception):
    """A passthrough document's step failed: the original error stays in documents.error (delivered to the
    tenant's webhook, then deleted); Dagster's event log gets its type only, as an error message may quote
    the document (a parser's or a validator's message, a remote API's answer)."""


def run_step(
    context: dg.AssetExecutionContext,
    rt: pipeline.Runtime,
    step: str,
    doc_id: str,
    batch: bool = False,
    private: bool = False,
) -> tuple[Any, float]:
    """Run one pipeline step for one document; record failures against the document.

    Returns the step's typed result and how long it took (seconds, shown as `duration_s` in the UI).
    A bad document raises a non-retryable Failure; other errors are retried by the asset's RetryPolicy and
    mark the document failed when the retries run out (in a batch, that document is then given up alone).
    `private` (a passthrough document): what reaches Dagster names the error's type, never its message."""
    started = time.perf_counter()
    try:
        return pipeline.STEPS[step](rt, doc_id), time.perf_counter() - started
    except BadDocument as exc:
        rt.store.set_status(doc_id, "failed", stage=step, error=f"{step}: {exc}")
        if private:
            raise dg.Failure(description=_withheld(step, exc), allow_retries=False) from None
        raise dg.Failure(description=f"{step}: {exc}", allow_retries=False) from exc
    except Exception as exc:
        if context.retry_number < RETRY[step].max_retries:
            if private:  # retried all the same; `from None`: no traceback of the original reaches Dagster
                raise WithheldError(_withheld(step, exc)) from None
            raise  # the whole step is retried; steps are idempotent
        error = f"{step}: {type(exc).__name__}: {exc} (after {context.retry_number} retries)"
        rt.store.set_status(doc_id, "failed", stage=step, error=error)
        if private:
            raise (
                dg.Failure(description=_withheld(step, exc), allow_retries=False)
                if batch
                else WithheldError(_withheld(step, exc))
            ) from None
        if batch:
            raise dg.Failure(description=error, allow_retries=False) from exc
        raise


def _withheld(step: str, exc: BaseException) -> str:
    return f"{step}: {type(exc).__name__} (message withheld: passthrough document)"


MetadataFn = Callable[[pipeline.Runtime, str, Any, float], Mapping[str, Any]]


def materialize(
    context: dg.AssetExecutionContext, docflow: DocflowResource, step: str, metadata: MetadataFn
) -> dg.MaterializeResult:
    """The body of every document asset: run `step` for the run's document, or for each document of a
    batch (a partition range: the sensor's bulk loads, a backfill from the UI). In a batch, each document's
    metadata is logged as an observation of its partition, a bad document is marked failed and skipped by
    the later steps of the run while the others go on, and the materialization carries a summary. The step
    fails only when every document failed and a service error was among the reasons."""
    rt = docflow.runtime()
    keys = context.partition_keys
    private = passthrough_ids(rt.store, list(keys))

    def metadata_of(doc_id: str, result: Any, seconds: float) -> Mapping[str, Any]:
        meta = metadata(rt, doc_id, result, seconds)
        return md.counts_only(dict(meta)) if doc_id in private else meta

    if len(keys) == 1:
        result, seconds = run_step(context, rt, step, keys[0], private=keys[0] in private)
        return dg.MaterializeResult(metadata=metadata_of(keys[0], result, seconds))
    failed_in_run, failed_before = set[str](), set[str]()
    if step != "raw_file":  # raw_file starts every document afresh, and no step of the run came before it
        failed_in_run, failed_before = failed_documents(context, rt, keys)
    failed: dict[str, str] = {}
    service_errors = 0
    observations: list[dg.AssetObservation] = []
    try:
        for doc_id in keys:
            if doc_id in failed_in_run:
                failed[doc_id] = "failed in an earlier step"
                continue
            try:
                result, seconds = run_step(context, rt, step, doc_id, batch=True, private=doc_id in private)
            except dg.Failure as exc:
                failed[doc_id] = exc.description or "failed"
                service_errors += not isinstance(exc.__cause__, BadDocument)
                continue
            if doc_id in failed_before:  # processed again (re-extracting or re-embedding a failed document)
                rt.store.set_status(doc_id, "running", stage=step)
            metadata_ = metadata_of(doc_id, result, seconds)
            observations.append(dg.AssetObservation(context.asset_key, partition=doc_id, metadata=metadata_))
    finally:
        log_observations(context, observations)
    if len(failed) == len(keys) and service_errors:  # not the documents' fault: something is down
        raise dg.Failure(description=f"{step}: every document of the batch failed", metadata=failed)
    return dg.MaterializeResult(
        metadata={"documents": len(keys), "failed": len(failed), "failures": dg.MetadataValue.json(failed)}
    )


def failed_documents(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, rt: pipeline.Runtime, keys: list[str]
) -> tuple[set[str], set[str]]:
    """Those of a batch's documents that failed in an earlier step (or check) of this run, to skip, and those
    that had failed before it, which this run processes again (e.g. a re-extraction of failed documents)."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = (record.start_time if record else None) or 0.0
    failed = rt.store.failed_at(keys)
    in_run = {doc_id for doc_id, at in failed.items() if at >= started}
    return in_run, set(failed) - in_run


def _raw_file(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    return materialize(context, docflow, "raw_file", _raw_file_metadata)


def _raw_file_metadata(rt: pipeline.Runtime, doc_id: str, raw: Any, seconds: float) -> Mapping[str, Any]:
    doc = rt.store.get_document(doc_id)
    return md.raw_file_metadata(raw, doc, rt.bucket.url(doc.key), seconds)


def _classification(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    return materialize(
        context, docflow, "classification", lambda _rt, _id, result, s: md.classification_metadata(result, s)
    )


def _parsed_markdown(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    return materialize(
        context, docflow, "parsed_markdown", lambda _rt, _id, result, s: md.parsed_metadata(result, s)
    )


def _extracted_fields(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    return materialize(
        context, docflow, "extracted_fields", lambda _rt, _id, result, s: md.extraction_metadata(result, s)
    )


def _embeddings(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    return materialize(context, docflow, "embeddings", _embeddings_metadata)


def build_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """The five document assets. Backfills launched from the UI (bulk re-processing) run
    `settings.backfill_batch_size` documents per run."""
    backfill = dg.BackfillPolicy.multi_run(max_partitions_per_run=settings.backfill_batch_size)
    with warnings.catch_warnings():
        # backfill_policy is beta in Dagster 1.13; docflow relies on it knowingly (UI backfills in batches)
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _five_assets(backfill)


def _five_assets(backfill: dg.BackfillPolicy) -> list[dg.AssetsDefinition]:
    def asset(
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
            backfill_policy=backfill,
            op_tags=k8s,
        )

    raw_file = asset(
        "raw_file",
        "The uploaded object pinned: content hash verified, type sniffed from the bytes, pages counted. "
        "Shows file name, size, pages, content type and a link to the object.",
        "docflow_s3",
        _k8s("100m", "256Mi", "500m", "1Gi"),
        {"s3", "python"},
        [],
    )(_raw_file)
    classification = asset(
        "classification",
        "Document type (invoice, receipt, contract, ...) with a calibrated confidence and the evidence. "
        "Shows the type, confidence, reasoning and the score of every type.",
        "docflow_api",
        _k8s("250m", "512Mi", "1", "2Gi"),
        {"python"},
        ["raw_file"],
    )(_classification)
    parsed_markdown = asset(
        "parsed_markdown",
        "Faithful markdown and plain text of the document, page by page, tables as markdown tables. "
        "Shows a markdown preview, pages, blocks, tables and parser warnings.",
        "docflow_parse",
        _k8s("1", "1Gi", "2", "4Gi"),
        {"python", "markdown"},
        ["raw_file"],
    )(_parsed_markdown)
    extracted_fields = asset(
        "extracted_fields",
        "Typed fields for the document's type, validated against its pydantic schema. Shows the fields as "
        "a table and the validation errors; checked by `schema_valid` (blocking) and "
        "`required_fields_present`.",
        "docflow_api",
        _k8s("250m", "512Mi", "1", "2Gi"),
        {"python", "pydantic"},
        ["classification", "parsed_markdown"],
    )(_extracted_fields)
    embeddings = asset(
        "embeddings",
        "Structure-aware chunks with vectors (pgvector, HNSW) and a full-text index, ready for search. Shows "
        "a summary card of the document, chunk count, model and dimension; checked by `chunks_present` and "
        "`dimension_matches`.",
        "docflow_embed",
        _k8s("1", "2Gi", "2", "4Gi"),
        {"pgvector", "postgres"},
        ["parsed_markdown", "extracted_fields"],
    )(_embeddings)
    return [raw_file, classification, parsed_markdown, extracted_fields, embeddings]


def _embeddings_metadata(rt: pipeline.Runtime, doc_id: str, result: Any, seconds: float) -> Mapping[str, Any]:
    return md.embeddings_metadata(result, seconds, document_summary(rt, doc_id, result))


def document_summary(rt: pipeline.Runtime, doc_id: str, result: pipeline.EmbedResult) -> str | None:
    """The whole story of the document for the last asset's page; None if an upstream row is missing."""
    store = rt.store
    try:
        doc, c, e = (
            store.get_document(doc_id),
            store.load_classification(doc_id),
            store.load_extraction(doc_id),
        )
    except NotFound:
        return None
    return md.summary_markdown(doc, c, e, result)


# the five assets in pipeline order; jobs select them by key, so they need no built definitions
ASSET_NAMES = ("raw_file", "classification", "parsed_markdown", "extracted_fields", "embeddings")
ASSET_KEYS = [dg.AssetKey(name) for name in ASSET_NAMES]

# The document jobs print critical messages only: every event, stack traces included, is in the event log
# (the UI), and `make dev`'s terminal says per run and per failed document (docflow/devlog.py) instead of a
# trace per failed document. A launch's own run config (`docflow run`, the tests) still sets its level.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

process_documents = dg.define_asset_job(
    "process_documents",
    selection=dg.AssetSelection.assets(*ASSET_KEYS),
    description="All five assets for one document (what the sensor and `docflow run` launch).",
    config=QUIET_CONSOLE,
)

process_batch = dg.define_asset_job(
    "process_batch",
    selection=dg.AssetSelection.assets(*ASSET_KEYS).without_checks(),
    description="All five assets for a batch of documents (a partition range), what the sensor launches "
    "for bulk loads. Asset checks run on single-document runs; a batch reports per-document failures in "
    "its materialization metadata and in documents.error.",
    config=QUIET_CONSOLE,
)
