"""`docflow bench` sections at toy scale against the real services: they run and report what they claim."""

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
