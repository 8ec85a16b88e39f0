"""Passthrough keeps nothing. A sentinel sentence in a passthrough document reaches the tenant's webhook (in
the markdown and the chunks, with their vectors) and, after delivery, is found nowhere docflow or Dagster
write: not in the bucket, not in any table of the docflow schema, not in Dagster's storage (event log, runs,
every table of its database), not in DAGSTER_HOME on disk (the compute logs), not in the workers' byte
cache. While the document is processed, its content stays out of Dagster's records altogether.

A control document with a sentinel of its own, uploaded without passthrough, is found in the same places by
the same searches: the searches can find what they look for.

Real services: the embedded Postgres and S3 of the session, the real Dagster instance (compute logs captured
by its compute log manager, as in production), the API over loopback HTTP, the sensors' own code, and a
webhook receiver on 127.0.0.1 started here."""

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import psycopg
import pytest
from drive import covered, cursor_now, tick
from live import LiveServer, Receiver
from openai_stub import StubServer

from docflow import backends
from docflow.api.app import create_app
from docflow.defs import build_defs
from docflow.defs.metadata import PASSTHROUGH_KEYS
from docflow.defs.partitions import documents
from docflow.defs.report import document_report
from docflow.defs.resources import DocflowResource
from docflow.models import Document
from docflow.passthrough import verify
from docflow.settings import get_settings
from docflow.store import tenants as db

# Dagster prints every event to the run's stderr at DEBUG: whatever it prints lands in the compute logs
LOUD = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


@pytest.fixture(scope="module")
def api(docflow_env, instance) -> Iterator[str]:
    settings = get_settings().model_copy(update={"api_fetch_allow_networks": ("127.0.0.1/32",)})
    live = LiveServer(create_app(settings, instance))
    yield live.url
    live.stop()


def document(sentinel: str) -> bytes:
    """A markdown note with the sentinel in a sentence of its body."""
    return (
        "# Board meeting notes\n\n"
        "Present: the chair, the treasurer and two members.\n\n"
        f"## Decisions\n\nThe secret word agreed today is {sentinel} and nobody may keep it.\n\n"
        "The budget for next year was approved without changes.\n"
    ).encode()


def wait_stored(rt, key: str) -> None:
    """The API acknowledges a small upload once it is in its spool, and writes the bucket right after."""
    deadline = time.monotonic() + 30
    while True:
        try:
            rt.bucket.head(key)
            return
        except Exception:
            assert time.monotonic() < deadline, f"{key} never reached the bucket"
            time.sleep(0.1)


def run_as_sensor_requests(instance, cursor: str, doc_ids: list[str], succeed: bool = True) -> dict[str, str]:
    """One tick of the real s3_document_sensor from `cursor` (taken before the uploads: the session's other
    objects are left alone), then each requested run of process_documents executed with the sensor's tags
    on the real instance (in process, as a warm worker executes it). doc_id -> run_id."""
    defs = build_defs(get_settings())
    result = tick(instance, cursor)
    requests = {r.partition_key: r for r in result.run_requests or [] if r.partition_key in doc_ids}
    assert set(requests) == set(doc_ids), f"the sensor requested {sorted(requests)}, not {doc_ids}"
    existing = set(instance.get_dynamic_partitions(documents.name))
    instance.add_dynamic_partitions(documents.name, [d for d in doc_ids if d not in existing])
    job = defs.resolve_job_def("process_documents")
    runs = {}
    for doc_id in doc_ids:
        outcome = job.execute_in_process(
            partition_key=doc_id,
            instance=instance,
            tags=requests[doc_id].tags,
            run_config=LOUD,
            raise_on_error=False,
        )
        assert outcome.success is succeed
        runs[doc_id] = outcome.run_id
    return runs


# --- where to look ------------------------------------------------------------------------------------------


def forms(sentinel: str) -> list[str]:
    """The sentinel as text, and as Postgres prints bytea (hex) in a row's text."""
    return [sentinel, sentinel.encode().hex()]


def in_tables(url: str, sentinel: str, schemas: list[str] | None = None) -> list[str]:
    """Every table (of `schemas`, or of every non-system schema) whose rows, printed as text, hold the
    sentinel: `SELECT t::text FROM <table> t` covers every column, JSON and arrays included."""
    found = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            """SELECT table_schema, table_name FROM information_schema.tables
               WHERE table_type = 'BASE TABLE'
                 AND table_schema NOT IN ('pg_catalog', 'information_schema')
                 AND (%(schemas)s::text[] IS NULL OR table_schema = ANY(%(schemas)s))""",
            {"schemas": schemas},
        ).fetchall()
        assert tables, f"no tables to search in {url}"
        for schema, table in tables:
            for needle in forms(sentinel):
                hit = conn.execute(
                    f'SELECT 1 FROM "{schema}"."{table}" t WHERE strpos(t::text, %s) > 0 LIMIT 1', (needle,)
                ).fetchone()
                if hit:
                    found.append(f"{schema}.{table}")
    return found


def in_bucket(rt, sentinel: str) -> list[str]:
    """Every object of the bucket (all prefixes), read whole."""
    needle = sentinel.encode()
    return [o.key for o in rt.bucket.list("") if needle in rt.bucket.get_bytes(o.key)]


def in_files(root: Path, sentinel: str) -> list[str]:
    needle = sentinel.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def compute_log_files(instance, run_id: str) -> list[Path]:
    """The files the instance's compute log manager captured the run's stdout/stderr in."""
    manager = instance.compute_log_manager
    meta = manager.get_log_metadata(manager.build_log_key_for_run(run_id, "x"))
    run_dir = Path(meta.stdout_location).parent.parent  # <base>/<run_id>/compute_logs/<file>
    return [p for p in run_dir.rglob("*") if p.is_file()] if run_dir.exists() else []


def docflow_url() -> str:
    return os.environ["DOCFLOW_DATABASE_URL"]


def dagster_url() -> str:
    return os.environ["DOCFLOW_DAGSTER_DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")


# --- the tests ----------------------------------------------------------------------------------------------


class Tenant:
    """A tenant of the API with its passthrough webhook pointed at a receiver of its own."""

    def __init__(self, rt, api: str) -> None:
        self.rt = rt
        self.receiver = Receiver()
        key = db.create_api_key(rt.store, f"t{uuid.uuid4().hex[:8]}", "test")
        self.client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        hook = self.client.put("/v1/webhook", json={"url": f"{self.receiver.url}/hook"})
        assert hook.status_code == 200, hook.text
        self.secret = hook.json()["secret"]

    def upload(self, filename: str, body: bytes, passthrough: bool) -> Document:
        r = self.client.post(  # with an idempotency key, whose stored answer names the file
            "/v1/documents",
            files={"file": (filename, body)},
            params={"passthrough": str(passthrough).lower()},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 202, r.text
        doc = self.rt.store.get_document(r.json()["doc_id"])
        assert doc.passthrough is passthrough
        wait_stored(self.rt, doc.key)
        return doc

    def delivered(self, doc_id: str) -> dict:
        """The one signed POST the tenant received for the document."""
        [(headers, payload)] = [p for p in self.receiver.posts if json.loads(p[1])["doc_id"] == doc_id]
        assert verify(self.secret, payload, headers["X-Docflow-Signature"])
        return json.loads(payload)


def deliver(instance) -> None:
    """One tick of the real passthrough_sensor."""
    sensor = build_defs(get_settings()).resolve_sensor_def("passthrough_sensor")
    sensor(dg.build_sensor_context(instance=instance, resources={"docflow": DocflowResource()}))


def assert_found_nowhere(rt, instance, words: list[str], doc_id: str, run_id: str) -> None:
    home = Path(os.environ["DAGSTER_HOME"])
    for word in words:
        assert in_bucket(rt, word) == [], word
        assert in_tables(docflow_url(), word, ["docflow"]) == [], word
        assert in_tables(dagster_url(), word) == [], word
        assert in_files(home, word) == [], word
    assert compute_log_files(instance, run_id) == []
    assert instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": doc_id})) == []
    assert instance.get_run_by_id(run_id) is None
    assert not instance.has_dynamic_partition(documents.name, doc_id)


@pytest.fixture
def allow_loopback_webhooks(monkeypatch) -> None:
    monkeypatch.setenv("DOCFLOW_API_FETCH_ALLOW_NETWORKS", '["127.0.0.1/32"]')  # the sensor's settings


def test_passthrough_sentinel_is_found_nowhere_after_delivery(
    rt, instance, api, allow_loopback_webhooks
) -> None:
    base = cursor_now(rt)
    tenant = Tenant(rt, api)
    secret_word, control_word, name_word, control_name = (f"Zq{uuid.uuid4().hex}" for _ in range(4))
    filename = f"{name_word}.md"  # a file name can say as much as the text: it is kept out as well
    doc = tenant.upload(filename, document(secret_word), passthrough=True)
    control = tenant.upload(f"{control_name}.md", document(control_word), passthrough=False)
    doc_id, control_id = doc.doc_id, control.doc_id

    runs = run_as_sensor_requests(instance, base, [doc_id, control_id])
    assert rt.store.get_document(doc_id).status == "done"
    home = Path(os.environ["DAGSTER_HOME"])
    logs = compute_log_files(instance, runs[doc_id])
    assert logs and str(logs[0]).startswith(str(home)), "the run's stdout/stderr were not captured"

    # while the document waits for delivery: nothing of its content in Dagster's records, nor in the cache
    assert in_tables(dagster_url(), secret_word) == []
    assert in_tables(dagster_url(), name_word.lower()) == []  # the partition key does not name the file
    assert in_files(home, secret_word) == []
    for asset in ("raw_file", "classification", "parsed_markdown", "extracted_fields", "embeddings"):
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[doc_id]), limit=5
        ).records
        metadata = record.asset_materialization.metadata
        assert metadata["passthrough"].value is True and set(metadata) <= PASSTHROUGH_KEYS | {"passthrough"}
    cache = DocflowResource().runtime().recent  # the runtime the assets ran with in this process
    assert cache.get(doc_id, doc.sha256) is None
    assert cache.get(control_id, control.sha256) is not None  # the control's bytes were cached

    deliver(instance)
    body = tenant.delivered(doc_id)
    assert body["status"] == "done" and secret_word in body["parsed"]["markdown"]
    assert body["filename"] == filename
    assert body["extraction"] is not None and "fields" in body["extraction"]
    assert any(secret_word in c["text"] for c in body["chunks"])
    dimension = backends.get_embedder(rt.settings).dimension
    for chunk in body["chunks"]:
        vector = chunk["embedding"]
        assert len(vector) == dimension and all(isinstance(x, float) for x in vector)
        assert any(x != 0 for x in vector)
    assert not any(json.loads(p[1])["doc_id"] == control_id for p in tenant.receiver.posts)

    assert_found_nowhere(rt, instance, [secret_word, name_word, name_word.lower()], doc_id, runs[doc_id])
    assert cache.get(doc_id, doc.sha256) is None

    # the control: the same searches find its sentinel
    assert in_bucket(rt, control_word) == [control.key]
    assert {"docflow.parsed_documents", "docflow.chunks"} <= set(
        in_tables(docflow_url(), control_word, ["docflow"])
    )
    assert "public.event_logs" in in_tables(dagster_url(), control_word)
    assert "public.runs" in in_tables(dagster_url(), control_name.lower())  # its id names the file
    assert instance.get_run_by_id(runs[control_id]) is not None


def quoting(messages: list[dict[str, str]]) -> str:
    """An LLM that answers no JSON and quotes the document: the step's error message quotes it too. Asked
    for the fields of a type without a schema file (no document in the prompt), it answers them."""
    lines = [x for x in messages[-1]["content"].splitlines() if "secret word" in x]
    if not lines:
        return json.dumps({"fields": [{"name": "subject", "kind": "string", "description": "the subject"}]})
    return f"I cannot answer that in JSON. The document says: {lines[0]}"


def test_a_failure_quoting_a_passthrough_document_reaches_only_its_webhook(
    rt, instance, api, allow_loopback_webhooks, monkeypatch
) -> None:
    from docflow.defs.assets import RETRY

    with StubServer() as (stub, base_url):
        stub.chat_reply = quoting
        monkeypatch.setenv("DOCFLOW_EXTRACT_BACKEND", "openai")
        monkeypatch.setenv("DOCFLOW_OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("DOCFLOW_OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("DOCFLOW_REMOTE_MAX_RETRIES", "0")
        # one retry, soon: the failure of the first attempt and of the last both reach Dagster
        monkeypatch.setitem(RETRY, "extracted_fields", dg.RetryPolicy(max_retries=1, delay=0.1))
        base = cursor_now(rt)
        tenant = Tenant(rt, api)
        secret_word, control_word = (f"Zq{uuid.uuid4().hex}" for _ in range(2))
        doc = tenant.upload("minutes.md", document(secret_word), passthrough=True)
        control = tenant.upload("control.md", document(control_word), passthrough=False)
        runs = run_as_sensor_requests(instance, base, [doc.doc_id, control.doc_id], False)
        extractions = [c for c in stub.calls("/chat/completions") if "secret word" in str(c.body)]
        assert len(extractions) == 4  # two attempts each

    failed = rt.store.get_document(doc.doc_id)
    assert failed.status == "failed" and secret_word in (failed.error or "")  # the document's row has it
    # the reconciliation report lists failed documents with their errors: not this one's
    report = dg.materialize([document_report], instance=instance, resources={"docflow": DocflowResource()})
    assert report.success
    assert in_tables(dagster_url(), secret_word) == []  # Dagster's failure records do not
    assert "public.event_logs" in in_tables(dagster_url(), control_word)  # the control's do

    deliver(instance)
    body = tenant.delivered(doc.doc_id)
    assert body["status"] == "failed" and secret_word in body["error"]
    assert_found_nowhere(rt, instance, [secret_word], doc.doc_id, runs[doc.doc_id])


def test_passthrough_documents_of_a_bulk_load_run_alone(
    rt, instance, api, allow_loopback_webhooks, monkeypatch
) -> None:
    """A batch run holds other documents' results and is kept: a passthrough document gets a run of its own
    (deleted at delivery), never a place in a batch's partition range."""
    base = cursor_now(rt)
    monkeypatch.setenv("DOCFLOW_RUN_BATCH_SIZE", "10")
    tenant = Tenant(rt, api)
    private = {tenant.upload(f"p{i}.md", document(uuid.uuid4().hex), True).doc_id for i in range(3)}
    ordinary = {tenant.upload(f"o{i}.md", document(uuid.uuid4().hex), False).doc_id for i in range(4)}
    result = tick(instance, base)
    mine = [r for r in result.run_requests or [] if set(covered(result, r)) & (private | ordinary)]
    alone = [r.partition_key for r in mine if r.partition_key]
    batches = [covered(result, r) for r in mine if r.partition_key_range]
    assert private <= set(alone)
    assert batches and all(set(batch) <= ordinary for batch in batches)
    assert {d for batch in batches for d in batch} | set(alone) == private | ordinary
