"""Bad input through the production path: a corpus of 27 kinds of bad or odd files (made by
docflow.bench.badinput) lands in the real bucket next to good documents; the real sensor registers them and
the real jobs run them on the real instance. Each bad file must end `failed` with a specific reason, at once
(no retries), while the sensor keeps ticking and the good documents are processed.

Hostile names (control characters, `..`, 1,000 characters) are registered and failed with the reason
("unsafe object key"), so they show among the dead letters; keys outside the upload prefix are not the
sensor's business and are never registered."""

import uuid

import dagster as dg
import pytest
from botocore.exceptions import ClientError
from drive import cursor_now, drain

from docflow.bench.badinput import bad_inputs
from docflow.bucket import filename_of, make_doc_id
from docflow.defs import build_defs
from docflow.defs.partitions import documents
from docflow.models import Document
from docflow.runner import QUIET
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings

SAMPLES = REPO_ROOT / "data" / "samples"
CORPUS = bad_inputs("corpus", seed=1)


def _put_raw(rt, key: str, data: bytes) -> None:
    """Like `aws s3 cp`: no sha256 metadata, so the sensor hashes the object itself."""
    rt.bucket._client.put_object(Bucket=rt.bucket.name, Key=key, Body=data)


@pytest.fixture(scope="module")
def outcome(rt, instance):
    import hashlib

    tenant = f"bad{uuid.uuid4().hex[:6]}"
    cursor = cursor_now(rt)
    nonce = f"\n{tenant}\n".encode()
    keys: dict[str, str] = {}
    ids: dict[str, str] = {}
    refused: dict[str, str] = {}
    for item in CORPUS:
        key = keys[item.kind] = f"{rt.settings.prefix}{tenant}/{item.name}"
        sha256 = hashlib.sha256(item.data).hexdigest()
        ids[item.kind] = make_doc_id(tenant, sha256, filename_of(key))
        try:
            _put_raw(rt, key, item.data)
        except ClientError as exc:  # AWS S3 takes such keys; SeaweedFS refuses `..` and names > 255 bytes
            refused[item.kind] = str(exc)
            doc = Document(
                doc_id=ids[item.kind],
                tenant=tenant,
                bucket=rt.bucket.name,
                key=key,
                sha256=sha256,
                size=len(item.data),
                filename=filename_of(key),
            )
            ids[item.kind] = rt.store.register(doc).doc_id  # what the sensor does for a key it lists
    good = {
        "receipt": (SAMPLES / "receipt-corner-cafe.txt").read_bytes() + nonce,
        "letter": (SAMPLES / "letter-tenancy.html").read_bytes().replace(b"</body>", nonce + b"</body>"),
    }
    for name, data in good.items():
        _put_raw(rt, f"{rt.settings.prefix}{tenant}/good/{name}", data)
        ids[name] = make_doc_id(tenant, hashlib.sha256(data).hexdigest(), name)
    outside = [f"outside-{tenant}/stray.txt", f"{rt.settings.prefix.rstrip('/')}-{tenant}.txt"]
    for key in outside:
        _put_raw(rt, key, b"not under the prefix " + nonce)
    driven = drain(instance, cursor)
    sensor_runs = list(driven.runs)
    for kind in refused:  # the run the sensor would have requested for them
        instance.add_dynamic_partitions(documents.name, [ids[kind]])
        driven.runs.append(_materialize(instance, ids[kind], tenant))
    return {
        "tenant": tenant,
        "ids": ids,
        "keys": keys,
        "outside": outside,
        "driven": driven,
        "refused": refused,
        "sensor_runs": sensor_runs,
    }


def _materialize(instance, doc_id: str, tenant: str) -> dg.ExecuteInProcessResult:
    job = build_defs(get_settings()).resolve_job_def("process_documents")
    return job.execute_in_process(
        partition_key=doc_id,
        instance=instance,
        tags={"docflow/tenant": tenant},
        raise_on_error=False,
        run_config=QUIET,
    )


def _doc(rt, outcome, kind: str):
    return rt.store.get_document(outcome["ids"][kind])


def test_the_corpus_has_at_least_twenty_kinds_and_every_object_was_listed_back(rt, outcome) -> None:
    assert len({i.kind for i in CORPUS if i.expect}) >= 20
    listed = {o.key for o in rt.bucket.list(f"{rt.settings.prefix}{outcome['tenant']}/")}
    landed = {kind: key for kind, key in outcome["keys"].items() if kind not in outcome["refused"]}
    assert set(landed.values()) <= listed  # control characters round-trip through the listing
    assert set(outcome["refused"]) <= {"dotdot_name", "long_name"}, outcome["refused"]


def test_every_document_was_requested_once_and_the_sensor_went_on(rt, outcome) -> None:
    driven = outcome["driven"]
    mine = [d for d in driven.documents if d.startswith(outcome["tenant"] + "-")]
    landed = {i for kind, i in outcome["ids"].items() if kind not in outcome["refused"]}
    assert sorted(mine) == sorted(landed)  # each exactly once
    # a batch with bad documents in it still succeeds: bad documents are failed one by one
    runs = outcome["sensor_runs"]
    failures = [str(e.event_specific_data) for r in runs for e in r.all_events if e.is_failure]
    assert runs and not failures, failures


@pytest.mark.parametrize("item", [i for i in CORPUS if i.expect], ids=lambda i: i.kind)
def test_a_bad_file_fails_with_a_specific_reason(rt, outcome, item) -> None:
    doc = _doc(rt, outcome, item.kind)
    assert doc.status == "failed", (item.kind, doc.status, doc.error)
    error = (doc.error or "").lower()
    assert all(word in error for word in item.expect), (item.kind, doc.error)
    assert error.split(":")[0] in {"raw_file", "classification", "parsed_markdown"}  # names the stage
    assert "traceback" not in error and len(error) < 2000


@pytest.mark.parametrize("item", [i for i in CORPUS if i.expect is None], ids=lambda i: i.kind)
def test_an_odd_but_readable_file_is_processed_by_its_content(rt, outcome, item) -> None:
    doc = _doc(rt, outcome, item.kind)
    assert (doc.status, doc.error) == ("done", None)
    assert rt.store.count_chunks(doc.doc_id) > 0
    if item.kind == "wrong_extension":
        assert doc.content_type == "text/plain"  # sniffed from the bytes, not the .pdf name


def test_good_documents_next_to_the_bad_ones_are_processed(rt, outcome) -> None:
    for name in ("receipt", "letter"):
        doc = _doc(rt, outcome, name)
        assert (doc.status, doc.error) == ("done", None)
        assert rt.store.count_chunks(doc.doc_id) > 0
    assert _doc(rt, outcome, "receipt").doc_type == "receipt"


def test_bad_files_fail_at_once_without_retries(outcome) -> None:
    retries = [
        (e.step_key, e.message)
        for run in outcome["driven"].runs
        for e in run.all_events
        if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert retries == []


def test_unsafe_keys_are_registered_and_failed_with_the_reason(rt, outcome) -> None:
    for kind, reason in [
        ("control_chars_name", "control character"),
        ("dotdot_name", "'..' path segment"),
        ("long_name", "too long"),
    ]:
        doc = _doc(rt, outcome, kind)
        assert doc.error.startswith("raw_file: unsafe object key") and reason in doc.error, doc.error
        assert doc.key == outcome["keys"][kind]  # the key is kept verbatim, for the operator to rename


def test_keys_outside_the_prefix_are_never_registered(rt, outcome) -> None:
    with rt.store.tx() as conn:
        rows = conn.execute(
            "SELECT doc_id FROM docflow.documents WHERE keys && %s::text[]", (outcome["outside"],)
        ).fetchall()
    assert rows == []


def test_failed_documents_are_the_dead_letters(rt, outcome) -> None:
    failed = {d.doc_id for d in rt.store.list_documents(tenant=outcome["tenant"], status="failed")}
    expected = {outcome["ids"][i.kind] for i in CORPUS if i.expect}
    assert failed == expected


def test_a_batch_of_only_bad_documents_is_not_a_failed_run(rt, instance) -> None:
    """Every document of a batch failing for its own reasons is not an outage: the runs succeed, and each
    document is failed with its reason (the step fails only when a service error is among the reasons)."""
    tenant = f"allbad{uuid.uuid4().hex[:6]}"
    cursor = cursor_now(rt)
    for i in range(4):
        data = f"%PDF-1.7\n1 0 obj\n<< {tenant} {i}".encode()
        _put_raw(rt, f"{rt.settings.prefix}{tenant}/broken-{i}.pdf", data)
    driven = drain(instance, cursor)
    mine = [r for r in driven.requests if r.tags.get("docflow/tenant") == tenant]
    assert len(mine) == 2 and all(r.partition_key_range for r in mine)  # two batches of two
    failures = [str(e.event_specific_data) for r in driven.runs for e in r.all_events if e.is_failure]
    assert driven.runs and not failures, failures
    docs = rt.store.list_documents(tenant=tenant, limit=10)
    assert len(docs) == 4 and all(d.status == "failed" and d.error for d in docs), docs
