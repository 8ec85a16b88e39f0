"""Batched event writes: a batch run's per-document observations go to the event log in one insert.

Dagster batches a step's events only when `DAGSTER_EVENT_BATCH_SIZE` is set in the process that executes the
step (it reads the variable when it writes); docflow sets it where it starts Dagster processes
(orchestration.instance.dagster_env and the warm run launcher's workers), never at import."""

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, generate_event_batch_id


def log_observations(context: dg.AssetExecutionContext, observations: list[dg.AssetObservation]) -> None:
    """Log observations as one write (with batching on) instead of a database round trip each. Through the
    step context Dagster opens to framework authors; DagsterEvent stores itself as it is made."""
    if not observations:
        return
    step = context.get_step_execution_context()
    batch = generate_event_batch_id()
    last = len(observations) - 1
    for i, observation in enumerate(observations):
        DagsterEvent.asset_observation(
            step_context=step,
            observation=observation,
            batch_metadata=DagsterEventBatchMetadata(id=batch, is_end=i == last),
        )
