"""Thin typed clients. Unset fields fall back to Settings (env `DOCFLOW_*`); with nothing configured the
embedded Postgres and S3 are started on demand. AWS credentials come from boto3's usual chain (env, profile,
IRSA on Kubernetes), never from run config."""

import os
import threading

import dagster as dg

from docflow import runtime as docflow_runtime
from docflow.pipeline import Runtime
from docflow.settings import Settings

_runtimes: dict[tuple, Runtime] = {}
_lock = threading.Lock()


class DocflowResource(dg.ConfigurableResource):
    """Where docflow's tables and bucket live; `runtime()` gives the steps what they need."""

    database_url: str | None = None
    s3_endpoint_url: str | None = None
    bucket: str | None = None

    def runtime(self) -> Runtime:
        """One Runtime per process and configuration (these fields and the DOCFLOW_/AWS_ environment): every
        step of every run in a warm worker, and every sensor tick, reuses its clients instead of checking the
        services and migrations, opening a connection and making two S3 clients again. Keyed on the
        environment rather than on a `Settings()` read each time, which costs more than the lookup."""
        given = {"database_url": self.database_url, "s3_endpoint_url": self.s3_endpoint_url}
        given["bucket"] = self.bucket
        env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("DOCFLOW_", "AWS_"))))
        key = (tuple(given.items()), env)
        with _lock:
            if key not in _runtimes:
                _runtimes[key] = docflow_runtime.runtime(Settings(**{k: v for k, v in given.items() if v}))
            return _runtimes[key]
