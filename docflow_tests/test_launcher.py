"""The production path end to end: objects in the bucket -> the real dagster-daemon (sensor, run queue) ->
runs executed by WarmRunLauncher's warm workers. In an environment of its own (own embedded Postgres, S3
and DAGSTER_HOME): the daemon's sensors must not see, run or reconcile the other tests' documents.

Each test holds a touchpoint of Dagster's private API the launcher uses (docflow/orchestration/compat.py):
runs executed through `_execute_run_command_body` in a reused worker, a worker replaced after its run
limit, Terminate (SIGINT under `capture_interrupts`) cancelling a running run, run monitoring's health
check, and the number of workers read from the run queue's `max_concurrent_runs`."""

import os
import signal
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from daemon import daemon_deployment

from docflow.orchestration.launcher import HOST_TAG, PID_TAG, WarmRunLauncher, WorkerStatus
from docflow.runtime import REPO_ROOT

SAMPLES = REPO_ROOT / "data" / "samples"


RUN_SLOTS = 3  # the instance's max_concurrent_runs in this test: the launcher's workers must follow it
RUNS_PER_WORKER = 2


@pytest.fixture(scope="module")
def daemon_env(tmp_path_factory, docflow_env):
    with daemon_deployment(tmp_path_factory.mktemp("launcher-home"), RUN_SLOTS, RUNS_PER_WORKER) as deployed:
        yield deployed


def _wait_done(rt, tenant: str, log: Path, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        docs = rt.store.list_documents(tenant=tenant)
        if docs and all(d.status in ("done", "failed") for d in docs):
            assert [d.status for d in docs] == ["done"] * len(docs), [d.error for d in docs]
            return
        time.sleep(0.5)
    raise AssertionError(f"not processed in {timeout_s} s; daemon log:\n{log.read_text()[-3000:]}")


def _run_of(instance, tenant: str, log: Path, statuses, timeout_s: float = 120) -> dg.DagsterRun:
    """The tenant's run once it has one of `statuses` (and, when running, its worker's pid)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in instance.get_runs(dg.RunsFilter(tags={"docflow/tenant": tenant}, statuses=statuses)):
            if run.status != dg.DagsterRunStatus.STARTED or PID_TAG in run.tags:
                return run
        time.sleep(0.1)
    raise AssertionError(
        f"no {statuses} run for {tenant} in {timeout_s} s; daemon log:\n{log.read_text()[-3000:]}"
    )


def _process_one(rt, instance, log: Path, tenant: str, text: str) -> dg.DagsterRun:
    rt.bucket.put_bytes(f"incoming/{tenant}/receipt.txt", text.encode())
    _wait_done(rt, tenant, log)
    # a document is done inside its run's last step: wait for the run to end
    return _run_of(instance, tenant, log, [dg.DagsterRunStatus.SUCCESS], timeout_s=60)


def _alive(pid: str) -> bool:
    import psutil

    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_workers_follow_the_run_queues_limit(daemon_env) -> None:
    _, instance, _ = daemon_env
    assert isinstance(instance.run_launcher, WarmRunLauncher)
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == RUN_SLOTS
    assert instance.run_launcher.workers == RUN_SLOTS
    assert instance.run_launcher.max_runs_per_worker == RUNS_PER_WORKER


def test_runs_execute_in_a_reused_warm_worker_replaced_after_its_run_limit(daemon_env) -> None:
    rt, instance, log = daemon_env
    sample = (SAMPLES / "receipt-corner-cafe.txt").read_text()
    runs = []
    for i in range(RUNS_PER_WORKER + 1):  # one at a time: each goes to the idle worker, if there is one
        runs.append(_process_one(rt, instance, log, f"warm{i}", f"{sample}\n\nNumber {i}\n"))
    pids = [run.tags[PID_TAG] for run in runs]
    assert str(os.getpid()) not in pids
    first = pids[0]
    assert pids[:RUNS_PER_WORKER] == [first] * RUNS_PER_WORKER  # reused while under its limit
    assert pids[RUNS_PER_WORKER] != first  # then a fresh worker took the next run
    deadline = time.monotonic() + 30
    while _alive(first) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(first)  # the worker at its limit left


@pytest.mark.xfail(
    reason="open bug: on a quiet machine the terminated run went on to SUCCESS, and with a ten times longer "
    "document it had not ended 120 s after Terminate; passed on a loaded one. Not yet understood",
    strict=False,
)
def test_terminate_from_the_ui_cancels_a_run_in_a_warm_worker(daemon_env) -> None:
    rt, instance, log = daemon_env
    paragraph = (SAMPLES / "resume-jane-doe.md").read_text()
    long_text = "\n\n".join(f"## Part {i}\n\n{paragraph}" for i in range(300))  # a run of many seconds
    rt.bucket.put_bytes("incoming/stop/long.md", long_text.encode())
    running = _run_of(instance, "stop", log, [dg.DagsterRunStatus.STARTED], timeout_s=900)
    worker = running.tags[PID_TAG]
    # the UI's Terminate calls the instance's run launcher (the webserver's own WarmRunLauncher, no pool)
    assert instance.run_launcher.terminate(running.run_id)
    ended = _run_of(
        instance,
        "stop",
        log,
        [dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
        timeout_s=120,
    )
    assert ended.status == dg.DagsterRunStatus.CANCELED, log.read_text()[-3000:]
    assert ended.tags[PID_TAG] == worker
    assert rt.store.list_documents(tenant="stop")[0].status != "done"


def test_a_run_whose_worker_died_is_reported_to_run_monitoring(daemon_env) -> None:
    rt, instance, log = daemon_env
    sample = (SAMPLES / "receipt-corner-cafe.txt").read_text()
    run = _process_one(rt, instance, log, "health", f"{sample}\n\nHealth check\n")
    launcher = instance.run_launcher
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING  # its worker waits for more
    os.kill(int(run.tags[PID_TAG]), signal.SIGKILL)
    time.sleep(1)
    health = launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED and "is gone" in (health.msg or "")


def test_a_run_executed_outside_the_workers_is_not_failed_by_run_monitoring(instance) -> None:
    """`docflow run` and `dg launch` execute runs in their own process while the daemon may be watching."""
    run = dg.DagsterRun(
        job_name="process_documents", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED
    )
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    elsewhere = dg.DagsterRun(
        job_name="process_documents",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: "1", HOST_TAG: "another-host"},
    )
    assert instance.run_launcher.check_run_worker_health(elsewhere).status == WorkerStatus.RUNNING
