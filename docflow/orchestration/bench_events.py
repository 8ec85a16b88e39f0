"""Materializations recorded in bulk, for the partition bench: a million document partitions that were all
processed once, without running a million steps. Each is the event `report_runless_asset_event` records (a
materialization outside any run). The public call writes one event per statement and serializes each; here
one event is serialized and the others are copies of it with their partition key and timestamp, written a
chunk per statement into the event log's table, and the last one through the event log's own batch write so
that the asset's row (its latest materialization) is updated as Dagster does it. Materializations without
tags have no rows in the asset event tags table."""

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
from dagster._core.events import DagsterEvent, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster_shared.serdes import serialize_value

from docflow.orchestration.storage import forget_partitions

CHUNK = 5000  # events per insert
_KEY = "docflow-bench-partition-placeholder"
_TS = 1234567890.5


def _entry(asset_key: dg.AssetKey, partition: str, timestamp: float) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message="",
        run_id=RUNLESS_RUN_ID,
        timestamp=timestamp,
        dagster_event=DagsterEvent(
            event_type_value=dg.DagsterEventType.ASSET_MATERIALIZATION.value,
            job_name=RUNLESS_JOB_NAME,
            event_specific_data=StepMaterializationData(
                dg.AssetMaterialization(asset_key=asset_key, partition=partition)
            ),
        ),
    )


def record_materializations(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    partition_keys: Sequence[str],
    timestamps: Sequence[datetime],
) -> None:
    """A materialization of `asset_key` for each partition, at its timestamp (oldest first)."""
    if not partition_keys:
        return
    template = serialize_value(_entry(asset_key, _KEY, _TS))
    if template.count(_KEY) != 1 or template.count(json.dumps(_TS)) != 1:
        raise RuntimeError("the serialized materialization changed shape: record them one by one")
    storage = instance.event_log_storage
    asset = asset_key.to_string()
    last = len(partition_keys) - 1
    for start in range(0, last, CHUNK):
        rows = [
            {
                "run_id": RUNLESS_RUN_ID,
                "event": template.replace(_KEY, key).replace(json.dumps(_TS), json.dumps(at.timestamp())),
                "dagster_event_type": dg.DagsterEventType.ASSET_MATERIALIZATION.value,
                "timestamp": at.astimezone(UTC).replace(tzinfo=None),
                "step_key": None,
                "asset_key": asset,
                "partition": key,
            }
            for key, at in zip(
                partition_keys[start : min(last, start + CHUNK)],
                timestamps[start : min(last, start + CHUNK)],
                strict=True,
            )
        ]
        with storage.index_connection() as conn:  # type: ignore[attr-defined]
            conn.execute(SqlEventLogStorageTable.insert(), rows)
    storage.store_event_batch([_entry(asset_key, partition_keys[last], timestamps[last].timestamp())])


def forget(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_keys: Sequence[str]) -> None:
    """Delete the events of `asset_key` for these partitions and drop the asset's cached partition statuses
    (recomputed on the next read), as partition retention does (orchestration.storage.forget_partitions)."""
    forget_partitions(instance.event_log_storage, [asset_key], partition_keys)


def materialized(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> set[str]:
    """The partitions of `asset_key` with a materialization."""
    return set(instance.event_log_storage.get_materialized_partitions(asset_key))
