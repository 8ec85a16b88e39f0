"""Completion webhooks on the real services: endpoints (API, CLI), the outbox trigger on docflow.documents,
delivery by `webhook_sensor` / `deliver_due` to a local HTTP receiver: signatures, event ids, retries with
backoff, dead letters, the per-tick time budget, and tenants kept apart."""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources

import dagster as dg
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from live import Receiver

from docflow.api.app import create_app
from docflow.cli import cli
from docflow.defs.resources import DocflowResource
from docflow.models import Document
from docflow.settings import get_settings
from docflow.store import tenants
from docflow.store import webhooks as outbox
from docflow.webhooks import backoff, deliver_due, verify

LOOPBACK = '["127.0.0.1/32"]'


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def settings(docflow_env):
    return get_settings().model_copy(
        update={
            "api_fetch_allow_networks": ("127.0.0.1/32",),
            "webhook_max_attempts": 3,
            "webhook_backoff_s": 60.0,
            "webhook_timeout_s": 5.0,
        }
    )


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _tenant() -> str:
    return f"wh{uuid.uuid4().hex[:8]}"


def _finish(rt, tenant: str, status: str = "done") -> str:
    """A registered document of `tenant` marked done (or failed) the way the pipeline's store does it."""
    sha = uuid.uuid4().hex * 2
    doc = Document(
        doc_id=f"{tenant}-{sha[:12]}",
        tenant=tenant,
        bucket="docflow-test",
        key=f"incoming/{tenant}/{sha[:8]}.txt",
        sha256=sha,
        filename=f"{sha[:8]}.txt",
        size=10,
        content_type="text/plain",
    )
    rt.store.register(doc)
    rt.store.set_status(doc.doc_id, "running", stage="raw_file")
    rt.store.set_status(doc.doc_id, status, stage="embeddings", error="boom" if status == "failed" else None)
    return doc.doc_id


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# --- the whole path ----------------------------------------------------------------------------------------


def test_a_processed_document_is_posted_once_per_endpoint_signed_with_an_event_id(
    rt, instance, receiver, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("DOCFLOW_API_FETCH_ALLOW_NETWORKS", LOOPBACK)  # the CLI's and the sensor's settings
    tenant = _tenant()
    secrets = {}
    for path in ("/a", "/b"):
        added = _invoke("webhooks", "add", f"{receiver.url}{path}/{tenant}", "--tenant", tenant)
        assert added.exit_code == 0, added.output
        lines = dict(line.split(": ", 1) for line in added.output.splitlines())
        secrets[path] = lines["secret"]
    assert _invoke("webhooks", "add", "ftp://example.com/x", "--tenant", tenant).exit_code != 0

    sentence = f"The quarterly figures of {tenant} are confidential."
    (tmp_path / "memo.txt").write_text(f"MEMO\n\n{sentence}\nTotal: 12.00 EUR\n")
    result = _invoke("run", str(tmp_path / "memo.txt"), "--tenant", tenant, "--json")
    assert result.exit_code == 0, result.output
    [doc] = json.loads(result.stdout)
    assert doc["status"] == "done"

    webhook_sensor = _sensor("webhook_sensor")
    context = dg.build_sensor_context(instance=instance, resources={"docflow": DocflowResource()})
    webhook_sensor(context)

    event_ids = set()
    for path, secret in secrets.items():
        [(headers, payload)] = receiver.to(f"{path}/{tenant}")
        raw = next(b for p, _, b in receiver.requests if p == f"{path}/{tenant}")
        assert verify(secret, raw, headers["X-Docflow-Signature"])
        assert not verify(secrets["/b" if path == "/a" else "/a"], raw, headers["X-Docflow-Signature"])
        assert headers["X-Docflow-Event"] == "document.done"
        assert headers["X-Docflow-Event-Id"] == payload["event_id"]
        event_ids.add(payload["event_id"])
        assert payload["doc_id"] == doc["doc_id"] and payload["tenant"] == tenant
        assert payload["filename"] == "memo.txt" and payload["status"] == "done"
        assert payload["doc_type"] == doc["doc_type"] and payload["error"] is None
        assert payload["finished_at"] and payload["created_at"]
        assert sentence not in raw.decode()  # metadata only, never the document's content
    assert len(event_ids) == 1  # one event, the same id at every endpoint: receivers dedupe on it

    # delivered once: the next tick sends nothing again
    webhook_sensor(dg.build_sensor_context(instance=instance, resources={"docflow": DocflowResource()}))
    assert len([p for p, _, _ in receiver.requests if p.endswith(f"/{tenant}")]) == 2
    rows = outbox.deliveries(rt.store, doc["doc_id"])
    assert [(r["state"], r["attempts"], r["last_status"]) for r in rows] == [("delivered", 1, 200)] * 2

    status = _invoke("status", "--tenant", tenant)
    assert f"webhooks {tenant}: 2 delivered, 0 pending, 0 dead" in status.output
    listed = json.loads(_invoke("webhooks", "list", "--tenant", tenant, "--json").stdout)
    assert [(e["delivered"], e["pending"], e["dead"]) for e in listed] == [(1, 0, 0)] * 2
    assert all("secret" not in e for e in listed)


def test_each_time_a_document_finishes_is_a_new_event(rt, receiver, settings) -> None:
    tenant = _tenant()
    outbox.create_endpoint(rt.store, tenant, f"{receiver.url}/again/{tenant}")
    doc_id = _finish(rt, tenant)
    rt.store.set_status(doc_id, "done", stage="embeddings")  # no transition: no event
    assert len(outbox.deliveries(rt.store, doc_id)) == 1
    rt.store.set_status(doc_id, "running", stage="raw_file")  # processed again (re-run, new configuration)
    rt.store.set_status(doc_id, "failed", stage="parsed_markdown", error="parse: broken")
    rows = outbox.deliveries(rt.store, doc_id)
    assert [r["event"] for r in rows] == ["document.done", "document.failed"]
    assert rows[0]["event_id"] != rows[1]["event_id"]
    assert rows[1]["payload"]["error"] == "parse: broken"

    deliver_due(rt.store, settings)
    got = receiver.to(f"/again/{tenant}")
    assert sorted(h["X-Docflow-Event"] for h, _ in got) == ["document.done", "document.failed"]


def test_passthrough_documents_are_left_to_their_own_webhook(rt) -> None:
    tenant = _tenant()
    outbox.create_endpoint(rt.store, tenant, "http://127.0.0.1:9/never")
    sha = uuid.uuid4().hex * 2
    doc = Document(doc_id=f"{tenant}-p", tenant=tenant, bucket="b", key=f"incoming/{tenant}/p", sha256=sha)
    rt.store.register(doc)
    with rt.store.tx() as conn:
        conn.execute("UPDATE docflow.documents SET passthrough = true WHERE doc_id = %s", (doc.doc_id,))
    rt.store.set_status(doc.doc_id, "done")
    assert outbox.deliveries(rt.store, doc.doc_id) == []


# --- retries, dead letters, time budget --------------------------------------------------------------------


def test_a_failing_receiver_gets_the_event_on_the_third_attempt_with_backoff(rt, receiver, settings) -> None:
    tenant = _tenant()
    path = f"/flaky/{tenant}"
    receiver.script[path] = [500, 500]
    outbox.create_endpoint(rt.store, tenant, receiver.url + path)
    doc_id = _finish(rt, tenant)
    clock = Clock()

    deliver_due(rt.store, settings, clock)
    [row] = outbox.deliveries(rt.store, doc_id)
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, 500)
    wait = (row["next_attempt_at"] - clock.now).total_seconds()
    assert 30 <= wait <= 60  # backoff_s, jittered in its upper half

    deliver_due(rt.store, settings, clock)  # not due yet: not sent
    assert len(receiver.to(path)) == 1
    clock.advance(wait + 1)
    deliver_due(rt.store, settings, clock)
    [row] = outbox.deliveries(rt.store, doc_id)
    assert (row["attempts"], row["state"]) == (2, "pending")
    assert 60 <= (row["next_attempt_at"] - clock.now).total_seconds() <= 120  # doubled
    clock.advance(121)
    deliver_due(rt.store, settings, clock)

    got = receiver.to(path)
    assert [h["X-Docflow-Delivery-Attempt"] for h, _ in got] == ["1", "2", "3"]
    assert len({h["X-Docflow-Event-Id"] for h, _ in got}) == 1  # the same event each time
    [row] = outbox.deliveries(rt.store, doc_id)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 3, 200)
    clock.advance(86400)
    deliver_due(rt.store, settings, clock)
    assert len(receiver.to(path)) == 3  # delivered: never sent again


def test_a_receiver_that_always_fails_is_dead_lettered_and_shown(rt, receiver, settings) -> None:
    tenant = _tenant()
    path = f"/down/{tenant}"
    receiver.script[path] = [503] * 100
    outbox.create_endpoint(rt.store, tenant, receiver.url + path)
    doc_id = _finish(rt, tenant, "failed")
    clock = Clock()
    for _ in range(6):
        deliver_due(rt.store, settings, clock)
        clock.advance(86400)
    assert len(receiver.to(path)) == settings.webhook_max_attempts == 3
    [row] = outbox.deliveries(rt.store, doc_id)
    assert (row["state"], row["attempts"], row["last_status"]) == ("dead", 3, 503)

    status = _invoke("status", "--tenant", tenant)
    assert f"webhooks {tenant}: 0 delivered, 0 pending, 1 dead" in status.output
    listed = _invoke("webhooks", "list", "--tenant", tenant).output
    assert "0 delivered, 0 pending, 1 dead; last error: HTTP 503" in listed

    # the receiver is fixed: the dead letter is sent again, with a fresh set of attempts
    receiver.script[path] = []
    retried = _invoke("webhooks", "retry", "--dead", "--tenant", tenant)
    assert "1 deliveries queued again" in retried.output
    deliver_due(rt.store, settings, clock)
    [row] = outbox.deliveries(rt.store, doc_id)
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 1, 200)
    assert len({h["X-Docflow-Event-Id"] for h, _ in receiver.to(path)}) == 1


def test_a_slow_receiver_costs_one_timeout_per_tick_and_blocks_no_other(rt, receiver, settings) -> None:
    tenant = _tenant()
    slow, fast = f"/slow/{tenant}", f"/fast/{tenant}"
    receiver.delay[slow] = 5.0
    outbox.create_endpoint(rt.store, tenant, receiver.url + slow)
    outbox.create_endpoint(rt.store, tenant, receiver.url + fast)
    docs = [_finish(rt, tenant) for _ in range(3)]
    quick = settings.model_copy(update={"webhook_timeout_s": 1.0})

    started = time.monotonic()
    report = deliver_due(rt.store, quick, budget_s=5.0)
    assert time.monotonic() - started < 3.0  # one timeout of 1 s, not three, and no 5 s wait
    assert len(receiver.to(fast)) == 3
    assert len(receiver.to(slow)) == 1
    assert report.released >= 2
    pending = [r["attempts"] for d in docs for r in outbox.deliveries(rt.store, d) if r["state"] == "pending"]
    # the timed-out one counts an attempt; the two given back unsent do not
    assert sorted(pending) == [0, 0, 1]


def test_the_event_is_written_with_the_status_and_survives_a_sender_that_dies(rt, receiver, settings) -> None:
    tenant = _tenant()
    path = f"/crash/{tenant}"
    outbox.create_endpoint(rt.store, tenant, receiver.url + path)
    doc_id = _finish(rt, tenant, "failed")

    # a status change that rolls back leaves no event behind (the outbox is written in its transaction)
    with pytest.raises(RuntimeError), rt.store.tx() as conn:
        conn.execute("UPDATE docflow.documents SET status = 'done' WHERE doc_id = %s", (doc_id,))
        raise RuntimeError("the process stops before committing")
    assert [r["event"] for r in outbox.deliveries(rt.store, doc_id)] == ["document.failed"]

    # a sender claims the delivery, then dies before posting: after its lease, another one sends it
    clock = Clock()
    [claimed] = [
        c
        for c in outbox.claim_due(rt.store, clock(), 1000, 1000, timedelta(seconds=90))
        if c.doc_id == doc_id
    ]
    deliver_due(rt.store, settings, clock)
    assert receiver.to(path) == []  # leased: nobody else sends it meanwhile
    clock.advance(91)
    deliver_due(rt.store, settings, clock)
    [(headers, payload)] = receiver.to(path)
    assert headers["X-Docflow-Event-Id"] == claimed.event_id and payload["status"] == "failed"
    [row] = outbox.deliveries(rt.store, doc_id)
    assert (row["state"], row["attempts"]) == ("delivered", 2)  # the dead sender's attempt counts


def test_two_senders_at_once_post_each_event_once(rt, receiver, settings) -> None:
    tenant = _tenant()
    paths = [f"/pair{i}/{tenant}" for i in range(3)]
    for path in paths:
        receiver.delay[path] = 0.05
        outbox.create_endpoint(rt.store, tenant, receiver.url + path)
    for _ in range(8):
        _finish(rt, tenant)
    senders = [threading.Thread(target=deliver_due, args=(rt.store, settings)) for _ in range(2)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(60)
    for path in paths:
        ids = [h["X-Docflow-Event-Id"] for h, _ in receiver.to(path)]
        assert len(ids) == len(set(ids)) == 8, path


def test_finished_deliveries_are_pruned_after_the_keeping_period(rt, receiver, settings) -> None:
    tenant = _tenant()
    outbox.create_endpoint(rt.store, tenant, f"{receiver.url}/prune/{tenant}")
    old, recent = _finish(rt, tenant), _finish(rt, tenant)
    deliver_due(rt.store, settings)
    with rt.store.tx() as conn:
        conn.execute(
            "UPDATE docflow.webhook_deliveries SET created_at = now() - interval '31 days' WHERE doc_id = %s",
            (old,),
        )
    report = deliver_due(rt.store, settings.model_copy(update={"webhook_keep_days": 30}))
    assert report.pruned >= 1
    assert outbox.deliveries(rt.store, old) == []
    assert [r["state"] for r in outbox.deliveries(rt.store, recent)] == ["delivered"]


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    assert [backoff(n, 10, 1000, lambda: 1.0) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert [backoff(n, 10, 1000, lambda: 0.0) for n in (1, 2, 3)] == [5, 10, 20]
    assert backoff(30, 10, 1000, lambda: 1.0) == 1000


def test_the_migration_can_run_again(rt) -> None:
    sql = resources.files("docflow.store").joinpath("migrations/0010_webhooks.sql").read_text()
    with rt.store.tx() as conn:
        conn.execute(sql)


# --- the API -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(docflow_env) -> Iterator[TestClient]:
    app = create_app(get_settings().model_copy(update={"api_fetch_allow_networks": ("127.0.0.1/32",)}))
    with TestClient(app) as client:
        yield client


def _key(rt, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenants.create_api_key(rt.store, tenant, 'test')}"}


def test_api_endpoints_are_created_listed_and_deleted_by_their_tenant_only(rt, api, receiver) -> None:
    a, b = _tenant(), _tenant()
    ka, kb = _key(rt, a), _key(rt, b)
    assert api.get("/v1/webhooks").status_code == 401

    created = api.post("/v1/webhooks", json={"url": f"{receiver.url}/api/{a}"}, headers=ka)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["url"] == f"{receiver.url}/api/{a}"
    for bad in ("ftp://example.com/x", "not a url", "http://10.0.0.1/hook", "http://169.254.169.254/"):
        r = api.post("/v1/webhooks", json={"url": bad}, headers=ka)
        assert r.status_code == 400, (bad, r.text)

    [listed] = api.get("/v1/webhooks", headers=ka).json()
    assert listed["id"] == endpoint["id"] and "secret" not in listed
    assert (listed["delivered"], listed["pending"], listed["dead"]) == (0, 0, 0)

    # the other tenant sees nothing and cannot delete it, through the API or its database role
    assert api.get("/v1/webhooks", headers=kb).json() == []
    assert api.delete(f"/v1/webhooks/{endpoint['id']}", headers=kb).status_code == 404
    as_b = tenants.TenantStore(tenants.api_database_url(rt.settings), b)
    assert outbox.list_endpoints(as_b) == []
    assert not outbox.delete_endpoint(as_b, endpoint["id"], None)

    # at most 20 endpoints a tenant: each one multiplies every document's deliveries
    for i in range(19):
        assert api.post("/v1/webhooks", json={"url": f"{receiver.url}/n{i}"}, headers=kb).status_code == 201
    r = api.post("/v1/webhooks", json={"url": f"{receiver.url}/n20"}, headers=kb)
    assert r.status_code == 201
    r = api.post("/v1/webhooks", json={"url": f"{receiver.url}/n21"}, headers=kb)
    assert r.status_code == 409 and r.json()["error"] == "too_many_endpoints"
    assert len(api.get("/v1/webhooks", headers=kb).json()) == 20
    assert len(api.get("/v1/webhooks", headers=ka).json()) == 1

    # the owner's deliveries show in its list
    doc_id = _finish(rt, a)
    [listed] = api.get("/v1/webhooks", headers=ka).json()
    assert listed["pending"] == 1
    assert api.delete(f"/v1/webhooks/{endpoint['id']}", headers=ka).status_code == 204
    assert api.get("/v1/webhooks", headers=ka).json() == []
    assert outbox.deliveries(rt.store, doc_id) == []  # its pending deliveries went with it
    assert api.delete(f"/v1/webhooks/{endpoint['id']}", headers=ka).status_code == 404
    assert api.delete("/v1/webhooks/not-a-uuid", headers=ka).status_code == 404


def _sensor(name: str) -> dg.SensorDefinition:
    from docflow.defs import build_defs

    return build_defs(get_settings()).resolve_sensor_def(name)
