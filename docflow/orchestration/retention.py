"""Partition retention: documents processed more than N days ago leave the `documents` dynamic partitions,
so that the number of partitions Dagster reads (planning, each step, the sensors, the UI's partitions tab)
stays that of the last N days, not that of every document ever. Their rows, chunks and run ids stay in
Postgres (docflow.store.retention marks them `archived_at`); `restore` adds the partitions back before a
document is processed again.

A document is archived only when it is done or failed and no run or backfill in flight covers it: a batch
run names its documents as a range of partition keys (start to end in the order they were added), and a
range must not lose a key while its run is queued or running.

Dagster's public API deletes one partition per call and statement; `archive_expired` uses docflow's event
log storage to delete a chunk of keys per statement, and falls back to the public call on another storage.

The archived partitions' asset events leave Dagster's event log too (docflow's storage only): the UI's
partitions tab and stale-status queries read an asset's whole event history, whatever partitions exist.
Before they go, each document's `lineage` (docflow.documents) records per asset the latest
materialization's run id, timestamp and data version; the runs themselves stay in Dagster.
"""

from collections.abc import Sequence
from datetime import datetime

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

from docflow.orchestration.rekey import IN_FLIGHT, PARTITIONS
from docflow.orchestration.storage import DocflowEventLogStorage, forget_partitions, latest_materializations
from docflow.orchestration.tags import run_partitions
from docflow.store import Store
from docflow.store import retention as store_retention

CHUNK = 1000  # documents marked and removed per transaction


def archive_expired(
    instance: dg.DagsterInstance,
    store: Store,
    days: int,
    limit: int = 10_000,
    now: datetime | None = None,
    asset_names: Sequence[str] | None = None,
    tenant: str | None = None,
) -> int:
    """Remove the partitions of at most `limit` documents done or failed more than `days` ago (oldest first)
    and mark them archived; returns how many. Documents a queued or running run, or a backfill still
    requesting runs, covers are left for a later call. On docflow's event log storage the documents' asset
    events (of `asset_names`; by default every asset the instance knows) leave Dagster's event log, their
    summary kept in `documents.lineage`. `tenant` limits it to one tenant's documents (the partition bench
    archives only its own)."""
    candidates = store_retention.expired(store, days, limit, now, tenant)
    if not candidates:
        return 0
    order = list(instance.get_dynamic_partitions(PARTITIONS))  # batch ranges are resolved in this order
    storage = instance.event_log_storage
    events = isinstance(storage, DocflowEventLogStorage)
    keys = _asset_keys(instance, asset_names) if events else []
    archived: list[str] = []
    for start in range(0, len(candidates), CHUNK):
        # the runs looked at again for each chunk: a key must not leave a range a run is about to read
        busy = in_flight(instance, order)
        chunk = [d for d in candidates[start : start + CHUNK] if d not in busy]
        # marked and summarized first, rows locked until the partitions are gone: a failed delete leaves
        # none marked; the summary commits with the mark, before any event is deleted
        with store_retention.archiving(
            store, chunk, (lambda marked: latest_materializations(storage, keys, marked)) if events else None
        ) as marked:
            delete_partitions(instance, marked)
        archived += marked
    # a run requested in the moment between a chunk's look at the runs and its delete gets its documents
    # back, in their old order (a restored key goes to the end of the order)
    late = set(in_flight(instance, order)) & set(archived)
    if late:
        restore(instance, store, [d for d in order if d in late])
    if events:
        # after the commit, and only for documents still archived (one re-processed meanwhile has new
        # events): a failure here leaves events behind (slower reads), never a document without its summary
        still = store_retention.archived(store, [d for d in archived if d not in late])
        forget_partitions(storage, keys, [d for d in archived if d in still])
    return len(archived) - len(late)


def _asset_keys(instance: dg.DagsterInstance, names: Sequence[str] | None) -> list[dg.AssetKey]:
    if names is None:
        return list(instance.get_asset_keys())
    return [dg.AssetKey.from_user_string(name) for name in names]


def restore(instance: dg.DagsterInstance, store: Store, doc_ids: Sequence[str]) -> list[str]:
    """Give documents their partitions back (those that have one are left alone) and clear their archived
    mark; returns those of `doc_ids` that were archived. Call it before running anything for documents."""
    if not doc_ids:
        return []
    # partitions first: were the mark cleared first, a crash in between would leave a document neither
    # archived nor with a partition
    instance.add_dynamic_partitions(PARTITIONS, list(dict.fromkeys(doc_ids)))
    return store_retention.mark_restored(store, doc_ids)


def delete_partitions(instance: dg.DagsterInstance, keys: Sequence[str]) -> int:
    """Delete `documents` partitions in bulk on docflow's storage, one by one through the public API on any
    other; returns how many the bulk delete removed (on another storage, how many were asked)."""
    if not keys:
        return 0
    storage = instance.event_log_storage
    if isinstance(storage, DocflowEventLogStorage):
        return storage.delete_dynamic_partitions(PARTITIONS, keys)
    for key in keys:
        instance.delete_dynamic_partition(PARTITIONS, key)
    return len(keys)


def in_flight(instance: dg.DagsterInstance, order: Sequence[str] | None = None) -> set[str]:
    """Documents a queued or running run will process (its partition, or every key of its range in `order`,
    the partition keys as they were added: by default as they are now), and the partitions a backfill that
    is still requesting runs targets."""
    runs = instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT))
    every = (lambda: instance.get_dynamic_partitions(PARTITIONS)) if order is None else (lambda: order)
    keys = set(run_partitions((run.tags for run in runs), every))
    for backfill in instance.get_backfills(status=BulkActionStatus.REQUESTED):
        keys |= _backfill_keys(backfill)
    return keys


def _backfill_keys(backfill) -> set[str]:
    """The partitions a backfill targets: a job backfill's partition names, an asset backfill's target."""
    keys = set(backfill.partition_names or [])
    data = backfill.asset_backfill_data
    if data is not None:
        keys |= {p.partition_key for p in data.target_subset.iterate_asset_partitions() if p.partition_key}
    return keys
