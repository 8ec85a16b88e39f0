"""Dagster-facing code only: partitions, resources, assets, sensors, checks. The work lives elsewhere."""

import dagster as dg

from docflow.errors import MissingExtra
from docflow.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    """Every definition, for these settings (read once by the caller: docflow.definitions)."""
    from docflow.defs.assets import build_assets, process_batch, process_documents
    from docflow.defs.checks import CHECKS
    from docflow.defs.jobs import JOBS, SCHEDULES
    from docflow.defs.report import document_report
    from docflow.defs.resources import DocflowResource
    from docflow.defs.sensors import build_sensors
    from docflow.defs.usage import usage_daily, usage_daily_job, usage_daily_schedule

    return dg.Definitions(
        assets=[*build_assets(settings), document_report, usage_daily],
        asset_checks=CHECKS,
        jobs=[process_documents, process_batch, *JOBS, usage_daily_job],
        schedules=[*SCHEDULES, usage_daily_schedule],
        sensors=build_sensors(settings),
        resources={"docflow": DocflowResource()},
        executor=executor(settings.executor),
    )


def warm_up() -> None:
    """What a warm run worker loads before its first run (dagster.yaml's run_launcher `warm_up`): the
    definitions, the clients and the models."""
    from docflow import backends
    from docflow.defs.resources import DocflowResource

    settings = Settings()
    build_defs(settings)
    rt = DocflowResource().runtime()
    backends.get_embedder(rt.settings).embed(["warm up"])
    backends.get_classifier(rt.settings)
    backends.get_parser(rt.settings)


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
