"""`docflow run`: put files into the bucket, register them and materialize all five assets through the
Dagster instance (in this process, so it works with no daemon running; the runs show in the UI)."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel

from docflow import ingest
from docflow.models import Document
from docflow.pipeline import Runtime, config_fingerprint
from docflow.runtime import runtime
from docflow.settings import Settings
from docflow.store.quotas import Limits, is_quota_error

# Dagster's console logger prints every event at DEBUG; the CLI prints its own progress instead.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class DocSummary(BaseModel):
    doc_id: str
    key: str
    filename: str
    status: str
    doc_type: str | None = None
    chunks: int = 0
    error: str | None = None
    archived: bool = False  # partition retention removed its Dagster partition (processing it adds it back)


def summarize(rt: Runtime, docs: Sequence[Document]) -> list[DocSummary]:
    return [
        DocSummary(
            doc_id=d.doc_id,
            key=d.key,
            filename=d.filename,
            status=d.status,
            doc_type=d.doc_type,
            chunks=rt.store.count_chunks(d.doc_id) if d.status == "done" else 0,
            error=d.error,
            archived=d.archived_at is not None,
        )
        for d in docs
    ]


def run_paths(
    paths: Sequence[Path],
    tenant: str,
    settings: Settings,
    force: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> list[DocSummary]:
    """Upload, register and process files; documents already done with the current config are skipped.
    New documents count against the tenant's daily quota: those over it are registered as failed ('quota
    exceeded'), not run, and reported failed (a document refused earlier is counted again now)."""
    rt = runtime(settings)
    limits = Limits.of(rt.settings)
    doc_ids: dict[str, None] = {}  # in order, once each: two files with the same bytes are one document
    for path, root in ingest.iter_files(paths):
        up = ingest.plan_upload(path, root, rt.settings.prefix, tenant)
        doc_ids.setdefault(ingest.upload(rt.bucket, rt.store, up, limits).doc_id)
    ready, refused = admit(rt, list(doc_ids), limits, progress)
    summary = process(rt, ready, force, progress)
    return _in_order(list(doc_ids), summary + summarize(rt, [rt.store.get_document(d) for d in refused]))


def admit(
    rt: Runtime, doc_ids: list[str], limits: Limits, progress: Callable[[str], None]
) -> tuple[list[str], list[str]]:
    """(documents to run, documents the daily quota refuses now). A document the quota refused before is
    counted against today's quota now and runs if it fits; if not, it stays failed and is not run."""
    ready, refused = [], []
    for doc_id in doc_ids:
        doc = rt.store.get_document(doc_id)
        quota_failed = doc.status == "failed" and is_quota_error(doc.error)
        if quota_failed and (error := rt.store.readmit(doc_id, limits)):
            progress(f"{doc.filename}: not run, {error} (docflow retry --failed once the quota allows)")
            refused.append(doc_id)
        else:
            ready.append(doc_id)
    return ready, refused


def _in_order(doc_ids: list[str], summary: list[DocSummary]) -> list[DocSummary]:
    by_id = {s.doc_id: s for s in summary}
    return [by_id[d] for d in doc_ids if d in by_id]


STRANDED_AFTER = timedelta(minutes=30)


def dead_letters(rt: Runtime, tenant: str | None = None) -> list[Document]:
    """Failed documents, and stranded ones: pending or running for over STRANDED_AFTER with no queued or
    running Dagster run covering them (their run died where docflow could not record a failure)."""
    failed = rt.store.list_documents(tenant=tenant, status="failed", limit=100_000)
    cutoff = datetime.now(UTC) - STRANDED_AFTER
    waiting = [
        d
        for status in ("pending", "running")
        for d in rt.store.list_documents(tenant=tenant, status=status, limit=100_000)
        if d.updated_at is None or d.updated_at < cutoff
    ]
    if not waiting:
        return failed
    from docflow.orchestration.instance import dagster_instance

    covered = _in_flight(dagster_instance(rt.settings))
    return failed + [d for d in waiting if d.doc_id not in covered]


def _in_flight(instance) -> set[str]:
    """Documents a queued or running run will process (its partition, or its batch's range)."""
    from dagster import DagsterRunStatus, RunsFilter

    from docflow.defs.partitions import documents_of_runs

    active = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]
    runs = instance.get_runs(RunsFilter(statuses=[*active, DagsterRunStatus.STARTED]))
    return set(documents_of_runs(instance, runs))


def retry_failed(
    settings: Settings, tenant: str | None = None, progress: Callable[[str], None] = lambda _: None
) -> list[DocSummary]:
    """Process the dead letters (failed or stranded documents) again, e.g. after a fix or an outage. A
    document the daily quota refused is counted against today's quota first, and stays failed (not run)
    while it is still over."""
    rt = runtime(settings)
    doc_ids = [d.doc_id for d in dead_letters(rt, tenant)]
    ready, refused = admit(rt, doc_ids, Limits.of(rt.settings), progress)
    summary = process(rt, ready, force=True, progress=progress)
    return _in_order(doc_ids, summary + summarize(rt, [rt.store.get_document(d) for d in refused]))


def reprocess(
    settings: Settings,
    doc_ids: Sequence[str],
    job: str = "process_documents",
    progress: Callable[[str], None] = lambda _: None,
) -> list[DocSummary]:
    """Run `job` again for documents named by id, whatever their status; an archived document (partition
    retention) gets its partition back first. Raises NotFound for an id that is not registered."""
    rt = runtime(settings)
    ids = list(dict.fromkeys(doc_ids))
    for doc_id in ids:
        rt.store.get_document(doc_id)
    return _in_order(ids, process(rt, ids, force=True, progress=progress, job_name=job))


def restore_partitions(settings: Settings, doc_ids: Sequence[str]) -> list[str]:
    """Give archived documents their Dagster partitions back without running anything (to select them in
    the UI, e.g. for a backfill); returns those that were archived."""
    from docflow.orchestration.instance import dagster_instance
    from docflow.orchestration.retention import restore

    rt = runtime(settings)
    ids = list(dict.fromkeys(doc_ids))
    for doc_id in ids:
        rt.store.get_document(doc_id)
    return restore(dagster_instance(rt.settings), rt.store, ids)


def process(
    rt: Runtime,
    doc_ids: list[str],
    force: bool,
    progress: Callable[[str], None],
    job_name: str = "process_documents",
) -> list[DocSummary]:
    """Materialize all five assets (or `job_name`'s) for each document through the Dagster instance, one run
    each. An archived document that runs gets its partition back first."""
    if not doc_ids:
        return []
    from docflow.defs import build_defs
    from docflow.orchestration.instance import dagster_instance
    from docflow.orchestration.retention import restore

    instance = dagster_instance(rt.settings)
    fingerprint = config_fingerprint(rt.settings)
    docs = {d: rt.store.get_document(d) for d in doc_ids}
    todo = {
        d: None
        for d in doc_ids
        if force or not (docs[d].status == "done" and docs[d].config_fingerprint == fingerprint)
    }
    # keys already there are left alone; an archived document that is skipped stays archived
    if restored := restore(instance, rt.store, list(todo)):
        progress(f"{len(restored)} archived documents get their partitions back")
    job = build_defs(rt.settings).resolve_job_def(job_name)
    for i, doc_id in enumerate(doc_ids, 1):
        doc = docs[doc_id]
        if doc_id not in todo:
            progress(f"[{i}/{len(doc_ids)}] {doc.filename}: already processed")
            continue
        progress(f"[{i}/{len(doc_ids)}] {doc.filename}: processing {doc_id}")
        result = job.execute_in_process(
            partition_key=doc_id,
            instance=instance,
            raise_on_error=False,
            run_config=QUIET,
            tags={"docflow/tenant": doc.tenant, "docflow/source": "cli"},
        )
        # the run is over: free any pool slot whose release was lost (a database restart during the run),
        # which the daemon's run monitoring would free only later, and which no daemon frees for the CLI
        instance.event_log_storage.free_concurrency_slots_for_run(result.run_id)
    return summarize(rt, [rt.store.get_document(d) for d in doc_ids])
