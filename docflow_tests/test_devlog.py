"""What `docflow dev` prints about runs: the follower reads the real instance and store of the test session
after real runs (a processed document, a failed one, a batch of failed ones) and says, per run, whether it
started, finished or failed, with the document's file name and the reason."""

import threading
import uuid
from datetime import UTC, datetime

import dagster as dg
import pytest
from drive import cursor_now, drain

from docflow.bucket import make_doc_id
from docflow.defs import build_defs
from docflow.devlog import RunFollower, start
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings

RECEIPT = REPO_ROOT / "data" / "samples" / "receipt-corner-cafe.txt"


def _upload(rt, tmp_path, tenant: str, name: str, data: bytes) -> str:
    import hashlib

    path = tmp_path / name
    path.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    rt.bucket.upload_file(path, f"{rt.settings.prefix}{tenant}/{name}", sha256=sha256)
    return make_doc_id(tenant, sha256, name)


@pytest.fixture(scope="module")
def runs(rt, instance, tmp_path_factory):
    """A good document and a blank one, each in a run of its own, then four blank ones in two batches (a
    bulk load is spread over the tenant's two run slots)."""
    tmp = tmp_path_factory.mktemp("devlog")
    tenant = f"dl{uuid.uuid4().hex[:6]}"
    since = datetime.now(UTC)
    cursor = cursor_now(rt)
    ids = {"good": _upload(rt, tmp, tenant, "corner-cafe.txt", RECEIPT.read_bytes() + tenant.encode())}
    cursor = drain(instance, cursor).cursor
    ids["blank"] = _upload(rt, tmp, tenant, "blank-note.txt", b"  \n\n " + b" " * 7)
    cursor = drain(instance, cursor).cursor
    batch = [_upload(rt, tmp, tenant, f"empty-{i}.txt", b"\n" * (3 + i)) for i in range(4)]
    driven = drain(instance, cursor)
    assert [r.job_name for r in driven.requests] == ["process_batch"] * 2
    return {"since": since, "ids": ids, "batch": batch}


def _lines(rt, instance, runs) -> list[str]:
    return RunFollower(instance, rt.store, since=runs["since"]).poll()


def test_a_processed_document_is_one_line_with_its_file_name(rt, instance, runs) -> None:
    lines = _lines(rt, instance, runs)
    (line,) = [x for x in lines if runs["ids"]["good"] in x]
    assert line.startswith("run ") and " finished in " in line
    assert "process_documents: corner-cafe.txt" in line and line.endswith(" done")


def test_a_failed_document_names_its_file_its_step_and_the_reason(rt, instance, runs) -> None:
    lines = _lines(rt, instance, runs)
    (line,) = [x for x in lines if runs["ids"]["blank"] in x]
    assert " FAILED " in line and "process_documents: blank-note.txt" in line
    assert ": raw_file: no text" in line


def test_a_batch_says_how_its_documents_ended_and_lists_the_failed_ones(rt, instance, runs) -> None:
    lines = _lines(rt, instance, runs)
    heads = [x for x in lines if "process_batch" in x]
    assert len(heads) == 2
    failed = []
    for head in heads:
        assert " finished in " in head and head.endswith("process_batch: 2 documents: 2 failed")
        failed += lines[lines.index(head) + 1 : lines.index(head) + 3]
    for line in failed:
        assert line.startswith("  failed empty-") and ": raw_file: no text" in line
    assert sorted(d for d in runs["batch"] for line in failed if f"({d})" in line) == sorted(runs["batch"])


def test_each_change_is_said_once_and_runs_before_the_start_not_at_all(rt, instance, runs) -> None:
    follower = RunFollower(instance, rt.store, since=runs["since"])
    assert len(follower.poll()) == 8  # two single runs, two batches and their four failed documents
    assert follower.poll() == []
    assert RunFollower(instance, rt.store, since=datetime.now(UTC)).poll() == []


def test_a_started_run_then_a_run_failed_outside_its_steps(rt, instance, runs) -> None:
    """A run the follower sees in flight is said to start; a run failed with no failed document (its
    worker died, say) gets the run's own failure message as the reason."""
    follower = RunFollower(instance, rt.store, since=datetime.now(UTC))
    job = build_defs(get_settings()).resolve_job_def("process_documents")
    doc_id = runs["ids"]["good"]
    run = instance.create_run_for_job(
        job, status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": doc_id}
    )
    (started,) = follower.poll()
    assert started == f"run {run.run_id[:8]} started    process_documents: corner-cafe.txt ({doc_id})"
    instance.report_run_failed(run, message="the worker process is gone")
    failed, reason = follower.poll()
    assert failed.startswith(f"run {run.run_id[:8]} FAILED") and failed.endswith(f"({doc_id}) done")
    assert reason == "  reason: the worker process is gone"


def test_the_thread_prints_timestamped_lines_until_stopped(rt, instance, runs) -> None:
    printed: list[str] = []
    got = threading.Event()

    def echo(line: str) -> None:
        printed.append(line)
        got.set()

    stop = start(instance, rt.store, echo, interval=0.2)
    try:
        job = build_defs(get_settings()).resolve_job_def("process_documents")
        run = instance.create_run_for_job(
            job, status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": runs["ids"]["blank"]}
        )
        assert got.wait(30)
    finally:
        stop.set()
    instance.report_run_canceled(run)
    (line,) = printed
    assert line[:9].count(":") == 2 and line[9:].startswith(f"run {run.run_id[:8]} started")


def test_a_run_of_another_job_is_named_by_its_job(rt, instance) -> None:
    follower = RunFollower(instance, rt.store, since=datetime.now(UTC))
    job = build_defs(get_settings()).resolve_job_def("reconcile_documents")
    run = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
    assert follower.poll() == [f"run {run.run_id[:8]} started    reconcile_documents"]
    instance.report_run_failed(run, message="Run timed out")
    head, reason = follower.poll()
    assert head == f"run {run.run_id[:8]} FAILED    reconcile_documents"
    assert reason == "  reason: Run timed out"


def test_a_failed_document_run_prints_no_stack_trace(rt, instance, runs, capfd) -> None:
    """The document jobs' own config keeps Dagster's console logger to critical messages, so a run the
    sensor launches (no run config) prints nothing per event and no trace for a failed document."""
    job = build_defs(get_settings()).resolve_job_def("process_documents")
    capfd.readouterr()
    result = job.execute_in_process(
        partition_key=runs["ids"]["blank"], instance=instance, raise_on_error=False
    )
    assert not result.success
    printed = capfd.readouterr()
    assert "STEP_FAILURE" not in printed.err + printed.out and "Stack Trace" not in printed.err + printed.out
    assert "STEP_START" not in printed.err + printed.out
