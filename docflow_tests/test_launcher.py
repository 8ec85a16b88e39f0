"""The production path end to end: objects in the bucket -> the real dagster-daemon (sensor, run queue) ->
runs executed by WarmRunLauncher's warm workers. In an environment of its own (own embedded Postgres, S3
and DAGSTER_HOME): the daemon's sensors must not see, run or reconcile the other tests' documents."""

import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest
from ports import free_block

from docflow.embedded import stop_services
from docflow.orchestration.instance import dagster_env
from docflow.orchestration.launcher import PID_TAG, WarmRunLauncher, WorkerStatus
from docflow.orchestration.processes import daemon_command
from docflow.runtime import REPO_ROOT, runtime
from docflow.settings import Settings

SAMPLES = REPO_ROOT / "data" / "samples"


@pytest.fixture(scope="module")
def daemon_env(tmp_path_factory, docflow_env):
    port = free_block(10)
    settings = Settings(  # explicit Nones: the session's service URLs in the environment must not apply
        home=tmp_path_factory.mktemp("launcher-home"),
        embedded_pg_port=port,
        embedded_s3_port=port + 1,
        database_url=None,
        dagster_database_url=None,
        s3_endpoint_url=None,
    )
    saved = os.environ.pop("DAGSTER_HOME")
    try:
        env = dagster_env(settings)
    finally:
        os.environ["DAGSTER_HOME"] = saved
    env = {
        **os.environ,
        **env,
        "DOCFLOW_HOME": str(settings.home),
        "DOCFLOW_EMBEDDED_PG_PORT": str(port),
        "DOCFLOW_EMBEDDED_S3_PORT": str(port + 1),
        "DOCFLOW_BUCKET": settings.bucket,
        "DOCFLOW_SENSOR_INTERVAL_S": "1",
    }
    log = Path(env["DAGSTER_HOME"]) / "daemon.log"
    daemon = subprocess.Popen(
        daemon_command(REPO_ROOT / "workspace.yaml"),
        env=env,
        cwd=REPO_ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    saved_url = os.environ["DOCFLOW_DAGSTER_DATABASE_URL"]
    os.environ["DOCFLOW_DAGSTER_DATABASE_URL"] = env["DOCFLOW_DAGSTER_DATABASE_URL"]
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    try:
        yield runtime(settings), instance, log
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        instance.dispose()
        os.environ["DOCFLOW_DAGSTER_DATABASE_URL"] = saved_url
        stop_services(settings)


def _wait_done(rt, tenant: str, log: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        docs = rt.store.list_documents(tenant=tenant)
        if docs and all(d.status in ("done", "failed") for d in docs):
            assert [d.status for d in docs] == ["done"] * len(docs), [d.error for d in docs]
            return
        time.sleep(0.5)
    raise AssertionError(f"not processed in {timeout_s} s; daemon log:\n{log.read_text()[-3000:]}")


def test_the_daemon_runs_documents_in_warm_reused_workers(daemon_env) -> None:
    rt, instance, log = daemon_env
    assert isinstance(instance.run_launcher, WarmRunLauncher)
    workers = instance.run_launcher.workers
    sample = (SAMPLES / "receipt-corner-cafe.txt").read_text()
    tenants = [f"warm{i}" for i in range(workers + 1)]
    for i, tenant in enumerate(tenants):  # one at a time: each its own run, on whichever worker is idle
        rt.bucket.put_bytes(f"incoming/{tenant}/receipt.txt", f"{sample}\n\nNumber {i}\n".encode())
        _wait_done(rt, tenant, log)

    deadline = time.monotonic() + 60  # a document is done inside its run's last step: let the runs end
    while time.monotonic() < deadline:
        runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
        pids = [r.tags[PID_TAG] for r in runs if r.tags.get("docflow/tenant") in tenants]
        if len(pids) == len(tenants):
            break
        time.sleep(0.5)
    assert len(pids) == len(tenants)
    assert len(set(pids)) <= workers < len(pids)  # more runs than workers: some worker ran two
    assert str(os.getpid()) not in pids

    # a run whose worker is gone is reported failed to run monitoring (which fails and retries it)
    launcher = instance.run_launcher
    run = runs[0]
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    os.kill(int(run.tags[PID_TAG]), signal.SIGKILL)
    time.sleep(1)
    health = launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED and "is gone" in (health.msg or "")
