"""`docflow bench` sections at toy scale against the real services: they run and report what they claim."""

import pytest

from docflow import ingest
from docflow.bench import BenchOptions, run_bench
from docflow.settings import Settings


def test_sensor_section_finds_every_fresh_object_with_listing_spread_over_ticks(rt, monkeypatch) -> None:
    monkeypatch.setattr(ingest, "LIST_PAGE", 10)  # the listing budget is checked every 10 keys
    settings = Settings(sensor_list_budget_s=0.001)  # so each tick lists about 10 keys
    report = run_bench(settings, BenchOptions(extra={"objects": 60, "new": 5}), only=["sensor"])
    section = report["sensor"]
    assert section["objects"] == 60 and section["partitions"] >= 60
    assert [r["found"] for r in section["rounds"]] == [5, 5, 5]
    assert all(r["ticks"] > 1 for r in section["rounds"])  # 60+ keys, about 10 a tick: a pass takes ticks
    assert report["sensor_tick_s"] == section["sensor_tick_s"] > 0


def test_bare_loop_processes_every_document_and_runs_average_into_one_baseline(rt) -> None:
    from docflow.bench.pipeline import bare_loop, make_documents, mean_of_bare_loops
    from docflow.pipeline import STEPS

    docs = make_documents(3, seed=5)
    runs = [bare_loop(rt.settings, docs, workers=1) for _ in range(2)]
    for run in runs:
        with rt.store.tx() as conn:
            statuses = conn.execute(
                "SELECT status FROM docflow.documents WHERE tenant = %s", (run["bare_tenant"],)
            ).fetchall()
        assert [r["status"] for r in statuses] == ["done"] * 3
        assert run["bare_wall_s"] > 0 and set(run["bare_per_asset_s"]) == set(STEPS)
    baseline = mean_of_bare_loops(runs)
    assert baseline["bare_runs_wall_s"] == [r["bare_wall_s"] for r in runs]
    assert baseline["bare_wall_s"] == round((runs[0]["bare_wall_s"] + runs[1]["bare_wall_s"]) / 2, 2)
    assert baseline["bare_tenants"] == [r["bare_tenant"] for r in runs]


@pytest.mark.slow
def test_partitions_section_measures_each_mode_and_retention_removes_the_old_partitions(rt, instance) -> None:
    import dagster as dg

    from docflow.bench.partitions import TENANT, TICK_TENANT, doc_id
    from docflow.defs.partitions import documents
    from docflow.store import synthetic

    extra = {"sizes": [200], "docs_per_day": 10, "retention_days": 10, "repeat": 1, "ticks": 1, "new": 3}
    report = run_bench(Settings(), BenchOptions(extra=extra), only=["partitions"])
    section = report["partitions"]
    assert section["model"]["kept_with_retention"] == 100
    size = section["sizes"]["200"]
    assert size["registration"]["materializations_recorded"] == 200
    off, on = size["retention_off"], size["retention_on"]
    for mode in (off, on):
        assert "broken" not in mode, mode
        for page in ("asset_page", "partitions_tab"):
            queries = mode["ui"][page]["queries"]
            assert queries and all(
                q["s"] and "error" not in q and "broken" not in q for q in queries.values()
            )
        assert mode["sensor"]["ticks"][0]["registered"] == 3 and mode["sensor"]["sensor_tick_s"] > 0
        assert mode["sensor"]["create_run_s"] > 0  # the tick's batch became a run
        assert mode["backfill"]["dialog_s"] > 0 and mode["backfill"]["first_run_s"] > 0
        assert mode["backfill"]["runs"] >= 1 and "error" not in mode["backfill"]["launch"]
        assert set(mode["status"]) == {"status_s", "status_one_s", "status_failed_s"}
    # retention archives the documents processed before the window: about half, as the model says
    assert size["retention"]["archived"] in (100, 101)
    assert on["partitions"] == off["partitions"] - size["retention"]["archived"]
    health_off = off["ui"]["partitions_tab"]["queries"]["PartitionHealthQuery"]
    health_on = on["ui"]["partitions_tab"]["queries"]["PartitionHealthQuery"]
    assert health_off["materialized_partitions"] >= 200
    assert health_on["partition_keys"] == health_off["partition_keys"] - size["retention"]["archived"]
    summary = size["summary"]
    assert summary["retention_on"]["partitions"] < summary["retention_off"]["partitions"]
    # the rows, partitions and materializations are removed afterwards (no keep option)
    assert synthetic.count(rt.store, TENANT) == (0, 0)
    assert doc_id(0) not in set(instance.get_dynamic_partitions(documents.name))
    assert not instance.get_runs(dg.RunsFilter(tags={"docflow/tenant": TICK_TENANT}))  # created, then deleted
