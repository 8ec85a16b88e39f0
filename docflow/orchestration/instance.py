"""Configure Dagster's instance for docflow: the environment its processes run in, the instance docflow's
CLI records runs in, and the step pools' limits."""

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from docflow.runtime import REPO_ROOT, resolve_settings
from docflow.settings import Settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

# Dagster writes a step's batched events (orchestration/events.py) in one insert only when this variable is
# set in the process that executes the step; it is set where docflow starts Dagster processes.
EVENT_BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 100


def event_batch_env(size: int = EVENT_BATCH_SIZE) -> dict[str, str]:
    return {EVENT_BATCH_ENV: str(size)}


def dagster_env(settings: Settings) -> dict[str, str]:
    """Environment for Dagster processes (webserver, daemon, code server, in-process runs).

    DAGSTER_HOME defaults to `<home>/dagster` holding a copy of the repository's dagster.yaml; the instance
    stores runs, events and partitions in Postgres (`DOCFLOW_DAGSTER_DATABASE_URL`), never SQLite.
    Event batching is set here, for every process started with this environment."""
    from docflow.embedded import service_env

    s = resolve_settings(settings)
    env = service_env(settings) | event_batch_env()
    env["DOCFLOW_DAGSTER_DATABASE_URL"] = sqlalchemy_psycopg2_url(env["DOCFLOW_DAGSTER_DATABASE_URL"])
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        path = (s.home / "dagster").resolve()
        path.mkdir(parents=True, exist_ok=True)
        config = (REPO_ROOT / "dagster.yaml").read_text()
        target = path / "dagster.yaml"
        if not target.exists() or target.read_text() != config:
            target.write_text(config)
        home = str(path)
    env["DAGSTER_HOME"] = home
    return env


def sqlalchemy_psycopg2_url(url: str) -> str:
    """dagster-postgres speaks SQL that only psycopg2 accepts; SQLAlchemy >= 2.1 picks psycopg 3 for a plain
    `postgresql://` URL, so name the driver explicitly."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme) :]
    return url


def dagster_instance(settings: Settings) -> "DagsterInstance":
    """The Dagster instance docflow's CLI records its runs in (the same one the UI shows)."""
    return open_instance(dagster_env(settings))


def open_instance(env: Mapping[str, str]) -> "DagsterInstance":
    """The instance of an environment made by `dagster_env`, for a caller that also hands that environment
    to the processes it starts (so the services are checked and migrated once)."""
    from dagster import DagsterInstance

    os.environ.update(env)
    return DagsterInstance.get()


def configure_pools(instance: "DagsterInstance", pools: Mapping[str, int]) -> None:
    """Set the step pools' limits on the instance (docflow.defs.assets.POOLS). Also spares concurrent runs
    Dagster's race when each initialises an unconfigured pool to the default limit at once."""
    for pool, limit in pools.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
