"""The repository is a dg project ([tool.dg] in pyproject.toml): from its root, `dg check defs`,
`dg list defs` and `dg launch --assets ... --partition` load the code location and work on the test
session's real instance, Postgres and bucket."""

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg

from docflow.bucket import make_doc_id
from docflow.defs.partitions import documents
from docflow.models import Document
from docflow.runtime import REPO_ROOT

DG = Path(sys.executable).with_name("dg")
ASSETS = {"raw_file", "classification", "parsed_markdown", "extracted_fields", "embeddings"}


def _dg(*args: str) -> subprocess.CompletedProcess:
    assert DG.exists(), f"{DG} is missing: dagster-dg-cli is one of docflow's dependencies"
    # the session's environment (docflow_env) points Dagster at the test instance; dg expects the project's
    # own virtual environment to be the active one
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix}
    return subprocess.run(
        ["nice", "-n", "10", str(DG), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dg_check_defs_loads_the_code_location(docflow_env) -> None:
    done = _dg("check", "defs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout


def test_dg_list_defs_shows_the_five_assets_and_the_sensor(docflow_env) -> None:
    done = _dg("list", "defs", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert {a["asset_key"] for a in listing["assets"]} >= ASSETS
    assert "s3_document_sensor" in {s["name"] for s in listing["sensors"]}
    assert {j["name"] for j in listing["jobs"]} >= {"process_documents", "process_batch"}


def test_dg_launch_materializes_one_asset_for_one_document(rt, instance, tmp_path) -> None:
    data = b"Corner Cafe\nReceipt\nTotal 4.50\n" + uuid.uuid4().hex.encode()
    tenant = f"dg{uuid.uuid4().hex[:6]}"
    sha256 = hashlib.sha256(data).hexdigest()
    doc_id = make_doc_id(tenant, sha256, "receipt.txt")
    key = f"{rt.settings.prefix}{tenant}/receipt.txt"
    path = tmp_path / "receipt.txt"
    path.write_bytes(data)
    rt.bucket.upload_file(path, key, sha256=sha256)
    rt.store.register(
        Document(doc_id=doc_id, tenant=tenant, bucket=rt.bucket.name, key=key, sha256=sha256, size=len(data))
    )
    instance.add_dynamic_partitions(documents.name, [doc_id])
    done = _dg("launch", "--assets", "raw_file", "--partition", doc_id)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert doc_id in instance.get_materialized_partitions(dg.AssetKey("raw_file"))
    assert doc_id not in instance.get_materialized_partitions(dg.AssetKey("classification"))
    assert rt.store.get_document(doc_id).stage == "raw_file"  # the step's work is in the store


def test_dg_dev_takes_the_options_docflow_dev_passes() -> None:
    """`docflow dev` runs `dg dev` with its services' log levels and without the component YAML check."""
    from dagster_dg_cli.cli.dev import dev_command

    options = {o for p in dev_command.params for o in (*p.opts, *p.secondary_opts)}
    assert options >= {"--port", "--log-level", "--code-server-log-level", "--no-check-yaml"}


def test_the_workspace_file_names_the_module_and_location_dg_loads() -> None:
    import tomllib

    import yaml

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    (entry,) = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())["load_from"]
    assert entry["python_module"] == {
        "module_name": project["code_location_target_module"],
        "location_name": project["code_location_name"],
    }
