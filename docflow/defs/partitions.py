from collections.abc import Iterable

import dagster as dg

from docflow.orchestration.tags import partition_range

# One partition per document; the key is the document id (tenant, file name, content hash: docflow.bucket).
documents = dg.DynamicPartitionsDefinition(name="documents")


def documents_of_runs(instance: dg.DagsterInstance, runs: Iterable[dg.DagsterRun]) -> list[str]:
    """The documents the runs process: a single run's partition, or a batch run's range of partitions (from
    start to end in the order they were added). The partition keys are loaded once, for all the ranges."""
    keys: list[str] = []
    every: list[str] | None = None
    position: dict[str, int] = {}
    for run in runs:
        if "dagster/partition" in run.tags:
            keys.append(run.tags["dagster/partition"])
        elif (bounds := partition_range(run.tags)) is not None:
            if every is None:
                every = list(instance.get_dynamic_partitions(documents.name))
                position = {k: i for i, k in enumerate(every)}
            start, end = bounds
            if start in position and end in position:
                keys += every[position[start] : position[end] + 1]
    return keys
