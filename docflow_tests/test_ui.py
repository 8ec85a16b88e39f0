"""The Dagster UI, for real: the webserver on the test instance, its GraphQL API, and headless Chromium.

Two sample documents are processed through the instance; then the test asks GraphQL for the partition
statuses and loads the asset graph and partition pages in Chromium, checking that what operators need
(doc type, reasoning, fields, chunk count, checks) is on screen. Screenshots land in test-artifacts/.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS

from docflow import ingest
from docflow.defs import build_defs
from docflow.defs.partitions import documents
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings

pytestmark = pytest.mark.slow

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
ASSETS = ["raw_file", "classification", "parsed_markdown", "extracted_fields", "embeddings"]
IMAGE_WIDTH = (
    "img => img.complete ? img.naturalWidth : new Promise(r => img.onload = () => r(img.naturalWidth))"
)
CHECKS = """
query Checks($key: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 1) {
    status
    partition
    evaluation { success description }
  }
}
"""
STATUSES = """
query Statuses($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetPartitionStatuses {
        ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(docflow_env) -> Iterator[str]:
    """`dagster-webserver` on the test instance (started first: it loads the code location meanwhile)."""
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    webserver = Path(sys.executable).parent / "dagster-webserver"
    cmd = [str(webserver), "-w", "workspace.yaml", "-p", str(port), "-h", "127.0.0.1"]
    with (ARTIFACTS / "webserver.log").open("w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env={**os.environ, **docflow_env, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            started = time.monotonic()
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.write(f"\n[test] webserver stopped in {time.monotonic() - started:.1f}s\n")


def _wait_ready(base: str, timeout: float = 90) -> None:
    """/server_info answers, and GraphQL knows the assets (the code location has loaded)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/server_info", timeout=5).status_code == 200:
                node = _graphql(base, STATUSES, {"key": {"path": ["embeddings"]}})["assetNodeOrError"]
                if node["__typename"] == "AssetNode":
                    return
                last = node["__typename"]
        except (httpx.HTTPError, KeyError) as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise AssertionError(f"the webserver did not become ready in {timeout}s: {last}")


def _graphql(base: str, query: str, variables: dict) -> dict:
    r = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables}, timeout=30)
    r.raise_for_status()
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def processed(rt, instance, webserver) -> list[str]:
    """An invoice and a receipt processed by the ingest job through the instance (checks included), and the
    reconciliation report."""
    job = build_defs(get_settings()).resolve_job_def("process_documents")
    tenant = f"ui{uuid.uuid4().hex[:6]}"
    doc_ids = []
    for name in ("invoice-northwind-2024-0042.pdf", "receipt-corner-cafe.txt"):
        path = REPO_ROOT / "data" / "samples" / name
        up = ingest.plan_upload(path, path.parent, rt.settings.prefix, tenant)
        ingest.upload(rt.bucket, rt.store, up)
        instance.add_dynamic_partitions(documents.name, [up.doc_id])
        assert job.execute_in_process(partition_key=up.doc_id, instance=instance).success
        doc_ids.append(up.doc_id)
    assert (
        build_defs(get_settings())
        .resolve_job_def("reconcile_documents")
        .execute_in_process(instance=instance)
        .success
    )
    return doc_ids


def test_graphql_reports_the_processed_partitions(webserver, processed) -> None:
    _wait_ready(webserver)
    for asset in ASSETS:
        node = _graphql(webserver, STATUSES, {"key": {"path": [asset]}})["assetNodeOrError"]
        statuses = node["assetPartitionStatuses"]
        assert set(processed) <= set(statuses["materializedPartitions"]), asset
        assert not set(processed) & set(statuses["failedPartitions"]), asset
    checks = {"extracted_fields": ["schema_valid", "required_fields_present"]}
    checks["embeddings"] = ["chunks_present", "dimension_matches"]
    for doc_id in processed:
        for asset, names in checks.items():
            for name in names:
                variables = {"key": {"path": [asset]}, "check": name, "partition": doc_id}
                [latest] = _graphql(webserver, CHECKS, variables)["assetCheckExecutions"]
                assert latest["status"] == "SUCCEEDED" and latest["partition"] == doc_id, latest
                assert latest["evaluation"]["success"] and latest["evaluation"]["description"]


def _dismiss_popups(page) -> None:
    """The UI greets a new browser profile with a community dialog; skip it."""
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.click()


def test_the_asset_graph_partition_pages_checks_and_report_show_the_document(
    webserver, processed, rt
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make setup` installs it as root (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    _wait_ready(webserver)
    invoice = processed[0]
    extraction = rt.store.load_extraction(invoice)
    classification = rt.store.load_classification(invoice)
    chunks = rt.store.count_chunks(invoice)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.set_default_timeout(30_000)

            # the asset graph of the documents group: five assets, their kinds and their checks
            page.goto(f"{webserver}/locations/docflow/asset-groups/documents")
            for asset in ASSETS:
                page.get_by_text(asset, exact=True).first.wait_for()
            page.get_by_text("Asset checks").first.wait_for()  # its status depends on every partition
            _dismiss_popups(page)
            page.screenshot(path=ARTIFACTS / "asset-graph.png")
            text = page.inner_text("body")
            assert "pgvector" in text and "Pydantic" in text and "documents" in text

            # the last asset's partition page tells the document's whole story
            page.goto(f"{webserver}/assets/embeddings?view=partitions&partition={invoice}")
            page.get_by_text(extraction.fields["invoice_number"]).first.wait_for()
            page.get_by_text(classification.reasoning[:50]).first.wait_for()
            page.get_by_text(f"{chunks} chunks").first.wait_for()
            _dismiss_popups(page)
            page.screenshot(path=ARTIFACTS / "embeddings-partition.png", full_page=True)
            text = page.inner_text("body")
            assert f"**{classification.doc_type}**" not in text and classification.doc_type in text
            assert "embedding_model" in text and "dimension" in text and "duration_s" in text

            page.goto(f"{webserver}/assets/extracted_fields?view=partitions&partition={invoice}")
            page.get_by_text("validation_errors").first.wait_for()
            page.get_by_text(extraction.fields["vendor_name"]).first.wait_for()
            page.screenshot(path=ARTIFACTS / "extracted-fields-partition.png", full_page=True)

            # the checks tab: the latest evaluation, its partition and its metadata
            page.goto(f"{webserver}/assets/extracted_fields?view=checks")
            page.get_by_text("required_fields_present").first.wait_for()
            _dismiss_popups(page)
            page.get_by_text("schema_valid", exact=True).first.click()
            page.get_by_text("This is a blocking asset check.").wait_for()
            page.get_by_text("Evaluation result").wait_for()
            page.screenshot(path=ARTIFACTS / "extracted-fields-checks.png")
            text = page.inner_text("body")
            assert "Passed" in text and "fields are valid" in text and processed[-1] in text

            # the reconciliation report's plot renders as an image
            page.goto(f"{webserver}/assets/document_report")
            page.get_by_text("failure_reasons").first.wait_for()
            page.get_by_text("[Show Markdown]").first.click()
            plot = page.locator('img[alt="document report"]')
            plot.wait_for()
            width = plot.evaluate(IMAGE_WIDTH)
            assert width > 500
            page.screenshot(path=ARTIFACTS / "document-report.png")
        finally:
            browser.close()
