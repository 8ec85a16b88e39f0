"""`WarmRunLauncher`: runs execute in long-lived worker processes that have docflow, Dagster and the models
loaded already, instead of a new Python process per run.

Dagster's default launcher starts a process per run: importing Dagster, docflow and torch and loading the
embedding model cost more than processing a typical document. The daemon's run queue still decides what
runs when (`concurrency.runs` limits, per-tenant limits, priorities); this launcher only changes where a
dequeued run executes: the next idle worker of a pool of as many processes as the run queue's
`max_concurrent_runs` (one value in dagster.yaml for both), spawned by the process that launches runs (the
daemon), warmed up once (`warm_up`), and replaced when one dies or after `max_runs_per_worker` runs.

Each run is tagged with its worker's pid and host, which lets:
- run monitoring (`run_monitoring` in dagster.yaml) fail a run whose worker died (killed, OOM) so that
  it can be retried;
- terminate (from the UI, any process on the same host) interrupt the run.
Production on Kubernetes configures `K8sRunLauncher` instead (docker/k8s/values.yaml).
"""

import contextlib
import importlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData

from docflow.orchestration.instance import EVENT_BATCH_ENV, EVENT_BATCH_SIZE

PID_TAG = "docflow/worker_pid"
STARTED_TAG = "docflow/worker_started"  # the worker's process start time: a reused pid is not mistaken for it
HOST_TAG = "docflow/worker_host"


class WarmRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        workers: int | None = None,
        max_runs_per_worker: int = 500,
        event_batch_size: int = EVENT_BATCH_SIZE,
        warm_up: str | None = None,
    ) -> None:
        self._inst_data = inst_data
        self._workers = workers
        self.max_runs_per_worker = max_runs_per_worker
        self.event_batch_size = event_batch_size
        self.warm_up = warm_up
        self._lock = threading.Lock()
        self._pool: list[multiprocessing.process.BaseProcess] = []
        self._tasks: Any = None  # a multiprocessing queue of run ids, made with the first launch
        self._idle: Any = None  # how many workers wait for a run (a shared counter)
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @property
    def workers(self) -> int:
        """Worker processes: `workers` if configured, else one per run the run queue lets run at once."""
        if self._workers is not None:
            return self._workers
        queue = self._instance.get_concurrency_config().run_queue_config
        if queue is None or queue.max_concurrent_runs < 1:  # no run queue, or an unlimited one
            raise dg.DagsterInvariantViolationError(
                "WarmRunLauncher needs `workers`, or a run queue with a positive max_concurrent_runs "
                "(`concurrency.runs.max_concurrent_runs` in dagster.yaml)"
            )
        return queue.max_concurrent_runs

    @classmethod
    def config_type(cls) -> dict:
        return {
            "workers": dg.Field(
                int,
                is_required=False,
                description="Warm worker processes; by default the run queue's max_concurrent_runs.",
            ),
            "max_runs_per_worker": dg.Field(
                int, default_value=500, description="Runs before a worker is replaced by a fresh one."
            ),
            "event_batch_size": dg.Field(
                int,
                default_value=EVENT_BATCH_SIZE,
                description=f"{EVENT_BATCH_ENV} in the workers: events a step may write in one insert.",
            ),
            "warm_up": dg.Field(
                str,
                is_required=False,
                description="`module:function` a worker calls once before its first run (load the models).",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    # --- launching -------------------------------------------------------------------------------------

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if run.job_code_origin is None:
            raise dg.DagsterInvariantViolationError(f"run {run.run_id} has no code origin to execute")
        with self._lock:
            self._replenish()
            self._tasks.put(run.run_id)
        self._instance.report_engine_event("Handed to a warm docflow worker.", run, cls=self.__class__)

    def _replenish(self) -> None:
        """Start a worker when none is idle, up to `workers` (the lock is held). On demand, not all at once:
        a worker warming up alone is ready sooner than four warming up together on a small machine."""
        spawn = multiprocessing.get_context("spawn")  # never fork a process with threads and connections
        if self._tasks is None:
            self._tasks, self._idle = spawn.Queue(), spawn.Value("i", 0)
        self._pool = [p for p in self._pool if p.is_alive()]
        if self._idle.value > 0 or len(self._pool) >= self.workers:
            return
        env = {EVENT_BATCH_ENV: str(self.event_batch_size)}
        worker = spawn.Process(
            target=_worker_main,
            args=(self._tasks, self._idle, self.max_runs_per_worker, env, self.warm_up),
            name="docflow-run-worker",
            daemon=True,
        )
        worker.start()
        self._pool.append(worker)

    def dispose(self) -> None:
        with self._lock:
            for worker in self._pool:
                worker.terminate()
            for worker in self._pool:
                worker.join(timeout=10)
            self._pool = []

    # --- termination and health --------------------------------------------------------------------------

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        worker = _worker_of(run)
        if worker is None:  # not picked up yet: the worker skips a canceling run
            return True
        worker.send_signal(signal.SIGINT)  # Dagster stops the run at the next step boundary, as canceled
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        # A worker tags a run before executing it, so a started run without the tag was executed by a process
        # of its own (`docflow run`, `dg launch`): as under Dagster's default launcher, that process reports
        # its end. Run monitoring fails a run whose status is anything but RUNNING or SUCCESS.
        if PID_TAG not in run.tags:
            return CheckRunHealthResult(status=WorkerStatus.RUNNING, msg="executed outside the warm workers")
        if run.tags.get(HOST_TAG) != socket.gethostname():
            return CheckRunHealthResult(
                status=WorkerStatus.RUNNING,
                msg=f"worker on host {run.tags.get(HOST_TAG)}, not watched from here",
            )
        if _worker_of(run) is None:
            return CheckRunHealthResult(
                status=WorkerStatus.FAILED, msg=f"worker process {run.tags[PID_TAG]} is gone"
            )
        return CheckRunHealthResult(status=WorkerStatus.RUNNING)


def _worker_of(run: dg.DagsterRun):
    """The live process executing `run` on this host, or None."""
    import psutil

    if PID_TAG not in run.tags or run.tags.get(HOST_TAG) != socket.gethostname():
        return None
    try:
        proc = psutil.Process(int(run.tags[PID_TAG]))
        if f"{proc.create_time():.2f}" != run.tags.get(STARTED_TAG) or proc.status() == psutil.STATUS_ZOMBIE:
            return None  # another process with a reused pid, or a dead worker its parent has not reaped yet
    except (psutil.Error, ValueError):
        return None
    return proc


# --- the worker process ----------------------------------------------------------------------------------


def _worker_main(tasks: Any, idle: Any, max_runs: int, env: Mapping[str, str], warm_up: str | None) -> None:
    """Warm up once, then execute the runs handed over, one at a time, until it executed `max_runs` (a run
    canceled while it waited for a worker does not count) or the end."""
    import psutil
    from dagster._cli.api import _execute_run_command_body
    from dagster._utils.interrupts import capture_interrupts

    os.environ.update(env)  # the rest (DAGSTER_HOME, DOCFLOW_*) is inherited from the launching process
    started = time.monotonic()
    instance = dg.DagsterInstance.get()
    if warm_up:
        _warm_up(warm_up)
    me = psutil.Process()
    print(f"docflow run worker {me.pid} ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    tags = {PID_TAG: str(me.pid), STARTED_TAG: f"{me.create_time():.2f}", HOST_TAG: socket.gethostname()}
    executed = 0
    while executed < max_runs:
        with idle.get_lock():
            idle.value += 1
        try:
            run_id = tasks.get()
        except (EOFError, OSError, KeyboardInterrupt):  # the launching process is gone or stopping
            return
        finally:
            with idle.get_lock():
                idle.value -= 1
        run = instance.get_run_by_id(run_id)
        if run is None or run.status != dg.DagsterRunStatus.STARTING:
            continue  # deleted or canceled while queued for a worker
        instance.add_run_tags(run_id, tags)
        executed += 1
        try:
            with capture_interrupts():
                _execute_run_command_body(
                    run_id=run_id,
                    instance=instance,
                    write_stream_fn=lambda _event: None,
                    set_exit_code_on_failure=False,
                )
        except KeyboardInterrupt:
            return  # interrupted outside a run's safe points: let a fresh worker take over


def _warm_up(target: str) -> None:
    """Call `module:function` (import the code location, load the models) before the first run needs it."""
    module, _, function = target.partition(":")
    with contextlib.suppress(Exception):  # a failure here surfaces in the first run, with its context
        getattr(importlib.import_module(module), function)()
