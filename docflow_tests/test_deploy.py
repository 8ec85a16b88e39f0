"""Deployment files (docker/): the compose stack, its Dagster instance, the image and the Helm values are
valid and agree with the code. Docker and Helm cannot run here, so the files are parsed and cross-checked,
Dagster's own config schemas validate the instance configs, and `dagster definitions validate` loads the
code location with production-like settings against the session's real Postgres and S3."""

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import pytest
import yaml

from docflow.defs.assets import POOLS, build_assets
from docflow.orchestration.deployment import config_errors, dagster_command, instance_config
from docflow.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
VENV_BIN = Path(sys.executable).parent
DOCFLOW_SERVICES = ["init", "docflow-code", "dagster-webserver", "dagster-daemon", "api"]
# Variables the deployment files may set besides docflow's own settings.
NON_SETTINGS_ENV = {
    "DAGSTER_HOME",
    "DAGSTER_EVENT_BATCH_SIZE",
    "DAGSTER_CURRENT_IMAGE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "API_DB_PASSWORD",  # read by the init service's one-liner that sets the docflow_api role's password
}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Compose's ${VAR:-default} with nothing set: what `docker compose config` shows on a fresh checkout."""
    if isinstance(value, str):
        return INTERPOLATION.sub(lambda m: m.group(2) or "", value.replace("$$", "\0")).replace("\0", "$")
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _interpolate(yaml.safe_load((DOCKER / "docker-compose.yml").read_text()))


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "k8s" / "values.yaml").read_text())


def _settings_env_name(name: str) -> str | None:
    """The Settings field an environment variable sets, or None."""
    if not name.startswith("DOCFLOW_"):
        return None
    field = name.removeprefix("DOCFLOW_").lower()
    return field if field in Settings.model_fields else None


def _assert_docflow_env(env: Mapping[str, str], where: str) -> Settings:
    unknown = [k for k in env if k not in NON_SETTINGS_ENV and _settings_env_name(k) is None]
    assert not unknown, f"{where} sets variables that are no docflow setting: {unknown}"
    fields = {_settings_env_name(k): v for k, v in env.items() if _settings_env_name(k)}
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]  # validates the values too


def _command(service: Mapping[str, Any]) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def _option(argv: list[str], *names: str) -> str:
    for i, arg in enumerate(argv):
        if arg in names:
            return argv[i + 1]
    raise AssertionError(f"none of {names} in {argv}")


def _mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """container path -> host path of the service's bind mounts (relative to docker/)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out[target] = (DOCKER / source).resolve()
        elif source.startswith("/"):
            out[target] = Path(source)  # a host path (the Docker socket)
    return out


# ---------------------------------------------------------------------------------------------------------
# docker compose


def test_compose_defines_the_stack_with_health_checks_and_volumes(compose) -> None:
    services = compose["services"]
    assert set(services) >= {"postgres", "minio", "minio-init", *DOCFLOW_SERVICES}
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    for name in ["postgres", "minio", "docflow-code", "dagster-webserver", "dagster-daemon"]:
        assert services[name]["healthcheck"]["test"], name
    assert {"pgdata", "miniodata"} <= set(compose["volumes"])
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"])
    assert any(v.startswith("miniodata:") for v in services["minio"]["volumes"])
    for name in DOCFLOW_SERVICES:
        service = services[name]
        build = service["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        assert service["image"] == services["docflow-code"]["image"]
        for target, source in _mounts(service).items():
            if source.is_relative_to(ROOT):
                assert source.exists(), f"{name} mounts {source}, which does not exist"
                assert target.startswith(service["environment"]["DAGSTER_HOME"] + "/")
            else:
                assert source == Path("/var/run/docker.sock") == Path(target)
    # one-shot services finish before the services that need them start
    daemon_deps = services["dagster-daemon"]["depends_on"]
    assert daemon_deps["init"]["condition"] == "service_completed_successfully"
    assert daemon_deps["docflow-code"]["condition"] == "service_healthy"
    assert (
        services["docflow-code"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    )


def test_compose_environment_is_docflow_settings_and_services_agree(compose) -> None:
    services = compose["services"]
    for name in DOCFLOW_SERVICES:
        _assert_docflow_env(services[name]["environment"], f"compose service {name}")
    env = services["dagster-daemon"]["environment"]
    settings = _assert_docflow_env(env, "daemon")
    assert settings.executor == "in_process"
    pg = services["postgres"]["environment"]
    for key in ("DOCFLOW_DATABASE_URL", "DOCFLOW_DAGSTER_DATABASE_URL"):
        url = urlsplit(env[key])
        assert (url.hostname, url.port, url.path) == ("postgres", 5432, "/" + pg["POSTGRES_DB"])
        assert (url.username, url.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
    assert env["DOCFLOW_DAGSTER_DATABASE_URL"].startswith("postgresql+psycopg2://")
    s3 = urlsplit(env["DOCFLOW_S3_ENDPOINT_URL"])
    assert s3.hostname == "minio" and str(s3.port) in " ".join(services["minio"]["ports"])
    minio = services["minio"]["environment"]
    assert env["DOCFLOW_AWS_ACCESS_KEY_ID"] == env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["DOCFLOW_AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert services["minio-init"]["environment"]["DOCFLOW_BUCKET"] == env["DOCFLOW_BUCKET"]
    assert "mc mb" in " ".join(_command(services["minio-init"]))
    # the image the Docker run launcher starts runs in is the code location's own image
    code = services["docflow-code"]
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == code["image"]


def test_env_example_names_only_real_settings_used_by_compose() -> None:
    text = (DOCKER / "docker-compose.yml").read_text()
    referenced = {m.group(1) for m in INTERPOLATION.finditer(text)}
    example = dict(
        line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines() if "=" in line
    )
    assert set(example) <= referenced, set(example) - referenced
    assert {k for k in referenced if k.startswith("DOCFLOW_")} <= set(example)
    _assert_docflow_env({k: v for k, v in example.items() if k.startswith("DOCFLOW_")}, ".env.example")


def test_compose_workspace_points_at_the_code_server(compose) -> None:
    services = compose["services"]
    code_cmd = _command(services["docflow-code"])
    assert code_cmd[:3] == ["dagster", "code-server", "start"]
    assert _option(code_cmd, "-m", "--module-name") == "docflow.definitions"
    port = _option(code_cmd, "-p", "--port")
    assert services["docflow-code"]["healthcheck"]["test"][-1] == port
    (server,) = [
        e["grpc_server"] for e in yaml.safe_load((DOCKER / "workspace.yaml").read_text())["load_from"]
    ]
    assert (server["host"], str(server["port"])) == ("docflow-code", port)
    (dev,) = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert server["location_name"] == dev["python_module"]["location_name"]
    assert dev["python_module"]["module_name"] == "docflow.definitions"
    for name, program in [("dagster-webserver", "dagster-webserver"), ("dagster-daemon", "dagster-daemon")]:
        argv = _command(services[name])
        assert argv[0] == program
        workspace = _option(argv, "-w", "--workspace")
        assert _mounts(services[name])[workspace] == DOCKER / "workspace.yaml"
        assert _mounts(services[name])["/var/run/docker.sock"]


def test_compose_init_sets_a_limit_for_every_pool_the_assets_use(compose) -> None:
    script = " ".join(_command(compose["services"]["init"]))
    assert "dagster instance migrate" in script
    limits = dict(re.findall(r"dagster instance concurrency set (\S+) (\d+)", script))
    assert set(limits) == set(POOLS) == {a.node_def.pool for a in build_assets(get_settings())}
    assert all(int(v) >= _max_runs(DOCKER / "dagster.yaml") for v in limits.values()), limits


def _max_runs(dagster_yaml: Path) -> int:
    return yaml.safe_load(dagster_yaml.read_text())["concurrency"]["runs"]["max_concurrent_runs"]


def test_no_pool_lets_one_tenants_batch_runs_block_the_others() -> None:
    """A batch run holds a pool slot for a whole batch step: a pool smaller than the runs that may execute
    at once makes the other tenants' steps wait for a bulk load's batches (docflow bench fairness)."""
    assert all(limit >= _max_runs(ROOT / "dagster.yaml") for limit in POOLS.values()), POOLS


def test_api_service_starts_with_the_stack_as_the_row_level_security_role(compose) -> None:
    from docflow.cli import cli

    api = compose["services"]["api"]
    assert _command(api) == ["docflow", "api", "--host", "0.0.0.0", "--port", "8000"]
    assert "8000:8000" in api["ports"]
    assert "api" in cli.commands and "profiles" not in api  # the API ships: it starts with the stack
    assert api["environment"]["DOCFLOW_API_DATABASE_URL"].startswith("postgresql://docflow_api:")


def _compose_instance_dir(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    return home


def test_compose_dagster_yaml_validates_with_dagsters_instance_schema(compose, tmp_path) -> None:
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_docker import DockerRunLauncher

    config = instance_config(str(_compose_instance_dir(tmp_path)))
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert config_errors(DockerRunLauncher, launcher["config"]) == []
    logs = config["compute_logs"]
    assert config_errors(S3ComputeLogManager, logs["config"]) == []
    for kind in ("run_storage", "event_log_storage", "schedule_storage"):
        storage = config[kind]
        cls = getattr(importlib.import_module(storage["module"]), storage["class"])
        assert config_errors(cls, storage["config"]) == []
        assert storage["config"]["postgres_url"] == {"env": "DOCFLOW_DAGSTER_DATABASE_URL"}
    runs = config["concurrency"]["runs"]
    assert config_errors(dg.QueuedRunCoordinator, {"max_concurrent_runs": runs["max_concurrent_runs"]}) == []
    assert [t["key"] for t in runs["tag_concurrency_limits"]] == ["docflow/tenant", "dagster/backfill"]
    # the launcher's network is the compose network; every variable it copies into a run container is set
    # in the daemon (the launcher raises for a missing one) and is a docflow/AWS setting
    assert launcher["config"]["network"] == compose["networks"]["docflow"]["name"]
    daemon_env = compose["services"]["dagster-daemon"]["environment"]
    missing = [v for v in launcher["config"]["env_vars"] if v not in daemon_env]
    assert not missing, f"the daemon does not set {missing}"
    _assert_docflow_env({v: daemon_env[v] for v in launcher["config"]["env_vars"]}, "run_launcher.env_vars")


def test_compose_instance_loads_on_real_postgres_with_its_launcher_and_log_manager(
    docflow_env, tmp_path, monkeypatch
) -> None:
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_docker import DockerRunLauncher

    monkeypatch.setenv("DOCFLOW_S3_REGION", "us-east-1")
    instance = dg.DagsterInstance.from_config(str(_compose_instance_dir(tmp_path)))
    try:
        assert isinstance(instance.run_launcher, DockerRunLauncher)
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
        assert instance.get_runs_count() >= 0  # the Postgres run storage answers
    finally:
        instance.dispose()


# ---------------------------------------------------------------------------------------------------------
# the image


def _dockerfile() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_dockerfile_is_multi_stage_non_root_and_copies_files_that_exist() -> None:
    lines = _dockerfile()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) >= 2 and "slim" in stages[-1]
    final = lines[lines.index(stages[-1]) :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    ignored = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the build context"
                assert source.rstrip("/") not in ignored, f"COPY {source} is excluded by .dockerignore"
    for name in ["docflow", "data", "pyproject.toml", "README.md", "workspace.yaml"]:
        assert any(line.startswith("COPY ") and f" {name}" in line for line in lines), name
    # torch: the same CPU build the Makefile pins
    makefile_pin = re.search(r"torch==([\w.+]+)", (ROOT / "Makefile").read_text()).group(1)
    assert f"ARG TORCH_VERSION={makefile_pin}" in lines
    extras = re.search(r"ARG EXTRAS=(\S+)", "\n".join(lines)).group(1).split(",")
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) <= set(declared)


def test_the_images_entrypoints_exist(compose) -> None:
    cmd = json.loads(next(line for line in _dockerfile() if line.startswith("CMD "))[4:])
    assert cmd == _command(compose["services"]["docflow-code"])
    programs = {cmd[0]} | {_command(compose["services"][s])[0] for s in DOCFLOW_SERVICES if s != "init"}
    for program in programs:
        assert (VENV_BIN / program).exists(), f"{program} is not installed"
    for argv in (["code-server", "start"], ["api", "grpc"], ["api", "grpc-health-check"],
                 ["instance", "migrate"], ["instance", "concurrency", "set"]):  # fmt: skip
        dagster_command(*argv)  # KeyError if Dagster renamed the command
    import importlib

    assert callable(importlib.import_module("docflow.definitions").defs)  # what -m docflow.definitions loads


# ---------------------------------------------------------------------------------------------------------
# Kubernetes: values for Dagster's Helm chart


def _user_deployment(values) -> dict[str, Any]:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def test_helm_values_run_docflow_with_the_k8s_launcher_and_executor(values) -> None:
    deployment = _user_deployment(values)
    assert values["dagster-user-deployments"]["enabled"] is True
    args = deployment.get("codeServerArgs") or deployment["dagsterApiGrpcArgs"]
    assert args == ["-m", "docflow.definitions"]
    settings = _assert_docflow_env(deployment["env"], "helm user deployment env")
    assert settings.executor == "k8s" and settings.s3_endpoint_url
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    secrets = {s["name"] for s in deployment["envSecrets"]}
    assert secrets and secrets == {s["name"] for s in launcher["envSecrets"]}
    uid = int(re.search(r"ARG UID=(\d+)", (DOCKER / "Dockerfile").read_text()).group(1))
    assert deployment["podSecurityContext"]["runAsUser"] == uid
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    queued = values["dagsterDaemon"]["runCoordinator"]
    assert queued["enabled"] and queued["type"] == "QueuedRunCoordinator"
    limits = queued["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert [t["key"] for t in limits] == ["docflow/tenant", "dagster/backfill"]
    assert '"docflow/tenant"' in (ROOT / "docflow" / "defs" / "sensors.py").read_text()


def _render_instance(values) -> dict[str, Any]:
    """The dagster.yaml the chart renders from these values (helpers/instance/*.tpl), for the parts set."""
    pg = values["postgresql"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]

    def snake(name: str) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()

    postgres_db = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg["postgresqlParams"],
        "scheme": pg["postgresqlScheme"],
    }
    k8s = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": "docflow",
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": values["serviceAccount"]["name"],
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}]
        + [c["name"] for c in launcher["envConfigMaps"]],
        "env_secrets": [s["name"] for s in launcher["envSecrets"]],
        "fail_pod_on_run_failure": launcher["failPodOnRunFailure"],
        "resources": launcher["resources"],
    }
    return {
        "storage": {"postgres": {"postgres_db": postgres_db}},
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": k8s},
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {snake(k): v for k, v in queued.items()},
        },
        "run_monitoring": {snake(k): v for k, v in monitoring.items()},
        "sensors": {snake(k): v for k, v in values["dagsterDaemon"]["sensors"].items()},
        "telemetry": values["telemetry"],
    }


def test_helm_instance_config_validates_with_dagsters_schemas(values, tmp_path) -> None:
    from dagster_k8s import K8sRunLauncher

    rendered = _render_instance(values)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(rendered))
    config = instance_config(str(tmp_path))
    assert config_errors(K8sRunLauncher, config["run_launcher"]["config"]) == []
    assert config_errors(dg.QueuedRunCoordinator, config["run_coordinator"]["config"]) == []
    # the URL dagster-postgres builds from postgres_db names the psycopg2 driver
    from dagster_postgres.utils import pg_url_from_config

    postgres_db = {**config["storage"]["postgres"]["postgres_db"], "password": "secret"}
    assert pg_url_from_config({"postgres_db": postgres_db}).startswith("postgresql+psycopg2://")


@pytest.fixture
def k8s_executor_env(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("DOCFLOW_EXECUTOR", "k8s")  # read by the definitions when they are built
    yield


def test_k8s_executor_loads_with_the_definitions_and_accepts_every_assets_op_tags(k8s_executor_env) -> None:
    from dagster_k8s import k8s_job_executor
    from dagster_k8s.job import get_user_defined_k8s_config

    from docflow.defs import build_defs

    job = build_defs(get_settings()).resolve_job_def("process_documents")
    assert job.executor_def is k8s_job_executor
    for asset in build_assets(get_settings()):
        tags = {k: v if isinstance(v, str) else json.dumps(v) for k, v in asset.node_def.tags.items()}
        resources = get_user_defined_k8s_config(tags).container_config["resources"]
        assert resources["requests"]["cpu"] and resources["limits"]["memory"], asset.key


@pytest.mark.parametrize("executor", ["k8s", "multiprocess"])
def test_dagster_definitions_validate_passes_with_production_settings(
    docflow_env, tmp_path, executor
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCFLOW_")}
    env |= {
        "DAGSTER_HOME": str(
            _compose_instance_dir(tmp_path)
        ),  # the compose instance: Postgres, Docker launcher
        "DOCFLOW_DATABASE_URL": docflow_env["DOCFLOW_DATABASE_URL"],
        "DOCFLOW_DAGSTER_DATABASE_URL": docflow_env["DOCFLOW_DAGSTER_DATABASE_URL"],
        "DOCFLOW_S3_ENDPOINT_URL": docflow_env["DOCFLOW_S3_ENDPOINT_URL"],
        "DOCFLOW_S3_REGION": "us-east-1",
        "DOCFLOW_BUCKET": os.environ["DOCFLOW_BUCKET"],
        "DOCFLOW_EXECUTOR": executor,
    }
    proc = subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", "-m", "docflow.definitions"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Validation successful" in output
