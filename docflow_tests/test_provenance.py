"""Provenance: every extracted value traced to its page, box and source text; chunks and search hits with
their boxes. The rules alone (pure), then a born-digital PDF invoice and a scanned receipt through the real
pipeline on embedded Postgres and S3, the asset check through the real Dagster instance, and the API."""

import json
import uuid
from pathlib import Path

import dagster as dg
import httpx
import pytest
from live import LiveServer
from PIL import Image, ImageDraw, ImageFont

from docflow import ingest, pipeline, quality
from docflow.api.app import create_app
from docflow.backends.extract import provenance
from docflow.defs import build_defs
from docflow.defs import metadata as md
from docflow.defs.partitions import documents
from docflow.models import Chunk, Extraction, FieldSource, Span
from docflow.retrieval import search
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings
from docflow.store import tenants as db

SAMPLES = REPO_ROOT / "data" / "samples"


# --- the rules alone ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("Total due: GBP 3,300.00", 3300.0, True),
        ("Summe 1.234,56 €", 1234.56, True),
        ("Total 1 234,56", 1234.56, True),
        ("Qty 12  150.00", 12, True),
        ("Qty 12  150.00", 150.0, True),
        ("Total 3,300.00", 330.0, False),
        ("VAT 20%", 20.0, True),
        ("Date: 14/03/2024", "2024-03-14", True),
        ("Date: 03/14/2024", "2024-03-14", True),
        ("14 March 2024", "2024-03-14", True),
        ("March 15, 2024", "2024-03-14", False),
        ("TOTAL RM 12.00", "MYR", True),
        ("Total € 5,00", "EUR", True),
        ("Total 5,00", "EUR", False),
        ("Invoice number: INV-2024-0042", "inv 2024-0042", True),
        ("NORTHWIND  Traders, Ltd.", "Northwind Traders Ltd", True),
        ("Northwind Traders", "Northwind Traders Ltd", False),
        ("Tradersville", "Traders", False),
    ],
)
def test_contains_normalizes_numbers_dates_currencies_and_words(text: str, value, expected: bool) -> None:
    assert provenance.contains(text, value) is expected


def test_leaves_are_keyed_by_their_path() -> None:
    fields = {
        "invoice_number": "A-1",
        "line_items": [{"description": "x", "amount": 2.0}],
        "key_values": {"Name": "Ann", "Tags": ["a", "b"]},
        "empty": None,
    }
    assert dict(provenance.leaves(fields)) == {
        "invoice_number": "A-1",
        "line_items.0.description": "x",
        "line_items.0.amount": 2.0,
        "key_values.Name": "Ann",
        "key_values.Tags.0": "a",
        "key_values.Tags.1": "b",
    }


def _span(text: str, x0: float, y0: float, x1: float, page: int = 1) -> Span:
    return Span(page=page, text=text, x0=x0, y0=y0, x1=x1, y1=y0 + 0.02)


def _extraction(fields: dict, **kw) -> Extraction:
    base = {"doc_type": "invoice", "schema_name": "Invoice", "schema_version": "1", "backend": "test"}
    return Extraction(fields=fields, **(base | kw))


def test_the_value_next_to_its_label_wins_and_a_clause_spans_lines() -> None:
    from docflow.models import ParsedDocument

    spans = [
        _span("Subtotal", 0.1, 0.50, 0.3),
        _span("12.00", 0.7, 0.50, 0.8),
        _span("Amount due", 0.1, 0.55, 0.3),
        _span("12.00", 0.7, 0.55, 0.8),
        _span("This agreement is governed by the", 0.1, 0.70, 0.9),
        _span("laws of the State of Delaware.", 0.1, 0.72, 0.7, page=1),
        _span("Invoice date: 2024-03-14", 0.1, 0.1, 0.5, page=1),
    ]
    parsed = ParsedDocument(markdown="", text="", parser="test", spans=spans)
    fields = {
        "total_amount": 12.0,
        "governing_law": "governed by the laws of the State of Delaware",
        "invoice_date": "2024-03-14",
        "vendor_name": "Nowhere Ltd",  # on no page: no entry
    }
    located = provenance.locate(_extraction(fields, field_confidence={"total_amount": 0.9}), parsed)
    total = located.provenance["total_amount"]
    assert (total.y0, total.text, total.confidence) == (0.55, "12.00", 0.9)
    law = located.provenance["governing_law"]
    assert (law.y0, law.y1, law.x1) == (0.70, 0.74, 0.9) and "Delaware" in law.text
    assert located.provenance["invoice_date"].text == "Invoice date: 2024-03-14"
    assert "vendor_name" not in located.provenance
    assert provenance.mismatches(located) == []


def test_provenance_matches_flags_a_value_its_source_text_does_not_hold() -> None:
    source = FieldSource(page=1, x0=0.1, y0=0.1, x1=0.2, y1=0.2, text="Total: 3,300.00", confidence=0.9)
    good = _extraction({"total_amount": 3300.0}, provenance={"total_amount": source})
    bad = _extraction({"total_amount": 3800.0}, provenance={"total_amount": source})
    assert quality.provenance_matches(good).passed
    verdict = quality.provenance_matches(bad)
    assert (verdict.passed, verdict.severity) == (False, "warn")
    assert verdict.details["fields"] == ["total_amount"] and "total_amount" in verdict.message


def test_the_ui_metadata_shows_where_values_were_read_except_for_passthrough_documents() -> None:
    source = FieldSource(page=2, x0=0.1, y0=0.1, x1=0.2, y1=0.2, text="Total: 3,300.00", confidence=0.9)
    extraction = _extraction({"total_amount": 3300.0}, provenance={"total_amount": source})
    meta = md.extraction_metadata(extraction, 0.1)
    [row] = meta["provenance"].records
    assert row.data == {
        "field": "total_amount",
        "value": "3300.0",
        "page": 2,
        "source_text": "Total: 3,300.00",
        "confidence": 0.9,
    }
    assert "provenance" not in md.counts_only(meta)


def test_chunk_boxes_cover_the_spans_of_the_chunks_text_only() -> None:
    spans = [
        _span("Payment terms", 0.1, 0.10, 0.4),
        _span("Pay within thirty days of the invoice date.", 0.1, 0.13, 0.8),
        _span("Unrelated footer text on the page", 0.1, 0.90, 0.6),
        _span("Pay within thirty days of the invoice date.", 0.1, 0.13, 0.8, page=2),
    ]
    chunk = Chunk(
        index=0,
        text="## Payment terms\n\nPay within thirty days of the invoice date.",
        page_start=1,
        page_end=1,
    )
    [box] = provenance.chunk_boxes(chunk, spans)
    assert (box.page, box.x0, box.y0, box.x1) == (1, 0.1, 0.10, 0.8)
    assert box.y1 == pytest.approx(0.15)


def test_a_value_whose_lines_reading_order_separates_is_placed_at_the_spans_that_tile_it() -> None:
    from docflow.models import ParsedDocument

    spans = [  # two columns read row by row: the left column's address is interleaved with the right's
        _span("12 Market", 0.1, 0.30, 0.4),
        _span("Invoice no. 77", 0.6, 0.30, 0.9),
        _span("Street, Springfield", 0.1, 0.33, 0.4),
        _span("Amount (RM) 12.00", 0.6, 0.33, 0.9),
    ]
    parsed = ParsedDocument(markdown="", text="", parser="test", spans=spans)
    fields = {"address": "12 Market Street, Springfield", "currency": "MYR", "total": 12.0}
    located = provenance.locate(_extraction(fields, doc_type="receipt"), parsed).provenance
    assert (located["address"].x1, located["address"].y0, located["address"].y1) == (0.4, 0.30, 0.35)
    assert located["currency"].text == "Amount (RM) 12.00"


def test_llamaextract_citations_are_placed_on_the_page(monkeypatch) -> None:
    from test_classify_remote import FILE, FakeAPI, llama_settings

    from docflow.backends.extract.llamacloud import LlamaExtractor
    from docflow.models import Classification, ParsedDocument

    def job(status: str, **extra) -> dict:
        base = {"id": "ext-1", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:01Z"}
        return {**base, "file_input": "dfl-1", "project_id": "p", "status": status, **extra}

    metadata = {
        "field_metadata": {
            "document_metadata": {
                "total_amount": {
                    "citation": [{"page": 1, "matching_text": "Total due 1,234.56"}],
                    "confidence": 0.8,
                },
                "invoice_number": {
                    "citation": [{"page": 1, "matching_text": "No. INV-17"}],
                    "confidence": 0.95,
                },
            }
        }
    }
    api = FakeAPI()
    try:
        api.script("POST", "/api/v1/beta/files", (200, FILE))
        api.script("POST", "/api/v2/extract", (200, job("PENDING")))
        result = {"invoice_number": "INV-17", "total_amount": 1234.56}
        api.script(
            "GET",
            "/api/v2/extract/ext-1",
            (200, job("COMPLETED", extract_result=result, extract_metadata=metadata)),
        )
        spans = [
            _span("Subtotal 1,234.56", 0.1, 0.5, 0.5),
            _span("Total due 1,234.56", 0.1, 0.6, 0.5),
            _span("No. INV-17", 0.6, 0.1, 0.9),
        ]
        parsed = ParsedDocument(markdown="# Invoice", text="Invoice", parser="test", spans=spans)
        classified = Classification(doc_type="invoice", confidence=0.9, reasoning="test", backend="test")
        extraction = LlamaExtractor.from_settings(llama_settings(api)).extract(parsed, classified)
    finally:
        api.close()
    sent = json.loads(api.calls("POST", "/api/v2/extract")[0]["body"])["configuration"]
    assert sent["cite_sources"] is True
    assert extraction.provenance["total_amount"].page == 0  # cited, not placed yet
    located = provenance.locate(extraction, parsed).provenance
    assert (located["total_amount"].y0, located["total_amount"].confidence) == (0.6, 0.8)
    assert located["invoice_number"].text == "No. INV-17"


# --- through the pipeline ----------------------------------------------------------------------------
def scanned_receipt(path: Path) -> Path:
    """A receipt as a camera or scanner gives it: text rendered into an image, read back by OCR."""
    lines = [
        "CORNER CAFE",
        "12 Market Street, Springfield",
        "Date: 03/05/2024",
        "",
        "Latte            4.50",
        "Croissant        3.20",
        "",
        "TOTAL USD        7.70",
        "Paid by card",
        "Thank you!",
    ]
    page = Image.new("RGB", (800, 900), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=34)
    for i, line in enumerate(lines):
        draw.text((60, 50 + i * 70), line, fill="black", font=font)
    page.save(path)
    return path


def _process(rt, path: Path, tenant: str) -> str:
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, tenant)
    ingest.upload(rt.bucket, rt.store, up)
    pipeline.process(rt, up.doc_id)
    assert rt.store.get_document(up.doc_id).status == "done", rt.store.get_document(up.doc_id).error
    return up.doc_id


@pytest.fixture(scope="module")
def tenant() -> str:
    return f"prov{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def processed(rt, tenant, tmp_path_factory) -> dict[str, str]:
    receipt = scanned_receipt(tmp_path_factory.mktemp("scan") / "corner-cafe.png")
    return {
        "invoice": _process(rt, SAMPLES / "invoice-northwind-2024-0042.pdf", tenant),
        "receipt": _process(rt, receipt, tenant),
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("invoice", {"invoice_number", "invoice_date", "total_amount", "currency", "line_items.1.amount"}),
        ("receipt", {"store_name", "date", "total", "currency"}),
    ],
)
def test_every_extracted_value_has_a_page_and_a_box_whose_text_holds_it(
    rt, processed, kind: str, expected: set[str]
) -> None:
    stored = rt.store.load_extraction(processed[kind])
    assert stored.doc_type == kind
    values = dict(provenance.leaves(stored.fields))
    assert expected <= values.keys()
    assert set(stored.provenance) == set(values), set(values) - set(stored.provenance)
    for path, source in stored.provenance.items():
        assert source.page == 1
        assert 0 <= source.x0 < source.x1 <= 1 and 0 <= source.y0 < source.y1 <= 1, path
        assert provenance.contains(source.text, values[path]), (path, values[path], source.text)
        assert source.ocr is (kind == "receipt")
        assert 0 < source.confidence <= 1
    if kind == "invoice":
        assert "3,300.00" in stored.provenance["total_amount"].text
        number = stored.provenance["invoice_number"]
        assert number.y1 < stored.provenance["total_amount"].y0  # the header, above the totals


def test_chunks_and_search_hits_carry_their_boxes(rt, processed, tenant) -> None:
    hits = search(rt, "Dagster training workshop", k=3, tenant=tenant, chunks=True)
    assert hits and hits[0].doc_id == processed["invoice"]
    assert hits[0].boxes and all(b.page == 1 and b.x0 < b.x1 and b.y0 < b.y1 for b in hits[0].boxes)
    with rt.store.tx() as conn:
        rows = conn.execute(
            "SELECT boxes FROM docflow.chunks WHERE doc_id = %s", (processed["receipt"],)
        ).fetchall()
    assert rows and all(r["boxes"] for r in rows)


def test_the_asset_check_flags_a_planted_mismatch(rt, instance, tenant) -> None:
    up = ingest.plan_upload(
        SAMPLES / "invoice-northwind-2024-0042.pdf", SAMPLES, rt.settings.prefix, f"{tenant}c"
    )
    ingest.upload(rt.bucket, rt.store, up)
    instance.add_dynamic_partitions(documents.name, [up.doc_id])
    defs = build_defs(get_settings())

    def run(job: str) -> dict[str, dg.AssetCheckEvaluation]:
        result = defs.resolve_job_def(job).execute_in_process(
            partition_key=up.doc_id, instance=instance, raise_on_error=False
        )
        assert result.success
        return {e.check_name: e for e in result.get_asset_check_evaluations()}

    first = defs.resolve_job_def("process_documents").execute_in_process(
        partition_key=up.doc_id, instance=instance, raise_on_error=False
    )
    assert first.success
    checks = {e.check_name: e for e in first.get_asset_check_evaluations()}
    assert checks["provenance_matches"].passed
    [extracted] = [
        m.materialization.metadata
        for m in first.get_asset_materialization_events()
        if m.materialization.asset_key == dg.AssetKey("extracted_fields")
    ]
    rows = {r.data["field"]: r.data for r in extracted["provenance"].records}
    assert rows["total_amount"]["page"] == 1 and "3,300.00" in rows["total_amount"]["source_text"]
    stored = rt.store.load_extraction(up.doc_id)
    planted = stored.model_copy(update={"fields": {**stored.fields, "total_amount": 3800.0}})
    rt.store.save_extraction(up.doc_id, planted)
    check = run("reembed_documents")["provenance_matches"]  # checks the stored fields, extracts nothing
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["fields"].value == ["total_amount"]


def test_the_api_returns_each_fields_provenance(rt, instance, processed, tenant) -> None:
    live = LiveServer(create_app(get_settings(), instance))
    key = db.create_api_key(rt.store, tenant, "provenance test")
    try:
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}) as client:
            detail = client.get(f"/v1/documents/{processed['invoice']}").json()
    finally:
        live.stop()
    total = detail["provenance"]["total_amount"]
    assert total["page"] == 1 and "3,300.00" in total["text"]
    assert set(total) >= {"page", "x0", "y0", "x1", "y1", "text", "confidence", "ocr"}
    assert set(detail["provenance"]) == set(dict(provenance.leaves(detail["fields"])))
