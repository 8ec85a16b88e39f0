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
