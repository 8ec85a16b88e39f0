"""docflow's Dagster storage (docflow/orchestration/storage.py) on the real instance: pooled connections, and
dynamic partition keys read incrementally yet always equal to what the stock storage reads."""

import threading
import uuid

import sqlalchemy as db
from dagster_postgres.event_log import PostgresEventLogStorage

from docflow.orchestration.storage import (
    DocflowEventLogStorage,
    DocflowRunStorage,
    DocflowScheduleStorage,
    DynamicPartitionsTable,
)


def _stock(storage: DocflowEventLogStorage, name: str) -> list[str]:
    return list(PostgresEventLogStorage.get_dynamic_partitions(storage, name))


def test_the_instance_uses_docflows_pooled_storage(instance) -> None:
    storage = instance.event_log_storage
    assert isinstance(storage, DocflowEventLogStorage)
    assert isinstance(instance.run_storage, DocflowRunStorage)
    assert isinstance(instance.schedule_storage, DocflowScheduleStorage)
    assert not isinstance(storage._engine.pool, db.pool.NullPool)
    before = storage._engine.pool.checkedin()
    for _ in range(5):
        instance.get_dynamic_partitions(f"pool-{uuid.uuid4().hex}")
    assert storage._engine.pool.checkedin() == max(before, 1)  # one connection reused, not five opened
    schedules = instance.schedule_storage
    assert not isinstance(schedules._engine.pool, db.pool.NullPool)
    assert schedules.has_instigators_table() and instance.all_instigator_state() is not None


def test_partition_keys_are_read_incrementally_and_stay_exact(instance) -> None:
    storage = instance.event_log_storage
    other = DocflowEventLogStorage(storage.postgres_url)  # another process's view of the same table:
    other._partitions_lock, other._partitions = threading.Lock(), {}  # a process's keys are its own
    name = f"docs-{uuid.uuid4().hex[:8]}"
    instance.add_dynamic_partitions(name, ["a", "b", "c"])
    assert storage.get_dynamic_partitions(name) == ["a", "b", "c"] == other.get_dynamic_partitions(name)

    instance.add_dynamic_partitions(name, ["d", "e"])  # added after a read: only the new rows are read
    read_before = storage._partitions[name][0]
    assert storage.get_dynamic_partitions(name) == ["a", "b", "c", "d", "e"] == _stock(storage, name)
    assert storage._partitions[name][0] > read_before

    instance.delete_dynamic_partition(name, "b")  # a deleted key disappears at once, in every process
    assert storage.get_dynamic_partitions(name) == ["a", "c", "d", "e"] == _stock(storage, name)
    assert other.get_dynamic_partitions(name) == ["a", "c", "d", "e"]

    # a row committed late with a lower id than one read already (concurrent inserts commit out of order)
    with storage.index_connection() as conn:
        gap = conn.execute(
            db.select(DynamicPartitionsTable.c.id).where(
                DynamicPartitionsTable.c.partitions_def_name == name,
                DynamicPartitionsTable.c.partition == "c",
            )
        ).scalar_one()
        conn.execute(
            DynamicPartitionsTable.insert().values(id=gap - 1, partitions_def_name=name, partition="late")
        )
    assert storage.get_dynamic_partitions(name) == ["a", "late", "c", "d", "e"] == _stock(storage, name)

    keys = storage.get_dynamic_partitions(name)
    keys.append("mutated by a caller")
    assert storage.get_dynamic_partitions(name) == ["a", "late", "c", "d", "e"]


def test_a_batch_runs_planned_events_are_written_in_one_insert(instance, monkeypatch) -> None:
    import dagster as dg

    from docflow.orchestration.tags import range_tags

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "100")  # as docflow's processes run (batched writes on)
    parts = dg.DynamicPartitionsDefinition(name=f"planned-{uuid.uuid4().hex[:8]}")

    @dg.asset(partitions_def=parts)
    def first(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult()

    @dg.asset(partitions_def=parts, deps=[first])
    def second(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult()

    keys = [f"p{i}" for i in range(6)]
    instance.add_dynamic_partitions(parts.name, keys)
    job = dg.Definitions(assets=[first, second], jobs=[dg.define_asset_job("both")]).resolve_job_def("both")
    storage = instance.event_log_storage
    one_by_one = []
    stock_store_event = storage.store_event

    def store_event(event):  # the real write, counted when it is a planned event written on its own
        if event.get_dagster_event().event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            one_by_one.append(event)
        return stock_store_event(event)

    monkeypatch.setattr(storage, "store_event", store_event)
    result = job.execute_in_process(instance=instance, tags=range_tags(keys[0], keys[-1]))
    assert result.success
    assert one_by_one == []
    planned = instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    assert len(planned) == 12  # a planned event per partition and asset, as the stock storage writes
    for asset in (first, second):
        assert instance.get_latest_planned_materialization_info(asset.key).run_id == result.run_id
        for key in keys:
            info = instance.get_latest_planned_materialization_info(asset.key, partition=key)
            assert info is not None and info.run_id == result.run_id


def test_instances_made_for_each_evaluation_share_connections_and_keys(instance) -> None:
    # the code server makes an instance from a ref for every sensor evaluation and run plan
    import dagster as dg

    name = f"shared-{uuid.uuid4().hex[:8]}"
    instance.add_dynamic_partitions(name, ["a", "b"])
    with dg.DagsterInstance.from_ref(instance.get_ref()) as first:
        assert first.get_dynamic_partitions(name) == ["a", "b"]
        engine = first.event_log_storage._engine
    instance.add_dynamic_partitions(name, ["c"])
    with dg.DagsterInstance.from_ref(instance.get_ref()) as second:
        storage = second.event_log_storage
        assert storage._engine is engine  # no new connections for a new instance
        assert storage._partitions[name][1] == ["a", "b"]  # read by the first instance: not read again
        assert second.get_dynamic_partitions(name) == ["a", "b", "c"]
        assert second.run_storage._engine is not engine  # one pool per storage kind
        assert second.get_runs_count() == instance.get_runs_count()  # the shared pool answers


def test_a_new_instance_opens_no_connection_of_its_own(instance, rt) -> None:
    import time

    import dagster as dg
    from sqlalchemy.engine import make_url

    from docflow.bench.costs import pg_counters

    database = make_url(instance.event_log_storage.postgres_url).database
    for _ in range(2):  # the tables of each storage kind checked once in this process already
        with dg.DagsterInstance.from_ref(instance.get_ref()) as warm:
            warm.get_runs_count()
    time.sleep(1.5)  # a backend reports its statistics within a second of going idle
    before = pg_counters(rt.settings.database_url)[database]["sessions"]
    for _ in range(5):  # as the code server does for five sensor evaluations
        with dg.DagsterInstance.from_ref(instance.get_ref()) as each:
            each.get_runs_count()
            each.get_dynamic_partitions("documents")
            each.all_instigator_state()
    time.sleep(1.5)
    assert pg_counters(rt.settings.database_url)[database]["sessions"] - before <= 1  # the stats query's own
