"""`docflow rekey`: rename the documents registered under the old ids (`<tenant>-<32 hex>`) to ids that name
the file, in Postgres and in Dagster, so that the UI's partition list and filter find them by file name.

For each document that is done or failed: Postgres renames it (docflow.store.rekey), then Dagster follows
through its public API: the new partition is added, a done document's five assets are recorded as
materialized under it (a runless materialization carrying the old one's metadata and `renamed_from`, so the
UI shows it materialized without running it again), and the old partition is deleted. Each step checks
what is there first, and `doc_id_renames` remembers what Dagster has not followed yet, so running it again
finishes an interrupted rename and otherwise does nothing.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from docflow.errors import DocflowError
from docflow.pipeline import STEPS
from docflow.store import Store
from docflow.store import rekey as store_rekey
from docflow.store import retention as store_retention
from docflow.store.rekey import Rename

PARTITIONS = "documents"  # the DynamicPartitionsDefinition of the five assets (defs/partitions.py)
BATCH = 200  # documents renamed per Postgres transaction
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass
class RekeyReport:
    renamed: list[Rename] = field(default_factory=list)  # renamed in Postgres by this call
    followed: list[Rename] = field(default_factory=list)  # moved in Dagster by this call
    waiting: list[Rename] = field(default_factory=list)  # pending or running: a later call renames them
    materializations: int = 0  # runless materializations recorded

    def summary(self) -> str:
        return (
            f"{len(self.renamed)} documents renamed, {len(self.followed)} moved in Dagster "
            f"({self.materializations} materializations recorded), {len(self.waiting)} pending or running "
            "left for a later run"
        )


def plan(store: Store) -> list[Rename]:
    """The renames a call would make (old-id documents, whatever their status)."""
    return store_rekey.legacy_documents(store)


def rekey(
    store: Store,
    instance: dg.DagsterInstance,
    while_running: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> RekeyReport:
    """Rename every old-id document that is done or failed, in Postgres and in Dagster. Refuses while runs
    are queued or in progress (unless `while_running`): such a run may be about to process a done document
    again under its old id, and a batch run names its documents as a range of partition keys."""
    if not while_running and (active := instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT), limit=1)):
        raise DocflowError(
            f"run {active[0].dagster_run.run_id} is {active[0].dagster_run.status.value.lower()}: rekey when "
            "no runs are queued or in progress (stop the sensors, or wait), or pass --while-running"
        )
    report = RekeyReport()
    todo = plan(store)
    movable = [r for r in todo if r.status in ("done", "failed")]
    report.waiting = [r for r in todo if r.status not in ("done", "failed")]
    for start in range(0, len(movable), BATCH):
        report.renamed += store_rekey.rename(store, movable[start : start + BATCH])
        progress(f"renamed {len(report.renamed)} of {len(movable)} documents in Postgres")
    # also what an earlier, interrupted call renamed but did not move
    pending = store_rekey.unfollowed(store)
    for start in range(0, len(pending), BATCH):
        batch = pending[start : start + BATCH]
        report.materializations += follow(instance, batch)
        # a document archived by partition retention has a partition again, under its new id: no longer
        # archived (a later retention tick archives it again when it is due)
        store_retention.mark_restored(store, [r.new_id for r in batch if r.status is not None])
        store_rekey.followed(store, [r.old_id for r in batch])
        report.followed += batch
        progress(f"moved {len(report.followed)} of {len(pending)} documents in Dagster")
    return report


def follow(instance: dg.DagsterInstance, renames: Sequence[Rename]) -> int:
    """Move renamed documents' partitions; returns the materializations recorded."""
    existing = set(instance.get_dynamic_partitions(PARTITIONS))
    new_keys = [r.new_id for r in renames if r.status is not None and r.new_id not in existing]
    if new_keys:
        instance.add_dynamic_partitions(PARTITIONS, new_keys)
    recorded = 0
    for r in renames:
        if r.status == "done":
            recorded += _materialize(instance, r)
        if r.old_id in existing:
            instance.delete_dynamic_partition(PARTITIONS, r.old_id)
    return recorded


def _materialize(instance: dg.DagsterInstance, r: Rename) -> int:
    """Record each asset of a done document as materialized under its new id, unless it is already."""
    recorded = 0
    for name in STEPS:
        key = dg.AssetKey(name)
        if _latest(instance, key, r.new_id) is not None:
            continue  # materialized under the new id: by an earlier call, or a run since
        old = _latest(instance, key, r.old_id)
        metadata = dict(old.metadata) if old is not None else {}
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=key,
                partition=r.new_id,
                description=f"renamed from {r.old_id} by docflow rekey",
                metadata={**metadata, "renamed_from": dg.MetadataValue.text(r.old_id)},
            )
        )
        recorded += 1
    return recorded


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dg.AssetMaterialization | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0].asset_materialization if records else None
