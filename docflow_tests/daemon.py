"""A production deployment of its own for a test module: embedded Postgres and S3, a DAGSTER_HOME with the
repository's dagster.yaml (a few values changed for the test) and the real dagster-daemon (sensors, run
queue, WarmRunLauncher's workers). Its own services so that the daemon's sensors never see, run or reconcile
the other tests' documents."""

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml
from ports import free_block

from docflow.embedded import stop_services
from docflow.orchestration.instance import dagster_env
from docflow.orchestration.processes import daemon_command
from docflow.pipeline import Runtime
from docflow.runtime import REPO_ROOT, runtime
from docflow.settings import Settings


@contextmanager
def daemon_deployment(
    home: Path, run_slots: int, runs_per_worker: int = 500
) -> Iterator[tuple[Runtime, dg.DagsterInstance, Path]]:
    """(runtime, instance, daemon log) of a deployment whose run queue starts `run_slots` runs at once."""
    port = free_block(10)
    settings = Settings(  # explicit Nones: the session's service URLs in the environment must not apply
        home=home,
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
    config_path = Path(env["DAGSTER_HOME"]) / "dagster.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = run_slots
    config["run_launcher"]["config"]["max_runs_per_worker"] = runs_per_worker
    # a fresh worker warms up (imports, models) before its run starts: minutes on a loaded test machine
    config["run_monitoring"]["start_timeout_seconds"] = 900
    config_path.write_text(yaml.safe_dump(config))
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
