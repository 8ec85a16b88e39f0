"""`docflow bench` fairness section: does one tenant's bulk load leave the others' documents alone, and do
high-priority documents overtake queued ones? Against the production path (bucket -> sensor -> run queue ->
warm workers), as the pipeline section.

1. Idle: a small tenant uploads a document every `interval_s` seconds into an idle system (the baseline).
2. Loaded: a bulk tenant uploads `--docs` documents at once; meanwhile the small tenant goes on uploading a
   document every `interval_s` seconds until the bulk load is done. Its upload-to-done latency against the
   baseline is the fairness figure (each tenant may hold at most its share of the run slots: dagster.yaml).
3. Priority: while the bulk tenant's batch runs wait in the queue, it uploads one document with the
   `priority` metadata `high`: how many of its queued runs that document's run overtook, and its latency
   against the bulk documents'.
"""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from docflow.bench import BenchOptions
from docflow.bench.pipeline import (
    BenchDoc,
    latencies_of,
    make_documents,
    pct,
    production_path,
    run_limits,
    upload,
    wait_done,
    wait_runs_finished,
    warm_up,
)
from docflow.bucket import PRIORITY_META
from docflow.pipeline import Runtime
from docflow.settings import Settings


def _trickle(
    rt: Runtime, tenant: str, docs: list[BenchDoc], interval_s: float, stop: threading.Event
) -> dict[str, float]:
    """Upload `docs` one every `interval_s` seconds until they run out or `stop` is set; upload times."""
    uploaded: dict[str, float] = {}
    for d in docs:
        uploaded |= upload(rt, rt.settings.prefix, tenant, [d])
        if stop.wait(interval_s):
            break
    return uploaded


def _latency_summary(latencies: list[float]) -> dict[str, Any]:
    return {"n": len(latencies), "p50_s": round(pct(latencies, 50), 2), "p95_s": round(pct(latencies, 95), 2)}


def fairness_section(settings: Settings, options: BenchOptions, progress: Callable[[str], None]) -> dict:
    from dagster import DagsterRunStatus, RunsFilter

    interval_s = float(options.extra.get("interval_s", 5))
    idle_docs = int(options.extra.get("idle_docs", 12))
    timeout_s = float(options.extra.get("timeout_s", 3600))
    stamp = f"{datetime.now(UTC):%m%d%H%M%S}"
    small, bulk = f"small{stamp}", f"bulk{stamp}"
    with production_path(settings, progress) as deployed:
        rt, instance = deployed.rt, deployed.instance
        warm_up(rt, stamp, seed=21, timeout_s=timeout_s)

        progress(f"idle: {idle_docs} documents of {small}, one every {interval_s:g} s")
        trickle_docs = make_documents(idle_docs + 400, seed=23)
        idle_up = _trickle(rt, f"{small}i", trickle_docs[:idle_docs], interval_s, threading.Event())
        idle = latencies_of(wait_done(rt, f"{small}i", len(idle_up), timeout_s), idle_up)

        progress(f"loaded: {options.docs} documents of {bulk} at once, {small} goes on uploading")
        stop = threading.Event()
        loaded_up: dict[str, float] = {}
        trickler = threading.Thread(
            target=lambda: loaded_up.update(_trickle(rt, small, trickle_docs[idle_docs:], interval_s, stop))
        )
        bulk_started = time.time()
        bulk_up = upload(rt, settings.prefix, bulk, make_documents(options.docs, seed=29))
        trickler.start()
        priority = _overtake(rt, instance, bulk, options.docs, timeout_s)
        bulk_rows = wait_done(rt, bulk, options.docs + bool(priority), timeout_s)
        stop.set()
        trickler.join()
        loaded = latencies_of(wait_done(rt, small, len(loaded_up), timeout_s), loaded_up)
        wait_runs_finished(instance, [{"docflow/tenant": bulk}, {"docflow/tenant": small}])
    bulk_latencies = latencies_of(bulk_rows, bulk_up)
    bulk_wall = max(r["updated_at"].timestamp() for r in bulk_rows.values()) - bulk_started
    high_latency = None
    if priority and (high_row := bulk_rows.get(priority["filename"])):
        high_latency = high_row["updated_at"].timestamp() - priority["uploaded"]
    idle_s, loaded_s = _latency_summary(idle), _latency_summary(loaded)
    runs = instance.get_runs(RunsFilter(tags={"docflow/tenant": bulk}, statuses=[DagsterRunStatus.SUCCESS]))
    return {
        "bulk_docs": options.docs,
        "bulk_runs": len(runs),
        "bulk_wall_s": round(bulk_wall, 1),
        "bulk_docs_per_min": round(options.docs / bulk_wall * 60, 1),
        "bulk_latency_p50_s": round(pct(bulk_latencies, 50), 2),
        "interval_s": interval_s,
        "small_idle": idle_s,
        "small_loaded": loaded_s,
        "small_p95_ratio": round(loaded_s["p95_s"] / idle_s["p95_s"], 2) if idle_s["p95_s"] else None,
        "small_p95_ratio_target": 2.0,
        "high_priority_latency_s": round(high_latency, 2) if high_latency is not None else None,
        "high_priority_queued_behind": len(priority["queued_runs"]) if priority else None,
        "high_priority_overtook": _overtaken(instance, priority) if priority else None,
        "peak_rss_mb": deployed.peak_rss_mb,
    }


def _overtake(rt: Runtime, instance, bulk: str, docs: int, timeout_s: float) -> dict[str, Any] | None:
    """Once the bulk tenant's runs fill its run slots and more of them wait in the queue, upload one of its
    documents with priority `high`; which runs were queued then. None if the load ended first."""
    from dagster import DagsterRunStatus, RunsFilter

    def runs(status: DagsterRunStatus) -> list:
        return instance.get_runs(RunsFilter(tags={"docflow/tenant": bulk}, statuses=[status]))

    deadline = time.monotonic() + timeout_s
    slots = run_limits()[1]
    while not (len(runs(DagsterRunStatus.STARTED)) >= slots and (waiting := runs(DagsterRunStatus.QUEUED))):
        docs_now = rt.store.list_documents(tenant=bulk, limit=docs)
        if time.monotonic() > deadline or sum(d.status in ("done", "failed") for d in docs_now) >= docs:
            return None
        time.sleep(0.5)
    doc = make_documents(1, seed=31)[0]
    name = f"urgent-{doc.name}"
    uploaded = time.time()
    rt.bucket.put_bytes(f"{rt.settings.prefix}{bulk}/{name}", doc.data, metadata={PRIORITY_META: "high"})
    queued_runs = [r.run_id for r in waiting]
    return {"tenant": bulk, "filename": name, "uploaded": uploaded, "queued_runs": queued_runs}


def _overtaken(instance, priority: dict[str, Any]) -> int | None:
    """How many of the runs queued when the high-priority document arrived started after its run."""
    from dagster import RunsFilter

    tags = {"dagster/priority": "10", "docflow/tenant": priority["tenant"]}
    high = [
        r
        for r in instance.get_run_records(RunsFilter(tags=tags))
        if r.start_time and r.create_timestamp.timestamp() >= priority["uploaded"] - 1
    ]
    if not high:
        return None
    start = min(r.start_time for r in high)
    records = instance.get_run_records(RunsFilter(run_ids=priority["queued_runs"]))
    return sum(1 for r in records if r.start_time is None or r.start_time > start)
