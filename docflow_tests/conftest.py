"""Session fixtures: real embedded Postgres (pgserver) and S3 (SeaweedFS) in a temp dir, a real Dagster
instance on that Postgres. Started once per test session, on free ports so a `make dev` can keep running."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import free_block

EVAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev"


@pytest.fixture(scope="session")
def docflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start the embedded services for this session and point every `Settings()` and Dagster at them."""
    from docflow.embedded import stop_services
    from docflow.orchestration.instance import dagster_env
    from docflow.settings import Settings

    home = tmp_path_factory.mktemp("docflow-home")
    pg_port = free_block(10)  # Postgres on the first port, SeaweedFS on the 9 after it (+10008)
    s3_port = pg_port + 1
    base = Settings(home=home, embedded_pg_port=pg_port, embedded_s3_port=s3_port, bucket="docflow-test")
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("DOCFLOW_") or key == "DAGSTER_HOME":
            del os.environ[key]
    os.environ.update(
        {
            "DOCFLOW_HOME": str(home),
            "DOCFLOW_BUCKET": "docflow-test",
            "DOCFLOW_EMBEDDED_PG_PORT": str(pg_port),
            "DOCFLOW_EMBEDDED_S3_PORT": str(s3_port),
            # the session's bucket collects thousands of objects: a sensor tick lists it whole, as the
            # tests expect, and registers every new object; both budgets are tested with values of their own
            "DOCFLOW_SENSOR_LIST_BUDGET_S": "600",
            "DOCFLOW_SENSOR_WORK_BUDGET_S": "600",
        }
    )
    env = dagster_env(base)
    os.environ.update(env)
    try:
        yield env
    finally:
        stop_services(base)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def rt(docflow_env):
    from docflow.runtime import runtime

    return runtime()


@pytest.fixture(scope="session")
def instance(docflow_env):
    import dagster as dg

    inst = dg.DagsterInstance.get()
    yield inst
    inst.dispose()


@pytest.fixture(scope="session")
def eval_dev() -> Path:
    if not EVAL_DEV.exists():
        pytest.skip(f"the shared eval set is not at {EVAL_DEV}")
    return EVAL_DEV
