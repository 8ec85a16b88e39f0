"""What a bulk load costs beyond the work, for the pipeline and workers sections: memory and CPU per process,
Postgres sessions and transactions, S3 requests, and the Dagster path's fixed costs read from Dagster's own
records (sensor ticks, run records, the runs' event logs) rather than guessed from the outside.
"""

import contextlib
import itertools
import statistics
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

POLL_S = 0.5
SENSOR = "s3_document_sensor"


# --- memory and CPU per process ------------------------------------------------------------------------


def _is_worker(proc) -> bool:
    """A warm run worker: a child the daemon spawned with multiprocessing (not its resource tracker)."""
    cmdline = " ".join(proc.cmdline())
    return "spawn_main" in cmdline


class ProcessSampler(threading.Thread):
    """Peak memory (MB) and CPU seconds per process, sampled by pid every half second: each root (`roles`: a
    name -> a pid) with its helper children counted under its name, except the warm run workers (children
    spawned with multiprocessing), counted each on its own as `worker-<pid>`; the peak of their sum; and, with
    a Postgres URL, the most client connections open at once per database. Memory as resident set (RSS: a
    page shared by several processes, such as a library's code or a memory-mapped model file, counts in each)
    and as proportional set (PSS: a shared page divided among its processes; their sum is what the machine
    spends)."""

    def __init__(self, roles: dict[str, int], database_url: str | None = None) -> None:
        super().__init__(daemon=True)
        self.roles, self.database_url = roles, database_url
        self.peak_mb: dict[str, dict[str, float]] = {"rss": defaultdict(float), "pss": defaultdict(float)}
        self.total_peak_mb = {"rss": 0.0, "pss": 0.0}
        self.connections: dict[str, int] = defaultdict(int)
        self._cpu_first: dict[tuple[int, float], float] = {}
        self._cpu_last: dict[tuple[int, float], tuple[str, float]] = {}
        self._kinds: dict[tuple[int, float], bool] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def sample(self) -> None:
        with self._lock:
            self._sample()

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds the processes spent since they were first seen, by role (workers together)."""
        cpu: dict[str, float] = defaultdict(float)
        with self._lock:
            for key, (name, last) in self._cpu_last.items():
                cpu["workers" if name.startswith("worker-") else name] += last - self._cpu_first[key]
        return dict(cpu)

    def _sample(self) -> None:
        import psutil

        by_name: dict[str, dict[str, float]] = {"rss": defaultdict(float), "pss": defaultdict(float)}
        for role, pid in self.roles.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    key = (p.pid, p.create_time())
                    if key not in self._kinds:
                        self._kinds[key] = p is not root and _is_worker(p)
                    name = f"worker-{p.pid}" if self._kinds[key] else role
                    with p.oneshot():
                        memory = p.memory_full_info()
                        cpu = sum(p.cpu_times()[:2])
                    by_name["rss"][name] += memory.rss / 2**20
                    by_name["pss"][name] += memory.pss / 2**20
                    self._cpu_first.setdefault(key, cpu)
                    self._cpu_last[key] = (name, cpu)
        for kind, sizes in by_name.items():
            for name, mb in sizes.items():
                self.peak_mb[kind][name] = max(self.peak_mb[kind][name], mb)
            self.total_peak_mb[kind] = max(self.total_peak_mb[kind], sum(sizes.values()))

    def _sample_connections(self, conn) -> None:
        rows = conn.execute(
            "SELECT coalesce(datname, ''), count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
        ).fetchall()
        for datname, count in rows:
            self.connections[datname] = max(self.connections[datname], int(count))

    def run(self) -> None:
        conn = None
        if self.database_url:
            import psycopg

            with contextlib.suppress(psycopg.Error):
                conn = psycopg.connect(self.database_url, autocommit=True)
        try:
            while not self._stop_event.is_set():
                self.sample()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        self._sample_connections(conn)
                self._stop_event.wait(POLL_S)
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> dict[str, Any]:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=10)
        cpu = self.cpu_by_role()
        report: dict[str, Any] = {}
        for kind in ("rss", "pss"):
            peaks = self.peak_mb[kind]
            workers = sorted(
                (round(mb, 1) for n, mb in peaks.items() if n.startswith("worker-")), reverse=True
            )
            report[f"peak_{kind}_mb"] = round(self.total_peak_mb[kind], 1)
            report[f"peak_{kind}_by_process_mb"] = {
                **{n: round(mb, 1) for n, mb in peaks.items() if not n.startswith("worker-")},
                "workers": workers,
            }
            report[f"peak_{kind}_worker_mb"] = max(workers, default=None)
        return {
            **report,
            "cpu_s_by_process": {n: round(s, 1) for n, s in cpu.items()},
            "pg_connections_peak": dict(self.connections),
        }


# --- Postgres: sessions and transactions -----------------------------------------------------------------

PG_COUNTERS = ("sessions", "xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")


def pg_counters(database_url: str) -> dict[str, dict[str, int]]:
    """pg_stat_database's cumulative counters per database (sessions opened, transactions, rows written)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute(
            f"SELECT datname, {', '.join(PG_COUNTERS)} FROM pg_stat_database "
            "WHERE datname IS NOT NULL AND datname NOT LIKE 'template%'"
        ).fetchall()
    return {r[0]: dict(zip(PG_COUNTERS, map(int, r[1:]), strict=True)) for r in rows}


def pg_per_doc(before: dict, after: dict, docs: int) -> dict[str, dict[str, float]]:
    """Counter deltas per document, per database that changed (the counters are flushed by each backend
    within a second of its transactions: take `after` once the work has been idle a moment)."""
    out = {}
    for db, counters in after.items():
        delta = {k: v - before.get(db, {}).get(k, 0) for k, v in counters.items()}
        if any(delta.values()):
            out[db] = {k: round(v / max(docs, 1), 2) for k, v in delta.items()}
    return out


# --- S3: requests counted in the process that makes them --------------------------------------------------


class S3Counter:
    """Counts the HTTP requests a boto3 client sends (retries included), by operation."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, client) -> None:
        client.meta.events.register("before-send.s3", self._count)

    def _count(self, event_name: str = "", **_kwargs) -> None:
        with self._lock:
            self.counts[event_name.rsplit(".", 1)[-1]] += 1


def per_doc(counts: Counter[str] | dict[str, int], docs: int) -> dict[str, float]:
    return {op: round(n / max(docs, 1), 3) for op, n in sorted(counts.items())}


# --- the Dagster path's fixed costs ---------------------------------------------------------------------


def run_timeline(instance, run_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Per run, from its record and event log: when it was created, enqueued, taken by the launcher
    (STARTING), started and ended; each step's start and end; and the documents' own step time (the
    `duration_s` of each document's observation: the pipeline step alone)."""
    from dagster import DagsterEventType as E

    kinds = {
        E.RUN_ENQUEUED,
        E.RUN_STARTING,
        E.RUN_START,
        E.RUN_SUCCESS,
        E.RUN_FAILURE,
        E.STEP_START,
        E.STEP_SUCCESS,
        E.STEP_FAILURE,
        E.ASSET_OBSERVATION,
    }
    out = []
    for run_id in run_ids:
        record = instance.get_run_record_by_id(run_id)
        if record is None:
            continue
        run: dict[str, Any] = {"run_id": run_id, "created": record.create_timestamp.timestamp()}
        steps: dict[str, dict[str, float]] = defaultdict(dict)
        work: dict[str, float] = defaultdict(float)
        for entry in instance.all_logs(run_id, of_type=kinds):
            event = entry.dagster_event
            kind, at = event.event_type, entry.timestamp
            if kind == E.STEP_START:
                steps[event.step_key]["start"] = at
            elif kind in (E.STEP_SUCCESS, E.STEP_FAILURE):
                steps[event.step_key]["end"] = at
            elif kind == E.ASSET_OBSERVATION:
                value = event.asset_observation_data.asset_observation.metadata.get("duration_s")
                if value is not None:
                    work[event.step_key or ""] += float(value.value)
            else:
                run.setdefault(kind.value, at)  # the first of each: a resumed run keeps its first start
        run["steps"], run["work"] = dict(steps), dict(work)
        run["docs"] = int(record.dagster_run.tags.get("docflow/batch_size", "1"))
        out.append(run)
    return out


def sensor_ticks(instance, after: float) -> list[dict[str, Any]]:
    """The document sensor's ticks since `after` that requested runs: start, end and their runs."""
    ticks = []
    for state in instance.all_instigator_state():  # sensors and schedules: the name tells
        if state.instigator_name != SENSOR:
            continue
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after):
            if tick.run_ids:
                ticks.append(
                    {"start": tick.timestamp, "end": tick.end_timestamp, "run_ids": list(tick.run_ids)}
                )
    return sorted(ticks, key=lambda t: t["start"])


def _p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def fixed_costs(
    runs: list[dict[str, Any]],
    ticks: list[dict[str, Any]],
    load_started: float,
    upload_s: float,
    slots: int,
    done_at: float,
) -> dict[str, Any]:
    """The Dagster path's time beyond the documents' own step time, named: from the load's first upload to
    the first run working (upload, the wait for the sensor's tick, run creation, the queue, the worker),
    per run (creation, the queue and the hand-over to a warm worker, start to first step, between steps,
    inside steps beyond the documents' own time, last step to run end), and run slots left idle between runs
    and at the end. Per-run costs are medians; `*_total_s` are sums over all runs, and `idle_slot_s` the slot
    time (of `slots` slots) in which none of the load's runs ran, between the first run start and the end.
    `run_overhead_total_s` is what the runs spent beyond the documents' own step time (their slots busy):
    the start to the first step, between steps, inside steps (Dagster's events, docflow's metadata) and
    the last step to the run's end."""
    from dagster import DagsterEventType as E

    runs = [r for r in runs if E.RUN_START.value in r]
    if not runs:
        return {}
    started = {r["run_id"]: r[E.RUN_START.value] for r in runs}
    ended = {r["run_id"]: r.get(E.RUN_SUCCESS.value) or r.get(E.RUN_FAILURE.value) or done_at for r in runs}
    first = min(runs, key=lambda r: r["created"])
    first_start = min(started.values())

    create_gaps, tick_to_first_run = [], []
    mine = {r["run_id"]: r["created"] for r in runs}
    for tick in ticks:
        created = sorted(mine[i] for i in tick["run_ids"] if i in mine)
        if created:
            tick_to_first_run.append(created[0] - tick["start"])
            create_gaps += [b - a for a, b in itertools.pairwise(created)]

    def per_run(fn) -> list[float]:
        values = []
        for r in runs:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                values.append(fn(r))
        return values

    # the queued run coordinator writes no dequeue event: STARTING is the launcher taking the run
    enqueue = per_run(lambda r: r[E.RUN_ENQUEUED.value] - r["created"])
    queued = per_run(lambda r: r[E.RUN_STARTING.value] - r[E.RUN_ENQUEUED.value])
    handover = per_run(lambda r: r[E.RUN_START.value] - r[E.RUN_STARTING.value])
    to_first_step = per_run(lambda r: min(s["start"] for s in r["steps"].values()) - r[E.RUN_START.value])
    last_step_to_end = per_run(lambda r: ended[r["run_id"]] - max(s["end"] for s in r["steps"].values()))

    def between(r) -> float:
        spans = sorted((s["start"], s["end"]) for s in r["steps"].values())
        return sum(max(0.0, b[0] - a[1]) for a, b in itertools.pairwise(spans))

    def inside(r) -> float:
        return sum(s["end"] - s["start"] for s in r["steps"].values()) - sum(r["work"].values())

    between_steps, inside_steps = per_run(between), per_run(inside)
    busy = sum(ended[i] - started[i] for i in started)
    ends = sorted(ended.values())
    idle = slots * (max(ends[-1], done_at) - first_start) - busy
    return {
        "upload_s": round(upload_s, 2),
        "first_run_created_after_s": round(first["created"] - load_started, 2),
        "first_run_started_after_s": round(first_start - load_started, 2),
        "ticks_with_runs": len(tick_to_first_run),
        "tick_to_first_run_created_s_p50": _p50(tick_to_first_run),
        "run_create_s_p50": _p50(create_gaps),
        "run_created_to_enqueued_s_p50": _p50(enqueue),
        "run_queued_s_p50": _p50(queued),
        "run_handover_s_p50": _p50(handover),
        "run_start_to_first_step_s_p50": _p50(to_first_step),
        "between_steps_s_p50": _p50(between_steps),
        "inside_steps_beyond_work_s_p50": _p50(inside_steps),
        "last_step_to_run_end_s_p50": _p50(last_step_to_end),
        # inside the runs (their slots busy): the runs' time but for the documents' own step time
        "run_overhead_total_s": round(
            sum(to_first_step) + sum(between_steps) + sum(inside_steps) + sum(last_step_to_end), 2
        ),
        "work_total_s": round(sum(sum(r["work"].values()) for r in runs), 2),
        "busy_slot_s": round(busy, 2),
        "idle_slot_s": round(idle, 2),
        "last_runs_end_apart_s": round(ends[-1] - ends[-min(slots, len(ends))], 2),
        "last_run_end_after_done_s": round(ends[-1] - done_at, 2),
        "slots": slots,
    }
