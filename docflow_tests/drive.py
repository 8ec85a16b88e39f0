"""Driving the production path in tests: tick the real `s3_document_sensor` against the real bucket and
instance, then do what the daemon does with its result (add the partitions, launch each requested run
once per run key) with the real jobs, in this process."""

from dataclasses import dataclass, field

import dagster as dg

from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.ingest import ScanCursor
from docflow.runner import QUIET
from docflow.settings import get_settings


def cursor_now(rt) -> str:
    """A sensor cursor that has seen every object in the bucket now: later ticks see only new uploads."""
    objects = list(rt.bucket.list(rt.settings.prefix))
    since = max((o.last_modified for o in objects), default=ScanCursor().since)
    seen = {o.key: (o.etag, o.last_modified.timestamp()) for o in objects}
    return ScanCursor(since=since, seen=seen).dump()


def sensor(name: str) -> dg.SensorDefinition:
    """A sensor as the code location defines it, for the settings of the moment."""
    from docflow.defs import build_defs

    return build_defs(get_settings()).resolve_sensor_def(name)


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"docflow": DocflowResource()}
    )
    result = sensor("s3_document_sensor")(context)
    assert isinstance(result, dg.SensorResult)
    return result


def covered(result: dg.SensorResult, request: dg.RunRequest) -> list[str]:
    """The documents a run request processes: its partition, or its range over this tick's new partitions."""
    if request.partition_key:
        return [request.partition_key]
    added = [k for r in result.dynamic_partitions_requests for k in r.partition_keys]
    rng = request.partition_key_range
    return added[added.index(rng.start) : added.index(rng.end) + 1]


@dataclass
class Driven:
    cursor: str | None
    ticks: int = 0
    requests: list[dg.RunRequest] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # every document covered by a request, in order
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)


def apply(
    instance: dg.DagsterInstance, result: dg.SensorResult, driven: Driven, execute: bool = True
) -> None:
    """Add the requested partitions and launch each run request once (the daemon skips a known run key)."""
    for req in result.dynamic_partitions_requests or []:
        if isinstance(req, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(documents.name, list(req.partition_keys))
    seen = {r.run_key for r in driven.requests}
    from docflow.defs import build_defs

    defs = build_defs(get_settings())
    for request in result.run_requests or []:
        if request.run_key in seen:
            continue
        driven.requests.append(request)
        driven.documents += covered(result, request)
        if not execute:
            continue
        job = defs.resolve_job_def(request.job_name or "process_documents")
        driven.runs.append(
            job.execute_in_process(
                partition_key=request.partition_key,
                tags=dict(request.tags),
                instance=instance,
                raise_on_error=False,
                run_config=QUIET,
            )
        )


def drain(
    instance: dg.DagsterInstance, cursor: str | None, execute: bool = True, max_ticks: int = 20
) -> Driven:
    """Tick until a tick finds nothing new and leaves nothing for later, launching what each tick requests."""
    driven = Driven(cursor)
    for _ in range(max_ticks):
        result = tick(instance, driven.cursor)
        driven.ticks += 1
        driven.cursor = result.cursor
        apply(instance, result, driven, execute)
        if not result.run_requests and not result.dynamic_partitions_requests:
            break
    return driven
