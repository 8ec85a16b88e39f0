"""Quotas at every entrance and per-key rate limits, on the real services: the S3 sensor and `docflow run`
count new documents against the tenant's daily quota in the same Postgres row lock as the API's uploads
(documents over it are registered as failed, not run); `docflow retry --failed` counts them again; the API
answers 429 with Retry-After past a key's request burst."""

import asyncio
import hashlib
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner
from drive import cursor_now, tick
from live import LiveServer

from docflow import reporting
from docflow.api.ratelimit import RateLimited, RateLimiter
from docflow.bucket import make_doc_id
from docflow.cli import cli
from docflow.defs.partitions import documents
from docflow.models import Document
from docflow.settings import get_settings
from docflow.store import tenants as db
from docflow.store.quotas import Limits


@pytest.fixture
def tenant() -> str:
    return f"q{uuid.uuid4().hex[:8]}"


def _usage(rt, tenant: str) -> tuple[int, int]:
    with rt.store.tx() as conn:
        row = conn.execute(
            "SELECT documents, bytes FROM docflow.quota_usage WHERE tenant = %s "
            "AND day = (now() AT TIME ZONE 'UTC')::date",
            (tenant,),
        ).fetchone()
    return (row["documents"], row["bytes"]) if row else (0, 0)


def _requested(result: dg.SensorResult) -> set[str]:
    """Every document a tick's run requests cover (partitions and ranges over the partitions it adds)."""
    added = [k for r in result.dynamic_partitions_requests or [] for k in r.partition_keys]
    docs = set(added)
    for r in result.run_requests or []:
        if r.partition_key:
            docs.add(r.partition_key)
    return docs


def _doc(rt, tenant: str, i: int, body: bytes | None = None) -> Document:
    body = body or f"Note {i} of {tenant}: quota test.\n".encode()
    sha = hashlib.sha256(body).hexdigest()
    return Document(
        doc_id=make_doc_id(tenant, sha, f"n{i}.txt"),
        tenant=tenant,
        bucket=rt.bucket.name,
        key=f"{rt.settings.prefix}{tenant}/n{i}.txt",
        sha256=sha,
        size=len(body),
        filename=f"n{i}.txt",
    )


def test_the_sensor_registers_documents_over_the_quota_as_failed_and_requests_no_run(
    rt, instance, tenant
) -> None:
    db.set_limits(rt.store, tenant, docs_per_day=2, bytes_per_day=None)
    base = cursor_now(rt)
    for i in range(3):
        rt.bucket.put_bytes(f"incoming/{tenant}/doc{i}.txt", f"letter {i} for {tenant}\n".encode())

    result = tick(instance, base)
    docs = rt.store.list_documents(tenant=tenant)
    assert len(docs) == 3  # never dropped
    refused = [d for d in docs if d.status == "failed"]
    assert len(refused) == 1
    assert refused[0].error == "quota exceeded: 2 new documents per day"
    requested = _requested(result)
    assert {d.doc_id for d in docs if d.status == "pending"} <= requested
    assert refused[0].doc_id not in requested  # no run, no partition
    assert _usage(rt, tenant)[0] == 2
    # the reconciliation report lists it among the failures, not as drift (its partition comes with a retry)
    partitions = set(instance.get_dynamic_partitions(documents.name))
    report = reporting.build_report(rt.store, None, rt.settings.prefix, {}, partitions, sample=10**6)
    assert refused[0].doc_id not in report.without_partition
    assert {d.doc_id for d in docs if d.status == "pending"} <= set(report.without_partition)
    assert any(r.reason.startswith("quota exceeded") for r in report.failure_reasons)

    # listed again (a new tick with the old cursor): counted once, still no run for the refused one
    again = tick(instance, base)
    assert refused[0].doc_id not in _requested(again)
    assert _usage(rt, tenant)[0] == 2
    assert rt.store.get_document(refused[0].doc_id).status == "failed"


def test_documents_the_api_registered_are_not_counted_again_when_the_sensor_lists_them(
    rt, instance, tenant
) -> None:
    limits = Limits.of(rt.settings)
    doc = _doc(rt, tenant, 0)

    async def api_upload():
        api = db.ApiDb(db.api_database_url(rt.settings), max_size=2)
        try:
            return await db.register_upload(api, doc, 0, False, limits, synchronous=True)
        finally:
            await api.close()

    base = cursor_now(rt)
    registered = asyncio.run(api_upload())
    assert registered.new and _usage(rt, tenant) == (1, doc.size)
    rt.bucket.put_bytes(doc.key, f"Note 0 of {tenant}: quota test.\n".encode())
    result = tick(instance, base)
    assert registered.doc_id in _requested(result)  # the sensor runs it, as before
    assert _usage(rt, tenant) == (1, doc.size)  # and does not count it twice


def test_concurrent_registrations_from_the_sensor_path_and_the_api_are_counted_exactly(rt, tenant) -> None:
    """Eight owner registrations (threads) and eight API uploads (one event loop) at once, limit six: exactly
    six are counted, whichever entrance they came through."""
    db.set_limits(rt.store, tenant, docs_per_day=6, bytes_per_day=None)
    limits = Limits.of(rt.settings)
    owner_docs = [_doc(rt, tenant, i) for i in range(8)]
    api_docs = [_doc(rt, tenant, 100 + i) for i in range(8)]
    start = threading.Barrier(9)

    async def api_side() -> list[bool]:
        api = db.ApiDb(db.api_database_url(rt.settings), max_size=8)
        await api.pool()

        async def one(d: Document) -> bool:
            try:
                await db.register_upload(api, d, 0, False, limits, synchronous=True)
                return True
            except db.QuotaExceeded:
                return False

        try:
            start.wait()
            return list(await asyncio.gather(*(one(d) for d in api_docs)))
        finally:
            await api.close()

    def owner(d: Document) -> bool:
        start.wait()
        return rt.store.register_counted(d, limits).refused is None

    with ThreadPoolExecutor(9) as pool:
        api_future = pool.submit(lambda: asyncio.run(api_side()))
        owner_ok = list(pool.map(owner, owner_docs))
        api_ok = api_future.result()
    assert sum(owner_ok) + sum(api_ok) == 6
    counted = [d for d, ok in zip(owner_docs + api_docs, owner_ok + api_ok, strict=True) if ok]
    assert _usage(rt, tenant) == (6, sum(d.size for d in counted))
    rows = {d.doc_id: d for d in rt.store.list_documents(tenant=tenant)}
    # the owner's refused documents are registered as failed; the API's are not registered (its 429)
    assert len(rows) == 6 + owner_ok.count(False)
    assert all(
        rows[d.doc_id].status == "failed" for d, ok in zip(owner_docs, owner_ok, strict=True) if not ok
    )
    assert all(d.status == "pending" for d in rows.values() if d.doc_id in {c.doc_id for c in counted})

    # the byte quota, with its own message
    db.set_limits(rt.store, tenant, docs_per_day=100, bytes_per_day=_usage(rt, tenant)[1] + 10)
    big = _doc(rt, tenant, 999, b"x" * 11)
    assert rt.store.register_counted(big, limits).refused == (
        f"quota exceeded: {_usage(rt, tenant)[1] + 10} bytes per day"
    )


def test_retry_counts_a_refused_document_again_and_runs_it_once_the_quota_allows(
    rt, instance, tenant
) -> None:
    db.set_limits(rt.store, tenant, docs_per_day=1, bytes_per_day=None)
    base = cursor_now(rt)
    rt.bucket.put_bytes(
        f"incoming/{tenant}/first.txt", f"Receipt one for {tenant}. Total 3.20 EUR\n".encode()
    )
    rt.bucket.put_bytes(
        f"incoming/{tenant}/second.txt", f"Receipt two for {tenant}. Total 4.10 EUR\n".encode()
    )
    tick(instance, base)
    [refused] = rt.store.list_documents(tenant=tenant, status="failed")
    assert refused.error.startswith("quota exceeded")
    assert refused.doc_id not in instance.get_dynamic_partitions(documents.name)  # no partition: no run

    # still over the quota: the CLI says so and runs nothing
    out = CliRunner().invoke(cli, ["retry", "--failed", "--tenant", tenant], catch_exceptions=False)
    assert out.exit_code == 1
    assert "quota exceeded: 1 new documents per day" in out.output
    assert "not run" in out.output
    assert rt.store.get_document(refused.doc_id).status == "failed"
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": refused.doc_id}))
    assert runs == []
    assert _usage(rt, tenant)[0] == 1

    # the operator raises the quota: retry counts it against today's quota and processes it
    raised = CliRunner().invoke(cli, ["quota", tenant, "--docs", "2"], catch_exceptions=False)
    assert raised.exit_code == 0 and "1 of 2 new documents" in raised.output
    from docflow.runner import retry_failed

    summary = retry_failed(get_settings(), tenant)
    assert [(s.doc_id, s.status) for s in summary] == [(refused.doc_id, "done")]
    assert _usage(rt, tenant)[0] == 2
    # setting one limit keeps the other
    shown = CliRunner().invoke(cli, ["quota", tenant, "--bytes", "5000", "--json"], catch_exceptions=False)
    assert json.loads(shown.output) | {"day": None} == {
        "tenant": tenant,
        "day": None,
        "documents": 2,
        "bytes": _usage(rt, tenant)[1],
        "docs_per_day": 2,
        "bytes_per_day": 5000,
    }


def test_docflow_run_counts_new_documents_and_does_not_run_those_over_the_quota(rt, tenant, tmp_path) -> None:
    from docflow.runner import run_paths

    db.set_limits(rt.store, tenant, docs_per_day=1, bytes_per_day=None)
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"Receipt {name} for {tenant}. Total 2.00 EUR\n")
    summary = run_paths([tmp_path], tenant, get_settings())
    assert sorted(s.status for s in summary) == ["done", "failed"]
    [failed] = [s for s in summary if s.status == "failed"]
    assert failed.error == "quota exceeded: 1 new documents per day"
    assert _usage(rt, tenant)[0] == 1
    # the bytes are in the bucket for a retry, and running the same files again counts nothing new
    rt.bucket.head(rt.store.get_document(failed.doc_id).key)
    again = run_paths([tmp_path], tenant, get_settings())
    assert sorted(s.status for s in again) == ["done", "failed"]
    assert _usage(rt, tenant)[0] == 1


# --- per-key request rate limits ---------------------------------------------------------------------------


def test_the_token_bucket_refills_at_the_rate() -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    limiter.take("k", now=0.0)
    limiter.take("k", now=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.take("k", now=0.0)
    assert refused.value.retry_after == 1
    limiter.take("k", now=1.0)  # one token a second
    limiter.take("other", now=1.0)  # each key its own bucket
    RateLimiter(per_minute=0, burst=1).take("k")  # 0 = off: never raises


@pytest.fixture(scope="module")
def limited_server(docflow_env, instance):
    """The API on a free loopback port, with a small rate limit: 12 requests a minute, 3 at once."""
    from docflow.api.app import create_app

    settings = get_settings().model_copy(update={"api_requests_per_minute": 12, "api_request_burst": 3})
    live = LiveServer(create_app(settings, instance))
    yield live.url
    live.stop()


def test_a_key_past_its_burst_gets_429_with_retry_after_and_other_keys_do_not(rt, limited_server) -> None:
    tenant = f"r{uuid.uuid4().hex[:8]}"
    keys = [db.create_api_key(rt.store, tenant, "a"), db.create_api_key(rt.store, tenant, "b")]
    other = db.create_api_key(rt.store, f"{tenant}x", "c")

    def get(key: str, path: str = "/v1/usage") -> httpx.Response:
        return httpx.get(f"{limited_server}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)

    assert [get(keys[0]).status_code for _ in range(3)] == [200, 200, 200]
    refused = get(keys[0], "/v1/documents")  # every authenticated route counts
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 5  # a token every 5 s
    assert refused.json()["error"] == "rate_limited"
    assert "12 requests per minute" in refused.json()["detail"]
    assert get(keys[1]).status_code == 200  # another key of the same tenant
    assert get(other).status_code == 200  # another tenant
    upload = httpx.post(
        f"{limited_server}/v1/documents",
        files={"file": ("x.txt", b"rate limited upload")},
        headers={"X-API-Key": keys[0]},
        timeout=30,
    )
    assert upload.status_code == 429 and rt.store.list_documents(tenant=tenant) == []
    time.sleep(int(refused.headers["retry-after"]))
    assert get(keys[0]).status_code == 200  # refilled
