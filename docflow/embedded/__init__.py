"""On-demand local services for the zero-config default: Postgres + pgvector (pgserver) and S3 (SeaweedFS).

Whatever is configured (`DOCFLOW_DATABASE_URL`, `DOCFLOW_S3_ENDPOINT_URL`) is used as is; whatever is not
is started here, detached, with its data under `settings.home` (`pg/`, `s3/`), and reused by later calls.
"""

from dataclasses import dataclass
from pathlib import Path

from docflow.embedded.postgres import ensure_postgres, postgres_url, stop_postgres
from docflow.embedded.s3 import ACCESS_KEY, SECRET_KEY, ensure_s3, stop_s3
from docflow.settings import Settings


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    dagster_database_url: str
    s3_endpoint_url: str | None  # None = AWS S3 (settings.s3_endpoint_url == "aws")


def home_dir(settings: Settings) -> Path:
    """settings.home as an absolute path (relative homes are relative to the current directory)."""
    return settings.home.expanduser().resolve()


def ensure_services(settings: Settings) -> ServiceUrls:
    """The URLs to use, starting (or reusing) the embedded services for whatever is not configured."""
    home = home_dir(settings)
    if settings.database_url:
        database_url = settings.database_url
        dagster_url = settings.dagster_database_url or database_url
    else:
        database_url = ensure_postgres(home, settings.embedded_pg_port)
        dagster_url = settings.dagster_database_url or postgres_url(settings.embedded_pg_port, "dagster")
    if settings.s3_endpoint_url:
        s3_endpoint: str | None = None if settings.s3_endpoint_url == "aws" else settings.s3_endpoint_url
    else:
        s3_endpoint = ensure_s3(home, settings.embedded_s3_port, settings.bucket)
    return ServiceUrls(database_url, dagster_url, s3_endpoint)


def stop_services(settings: Settings) -> list[str]:
    """Stop the embedded services running for settings.home; the names of those that were running."""
    home = home_dir(settings)
    stopped = []
    if stop_s3(home):
        stopped.append("s3")
    if stop_postgres(home):
        stopped.append("postgres")
    return stopped


def service_env(settings: Settings) -> dict[str, str]:
    """Environment variables that point child processes (Dagster, the API) at the same services."""
    urls = ensure_services(settings)
    env = {
        "DOCFLOW_DATABASE_URL": urls.database_url,
        "DOCFLOW_DAGSTER_DATABASE_URL": urls.dagster_database_url,
    }
    if settings.embedded_s3:
        embedded = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        return env | {"DOCFLOW_S3_ENDPOINT_URL": urls.s3_endpoint_url or ""} | embedded
    env["DOCFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url or ""  # as configured, "aws" included
    if settings.aws_access_key_id:
        env["AWS_ACCESS_KEY_ID"] = settings.aws_access_key_id
    if settings.aws_secret_access_key:
        env["AWS_SECRET_ACCESS_KEY"] = settings.aws_secret_access_key.get_secret_value()
    return env


__all__ = ["ServiceUrls", "ensure_services", "home_dir", "service_env", "stop_services"]
