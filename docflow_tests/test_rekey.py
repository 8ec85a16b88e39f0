"""`docflow rekey` on the real Postgres and Dagster instance: documents registered under the old ids
(`<tenant>-<32 hex>`) are renamed to ids that name the file, their rows and partitions follow, done documents
show as materialized under the new id, and a second run changes nothing."""

import hashlib
import uuid

import dagster as dg
import pytest
from click.testing import CliRunner

from docflow.bucket import legacy_doc_id, make_doc_id
from docflow.cli import cli
from docflow.errors import DocflowError
from docflow.models import Chunk, Classification, Document
from docflow.orchestration import rekey as rekeying
from docflow.pipeline import STEPS
from docflow.store import rekey as store_rekey

PARTITIONS = "documents"


def _legacy(rt, tenant: str, filename: str, status: str) -> tuple[str, str]:
    """A document as the old code registered it: (old id, sha256)."""
    sha = hashlib.sha256(f"{tenant} {filename}".encode()).hexdigest()
    doc_id = legacy_doc_id(tenant, sha)
    doc = Document(
        doc_id=doc_id, tenant=tenant, bucket="b", key=f"{tenant}/{filename}", sha256=sha, filename=filename
    )
    assert rt.store.register(doc) == (doc_id, True)
    if status != "pending":
        rt.store.set_status(doc_id, status, error="broken" if status == "failed" else None)
    return doc_id, sha


def _materialized(instance, key: str, partition: str) -> dg.AssetMaterialization | None:
    return rekeying._latest(instance, dg.AssetKey(key), partition)


@pytest.fixture
def legacy(rt, instance):
    tenant = f"rk{uuid.uuid4().hex[:6]}"
    done, done_sha = _legacy(rt, tenant, "Invoice March 2024.pdf", "done")
    failed, failed_sha = _legacy(rt, tenant, "scan.png", "failed")
    pending, pending_sha = _legacy(rt, tenant, "Contract.docx", "pending")
    rt.store.save_classification(
        done, Classification(doc_type="invoice", confidence=0.9, reasoning="r", backend="t")
    )
    rt.store.ensure_vector_index(3)
    rt.store.save_chunks(
        done, [Chunk(index=0, text="total 10"), Chunk(index=1, text="due")], [[1, 0, 0], [0, 1, 0]], "m", "fp"
    )
    # an older document whose key now holds the done one's bytes
    older = make_doc_id(tenant, "0" * 64, "old.pdf")
    rt.store.register(
        Document(doc_id=older, tenant=tenant, bucket="b", key="k", sha256="0" * 64, filename="old.pdf")
    )
    with rt.store.tx() as conn:
        conn.execute("UPDATE docflow.documents SET superseded_by = %s WHERE doc_id = %s", (done, older))
    # what a run left in Dagster for them
    instance.add_dynamic_partitions(PARTITIONS, [done, failed, pending])
    for name in STEPS:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(name, partition=done, metadata={"doc_type": "invoice", "step": name})
        )
    return {
        "tenant": tenant,
        "done": (done, make_doc_id(tenant, done_sha, "Invoice March 2024.pdf")),
        "failed": (failed, make_doc_id(tenant, failed_sha, "scan.png")),
        "pending": (pending, make_doc_id(tenant, pending_sha, "Contract.docx")),
        "older": older,
    }


def test_rekey_renames_old_ids_in_postgres_and_dagster_and_is_idempotent(rt, instance, legacy) -> None:
    (done, done_new), (failed, failed_new), (pending, pending_new) = (
        legacy["done"],
        legacy["failed"],
        legacy["pending"],
    )
    assert done_new == f"{legacy['tenant']}-invoice-march-2024-{done_new[-16:]}"
    planned = {r.old_id: r.new_id for r in rekeying.plan(rt.store)}
    assert {done: done_new, failed: failed_new, pending: pending_new}.items() <= planned.items()

    report = rekeying.rekey(rt.store, instance, while_running=True)
    mine = {r.old_id for r in report.renamed} & {done, failed, pending}
    assert mine == {done, failed}  # the pending one has a run writing under its old id: left for later
    assert pending in {r.old_id for r in report.waiting}

    # Postgres: the documents and every row keyed by them carry the new ids
    ids = {d.doc_id for d in rt.store.list_documents(tenant=legacy["tenant"])}
    assert ids == {done_new, failed_new, pending, legacy["older"]}
    assert rt.store.load_classification(done_new).doc_type == "invoice"
    with rt.store.tx() as conn:
        chunks = conn.execute(
            "SELECT doc_id FROM docflow.chunks WHERE doc_id IN (%s, %s)", (done, done_new)
        ).fetchall()
        superseded = conn.execute(
            "SELECT superseded_by FROM docflow.documents WHERE doc_id = %s", (legacy["older"],)
        ).fetchone()
    assert [c["doc_id"] for c in chunks] == [done_new, done_new]
    assert superseded["superseded_by"] == done_new
    assert store_rekey.renamed_to(rt.store, done) == done_new

    # Dagster: the new partitions replace the old; the done document shows materialized, with its metadata
    partitions = set(instance.get_dynamic_partitions(PARTITIONS))
    assert {done_new, failed_new, pending} <= partitions
    assert not {done, failed} & partitions
    for name in STEPS:
        m = _materialized(instance, name, done_new)
        assert m is not None and m.metadata["renamed_from"].value == done
        assert m.metadata["step"].value == name and m.metadata["doc_type"].value == "invoice"
        assert _materialized(instance, name, failed_new) is None  # a failed document is not materialized

    # the same bytes under another name are still the one (renamed) document
    again = Document(
        doc_id=make_doc_id(legacy["tenant"], "x", "other name.pdf"),
        tenant=legacy["tenant"],
        bucket="b",
        key="elsewhere/other name.pdf",
        sha256=rt.store.get_document(done_new).sha256,
        filename="other name.pdf",
    )
    assert rt.store.register(again) == (done_new, False)

    # a second run: nothing of these left to do, nothing recorded twice
    second = rekeying.rekey(rt.store, instance, while_running=True)
    assert not {r.old_id for r in second.renamed + second.followed} & {done, failed}
    assert all(
        len(
            instance.fetch_materializations(
                dg.AssetRecordsFilter(dg.AssetKey(n), [done_new]), limit=5
            ).records
        )
        == 1
        for n in STEPS
    )


def test_an_interrupted_rekey_is_finished_by_the_next(rt, instance, legacy) -> None:
    pending, pending_new = legacy["pending"]
    rt.store.set_status(pending, "done")
    # Postgres renamed it, then the process died before Dagster followed
    [renamed] = store_rekey.rename(rt.store, [r for r in rekeying.plan(rt.store) if r.old_id == pending])
    assert renamed.new_id == pending_new and pending in instance.get_dynamic_partitions(PARTITIONS)

    report = rekeying.rekey(rt.store, instance, while_running=True)
    assert pending in {r.old_id for r in report.followed}
    partitions = set(instance.get_dynamic_partitions(PARTITIONS))
    assert pending_new in partitions and pending not in partitions
    assert all(_materialized(instance, name, pending_new) is not None for name in STEPS)


def test_rekey_cli(rt, legacy) -> None:
    done, done_new = legacy["done"]
    dry = CliRunner().invoke(cli, ["rekey", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"done     {done} -> {done_new}" in dry.output
    assert rt.store.get_document(done).doc_id == done  # nothing renamed

    result = CliRunner().invoke(cli, ["rekey", "--while-running"])
    assert result.exit_code == 0, result.output
    assert "documents renamed" in result.output
    status = CliRunner().invoke(cli, ["status", done])  # an old id someone kept
    assert status.exit_code != 0 and f"renamed {done_new!r}" in status.output
    assert CliRunner().invoke(cli, ["status", done_new]).exit_code == 0


def test_the_migration_keeps_an_existing_database_and_lets_renames_cascade(rt) -> None:
    """Migration 0009 on a database the old code filled: same rows, a unique (tenant, sha256), renames carry
    every row keyed by the document."""
    from importlib import resources

    import psycopg
    from psycopg.conninfo import make_conninfo

    from docflow.store import Store

    name = f"rk_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(rt.store.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = make_conninfo(rt.store.url, dbname=name)
    try:
        files = sorted(
            resources.files("docflow.store").joinpath("migrations").iterdir(), key=lambda f: f.name
        )
        old = [f for f in files if f.name.endswith(".sql") and f.name < "0009"]
        sha = "ab" * 32
        doc_id = legacy_doc_id("acme", sha)
        with psycopg.connect(url) as conn:  # the schema and rows as they were before 0009
            conn.execute("CREATE SCHEMA docflow")
            conn.execute(
                "CREATE TABLE docflow.schema_migrations (name text PRIMARY KEY, applied_at timestamptz)"
            )
            for f in old:
                conn.execute(f.read_text())
                conn.execute("INSERT INTO docflow.schema_migrations (name) VALUES (%s)", (f.name,))
            conn.execute(
                "INSERT INTO docflow.documents (doc_id, tenant, bucket, key, sha256, filename, status) "
                "VALUES (%s, 'acme', 'b', 'acme/Q3 Report.pdf', %s, 'Q3 Report.pdf', 'done')",
                (doc_id, sha),
            )
            conn.execute(
                "INSERT INTO docflow.classifications (doc_id, doc_type, confidence, reasoning, backend) "
                "VALUES (%s, 'report', 1, 'r', 't')",
                (doc_id,),
            )
        store = Store(url)
        assert [n for n in store.migrate() if n >= "0009"] == [f.name for f in files if f.name >= "0009"]
        # the same bytes again: not a second row
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO docflow.documents (doc_id, tenant, bucket, key, sha256) "
                "VALUES ('other', 'acme', 'b', 'k', %s)",
                (sha,),
            )
        [renamed] = store_rekey.rename(store, store_rekey.legacy_documents(store))
        assert renamed.new_id == make_doc_id("acme", sha, "Q3 Report.pdf") == f"acme-q3-report-{sha[:16]}"
        assert store.load_classification(renamed.new_id).doc_type == "report"
        assert store_rekey.legacy_documents(store) == []
    finally:
        from docflow.store import db

        if (pool := db._pools.pop(url, None)) is not None:
            pool.close()
        with psycopg.connect(rt.store.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@dg.op
def _noop() -> None:
    pass


@dg.job
def _some_job() -> None:
    _noop()


def test_rekey_waits_for_a_moment_with_no_runs_in_flight(rt, instance, legacy) -> None:
    run = instance.create_run_for_job(_some_job, status=dg.DagsterRunStatus.STARTED)
    try:
        with pytest.raises(DocflowError, match=f"run {run.run_id} is started"):
            rekeying.rekey(rt.store, instance)
        assert rt.store.get_document(legacy["done"][0]).status == "done"  # nothing renamed
    finally:
        instance.report_run_canceled(run)
