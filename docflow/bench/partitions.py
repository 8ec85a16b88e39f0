"""`docflow bench --only partitions`: the partition ceiling. At each size (100k, 300k and 1M documents by
default) synthetic documents are registered (rows in docflow.documents by COPY, and a partition each in the
real `documents` partitions definition), then measured twice, retention off (every partition present) and
retention on (docflow.orchestration.retention.archive_expired: documents processed before the window lose
their partition):

- the Dagster UI: the GraphQL queries of the asset page and of its partitions tab, with the texts the shipped
  UI bundle sends (bench/ui_queries.py), POSTed to a dagster-webserver started for the bench, each with a
  timeout; the webserver's peak memory;
- a tick of the real `s3_document_sensor`, evaluated by the code server as the daemon asks for it, that
  finds a few new objects under the upload prefix, and the daemon's share of it (adding its partitions);
- run creation for one of that tick's batch run requests, along the sensor daemon's code path (execution
  plan from the code server, run with its planned events, submitted to the queue);
- a UI backfill of a few documents up to its first run: the *Materialize* dialog's queries and the
  LaunchPartitionBackfill mutation sent to the webserver, then the backfill daemon's code path;
- `docflow status` (all, one document, `--failed`; JSON), what the command does, in-process.

Every synthetic document has a materialization of the measured asset (`embeddings`; the other four have
none), recorded in bulk (orchestration/bench_events.py), so the partitions tab shows them materialized.
The timestamps follow a steady load: `docs_per_day` documents processed a day, the oldest at ANCHOR, so
retention keeps the newest `retention_days * docs_per_day` documents whatever the size (the JSON's `model`).
The synthetic documents are the tenant `bench-partitions` (ids in order of age); a run at a size reuses the
rows and partitions left by an earlier one (`extra["keep_partition_rows"]` keeps them; else they are removed
at the end, materializations included). A code server and a webserver are started for the bench and
stopped at the end; no daemon runs, so the runs the bench creates stay queued, and are deleted.
"""

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from docflow.bench import BenchOptions, free_port
from docflow.bench.pipeline import stop_process
from docflow.settings import Settings

TENANT = "bench-partitions"
TICK_TENANT = "benchtick"
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
SIZES = [100_000, 300_000, 1_000_000]
COPY_CHUNK = 100_000
PARTITION_CHUNK = 10_000
REPEAT_UNDER_S = 15.0  # a UI query is asked again (warm) only if it answered faster than this
ASSET = "embeddings"  # the asset whose page and partitions tab are measured (all five share the partitions)
ASSET_PAGE = [
    "AssetViewDefinitionQuery",
    "AssetGraphLiveQuery",
    "AssetsFreshnessInfoQuery",
    "AssetHealthQuery",
    "AssetStaleStatusDataQuery",
    "AssetOverviewMetadataEventsQuery",
    "AssetChecksQuery",
    "AssetAutomationQuery",
    "LocationWorkspaceAssetsQuery",  # every page: the location's asset nodes, for the graph and the search
]
PARTITIONS_TAB = ["PartitionHealthQuery", "AssetPartitionDetailQuery", "AssetPartitionStaleQuery"]


def doc_id(i: int) -> str:
    return f"{TENANT}-{i:08d}"


def updated_at(i: int, per_day: float) -> datetime:
    return ANCHOR + timedelta(days=i / per_day)


def _rows(start: int, end: int, per_day: float) -> Iterator[tuple]:
    for i in range(start, end):
        d, at = doc_id(i), updated_at(i, per_day)
        key = f"incoming/{TENANT}/{d}.pdf"
        yield (d, TENANT, "bench", key, [key], f"{i:064x}", f"{d}.pdf", "application/pdf", "done",
               at - timedelta(minutes=5), at)  # fmt: skip


# --- registration ---------------------------------------------------------------------------------


def register(rt, instance, n: int, per_day: float, progress: Callable[[str], None]) -> dict[str, Any]:
    """Exactly `n` synthetic documents (0 .. n-1), each with its partition (archived ones restored);
    returns what it did and how long each part took."""
    import dagster as dg

    from docflow.defs.partitions import documents
    from docflow.orchestration.bench_events import forget, materialized, record_materializations
    from docflow.orchestration.retention import delete_partitions, restore
    from docflow.store import bulk, synthetic

    out: dict[str, Any] = {}
    have, _ = synthetic.count(rt.store, TENANT)
    started = time.perf_counter()
    if have > n:
        extra = synthetic.doc_ids(rt.store, TENANT)[n:]
        progress(f"partitions bench: removing {len(extra)} documents beyond {n}")
        for start in range(0, len(extra), PARTITION_CHUNK):
            delete_partitions(instance, extra[start : start + PARTITION_CHUNK])
            rt.store.delete_documents(extra[start : start + PARTITION_CHUNK])
        out["removed"] = len(extra)
        forget(instance, dg.AssetKey(ASSET), extra)
    elif have < n:
        for start in range(have, n, COPY_CHUNK):
            end = min(n, start + COPY_CHUNK)
            progress(f"partitions bench: COPY documents {start}..{end - 1} and add their partitions")
            synthetic.copy_documents(rt.store, _rows(start, end, per_day))
            for s in range(start, end, PARTITION_CHUNK):
                instance.add_dynamic_partitions(
                    documents.name, [doc_id(i) for i in range(s, min(end, s + PARTITION_CHUNK))]
                )
        out["added"] = n - have
        bulk.vacuum_analyze(rt.store)
    done = materialized(instance, dg.AssetKey(ASSET))
    todo = [i for i in range(n) if doc_id(i) not in done]
    if todo:
        progress(f"partitions bench: recording {len(todo)} materializations of {ASSET}")
        record_materializations(
            instance, dg.AssetKey(ASSET), [doc_id(i) for i in todo], [updated_at(i, per_day) for i in todo]
        )
    out["materializations_recorded"] = len(todo)
    out["register_s"] = round(time.perf_counter() - started, 2)
    archived = synthetic.doc_ids(rt.store, TENANT, archived=True)
    started = time.perf_counter()
    for start in range(0, len(archived), PARTITION_CHUNK):
        if start % 100_000 == 0:
            progress(f"partitions bench: restoring archived documents {start}/{len(archived)}")
        restore(instance, rt.store, archived[start : start + PARTITION_CHUNK])
    out["restored"] = len(archived)
    out["restore_s"] = round(time.perf_counter() - started, 2)
    present = set(instance.get_dynamic_partitions(documents.name))
    missing = [d for d in (doc_id(i) for i in range(n)) if d not in present]
    if missing:  # an earlier run stopped half-way
        for start in range(0, len(missing), PARTITION_CHUNK):
            instance.add_dynamic_partitions(documents.name, missing[start : start + PARTITION_CHUNK])
    out["partitions_repaired"] = len(missing)
    return out


def apply_retention(rt, instance, days: int, now: datetime, progress) -> dict[str, Any]:
    """archive_expired on the bench's documents (never a deployment's own) until nothing is left to archive;
    returns how many and how long."""
    from docflow.orchestration.retention import archive_expired

    started, total = time.perf_counter(), 0
    while archived := archive_expired(instance, rt.store, days, limit=100_000, now=now, tenant=TENANT):
        total += archived
        progress(f"partitions bench: archived {total} documents")
    return {"archived": total, "archive_s": round(time.perf_counter() - started, 2)}


# --- the services the UI and the daemon paths talk to ---------------------------------------------


class Services:
    """A code server for the docflow location, a workspace file naming it, and a dagster-webserver on it."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.code_server: subprocess.Popen | None = None
        self.webserver: subprocess.Popen | None = None
        self.workspace = Path(tempfile.mkdtemp(prefix="docflow-bench-partitions-")) / "workspace.yaml"
        self.url = ""

    def _popen(self, cmd: list[str], log: str) -> subprocess.Popen:
        from docflow.runtime import REPO_ROOT

        out = (self.log_dir / log).open("w")
        return subprocess.Popen(
            cmd, env=self.env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_code_server(self, timeout_s: float = 300) -> None:
        import yaml

        port = free_port()
        cmd = [sys.executable, "-m", "dagster", "code-server", "start", "-m", "docflow.definitions"]
        self.code_server = self._popen([*cmd, "-h", "127.0.0.1", "-p", str(port)], "code-server.log")
        health = [sys.executable, "-m", "dagster", "api", "grpc-health-check", "-p", str(port)]
        deadline = time.monotonic() + timeout_s
        while subprocess.run(health, env=self.env, capture_output=True).returncode != 0:
            if self.code_server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the code server did not start: see {self.log_dir / 'code-server.log'}")
            time.sleep(1)
        location = {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": "docflow"}}
        self.workspace.write_text(yaml.safe_dump({"load_from": [location]}))

    def start_webserver(self, timeout_s: float = 300) -> None:
        import httpx

        port = free_port()
        webserver = Path(sys.executable).parent / "dagster-webserver"
        cmd = [str(webserver), "-w", str(self.workspace), "-h", "127.0.0.1", "-p", str(port)]
        self.webserver = self._popen(cmd, "webserver.log")
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        probe = "query P($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { __typename } }"
        while time.monotonic() < deadline:
            if self.webserver.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                body = httpx.post(
                    f"{self.url}/graphql",
                    json={"query": probe, "variables": {"k": {"path": [ASSET]}}},
                    timeout=10,
                ).json()
                if body["data"]["assetNodeOrError"]["__typename"] == "AssetNode":
                    return
            time.sleep(1)
        raise RuntimeError(f"the webserver did not start: see {self.log_dir / 'webserver.log'}")

    def restart_webserver(self) -> None:
        if self.webserver is not None:
            stop_process(self.webserver)
        self.start_webserver()

    def stop(self) -> None:
        for proc in (self.webserver, self.code_server):
            if proc is not None:
                stop_process(proc)


# --- the measures ----------------------------------------------------------------------------------


class PeakRss(threading.Thread):
    """Peak resident memory (MB) of a process, sampled every half second until stopped."""

    def __init__(self, pid: int, peak_mb: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self._done = pid, peak_mb, threading.Event()

    def run(self) -> None:
        import psutil

        while not self._done.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak_mb = max(self.peak_mb, psutil.Process(self.pid).memory_info().rss / 2**20)
            self._done.wait(0.5)

    def stop(self) -> float:
        self._done.set()
        return round(self.peak_mb, 1)


def ui_queries(services: Services, partition_key: str, timeout_s: float, repeat: int, progress) -> dict:
    """Each query of the asset page and of the partitions tab, `repeat` times, timed by the client. A query
    that times out is reported broken; the webserver, still busy with it, is restarted."""

    from docflow.bench.ui_queries import ui_query

    assert services.webserver is not None
    variables = {
        "assetKey": {"path": [ASSET]},
        "assetKeys": [{"path": [ASSET]}],
        "partitionKey": partition_key,
        "name": "docflow",  # the code location
    }
    sampler = PeakRss(services.webserver.pid)
    sampler.start()
    result: dict[str, Any] = {}
    for page, names in (("asset_page", ASSET_PAGE), ("partitions_tab", PARTITIONS_TAB)):
        queries: dict[str, Any] = {}
        for name in names:
            try:
                text = ui_query(name)
            except KeyError:
                queries[name] = {"error": "not in the UI bundle"}
                continue
            entry: dict[str, Any] = {"s": []}
            for attempt in range(repeat):
                if attempt and entry["s"][-1] > REPEAT_UNDER_S:
                    break  # a slow query once is enough: the window is short
                body = _post(services, name, text, variables, timeout_s, entry)
                if body is None:
                    break
                if name == "PartitionHealthQuery" and "error" not in entry:
                    entry.update(_health_counts(body))
            queries[name] = entry
            progress(f"  {page} {name}: {entry.get('s')} {entry.get('broken') or entry.get('error') or ''}")
            if "broken" in entry:
                sampler_peak = sampler.stop()
                services.restart_webserver()
                sampler = PeakRss(services.webserver.pid)
                sampler.peak_mb = sampler_peak
                sampler.start()
        ok = [q for q in queries.values() if q.get("s") and "broken" not in q]
        result[page] = {
            "queries": queries,
            # what a page load waits for: the UI sends its queries at once, the slowest decides
            "slowest_s": max((q["s"][-1] for q in ok), default=None),
            "slowest_first_s": max((q["s"][0] for q in ok), default=None),  # the status cache updated
            "sum_s": round(sum(q["s"][-1] for q in ok), 3),
            "broken": sorted(n for n, q in queries.items() if "broken" in q),
        }
    result["webserver_peak_rss_mb"] = sampler.stop()
    return result


def _post(
    services: Services, name: str, text: str, variables: dict, timeout_s: float, entry: dict[str, Any]
) -> dict[str, Any] | None:
    """POST one operation as the UI does; its time goes to entry["s"], its size to entry["bytes"], a GraphQL
    error to entry["error"]. Returns the response body, or None when it broke (entry["broken"] says how)."""
    import httpx

    started = time.perf_counter()
    try:
        response = httpx.post(
            f"{services.url}/graphql",
            json={"query": text, "variables": variables, "operationName": name},
            timeout=timeout_s,
        )
    except httpx.TimeoutException:
        entry["broken"] = f"timeout after {timeout_s:.0f} s"
        return None
    except httpx.HTTPError as exc:
        entry["broken"] = f"{type(exc).__name__}: {exc}"
        return None
    entry.setdefault("s", []).append(round(time.perf_counter() - started, 3))
    entry["bytes"] = len(response.content)
    json_body = response.headers.get("content-type", "").startswith("application/json")
    body = response.json() if json_body else {}
    if response.status_code != 200 or body.get("errors"):
        entry["error"] = str(body.get("errors") or response.text[:300])[:300]
    return body


def _health_counts(body: dict[str, Any]) -> dict[str, int]:
    """How many partition keys and materialized partitions the partitions tab received."""
    node = (body.get("data") or {}).get("assetNodeOrError") or {}
    dims = node.get("partitionKeysByDimension") or [{}]
    statuses = node.get("assetPartitionStatuses") or {}
    return {
        "partition_keys": len(dims[0].get("partitionKeys") or []),
        "materialized_partitions": len(statuses.get("materializedPartitions") or []),
    }


def sensor_ticks(settings: Settings, instance, services: Services, rounds: int, fresh: int, progress) -> dict:
    """Ticks of the real s3_document_sensor, each finding `fresh` new objects under the upload prefix,
    evaluated by the code server as the daemon asks for them (the cursor says every older object was
    handled); the daemon's part (the partitions the tick asks for, then run creation for one of its batch
    requests) timed apart. The tick's documents, objects, partitions and runs are removed."""
    from docflow.ingest import SLACK, ScanCursor
    from docflow.orchestration.daemon_path import evaluate_sensor, submit_sensor_run, workspace
    from docflow.orchestration.retention import delete_partitions
    from docflow.orchestration.tags import partition_range
    from docflow.runtime import runtime

    rt = runtime(settings)
    bucket, prefix = rt.bucket, rt.settings.prefix
    ticks: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    registered: list[str] = []
    objects: list[str] = []
    with workspace(instance, services.workspace) as context:
        for r in range(rounds):
            newest = max((o.last_modified for o in bucket.list(prefix)), default=None)
            cursor = ScanCursor(since=newest + SLACK + timedelta(seconds=1)) if newest else ScanCursor()
            time.sleep(1.5)  # Last-Modified has 1 s resolution: the fresh objects come after the others
            stamp = time.time_ns()
            keys = [f"{prefix}{TICK_TENANT}/fresh-{stamp}-{i}.txt" for i in range(fresh)]
            for i, key in enumerate(keys):
                bucket.put_bytes(key, f"fresh {stamp} {i}\n".encode())
            started = time.perf_counter()
            data = evaluate_sensor(context, "s3_document_sensor", cursor.dump())
            evaluated = time.perf_counter()
            added: list[str] = []
            for request in data.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
                added += list(request.partition_keys)
            applied = time.perf_counter()
            tick = {
                "tick_s": round(evaluated - started, 3),
                "add_partitions_s": round(applied - evaluated, 3),
                "registered": len(added),
                "run_requests": len(data.run_requests or []),
            }
            batch = next((q for q in data.run_requests or [] if partition_range(q.tags)), None)
            if batch is not None:
                t0 = time.perf_counter()
                run = submit_sensor_run(context, "s3_document_sensor", batch)
                runs.append(
                    {
                        "create_run_s": round(time.perf_counter() - t0, 3),
                        "batch": batch.tags.get("docflow/batch_size"),
                    }
                )
                instance.delete_run(run.run_id)
            ticks.append(tick)
            progress(f"  tick {r + 1}: {tick} {runs[-1] if runs else ''}")
            registered += added
            objects += keys
    # removed after the last tick, not between ticks: a removed partition makes every process read all the
    # keys again once, which the daemon's ticks do not pay while nothing is removed
    delete_partitions(instance, registered)
    rt.store.delete_documents(registered)
    for key in objects:
        bucket.delete(key)
    tick_times = [t["tick_s"] for t in ticks]
    create_times = [r["create_run_s"] for r in runs]
    return {
        "ticks": ticks,
        "sensor_tick_s": round(statistics.median(tick_times), 3),
        "sensor_tick_first_s": tick_times[0],
        "runs": runs,
        "create_run_s": round(statistics.median(create_times), 3) if create_times else None,
        "create_run_first_s": create_times[0] if create_times else None,
    }


def backfill_first_run(
    instance, services: Services, keys: list[str], opts: dict[str, Any], dialog: bool, progress
) -> dict:
    """A backfill as the UI launches one, up to its first run: the *Materialize* dialog loads the partition
    health of the five assets (skipped when the partitions tab broke: it is the same query), the
    LaunchPartitionBackfill mutation (the five assets, `keys`) goes to the webserver, then passes of the
    backfill daemon's iteration until a run of the backfill exists. The backfill is canceled and its runs
    deleted afterwards."""
    import dagster as dg

    from docflow.bench.ui_queries import ui_query
    from docflow.defs.assets import ASSET_NAMES
    from docflow.orchestration.daemon_path import backfill_iteration, cancel_backfill, workspace
    from docflow.orchestration.tags import BACKFILL_ID_TAG

    timeout_s = opts["query_timeout_s"]
    out: dict[str, Any] = {"docs": len(keys)}
    if dialog:
        health: dict[str, dict[str, Any]] = {}
        for name in ASSET_NAMES:
            health[name] = {}
            _post(services, "PartitionHealthQuery", ui_query("PartitionHealthQuery"),
                  {"assetKey": {"path": [name]}}, timeout_s, health[name])  # fmt: skip
        if broken := {n: h["broken"] for n, h in health.items() if "broken" in h}:
            out["dialog_broken"] = broken
            services.restart_webserver()
        else:
            out["dialog_s"] = max(h["s"][0] for h in health.values())  # the dialog sends them at once
    params = {
        "tags": [{"key": "dagster/from_ui", "value": "true"}],
        "assetSelection": [{"path": [name]} for name in ASSET_NAMES],
        "partitionNames": keys,
        "fromFailure": False,
    }
    launch: dict[str, Any] = {}
    started = time.perf_counter()
    body = _post(services, "LaunchPartitionBackfill", ui_query("LaunchPartitionBackfill"),
                 {"backfillParams": params}, timeout_s, launch)  # fmt: skip
    out["launch"] = launch
    backfill_id = ((body or {}).get("data") or {}).get("launchPartitionBackfill", {}).get("backfillId")
    if not backfill_id:
        out["broken"] = (
            f"the backfill was not launched: {launch.get('broken') or launch.get('error') or body}"
        )
        return out
    passes, errors = 0, []
    of_backfill = dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id})
    with workspace(instance, services.workspace) as context:
        try:
            while (
                not instance.get_runs_count(of_backfill)
                and time.perf_counter() - started < opts["backfill_timeout_s"]
            ):
                errors += backfill_iteration(context)
                passes += 1
            out["first_run_s"] = (
                round(time.perf_counter() - started, 3) if instance.get_runs_count(of_backfill) else None
            )
        finally:
            cancel_backfill(instance, backfill_id)
            out["runs"] = instance.get_runs_count(of_backfill)
            for run in instance.get_runs(of_backfill):
                instance.delete_run(run.run_id)
    out.update(daemon_passes=passes, errors=errors[:3])
    if out["first_run_s"] is None:
        out["broken"] = f"no run after {opts['backfill_timeout_s']:.0f} s" + (
            f": {errors[0]}" if errors else ""
        )
    return out


def status_timings(settings: Settings, doc: str) -> dict[str, float]:
    """`docflow status --json`, `docflow status DOC_ID --json` and `docflow status --failed --json`: what the
    command does (docflow.cli.status, which the bench may not import: cli imports the bench), in-process."""
    from docflow.runner import dead_letters, summarize
    from docflow.runtime import runtime

    rt = runtime(settings)
    listings: dict[str, Callable[[], list]] = {
        "status_s": lambda: rt.store.list_documents(),
        "status_one_s": lambda: rt.store.list_documents(doc_id=doc),
        "status_failed_s": lambda: dead_letters(rt),
    }
    out = {}
    for label, listing in listings.items():
        started = time.perf_counter()
        json.dumps([r.model_dump() for r in summarize(rt, listing())], default=str)
        out[label] = round(time.perf_counter() - started, 3)
    return out


def measure(settings, rt, instance, services, n_docs: int, opts: dict[str, Any], progress) -> dict[str, Any]:
    from docflow.defs.partitions import documents

    started = time.perf_counter()
    partitions = instance.get_dynamic_partitions(documents.name)
    out: dict[str, Any] = {
        "partitions": len(partitions),
        "get_partitions_s": round(time.perf_counter() - started, 3),
    }
    newest = doc_id(n_docs - 1)
    assert services.code_server is not None
    code_server, here = PeakRss(services.code_server.pid), PeakRss(os.getpid())
    code_server.start()
    here.start()
    out["ui"] = ui_queries(services, newest, opts["query_timeout_s"], opts["repeat"], progress)
    out["sensor"] = sensor_ticks(settings, instance, services, opts["ticks"], opts["fresh"], progress)
    keys = [doc_id(i) for i in range(max(0, n_docs - opts["backfill_docs"]), n_docs)]
    dialog = "PartitionHealthQuery" not in out["ui"]["partitions_tab"]["broken"]
    out["backfill"] = backfill_first_run(instance, services, keys, opts, dialog, progress)
    progress(f"  backfill: {out['backfill']}")
    out["status"] = status_timings(settings, newest)
    progress(f"  status: {out['status']}")
    out["code_server_peak_rss_mb"] = code_server.stop()
    # this process plays the daemon (partitions added, runs created, the backfill's pass) and the CLI
    out["bench_process_peak_rss_mb"] = here.stop()
    return out


def _headline(entry: dict[str, Any]) -> dict[str, Any]:
    ui, sensor = entry["ui"], entry["sensor"]
    return {
        "partitions": entry["partitions"],
        "partitions_tab_s": ui["partitions_tab"]["slowest_s"],
        "partitions_tab_first_s": ui["partitions_tab"]["slowest_first_s"],
        "partitions_tab_broken": ui["partitions_tab"]["broken"],
        "asset_page_s": ui["asset_page"]["slowest_s"],
        "sensor_tick_s": sensor["sensor_tick_s"],
        "create_run_s": sensor["create_run_s"],
        "backfill_first_run_s": entry["backfill"].get("first_run_s"),
        "status_s": entry["status"]["status_s"],
        "webserver_peak_rss_mb": ui["webserver_peak_rss_mb"],
        "code_server_peak_rss_mb": entry["code_server_peak_rss_mb"],
        "bench_process_peak_rss_mb": entry["bench_process_peak_rss_mb"],
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def partitions_section(settings: Settings, options: BenchOptions, progress: Callable[[str], None]) -> dict:
    from docflow.orchestration.instance import dagster_env, open_instance
    from docflow.runtime import runtime
    from docflow.store import synthetic

    extra = options.extra
    sizes = options.ints("sizes", SIZES)
    per_day = float(extra.get("docs_per_day", 5000))
    days = int(extra.get("retention_days", 10))
    opts = {
        "query_timeout_s": float(extra.get("query_timeout_s", 120)),
        "repeat": int(extra.get("repeat", 2)),
        "ticks": int(extra.get("ticks", 3)),
        "fresh": int(extra.get("new", 5)),
        "backfill_docs": int(extra.get("backfill_docs", 10)),
        "backfill_timeout_s": float(extra.get("backfill_timeout_s", 300)),
    }
    keep = options.flag("keep_partition_rows", False)
    rt = runtime(settings)
    env = {**os.environ, **dagster_env(settings)}
    instance = open_instance(env)
    log_dir = Path(env["DAGSTER_HOME"])
    services = Services(env, log_dir)
    report: dict[str, Any] = {
        "model": {
            "docs_per_day": per_day,
            "retention_days": days,
            "oldest_updated_at": ANCHOR.isoformat(),
            "kept_with_retention": int(days * per_day),
            "how": "document i (0 = oldest) was processed ANCHOR + i / docs_per_day days; retention is "
            "applied as of one hour after the newest, so it keeps the newest retention_days * docs_per_day",
        },
        "asset": ASSET,
        "options": opts,
        "sizes": {},
    }
    try:
        progress("partitions bench: starting a code server and a webserver")
        services.start_code_server()
        services.start_webserver()
        for n in sizes:
            entry: dict[str, Any] = {"docs": n}
            progress(f"partitions bench: {n} documents, registering")
            entry["registration"] = register(rt, instance, n, per_day, progress)
            if options.flag("register_only", False):
                report["sizes"][str(n)] = entry
                continue
            progress(f"partitions bench: {n} documents, retention off")
            entry["retention_off"] = _safe(measure, settings, rt, instance, services, n, opts, progress)
            now = updated_at(n - 1, per_day) + timedelta(hours=1)
            entry["retention"] = apply_retention(rt, instance, days, now, progress)
            progress(f"partitions bench: {n} documents, retention on ({entry['retention']})")
            entry["retention_on"] = _safe(measure, settings, rt, instance, services, n, opts, progress)
            entry["summary"] = {
                mode: _headline(entry[mode])
                for mode in ("retention_off", "retention_on")
                if "ui" in entry[mode]
            }
            report["sizes"][str(n)] = entry
            if extra.get("json_each_size"):  # a long run's finished sizes survive a later size that breaks
                Path(extra["json_each_size"]).write_text(json.dumps(report, indent=2, default=str))
    finally:
        services.stop()
        if not keep:
            progress("partitions bench: removing the synthetic documents and their partitions")
            _cleanup(rt, instance)
        report["rows_kept"] = keep and synthetic.count(rt.store, TENANT)[0]
    small, large = str(min(sizes)), str(max(sizes))
    if small != large and all("summary" in report["sizes"][k] for k in (small, large)):
        on_small = report["sizes"][small]["summary"].get("retention_on", {})
        on_large = report["sizes"][large]["summary"].get("retention_on", {})
        report["ratio_sizes"] = f"{large}/{small}"
        report["tick_ratio_retention_on"] = _ratio(
            on_large.get("sensor_tick_s"), on_small.get("sensor_tick_s")
        )
        report["partitions_tab_ratio_retention_on"] = _ratio(
            on_large.get("partitions_tab_s"), on_small.get("partitions_tab_s")
        )
        report["target_ratio"] = 2.0
    return report


def _safe(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """A measure that fails is reported as broken (with its error) and the bench goes on."""
    started = time.perf_counter()
    try:
        return fn(*args)
    except Exception as exc:  # a size that breaks is a result
        return {
            "broken": f"{type(exc).__name__}: {str(exc)[:500]}",
            "after_s": round(time.perf_counter() - started, 1),
        }


def _cleanup(rt, instance) -> None:
    """The synthetic documents, their partitions and their materializations."""
    import dagster as dg

    from docflow.orchestration.bench_events import forget
    from docflow.orchestration.retention import delete_partitions
    from docflow.store import synthetic

    ids = synthetic.doc_ids(rt.store, TENANT)
    for start in range(0, len(ids), PARTITION_CHUNK):
        delete_partitions(instance, ids[start : start + PARTITION_CHUNK])
    forget(instance, dg.AssetKey(ASSET), ids)
    synthetic.delete_tenant(rt.store, TENANT)
