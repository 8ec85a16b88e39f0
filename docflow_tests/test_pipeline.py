"""All five assets materialized through a real Dagster instance, embedded Postgres and S3."""

import hashlib
import uuid
from pathlib import Path

import dagster as dg
import pytest

from docflow import ingest
from docflow.defs.assets import build_assets
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings

SAMPLES = REPO_ROOT / "data" / "samples"


def _register(rt, instance, path: Path, tenant: str) -> str:
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, tenant)
    ingest.upload(rt.bucket, rt.store, up)
    instance.add_dynamic_partitions(documents.name, [up.doc_id])
    return up.doc_id


def _materialize(instance, doc_id: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        build_assets(get_settings()),
        partition_key=doc_id,
        instance=instance,
        resources={"docflow": DocflowResource()},
        raise_on_error=False,
    )


def _rows(rt, doc_id: str) -> dict:
    with rt.store.tx() as conn:
        q = lambda sql: conn.execute(sql, (doc_id,)).fetchall()  # noqa: E731
        return {
            "documents": q(
                "SELECT status, error, content_type, pages FROM docflow.documents WHERE doc_id = %s"
            ),
            "classifications": q(
                "SELECT doc_type, confidence FROM docflow.classifications WHERE doc_id = %s"
            ),
            "parsed": q("SELECT markdown FROM docflow.parsed_documents WHERE doc_id = %s"),
            "extractions": q("SELECT fields, schema_version FROM docflow.extractions WHERE doc_id = %s"),
            "chunks": q(
                "SELECT chunk_index, text, embedding::text AS v, embedding_model FROM docflow.chunks "
                "WHERE doc_id = %s ORDER BY chunk_index"
            ),
        }


@pytest.fixture(scope="module")
def invoice(rt, instance) -> str:
    tenant = f"p{uuid.uuid4().hex[:6]}"
    doc_id = _register(rt, instance, SAMPLES / "invoice-northwind-2024-0042.pdf", tenant)
    result = _materialize(instance, doc_id)
    assert result.success, result.all_events
    return doc_id


def test_all_five_assets_write_their_rows(rt, instance, invoice) -> None:
    rows = _rows(rt, invoice)
    assert rows["documents"][0]["status"] == "done" and rows["documents"][0]["error"] is None
    assert rows["documents"][0]["content_type"] == "application/pdf" and rows["documents"][0]["pages"] == 1
    assert rows["classifications"][0]["doc_type"] == "invoice"
    assert "Northwind Traders" in rows["parsed"][0]["markdown"]
    fields = rows["extractions"][0]["fields"]
    assert fields["invoice_number"] == "INV-2024-0042"
    assert rows["chunks"] and all(c["embedding_model"].startswith("local/") for c in rows["chunks"])
    assert len(rows["chunks"][0]["v"].split(",")) == 384

    statuses = instance.get_status_by_partition(dg.AssetKey("embeddings"), [invoice], documents)
    assert statuses == {invoice: dg.AssetPartitionStatus.MATERIALIZED}
    event = instance.get_latest_materialization_event(dg.AssetKey("classification"))
    assert event.asset_materialization.metadata["doc_type"].value == "invoice"


def test_rerunning_a_partition_converges_to_the_same_rows(rt, instance, invoice) -> None:
    before = _rows(rt, invoice)
    assert _materialize(instance, invoice).success
    after = _rows(rt, invoice)
    assert after == before


def test_a_bad_document_fails_with_a_clear_error_and_nothing_else_is_affected(rt, instance, tmp_path) -> None:
    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"%PDF-1.7\n" + hashlib.sha256(b"x").digest() * 10)  # truncated garbage behind a header
    doc_id = _register(rt, instance, bad, "bad")
    result = _materialize(instance, doc_id)
    assert not result.success
    doc = rt.store.get_document(doc_id)
    assert doc.status == "failed"
    assert doc.error and doc.error.startswith("raw_file: ") and "PDF" in doc.error
    # a bad document is not retried: one attempt only
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries == []


def test_an_empty_file_fails_on_its_own(rt, instance, tmp_path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    doc_id = _register(rt, instance, empty, "bad")
    assert not _materialize(instance, doc_id).success
    doc = rt.store.get_document(doc_id)
    assert doc.status == "failed" and "empty" in (doc.error or "")


def test_a_batch_run_processes_each_document_and_isolates_a_bad_one(rt, instance, tmp_path) -> None:
    from docflow.defs import build_defs
    from docflow.orchestration.tags import range_tags

    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.5\nnot really")
    paths = [SAMPLES / "receipt-corner-cafe.txt", bad, SAMPLES / "letter-tenancy.html"]
    ids = [_register(rt, instance, p, "batch") for p in paths]  # contiguous partitions, in this order
    job = build_defs(get_settings()).resolve_job_def("process_batch")
    result = job.execute_in_process(
        instance=instance,
        tags=range_tags(ids[0], ids[-1]),
        raise_on_error=False,
    )
    assert result.success  # one bad document does not fail the batch
    docs = {d.doc_id: d for d in (rt.store.get_document(i) for i in ids)}
    assert [docs[i].status for i in ids] == ["done", "failed", "done"]
    assert docs[ids[1]].error.startswith("raw_file: ")
    assert rt.store.count_chunks(ids[0]) > 0 and rt.store.count_chunks(ids[2]) > 0
    # each document's metadata is in the event log as an observation of its partition (written in one batch)
    records = instance.fetch_observations(dg.AssetKey("embeddings"), limit=10).records
    observed = {r.partition_key: r.asset_observation.metadata for r in records if r.run_id == result.run_id}
    assert sorted(observed) == sorted([ids[0], ids[2]])
    assert all(m["chunks"].value > 0 for m in observed.values())
    summary = [
        e.step_materialization_data.materialization.metadata
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and e.asset_key == dg.AssetKey("raw_file")
    ]
    assert summary and summary[0]["failed"].value == 1

    # the document that failed in the batch gets a run of its own, whose failure the UI shows on its partition
    from docflow.defs.sensors import batch_failures_sensor

    run = instance.get_run_by_id(result.run_id)
    context = dg.build_run_status_sensor_context(
        sensor_name="batch_failures_sensor",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=result.get_run_success_event(),
        resources={"docflow": DocflowResource()},
    )
    requests = batch_failures_sensor(context)
    assert [(r.partition_key, r.tags["docflow/reason"]) for r in requests] == [(ids[1], "isolate")]
    assert requests[0].job_name in (None, "process_documents")


def test_the_steps_read_a_document_from_s3_once_and_refuse_an_oversized_one_unread(rt, tmp_path) -> None:
    from docflow import pipeline
    from docflow.errors import DocumentTooLarge

    path = SAMPLES / "invoice-northwind-2024-0042.pdf"
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, f"s3{uuid.uuid4().hex[:6]}")
    ingest.upload(rt.bucket, rt.store, up)
    calls: list[str] = []
    record = lambda model, **_: calls.append(model.name)  # noqa: E731
    rt.bucket._client.meta.events.register("before-call.s3", record)
    try:
        fresh = pipeline.Runtime(rt.store, rt.bucket, rt.settings)  # nothing read yet
        for step in ("raw_file", "classification", "parsed_markdown"):
            pipeline.STEPS[step](fresh, up.doc_id)
        assert calls == ["GetObject"]  # classification and parsing reuse the bytes raw_file verified
        calls.clear()
        other = pipeline.Runtime(rt.store, rt.bucket, rt.settings)  # another process: downloads again
        pipeline.STEPS["parsed_markdown"](other, up.doc_id)
        assert calls == ["GetObject"]
        calls.clear()
        small = pipeline.Runtime(rt.store, rt.bucket, rt.settings.model_copy(update={"max_bytes": 1000}))
        with pytest.raises(DocumentTooLarge, match=r"bytes exceeds the limit of 1000 bytes"):
            pipeline.STEPS["raw_file"](small, up.doc_id)
        assert (
            calls == ["GetObject"]
            and small.recent.get(up.doc_id, rt.store.get_document(up.doc_id).sha256) is None
        )
    finally:
        rt.bucket._client.meta.events.unregister("before-call.s3", record)


def test_recent_bytes_keep_the_newest_documents_within_their_budget() -> None:
    from docflow.pipeline import RecentBytes

    recent = RecentBytes(budget=10)
    recent.put("a", "h1", b"aaaa")
    recent.put("b", "h2", b"bbbb")
    recent.put("c", "h3", b"cccc")  # 12 bytes: the oldest goes
    assert recent.get("a", "h1") is None
    assert (recent.get("b", "h2"), recent.get("c", "h3")) == (b"bbbb", b"cccc")
    assert recent.get("b", "other-hash") is None  # new bytes under the same id are never served stale
    recent.put("big", "h4", b"x" * 11)  # larger than the whole budget: not kept, nothing dropped for it
    assert recent.get("big", "h4") is None and recent.get("c", "h3") == b"cccc"
