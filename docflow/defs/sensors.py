import hashlib
import itertools
from collections import Counter
from itertools import groupby

import dagster as dg

from docflow.backends.classify.local import current_rules
from docflow.defs.assets import ASSET_NAMES, process_batch, process_documents
from docflow.defs.partitions import documents, documents_of_runs
from docflow.defs.resources import DocflowResource
from docflow.ingest import NewDocument, ScanCursor, reconcile, scan
from docflow.orchestration.retention import archive_expired
from docflow.orchestration.tags import range_tags
from docflow.pipeline import config_fingerprint
from docflow.settings import Settings
from docflow.store.quotas import Limits
from docflow.store.tenants import passthrough_ids


def _scan_bucket(context: dg.SensorEvaluationContext, docflow: DocflowResource) -> dg.SensorResult:
    """s3_document_sensor: a new partition and a run for each new object under the upload prefix."""
    rt = docflow.runtime()
    s = rt.settings
    result = scan(
        rt.bucket,
        rt.store,
        ScanCursor.load(context.cursor),
        prefix=s.prefix,
        default_tenant=s.default_tenant,
        max_objects=s.sensor_max_per_tick,
        max_hash_bytes=s.sensor_max_hash_bytes,
        list_budget_s=s.sensor_list_budget_s,
        work_budget_s=s.sensor_work_budget_s,
        limits=Limits.of(s),  # new documents count against their tenant's daily quota, whoever wrote them
    )
    for problem in result.skipped:
        context.log.warning(f"will retry next tick: {problem}")
    # a range covers the partitions this tick adds, in this order: a document whose partition exists
    # already (e.g. re-uploaded after a reset) would not be added at the end, so it gets a run of its own
    known = (  # one query for the tick, not one per document
        {d.doc_id for d in result.new} & set(context.instance.get_dynamic_partitions(documents.name))
        if len(result.new) > 1
        else set()
    )
    # a passthrough document runs alone: its run, event log included, is deleted once its results are
    # delivered, which a batch run holding other documents' results cannot be
    private = passthrough_ids(rt.store, [d.doc_id for d in result.new]) if len(result.new) > 1 else set()
    alone = known | private
    # stable sort: each (tenant, priority) group's partitions are added contiguously, in this order, and
    # those run alone after them, outside every range. The daemon creates the runs in this order, seconds
    # each: a tenant with a document or two gets its run before another tenant's bulk load gets its batches.
    per_tenant = Counter(d.tenant for d in result.new)
    new = sorted(result.new, key=lambda d: (d.doc_id in alone, per_tenant[d.tenant], d.tenant, -d.priority))
    batched = [d for d in new if d.doc_id not in alone]
    requests = run_requests(batched, s.run_batch_size, s.run_spread) + run_requests(
        [d for d in new if d.doc_id in alone], 1
    )
    # an idle tick logs at debug: kept in the tick's log in the UI, left out of the terminal (`make dev`)
    seen = len(result.new) + result.aliases + len(result.skipped) + len(result.over_quota)
    (context.log.info if seen or result.remaining else context.log.debug)(
        f"{seen} new objects: {len(result.new)} documents registered, {result.aliases} already known, "
        f"{len(requests)} runs requested; {result.remaining} left for later ticks"
    )
    if result.over_quota:  # registered as failed, no run: `docflow retry --failed` once the quota allows
        context.log.warning(
            f"{len(result.over_quota)} documents over their tenant's daily quota registered as failed "
            f"(quota exceeded), no run requested: {result.over_quota[:20]}"
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[documents.build_add_request([d.doc_id for d in new])] if new else [],
        cursor=result.cursor.dump(),
    )


def priority_tag(priority: int) -> dict[str, str]:
    """Dagster's run queue starts higher `dagster/priority` first (0 when the tag is absent)."""
    return {"dagster/priority": str(max(-100, min(100, priority)))} if priority else {}


def run_requests(new: list[NewDocument], batch_size: int, spread: int = 1) -> list[dg.RunRequest]:
    """One run per document when they trickle in (lowest latency); during a bulk load, a tenant's documents
    in balanced batches of at most `batch_size`, in a multiple of `spread` runs so that every run slot the
    tenant may use gets work until the end (no last batch running alone), each a partition range over the
    partitions this tick adds in this order. Batching saves the per-run bookkeeping (plan, run and step
    events) on bulk loads."""
    requests = []
    for (tenant, priority), group in groupby(new, key=lambda d: (d.tenant, d.priority)):
        docs = list(group)
        tags = {"docflow/tenant": tenant} | priority_tag(priority)
        runs = min(len(docs), -(-max(-(-len(docs) // batch_size), spread) // spread) * spread)
        size, larger = divmod(len(docs), runs)  # sizes differ by at most one
        starts = [i * size + min(i, larger) for i in range(runs + 1)]
        for start, end in itertools.pairwise(starts):
            batch = docs[start:end]
            if len(batch) == 1:
                d = batch[0]
                run_key = d.run_key or f"{d.doc_id}:{d.etag}"
                requests.append(
                    dg.RunRequest(
                        partition_key=d.doc_id, run_key=run_key, tags=tags, job_name=process_documents.name
                    )
                )
                continue
            keys = "|".join(d.run_key or f"{d.doc_id}:{d.etag}" for d in batch)
            batch_tags = range_tags(batch[0].doc_id, batch[-1].doc_id) | {
                "docflow/batch_size": str(len(batch))
            }
            run_key = f"batch:{hashlib.sha256(keys.encode()).hexdigest()[:32]}"
            requests.append(
                dg.RunRequest(run_key=run_key, tags=tags | batch_tags, job_name=process_batch.name)
            )
    return requests


@dg.run_status_sensor(
    name="batch_failures_sensor",
    description="Re-runs each document that failed inside a batch run on its own: the run fails on that "
    "document's partition, so the UI shows it failed (a batch run's materialization covers its whole range), "
    "its asset checks run, and a transient failure gets a fresh set of retries.",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[process_batch],
    request_job=process_documents,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def batch_failures_sensor(context: dg.RunStatusSensorContext, docflow: DocflowResource):
    run = context.dagster_run
    rt = docflow.runtime()
    keys = documents_of_runs(context.instance, [run])
    failed = [k for k, status in rt.store.known(keys).items() if status == "failed"]
    rules = current_rules(rt.settings.rules_path)
    tags = {k: v for k, v in run.tags.items() if k == "docflow/tenant"} | {"docflow/reason": "isolate"}
    base = int(run.tags.get("dagster/priority", 0))
    return [
        dg.RunRequest(
            partition_key=k,
            run_key=f"{k}:isolated:{run.run_id}",
            # the document's type may be known by now: its priority adds to the batch's
            tags=tags | priority_tag(base + rules.priority(rt.store.get_document(k).doc_type)),
        )
        for k in failed
    ]


@dg.sensor(
    name="stale_documents_sensor",
    description="Re-processes documents made with another configuration (backend, model, schema version), "
    "a few per tick so a configuration change never floods the queue.",
    target=process_documents,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def stale_documents_sensor(context: dg.SensorEvaluationContext, docflow: DocflowResource) -> dg.SensorResult:
    rt = docflow.runtime()
    fingerprint = config_fingerprint(rt.settings)
    in_flight = context.instance.get_runs_count(
        dg.RunsFilter(
            tags={"docflow/reason": "stale"},
            statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
        )
    )
    room = rt.settings.stale_per_tick - in_flight  # keep at most stale_per_tick re-processing runs in flight
    if room <= 0:
        return dg.SensorResult(skip_reason=f"{in_flight} re-processing runs still in flight")
    # documents without a partition (registered, never run) are not re-processed here: look past them.
    # Archived ones (partition retention) are not even read: re-processed if and when they are restored.
    partitions = set(context.instance.get_dynamic_partitions(documents.name))
    stale = [d for d in rt.store.stale_documents(fingerprint, room * 20) if d.doc_id in partitions][:room]
    rules = current_rules(rt.settings.rules_path)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=d.doc_id,
                run_key=f"{d.doc_id}:config:{fingerprint}",
                # below new uploads of the same priority: re-processing never delays fresh documents
                tags={"docflow/tenant": d.tenant, "docflow/reason": "stale"}
                | priority_tag(rules.priority(d.doc_type) - 1),
            )
            for d in stale
        ]
    )


def _reconcile(context: dg.SensorEvaluationContext, docflow: DocflowResource) -> dg.SensorResult:
    """reconcile_sensor: remove the documents whose objects are gone or replaced."""
    rt = docflow.runtime()
    # raises when the listing is partial or suspicious: the tick fails and nothing is deleted
    found = reconcile(rt.bucket, rt.store, rt.settings.prefix)
    doomed = sorted(set(found.deleted_objects) | set(found.superseded))
    if not doomed:
        return dg.SensorResult(skip_reason=f"nothing to remove ({found.listed} objects listed)")
    rt.store.delete_documents(doomed)
    context.log.info(f"removed {len(doomed)} documents: {doomed[:20]}")
    existing = set(context.instance.get_dynamic_partitions(documents.name))
    return dg.SensorResult(
        dynamic_partitions_requests=[documents.build_delete_request([d for d in doomed if d in existing])]
    )


def _retain_partitions(context: dg.SensorEvaluationContext, docflow: DocflowResource) -> dg.SkipReason:
    """partition_retention: documents processed more than DOCFLOW_PARTITION_RETENTION_DAYS ago leave the
    `documents` partitions, DOCFLOW_PARTITION_RETENTION_PER_TICK at most per tick."""
    rt = docflow.runtime()
    days = rt.settings.partition_retention_days
    if days is None:
        return dg.SkipReason("partition retention is off (DOCFLOW_PARTITION_RETENTION_DAYS is not set)")
    archived = archive_expired(
        context.instance, rt.store, days, rt.settings.partition_retention_per_tick, asset_names=ASSET_NAMES
    )
    if archived:
        context.log.info(f"archived {archived} documents processed more than {days} days ago")
    # counts only, like the passthrough sensor: a tick's reason is kept in the UI
    return dg.SkipReason(f"archived {archived} documents processed more than {days} days ago")


def _deliver_passthrough(context: dg.SensorEvaluationContext, docflow: DocflowResource) -> dg.SkipReason:
    """passthrough_sensor: deliver finished passthrough documents' results, then forget the documents."""
    from docflow.passthrough import flush

    done = flush(docflow.runtime(), context.instance)
    # counts only: Dagster keeps a tick's reason after the documents are gone
    return dg.SkipReason(
        f"delivered {len(done.delivered)}, dropped {len(done.dropped)}, waiting {len(done.waiting)}"
    )


def _deliver_webhooks(context: dg.SensorEvaluationContext, docflow: DocflowResource) -> dg.SkipReason:
    """webhook_sensor: post the due completion webhooks (the outbox the documents' trigger fills)."""
    from docflow.webhooks import deliver_due

    rt = docflow.runtime()
    report = deliver_due(rt.store, rt.settings)
    if report.delivered or report.retrying or report.dead:
        context.log.info(f"webhooks: {report}")
    return dg.SkipReason(f"webhooks: {report}")


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """The sensors; the bucket's sensors tick every `settings.sensor_interval_s`, reconciliation every
    `settings.reconcile_interval_s`."""
    s3_document_sensor = dg.sensor(
        name="s3_document_sensor",
        description="Registers each new object under the upload prefix as a document partition and "
        "requests its run.",
        jobs=[process_documents, process_batch],
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(_scan_bucket)
    reconcile_sensor = dg.sensor(
        name="reconcile_sensor",
        description="Removes documents whose objects were deleted from the bucket, and documents superseded "
        "by new bytes under their key, with their rows, chunks and partitions. Refuses to act on a partial "
        "listing.",
        minimum_interval_seconds=settings.reconcile_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(_reconcile)
    passthrough_sensor = dg.sensor(
        name="passthrough_sensor",
        description="Zero retention: posts the results of finished passthrough documents to the tenant's "
        "webhook (signed, retried), then deletes their object, rows, chunks, partition and runs.",
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(_deliver_passthrough)
    webhook_sensor = dg.sensor(
        name="webhook_sensor",
        description="Completion webhooks: posts each document's done/failed event to its tenant's endpoints "
        "(signed, retried with backoff, dead-lettered after DOCFLOW_WEBHOOK_MAX_ATTEMPTS).",
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(_deliver_webhooks)
    # a sensor, not a schedule: it does its bounded work in the tick (no run, no run queue slot), ticks again
    # soon while a backlog is left (a first tick after turning retention on), and says why it skipped
    partition_retention = dg.sensor(
        name="partition_retention",
        description="Partition retention: documents done or failed more than "
        "DOCFLOW_PARTITION_RETENTION_DAYS ago leave the document partitions, a bounded number per tick "
        "(their rows, chunks and runs stay; processing one again adds its partition back). Skips while "
        "the setting is unset.",
        minimum_interval_seconds=settings.reconcile_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(_retain_partitions)
    return [
        s3_document_sensor,
        batch_failures_sensor,
        stale_documents_sensor,
        reconcile_sensor,
        passthrough_sensor,
        webhook_sensor,
        partition_retention,
    ]
