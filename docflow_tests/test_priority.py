"""Run priority from every source (the API is tested in test_api.py): a bucket object's metadata or key
folder, a document type's rules; and the real run queue starting higher priorities first."""

import shutil
import time
import uuid

import dagster as dg
import psycopg
import pytest
import yaml
from daemon import daemon_deployment
from drive import cursor_now, tick

from docflow.bucket import PRIORITY_META, parse_priority, priority_of
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.defs.sensors import stale_documents_sensor
from docflow.ingest import ScanCursor, scan
from docflow.models import Classification
from docflow.runtime import REPO_ROOT
from docflow.settings import data_dir

SAMPLES = REPO_ROOT / "data" / "samples"


@pytest.fixture
def tenant() -> str:
    return f"p{uuid.uuid4().hex[:8]}"


def test_a_priority_is_a_number_from_minus_100_to_100_or_a_name() -> None:
    assert [parse_priority(v) for v in ("high", " LOW ", "normal", "7", "-100", "101", "urgent", "")] == [
        10,
        -10,
        0,
        7,
        -100,
        None,
        None,
        None,
    ]
    assert priority_of("incoming/acme/priority=high/a.pdf", {}) == 10
    assert priority_of("incoming/acme/priority=high/a.pdf", {PRIORITY_META: "-5"}) == -5  # metadata first
    assert priority_of("incoming/acme/priority=soon/a.pdf", {PRIORITY_META: "soon"}) == 0  # neither counts
    assert priority_of("incoming/acme/a-priority=high.pdf", {}) == 0  # a folder, not a file name


def test_a_bucket_upload_asks_for_its_priority_with_metadata_or_a_key_folder(rt, instance, tenant) -> None:
    base = cursor_now(rt)
    prefix = f"incoming/{tenant}"
    rt.bucket.put_bytes(
        f"{prefix}/urgent.txt", b"urgent " + tenant.encode(), metadata={PRIORITY_META: "high"}
    )
    rt.bucket.put_bytes(f"{prefix}/priority=low/later.txt", b"later " + tenant.encode())
    rt.bucket.put_bytes(f"{prefix}/plain.txt", b"plain " + tenant.encode())
    result = tick(instance, base)
    tags = {
        r.partition_key.split("-")[1]: r.tags.get("dagster/priority")
        for r in result.run_requests
        if r.tags.get("docflow/tenant") == tenant
    }
    assert tags == {"urgent": "10", "later": "-10", "plain": None}


def test_a_types_priority_orders_its_re_processing(rt, instance, tenant, tmp_path, monkeypatch) -> None:
    rules = yaml.safe_load((data_dir() / "doc_types.yaml").read_text())
    rules["types"]["invoice"]["priority"] = 7
    path = tmp_path / "doc_types.yaml"
    path.write_text(yaml.safe_dump(rules))
    if (data_dir() / "schemas").is_dir():  # the types' field schemas, next to the rules they belong to
        shutil.copytree(data_dir() / "schemas", tmp_path / "schemas")
    monkeypatch.setenv("DOCFLOW_RULES_PATH", str(path))
    monkeypatch.setenv("DOCFLOW_STALE_PER_TICK", "1000")

    before = ScanCursor.load(cursor_now(rt))
    for name in ("invoice", "letter"):
        rt.bucket.put_bytes(f"incoming/{tenant}/{name}.txt", f"{name} of {tenant}".encode())
    new = scan(rt.bucket, rt.store, before, prefix=rt.settings.prefix).new
    ids = {d.key.rsplit("/", 1)[1].split(".")[0]: d.doc_id for d in new}
    instance.add_dynamic_partitions(documents.name, list(ids.values()))
    for doc_type, doc_id in ids.items():
        c = Classification(doc_type=doc_type, confidence=0.9, reasoning="test", backend="test")
        rt.store.save_classification(doc_id, c)
        with rt.store.tx() as conn:  # done with another configuration: stale
            conn.execute(
                "UPDATE docflow.documents SET status = 'done', config_fingerprint = 'old' WHERE doc_id = %s",
                (doc_id,),
            )
    context = dg.build_sensor_context(instance=instance, resources={"docflow": DocflowResource()})
    requested = {
        r.partition_key: r.tags.get("dagster/priority") for r in stale_documents_sensor(context).run_requests
    }
    # below a fresh upload of the type's own priority; a type without one stays below every normal upload
    assert (requested[ids["invoice"]], requested[ids["letter"]]) == ("6", "-1")


# --- the real run queue ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory, docflow_env):
    """A deployment that runs one document run at a time, so that the others wait in its queue."""
    with daemon_deployment(tmp_path_factory.mktemp("priority-home"), run_slots=1) as deployed:
        yield deployed


def _runs(instance, tenants: list[str]) -> dict[str, dg.DagsterRun]:
    found = {}
    for t in tenants:
        runs = instance.get_runs(dg.RunsFilter(tags={"docflow/tenant": t}))
        if runs:
            found[t] = runs[0]
    return found


def _wait(predicate, what: str, log, timeout_s: float = 600):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout_s} s; daemon log:\n{log.read_text()[-3000:]}")


def test_the_run_queue_starts_a_high_priority_document_before_normal_ones_queued_earlier(one_slot) -> None:
    rt, instance, log = one_slot
    stamp = uuid.uuid4().hex[:6]
    blocker = f"block{stamp}"  # takes the only run slot while the others queue up
    pdf = (SAMPLES / "services-agreement-acme.pdf").read_bytes() + f"% {stamp}".encode()
    rt.bucket.put_bytes(f"incoming/{blocker}/agreement.pdf", pdf)
    # the blocker's row held in a transaction from its registration on: its run, once started, waits at its
    # first status update, so the slot stays taken however fast the steps are, until every run is queued
    hold = psycopg.connect(rt.store.url)
    try:
        _wait(
            lambda: hold.execute(
                "SELECT doc_id FROM docflow.documents WHERE tenant = %s FOR UPDATE", (blocker,)
            ).fetchone(),
            "the first document was not registered",
            log,
        )
        _wait(
            lambda: (r := _runs(instance, [blocker]).get(blocker)) and r.status != dg.DagsterRunStatus.QUEUED,
            "the first run did not start",
            log,
        )
        normal = [f"norm{stamp}{i}" for i in range(4)]
        for i, t in enumerate(normal):  # a tenant each: the per-tenant limit plays no part in the order
            letter = f"Dear reader, normal letter {i} {stamp}".encode()
            rt.bucket.put_bytes(f"incoming/{t}/letter.txt", letter)
        _wait(lambda: len(_runs(instance, normal)) == len(normal), "the normal runs were not queued", log)
        high = f"high{stamp}"
        rt.bucket.put_bytes(
            f"incoming/{high}/urgent.txt", f"Urgent letter {stamp}".encode(), metadata={PRIORITY_META: "high"}
        )
        queued_first = _wait(
            lambda: (
                high in _runs(instance, [high])
                and [t for t, r in _runs(instance, normal).items() if r.status == dg.DagsterRunStatus.QUEUED]
            ),
            "the high-priority run was not queued",
            log,
        )
    finally:
        hold.close()  # rolls back: the blocker's run goes on
    tenants = [blocker, *normal, high]
    _wait(
        lambda: (
            all(r.is_finished for r in _runs(instance, tenants).values())
            and len(_runs(instance, tenants)) == len(tenants)
        ),
        "the runs did not finish",
        log,
        timeout_s=900,
    )
    runs = _runs(instance, tenants)
    assert runs[high].tags["dagster/priority"] == "10"
    started = {t: instance.get_run_record_by_id(r.run_id).start_time for t, r in runs.items()}
    # the normal runs still queued when the high-priority one arrived start after it, but for the one the
    # daemon may have picked just before it saw the new run (it dequeues a run per free slot per second)
    overtaken = [t for t in queued_first if started[high] < started[t]]
    assert len(overtaken) >= len(queued_first) - 1 and overtaken, (started, queued_first)
