"""The reconciliation report: what is processed, what failed and why, what is stuck, and drift between the
bucket, the documents table and the Dagster partitions. Pure data + a matplotlib plot. No Dagster here.
"""

import io
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from docflow.bucket import Bucket
from docflow.ingest import expected_in_listing
from docflow.models import Document
from docflow.store import Store
from docflow.store.quotas import is_quota_error

SAMPLE = 50  # documents / keys listed by name per section; the counts are always complete


class TypeCount(BaseModel):
    doc_type: str
    done: int = 0
    failed: int = 0
    pending: int = 0
    running: int = 0

    @property
    def total(self) -> int:
        return self.done + self.failed + self.pending + self.running


class Reason(BaseModel):
    reason: str
    count: int
    example: str  # a doc_id


class StepTiming(BaseModel):
    step: str
    n: int
    median_s: float
    p95_s: float
    max_s: float


class ListedDocument(BaseModel):
    doc_id: str
    filename: str
    status: str
    stage: str | None = None
    doc_type: str | None = None
    error: str | None = None
    minutes_since_update: float = 0.0


class DocumentReport(BaseModel):
    generated_at: datetime
    totals: dict[str, int]  # per status
    by_type: list[TypeCount]
    failure_reasons: list[Reason]
    failed: list[ListedDocument]
    stuck: list[ListedDocument]  # pending/running with no progress for `stuck_after`
    stuck_count: int = 0
    timings: list[StepTiming]
    unregistered_objects: list[str] = Field(default_factory=list)  # in the bucket, not in the table
    unregistered_count: int = 0
    missing_objects: list[str] = Field(default_factory=list)  # doc_ids whose every key is gone
    missing_count: int = 0
    without_partition: list[str] = Field(default_factory=list)  # doc_ids Dagster does not know
    without_partition_count: int = 0
    archived: int = 0  # done or failed documents whose partition partition retention removed (counted above)

    @property
    def drift(self) -> int:
        return self.stuck_count + self.unregistered_count + self.missing_count + self.without_partition_count


def failure_reason(error: str | None) -> str:
    """A failure message grouped with its like: numbers, hashes and quoted names replaced, retries dropped."""
    text = (error or "unknown").strip().splitlines()[0]
    text = re.sub(r"\s*\(after \d+ retries\)$", "", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\b[0-9a-f]{8,}\b", "…", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)
    return text if len(text) <= 100 else text[:99] + "…"


# A passthrough document's file name and error stay out of the report: the report is an asset whose metadata
# Dagster keeps after the document is gone, and an error message may quote the document.
WITHHELD = "(withheld: passthrough document)"


def group_failures(failed: Iterable[Document]) -> list[Reason]:
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for d in failed:
        reason = WITHHELD if d.passthrough else failure_reason(d.error)
        counts[reason] += 1
        examples.setdefault(reason, d.doc_id)
    return [Reason(reason=r, count=n, example=examples[r]) for r, n in counts.most_common()]


def step_timings(seconds: Mapping[str, Sequence[float]]) -> list[StepTiming]:
    out = []
    for step, values in seconds.items():
        if not values:
            continue
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        out.append(
            StepTiming(
                step=step,
                n=len(ordered),
                median_s=round(statistics.median(ordered), 3),
                p95_s=round(p95, 3),
                max_s=round(ordered[-1], 3),
            )
        )
    return out


def _listed(d: Document, now: datetime) -> ListedDocument:
    updated = d.updated_at or d.created_at or now
    return ListedDocument(
        doc_id=d.doc_id,
        filename=WITHHELD if d.passthrough else d.filename,
        status=d.status,
        stage=d.stage,
        doc_type=d.doc_type,
        error=WITHHELD if d.passthrough and d.error else d.error,
        minutes_since_update=round((now - updated).total_seconds() / 60, 1),
    )


def build_report(
    store: Store,
    bucket: Bucket | None,
    prefix: str,
    seconds: Mapping[str, Sequence[float]],
    partitions: set[str] | None,
    stuck_after: timedelta = timedelta(minutes=30),
    now: datetime | None = None,
    limit: int = 100_000,
    sample: int = SAMPLE,
) -> DocumentReport:
    """Read the table (and list the bucket under `prefix` if given); `seconds` are recent step durations,
    `partitions` the document partitions Dagster knows (None: not compared)."""
    now = now or datetime.now(UTC)
    by_type: dict[str, TypeCount] = {}
    totals: Counter[str] = Counter()
    for row in store.counts_by_type():
        t = by_type.setdefault(
            row["doc_type"] or "(unclassified)", TypeCount(doc_type=row["doc_type"] or "(unclassified)")
        )
        setattr(t, row["status"], getattr(t, row["status"]) + int(row["n"]))
        totals[row["status"]] += int(row["n"])
    failed = store.list_documents(status="failed", limit=limit)
    waiting = store.list_documents(status="pending", limit=limit) + store.list_documents(
        status="running", limit=limit
    )
    stuck = [_listed(d, now) for d in waiting if now - (d.updated_at or d.created_at or now) > stuck_after]
    stuck.sort(key=lambda d: -d.minutes_since_update)

    keys = store.document_keys()
    known_keys = {k for row in keys for k in row["keys"]}
    unregistered: list[str] = []
    missing: list[str] = []
    if bucket is not None:
        present: set[str] = set()
        for obj in bucket.list(prefix):
            present.add(obj.key)
            if obj.key not in known_keys and now - obj.last_modified > stuck_after:
                unregistered.append(obj.key)
        missing = [
            r["doc_id"]
            for r in keys
            if expected_in_listing(r, bucket.name, prefix) and not any(k in present for k in r["keys"])
        ]
    # not drift: a document the daily quota refused gets its partition when retried, an archived one
    # (partition retention) when it is processed again
    without = [
        r["doc_id"]
        for r in keys
        if partitions is not None
        and r["doc_id"] not in partitions
        and not is_quota_error(r["error"])
        and not r.get("archived")
    ]

    return DocumentReport(
        generated_at=now,
        totals={s: totals.get(s, 0) for s in ("done", "failed", "pending", "running")},
        by_type=sorted(by_type.values(), key=lambda t: (-t.total, t.doc_type)),
        failure_reasons=group_failures(failed),
        failed=[_listed(d, now) for d in failed[-sample:]],
        stuck=stuck[:sample],
        stuck_count=len(stuck),
        timings=step_timings(seconds),
        unregistered_objects=sorted(unregistered)[:sample],
        unregistered_count=len(unregistered),
        missing_objects=missing[:sample],
        missing_count=len(missing),
        without_partition=without[:sample],
        without_partition_count=len(without),
        archived=sum(1 for r in keys if r.get("archived")),
    )


def plot_png(report: DocumentReport, dpi: int = 80) -> bytes:
    """Three panels: documents per type by status, failure reasons, step durations (median and p95)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_types, ax_fail, ax_time) = plt.subplots(1, 3, figsize=(13, 4), dpi=dpi)
    try:
        types = report.by_type[:12]
        names = [t.doc_type for t in types]
        left = [0] * len(types)
        colors = {"done": "#2f9e44", "failed": "#e03131", "running": "#1c7ed6", "pending": "#adb5bd"}
        for status, color in colors.items():
            values = [getattr(t, status) for t in types]
            ax_types.barh(names, values, left=left, color=color, label=status)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax_types.invert_yaxis()
        ax_types.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_types.set_title("documents per type")
        ax_types.legend(loc="lower right", fontsize=8)

        reasons = report.failure_reasons[:8]
        if reasons:
            ax_fail.barh([_wrap(r.reason) for r in reasons], [r.count for r in reasons], color="#e03131")
            ax_fail.invert_yaxis()
            ax_fail.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax_fail.tick_params(axis="y", labelsize=7)
        else:
            ax_fail.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax_fail.transAxes)
            ax_fail.set_xticks([])
            ax_fail.set_yticks([])
        ax_fail.set_title("failure reasons")

        steps = [t.step for t in report.timings]
        if steps:
            x = range(len(steps))
            ax_time.bar([i - 0.2 for i in x], [t.median_s for t in report.timings], 0.4, label="median")
            ax_time.bar([i + 0.2 for i in x], [t.p95_s for t in report.timings], 0.4, label="p95")
            ax_time.set_xticks(list(x), steps, rotation=20, fontsize=8)
            ax_time.set_ylabel("seconds")
            ax_time.legend(fontsize=8)
        else:
            ax_time.text(0.5, 0.5, "no timings yet", ha="center", va="center", transform=ax_time.transAxes)
        ax_time.set_title("processing time per step")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def _wrap(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
