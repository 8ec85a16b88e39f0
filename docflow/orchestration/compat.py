"""Every piece of Dagster's private API docflow uses, in one list, checked against the installed Dagster.

Dagster promises nothing about `dagster._*` modules or underscored names: an upgrade may move or change them
without a deprecation. Each one docflow relies on is named here with what it is for, and `check()`
verifies them all (names exist, the keyword parameters docflow passes are still accepted), so that an
upgrade fails at once, with a message naming the touchpoint and the Dagster versions docflow was tested
with, instead of somewhere inside a run. `check()` runs when docflow.orchestration is imported (the code
location, the daemon's run launcher and storage, `docflow up`); docflow_tests/test_orchestration.py tests
each touchpoint's behaviour.
"""

import importlib
import importlib.util
import inspect
import warnings
from dataclasses import dataclass
from functools import cache

import dagster

# Versions the touchpoints were written and tested against: [lowest, first untested).
TESTED_FROM, TESTED_BEFORE = (1, 13), (1, 14)
TESTED_RANGE = f"dagster >={TESTED_FROM[0]}.{TESTED_FROM[1]},<{TESTED_BEFORE[0]}.{TESTED_BEFORE[1]}"


@dataclass(frozen=True)
class Touchpoint:
    module: str
    name: str  # an attribute path inside the module, e.g. "DagsterEvent.asset_observation"; "" = the module
    used_for: str
    params: tuple[str, ...] = ()  # keyword parameters docflow passes (for callables)


TOUCHPOINTS: tuple[Touchpoint, ...] = (
    # the warm run launcher (orchestration/launcher.py)
    Touchpoint("dagster._core.launcher", "RunLauncher", "base class of WarmRunLauncher"),
    Touchpoint("dagster._core.launcher", "RunLauncher._instance", "the launcher's instance"),
    Touchpoint("dagster._core.launcher", "LaunchRunContext", "launch_run's argument"),
    Touchpoint(
        "dagster._core.launcher", "CheckRunHealthResult", "run monitoring's answer", ("status", "msg")
    ),
    Touchpoint("dagster._core.launcher", "WorkerStatus", "run monitoring's worker states"),
    Touchpoint("dagster._serdes", "ConfigurableClass", "a class dagster.yaml configures"),
    Touchpoint("dagster._serdes.config_class", "ConfigurableClassData", "dagster.yaml's data for a class"),
    Touchpoint(
        "dagster._cli.api",
        "_execute_run_command_body",
        "execute a run in a warm worker as `dagster api execute_run` does",
        ("run_id", "instance", "write_stream_fn", "set_exit_code_on_failure"),
    ),
    Touchpoint("dagster._utils.interrupts", "capture_interrupts", "SIGINT (terminate) stops a run at a step"),
    Touchpoint(
        "dagster._core.instance",
        "DagsterInstance.get_concurrency_config",
        "the run queue's max_concurrent_runs, the launcher's number of workers",
    ),
    # Postgres storage (orchestration/storage.py)
    Touchpoint(
        "dagster._core.storage.event_log.schema",
        "DynamicPartitionsTable",
        "partition keys' table: read incrementally, deleted in bulk (partition retention)",
    ),
    Touchpoint(
        "dagster_postgres.event_log",
        "PostgresEventLogStorage.__init__",
        "the stock storage docflow's classes extend",
        ("postgres_url", "should_autocreate_tables", "inst_data", "token_provider"),
    ),
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage._check_partitions_table", "as stock"),
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage.index_connection", "read partitions"),
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage.has_table", "kept once true"),
    # a run's planned-materialization events in one insert (DocflowEventLogStorage.store_event_batch)
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage.store_event_batch", "other batches"),
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage.prepare_insert_event_batch", "insert"),
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage._connect", "the insert's connection"),
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage.index_transaction", "the asset rows"),
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage._store_asset_event_tags", "as stock"),
    Touchpoint("dagster_postgres.event_log", "PostgresEventLogStorage._store_asset_event", "an asset's row"),
    Touchpoint("dagster._core.storage.event_log.schema", "SqlEventLogStorageTable", "the inserted ids"),
    Touchpoint("dagster_postgres.schedule_storage", "PostgresScheduleStorage.has_instigators_table", "kept"),
    Touchpoint("dagster_postgres.schedule_storage", "PostgresScheduleStorage.has_built_index", "kept"),
    Touchpoint(
        "dagster_postgres.utils", "create_pg_engine", "a pooled engine", ("postgres_url", "token_provider")
    ),
    Touchpoint("dagster_postgres.utils", "get_token_provider_from_config", "as the stock from_config_value"),
    Touchpoint("dagster_postgres.utils", "pg_url_from_config", "as the stock from_config_value"),
    # batched event writes (orchestration/events.py)
    Touchpoint(
        "dagster._core.events",
        "DagsterEvent.asset_observation",
        "log a batch's observations as one write",
        ("step_context", "observation", "batch_metadata"),
    ),
    Touchpoint("dagster._core.events", "DagsterEventBatchMetadata", "a batch's id and end", ("id", "is_end")),
    Touchpoint("dagster._core.events", "generate_event_batch_id", "a batch's id"),
    Touchpoint(
        "dagster._core.instance.utils",
        "_get_event_batch_size",
        "reads DAGSTER_EVENT_BATCH_SIZE, which turns batched writes on",
    ),
    # run tags (orchestration/tags.py)
    Touchpoint(
        "dagster._core.storage.tags", "ASSET_PARTITION_RANGE_START_TAG", "a run over a partition range"
    ),
    Touchpoint("dagster._core.storage.tags", "ASSET_PARTITION_RANGE_END_TAG", "a run over a partition range"),
    Touchpoint("dagster._core.storage.tags", "BACKFILL_ID_TAG", "the runs of a backfill"),
    # the benchmark's daemon and backfills (orchestration/processes.py, orchestration/backfill.py)
    Touchpoint(
        "dagster._daemon.__main__", "", "`python -m dagster._daemon run`, the daemon of `dagster dev`"
    ),
    Touchpoint("dagster._core.execution.backfill", "BulkActionStatus", "a backfill's status"),
    Touchpoint(
        "dagster._core.execution.backfill",
        "PartitionBackfill.from_asset_partitions",
        "an asset backfill as the UI launches it",
        (
            "backfill_id",
            "asset_graph",
            "partition_names",
            "asset_selection",
            "backfill_timestamp",
            "tags",
            "dynamic_partitions_store",
            "all_partitions",
            "title",
            "description",
            "run_config",
        ),
    ),
    Touchpoint("dagster._core.utils", "make_new_backfill_id", "a backfill's id"),
    # partition retention (orchestration/retention.py): what a backfill still requesting runs targets
    Touchpoint(
        "dagster._core.execution.backfill", "PartitionBackfill.partition_names", "a job backfill's partitions"
    ),
    Touchpoint(
        "dagster._core.execution.backfill",
        "PartitionBackfill.asset_backfill_data",
        "an asset backfill's data",
    ),
    Touchpoint(
        "dagster._core.definitions.assets.graph.asset_graph_subset",
        "AssetGraphSubset.iterate_asset_partitions",
        "the (asset, partition) pairs an asset backfill targets",
    ),
    # partition retention's asset events (orchestration/storage.py latest_materializations, forget_partitions)
    Touchpoint(
        "dagster._core.definitions.data_version", "DATA_VERSION_TAG", "a materialization's data version tag"
    ),
    Touchpoint(
        "dagster._core.storage.event_log.schema",
        "AssetEventTagsTable",
        "indexed tags of the deleted asset events",
    ),
    Touchpoint(
        "dagster._core.storage.event_log.schema",
        "AssetCheckExecutionsTable",
        "check executions of the archived partitions",
    ),
    Touchpoint(
        "dagster._core.storage.event_log.schema",
        "AssetKeyTable",
        "an asset's cached_status_data, dropped when events are deleted",
    ),
    # the partition bench's recorded materializations (orchestration/bench_events.py)
    Touchpoint(
        "dagster._core.events", "DagsterEvent", "a runless materialization event", ("event_type_value",)
    ),
    Touchpoint("dagster._core.events", "StepMaterializationData", "the materialization inside the event"),
    Touchpoint("dagster._core.events.log", "EventLogEntry", "the event log row's entry"),
    Touchpoint("dagster._core.instance.utils", "RUNLESS_JOB_NAME", "as report_runless_asset_event"),
    Touchpoint("dagster._core.instance.utils", "RUNLESS_RUN_ID", "as report_runless_asset_event"),
    Touchpoint("dagster_shared.serdes", "serialize_value", "one serialized event, copied per partition"),
    Touchpoint(
        "dagster._core.storage.event_log.base",
        "EventLogStorage.get_materialized_partitions",
        "the partitions already recorded",
    ),
    # the daemon's code paths, in-process for the partition bench (orchestration/daemon_path.py)
    Touchpoint("dagster._core.workspace.context", "WorkspaceProcessContext", "the daemon's workspace"),
    Touchpoint(
        "dagster._core.workspace.context",
        "WorkspaceProcessContext.create_request_context",
        "the code locations of a tick",
    ),
    Touchpoint(
        "dagster._core.workspace.context", "BaseWorkspaceRequestContext.code_locations", "find the sensor"
    ),
    Touchpoint("dagster._core.workspace.load_target", "WorkspaceFileTarget", "a workspace.yaml"),
    Touchpoint(
        "dagster._core.remote_representation.code_location",
        "CodeLocation.get_sensor_execution_data",
        "a sensor tick as the sensor daemon asks the code server for it",
    ),
    Touchpoint(
        "dagster._core.remote_representation.external", "RemoteRepository.get_sensor", "the remote sensor"
    ),
    Touchpoint("dagster._core.remote_representation.external", "RemoteRepository.has_sensor", "find it"),
    Touchpoint("dagster._daemon.sensor", "_submit_run_request", "create and submit a sensor's run request"),
    Touchpoint("dagster._daemon.sensor", "SubmitRunRequestResult", "its answer (error_info, run)"),
    Touchpoint("dagster._daemon.backfill", "execute_backfill_iteration", "one pass of the backfill daemon"),
    Touchpoint("dagster._core.execution.backfill", "PartitionBackfill.with_status", "cancel a backfill"),
    # deployment checks (orchestration/deployment.py)
    Touchpoint("dagster._config", "validate_config", "a class's config against its schema"),
    Touchpoint(
        "dagster._core.instance.config", "dagster_instance_config", "read and validate a dagster.yaml"
    ),
    Touchpoint("dagster._cli", "cli", "the `dagster` CLI's commands the images run"),
)


class DagsterApiChanged(ImportError):
    """A private Dagster name docflow relies on is gone or changed in the installed Dagster."""


def _version() -> tuple[int, int]:
    major, minor = dagster.__version__.split(".")[:2]
    return int(major), int(minor)


def resolve(touch: Touchpoint) -> object:
    """The touchpoint's object, or DagsterApiChanged naming it and the tested Dagster versions."""
    where = f"{touch.module}.{touch.name}" if touch.name else touch.module
    if not touch.name:  # a module to run (`python -m`), not to import here
        try:
            spec = importlib.util.find_spec(touch.module)
        except ImportError:
            spec = None
        if spec is None:
            raise DagsterApiChanged(_message(touch, f"{where} is missing"))
        return spec
    try:
        found: object = importlib.import_module(touch.module)
        for part in filter(None, touch.name.split(".")):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise DagsterApiChanged(_message(touch, f"{where} is missing ({exc})")) from exc
    if touch.params:
        try:
            accepted = inspect.signature(found).parameters  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise DagsterApiChanged(_message(touch, f"{where} is no longer callable ({exc})")) from exc
        missing = [p for p in touch.params if p not in accepted]
        if missing:
            raise DagsterApiChanged(_message(touch, f"{where} no longer takes {', '.join(missing)}"))
    return found


def _message(touch: Touchpoint, problem: str) -> str:
    return (
        f"docflow uses Dagster's private API: {problem}. Used for: {touch.used_for}. "
        f"Installed: dagster {dagster.__version__}; docflow is tested with {TESTED_RANGE} "
        "(pin that range, or update docflow/orchestration for this Dagster)."
    )


@cache
def check() -> None:
    """Verify every touchpoint (once per process). Raises DagsterApiChanged on the first one that changed;
    warns when the installed Dagster is outside the tested range even though every name still fits."""
    for touch in TOUCHPOINTS:
        resolve(touch)
    if not TESTED_FROM <= _version() < TESTED_BEFORE:
        warnings.warn(
            f"dagster {dagster.__version__} is outside the range docflow's private-API touchpoints were "
            f"tested with ({TESTED_RANGE}); they all still resolve, run docflow_tests/test_orchestration.py",
            stacklevel=2,
        )
