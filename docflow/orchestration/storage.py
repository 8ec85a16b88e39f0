"""Dagster's Postgres storage, tuned for docflow's scale (configured in dagster.yaml). Extends
dagster-postgres's classes through their internals (listed in compat.TOUCHPOINTS).

The stock classes open a new Postgres connection for every statement (NullPool), and a batch run writes
hundreds of events. Here each process keeps a small pool per storage kind, shared by the storage objects
Dagster makes for each sensor evaluation; `pool_pre_ping` replaces a connection that died with a Postgres
restart before it is used. Whether a table exists (or a data migration ran) is asked for
every asset event and every sensor tick; a yes is kept.

Every document is a dynamic partition, and Dagster reads *all* keys of the `documents` partitions
definition whenever it resolves a partition range (planning, each step's context, inputs, outputs, and when
the daemon creates a batch run). `DocflowEventLogStorage` keeps the keys per process and reads only what
changed since the last call: the rows with a higher id, and a count of the rows it has seen, so a deleted
key, or a key committed late with a lower id, makes it read everything again. Each call still asks
Postgres, so the answer is always current. `delete_dynamic_partitions` removes many keys at once (partition
retention) and drops them from this process's keys, so this process does not read everything again.

Creating a batch run logs a "materialization planned" event per document and asset, as one batch;
dagster-postgres writes a batch in one insert only when it holds materializations or observations, and writes
any other batch event by event (an insert, then a transaction updating the asset's row), in the daemon's
sensor thread while the run waits to be queued. `store_event_batch` writes a batch of planned events as
dagster-postgres writes a batch of materializations: one insert, then the asset rows from the last event of
each asset (a planned event sets its asset's last run and timestamp only).

`latest_materializations` and `forget_partitions` read and delete the asset events of many partitions at
once (partition retention): the UI's partitions tab and stale-status queries read an asset's whole event
history, so the events of archived documents would slow them as if their partitions were still there.
"""

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as db
from dagster import AssetKey, DagsterEventType, EventLogEntry, deserialize_value
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    AssetEventTagsTable,
    AssetKeyTable,
    DynamicPartitionsTable,
    SqlEventLogStorageTable,
)
from dagster._serdes.config_class import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy.dialects.postgresql import ARRAY

DELETE_CHUNK = 1000  # keys per DELETE statement: one array parameter, one index probe per key
# the event types recorded for an asset partition (materializations, observations, planned materializations,
# failures to materialize, check evaluations and planned ones): all of the event log's partition-keyed rows
ASSET_EVENT_TYPES = tuple(t.value for t in DagsterEventType if t.name.startswith("ASSET_"))
POOL = {"pool_size": 2, "max_overflow": 10, "pool_pre_ping": True, "pool_recycle": 3600}

# Per process: Dagster makes a new instance, and new storage objects, for each sensor evaluation and each
# run plan in the code server. Storage objects of one kind on one database share a pooled engine and the
# partition keys read so far, instead of opening connections and reading every key again each time.
_ENGINES: dict[tuple[str, str], db.engine.Engine] = {}
_PARTITIONS: dict[str, tuple[threading.Lock, dict[str, tuple[int, list[str]]]]] = {}
_TABLES_CHECKED: set[tuple[str, str]] = set()
_SHARED_LOCK = threading.Lock()


def _engine(kind: str, postgres_url: str, token_provider: Any) -> db.engine.Engine:
    """A pooled engine; one per process for a storage kind and database (with a token provider, which may
    hand out expiring credentials, one per storage object)."""

    def create() -> db.engine.Engine:
        return create_pg_engine(
            postgres_url=postgres_url, token_provider=token_provider, isolation_level="AUTOCOMMIT", **POOL
        )

    if token_provider is not None:
        return create()
    with _SHARED_LOCK:
        if (kind, postgres_url) not in _ENGINES:
            _ENGINES[kind, postgres_url] = create()
        return _ENGINES[kind, postgres_url]


def _partitions_of(postgres_url: str) -> tuple[threading.Lock, dict[str, tuple[int, list[str]]]]:
    """The partition keys this process has read from a database, and their lock."""
    with _SHARED_LOCK:
        return _PARTITIONS.setdefault(postgres_url, (threading.Lock(), {}))


class _Pooled:
    """Replaces the stock storage's connection-per-statement engine with a small pool."""

    postgres_url: str
    _token_provider: Any
    _engine: db.engine.Engine

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, **kwargs: Any) -> None:
        # the stock constructor lists the database's tables (a connection of its own) to create missing ones:
        # once per process, storage kind and database is enough
        kind = type(self).__name__
        with _SHARED_LOCK:
            checked = (kind, postgres_url) in _TABLES_CHECKED
        super().__init__(  # type: ignore[call-arg]
            postgres_url=postgres_url,
            should_autocreate_tables=should_autocreate_tables and not checked,
            **kwargs,
        )
        self.should_autocreate_tables = should_autocreate_tables
        if should_autocreate_tables:
            with _SHARED_LOCK:
                _TABLES_CHECKED.add((kind, postgres_url))
        self._engine.dispose()
        self._engine = _engine(kind, self.postgres_url, self._token_provider)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]):
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )


class DocflowRunStorage(_Pooled, PostgresRunStorage):
    """Postgres run storage with a connection pool."""


class DocflowScheduleStorage(_Pooled, PostgresScheduleStorage):
    """Postgres schedule storage (sensor and schedule state, ticks) with a connection pool: the daemon reads
    and writes it for every sensor tick and for every run a sensor requests."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, **kwargs: Any) -> None:
        self._instigators_table = False  # set first: the stock constructor asks already
        self._migrations: set[str] = set()
        super().__init__(
            postgres_url=postgres_url, should_autocreate_tables=should_autocreate_tables, **kwargs
        )

    def has_instigators_table(self) -> bool:
        """A catalog query each time in the stock storage; a table, once made, stays."""
        self._instigators_table = self._instigators_table or super().has_instigators_table()
        return self._instigators_table

    def has_built_index(self, migration_name: str) -> bool:
        """Whether a data migration ran (asked for each instigator state read); once it has, it has."""
        if migration_name not in self._migrations and super().has_built_index(migration_name):
            self._migrations.add(migration_name)
        return migration_name in self._migrations


class DocflowEventLogStorage(_Pooled, PostgresEventLogStorage):
    """Postgres event log storage with a connection pool and incrementally read dynamic partitions."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, **kwargs: Any) -> None:
        super().__init__(
            postgres_url=postgres_url, should_autocreate_tables=should_autocreate_tables, **kwargs
        )
        # name -> (highest id read, keys by id), shared with this process's other storage objects
        self._partitions_lock, self._partitions = _partitions_of(postgres_url)
        self._tables: set[str] = set()

    def store_event_batch(self, events: Sequence[Any]) -> None:
        """A batch of planned-materialization events (a run's creation) in one insert, the asset rows
        updated from the last event of each asset; other batches as dagster-postgres writes them."""
        planned = DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        if not events or any(e.get_dagster_event().event_type != planned for e in events):
            return super().store_event_batch(events)
        insert = self.prepare_insert_event_batch(events)
        with self._connect() as conn:
            ids = [int(row[0]) for row in conn.execute(insert.returning(SqlEventLogStorageTable.c.id))]
        last = {e.get_dagster_event().asset_key: (e, i) for e, i in zip(events, ids, strict=True)}
        with self.index_transaction() as conn:
            self._store_asset_event_tags(conn, events, ids)  # none today: kept as the stock path does
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)

    def has_table(self, table_name: str) -> bool:
        """Asked for every asset event (a catalog query on a second connection); a table, once made, stays."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        self._check_partitions_table()
        table = DynamicPartitionsTable
        of_def = table.c.partitions_def_name == partitions_def_name
        with self._partitions_lock:
            last_id, keys = self._partitions.get(partitions_def_name, (0, []))
            with self.index_connection() as conn:
                read = conn.execute(
                    db.select(db.func.count()).select_from(table).where(of_def, table.c.id <= last_id)
                ).scalar_one()
                if read != len(keys):  # a key was deleted, or committed late with a lower id than one read
                    last_id, keys = 0, []
                rows = conn.execute(
                    db.select(table.c.id, table.c.partition)
                    .where(of_def, table.c.id > last_id)
                    .order_by(table.c.id)
                ).fetchall()
            if rows:
                keys.extend(row[1] for row in rows)
                last_id = rows[-1][0]
            self._partitions[partitions_def_name] = (last_id, keys)
            return list(keys)

    def delete_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> int:
        """Delete many keys of a partitions definition, DELETE_CHUNK per statement (the public API deletes
        one key per call); keys that do not exist are ignored. Returns how many were deleted. The keys this
        process has read lose the deleted ones in place; other processes notice the lower count and read
        all the keys again once."""
        self._check_partitions_table()
        table = DynamicPartitionsTable
        keys = list(dict.fromkeys(partition_keys))
        deleted: list[tuple[int, str]] = []
        with self.index_connection() as conn:  # autocommit: each chunk commits
            for start in range(0, len(keys), DELETE_CHUNK):
                chunk = keys[start : start + DELETE_CHUNK]
                rows = conn.execute(
                    table.delete()
                    .where(
                        table.c.partitions_def_name == partitions_def_name,
                        table.c.partition == _keys_array(chunk),
                    )
                    .returning(table.c.id, table.c.partition)
                ).fetchall()
                deleted += [(row[0], row[1]) for row in rows]
        # the lock only for the cache (shared by the process's storage objects: the deletes must not hold
        # up their reads); a read meanwhile may have advanced last_id, which the filter below follows
        with self._partitions_lock:
            if partitions_def_name in self._partitions:
                last_id, cached = self._partitions[partitions_def_name]
                gone = {key for row_id, key in deleted if row_id <= last_id}
                if gone:
                    self._partitions[partitions_def_name] = (last_id, [k for k in cached if k not in gone])
        return len(deleted)


def _keys_array(keys: Sequence[str]) -> Any:
    return db.any_(db.literal(list(keys), ARRAY(db.Text)))


def latest_materializations(
    storage: Any, asset_keys: Sequence[AssetKey], partition_keys: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """partition -> asset name ("/"-joined path) -> the latest materialization's run_id, timestamp (epoch
    seconds) and data_version (None when it has none), for the partitions of these assets that have one;
    one statement per DELETE_CHUNK partitions. `storage` is a SQL event log storage (`index_connection`)."""
    table = SqlEventLogStorageTable
    names = {key.to_string(): "/".join(key.path) for key in asset_keys}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not names:
        return out
    keys = list(dict.fromkeys(partition_keys))
    with storage.index_connection() as conn:
        for start in range(0, len(keys), DELETE_CHUNK):
            latest = (
                db.select(db.func.max(table.c.id))
                .where(
                    table.c.asset_key == _keys_array(list(names)),
                    table.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION.value,
                    table.c.partition == _keys_array(keys[start : start + DELETE_CHUNK]),
                )
                .group_by(table.c.asset_key, table.c.partition)
            )
            rows = conn.execute(
                db.select(table.c.asset_key, table.c.partition, table.c.run_id, table.c.event).where(
                    table.c.id.in_(latest)
                )
            ).fetchall()
            for asset, partition, run_id, event in rows:
                entry = deserialize_value(event, EventLogEntry)
                materialization = entry.asset_materialization
                tags = (materialization.tags if materialization else None) or {}
                out.setdefault(partition, {})[names[asset]] = {
                    "run_id": run_id,
                    "timestamp": entry.timestamp,
                    "data_version": tags.get(DATA_VERSION_TAG),
                }
    return out


def forget_partitions(storage: Any, asset_keys: Sequence[AssetKey], partition_keys: Sequence[str]) -> int:
    """Delete the asset events (and their indexed tags and check executions) of these partitions of these
    assets, DELETE_CHUNK partitions per statement, and drop the assets' cached partition statuses (Dagster
    recomputes them from the events on the next read). Returns how many events were deleted. Runs and their
    other events stay. Dagster's own wipe cannot wipe some partitions of an asset on Postgres, and wiping a
    whole asset hides every event older than the wipe."""
    events, checks = SqlEventLogStorageTable, AssetCheckExecutionsTable
    assets = [key.to_string() for key in asset_keys]
    keys = list(dict.fromkeys(partition_keys))
    deleted = 0
    if not assets or not keys:
        return 0
    with storage.index_connection() as conn:  # autocommit: each chunk commits
        for start in range(0, len(keys), DELETE_CHUNK):
            chunk = keys[start : start + DELETE_CHUNK]
            ids = [
                row[0]
                for row in conn.execute(
                    events.delete()
                    .where(
                        events.c.asset_key == _keys_array(assets),
                        events.c.dagster_event_type == _keys_array(ASSET_EVENT_TYPES),
                        events.c.partition == _keys_array(chunk),
                    )
                    .returning(events.c.id)
                )
            ]
            if ids:
                conn.execute(
                    AssetEventTagsTable.delete().where(
                        AssetEventTagsTable.c.event_id == db.any_(db.literal(ids, ARRAY(db.BigInteger)))
                    )
                )
            conn.execute(
                checks.delete().where(
                    checks.c.asset_key == _keys_array(assets), checks.c.partition == _keys_array(chunk)
                )
            )
            deleted += len(ids)
        conn.execute(
            AssetKeyTable.update()
            .where(AssetKeyTable.c.asset_key == _keys_array(assets))
            .values(cached_status_data=None)
        )
    return deleted
