"""Asset backfills as the UI launches them (*Materialize* on assets, a selection of partitions), for the
benchmark: no public API creates one outside the UI's GraphQL."""

import time
from collections.abc import Sequence

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.utils import make_new_backfill_id


def launch_asset_backfill(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    partition_keys: Sequence[str],
    asset_keys: Sequence[dg.AssetKey],
    title: str,
) -> str:
    """Request a backfill of `asset_keys` for `partition_keys`; the daemon splits it into runs by the assets'
    backfill policy. Returns the backfill's id (the runs carry it as tags.BACKFILL_ID_TAG)."""
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=defs.resolve_asset_graph(),
        partition_names=list(partition_keys),
        asset_selection=list(asset_keys),
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def backfill_status(instance: dg.DagsterInstance, backfill_id: str) -> str:
    """The backfill's status as the UI names it (`REQUESTED` while the daemon still launches its runs)."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise dg.DagsterInvariantViolationError(f"no backfill {backfill_id}")
    return backfill.status.value


REQUESTED = BulkActionStatus.REQUESTED.value
