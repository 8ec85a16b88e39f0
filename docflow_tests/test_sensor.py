"""The S3 sensor against the real embedded bucket, Postgres and Dagster instance."""

import uuid

import dagster as dg
import pytest
from drive import cursor_now, tick

from docflow.ingest import ScanCursor, scan


def _mine(result: dg.SensorResult, tenant: str) -> list[dg.RunRequest]:
    return [r for r in result.run_requests or [] if r.tags.get("docflow/tenant") == tenant]


def _covered(result: dg.SensorResult, request: dg.RunRequest) -> list[str]:
    """The documents a run request processes: its partition, or its range over this tick's new partitions."""
    if request.partition_key:
        return [request.partition_key]
    added = [k for r in result.dynamic_partitions_requests for k in r.partition_keys]
    rng = request.partition_key_range
    return added[added.index(rng.start) : added.index(rng.end) + 1]


@pytest.fixture
def tenant() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def test_new_object_gives_partition_and_run_then_same_bytes_give_nothing(rt, instance, tenant) -> None:
    base = cursor_now(rt)  # whatever earlier tests left has been seen; start from here
    body = f"Invoice number 7 for {tenant}\nTotal due: 10.00 EUR\n".encode()
    rt.bucket.put_bytes(f"incoming/{tenant}/a.txt", body)

    result = tick(instance, base)
    requests = _mine(result, tenant)
    assert len(requests) == 1
    doc_id = requests[0].partition_key
    assert requests[0].run_key and doc_id in requests[0].run_key
    assert requests[0].tags["docflow/tenant"] == tenant
    added = [r for r in result.dynamic_partitions_requests if isinstance(r, dg.AddDynamicPartitionsRequest)]
    assert any(doc_id in r.partition_keys for r in added)
    doc = rt.store.get_document(doc_id)
    assert (doc.status, doc.tenant, doc.filename) == ("pending", tenant, "a.txt")

    # the same bytes under another name are the same document: no new partition, no run
    rt.bucket.put_bytes(f"incoming/{tenant}/copy-of-a.txt", body)
    again = tick(instance, result.cursor)
    assert _mine(again, tenant) == []
    assert rt.store.get_document(doc_id).model_dump()["status"] == "pending"
    assert f"incoming/{tenant}/copy-of-a.txt" in _keys(rt, doc_id)

    # the same bytes for another tenant are another document
    other = f"{tenant}x"
    rt.bucket.put_bytes(f"incoming/{other}/a.txt", body)
    assert len(_mine(tick(instance, again.cursor), other)) == 1


def _keys(rt, doc_id: str) -> list[str]:
    with rt.store.tx() as conn:
        return conn.execute("SELECT keys FROM docflow.documents WHERE doc_id = %s", (doc_id,)).fetchone()[
            "keys"
        ]


def test_cursor_survives_a_restart_and_objects_outside_the_prefix_are_ignored(rt, instance, tenant) -> None:
    base = cursor_now(rt)
    rt.bucket.put_bytes(f"incoming/{tenant}/one.txt", f"letter one {tenant}".encode())
    rt.bucket.put_bytes(f"outside/{tenant}/two.txt", f"letter two {tenant}".encode())
    result = tick(instance, base)
    assert len(_mine(result, tenant)) == 1

    # a new sensor process only has the stored cursor string: nothing is requested twice
    restored = ScanCursor.load(result.cursor)
    assert f"incoming/{tenant}/one.txt" in restored.seen
    assert _mine(tick(instance, result.cursor), tenant) == []

    # a changed object (new bytes under the same key) is new content: a new document
    rt.bucket.put_bytes(f"incoming/{tenant}/one.txt", f"letter one, revised {tenant}".encode())
    assert len(_mine(tick(instance, result.cursor), tenant)) == 1


def test_work_per_tick_is_bounded_and_the_rest_comes_next_tick(rt, instance, tenant, monkeypatch) -> None:
    base = cursor_now(rt)
    for i in range(5):
        rt.bucket.put_bytes(f"incoming/{tenant}/doc{i}.txt", f"document {i} of {tenant}".encode())
    monkeypatch.setenv("DOCFLOW_SENSOR_MAX_PER_TICK", "2")
    seen: list[str] = []
    cursor = base
    for _ in range(3):
        result = tick(instance, cursor)
        covered = [doc for r in _mine(result, tenant) for doc in _covered(result, r)]
        assert len(covered) <= 2
        seen += covered
        cursor = result.cursor
    assert len(set(seen)) == len(seen) == 5


def test_a_bulk_load_is_batched_into_partition_range_runs(rt, instance, tenant, monkeypatch) -> None:
    base = cursor_now(rt)
    for i in range(5):
        rt.bucket.put_bytes(f"incoming/{tenant}/bulk{i}.txt", f"bulk document {i} of {tenant}".encode())
    monkeypatch.setenv("DOCFLOW_RUN_BATCH_SIZE", "2")
    result = tick(instance, base)
    mine = _mine(result, tenant)
    assert [len(_covered(result, r)) for r in mine] == [2, 1, 1, 1]  # 4 runs: a multiple of the 2 slots
    assert mine[0].partition_key_range is not None and mine[0].tags["docflow/batch_size"] == "2"
    assert mine[1].partition_key is not None
    covered = [doc for r in mine for doc in _covered(result, r)]
    assert len(set(covered)) == 5 and all(d.startswith(f"{tenant}-") for d in covered)
    assert len({r.run_key for r in mine}) == 4


def test_a_small_bulk_load_is_spread_over_the_tenants_run_slots_in_balanced_batches() -> None:
    from docflow.defs.sensors import run_requests
    from docflow.ingest import NewDocument

    docs = [NewDocument(f"t-{i:02d}", f"incoming/t/{i}.txt", f"e{i}", "t") for i in range(21)]
    sizes = lambda reqs: [int(r.tags.get("docflow/batch_size", 1)) for r in reqs]  # noqa: E731
    assert sizes(run_requests(docs[:5], batch_size=20, spread=2)) == [3, 2]  # both slots busy, not 5 + 0
    assert sizes(run_requests(docs, batch_size=20, spread=2)) == [11, 10]  # balanced, not 20 + 1
    assert sizes(run_requests(docs, batch_size=4, spread=2)) == [4, 4, 4, 3, 3, 3]  # not 4, 4, 4, 4, 4, 1
    assert sizes(run_requests(docs, batch_size=5, spread=2)) == [4, 4, 4, 3, 3, 3]  # 6 runs, not 5: pairs
    assert sizes(run_requests(docs, batch_size=5, spread=3)) == [4, 4, 4, 3, 3, 3]
    assert sizes(run_requests(docs[:3], batch_size=20, spread=4)) == [1, 1, 1]
    assert sizes(run_requests(docs[:1], batch_size=20, spread=2)) == [1]


def test_a_bulk_load_is_registered_over_short_ticks_and_another_tenant_waits_for_one(rt, tenant) -> None:
    base = ScanCursor.load(cursor_now(rt))
    for i in range(40):  # more than one chunk of hashing: a tick with a tiny budget stops after one
        rt.bucket.put_bytes(f"incoming/{tenant}/bulk{i:02d}.txt", f"bulk {i} of {tenant}".encode())
    rt.bucket.put_bytes(f"incoming/{tenant}x/one.txt", f"the other tenant's upload {tenant}".encode())

    first = scan(rt.bucket, rt.store, base, prefix=rt.settings.prefix, work_budget_s=1e-9)
    tenants = [d.tenant for d in first.new]
    assert f"{tenant}x" in tenants[:2]  # taken in turn, not after the whole bulk load
    assert first.remaining == 41 - len(first.new) > 0
    second = scan(rt.bucket, rt.store, first.cursor, prefix=rt.settings.prefix)
    assert len(first.new) + len(second.new) == 41 and second.remaining == 0
    assert {d.doc_id for d in first.new}.isdisjoint(d.doc_id for d in second.new)


def test_a_tenant_with_one_new_document_gets_its_run_before_a_bulk_loads_batches(
    rt, instance, tenant, monkeypatch
) -> None:
    base = cursor_now(rt)
    bulk = f"a{tenant}"  # sorts before the other tenant by name: the order must come from the counts
    for i in range(5):
        rt.bucket.put_bytes(f"incoming/{bulk}/bulk{i}.txt", f"bulk document {i} of {bulk}".encode())
    rt.bucket.put_bytes(f"incoming/{tenant}/one.txt", f"the one document of {tenant}".encode())
    monkeypatch.setenv("DOCFLOW_RUN_BATCH_SIZE", "2")
    result = tick(instance, base)
    ours = [r for r in result.run_requests if r.tags.get("docflow/tenant") in (bulk, tenant)]
    assert [r.tags["docflow/tenant"] for r in ours] == [tenant] + [bulk] * (len(ours) - 1)
    assert ours[0].partition_key and any(r.partition_key_range for r in ours[1:])
