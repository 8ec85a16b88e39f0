"""Partition retention against the real embedded Postgres and Dagster instance: documents processed long ago
leave the `documents` dynamic partitions in bulk, stay found, and get their partitions back when processed
again. Each test ages its own documents (`updated_at`) to a year before every earlier test's and archives with
`now=` weeks after it, so that no other test's documents are ever old enough to be archived."""

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from docflow.models import Document
from docflow.orchestration import retention
from docflow.orchestration.storage import DocflowEventLogStorage
from docflow.orchestration.tags import range_tags
from docflow.store import retention as store_retention

PARTITIONS = "documents"
_years = iter(range(1999, 1900, -1))  # each test's is earlier than every earlier test's


@pytest.fixture
def tenant() -> str:
    return f"r{uuid.uuid4().hex[:8]}"


@pytest.fixture
def year() -> datetime:
    """A moment before any other test's documents were updated: this test's documents are aged to it."""
    return datetime(next(_years), 1, 1, tzinfo=UTC)


def _register(rt, instance, tenant: str, n: int, partitions: bool = True) -> list[str]:
    ids = []
    for i in range(n):
        doc_id = f"{tenant}-doc{i}-{uuid.uuid4().hex[:6]}"
        rt.store.register(
            Document(doc_id=doc_id, tenant=tenant, bucket="b", key=f"{tenant}/{i}.txt", sha256=doc_id)
        )
        ids.append(doc_id)
    if partitions:
        instance.add_dynamic_partitions(PARTITIONS, ids)
    return ids


def _age(rt, doc_ids: list[str], status: str, when: datetime) -> None:
    with rt.store.tx() as conn:
        conn.execute(
            "UPDATE docflow.documents SET status = %s, updated_at = %s WHERE doc_id = ANY(%s)",
            (status, when, doc_ids),
        )


def _partitions(instance) -> set[str]:
    return set(instance.get_dynamic_partitions(PARTITIONS))


def test_documents_processed_more_than_n_days_ago_leave_the_partitions_and_stay_found(
    rt, instance, tenant, year
) -> None:
    done, failed, pending, recent = (_register(rt, instance, tenant, 2) for _ in range(4))
    _age(rt, done, "done", year)
    _age(rt, failed, "failed", year)
    _age(rt, pending, "pending", year)  # registered long ago, never run: not processed, not archived
    _age(rt, recent, "done", year + timedelta(days=20))
    before = store_retention.archived_count(rt.store)

    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=10)) == 0
    archived = retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40))

    assert archived == 4
    gone = set(done + failed)
    assert not gone & _partitions(instance)
    assert set(pending + recent) <= _partitions(instance)
    assert store_retention.archived_count(rt.store) == before + 4
    assert store_retention.archived_count(rt.store, tenant) == 4
    for doc_id in gone:  # the row stays, marked
        doc = rt.store.get_document(doc_id)
        assert doc.archived_at is not None and doc.status in ("done", "failed")
    assert rt.store.get_document(recent[0]).archived_at is None
    # archived documents are not expired again; the recent ones are once old enough
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == 0
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=60)) == 2


def test_archiving_is_bounded_per_call_oldest_first(rt, instance, tenant, year) -> None:
    docs = _register(rt, instance, tenant, 5)
    for i, doc_id in enumerate(docs):
        _age(rt, [doc_id], "done", year + timedelta(hours=i))
    now = year + timedelta(days=31)
    assert store_retention.expired(rt.store, 30, 3, now=now) == docs[:3]
    assert retention.archive_expired(instance, rt.store, days=30, limit=3, now=now) == 3
    assert _partitions(instance) & set(docs) == set(docs[3:])


def test_documents_a_run_or_backfill_in_flight_covers_are_not_archived(rt, instance, tenant, year) -> None:
    from docflow.defs import build_defs
    from docflow.defs.assets import ASSET_KEYS
    from docflow.orchestration.backfill import launch_asset_backfill
    from docflow.settings import get_settings

    alone, a, b, c, d, backfilled, free = _register(rt, instance, tenant, 7)
    _age(rt, [alone, a, b, c, d, backfilled, free], "done", year)
    runs = [
        dg.DagsterRun(job_name="process_documents", status=status, tags=tags)
        for status, tags in [
            (dg.DagsterRunStatus.NOT_STARTED, {"dagster/partition": alone}),
            (dg.DagsterRunStatus.STARTED, range_tags(b, c)),  # a batch over b..c, in the order added
            (dg.DagsterRunStatus.SUCCESS, {"dagster/partition": free}),  # over: no longer in flight
        ]
    ]
    for run in runs:
        instance.add_run(run)
    backfill_id = launch_asset_backfill(
        instance, build_defs(get_settings()), [backfilled], ASSET_KEYS, "test: retention"
    )
    try:
        archived = retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40))
        assert archived == 3
        assert _partitions(instance) & {alone, a, b, c, d, backfilled, free} == {alone, b, c, backfilled}
        assert store_retention.archived(rt.store, [alone, a, b, c, d, backfilled, free]) == {a, d, free}
    finally:
        for run in runs:
            instance.delete_run(run.run_id)
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None
        instance.update_backfill(backfill.with_status(type(backfill.status).CANCELED))
    # once the runs and the backfill are over, they go too
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == 4


def test_a_document_that_starts_running_is_no_longer_archived(rt, instance, tenant, year) -> None:
    [doc_id] = _register(rt, instance, tenant, 1)
    _age(rt, [doc_id], "done", year)
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == 1
    rt.store.set_status(doc_id, "running", stage="raw_file")  # whatever path re-ran it
    assert rt.store.get_document(doc_id).archived_at is None
    # a document being processed is never archived, however old its last update
    _age(rt, [doc_id], "running", year)
    assert store_retention.mark_archived(rt.store, [doc_id]) == []


def test_restore_adds_the_partitions_back_and_clears_the_mark(rt, instance, tenant, year) -> None:
    archived, kept = _register(rt, instance, tenant, 2)
    _age(rt, [archived], "done", year)
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == 1
    assert archived not in _partitions(instance)

    assert retention.restore(instance, rt.store, [archived, kept]) == [archived]
    assert {archived, kept} <= _partitions(instance)
    assert store_retention.archived(rt.store, [archived, kept]) == set()
    # a restored key is added at the end: a later batch range never spans it unawares
    assert instance.get_dynamic_partitions(PARTITIONS)[-1] == archived
    assert retention.restore(instance, rt.store, [archived]) == []


def test_bulk_delete_keeps_every_process_key_cache_exact(instance, monkeypatch) -> None:
    storage = instance.event_log_storage
    assert isinstance(storage, DocflowEventLogStorage)
    other = DocflowEventLogStorage(storage.postgres_url)  # another process's view of the same table
    name = f"docs-{uuid.uuid4().hex[:8]}"
    keys = [f"k{i}" for i in range(7)]
    instance.add_dynamic_partitions(name, keys)
    assert storage.get_dynamic_partitions(name) == keys == other.get_dynamic_partitions(name)
    instance.add_dynamic_partitions(name, ["late"])  # not read yet by this process

    monkeypatch.setattr("docflow.orchestration.storage.DELETE_CHUNK", 2)  # several statements
    assert storage.delete_dynamic_partitions(name, ["k1", "k3", "k4", "k6", "late", "missing"]) == 5
    left = ["k0", "k2", "k5"]
    # this process dropped the deleted keys from what it had read, without reading everything again
    assert storage._partitions[name][1] == left
    assert storage.get_dynamic_partitions(name) == left == other.get_dynamic_partitions(name)
    stock = dg.DagsterInstance.ephemeral()  # not docflow's storage: the public call, one key at a time
    stock.add_dynamic_partitions(PARTITIONS, ["x", "y", "z"])
    assert retention.delete_partitions(stock, ["x", "z"]) == 2
    assert stock.get_dynamic_partitions(PARTITIONS) == ["y"]
