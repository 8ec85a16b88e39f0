"""Dagster-facing code only: partitions, resources, assets, sensors, checks. The work lives elsewhere."""

import os

import dagster as dg

from docflow.errors import MissingExtra
from docflow.settings import get_settings

# A batch run's step materializes its whole partition range at once: Dagster writes those events in one
# insert instead of one each when event batching is on (it reads this variable when it writes events).
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "100")


def build_defs() -> dg.Definitions:
    from docflow.defs.assets import ASSETS, process_batch, process_documents
    from docflow.defs.checks import CHECKS
    from docflow.defs.jobs import JOBS, SCHEDULES
    from docflow.defs.report import document_report
    from docflow.defs.resources import DocflowResource
    from docflow.defs.sensors import (
        batch_failures_sensor,
        passthrough_sensor,
        reconcile_sensor,
        s3_document_sensor,
        stale_documents_sensor,
    )

    return dg.Definitions(
        assets=[*ASSETS, document_report],
        asset_checks=CHECKS,
        jobs=[process_documents, process_batch, *JOBS],
        schedules=SCHEDULES,
        sensors=[
            s3_document_sensor,
            batch_failures_sensor,
            stale_documents_sensor,
            reconcile_sensor,
            passthrough_sensor,
        ],
        resources={"docflow": DocflowResource()},
        executor=executor(get_settings().executor),
    )


def executor(kind: str) -> dg.ExecutorDefinition:
    """The run executor, chosen by `DOCFLOW_EXECUTOR` with no code change."""
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError as exc:
        raise MissingExtra("dagster-k8s", "k8s", "the Kubernetes executor") from exc
    return k8s_job_executor
