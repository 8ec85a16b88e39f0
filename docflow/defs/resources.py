"""Thin typed clients. Unset fields fall back to Settings (env `DOCFLOW_*`); with nothing configured the
embedded Postgres and S3 are started on demand. AWS credentials come from boto3's usual chain (env, profile,
IRSA on Kubernetes), never from run config."""

import threading

import dagster as dg
from pydantic import PrivateAttr

from docflow import runtime as docflow_runtime
from docflow.pipeline import Runtime
from docflow.settings import Settings

_runtimes: dict[Settings, Runtime] = {}
_lock = threading.Lock()


class DocflowResource(dg.ConfigurableResource):
    """Where docflow's tables and bucket live; `runtime()` gives the steps what they need."""

    database_url: str | None = None
    s3_endpoint_url: str | None = None
    bucket: str | None = None

    _settings: Settings | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._settings = self.settings()  # read once per run (or sensor tick), for every step of it

    def settings(self) -> Settings:
        """Settings from the environment, with this resource's fields over them."""
        given = {"database_url": self.database_url, "s3_endpoint_url": self.s3_endpoint_url}
        given["bucket"] = self.bucket
        return Settings(**{k: v for k, v in given.items() if v})

    def runtime(self) -> Runtime:
        """One Runtime per process and settings value: every run in a warm worker, and every sensor tick,
        reuses its clients instead of checking the services and migrations, opening a connection and making
        two S3 clients again. Other settings (a changed environment) get a Runtime of their own."""
        settings = self._settings if self._settings is not None else self.settings()
        with _lock:
            if settings not in _runtimes:
                _runtimes[settings] = docflow_runtime.runtime(settings)
            return _runtimes[settings]
