"""Asset checks, the jobs per operation and the reconciliation report: the rules alone (pure), then through
the real Dagster instance on embedded Postgres and S3."""

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from docflow import ingest, quality, reporting
from docflow.defs import build_defs
from docflow.defs.partitions import documents
from docflow.defs.report import document_report
from docflow.defs.resources import DocflowResource
from docflow.models import Document, Extraction
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings

SAMPLES = REPO_ROOT / "data" / "samples"


def _extraction(fields: dict, **kw) -> Extraction:
    base = {"doc_type": "invoice", "schema_name": "Invoice", "schema_version": "1", "backend": "test"}
    return Extraction(fields=fields, **(base | kw))


# --- the rules alone ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extraction", "passed", "severity", "words"),
    [
        (
            _extraction({"invoice_number": "A-1", "total_amount": 12.5, "invoice_date": "2024-01-31"}),
            True,
            "error",
            "3 fields",
        ),
        (_extraction({"invoice_number": "A-1", "total_amount": "twelve"}), False, "error", "total_amount"),
        (_extraction({"invoice_number": "A-1", "surprise": 1}), False, "error", "surprise"),
        (_extraction({"invoice_number": "A-1"}, schema_version="0"), False, "warn", "re-extract"),
        (
            _extraction({"invoice_number": "A-1"}, validation_errors=["due_date: bad (got 'x')"]),
            False,
            "warn",
            "dropped 1",
        ),
        (
            _extraction({"key_values": {"Name": "x"}}, doc_type="letter", schema_name="KeyValues"),
            True,
            "error",
            "1 fields",
        ),
    ],
)
def test_schema_valid(extraction: Extraction, passed: bool, severity: str, words: str) -> None:
    verdict = quality.schema_valid(extraction)
    assert (verdict.passed, verdict.severity) == (passed, severity)
    assert words in verdict.message


def test_required_fields_present_names_what_is_missing_and_only_warns() -> None:
    missing = quality.required_fields_present(_extraction({"invoice_number": "A-1", "vendor_name": ""}))
    assert not missing.passed and missing.severity == "warn"
    assert missing.details["missing"] == ["vendor_name", "total_amount"]
    full = {"invoice_number": "A-1", "vendor_name": "Acme", "total_amount": 1.0}
    assert quality.required_fields_present(_extraction(full)).passed
    assert quality.required_fields_present(_extraction({}, doc_type="letter")).passed


def test_embedding_rules() -> None:
    assert not quality.chunks_present(0).passed
    assert quality.chunks_present(3).passed
    assert quality.dimension_matches({384: 3}, 384).passed
    mixed = quality.dimension_matches({384: 2, 1536: 1}, 384)
    assert not mixed.passed and mixed.severity == "error" and "1 of dimension 1536" in mixed.message


def test_failure_reasons_group_alike_messages() -> None:
    docs = [
        Document(
            doc_id="a", tenant="t", bucket="b", key="k", error="raw_file: 3001 pages exceeds 2000 pages"
        ),
        Document(
            doc_id="b", tenant="t", bucket="b", key="k", error="raw_file: 2500 pages exceeds 2000 pages"
        ),
        Document(
            doc_id="c",
            tenant="t",
            bucket="b",
            key="k",
            error="embeddings: BackendUnavailable: S3 get 'x/y.pdf' failed (after 4 retries)",
        ),
    ]
    reasons = reporting.group_failures(docs)
    assert [(r.reason, r.count, r.example) for r in reasons] == [
        ("raw_file: N pages exceeds N pages", 2, "a"),
        ("embeddings: BackendUnavailable: S3 get '…' failed", 1, "c"),
    ]


def test_step_timings() -> None:
    [t] = reporting.step_timings({"raw_file": [float(i) for i in range(1, 101)], "embeddings": []})
    assert (t.step, t.n, t.median_s, t.p95_s, t.max_s) == ("raw_file", 100, 50.5, 95.0, 100.0)


# --- through the real instance -----------------------------------------------------------------------
def _register(rt, instance, path: Path, tenant: str) -> str:
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, tenant)
    ingest.upload(rt.bucket, rt.store, up)
    instance.add_dynamic_partitions(documents.name, [up.doc_id])
    return up.doc_id


def _run(instance, job: str, doc_id: str) -> dg.ExecuteInProcessResult:
    return (
        build_defs(get_settings())
        .resolve_job_def(job)
        .execute_in_process(partition_key=doc_id, instance=instance, raise_on_error=False)
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def invoice(rt, instance) -> tuple[str, dg.ExecuteInProcessResult]:
    doc_id = _register(rt, instance, SAMPLES / "invoice-northwind-2024-0042.pdf", f"c{uuid.uuid4().hex[:6]}")
    result = _run(instance, "process_documents", doc_id)
    assert result.success
    return doc_id, result


def test_the_ingest_job_runs_the_checks_per_partition(rt, instance, invoice) -> None:
    doc_id, result = invoice
    checks = _checks(result)
    assert set(checks) == {
        "schema_valid",
        "required_fields_present",
        "provenance_matches",
        "chunks_present",
        "dimension_matches",
    }
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items()}
    assert all(c.partition == doc_id for c in checks.values())
    assert checks["dimension_matches"].metadata["expected"].value == 384
    # the instance keeps the check result per partition (what the UI shows)
    key = dg.AssetCheckKey(dg.AssetKey("extracted_fields"), "schema_valid")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert record.status.value == "SUCCEEDED"


def test_each_asset_reports_rich_metadata(instance, invoice) -> None:
    _, result = invoice
    meta = {
        node: result.asset_materializations_for_node(node)[0].metadata
        for node in ("raw_file", "classification", "parsed_markdown", "extracted_fields", "embeddings")
    }
    raw = meta["raw_file"]
    assert raw["filename"].value == "invoice-northwind-2024-0042.pdf" and raw["pages"].value == 1
    assert raw["content_type"].value == "application/pdf" and raw["size_bytes"].value > 1000
    assert raw["object"].value.endswith(".pdf") and raw["object"].value.startswith("http")
    assert meta["classification"]["doc_type"].value == "invoice"
    assert (
        0.35 < meta["classification"]["confidence"].value <= 1 and meta["classification"]["reasoning"].value
    )
    assert "Northwind" in meta["parsed_markdown"]["preview"].value
    fields = {r.data["field"]: r.data["value"] for r in meta["extracted_fields"]["fields"].records}
    assert fields["invoice_number"] == "INV-2024-0042"
    emb = meta["embeddings"]
    assert emb["chunks"].value > 0 and emb["dimension"].value == 384
    card = emb["document"].value
    assert "**invoice**" in card and "INV-2024-0042" in card and f"{emb['chunks'].value} chunks" in card
    assert all(m["duration_s"].value >= 0 and m["backend"].value for m in meta.values())


def test_invalid_stored_fields_block_reembedding_until_reextracted(rt, instance) -> None:
    doc_id = _register(rt, instance, SAMPLES / "receipt-corner-cafe.txt", f"c{uuid.uuid4().hex[:6]}")
    assert _run(instance, "process_documents", doc_id).success
    chunks_before = rt.store.count_chunks(doc_id)
    with rt.store.tx() as conn:  # e.g. a schema tightened after extraction, or a backend that skipped it
        conn.execute(
            """UPDATE docflow.extractions SET fields = fields || '{"total": "a lot"}' WHERE doc_id = %s""",
            (doc_id,),
        )
        conn.execute("DELETE FROM docflow.chunks WHERE doc_id = %s AND chunk_index > 0", (doc_id,))

    blocked = _run(instance, "reembed_documents", doc_id)
    assert not blocked.success
    check = _checks(blocked)["schema_valid"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert blocked.asset_materializations_for_node("embeddings") == []  # never ran on the bad fields
    assert rt.store.count_chunks(doc_id) == min(1, chunks_before)
    doc = rt.store.get_document(doc_id)
    assert doc.status == "failed" and doc.error.startswith("schema_valid: ") and "total" in doc.error

    fixed = _run(instance, "reextract_documents", doc_id)
    assert fixed.success and _checks(fixed)["schema_valid"].passed
    assert rt.store.get_document(doc_id).status == "done"
    assert rt.store.count_chunks(doc_id) == chunks_before


def _run_range(job: dg.JobDefinition, instance, doc_ids: list[str]) -> dg.ExecuteInProcessResult:
    """A run over a range of documents, as a backfill from the UI launches them (BackfillPolicy.multi_run)."""
    from docflow.orchestration.tags import range_tags

    return job.execute_in_process(
        instance=instance, tags=range_tags(doc_ids[0], doc_ids[-1]), raise_on_error=False
    )


def test_a_backfill_over_many_documents_checks_each_and_processes_failed_ones_again(rt, instance) -> None:
    from docflow.defs.assets import build_assets
    from docflow.defs.checks import CHECKS

    tenant = f"r{uuid.uuid4().hex[:6]}"
    names = ["receipt-corner-cafe.txt", "letter-tenancy.html", "invoice-northwind-2024-0042.pdf"]
    ids = [_register(rt, instance, SAMPLES / name, tenant) for name in names]  # contiguous partitions
    # the five assets and their checks over the three partitions: what *Materialize* on a selection launches
    assets = build_assets(get_settings())
    everything = dg.Definitions(
        assets=assets,
        asset_checks=CHECKS,
        jobs=[dg.define_asset_job("ui_backfill", selection=dg.AssetSelection.assets(*assets))],
        resources={"docflow": DocflowResource()},
    ).resolve_job_def("ui_backfill")
    first = _run_range(everything, instance, ids)
    assert first.success, [e.message for e in first.all_events if e.is_failure]
    checks = _checks(first)
    assert set(checks) == {
        "schema_valid",
        "required_fields_present",
        "provenance_matches",
        "chunks_present",
        "dimension_matches",
    }
    assert checks["schema_valid"].passed and checks["schema_valid"].description == "3 of 3 documents passed"
    assert checks["chunks_present"].passed and checks["dimension_matches"].passed
    assert [rt.store.get_document(i).status for i in ids] == ["done"] * 3
    chunks = {i: rt.store.count_chunks(i) for i in ids}

    bad, good = ids[0], ids[1]
    with rt.store.tx() as conn:  # the receipt's stored fields no longer validate; two documents lose chunks
        conn.execute(
            """UPDATE docflow.extractions SET fields = fields || '{"total": "a lot"}' WHERE doc_id = %s""",
            (bad,),
        )
        conn.execute("DELETE FROM docflow.chunks WHERE doc_id = ANY(%s) AND chunk_index > 0", ([bad, good],))
    reembed = _run_range(build_defs(get_settings()).resolve_job_def("reembed_documents"), instance, ids)
    assert reembed.success  # the invalid document does not block the others
    valid = _checks(reembed)["schema_valid"]
    assert not valid.passed and valid.severity == dg.AssetCheckSeverity.WARN and bad in valid.description
    assert valid.metadata["failing"].value.keys() == {bad}
    assert rt.store.get_document(bad).status == "failed" and rt.store.count_chunks(bad) == min(1, chunks[bad])
    assert rt.store.count_chunks(good) == chunks[good] and rt.store.get_document(good).status == "done"

    # re-extracting the range processes the document that failed before the run again, and fixes it
    reextract = _run_range(build_defs(get_settings()).resolve_job_def("reextract_documents"), instance, ids)
    assert reextract.success and _checks(reextract)["schema_valid"].passed
    assert [rt.store.get_document(i).status for i in ids] == ["done"] * 3, rt.store.get_document(bad).error
    assert {i: rt.store.count_chunks(i) for i in ids} == chunks


def test_the_report_asset_shows_counts_failures_and_a_plot(rt, instance, invoice, tmp_path) -> None:
    stuck = _register(rt, instance, SAMPLES / "letter-tenancy.html", f"s{uuid.uuid4().hex[:6]}")
    with rt.store.tx() as conn:
        conn.execute(
            "UPDATE docflow.documents SET updated_at = now() - interval '2 hours' WHERE doc_id = %s", (stuck,)
        )
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    failed = _register(rt, instance, bad, f"f{uuid.uuid4().hex[:6]}")
    assert not _run(instance, "process_documents", failed).success

    result = dg.materialize(
        [document_report], instance=instance, resources={"docflow": DocflowResource()}, raise_on_error=False
    )
    assert result.success
    meta = result.asset_materializations_for_node("document_report")[0].metadata
    by_type = {r.data["doc_type"]: r.data for r in meta["by_type"].records}
    assert by_type["invoice"]["done"] >= 1 and by_type["(unclassified)"]["pending"] >= 1
    reasons = {r.data["reason"]: r.data["count"] for r in meta["failure_reasons"].records}
    assert reasons.get("raw_file: the file is empty (N bytes)", 0) >= 1
    assert stuck in {r.data["doc_id"] for r in meta["stuck"].records}
    assert failed in {r.data["doc_id"] for r in meta["failed_documents"].records}
    timings = {r.data["step"]: r.data for r in meta["timings"].records}
    assert set(timings) == {"raw_file", "classification", "parsed_markdown", "extracted_fields", "embeddings"}
    assert all(t["n"] >= 1 and t["p95_s"] >= t["median_s"] > 0 for t in timings.values())
    plot = meta["plot"].value
    assert plot.startswith("![document report](data:image/png;base64,")
    png = base64.b64decode(plot.split(",", 1)[1].rstrip(")"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_the_report_finds_drift_between_bucket_table_and_partitions(rt, instance) -> None:
    tenant = f"d{uuid.uuid4().hex[:6]}"
    prefix = f"{rt.settings.prefix}{tenant}/"
    rt.bucket.put_bytes(f"{prefix}never-registered.txt", b"an object the sensor has not seen")
    up = ingest.plan_upload(SAMPLES / "resume-jane-doe.md", SAMPLES, rt.settings.prefix, tenant)
    ingest.upload(rt.bucket, rt.store, up)  # registered, but no partition, and then its object is deleted
    rt.bucket.delete(up.key)

    later = datetime.now(UTC) + timedelta(hours=1)
    partitions = set(instance.get_dynamic_partitions(documents.name))
    report = reporting.build_report(rt.store, rt.bucket, prefix, {}, partitions, now=later, sample=10**6)
    assert report.unregistered_objects == [f"{prefix}never-registered.txt"]
    assert report.missing_objects == [up.doc_id]
    assert up.doc_id in report.without_partition
    assert up.doc_id in {d.doc_id for d in report.stuck}
    assert report.drift >= 4


def test_jobs_schedule_and_checks_are_defined() -> None:
    defs = build_defs(get_settings())
    for job in ("process_documents", "reembed_documents", "reextract_documents", "reconcile_documents"):
        assert defs.resolve_job_def(job) is not None
    schedule = defs.resolve_schedule_def("reconciliation_schedule")
    assert schedule.job_name == "reconcile_documents" and schedule.cron_schedule == "0 * * * *"
    specs = {
        (spec.asset_key.to_user_string(), spec.name): spec
        for checks in defs.asset_checks or []
        for spec in checks.check_specs
    }
    assert set(specs) == {
        ("extracted_fields", "schema_valid"),
        ("extracted_fields", "required_fields_present"),
        ("extracted_fields", "provenance_matches"),
        ("embeddings", "chunks_present"),
        ("embeddings", "dimension_matches"),
    }
    assert specs[("extracted_fields", "schema_valid")].blocking
    assert not specs[("extracted_fields", "required_fields_present")].blocking
    assert all(s.partitions_def == documents for s in specs.values())
    graph = defs.resolve_asset_graph()
    report = graph.get(dg.AssetKey("document_report"))
    assert report.group_name == "reports" and report.owners and report.kinds
