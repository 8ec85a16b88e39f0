import dagster as dg

from docflow.defs.assets import process_documents
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.ingest import ScanCursor, reconcile, scan
from docflow.pipeline import config_fingerprint
from docflow.settings import get_settings


@dg.sensor(
    name="s3_document_sensor",
    description="Registers each new object under the upload prefix as a document partition and "
    "requests its run.",
    target=process_documents,
    minimum_interval_seconds=get_settings().sensor_interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def s3_document_sensor(context: dg.SensorEvaluationContext, docflow: DocflowResource) -> dg.SensorResult:
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
    )
    for problem in result.skipped:
        context.log.warning(f"will retry next tick: {problem}")
    context.log.info(
        f"{len(result.new)} new documents, {result.aliases} known, {result.remaining} left for later ticks"
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=d.doc_id,
                run_key=f"{d.doc_id}:{d.etag}",
                tags={"docflow/tenant": d.tenant},
            )
            for d in result.new
        ],
        dynamic_partitions_requests=[documents.build_add_request([d.doc_id for d in result.new])]
        if result.new
        else [],
        cursor=result.cursor.dump(),
    )


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
    stale = rt.store.stale_documents(fingerprint, rt.settings.stale_per_tick)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=d.doc_id,
                run_key=f"{d.doc_id}:config:{fingerprint}",
                tags={"docflow/tenant": d.tenant, "docflow/reason": "stale"},
            )
            for d in stale
        ]
    )


@dg.sensor(
    name="reconcile_sensor",
    description="Removes documents whose objects were deleted from the bucket, and documents superseded by "
    "new bytes under their key, with their rows, chunks and partitions. Refuses to act on a partial listing.",
    minimum_interval_seconds=get_settings().reconcile_interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def reconcile_sensor(context: dg.SensorEvaluationContext, docflow: DocflowResource) -> dg.SensorResult:
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
