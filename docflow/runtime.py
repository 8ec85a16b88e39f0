"""Turn settings into live clients: start the embedded services for whatever is not configured, migrate once,
and hand back a `Runtime` the caller keeps.

Nothing here knows Dagster: configuring Dagster's instance is docflow.orchestration.instance."""

from pathlib import Path

from pydantic import SecretStr

from docflow.bucket import Bucket
from docflow.pipeline import Runtime
from docflow.settings import Settings
from docflow.store import Store

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_S3_KEY = "docflow"  # the embedded SeaweedFS accepts any credentials; boto3 needs some


def resolve_settings(settings: Settings) -> Settings:
    """Settings with every service URL filled in, the embedded services started (or reused) for those not
    configured, the tables migrated and the bucket made. Not cached: callers keep the result (or the Runtime
    built from it) for as long as they need it."""
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
    Store(resolved.database_url or "").migrate(resolved.rules_path)
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
    """A Runtime on resolved settings (`Settings()` from the environment when none are given)."""
    s = resolve_settings(settings if settings is not None else Settings())
    return Runtime(store=Store(s.database_url or ""), bucket=bucket_for(s), settings=s)
