"""`docflow bench` pipeline section: N documents through the production path (bucket -> sensor -> queued
runs launched by the daemon) against the same backends in a plain Python loop with the same parallelism.

Documents are made from data/samples: PDFs of 1 to 8 pages (sample pages joined with pypdfium2), text,
markdown and HTML of varied length, each made unique with a nonce so every one is a new document.
"""

import contextlib
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from docflow import ingest
from docflow.bench import BenchOptions, costs, free_port
from docflow.bench.costs import ProcessSampler
from docflow.orchestration.instance import configure_pools, dagster_env, open_instance
from docflow.orchestration.processes import daemon_command
from docflow.pipeline import STEPS, Runtime
from docflow.runtime import REPO_ROOT, runtime
from docflow.settings import Settings

SAMPLES = REPO_ROOT / "data" / "samples"
POLL_S = 0.5
IDLE_S = 10  # seconds the deployment is watched idle before the bulk load


@dataclass(frozen=True)
class BenchDoc:
    name: str
    data: bytes
    pages: int


def make_documents(n: int, seed: int = 7) -> list[BenchDoc]:
    """A reproducible mix of types and sizes, every document unique."""
    import pypdfium2 as pdfium

    rng = random.Random(seed)
    pdfs = sorted(SAMPLES.glob("*.pdf"))
    texts = sorted(p for p in SAMPLES.iterdir() if p.suffix in {".txt", ".md", ".html"})
    docs: list[BenchDoc] = []
    for i in range(n):
        nonce = f"{seed}-{i}-{rng.getrandbits(48):x}"
        if i % 2 == 0:  # half PDFs, 1-8 pages
            pages = rng.choice([1, 1, 2, 3, 5, 8])
            out = pdfium.PdfDocument.new()
            for p in range(pages):
                src = pdfium.PdfDocument(pdfs[(i + p) % len(pdfs)])
                out.import_pages(src)
                src.close()
            path = Path(f"/tmp/docflow-bench-{os.getpid()}.pdf")
            out.save(path)
            out.close()
            data = path.read_bytes() + f"\n% docflow-bench {nonce}\n".encode()
            path.unlink()
            docs.append(BenchDoc(f"doc-{i:05d}.pdf", data, pages))
        else:
            src = texts[i % len(texts)]
            body = src.read_text()
            repeat = rng.choice([1, 1, 2, 4])
            text = "\n\n".join([body] * repeat)
            if src.suffix == ".html":
                text = text.replace("</body>", f"<p>ref {nonce}</p></body>")
            else:
                text += f"\n\nReference: {nonce}\n"
            docs.append(BenchDoc(f"doc-{i:05d}{src.suffix}", text.encode(), 1))
    return docs


# --- the production path ---------------------------------------------------------------------------


def _daemon_running(instance) -> bool:
    """A daemon (e.g. `make dev`) heart-beating on this instance right now: wait 12 s for a fresh beat."""
    first = {k: hb.timestamp for k, hb in instance.get_daemon_heartbeats().items()}
    time.sleep(12)
    later = {k: hb.timestamp for k, hb in instance.get_daemon_heartbeats().items()}
    return any(later[k] > first.get(k, 0) for k in later)


def _start_daemon(env: dict[str, str], log: Path) -> list[subprocess.Popen]:
    """A code server for the docflow location and a daemon using it, as `dagster dev` and the deployments
    run them. (A daemon given the python module itself spawns a code server and replaces it every minute,
    re-importing docflow each time: CPU that production does not spend.)"""
    import tempfile

    import yaml

    port = free_port()
    out = log.open("w")
    run = {"env": env, "cwd": REPO_ROOT, "stdout": out, "stderr": subprocess.STDOUT}
    code = [sys.executable, "-m", "dagster", "code-server", "start", "-m", "docflow.definitions"]
    server = subprocess.Popen([*code, "-h", "127.0.0.1", "-p", str(port)], start_new_session=True, **run)
    health = [sys.executable, "-m", "dagster", "api", "grpc-health-check", "-p", str(port)]
    deadline = time.monotonic() + 180
    while subprocess.run(health, env=env, capture_output=True).returncode != 0:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the code server did not start: see {log}")
        time.sleep(1)
    location = {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": "docflow"}}
    workspace = Path(tempfile.mkdtemp(prefix="docflow-bench-")) / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [location]}))
    return [server, subprocess.Popen(daemon_command(workspace), start_new_session=True, **run)]


def stop_process(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM to the process and its children, SIGKILL after `grace_s`: the code server's gRPC server does
    not always exit on a signal."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # its own session: started with start_new_session
        try:
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_done(rt: Runtime, tenant: str, n: int, timeout_s: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        with rt.store.tx() as conn:
            rows = conn.execute(
                "SELECT doc_id, filename, status, updated_at, pages FROM docflow.documents WHERE tenant = %s",
                (tenant,),
            ).fetchall()
        if len(rows) >= n and all(r["status"] in ("done", "failed") for r in rows):
            break
        if not rows and time.monotonic() > deadline - timeout_s + 120:
            raise RuntimeError("no document was registered within 2 minutes: is the sensor running?")
        time.sleep(POLL_S)
    return {r["filename"]: r for r in rows}


def wait_runs_finished(instance, tags: list[dict[str, str]], timeout_s: float = 120) -> None:
    """Wait until no run with any of these tags is queued or running (documents are `done` inside the last
    step: their runs should end before the daemon is stopped)."""
    from dagster import DagsterRunStatus, RunsFilter

    unfinished = [DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(instance.get_runs_count(RunsFilter(tags=t, statuses=unfinished)) for t in tags):
            return
        time.sleep(POLL_S)


def _backfill(settings: Settings, instance, doc_ids: list[str], timeout_s: float) -> dict[str, Any]:
    """Bulk re-processing as the UI launches it (*Materialize* on the five assets, a selection of partitions):
    an asset backfill, which the daemon splits into runs by the assets' backfill policy. Timed from the
    request to the end of its last run."""
    from dagster import DagsterRunStatus, RunsFilter

    from docflow.defs import build_defs
    from docflow.defs.assets import ASSET_KEYS
    from docflow.orchestration.backfill import REQUESTED, backfill_status, launch_asset_backfill
    from docflow.orchestration.tags import BACKFILL_ID_TAG

    defs = build_defs(settings)
    started = time.time()
    backfill_id = launch_asset_backfill(
        instance, defs, doc_ids, ASSET_KEYS, "docflow bench: re-process the bulk load"
    )
    deadline = time.monotonic() + timeout_s
    while backfill_status(instance, backfill_id) == REQUESTED:
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    of_backfill = {BACKFILL_ID_TAG: backfill_id}
    wait_runs_finished(instance, [of_backfill], max(0.0, deadline - time.monotonic()))
    records = instance.get_run_records(RunsFilter(tags=of_backfill))
    ended = [r.end_time for r in records if r.end_time]
    wall = max(ended) - started if ended else float("nan")
    first = min((r.start_time for r in records if r.start_time), default=float("nan"))
    return {
        "backfill_status": backfill_status(instance, backfill_id),
        "backfill_runs": len(records),
        "backfill_runs_succeeded": sum(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records),
        "backfill_wall_s": round(wall, 2),
        "backfill_docs_per_min": round(len(doc_ids) / wall * 60, 1) if ended else None,
        # the daemon looks at backfills every 30 s: throughput once its runs started, as the bulk load's
        "backfill_first_run_after_s": round(first - started, 2),
        "backfill_run_docs_per_min": round(len(doc_ids) / (max(ended) - first) * 60, 1) if ended else None,
    }


def _per_doc_asset_seconds(instance, run_ids: list[str], docs: int) -> dict[str, float]:
    """Seconds per document per asset: a batch run's step covers all of its documents."""
    from dagster import DagsterEventType

    totals = dict.fromkeys(STEPS, 0.0)
    for run_id in run_ids:
        for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS):
            if event.step_key in totals:
                totals[event.step_key] += event.dagster_event.event_specific_data.duration_ms / 1000
    return {k: round(v / max(docs, 1), 3) for k, v in totals.items()}


def upload(rt: Runtime, prefix: str, tenant: str, docs: list[BenchDoc]) -> dict[str, float]:
    uploaded = {}
    for d in docs:
        rt.bucket.put_bytes(f"{prefix}{tenant}/{d.name}", d.data)
        uploaded[d.name] = time.time()
    return uploaded


def latencies_of(rows: dict[str, dict[str, Any]], uploaded: dict[str, float]) -> list[float]:
    return sorted(r["updated_at"].timestamp() - uploaded[n] for n, r in rows.items() if n in uploaded)


@dataclass
class Deployment:
    rt: Runtime
    instance: Any
    peak_rss_mb: float = 0.0  # of the daemon and code server (or this process), known once it is over
    # per process (daemon, code server, each warm worker), CPU seconds and Postgres connections, likewise
    processes: dict[str, Any] = field(default_factory=dict)
    sampler: ProcessSampler | None = None


@contextmanager
def production_path(
    settings: Settings, progress: Callable[[str], None], partitions: int = 0
) -> Iterator[Deployment]:
    """The production path a bench measures: the instance with docflow's step pools and at least
    `partitions` document partitions, a code server and a daemon started for the bench unless one already
    runs (stopped at the end), and their peak memory sampled throughout."""
    from docflow.bench.sensor import add_partitions
    from docflow.defs.assets import POOLS
    from docflow.defs.partitions import documents

    rt = runtime(settings)
    env = {**os.environ, **dagster_env(settings)}
    instance = open_instance(env)
    configure_pools(instance, POOLS)
    add_partitions(instance, partitions, progress, documents.name)  # the scale the runs must keep up at
    started_here: list[subprocess.Popen] = []
    if not _daemon_running(instance):
        log = Path(env["DAGSTER_HOME"]) / "bench-daemon.log"
        progress(f"starting a code server and dagster-daemon (sensor + run queue), log in {log}")
        started_here = _start_daemon(env, log)
    roles = dict(zip(("code_server", "daemon"), (p.pid for p in started_here), strict=False))
    sampler = ProcessSampler(roles or {"bench": os.getpid()}, rt.settings.database_url)
    sampler.start()
    deployed = Deployment(rt, instance, sampler=sampler)
    try:
        yield deployed
    finally:
        deployed.processes = sampler.stop()
        deployed.peak_rss_mb = deployed.processes["peak_rss_mb"]
        for proc in reversed(started_here):  # the daemon first, then the code server
            stop_process(proc)


def warm_up(rt: Runtime, stamp: str, seed: int, timeout_s: float) -> list[str]:
    """One document per run slot, each of a tenant of its own (the per-tenant run limit would leave workers
    cold), processed untimed as the bare loop's workers warm up; the tenants used."""
    tenants = []
    for i, d in enumerate(make_documents(run_limits()[0], seed=seed)):
        tenants.append(f"warm{stamp}x{i}")
        upload(rt, rt.settings.prefix, tenants[-1], [d])
    for t in tenants:
        wait_done(rt, t, 1, timeout_s)
    return tenants


def dagster_path(
    settings: Settings,
    docs: list[BenchDoc],
    progress: Callable[[str], None],
    timeout_s: float,
    single: int = 10,
    partitions: int = 0,
    backfill: bool = True,
) -> dict[str, Any]:
    """Three phases against one daemon, with at least `partitions` document partitions registered:
    warm-up (one document per run slot, untimed, as the bare loop's workers warm up), `single` documents
    one at a time (upload -> embeddings latency with the sensor interval included), then the bulk load of
    `docs` (throughput and latency under load, its fixed costs from Dagster's records, Postgres and S3
    requests per document), and with `backfill` the same documents re-processed as a UI backfill."""

    stamp = f"{datetime.now(UTC):%m%d%H%M%S}"
    tenant = f"bench{stamp}"
    with production_path(settings, progress, partitions) as deployed:
        rt, instance = deployed.rt, deployed.instance
        tenants = warm_up(rt, stamp, seed=11, timeout_s=timeout_s)
        progress(f"warmed up {len(tenants)} run workers; {single} single documents, one at a time")
        single_latencies = []
        for i, d in enumerate(make_documents(single, seed=13)):
            tenants.append(f"one{stamp}x{i}")
            uploaded = upload(rt, settings.prefix, tenants[-1], [d])
            single_latencies += latencies_of(wait_done(rt, tenants[-1], 1, timeout_s), uploaded)
        tenants.append(tenant)
        database_url = rt.settings.database_url or ""
        # what the deployment does with nothing to process (sensor ticks, the run queue, heartbeats): its
        # rate, to tell the bulk load's per-document figures from the background's
        wait_runs_finished(instance, [{"docflow/tenant": t} for t in tenants])
        idle_before = costs.pg_counters(database_url)
        time.sleep(IDLE_S)
        pg_before = costs.pg_counters(database_url)
        s3 = costs.S3Counter()
        s3.attach(rt.bucket._client)  # the uploads' requests (the bench's own client)
        started = time.time()
        uploaded = upload(rt, settings.prefix, tenant, docs)
        upload_s = time.time() - started
        progress(f"uploaded {len(docs)} documents as tenant {tenant} in {upload_s:.1f} s; waiting")
        rows = wait_done(rt, tenant, len(docs), timeout_s)
        wait_runs_finished(instance, [{"docflow/tenant": t} for t in tenants])
        time.sleep(2)  # Postgres backends flush their statistics within a second of going idle
        pg_after = costs.pg_counters(database_url)
        upload_requests = dict(s3.counts)
        backfilled = {}
        if backfill:
            progress(f"re-processing the {len(rows)} documents as a backfill from the UI")
            backfilled = _backfill(settings, instance, [r["doc_id"] for r in rows.values()], timeout_s)
    load = finished_load(instance, rows, tenant, started, upload_s, run_limits()[1])
    latencies = latencies_of(rows, uploaded)
    return {
        "tenant": tenant,
        "docs_done": sum(r["status"] == "done" for r in rows.values()),
        "docs_failed": sum(r["status"] == "failed" for r in rows.values()),
        "docs_unfinished": len(docs) - load.finished,
        "wall_s": round(load.wall_s, 2),
        "latency_p50_s": round(pct(latencies, 50), 2),
        "latency_p95_s": round(pct(latencies, 95), 2),
        "single_docs": single,
        "single_latency_p50_s": round(pct(single_latencies, 50), 2),
        "single_latency_p95_s": round(pct(single_latencies, 95), 2),
        "runs": len(load.run_ids),
        **backfilled,
        "per_asset_s": _per_doc_asset_seconds(instance, load.run_ids, len(docs)),
        "fixed_costs": load.fixed_costs,
        "pg_per_doc": costs.pg_per_doc(pg_before, pg_after, len(docs)),
        "pg_idle_per_s": costs.pg_per_doc(idle_before, pg_before, IDLE_S),
        "s3_upload_requests_per_doc": costs.per_doc(upload_requests, len(docs)),
        **deployed.processes,
    }


class FinishedLoad(NamedTuple):
    finished: int  # documents done or failed
    wall_s: float  # from the first upload to the last document finished
    run_ids: list[str]  # the tenant's runs that succeeded
    fixed_costs: dict[str, Any]  # costs.fixed_costs of those runs


def finished_load(
    instance, rows: dict[str, dict[str, Any]], tenant: str, started: float, upload_s: float, slots: int
) -> FinishedLoad:
    """A finished bulk load of `tenant` read back from its documents' rows and Dagster's records (its runs'
    timelines and the sensor's ticks since just before the upload)."""
    from dagster import DagsterRunStatus, RunsFilter

    finished = [r for r in rows.values() if r["status"] in ("done", "failed")]
    done_at = max(r["updated_at"].timestamp() for r in finished) if finished else float("nan")
    runs = instance.get_runs(RunsFilter(tags={"docflow/tenant": tenant}, statuses=[DagsterRunStatus.SUCCESS]))
    run_ids = [r.run_id for r in runs]
    timeline = costs.run_timeline(instance, run_ids)
    ticks = costs.sensor_ticks(instance, after=started - 10)
    fixed = costs.fixed_costs(timeline, ticks, started, upload_s, slots, done_at)
    return FinishedLoad(len(finished), done_at - started, run_ids, fixed)


# --- the bare loop -----------------------------------------------------------------------------------

_worker_rt: Runtime | None = None
_worker_s3: costs.S3Counter | None = None


def _init_worker(settings: Settings) -> None:
    global _worker_rt, _worker_s3
    _worker_rt = runtime(settings)
    _worker_s3 = costs.S3Counter()
    _worker_s3.attach(_worker_rt.bucket._client)  # the steps' requests, counted in the process making them


def _process_one(doc_id: str) -> tuple[dict[str, float], dict[str, int]]:
    """The five steps for one document: each step's seconds, and the S3 requests they sent."""
    assert _worker_rt is not None and _worker_s3 is not None
    _worker_s3.counts.clear()
    timings = {}
    for name, step in STEPS.items():
        t0 = time.perf_counter()
        try:
            step(_worker_rt, doc_id)
        except Exception as exc:
            _worker_rt.store.set_status(doc_id, "failed", stage=name, error=f"{name}: {exc}")
            break
        timings[name] = time.perf_counter() - t0
    return timings, dict(_worker_s3.counts)


def bare_loop(settings: Settings, docs: list[BenchDoc], workers: int) -> dict[str, Any]:
    """The same steps over the same documents, no Dagster: `workers` processes, the model loaded once each.
    Also counts the steps' S3 requests and Postgres sessions and transactions per document (the registration
    before the clock starts is not counted)."""
    rt = runtime(settings)
    tenant = f"bare{datetime.now(UTC):%m%d%H%M%S}"
    doc_ids = []
    for d in docs:
        path = Path(f"/tmp/{d.name}")
        path.write_bytes(d.data)
        up = ingest.plan_upload(path, path.parent, settings.prefix, tenant)
        doc_ids.append(ingest.upload(rt.bucket, rt.store, up).doc_id)
        path.unlink()
    database_url = rt.settings.database_url or ""
    # spawn, not fork: a forked worker would share this process's open Postgres connections
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init_worker, initargs=(settings,))
    with pool:
        list(pool.map(_process_one, doc_ids[:workers]))  # warm up: model loaded in every worker, not timed
        time.sleep(2)  # Postgres backends flush their statistics within a second of going idle
        pg_before = costs.pg_counters(database_url)
        started = time.perf_counter()
        results = list(pool.map(_process_one, doc_ids[workers:] + doc_ids[:workers]))
        wall = time.perf_counter() - started
    time.sleep(2)
    pg_after = costs.pg_counters(database_url)
    timings = [t for t, _ in results]
    s3: Counter[str] = Counter()
    for _, counts in results:
        s3.update(counts)
    per_asset = {name: round(statistics.mean(t.get(name, 0.0) for t in timings), 3) for name in STEPS}
    return {
        "bare_tenant": tenant,
        "bare_wall_s": round(wall, 2),
        "bare_per_asset_s": per_asset,
        "bare_work_total_s": round(sum(sum(t.values()) for t in timings), 2),
        "bare_s3_requests_per_doc": costs.per_doc(s3, len(docs)),
        "bare_pg_per_doc": costs.pg_per_doc(pg_before, pg_after, len(docs)),
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return sorted(values)[k]


def pipeline_section(settings: Settings, options: BenchOptions, progress: Callable[[str], None]) -> dict:
    n = options.docs
    docs = make_documents(n)
    # the bulk load is one tenant's: the bare loop gets as many worker processes as that tenant gets runs
    workers = int(options.extra.get("workers", 0)) or run_limits()[1]
    progress(f"made {n} documents ({sum(d.pages for d in docs)} pages); bare loop with {workers} processes")
    # the bare loop runs before and after the Dagster path and counts as their mean: on a shared VM the
    # same loop took from 75 to 108 s within the ten minutes one bench takes
    before = bare_loop(settings, docs, workers)
    progress("Dagster path")
    timeout_s = float(options.extra.get("timeout_s", 3600))
    partitions = int(options.extra.get("objects", 0))
    single = int(options.extra.get("single", 10))
    backfill = options.flag("backfill", True)
    dag = dagster_path(
        settings, docs, progress, timeout_s, single=single, partitions=partitions, backfill=backfill
    )
    progress("bare loop again")
    after = bare_loop(settings, docs, workers)
    bare = mean_of_bare_loops([before, after])
    wall = dag["wall_s"]
    return {
        "docs": n,
        "pages": sum(d.pages for d in docs),
        "document_partitions": partitions,
        "workers": workers,
        "wall_s": wall,
        "docs_per_min": round(n / wall * 60, 1) if wall else None,
        **{k: v for k, v in dag.items() if k != "wall_s"},
        **bare,
        "overhead_ratio": round(wall / bare["bare_wall_s"], 3) if bare["bare_wall_s"] else None,
        "excess": excess_parts(wall, bare, dag["fixed_costs"]),
    }


def mean_of_bare_loops(loops: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of the bare loop as one: mean wall time and step times, each run's wall time kept."""
    return {
        "bare_tenants": [b["bare_tenant"] for b in loops],
        "bare_runs_wall_s": [b["bare_wall_s"] for b in loops],
        "bare_wall_s": round(statistics.mean(b["bare_wall_s"] for b in loops), 2),
        "bare_per_asset_s": {
            name: round(statistics.mean(b["bare_per_asset_s"][name] for b in loops), 3) for name in STEPS
        },
        "bare_work_total_s": round(statistics.mean(b["bare_work_total_s"] for b in loops), 2),
        # counts do not vary between runs of the same documents: the first run's
        "bare_s3_requests_per_doc": loops[0]["bare_s3_requests_per_doc"],
        "bare_pg_per_doc": loops[0]["bare_pg_per_doc"],
    }


def excess_parts(wall: float, bare: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """The Dagster path's time beyond the plain loop's, in parts that add up to it: until the first run
    worked (upload, sensor tick, run creation, queue, hand-over), the runs' own overhead and the slots left
    idle (each over the slots that share it), the documents' step time beyond the plain loop's (the same
    work, done slower or faster), and what is left (the plain loop's own idle time at its end, sampling)."""
    if not fixed:
        return {}
    slots = fixed["slots"]
    parts = {
        "to_first_run_start_s": fixed["first_run_started_after_s"],
        "run_overhead_s": round(fixed["run_overhead_total_s"] / slots, 2),
        "idle_slots_s": round(fixed["idle_slot_s"] / slots, 2),
        "work_difference_s": round((fixed["work_total_s"] - bare["bare_work_total_s"]) / slots, 2),
    }
    excess = wall - bare["bare_wall_s"]
    return {"excess_s": round(excess, 2), **parts, "rest_s": round(excess - sum(parts.values()), 2)}


def run_limits() -> tuple[int, int]:
    """Runs the instance executes at once, and runs one tenant may have at once: the dagster.yaml of
    DAGSTER_HOME when it is set (the instance the bench uses), else the repository's."""
    import yaml

    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT)
    config = home / "dagster.yaml" if (home / "dagster.yaml").exists() else REPO_ROOT / "dagster.yaml"
    runs = yaml.safe_load(config.read_text()).get("concurrency", {}).get("runs", {})
    total = int(runs.get("max_concurrent_runs", 1))
    per_tenant = [
        int(t["limit"]) for t in runs.get("tag_concurrency_limits", []) if t["key"] == "docflow/tenant"
    ]
    return total, min([total, *per_tenant])
