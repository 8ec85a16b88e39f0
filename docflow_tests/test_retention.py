"""Partition retention against the real embedded Postgres and Dagster instance: documents processed long ago
leave the `documents` dynamic partitions in bulk, stay found, and get their partitions back when processed
again. Each test ages its own documents (`updated_at`) to a year before every earlier test's and archives with
`now=` weeks after it, so that no other test's documents are ever old enough to be archived."""

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner
from live import LiveServer

from docflow.cli import cli
from docflow.defs.resources import DocflowResource
from docflow.errors import NotFound
from docflow.models import Document
from docflow.orchestration import retention
from docflow.orchestration.storage import DocflowEventLogStorage
from docflow.orchestration.tags import range_tags
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings
from docflow.store import retention as store_retention
from docflow.store import tenants

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


def test_the_expired_query_reads_the_partial_index_when_most_documents_are_archived(rt) -> None:
    """At scale most rows are archived and a few are due: the plan must not scan and sort the table."""
    import psycopg

    with psycopg.connect(rt.store.url) as conn:  # rolled back: the rows never reach the other tests
        conn.execute(
            """INSERT INTO docflow.documents
                   (doc_id, tenant, bucket, key, sha256, status, updated_at, archived_at)
               SELECT 'plan-' || i, 'plan', 'b', 'plan/' || i, 'plan-' || i, 'done',
                      now() - (i % 400) * interval '1 day',
                      CASE WHEN i % 10 = 0 THEN NULL ELSE now() END
               FROM generate_series(1, 50000) i"""
        )
        conn.execute("ANALYZE docflow.documents")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                """EXPLAIN SELECT doc_id FROM docflow.documents
                   WHERE archived_at IS NULL AND status IN ('done', 'failed') AND updated_at < %s
                   ORDER BY updated_at LIMIT %s""",
                (datetime.now(UTC) - timedelta(days=390), 10_000),
            )
        )
        conn.rollback()
    assert "documents_archivable" in plan and "Seq Scan" not in plan, plan


def test_archiving_is_bounded_per_call_oldest_first(rt, instance, tenant, year) -> None:
    docs = _register(rt, instance, tenant, 5)
    for i, doc_id in enumerate(docs):
        _age(rt, [doc_id], "done", year + timedelta(hours=i))
    now = year + timedelta(days=31)
    assert store_retention.expired(rt.store, 30, 3, now=now, tenant=tenant) == docs[:3]
    assert store_retention.expired(rt.store, 30, 3, now=now, tenant=f"{tenant}-other") == []
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


def test_a_run_requested_while_its_documents_are_archived_gets_them_back(
    rt, instance, tenant, year, monkeypatch
) -> None:
    docs = _register(rt, instance, tenant, 4)
    for doc_id in docs:  # added again in reverse: the key order is not the ids' sort order
        instance.delete_dynamic_partition(retention.PARTITIONS, doc_id)
    instance.add_dynamic_partitions(retention.PARTITIONS, docs[::-1])
    other, last, middle, first = docs
    _age(rt, docs, "done", year)
    delete = retention.delete_partitions
    late = dg.DagsterRun(
        job_name="process_batch", status=dg.DagsterRunStatus.NOT_STARTED, tags=range_tags(first, last)
    )

    def run_requested_meanwhile(instance_, keys):  # after the look at the runs, before the delete
        instance.add_run(late)
        return delete(instance_, keys)

    monkeypatch.setattr(retention, "delete_partitions", run_requested_meanwhile)
    try:
        assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == 1
        # the range's keys are back, the middle one included, and no longer marked
        assert {first, middle, last} <= _partitions(instance) and other not in _partitions(instance)
        keys = instance.get_dynamic_partitions(retention.PARTITIONS)
        assert [k for k in keys if k in {first, middle, last}] == [first, middle, last]  # their old order
        assert store_retention.archived(rt.store, [first, middle, last, other]) == {other}
    finally:
        instance.delete_run(late.run_id)


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


def test_docflow_restore_gives_the_partitions_back_without_running(rt, instance, tenant, year) -> None:
    archived, kept = _register(rt, instance, tenant, 2)
    _age(rt, [archived, kept], "done", year)
    _age(rt, [kept], "done", year + timedelta(days=35))
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == 1
    runs = instance.get_runs_count(dg.RunsFilter(tags={"dagster/partition": archived}))

    result = _invoke("restore", archived, kept)

    assert result.exit_code == 0 and "1 archived documents restored, 1 were not archived" in result.output
    assert {archived, kept} <= _partitions(instance)
    assert store_retention.archived(rt.store, [archived]) == set()
    assert instance.get_runs_count(dg.RunsFilter(tags={"dagster/partition": archived})) == runs
    with pytest.raises(NotFound):  # `docflow` prints it and exits 2
        _invoke("restore", f"{tenant}-nobody")


def test_rekey_of_an_archived_document_leaves_it_with_a_partition_and_unarchived(rt, instance, year) -> None:
    import hashlib

    from docflow.bucket import legacy_doc_id
    from docflow.orchestration.rekey import rekey

    tenant = f"r{uuid.uuid4().hex[:8]}"
    sha = hashlib.sha256(tenant.encode()).hexdigest()
    old_id = legacy_doc_id(tenant, sha)
    rt.store.register(
        Document(
            doc_id=old_id, tenant=tenant, bucket="b", key=f"{tenant}/a.txt", sha256=sha, filename="a.txt"
        )
    )
    instance.add_dynamic_partitions(PARTITIONS, [old_id])
    _age(rt, [old_id], "done", year)
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == 1

    report = rekey(rt.store, instance, while_running=True)

    [renamed] = [r for r in report.followed if r.old_id == old_id]
    assert renamed.new_id in _partitions(instance) and old_id not in _partitions(instance)
    assert rt.store.get_document(renamed.new_id).archived_at is None


def test_bulk_delete_keeps_every_process_key_cache_exact(instance, monkeypatch) -> None:
    storage = instance.event_log_storage
    assert isinstance(storage, DocflowEventLogStorage)
    other = DocflowEventLogStorage(storage.postgres_url)  # another process's view of the same table:
    other._partitions_lock, other._partitions = threading.Lock(), {}  # a process's keys are its own
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


# --- a document processed for real: found while archived, processed again from the CLI, the API and a job ---


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def processed(docflow_env, rt, tmp_path_factory) -> tuple[str, str]:
    """(tenant, doc_id) of a document `docflow run` processed, with its object in the bucket."""
    tenant = f"r{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("retention")
    shutil.copy(REPO_ROOT / "data" / "samples" / "resume-jane-doe.md", folder / "resume.md")
    assert _invoke("run", str(folder), "--tenant", tenant).exit_code == 0
    [doc] = rt.store.list_documents(tenant=tenant)
    assert doc.status == "done"
    return tenant, doc.doc_id


def _archive(rt, instance, doc_id: str, year: datetime) -> None:
    retention.restore(instance, rt.store, [doc_id])  # as an earlier test may have left it
    _age(rt, [doc_id], "done", year)
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == 1
    assert doc_id not in _partitions(instance)


def _runs(instance, doc_id: str, job: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(job_name=job, tags={"dagster/partition": doc_id})))


def test_status_finds_an_archived_document_and_counts_the_archived(rt, instance, processed, year) -> None:
    tenant, doc_id = processed
    _archive(rt, instance, doc_id, year)
    [row] = json.loads(_invoke("status", doc_id, "--json").stdout)
    assert row["doc_id"] == doc_id and row["status"] == "done" and row["archived"] is True
    listed = _invoke("status", "--tenant", tenant).stdout
    assert f"{doc_id}" in listed and "(archived)" in listed
    assert "1 documents archived" in listed


def test_reprocess_from_the_cli_restores_the_partition_and_runs(rt, instance, processed, year) -> None:
    _, doc_id = processed
    _archive(rt, instance, doc_id, year)
    before = len(_runs(instance, doc_id, "process_documents"))

    result = _invoke("reprocess", doc_id, "--json")

    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["status"] == "done" and row["archived"] is False
    assert doc_id in _partitions(instance)
    runs = _runs(instance, doc_id, "process_documents")
    assert len(runs) == before + 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
    assert rt.store.get_document(doc_id).archived_at is None


ASSETS = ("raw_file", "classification", "parsed_markdown", "extracted_fields", "embeddings")


def _latest(instance, name: str, partition: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records else None


def _asset_events(instance, partition: str) -> int:
    """Rows of Dagster's event log for this partition (any asset, any event type)."""
    import sqlalchemy as db

    with instance.event_log_storage.index_connection() as conn:
        query = db.text("SELECT count(*) FROM event_logs WHERE partition = :p")
        return conn.execute(query, {"p": partition}).scalar_one()


def test_archiving_removes_the_partitions_asset_events_and_keeps_their_lineage(
    rt, instance, processed, tenant, year, api
) -> None:
    from docflow.defs.partitions import documents

    owner, doc_id = processed
    if _latest(instance, "raw_file", doc_id) is None:  # an earlier test archived it and did not run it
        assert _invoke("reprocess", doc_id, "--json").exit_code == 0
    before = {name: _latest(instance, name, doc_id) for name in ASSETS}
    assert all(before.values()) and _asset_events(instance, doc_id) > len(ASSETS)
    # another document's partition, processed too recently to be archived
    [other] = _register(rt, instance, tenant, 1)
    _age(rt, [other], "done", year + timedelta(days=35))
    instance.report_runless_asset_event(dg.AssetMaterialization("raw_file", partition=other))
    status = instance.get_status_by_partition(dg.AssetKey("raw_file"), [other], documents)
    assert status == {other: dg.AssetPartitionStatus.MATERIALIZED}  # cached from here on

    _archive(rt, instance, doc_id, year)

    # the partition's asset events are gone from Dagster; its runs stay
    assert all(_latest(instance, name, doc_id) is None for name in ASSETS)
    assert _asset_events(instance, doc_id) == 0
    assert all(instance.get_run_by_id(before[name].run_id) is not None for name in ASSETS)
    # their summary stays in docflow.documents
    summary = store_retention.lineage(rt.store, doc_id)
    assert summary is not None and set(summary) >= set(ASSETS)
    for name, record in before.items():
        assert summary[name]["run_id"] == record.run_id
        assert summary[name]["timestamp"] == record.timestamp
        assert summary[name]["data_version"] == record.asset_materialization.tags.get("dagster/data_version")
    # other partitions keep theirs, and the asset's status is recomputed right
    assert _latest(instance, "raw_file", other) is not None
    status = instance.get_status_by_partition(dg.AssetKey("raw_file"), [other], documents)
    assert status == {other: dg.AssetPartitionStatus.MATERIALIZED}
    # status and the API's detail show the summary
    [row] = json.loads(_invoke("status", doc_id, "--json").stdout)
    assert row["archived"] is True and row["lineage"] == summary
    with httpx.Client(
        base_url=api, headers={"X-API-Key": tenants.create_api_key(rt.store, owner, "test")}, timeout=60
    ) as client:
        assert client.get(f"/v1/documents/{doc_id}").json()["lineage"] == summary

        # processing it again materializes it again, in a new run
        result = _invoke("reprocess", doc_id, "--json")
        assert result.exit_code == 0, result.output
        assert doc_id in _partitions(instance)
        after = {name: _latest(instance, name, doc_id) for name in ASSETS}
        assert all(after.values())
        assert after["raw_file"].run_id not in {r.run_id for r in before.values()}
        assert client.get(f"/v1/documents/{doc_id}").json()["lineage"] is None  # not archived any more


def test_a_reextract_job_over_an_archived_document_restores_it_first(rt, instance, processed, year) -> None:
    _, doc_id = processed
    _archive(rt, instance, doc_id, year)
    result = _invoke("reprocess", doc_id, "--job", "reextract_documents", "--json")
    assert result.exit_code == 0, result.output
    assert doc_id in _partitions(instance)
    [run] = _runs(instance, doc_id, "reextract_documents")[:1]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert rt.store.get_document(doc_id).archived_at is None


@pytest.fixture(scope="module")
def api(docflow_env, instance) -> Iterator[str]:
    from docflow.api.app import create_app

    live = LiveServer(create_app(get_settings(), instance))
    yield live.url
    live.stop()


def test_reprocess_from_the_api_restores_the_partition_and_requests_its_run(
    rt, instance, processed, year, api
) -> None:
    tenant, doc_id = processed
    client = httpx.Client(
        base_url=api, headers={"X-API-Key": tenants.create_api_key(rt.store, tenant, "test")}, timeout=60
    )
    stranger = httpx.Client(
        base_url=api, headers={"X-API-Key": tenants.create_api_key(rt.store, f"x{tenant}", "t")}, timeout=60
    )
    _archive(rt, instance, doc_id, year)
    assert client.get(f"/v1/documents/{doc_id}").json()["archived_at"] is not None
    assert stranger.post(f"/v1/documents/{doc_id}:reprocess").status_code == 404
    assert doc_id not in _partitions(instance)

    answer = client.post(f"/v1/documents/{doc_id}:reprocess")

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["doc_id"] == doc_id and body["restored"] is True
    backfill = instance.get_backfill(body["backfill_id"])
    try:
        assert backfill is not None and backfill.status.value == "REQUESTED"  # the daemon launches its run
        targeted = {
            p.partition_key for p in backfill.asset_backfill_data.target_subset.iterate_asset_partitions()
        }
        assert targeted == {doc_id}
        assert doc_id in _partitions(instance)
        assert client.get(f"/v1/documents/{doc_id}").json()["archived_at"] is None
        rt.store.set_status(doc_id, "running")  # its run started: not requested twice
        assert client.post(f"/v1/documents/{doc_id}:reprocess").status_code == 409
    finally:
        rt.store.set_status(doc_id, "done")
        if backfill is not None:  # no daemon here: end it, or it would keep the document from retention
            instance.update_backfill(backfill.with_status(type(backfill.status).CANCELED))
        client.close()
        stranger.close()


def test_reconciliation_and_the_report_leave_archived_documents_alone(rt, instance, processed, year) -> None:
    from docflow.defs import build_defs
    from docflow.defs.report import document_report

    _, doc_id = processed
    _archive(rt, instance, doc_id, year)
    reconcile = build_defs(get_settings()).resolve_sensor_def("reconcile_sensor")
    context = dg.build_sensor_context(instance=instance, resources={"docflow": DocflowResource()})
    result = reconcile(context)
    removed = [
        k for r in getattr(result, "dynamic_partitions_requests", None) or [] for k in r.partition_keys
    ]
    added = [
        r
        for r in getattr(result, "dynamic_partitions_requests", None) or []
        if isinstance(r, dg.AddDynamicPartitionsRequest)
    ]
    assert doc_id not in removed and not added
    assert rt.store.get_document(doc_id).archived_at is not None  # still there, still archived
    assert doc_id not in _partitions(instance)

    report = dg.materialize([document_report], instance=instance, resources={"docflow": DocflowResource()})
    [materialization] = report.asset_materializations_for_node("document_report")
    meta = materialization.metadata
    assert meta["archived"].value == store_retention.archived_count(rt.store) >= 1
    assert doc_id not in meta["without_partition"].value["doc_ids"]
    totals = sum(meta[s].value for s in ("done", "failed", "pending", "running"))
    with rt.store.tx() as conn:
        assert totals == conn.execute("SELECT count(*) AS n FROM docflow.documents").fetchone()["n"]


def test_the_stale_sensor_leaves_archived_documents_until_restored(rt, instance, tenant, year) -> None:
    from docflow.defs.sensors import stale_documents_sensor

    # more archived stale documents than the sensor looks at per tick, all older than the one it must find
    archived = _register(rt, instance, tenant, 20 * get_settings().stale_per_tick + 5)
    [kept] = _register(rt, instance, tenant, 1)
    _age(rt, archived, "done", year)  # made with another configuration (none recorded)
    _age(rt, [kept], "done", year + timedelta(days=35))  # too recent to be archived
    assert retention.archive_expired(instance, rt.store, days=30, now=year + timedelta(days=40)) == len(
        archived
    )

    def requested() -> set[str]:
        context = dg.build_sensor_context(instance=instance, resources={"docflow": DocflowResource()})
        result = stale_documents_sensor(context)
        return {r.partition_key for r in result.run_requests or []}

    first = requested()
    assert kept in first and not first & set(archived)
    assert not set(archived) & _partitions(instance)
    assert retention.restore(instance, rt.store, archived[:1]) == archived[:1]
    assert archived[0] in requested()


def test_the_retention_sensor_skips_while_the_setting_is_unset_and_archives_when_set(
    rt, instance, tenant, year, monkeypatch
) -> None:
    from docflow.defs import build_defs

    docs = _register(rt, instance, tenant, 3)
    _age(rt, docs, "done", year)

    def tick() -> str:
        sensor = build_defs(get_settings()).resolve_sensor_def("partition_retention")
        context = dg.build_sensor_context(instance=instance, resources={"docflow": DocflowResource()})
        result = sensor(context)
        assert isinstance(result, dg.SkipReason)
        return result.skip_message or ""

    monkeypatch.delenv("DOCFLOW_PARTITION_RETENTION_DAYS", raising=False)
    assert "partition retention is off" in tick()
    assert set(docs) <= _partitions(instance)

    monkeypatch.setenv("DOCFLOW_PARTITION_RETENTION_DAYS", "30")
    monkeypatch.setenv("DOCFLOW_PARTITION_RETENTION_PER_TICK", "2")
    first = tick()
    assert first.startswith("archived 2 ")  # bounded per tick, oldest first: this test's are the oldest
    tick()
    assert not set(docs) & _partitions(instance)
    assert store_retention.archived(rt.store, docs) == set(docs)
