import dagster as dg

# One partition per document; the key is the document id (tenant + content hash, see docflow.bucket).
documents = dg.DynamicPartitionsDefinition(name="documents")


def keys_in_range(instance: dg.DagsterInstance, start: str, end: str) -> list[str]:
    """The document partitions from `start` to `end` in the order they were added (a batch run's range)."""
    every = instance.get_dynamic_partitions(documents.name)
    position = {k: i for i, k in enumerate(every)}
    if start not in position or end not in position:
        return []
    return list(every[position[start] : position[end] + 1])
