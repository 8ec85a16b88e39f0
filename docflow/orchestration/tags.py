"""Run tags Dagster reads but exports only from a private module: a run over a range of partitions (no public
`RunRequest` argument makes one) and the id of the backfill a run belongs to."""

from collections.abc import Mapping

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
)

__all__ = ["BACKFILL_ID_TAG", "partition_range", "range_tags"]


def range_tags(start: str, end: str) -> dict[str, str]:
    """Tags of a run that materializes the partitions from `start` to `end` (in the order they were added)."""
    return {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}


def partition_range(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """(start, end) of a run over a partition range, or None for any other run."""
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
    return None
