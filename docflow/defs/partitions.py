from collections.abc import Iterable

import dagster as dg

from docflow.orchestration.tags import run_partitions

# One partition per document; the key is the document id (tenant, file name, content hash: docflow.bucket).
documents = dg.DynamicPartitionsDefinition(name="documents")


def documents_of_runs(instance: dg.DagsterInstance, runs: Iterable[dg.DagsterRun]) -> list[str]:
    """The documents the runs process: a single run's partition, or a batch run's range of partitions (from
    start to end in the order they were added). The partition keys are loaded once, for all the ranges."""
    return run_partitions((run.tags for run in runs), lambda: instance.get_dynamic_partitions(documents.name))
