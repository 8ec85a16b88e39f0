"""Reviews that stick: the path and value rules alone, then a document processed by the real Dagster job on
embedded Postgres and S3, corrected through the HTTP API (real uvicorn on loopback) and the CLI, read back
from the typed views, re-extracted by `reextract_documents`, and exported as truth that the eval scores."""

import csv
import json
import uuid
from collections.abc import Iterator

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner
from live import LiveServer

from docflow import ingest
from docflow.cli import _fix_value, cli
from docflow.defs import build_defs
from docflow.defs.partitions import documents
from docflow.evaluation import load_manifest, metrics, process_items
from docflow.runtime import REPO_ROOT
from docflow.schemas import get_schema
from docflow.settings import get_settings
from docflow.store import reviews
from docflow.store import tenants as db

SAMPLES = REPO_ROOT / "data" / "samples"
INVOICE = get_schema("invoice")


# --- the rules alone -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("total_amount", ["total_amount"]),
        ("line_items.0.amount", ["line_items", 0, "amount"]),
        ("line_items", ["line_items"]),
    ],
)
def test_known_paths(path: str, parts: list) -> None:
    assert reviews.check_path(INVOICE, path) == parts


@pytest.mark.parametrize("path", ["", "nope", "total_amount.0", "line_items.x", "line_items.0.nope", "a..b"])
def test_unknown_paths_are_refused_by_name(path: str) -> None:
    with pytest.raises(reviews.InvalidReview) as err:
        reviews.check_path(INVOICE, path)
    assert repr(path) in str(err.value) or path in str(err.value)


def test_key_values_take_any_label() -> None:
    assert reviews.check_path(get_schema("form"), "key_values.Date") == ["key_values", "Date"]


@pytest.mark.parametrize(
    ("parts", "value", "stored"),
    [
        (["currency"], "usd", "USD"),
        (["invoice_date"], "2024-01-31", "2024-01-31"),
        (["total_amount"], "1234.50", 1234.5),
        (["line_items", 1, "amount"], "3.50", 3.5),  # the next item of the list
        (["due_date"], None, None),
    ],
)
def test_corrections_are_validated_and_normalized(parts: list, value, stored) -> None:
    fields = {
        "total_amount": 12.5,
        "currency": "EUR",
        "line_items": [{"amount": 1.0}],
        "due_date": "2024-02-01",
    }
    assert reviews.normalized(INVOICE, fields, parts, value) == stored


@pytest.mark.parametrize(
    ("parts", "value", "named"),
    [
        (["total_amount"], "a lot", "total_amount"),
        (["invoice_date"], "yesterday", "invoice_date"),
        (["currency"], "EURO", "currency"),
        (["line_items", 0, "amount"], "x", "line_items.0.amount"),
        (["line_items", 5, "amount"], 1, "line_items.5.amount"),  # past the end
    ],
)
def test_invalid_values_are_refused_naming_the_field(parts: list, value, named: str) -> None:
    fields = {"total_amount": 12.5, "line_items": [{"amount": 1.0}]}
    with pytest.raises(reviews.InvalidReview) as err:
        reviews.normalized(INVOICE, fields, parts, value)
    assert str(err.value).startswith(named)


def test_applied_reviews_win_in_order_and_clear_their_messages() -> None:
    fields = {"total_amount": 9e12, "line_items": [{"amount": 1.0}], "currency": "EUR"}
    errors = [
        "total_amount: implausible: an identifier (got 9e12)",
        "due_date: bad (got 'x')",
        "currency: ok?",
    ]
    out, left, confidence = reviews.applied(
        fields,
        errors,
        {"total_amount": 0.4, "currency": 0.9},
        [
            ("line_items.0.amount", 2.0),
            ("total_amount", 99.0),
            ("line_items.2.amount", 5.0),
            ("due_date", None),
        ],
    )
    assert out["total_amount"] == 99.0 and out["currency"] == "EUR" and "due_date" not in out
    assert out["line_items"] == [{"amount": 2.0}, {}, {"amount": 5.0}]  # padded for a shorter re-extraction
    assert left == ["currency: ok?"]
    assert confidence == {"total_amount": 1.0, "currency": 0.9, "due_date": 1.0}
    assert fields["total_amount"] == 9e12  # the input is left alone


def test_a_changed_value_loses_its_place_on_the_page() -> None:
    fields = {"total_amount": 10.0, "currency": "EUR", "line_items": [{"amount": 1.0}]}
    placed = {"total_amount": {"page": 1}, "currency": {"page": 1}, "line_items.0.amount": {"page": 1}}
    kept = reviews.located(fields, placed, [("total_amount", 12.0), ("currency", "EUR"), ("line_items", [])])
    assert kept == {"currency": {"page": 1}}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ACME Ltd", "ACME Ltd"),
        ("12.50", "12.50"),
        ("00123", "00123"),
        ("null", None),
        ('["a", "b"]', ["a", "b"]),
    ],
)
def test_cli_values(text: str, value) -> None:
    assert _fix_value(text) == value


# --- through the real services -------------------------------------------------------------------------
def _job(instance, job: str, doc_id: str) -> dg.ExecuteInProcessResult:
    result = (
        build_defs(get_settings())
        .resolve_job_def(job)
        .execute_in_process(partition_key=doc_id, instance=instance, raise_on_error=False)
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


class Tenant:
    def __init__(self, rt, base_url: str) -> None:
        self.name = f"rv{uuid.uuid4().hex[:8]}"
        self.client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {db.create_api_key(rt.store, self.name, 'test')}"},
            timeout=60,
        )


@pytest.fixture(scope="module")
def server(docflow_env, instance) -> Iterator[LiveServer]:
    from docflow.api.app import create_app

    live = LiveServer(create_app(get_settings(), instance))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def owner(rt, server) -> Iterator[Tenant]:
    t = Tenant(rt, server.url)
    yield t
    t.client.close()


@pytest.fixture(scope="module")
def invoice(rt, instance, owner) -> tuple[str, dict, set[str]]:
    """The sample invoice processed by the ingest job; its id, the extractor's fields and the paths of the
    values it placed on the page."""
    path = SAMPLES / "invoice-northwind-2024-0042.pdf"
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, owner.name)
    doc_id = ingest.upload(rt.bucket, rt.store, up).doc_id
    instance.add_dynamic_partitions(documents.name, [doc_id])
    _job(instance, "process_documents", doc_id)
    extraction = rt.store.load_extraction(doc_id)
    assert extraction.doc_type == "invoice" and extraction.fields.get("total_amount") is not None
    return doc_id, extraction.fields, set(extraction.provenance)


def _view(rt, sql: str, doc_id: str) -> dict:
    with rt.store.tx() as conn:
        return conn.execute(sql, (doc_id,)).fetchone()


def test_a_correction_through_the_api_shows_everywhere_and_survives_reextraction(
    rt, instance, server, owner, invoice
) -> None:
    doc_id, extracted, placed = invoice
    total = round(float(extracted["total_amount"]) + 11.11, 2)
    r = owner.client.patch(
        f"/v1/documents/{doc_id}/fields",
        json={"fields": {"total_amount": str(total), "currency": "usd"}, "confirm": ["invoice_number"]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["doc_id"] == doc_id and body["doc_type"] == "invoice"
    assert body["fields"]["total_amount"] == total and body["fields"]["currency"] == "USD"
    assert body["fields"]["invoice_number"] == extracted["invoice_number"]
    corrected = body["reviews"]["total_amount"]
    assert corrected["action"] == "correct" and corrected["value"] == total
    assert corrected["extracted_value"] == extracted["total_amount"] and corrected["reviewer"] == owner.name
    assert body["reviews"]["invoice_number"]["action"] == "confirm"
    assert body["reviews"]["invoice_number"]["value"] == extracted["invoice_number"]

    detail = owner.client.get(f"/v1/documents/{doc_id}").json()
    assert detail["fields"]["total_amount"] == total
    assert set(detail["reviews"]) == {"total_amount", "currency", "invoice_number"}
    assert detail["reviews"]["currency"]["extracted_value"] == extracted.get("currency")
    # a changed value has no place on the page any more; a confirmed one keeps its place
    assert "total_amount" in placed and "total_amount" not in rt.store.load_extraction(doc_id).provenance
    assert ("invoice_number" in rt.store.load_extraction(doc_id).provenance) == ("invoice_number" in placed)

    row = _view(rt, "SELECT total_amount, currency FROM docflow.invoices WHERE doc_id = %s", doc_id)
    assert float(row["total_amount"]) == total and row["currency"] == "USD"
    with rt.store.tx() as conn:
        marks = {
            r["field"]: r
            for r in conn.execute("SELECT * FROM docflow.reviewed_fields WHERE doc_id = %s", (doc_id,))
        }
    assert marks["total_amount"]["changed"] and not marks["invoice_number"]["changed"]
    assert marks["total_amount"]["tenant"] == owner.name and marks["total_amount"]["doc_type"] == "invoice"

    # the real re-extraction job: the extractor's values again, then the reviews over them
    run = _job(instance, "reextract_documents", doc_id)
    again = rt.store.load_extraction(doc_id)
    shown = run.asset_materializations_for_node("extracted_fields")[0].metadata  # what the UI shows
    assert shown["fields_json"].value["total_amount"] == total
    assert again.fields["total_amount"] == total and again.fields["currency"] == "USD"
    assert again.field_confidence.get("total_amount") == 1.0 and "total_amount" not in again.provenance
    row = _view(rt, "SELECT total_amount FROM docflow.invoices WHERE doc_id = %s", doc_id)
    assert float(row["total_amount"]) == total
    assert reviews.reviews_of(rt.store, doc_id)["total_amount"].extracted_value == extracted["total_amount"]
    assert rt.store.get_document(doc_id).status == "done"


def test_a_wrong_value_or_field_is_refused_and_changes_nothing(rt, owner, invoice) -> None:
    doc_id, _, _ = invoice
    before = rt.store.load_extraction(doc_id).fields
    for fields, named in [
        ({"vendor_name": "Someone Else", "invoice_date": "not a date"}, "invoice_date"),
        ({"vendor_name": "Someone Else", "shoe_size": 42}, "shoe_size"),
        ({"line_items.7.amount": 1}, "line_items.7.amount"),
    ]:
        r = owner.client.patch(f"/v1/documents/{doc_id}/fields", json={"fields": fields})
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "invalid_field" and named in r.json()["detail"]
    r = owner.client.patch(f"/v1/documents/{doc_id}/fields", json={"confirm": ["nope"]})
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    assert owner.client.patch(f"/v1/documents/{doc_id}/fields", json={}).status_code == 422
    assert rt.store.load_extraction(doc_id).fields == before
    assert "vendor_name" not in reviews.reviews_of(rt.store, doc_id)


def test_another_tenant_cannot_review_or_see_it(rt, server, invoice) -> None:
    doc_id, _, _ = invoice
    before = rt.store.load_extraction(doc_id).fields
    other = Tenant(rt, server.url)
    try:
        r = other.client.patch(f"/v1/documents/{doc_id}/fields", json={"fields": {"vendor_name": "Mallory"}})
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert other.client.delete(f"/v1/documents/{doc_id}/reviews/total_amount").status_code == 404
        assert other.client.get(f"/v1/documents/{doc_id}").status_code == 404
    finally:
        other.client.close()
    assert rt.store.load_extraction(doc_id).fields == before


def test_a_document_without_fields_yet_is_a_conflict(rt, owner) -> None:
    path = SAMPLES / "receipt-corner-cafe.txt"
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, owner.name)
    doc_id = ingest.upload(rt.bucket, rt.store, up).doc_id  # registered, not processed
    r = owner.client.patch(f"/v1/documents/{doc_id}/fields", json={"fields": {"total": 3}})
    assert r.status_code == 409 and r.json()["error"] == "not_extracted"


def _fix(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["fix", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_cli_corrects_confirms_and_takes_back(rt, owner, invoice) -> None:
    doc_id, extracted, _ = invoice
    out = _fix(doc_id, "vendor_name=Northwind Traders Limited", "line_items.0.amount=999.5", "--by", "alice")
    assert out["fields"]["vendor_name"] == "Northwind Traders Limited"
    assert out["fields"]["line_items"][0]["amount"] == 999.5
    assert out["reviews"]["vendor_name"]["reviewer"] == "alice"
    assert out["reviews"]["vendor_name"]["extracted_value"] == extracted.get("vendor_name")
    row = _view(rt, "SELECT vendor_name FROM docflow.invoices WHERE doc_id = %s", doc_id)
    assert row["vendor_name"] == "Northwind Traders Limited"

    out = _fix(doc_id, "--confirm", "invoice_date", "--by", "bob")
    confirmed = out["reviews"]["invoice_date"]
    assert (confirmed["action"], confirmed["reviewer"]) == ("confirm", "bob")
    assert confirmed["value"] == confirmed["extracted_value"] == extracted.get("invoice_date")

    with pytest.raises(reviews.InvalidReview, match="due_date"):
        CliRunner().invoke(cli, ["fix", doc_id, "due_date=someday"], catch_exceptions=False)

    # taken back: the extractor's value again, and re-extractions replace it again
    out = _fix(doc_id, "--unreview", "line_items.0.amount")
    assert "line_items.0.amount" not in out["reviews"]
    first_amount = ["line_items", 0, "amount"]
    assert reviews.get_path(out["fields"], first_amount) == reviews.get_path(extracted, first_amount)
    # the plain output: the fields, then one line per review
    plain = CliRunner().invoke(cli, ["fix", doc_id], catch_exceptions=False).stdout
    assert '"vendor_name": "Northwind Traders Limited"' in plain and "correct  vendor_name" in plain


def test_reviewed_documents_export_as_truth_that_the_eval_scores(rt, owner, invoice, tmp_path) -> None:
    doc_id, extracted, _ = invoice
    _fix(doc_id, "total_amount=4321.0", "--confirm", "invoice_number", "--by", "carol")
    result = CliRunner().invoke(
        cli,
        ["export-truth", "--tenant", owner.name, "--type", "invoice", str(tmp_path)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["doc_type"]) for r in rows] == [
        (f"docs/{owner.name}/invoice-northwind-2024-0042.pdf", "invoice")
    ]
    assert (tmp_path / rows[0]["path"]).read_bytes() == (
        SAMPLES / "invoice-northwind-2024-0042.pdf"
    ).read_bytes()
    truth = json.loads((tmp_path / rows[0]["truth_path"]).read_text())
    reviewed = reviews.reviewed(rt.store, doc_id).fields
    assert truth["doc_type"] == "invoice"
    assert truth["fields"]["total_amount"] == 4321.0
    assert truth["fields"]["invoice_number"] == extracted["invoice_number"]
    assert all(truth["fields"][name] == reviewed[name] for name in truth["fields"])
    assert not any(name.startswith("line_items") for name in truth["fields"])
    assert {p.name for p in (tmp_path / "docs").iterdir()} == {owner.name}  # --tenant

    # the eval reads the manifest: against the reviewed document itself every field scores
    items = load_manifest(tmp_path / "manifest.csv", tenant=owner.name)
    assert [i.doc_id for i in items] == [doc_id]
    assert metrics.fields(rt, items)["accuracy"] == 1.0
    # and the pipeline's own answer (processed again as the eval tenant) misses the corrected total only
    items = load_manifest(tmp_path / "manifest.csv")
    process_items(rt, items, workers=1)
    scored = metrics.fields(rt, items)
    assert scored["per_field"]["invoice.total_amount"]["accuracy"] == 0.0
    assert scored["per_field"]["invoice.invoice_number"]["accuracy"] == 1.0
    assert scored["n"] == len(truth["fields"])
    assert {m["field"]: m["predicted"] for m in scored["misses"]}["total_amount"] == extracted["total_amount"]
