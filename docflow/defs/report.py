"""`document_report`: the reconciliation report as one small asset, rebuilt by the reconciliation schedule.

It reads the documents table, lists the bucket and the Dagster partitions, and shows counts per type and
status, failure reasons, stuck documents, drift and step durations as tables and one PNG plot. It reports
only; re-processing is one click on the jobs in defs/jobs.py.
"""

import base64
from collections.abc import Sequence

import dagster as dg

from docflow import reporting
from docflow.defs.assets import ASSET_KEYS, OWNERS
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.pipeline import config_fingerprint
from docflow.store.retention import stale_archived

RECENT = 500  # materializations per asset the step durations are taken from


def step_seconds(instance: dg.DagsterInstance) -> dict[str, list[float]]:
    """`duration_s` of the latest materializations of each document asset (from the event log)."""
    out: dict[str, list[float]] = {}
    for key in ASSET_KEYS:
        records = instance.fetch_materializations(key, limit=RECENT).records
        values = []
        for r in records:
            m = r.asset_materialization
            if m is not None and "duration_s" in m.metadata:
                values.append(float(m.metadata["duration_s"].value))
        out[key.to_user_string()] = values
    return out


def _table(rows: Sequence[dict], columns: dict[str, str]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord({c: r.get(c) for c in columns}) for r in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in columns.items()]),
    )


def report_metadata(report: reporting.DocumentReport, png: bytes, stale_archived: int = 0) -> dict:
    listed = {
        "doc_id": "string",
        "filename": "string",
        "status": "string",
        "stage": "string",
        "doc_type": "string",
        "error": "string",
        "minutes_since_update": "float",
    }
    image = base64.b64encode(png).decode()
    return {
        "plot": dg.MetadataValue.md(f"![document report](data:image/png;base64,{image})"),
        **{f"{status}": dg.MetadataValue.int(n) for status, n in report.totals.items()},
        "drift": dg.MetadataValue.int(report.drift),
        # in the totals above, without a partition (partition retention); not drift
        "archived": dg.MetadataValue.int(report.archived),
        # made with another configuration: the stale sensor re-processes them once they are restored
        "stale_archived": dg.MetadataValue.int(stale_archived),
        "by_type": _table(
            [t.model_dump() | {"total": t.total} for t in report.by_type],
            {
                "doc_type": "string",
                "total": "int",
                "done": "int",
                "failed": "int",
                "pending": "int",
                "running": "int",
            },
        ),
        "failure_reasons": _table(
            [r.model_dump() for r in report.failure_reasons],
            {"reason": "string", "count": "int", "example": "string"},
        ),
        "timings": _table(
            [t.model_dump() for t in report.timings],
            {"step": "string", "n": "int", "median_s": "float", "p95_s": "float", "max_s": "float"},
        ),
        "stuck": _table([d.model_dump() for d in report.stuck], listed),
        "stuck_count": dg.MetadataValue.int(report.stuck_count),
        "failed_documents": _table([d.model_dump() for d in report.failed], listed),
        "unregistered_objects": dg.MetadataValue.json(
            {"count": report.unregistered_count, "keys": report.unregistered_objects}
        ),
        "missing_objects": dg.MetadataValue.json(
            {"count": report.missing_count, "doc_ids": report.missing_objects}
        ),
        "without_partition": dg.MetadataValue.json(
            {"count": report.without_partition_count, "doc_ids": report.without_partition}
        ),
    }


@dg.asset(
    name="document_report",
    description="Reconciliation report: documents per type and status, failure reasons, documents stuck in "
    "pending/running, drift between the bucket, the documents table and the Dagster partitions, and step "
    "durations, as tables and a plot. Archived documents (partition retention: no partition) are counted "
    "with the rest and are not drift. Rebuilt hourly by `reconciliation_schedule`.",
    group_name="reports",
    owners=OWNERS,
    kinds={"postgres", "s3", "matplotlib"},
)
def document_report(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    rt = docflow.runtime()
    partitions = set(context.instance.get_dynamic_partitions(documents.name))
    seconds = step_seconds(context.instance)
    report = reporting.build_report(rt.store, rt.bucket, rt.settings.prefix, seconds, partitions)
    stale = stale_archived(rt.store, config_fingerprint(rt.settings))
    return dg.MaterializeResult(metadata=report_metadata(report, reporting.plot_png(report), stale))
