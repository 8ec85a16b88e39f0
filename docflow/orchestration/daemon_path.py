"""The daemon's own code paths, called in-process for the partition bench: a sensor's run request turned into
a queued run, and one pass of the backfill daemon. Both are private to dagster-daemon (no public API creates
a run the way the daemon does), and both run against a workspace whose code location is a code server, as
the daemon's do."""

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

LOG = logging.getLogger("docflow.bench.daemon_path")


@contextmanager
def workspace(instance: dg.DagsterInstance, workspace_file: Path) -> Iterator[object]:
    """A workspace process context (what the daemon holds) over `workspace_file`."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace_file)])) as context:
        yield context


def _sensor(request_context, sensor_name: str):
    """(code location, remote sensor) of the sensor named so."""
    return next(
        (location, repo.get_sensor(sensor_name))
        for location in request_context.code_locations
        for repo in location.get_repositories().values()
        if repo.has_sensor(sensor_name)
    )


def evaluate_sensor(context, sensor_name: str, cursor: str | None):
    """A tick of the sensor as the sensor daemon asks the code server for it (with this cursor, no previous
    tick); returns the code server's answer (run requests, partition requests, cursor)."""
    location, remote_sensor = _sensor(context.create_request_context(), sensor_name)
    return location.get_sensor_execution_data(
        context.instance, remote_sensor.handle.repository_handle, sensor_name, None, None, cursor, None, None
    )


def submit_sensor_run(context, sensor_name: str, run_request: dg.RunRequest) -> dg.DagsterRun:
    """What the sensor daemon does with one of a tick's run requests: fetch the job from the code location,
    ask the code server for the execution plan, create the run (for a partition range, its planned asset
    events) and submit it to the run queue. Returns the run."""
    from dagster._daemon.sensor import _submit_run_request

    _, remote_sensor = _sensor(context.create_request_context(), sensor_name)
    result = _submit_run_request(str(uuid.uuid4()), run_request, context, remote_sensor, {}, LOG, None)
    if result.error_info is not None:
        raise RuntimeError(f"the run was created but not submitted: {result.error_info.message}")
    return result.run  # type: ignore[return-value]


def backfill_iteration(context) -> list[str]:
    """One pass of the backfill daemon over the requested backfills; the errors it reported."""
    from dagster._daemon.backfill import execute_backfill_iteration

    return [error.message for error in execute_backfill_iteration(context, LOG) if error is not None]


def cancel_backfill(instance: dg.DagsterInstance, backfill_id: str) -> None:
    """Mark a backfill canceled (the bench removes its runs itself)."""
    from dagster._core.execution.backfill import BulkActionStatus

    backfill = instance.get_backfill(backfill_id)
    if backfill is not None:
        instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
