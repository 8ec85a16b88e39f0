"""`docflow bench` sensor section: one `s3_document_sensor` tick with many objects in the bucket and many
document partitions on the instance (issue target: under 10 s with 100,000 of each).

Steady state: `objects` small objects under the watched prefix, all handled long ago (the cursor's watermark
is past them), and `objects` document partitions. A tick then lists the whole prefix (S3 cannot filter by
date), finds `new` fresh uploads, hashes and registers them, and asks Dagster for their partitions and runs.
The objects live in a bucket of their own and the partitions in a partitions definition of their own, so the
production bucket and the `documents` partitions are untouched.
"""

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from docflow.bench import BenchOptions
from docflow.bucket import Bucket
from docflow.ingest import SLACK, ScanCursor, scan
from docflow.orchestration.instance import dagster_instance
from docflow.runtime import bucket_for, runtime
from docflow.settings import Settings
from docflow.store.quotas import Limits

PARTITIONS = "bench_sensor_documents"
PUT_WORKERS = 16


def _fill(bucket: Bucket, prefix: str, n: int, progress: Callable[[str], None]) -> float:
    """Make sure `n` objects exist under `prefix` (kept between bench runs); returns seconds spent."""
    started = time.perf_counter()
    have = sum(1 for _ in bucket.list(prefix))
    if have < n:
        progress(f"writing {n - have} objects under {bucket.name}/{prefix} ({have} there)")
        with ThreadPoolExecutor(PUT_WORKERS) as pool:
            put = lambda i: bucket.put_bytes(f"{prefix}t{i % 50}/doc-{i:07d}.txt", f"document {i}\n".encode())  # noqa: E731
            list(pool.map(put, range(have, n)))
    return time.perf_counter() - started


def add_partitions(instance, n: int, progress: Callable[[str], None], name: str = PARTITIONS) -> float:
    """At least `n` partitions in the dynamic partitions definition `name` (filler keys `bench-NNNNNNN`)."""
    started = time.perf_counter()
    have = len(instance.get_dynamic_partitions(name))
    if have < n:
        progress(f"adding {n - have} dynamic partitions to {name} ({have} there)")
        for start in range(have, n, 10_000):
            keys = [f"bench-{i:07d}" for i in range(start, min(n, start + 10_000))]
            instance.add_dynamic_partitions(name, keys)
    return time.perf_counter() - started


def sensor_section(settings: Settings, options: BenchOptions, progress: Callable[[str], None]) -> dict:
    n = int(options.extra.get("objects", 100_000))
    fresh = int(options.extra.get("new", 20))
    rt = runtime(settings)
    s = rt.settings
    bucket = bucket_for(s.model_copy(update={"bucket": f"{s.bucket}-bench-sensor"}))
    bucket.ensure_bucket()
    prefix = s.prefix
    fill_s = _fill(bucket, prefix, n, progress)
    instance = dagster_instance(settings)
    partitions_s = add_partitions(instance, n, progress)

    newest = max(o.last_modified for o in bucket.list(prefix))
    time.sleep(2)  # Last-Modified has 1 s resolution: fresh objects come strictly after the old ones
    cursor = ScanCursor(since=newest + SLACK + timedelta(seconds=1))  # the old objects were handled long ago
    rounds: list[dict[str, Any]] = []
    tick_times: list[float] = []
    for round_ in range(3):
        stamp = time.time_ns()
        for i in range(fresh):
            bucket.put_bytes(f"{prefix}t{i % 50}/fresh-{stamp}-{i}.txt", f"fresh {stamp} {i}\n".encode())
        found, ticks, started = 0, 0, time.perf_counter()
        while found < fresh and ticks < 100:  # ticks until a listing pass has met every fresh object
            tick_started = time.perf_counter()
            # as the sensor does: each new document counted against its tenant's quota
            result = scan(
                bucket, rt.store, cursor, prefix, list_budget_s=s.sensor_list_budget_s, limits=Limits.of(s)
            )
            keys = [d.doc_id for d in result.new]
            existing = set(instance.get_dynamic_partitions(PARTITIONS)) & set(keys)
            instance.add_dynamic_partitions(PARTITIONS, [k for k in keys if k not in existing])
            tick_times.append(time.perf_counter() - tick_started)
            cursor, found, ticks = result.cursor, found + len(result.new), ticks + 1
        rounds.append(
            {
                "fresh": fresh,
                "found": found,
                "ticks": ticks,
                "discover_s": round(time.perf_counter() - started, 2),
            }
        )
        progress(f"round {round_ + 1}: {rounds[-1]}, tick max {max(tick_times):.2f} s")
    all_partitions_s = _time(lambda: instance.get_dynamic_partitions(PARTITIONS))
    return {
        "objects": n,
        "partitions": len(instance.get_dynamic_partitions(PARTITIONS)),
        "fill_s": round(fill_s, 1),
        "partitions_add_s": round(partitions_s, 1),
        "list_budget_s": s.sensor_list_budget_s,
        "rounds": rounds,
        "sensor_tick_s": round(statistics.median(tick_times), 3),
        "sensor_tick_max_s": round(max(tick_times), 3),
        "list_all_partitions_s": round(all_partitions_s, 3),
        "target_tick_s": 10,
    }


def _time(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
