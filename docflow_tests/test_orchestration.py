"""Dagster's private API as docflow uses it (docflow/orchestration): each touchpoint resolves on the installed
Dagster and does what docflow relies on, so that an upgrade that changes one fails here. The warm run
launcher's touchpoints are tested end to end in test_launcher.py, the storage classes' in
test_dagster_storage.py."""

import os
import subprocess
import sys
import uuid

import dagster as dg
import pytest
import sqlalchemy as db

from docflow.defs import build_defs
from docflow.defs.assets import ASSET_KEYS
from docflow.defs.partitions import documents
from docflow.orchestration import compat
from docflow.orchestration.backfill import REQUESTED, backfill_status, launch_asset_backfill
from docflow.orchestration.events import log_observations
from docflow.orchestration.instance import EVENT_BATCH_ENV, EVENT_BATCH_SIZE
from docflow.orchestration.tags import BACKFILL_ID_TAG, partition_range, range_tags
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings


def test_every_private_touchpoint_resolves_on_the_installed_dagster() -> None:
    compat.check()
    for touch in compat.TOUCHPOINTS:
        assert compat.resolve(touch) is not None, touch


@pytest.mark.parametrize(
    ("touch", "problem"),
    [
        (compat.Touchpoint("dagster._core.launcher", "RunLauncher.no_such_method", "a test"), "is missing"),
        (compat.Touchpoint("dagster._no_such_module", "Anything", "a test"), "is missing"),
        (compat.Touchpoint("dagster._no_such_module", "", "a test"), "is missing"),
        (
            compat.Touchpoint("dagster._cli.api", "_execute_run_command_body", "a test", ("renamed",)),
            "no longer takes renamed",
        ),
    ],
)
def test_a_changed_touchpoint_fails_naming_it_and_the_tested_versions(touch, problem) -> None:
    with pytest.raises(compat.DagsterApiChanged) as raised:
        compat.resolve(touch)
    message = str(raised.value)
    assert problem in message and "a test" in message
    assert f"dagster {dg.__version__}" in message and compat.TESTED_RANGE in message


def test_the_installed_dagster_is_in_the_tested_range() -> None:
    major, minor = (int(x) for x in dg.__version__.split(".")[:2])
    assert compat.TESTED_FROM <= (major, minor) < compat.TESTED_BEFORE, compat.TESTED_RANGE


def test_range_tags_make_a_run_over_a_partition_range() -> None:
    tags = range_tags("b", "d")
    assert partition_range(tags) == ("b", "d") and partition_range({"dagster/partition": "b"}) is None
    assert dg.RunRequest(tags=tags).partition_key_range == dg.PartitionKeyRange("b", "d")

    seen: list[str] = []

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a", "b", "c", "d", "e"]))
    def letters(context: dg.AssetExecutionContext) -> None:
        seen.extend(context.partition_keys)

    job = dg.Definitions(assets=[letters]).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(instance=instance, tags=tags).success
    assert seen == ["b", "c", "d"]


def _observation_inserts(instance: dg.DagsterInstance, observations: int) -> list[int]:
    """Materialize an asset that logs `observations` observations through log_observations; the rows each
    INSERT into the event log carried for them (one entry per statement)."""
    name = f"observed_{uuid.uuid4().hex[:8]}"

    @dg.asset(name=name)
    def observed(context: dg.AssetExecutionContext) -> None:
        log_observations(context, [dg.AssetObservation(name, metadata={"i": i}) for i in range(observations)])

    inserts: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO EVENT_LOGS"):
            return
        values = parameters.values() if isinstance(parameters, dict) else parameters
        rows = sum(v == "ASSET_OBSERVATION" for v in values)  # the dagster_event_type of each row
        if rows:
            inserts.append(rows)

    engine = instance.event_log_storage._engine
    db.event.listen(engine, "before_cursor_execute", count)
    try:
        assert dg.materialize([observed], instance=instance).success
    finally:
        db.event.remove(engine, "before_cursor_execute", count)
    records = instance.fetch_observations(dg.AssetKey(name), limit=observations + 1).records
    assert len(records) == observations  # every observation stored, either way
    return inserts


def test_batched_observations_are_written_in_one_insert(instance) -> None:
    # set by orchestration.instance.dagster_env, which the session's environment comes from (not at import)
    assert os.environ[EVENT_BATCH_ENV] == str(EVENT_BATCH_SIZE)
    assert _observation_inserts(instance, 7) == [7]


def test_without_batching_each_observation_is_its_own_insert(instance, monkeypatch) -> None:
    monkeypatch.setenv(EVENT_BATCH_ENV, "0")  # what an unset variable means to Dagster
    assert _observation_inserts(instance, 3) == [1, 1, 1]


def test_importing_the_definitions_reads_no_settings_and_sets_no_environment() -> None:
    env = {k: v for k, v in os.environ.items() if k != EVENT_BATCH_ENV}
    env["DOCFLOW_SENSOR_INTERVAL_S"] = "not a number"  # any read of the settings would fail
    code = (
        "import os\n"
        "import docflow.definitions, docflow.defs.assets, docflow.defs.sensors, docflow.defs.checks\n"
        f"assert {EVENT_BATCH_ENV!r} not in os.environ, 'set at import'\n"
        "from docflow.defs import build_defs\n"
        "from docflow.settings import Settings\n"
        "try:\n"
        "    build_defs(Settings())\n"
        "except ValueError:\n"
        "    print('settings read when the definitions are built')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "settings read when the definitions are built"


def test_a_backfill_is_requested_as_the_ui_requests_one(instance) -> None:
    keys = [f"backfill-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    instance.add_dynamic_partitions(documents.name, keys)
    backfill_id = launch_asset_backfill(
        instance, build_defs(get_settings()), keys[:2], ASSET_KEYS, "test: a backfill"
    )
    assert backfill_status(instance, backfill_id) == REQUESTED
    backfill = instance.get_backfill(backfill_id)
    assert backfill is not None and backfill.title == "test: a backfill"
    assert set(backfill.asset_selection) == set(ASSET_KEYS)
    targeted = backfill.asset_backfill_data.target_subset  # what the daemon turns into runs
    for key in ASSET_KEYS:
        assert set(targeted.get_partitions_subset(key).get_partition_keys()) == set(keys[:2])
    assert BACKFILL_ID_TAG == "dagster/backfill"  # the tag the bench finds the backfill's runs by


def test_deployment_checks_find_a_bad_config_and_a_missing_command() -> None:
    from docflow.orchestration.deployment import config_errors, dagster_command

    assert config_errors(dg.QueuedRunCoordinator, {"max_concurrent_runs": 4}) == []
    assert config_errors(dg.QueuedRunCoordinator, {"max_concurrent_runs": "many"})
    assert dagster_command("instance", "migrate").name == "migrate"
    with pytest.raises(KeyError):
        dagster_command("instance", "no-such-command")
