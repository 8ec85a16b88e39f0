"""`docflow bench` sections at toy scale against the real services: they run and report what they claim."""

import subprocess
import sys
import time
import uuid

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


def test_bare_loop_counts_one_s3_read_and_the_transactions_per_document(rt) -> None:
    from docflow.bench.pipeline import bare_loop, make_documents

    run = bare_loop(rt.settings, make_documents(4, seed=6), workers=2)
    # one GET per document: raw_file reads the object once and the later steps reuse its bytes
    assert run["bare_s3_requests_per_doc"] == {"GetObject": 1.0}
    docflow_db = rt.settings.database_url.rsplit("/", 1)[-1].split("?")[0]
    assert run["bare_pg_per_doc"][docflow_db]["xact_commit"] >= 5  # at least a write per step
    assert run["bare_work_total_s"] > 0


def test_s3_counter_counts_each_request_by_operation(rt) -> None:
    from docflow.bench.costs import S3Counter, per_doc

    counter = S3Counter()
    counter.attach(rt.bucket._client)
    key = f"bench-counter/{uuid.uuid4().hex}.txt"
    rt.bucket.put_bytes(key, b"counted")
    rt.bucket.get_bytes(key)
    rt.bucket.head(key)
    rt.bucket.delete(key)
    assert dict(counter.counts) == {"PutObject": 1, "GetObject": 1, "HeadObject": 1, "DeleteObject": 1}
    assert per_doc(counter.counts, 2) == {
        "DeleteObject": 0.5,
        "GetObject": 0.5,
        "HeadObject": 0.5,
        "PutObject": 0.5,
    }


def test_pg_counters_see_sessions_and_transactions(rt) -> None:
    import psycopg

    from docflow.bench.costs import pg_counters, pg_per_doc

    url = rt.settings.database_url
    before = pg_counters(url)
    for _ in range(3):
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(4):
                conn.execute("SELECT 1")
    time.sleep(1.5)  # a backend reports its statistics at the latest a second after its last transaction
    delta = pg_per_doc(before, pg_counters(url), docs=1)
    db = url.rsplit("/", 1)[-1].split("?")[0]
    assert delta[db]["sessions"] >= 3
    assert delta[db]["xact_commit"] >= 12


SPAWNER = """
import multiprocessing, sys, time

def child():
    block = bytearray(80 * 2**20)  # touched: resident
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(60)

if __name__ == "__main__":
    p = multiprocessing.get_context("spawn").Process(target=child)
    p.start()
    print(p.pid, flush=True)
    p.join()
"""


def test_process_sampler_counts_a_spawned_worker_apart_from_its_parent(tmp_path) -> None:
    from docflow.bench.costs import ProcessSampler

    script = tmp_path / "spawner.py"
    script.write_text(SPAWNER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(proc.stdout.readline())
        sampler = ProcessSampler({"daemon": proc.pid})
        for _ in range(40):  # until the child has touched its block
            sampler.sample()
            if (sampler.peak_mb["rss"].get(f"worker-{child}") or 0) > 80:
                break
            time.sleep(0.25)
        report = sampler.stop()
    finally:
        proc.kill()
        proc.wait()
    by_process = report["peak_rss_by_process_mb"]
    assert len(by_process["workers"]) == 1 and by_process["workers"][0] > 80
    assert "daemon" in by_process and by_process["daemon"] < by_process["workers"][0]
    assert report["peak_rss_mb"] >= by_process["daemon"] + by_process["workers"][0] - 1
    assert 0 < report["peak_pss_worker_mb"] <= report["peak_rss_worker_mb"]


def _run(created: float, starts: list[float], ends: list[float], work: float) -> dict:
    """A run as run_timeline reports it: five steps back to back from `starts` to `ends`."""
    steps = {f"s{i}": {"start": s, "end": e} for i, (s, e) in enumerate(zip(starts, ends, strict=True))}
    return {
        "run_id": f"r{created}",
        "created": created,
        "PIPELINE_ENQUEUED": created + 0.2,
        "PIPELINE_STARTING": created + 1.0,
        "PIPELINE_START": created + 1.5,
        "PIPELINE_SUCCESS": ends[-1] + 0.5,
        "steps": steps,
        "work": {"s0": work},
    }


def test_fixed_costs_split_the_time_from_upload_to_the_last_run() -> None:
    from docflow.bench.costs import fixed_costs

    # two slots; the load starts at 0 and uploads in 2 s; a tick at 3 s creates two runs 1 s apart
    first = _run(4.0, [6.0, 8.0], [7.5, 12.0], work=5.0)  # starts 5.5, ends 12.5
    second = _run(5.0, [7.0, 9.0], [8.5, 14.0], work=6.0)  # starts 6.5, ends 14.5
    ticks = [{"start": 3.0, "end": 6.0, "run_ids": ["r4.0", "r5.0"]}]
    costs = fixed_costs([first, second], ticks, 0.0, 2.0, slots=2, done_at=14.0)
    assert costs["first_run_created_after_s"] == 4.0
    assert costs["first_run_started_after_s"] == 5.5
    assert costs["tick_to_first_run_created_s_p50"] == 1.0
    assert costs["run_create_s_p50"] == 1.0
    assert costs["run_created_to_enqueued_s_p50"] == 0.2
    assert costs["run_queued_s_p50"] == 0.8 and costs["run_handover_s_p50"] == 0.5
    assert costs["run_start_to_first_step_s_p50"] == 0.5
    assert costs["between_steps_s_p50"] == 0.5
    assert costs["work_total_s"] == 11.0
    # busy = 7 + 8 slot-seconds; the window from the first start (5.5) to the last end (14.5) has 18
    assert costs["busy_slot_s"] == 15.0 and costs["idle_slot_s"] == 3.0
    # inside the runs: the busy time but for the documents' own time
    assert costs["run_overhead_total_s"] == costs["busy_slot_s"] - costs["work_total_s"]
    assert costs["last_runs_end_apart_s"] == 2.0


def test_excess_parts_add_up_to_the_difference_with_the_plain_loop() -> None:
    from docflow.bench.pipeline import excess_parts

    fixed = {
        "slots": 2,
        "first_run_started_after_s": 5.0,
        "run_overhead_total_s": 8.0,
        "idle_slot_s": 6.0,
        "work_total_s": 204.0,
    }
    parts = excess_parts(120.0, {"bare_wall_s": 100.0, "bare_work_total_s": 200.0}, fixed)
    assert parts == {
        "excess_s": 20.0,
        "to_first_run_start_s": 5.0,
        "run_overhead_s": 4.0,
        "idle_slots_s": 3.0,
        "work_difference_s": 2.0,
        "rest_s": 6.0,
    }


def test_workers_instance_config_opens_every_run_slot_to_one_tenant() -> None:
    from docflow.bench.workers import instance_config

    runs = instance_config(3)["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] == 3
    assert [t["limit"] for t in runs["tag_concurrency_limits"] if t["key"] == "docflow/tenant"] == [3]
    # other limits (a backfill's) stay as the repository's dagster.yaml has them
    assert [t["limit"] for t in runs["tag_concurrency_limits"] if t["key"] == "dagster/backfill"] == [2]
