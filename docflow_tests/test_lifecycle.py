"""Incremental processing: changed objects, deleted objects and configuration changes, on real services."""

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from drive import cursor_now, sensor

from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.defs.sensors import stale_documents_sensor
from docflow.errors import BackendUnavailable
from docflow.ingest import ReconcileRefused, ScanCursor, reconcile, scan
from docflow.pipeline import config_fingerprint


def _context(instance, cursor=None):
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources={"docflow": DocflowResource()})


@pytest.fixture
def tenant() -> str:
    return f"l{uuid.uuid4().hex[:8]}"


def _scan(rt, cursor: ScanCursor):
    return scan(rt.bucket, rt.store, cursor, prefix=rt.settings.prefix)


def test_new_bytes_under_a_key_supersede_the_old_document_once_the_new_one_is_done(rt, instance, tenant):
    key = f"incoming/{tenant}/statement.txt"
    base = ScanCursor.load(cursor_now(rt))  # what earlier tests left has been seen
    rt.bucket.put_bytes(key, b"version one of the statement")
    first = _scan(rt, base)
    old_id = next(d.doc_id for d in first.new if d.key == key)
    rt.bucket.put_bytes(key, b"version two of the statement")
    second = _scan(rt, first.cursor)
    new_id = next(d.doc_id for d in second.new if d.key == key)
    assert new_id != old_id

    old = rt.store.get_document(old_id)
    with rt.store.tx() as conn:
        row = conn.execute(
            "SELECT keys, superseded_by FROM docflow.documents WHERE doc_id = %s", (old_id,)
        ).fetchone()
    assert row == {"keys": [], "superseded_by": new_id} and old.status == "pending"
    assert old_id not in rt.store.removable_superseded()  # the new version is not done yet: keep the old

    instance.add_dynamic_partitions(documents.name, [old_id, new_id])
    rt.store.set_status(new_id, "done")
    result = sensor("reconcile_sensor")(_context(instance))
    deletes = [
        r for r in result.dynamic_partitions_requests if isinstance(r, dg.DeleteDynamicPartitionsRequest)
    ]
    assert any(old_id in r.partition_keys for r in deletes)
    assert rt.store.known([old_id, new_id]) == {new_id: "done"}


def test_deleted_objects_remove_their_documents_after_a_grace_period(rt, tenant):
    key = f"incoming/{tenant}/gone.txt"
    before = ScanCursor.load(cursor_now(rt))
    rt.bucket.put_bytes(key, b"soon deleted " + tenant.encode())
    doc_id = next(d.doc_id for d in _scan(rt, before).new if d.key == key)
    rt.bucket.delete(key)

    assert doc_id not in reconcile(rt.bucket, rt.store, rt.settings.prefix).deleted_objects  # too young
    later = datetime.now(UTC) + timedelta(hours=1)
    found = reconcile(rt.bucket, rt.store, rt.settings.prefix, now=later)
    assert doc_id in found.deleted_objects


def test_a_document_of_another_bucket_is_not_missing_from_this_one(rt, tenant):
    key = f"incoming/{tenant}/elsewhere.txt"
    before = ScanCursor.load(cursor_now(rt))
    rt.bucket.put_bytes(key, b"registered from another bucket " + tenant.encode())
    doc_id = next(d.doc_id for d in _scan(rt, before).new if d.key == key)
    rt.bucket.delete(key)
    with rt.store.tx() as conn:  # as the sensor bench registers the documents of its own bucket
        conn.execute("UPDATE docflow.documents SET bucket = 'bench-sensor' WHERE doc_id = %s", (doc_id,))
    later = datetime.now(UTC) + timedelta(hours=1)
    assert doc_id not in reconcile(rt.bucket, rt.store, rt.settings.prefix, now=later).deleted_objects
    with rt.store.tx() as conn:
        conn.execute("UPDATE docflow.documents SET bucket = %s WHERE doc_id = %s", (rt.bucket.name, doc_id))
    assert doc_id in reconcile(rt.bucket, rt.store, rt.settings.prefix, now=later).deleted_objects


def test_reconciliation_refuses_a_listing_that_would_remove_too_much(rt, tenant):
    keys = [f"incoming/{tenant}/many-{i}.txt" for i in range(4)]
    before = ScanCursor.load(cursor_now(rt))
    for key in keys:
        rt.bucket.put_bytes(key, f"{key} body".encode())
    _scan(rt, before)
    for key in keys:
        rt.bucket.delete(key)  # as if the listing had lost them
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(ReconcileRefused, match="refusing"):
        reconcile(rt.bucket, rt.store, rt.settings.prefix, max_fraction=0.0, now=later)  # nothing may go
    # a listing that fails part-way raises before anything is decided
    from docflow.bucket import Bucket

    broken = Bucket(rt.bucket.name, endpoint_url="http://127.0.0.1:9", access_key="x", secret_key="y")
    with pytest.raises(BackendUnavailable):
        reconcile(broken, rt.store, rt.settings.prefix, now=later)


def test_a_configuration_change_requests_re_processing_a_few_at_a_time(rt, instance, tenant, monkeypatch):
    before = ScanCursor.load(cursor_now(rt))
    rt.bucket.put_bytes(f"incoming/{tenant}/cfg.txt", b"processed with an old model " + tenant.encode())
    doc_id = next(d.doc_id for d in _scan(rt, before).new if d.key.endswith("cfg.txt"))
    instance.add_dynamic_partitions(documents.name, [doc_id])  # what the s3 sensor's result does
    with rt.store.tx() as conn:
        conn.execute(
            "UPDATE docflow.documents SET status = 'done', config_fingerprint = 'old' WHERE doc_id = %s",
            (doc_id,),
        )
    monkeypatch.setenv("DOCFLOW_STALE_PER_TICK", "1000")
    result = stale_documents_sensor(_context(instance))
    requested = {r.partition_key: r for r in result.run_requests}
    assert doc_id in requested
    assert requested[doc_id].tags["docflow/reason"] == "stale"
    assert config_fingerprint(rt.settings) in requested[doc_id].run_key

    monkeypatch.setenv("DOCFLOW_STALE_PER_TICK", "1")
    assert len(stale_documents_sensor(_context(instance)).run_requests) <= 1


def test_an_unchanged_object_requests_nothing(rt, instance, tenant):
    rt.bucket.put_bytes(f"incoming/{tenant}/same.txt", b"unchanged " + tenant.encode())
    first = sensor("s3_document_sensor")(_context(instance))
    second = sensor("s3_document_sensor")(_context(instance, first.cursor))
    assert not [r for r in second.run_requests if r.tags.get("docflow/tenant") == tenant]
