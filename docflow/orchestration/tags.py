"""Run tags Dagster reads but exports only from a private module: a run over a range of partitions (no public
`RunRequest` argument makes one) and the id of the backfill a run belongs to."""

from collections.abc import Callable, Iterable, Mapping, Sequence

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
)

__all__ = ["BACKFILL_ID_TAG", "partition_range", "range_tags", "run_partitions"]


def range_tags(start: str, end: str) -> dict[str, str]:
    """Tags of a run that materializes the partitions from `start` to `end` (in the order they were added)."""
    return {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}


def partition_range(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """(start, end) of a run over a partition range, or None for any other run."""
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
    return None


def run_partitions(tags_of_runs: Iterable[Mapping[str, str]], keys: Callable[[], Sequence[str]]) -> list[str]:
    """The partitions runs process, from their tags: a single run's partition, or every key of a batch run's
    range in `keys()`, the partition keys in the order they were added (called once, only for a range)."""
    found: list[str] = []
    every: Sequence[str] | None = None
    position: dict[str, int] = {}
    for tags in tags_of_runs:
        if "dagster/partition" in tags:
            found.append(tags["dagster/partition"])
        elif (bounds := partition_range(tags)) is not None:
            if every is None:
                every = keys()
                position = {k: i for i, k in enumerate(every)}
            start, end = bounds
            if start in position and end in position:
                found += every[position[start] : position[end] + 1]
    return found
