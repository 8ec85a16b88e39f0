"""Concurrency on the real bucket, Postgres and sensor: identical uploads racing each other, and a flood of
uploads landing while sensor ticks run. Nothing may be registered twice, and nothing may be missed."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from drive import Driven, apply, cursor_now, tick

from docflow import ingest
from docflow.bucket import make_doc_id
from docflow.settings import get_settings

N_FLOOD = 1000


def test_fifty_identical_uploads_at_once_make_one_document(rt, tmp_path) -> None:
    tenant = f"c{uuid.uuid4().hex[:8]}"
    body = f"Receipt {tenant}\nCoffee 3.20\nTotal 3.20 EUR\n".encode()
    paths = []
    for i in range(50):  # fifty people upload the same receipt, each under their own name
        path = tmp_path / f"receipt-{i:02d}.txt"
        path.write_bytes(body)
        paths.append(path)
    barrier = threading.Barrier(50)

    def upload(path):
        up = ingest.plan_upload(path, tmp_path, rt.settings.prefix, tenant)
        barrier.wait()
        return up.doc_id, ingest.upload(rt.bucket, rt.store, up)

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(upload, paths))
    assert len({asked for asked, _ in results}) == 50  # each name asks for an id of its own
    [doc_id] = {got.doc_id for _, got in results}  # and all get the one stored for the bytes
    assert sum(got.new for _, got in results) == 1  # exactly one upload created the document
    assert doc_id in {asked for asked, _ in results}  # under the name of the upload that won
    with rt.store.tx() as conn:
        rows = conn.execute(
            "SELECT doc_id, keys FROM docflow.documents WHERE tenant = %s", (tenant,)
        ).fetchall()
    assert len(rows) == 1 and rows[0]["doc_id"] == doc_id
    assert sorted(rows[0]["keys"]) == sorted(f"{rt.settings.prefix}{tenant}/{p.name}" for p in paths)


def test_a_thousand_uploads_during_sensor_ticks_are_each_registered_and_requested_once(rt, instance) -> None:
    tenant = f"f{uuid.uuid4().hex[:8]}"
    cursor = cursor_now(rt)
    keys = [f"{rt.settings.prefix}{tenant}/batch-{i // 100}/doc-{i:04d}.txt" for i in range(N_FLOOD)]
    bodies = {
        k: f"Note {i} of {tenant}: meeting moved to room {i % 17}.\n".encode() for i, k in enumerate(keys)
    }
    done = threading.Event()

    def flood() -> None:
        try:
            with ThreadPoolExecutor(8) as pool:  # half with docflow's sha256 metadata, half like `aws s3 cp`
                list(pool.map(lambda k: _put(rt, k, bodies[k], int(k[-8:-4]) % 2 == 0), keys))
        finally:
            done.set()

    writer = threading.Thread(target=flood)
    writer.start()
    driven = Driven(cursor)
    while True:  # tick while the uploads land, then until nothing is left
        finished = done.is_set()
        result = tick(instance, driven.cursor)
        driven.cursor = result.cursor
        driven.ticks += 1
        apply(instance, result, driven, execute=False)
        if finished and not result.run_requests:
            break
    writer.join()

    expected = {make_doc_id(tenant, _sha(bodies[k]), k.rsplit("/", 1)[-1]) for k in keys}
    mine = [d for d in driven.documents if d.startswith(f"{tenant}-")]
    assert len(mine) == len(set(mine)) == N_FLOOD  # every document requested exactly once
    assert set(mine) == expected
    assert driven.ticks > 2  # the uploads really landed across several ticks
    # the bucket listing and the documents table agree, key for key
    listed = {o.key for o in rt.bucket.list(f"{rt.settings.prefix}{tenant}/")}
    with rt.store.tx() as conn:
        rows = conn.execute(
            "SELECT doc_id, keys, status FROM docflow.documents WHERE tenant = %s", (tenant,)
        ).fetchall()
    assert listed == set(keys)
    assert sorted(k for r in rows for k in r["keys"]) == sorted(keys)
    assert {r["doc_id"] for r in rows} == expected and {r["status"] for r in rows} == {"pending"}
    # every requested run names a partition the instance has
    partitions = set(instance.get_dynamic_partitions("documents"))
    assert expected <= partitions

    # the requested runs process them: run the first batch run for real
    from docflow.defs import build_defs
    from docflow.runner import QUIET

    first = next(r for r in driven.requests if r.tags.get("docflow/tenant") == tenant)
    job = build_defs(get_settings()).resolve_job_def(first.job_name)
    run = job.execute_in_process(
        partition_key=first.partition_key, tags=dict(first.tags), instance=instance, run_config=QUIET
    )
    assert run.success
    covered = [d for d in mine][: int(first.tags.get("docflow/batch_size", "1"))]
    assert {rt.store.get_document(d).status for d in covered} == {"done"}


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _put(rt, key: str, data: bytes, with_sha: bool) -> None:
    if with_sha:
        rt.bucket.put_bytes(key, data)
    else:
        rt.bucket._client.put_object(Bucket=rt.bucket.name, Key=key, Body=data)
