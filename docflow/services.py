"""Turn settings into live clients: start the embedded services when nothing is configured, migrate once."""

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from docflow.bucket import Bucket
from docflow.pipeline import Runtime
from docflow.settings import Settings, get_settings
from docflow.store import Store

if TYPE_CHECKING:
    from dagster import DagsterInstance

EMBEDDED_S3_KEY = "docflow"  # the embedded SeaweedFS accepts any credentials; boto3 needs some


@lru_cache(maxsize=8)
def resolve_settings(settings: Settings) -> Settings:
    """Settings with every service URL filled in; the embedded ones are started (or reused) on demand."""
    if settings.database_url and settings.s3_endpoint_url:
        resolved = settings
    else:
        from docflow.embedded import ensure_services

        urls = ensure_services(settings)
        update: dict = {}
        if not settings.database_url:
            update["database_url"] = urls.database_url
            update["dagster_database_url"] = settings.dagster_database_url or urls.dagster_database_url
        if not settings.s3_endpoint_url:
            update["s3_endpoint_url"] = urls.s3_endpoint_url
            update["aws_access_key_id"] = EMBEDDED_S3_KEY
            update["aws_secret_access_key"] = SecretStr(EMBEDDED_S3_KEY)
        resolved = settings.model_copy(update=update)
    Store(resolved.database_url or "").migrate()
    bucket_for(resolved).ensure_bucket()
    return resolved


def bucket_for(s: Settings) -> Bucket:
    return Bucket(
        s.bucket,
        endpoint_url=None if s.s3_endpoint_url == "aws" else s.s3_endpoint_url,
        region=s.s3_region,
        access_key=s.aws_access_key_id,
        secret_key=s.aws_secret_access_key.get_secret_value() if s.aws_secret_access_key else None,
    )


def runtime(settings: Settings | None = None) -> Runtime:
    s = resolve_settings(settings or get_settings())
    return Runtime(store=Store(s.database_url or ""), bucket=bucket_for(s), settings=s)


REPO_ROOT = Path(__file__).resolve().parent.parent


def dagster_env(settings: Settings) -> dict[str, str]:
    """Environment for Dagster processes (webserver, daemon, code server, in-process runs).

    DAGSTER_HOME defaults to `<home>/dagster` holding a copy of the repository's dagster.yaml; the instance
    stores runs, events and partitions in Postgres (`DOCFLOW_DAGSTER_DATABASE_URL`), never SQLite."""
    from docflow.embedded import service_env

    s = resolve_settings(settings)
    env = service_env(settings)
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
    from dagster import DagsterInstance

    os.environ.update(dagster_env(settings))
    return DagsterInstance.get()


def configure_pools(settings: Settings) -> None:
    """Set the step pools' limits on the instance (docflow.defs.assets.POOLS). Also spares concurrent runs
    Dagster's race when each initialises an unconfigured pool to the default limit at once."""
    from docflow.defs.assets import POOLS

    instance = dagster_instance(settings)
    for pool, limit in POOLS.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
