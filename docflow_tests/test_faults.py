"""Faults with real processes: a run worker killed with SIGKILL mid-asset, the embedded Postgres restarted
between runs, the S3 server down while the sensor ticks, and a remote API answering 429 (Retry-After) and
500s. After each, docflow converges: nothing lost, nothing duplicated, failures listed and retryable."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from drive import cursor_now, drain, tick
from openai_stub import StubServer

from docflow import ingest
from docflow.defs.assets import build_assets
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.embedded.postgres import ensure_postgres, stop_postgres
from docflow.embedded.s3 import ensure_s3, stop_s3
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings

SAMPLES = REPO_ROOT / "data" / "samples"


def _register(rt, instance, path: Path, tenant: str) -> str:
    """Upload a sample made unique for `tenant` (docflow run's path: registered, then written)."""
    target = Path(tempfile.mkdtemp()) / path.name
    target.write_bytes(path.read_bytes() + f"\n{tenant}\n".encode())
    up = ingest.plan_upload(target, target.parent, rt.settings.prefix, tenant)
    ingest.upload(rt.bucket, rt.store, up)
    instance.add_dynamic_partitions(documents.name, [up.doc_id])
    return up.doc_id


def _counts(rt, doc_id: str) -> dict[str, int]:
    with rt.store.tx() as conn:
        return {
            table: conn.execute(
                f"SELECT count(*) AS n FROM docflow.{table} WHERE doc_id = %s", (doc_id,)
            ).fetchone()["n"]
            for table in ("documents", "classifications", "parsed_documents", "extractions", "chunks")
        }


def _chunk_indexes(rt, doc_id: str) -> list[int]:
    with rt.store.tx() as conn:
        rows = conn.execute(
            "SELECT chunk_index FROM docflow.chunks WHERE doc_id = %s ORDER BY chunk_index", (doc_id,)
        ).fetchall()
    return [r["chunk_index"] for r in rows]


WORKER = """
import sys
from docflow.runtime import runtime
from docflow.runner import process
process(runtime(), [sys.argv[1]], force=True, progress=print)
"""


def test_a_run_worker_killed_mid_asset_converges_on_re_execution(rt, instance) -> None:
    tenant = f"k{uuid.uuid4().hex[:6]}"
    doc_id = _register(rt, instance, SAMPLES / "letter-tenancy.html", tenant)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, doc_id],
        env=dict(os.environ),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # kill -9 as soon as raw_file is written: the next steps (and their model loads) are under way
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if rt.store.get_document(doc_id).stage is not None:
                break
            time.sleep(0.02)
        assert worker.poll() is None, "the worker finished before it could be killed"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    half = rt.store.get_document(doc_id)
    assert half.status in ("running", "pending") and half.stage != "embeddings"
    assert rt.store.count_chunks(doc_id) == 0  # no half-written document is visible as searchable
    # the killed run still holds the pool slots of the steps it was in: free them, as the daemon's run
    # monitoring does once it has failed the run (`free_slots_after_run_end_seconds` in dagster.yaml); left
    # held, they fill the pools and every later run waits for them
    for killed in instance.get_runs(dg.RunsFilter(tags={"dagster/partition": doc_id})):
        instance.event_log_storage.free_concurrency_slots_for_run(killed.run_id)

    from docflow.runner import process

    process(rt, [doc_id], force=True, progress=lambda _: None)  # the re-execution
    first = _counts(rt, doc_id)
    assert rt.store.get_document(doc_id).status == "done"
    assert first["documents"] == first["classifications"] == first["parsed_documents"] == 1
    assert first["extractions"] == 1 and first["chunks"] > 0
    indexes = _chunk_indexes(rt, doc_id)
    assert indexes == list(range(len(indexes)))  # no duplicate or missing chunk


def test_postgres_restarted_during_a_run_is_survived(rt, instance) -> None:
    import threading

    from docflow.settings import get_settings

    tenant = f"r{uuid.uuid4().hex[:6]}"
    doc_id = _register(rt, instance, SAMPLES / "receipt-corner-cafe.txt", tenant)
    settings = get_settings()
    runs: list[dg.ExecuteInProcessResult] = []
    run = threading.Thread(
        target=lambda: runs.append(
            dg.materialize(
                build_assets(get_settings()),
                partition_key=doc_id,
                instance=instance,
                resources={"docflow": DocflowResource()},
                raise_on_error=False,
            )
        )
    )
    run.start()
    deadline = time.monotonic() + 120
    while rt.store.get_document(doc_id).stage is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stop_postgres(settings.home)  # mid-run: raw_file is written, the next steps are under way
    ensure_postgres(settings.home, settings.embedded_pg_port)
    # docflow's own pooled connections died with the server: they are checked and replaced, not handed out
    assert rt.store.known([doc_id])[doc_id] in ("running", "done")
    run.join(300)
    assert runs
    if not runs[0].success:
        # Dagster's event log lives on the same server: a write of the step's own events can fail during
        # the restart, which Dagster reports as a step failure (not retried by the RetryPolicy). The
        # document is then neither done nor lost; re-executing the run (run retries, `docflow run --force`)
        # converges.
        assert rt.store.get_document(doc_id).status != "done"
        # its steps' ends may not have been written either, so their pool slots were never freed: free them
        # as run monitoring does for an ended run (`free_slots_after_run_end_seconds` in dagster.yaml)
        instance.event_log_storage.free_concurrency_slots_for_run(runs[0].run_id)
        from docflow.runner import process

        process(rt, [doc_id], force=True, progress=lambda _: None)
    assert rt.store.get_document(doc_id).status == "done"
    assert rt.store.count_chunks(doc_id) > 0


def test_the_s3_server_down_fails_ticks_softly_and_misses_no_object(rt, instance) -> None:
    from docflow.settings import get_settings

    settings = get_settings()
    tenant = f"s{uuid.uuid4().hex[:6]}"
    cursor = cursor_now(rt)
    before = [f"{rt.settings.prefix}{tenant}/before-{i}.txt" for i in range(3)]
    for key in before:
        rt.bucket.put_bytes(key, f"{key} written before the outage".encode())
    assert stop_s3(settings.home)
    try:
        down, outage_ends = [], time.monotonic() + 30  # down for 30 s, the sensor ticking all along
        while time.monotonic() < outage_ends or len(down) < 3:
            down.append(tick(instance, cursor))  # no exception: the ticks fail softly
            time.sleep(2)
        assert all(not r.run_requests for r in down)
        assert all(r.cursor == cursor for r in down)  # the cursor does not move past unseen objects
    finally:
        ensure_s3(settings.home, settings.embedded_s3_port, settings.bucket)
    after = [f"{rt.settings.prefix}{tenant}/after-{i}.txt" for i in range(2)]
    for key in after:
        rt.bucket.put_bytes(key, f"{key} written after the outage".encode())
    driven = drain(instance, cursor, execute=False)
    registered = {k for d in rt.store.list_documents(tenant=tenant) for k in [d.key]}
    assert registered == set(before + after)
    assert len([d for d in driven.documents if d.startswith(tenant)]) == 5


def _reply(messages) -> str:
    return '{"doc_type": "receipt", "confidence": 0.9, "reasoning": "says Total and Receipt"}'


@pytest.fixture
def openai_classifier(monkeypatch):
    """The openai classification backend against a local stub (the real client, over HTTP), with the
    asset's retry delay shortened so exhausting the retries takes seconds (the policy's count is kept)."""
    from docflow.defs.assets import RETRY

    with StubServer() as (stub, base_url):
        stub.chat_reply = _reply
        monkeypatch.setenv("DOCFLOW_CLASSIFY_BACKEND", "openai")
        monkeypatch.setenv("DOCFLOW_OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("DOCFLOW_OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("DOCFLOW_REMOTE_MAX_RETRIES", "1")
        policy = RETRY["classification"]
        monkeypatch.setitem(
            RETRY, "classification", dg.RetryPolicy(max_retries=policy.max_retries, delay=0.1)
        )
        yield stub


def test_a_remote_api_429_and_500s_are_retried_then_dead_lettered_then_retryable(
    rt, instance, openai_classifier
) -> None:
    from docflow.runner import retry_failed
    from docflow.settings import Settings

    stub = openai_classifier
    tenant = f"o{uuid.uuid4().hex[:6]}"
    doc_id = _register(rt, instance, SAMPLES / "receipt-corner-cafe.txt", tenant)

    # 429 with Retry-After: the client waits as told, then succeeds
    stub.fail("/chat/completions", 429, {"retry-after": "2"})
    from docflow.backends import get_classifier

    classifier = get_classifier(Settings())
    started = len(stub.requests)
    result = classifier.classify_text("Receipt. Total 3.20", "r.txt")
    calls = stub.requests[started:]
    assert result.doc_type == "receipt" and len(calls) == 2
    assert calls[1].at - calls[0].at >= 1.9  # Retry-After honoured

    # 500s without end: every attempt of every retry fails; the document is failed with the reason
    for _ in range(40):
        stub.fail("/chat/completions", 500)
    run = dg.materialize(
        build_assets(get_settings()),
        partition_key=doc_id,
        instance=instance,
        resources={"docflow": DocflowResource()},
        raise_on_error=False,
    )
    assert not run.success
    retries = [e for e in run.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 5 and {e.step_key for e in retries} == {"classification"}
    doc = rt.store.get_document(doc_id)
    assert doc.status == "failed"
    assert doc.error.startswith("classification: BackendUnavailable: OpenAI is unavailable (HTTP 500)")
    assert "after 5 retries" in doc.error
    assert doc_id in {d.doc_id for d in rt.store.list_documents(tenant=tenant, status="failed")}

    # the service is back: `docflow retry --failed` processes the dead letters
    stub._failures.clear()
    summary = retry_failed(Settings(), tenant)
    assert [(s.doc_id, s.status, s.doc_type) for s in summary] == [(doc_id, "done", "receipt")]
