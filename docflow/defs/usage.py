"""`usage_daily`: one UTC day of the usage table (docflow/metering.py) per tenant, as tables and a plot of the
30 days up to it. `usage_daily_schedule` materializes yesterday's partition shortly after midnight UTC;
today's (a partial day) can be materialized by hand. It reports only: the counts are written by the steps.
"""

import base64
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from docflow.defs.assets import OWNERS
from docflow.defs.resources import DocflowResource
from docflow.store.usage import DEFAULT_DAYS, FIGURES, daily

# end_offset=1: today's partition exists too, for a look at the day so far
usage_days = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC", end_offset=1)

TENANT_COLUMNS = {
    "tenant": "string",
    "documents": "int",
    "pages": "int",
    "bytes": "int",
    "ocr_pages": "int",
    "remote_calls": "int",
    "input_tokens": "int",
    "output_tokens": "int",
    "pages_billed": "int",
    "credits": "float",
    "cost_usd": "float",
}
BACKEND_COLUMNS = {
    "tenant": "string",
    "backend": "string",
    "model": "string",
    **dict.fromkeys(FIGURES, "int"),
}
BACKEND_COLUMNS |= {"credits": "float", "cost_usd": "float"}


def _table(rows: Sequence[dict[str, Any]], columns: dict[str, str]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord({c: r.get(c) for c in columns}) for r in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in columns.items()]),
    )


def per_day_totals(days: Sequence[dict[str, Any]], start: date, end: date) -> list[dict[str, Any]]:
    """Every day from start to end (days without usage as zeros), summed over tenants."""
    totals = {
        (start + timedelta(n)).isoformat(): dict.fromkeys(FIGURES, 0) for n in range((end - start).days + 1)
    }
    for d in days:
        for c in FIGURES:
            totals[d["day"]][c] += d[c]
    return [{"day": day, **figures} for day, figures in totals.items()]


def plot_png(series: Sequence[dict[str, Any]], dpi: int = 80) -> bytes:
    """Documents and pages per day (bars) and the estimated cost (line), over the days given."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.5), dpi=dpi)
    try:
        x = range(len(series))
        ax.bar(
            [i - 0.2 for i in x], [d["documents"] for d in series], 0.4, label="documents", color="#1c7ed6"
        )
        ax.bar([i + 0.2 for i in x], [d["pages"] for d in series], 0.4, label="pages", color="#74c0fc")
        ax.set_xticks(list(x), [d["day"][5:] for d in series], rotation=60, fontsize=7)
        ax.legend(loc="upper left", fontsize=8)
        cost = ax.twinx()
        cost.plot(list(x), [d["cost_usd"] for d in series], color="#e03131", marker=".", label="cost (USD)")
        cost.set_ylabel("estimated cost (USD)", color="#e03131")
        cost.set_ylim(bottom=0)
        ax.set_title(f"usage per day, {series[0]['day']} to {series[-1]['day']} (UTC)" if series else "usage")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def usage_metadata(day: date, days: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The metadata of one day's materialization, from `daily` over the DEFAULT_DAYS up to `day`."""
    today = [d for d in days if d["day"] == day.isoformat()]
    series = per_day_totals(days, day - timedelta(days=DEFAULT_DAYS - 1), day)
    backends = [{"tenant": d["tenant"], **b} for d in today for b in d["backends"]]
    image = base64.b64encode(plot_png(series)).decode()
    totals = series[-1]
    return {
        "tenants": dg.MetadataValue.int(len(today)),
        **{c: dg.MetadataValue.int(int(totals[c])) for c in FIGURES if c not in ("credits", "cost_usd")},
        "cost_usd": dg.MetadataValue.float(float(totals["cost_usd"])),
        "by_tenant": _table(today, TENANT_COLUMNS),
        "by_backend": _table(backends, BACKEND_COLUMNS),
        "plot": dg.MetadataValue.md(f"![usage, last {DEFAULT_DAYS} days](data:image/png;base64,{image})"),
    }


@dg.asset(
    name="usage_daily",
    description="Usage of one UTC day per tenant: documents, pages, bytes, OCR pages, remote calls, tokens, "
    "pages billed and the estimated cost (data/prices.yaml), per tenant and per backend, with a plot of the "
    f"{DEFAULT_DAYS} days up to it. Yesterday's is materialized daily by `usage_daily_schedule`.",
    partitions_def=usage_days,
    group_name="reports",
    owners=OWNERS,
    kinds={"postgres", "matplotlib"},
)
def usage_daily(context: dg.AssetExecutionContext, docflow: DocflowResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    days = daily(docflow.runtime().store, None, day - timedelta(days=DEFAULT_DAYS - 1), day)
    return dg.MaterializeResult(metadata=usage_metadata(day, days))


usage_daily_job = dg.define_asset_job(
    "usage_daily_job",
    selection=dg.AssetSelection.assets(usage_daily),
    description="Materialize one UTC day of usage (usage_daily).",
    tags={"docflow/operation": "usage"},
)


@dg.schedule(
    job=usage_daily_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Yesterday's usage, once the UTC day is over.",
)
def usage_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    day = (scheduled.date() - timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=f"usage-{day}", partition_key=day)
