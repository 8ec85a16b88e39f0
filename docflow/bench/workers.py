"""`docflow bench` workers section: the same bulk load through the production path with 1, 2 and 4 warm run
workers, to check the per-worker throughput docs/scale.md builds on
(`docflow bench --only workers --docs 80 --extra worker_counts=1,2,4`).

For each count N the instance runs N runs at once (`max_concurrent_runs`, which is also the number of warm
workers), one tenant may use all N (its `docflow/tenant` limit), and the sensor splits a bulk load into a
multiple of N runs (`DOCFLOW_RUN_SPREAD`): a dagster.yaml with those values in a DAGSTER_HOME of its own per
N, on the same Postgres storage. The documents are the same for every N (each run uploads them as a tenant
of its own, so they are new documents each time).
"""

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import yaml

from docflow.bench import BenchOptions, costs
from docflow.bench.pipeline import (
    finished_load,
    latencies_of,
    make_documents,
    pct,
    production_path,
    upload,
    wait_done,
    wait_runs_finished,
    warm_up,
)
from docflow.runtime import REPO_ROOT
from docflow.settings import Settings

TENANT_KEY = "docflow/tenant"


def instance_config(workers: int) -> dict[str, Any]:
    """The repository's dagster.yaml with `workers` runs at once, all of them open to one tenant."""
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    runs = config["concurrency"]["runs"]
    runs["max_concurrent_runs"] = workers
    for limit in runs.get("tag_concurrency_limits", []):
        if limit["key"] == TENANT_KEY:
            limit["limit"] = workers
    return config


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def with_workers(
    settings: Settings, workers: int, n: int, progress: Callable[[str], None], timeout_s: float
) -> dict[str, Any]:
    """One bulk load of `n` documents with `workers` warm workers (a daemon and code server of their own)."""
    home = (settings.home / f"dagster-workers-{workers}").resolve()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(workers), sort_keys=False))
    docs = make_documents(n)
    stamp = f"{datetime.now(UTC):%m%d%H%M%S}"
    tenant = f"w{workers}x{stamp}"
    config = {"DAGSTER_HOME": str(home), "DOCFLOW_RUN_SPREAD": str(workers)}
    with _environment(config), production_path(settings, progress) as deployed:
        rt, instance = deployed.rt, deployed.instance
        tenants = warm_up(rt, stamp, seed=11, timeout_s=timeout_s)
        database_url = rt.settings.database_url or ""
        pg_before = costs.pg_counters(database_url)
        cpu_before = _cpu(deployed)
        started = time.time()
        uploaded = upload(rt, rt.settings.prefix, tenant, docs)
        upload_s = time.time() - started
        progress(f"{workers} workers: uploaded {n} documents as tenant {tenant}; waiting")
        rows = wait_done(rt, tenant, n, timeout_s)
        wait_runs_finished(instance, [{TENANT_KEY: t} for t in [*tenants, tenant]])
        time.sleep(2)  # Postgres backends flush their statistics within a second of going idle
        pg_after = costs.pg_counters(database_url)
        cpu_after = _cpu(deployed)
    load = finished_load(instance, rows, tenant, started, upload_s, workers)
    per_hour = n / load.wall_s * 3600 if load.wall_s > 0 else None
    return {
        "workers": workers,
        "docs": n,
        "docs_done": sum(r["status"] == "done" for r in rows.values()),
        "runs": len(load.run_ids),
        "wall_s": round(load.wall_s, 2),
        "docs_per_hour": round(per_hour) if per_hour else None,
        "docs_per_hour_per_worker": round(per_hour / workers) if per_hour else None,
        "latency_p50_s": round(pct(latencies_of(rows, uploaded), 50), 2),
        "fixed_costs": load.fixed_costs,
        "pg_per_doc": costs.pg_per_doc(pg_before, pg_after, n),
        "cpu_s_per_doc": {k: round((cpu_after.get(k, 0) - cpu_before.get(k, 0)) / n, 3) for k in cpu_after},
        **{k: v for k, v in deployed.processes.items() if k != "cpu_s_by_process"},
    }


def _cpu(deployed) -> dict[str, float]:
    """CPU seconds so far of the deployment's processes by role (daemon, code server, workers)."""
    deployed.sampler.sample()
    return deployed.sampler.cpu_by_role()


def workers_section(settings: Settings, options: BenchOptions, progress: Callable[[str], None]) -> dict:
    counts = options.ints("worker_counts", (1, 2, 4))
    timeout_s = float(options.extra.get("timeout_s", 3600))
    results = [with_workers(settings, w, options.docs, progress, timeout_s) for w in counts]
    cores = os.cpu_count() or 1
    return {
        "docs": options.docs,
        "cpus": cores,
        "by_workers": results,
        "docs_per_hour_per_worker": {str(r["workers"]): r["docs_per_hour_per_worker"] for r in results},
        # throughput relative to the first (fewest) worker count run
        "scaling_baseline_workers": results[0]["workers"] if results else None,
        "scaling": {
            str(r["workers"]): round(r["docs_per_hour"] / results[0]["docs_per_hour"], 2)
            for r in results
            if r["docs_per_hour"] and results[0]["docs_per_hour"]
        },
    }
