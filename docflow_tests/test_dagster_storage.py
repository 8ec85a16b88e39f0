"""docflow's Dagster storage (docflow/orchestration/storage.py) on the real instance: pooled connections, and
dynamic partition keys read incrementally yet always equal to what the stock storage reads."""

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
    other = DocflowEventLogStorage(storage.postgres_url)  # another process's view of the same table
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
