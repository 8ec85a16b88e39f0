"""`docflow up` prints what a new shell needs: its exports open the same Dagster instance and bucket, and
its upload example puts a file where the sensor looks."""

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from docflow.cli import cli


def _up(*args: str) -> str:
    result = CliRunner().invoke(cli, ["up", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _clean_env(exports: str) -> dict[str, str]:
    """A new shell: no DOCFLOW_* or DAGSTER_* inherited, only what `docflow up --env` printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCFLOW_", "DAGSTER_", "AWS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    line = subprocess.run(
        ["bash", "-c", f"{exports}\nenv -0"], env=env, capture_output=True, check=True
    ).stdout.decode()
    return dict(item.split("=", 1) for item in line.split("\0") if "=" in item)


def test_exports_open_the_same_dagster_instance_in_a_new_shell(docflow_env, instance, tmp_path) -> None:
    exports = _up("--env")
    assert all(line.startswith("export ") for line in exports.strip().splitlines())
    env = _clean_env(exports)
    code = "import dagster as dg; i = dg.DagsterInstance.get(); print(i.get_run_records(limit=1) is not None)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert env["DAGSTER_HOME"] == docflow_env["DAGSTER_HOME"]


def test_the_printed_boto3_example_uploads_where_the_sensor_looks(docflow_env, rt, tmp_path) -> None:
    printed = _up()
    example = next(line for line in printed.splitlines() if line.startswith("python -c"))
    (tmp_path / "invoice.pdf").write_bytes(b"%PDF-1.4 not really a pdf\n")
    env = _clean_env(_up("--env"))
    result = subprocess.run(["bash", "-c", example], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    key = f"{rt.settings.prefix}{rt.settings.default_tenant}/invoice.pdf"
    try:
        assert rt.bucket.get_bytes(key) == b"%PDF-1.4 not really a pdf\n"
    finally:
        rt.bucket.delete(key)  # other tests tick the sensor over this bucket
    assert f"s3://{rt.settings.bucket}/{key}" in printed  # the aws CLI line names the same object
