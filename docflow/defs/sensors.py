import dagster as dg

from docflow.defs.assets import process_documents
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.ingest import ScanCursor, scan
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
