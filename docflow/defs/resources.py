"""Thin typed clients. Unset fields fall back to Settings (env `DOCFLOW_*`); with nothing configured the
embedded Postgres and S3 are started on demand. AWS credentials come from boto3's usual chain (env, profile,
IRSA on Kubernetes), never from run config."""

import dagster as dg

from docflow import services
from docflow.pipeline import Runtime
from docflow.settings import Settings


class DocflowResource(dg.ConfigurableResource):
    """Where docflow's tables and bucket live; `runtime()` gives the steps what they need."""

    database_url: str | None = None
    s3_endpoint_url: str | None = None
    bucket: str | None = None

    def runtime(self) -> Runtime:
        given = {"database_url": self.database_url, "s3_endpoint_url": self.s3_endpoint_url}
        given["bucket"] = self.bucket
        return services.runtime(Settings(**{k: v for k, v in given.items() if v}))
