"""Types as data: a `purchase_order` type added in a data folder of its own (an entry in a copy of
doc_types.yaml and a JSON Schema file, no Python) is classified, extracted by its labels and aliases, and
read back from its generated typed view, through the real assets on the embedded Postgres and S3."""

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from docflow import ingest
from docflow.cli import cli
from docflow.defs.assets import build_assets
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.errors import ConfigError
from docflow.runtime import REPO_ROOT
from docflow.schemas import get_type, load_types, schema_fingerprint, wire_schema
from docflow.settings import get_settings
from docflow.store import typed_views

PURCHASE_ORDER = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "description": "A buyer's order to a supplier.",
    "type": "object",
    "properties": {
        "po_number": {"type": "string", "x-aliases": ["PO No.", "Order number"]},
        "vendor": {
            "type": "string",
            "description": "Who the goods are ordered from.",
            "x-aliases": ["Supplier"],
        },
        "order_date": {"type": "string", "format": "date", "x-aliases": ["PO Date", "Date of order"]},
        "total": {"type": "number", "format": "amount", "x-aliases": ["Order total", "Total amount"]},
        "currency": {"type": "string", "format": "currency"},
    },
    "required": ["po_number", "total"],
}

DOCUMENT = """# Purchase Order

**PO Number:** PO-2026-0117
**Supplier:** Globex Industrial Supply Ltd
**PO Date:** 3 November 2026
**Ship to:** Initech Plant 4, 1200 Industrial Way, Springfield

| Item | Qty | Unit price | Amount |
|---|---|---|---|
| Hex bolts M8, box of 100 | 10 | 45.00 | 450.00 |
| Safety gloves, pair | 200 | 4.00 | 800.00 |

Subtotal: $1,250.00
Order Total: $1,250.00

Please confirm this purchase order and the delivery date by reply.
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    """A data folder: the packaged types and schemas, plus purchase_order."""
    folder = tmp_path / "data"
    shutil.copytree(REPO_ROOT / "data" / "schemas", folder / "schemas")
    spec = yaml.safe_load((REPO_ROOT / "data" / "doc_types.yaml").read_text(encoding="utf-8"))
    spec["types"]["purchase_order"] = {
        "description": "A purchase order: a buyer's order to a supplier with a PO number, items and a total.",
        "schema": "schemas/purchase_order.json",
        "schema_version": "1",
        "keywords": {"purchase order": 5, "po number": 5, "supplier": 1},
        "filename": ["po", "purchase-order"],
    }
    (folder / "schemas" / "purchase_order.json").write_text(json.dumps(PURCHASE_ORDER, indent=2))
    path = folder / "doc_types.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_type_added_in_a_data_folder_is_processed_end_to_end(rt, instance, rules, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCFLOW_RULES_PATH", str(rules))
    settings = get_settings()
    path = tmp_path / "po-globex-0117.md"
    path.write_text(DOCUMENT, encoding="utf-8")
    up = ingest.plan_upload(path, path.parent, settings.prefix, "types")
    ingest.upload(rt.bucket, rt.store, up)
    instance.add_dynamic_partitions(documents.name, [up.doc_id])
    result = dg.materialize(
        build_assets(settings),
        partition_key=up.doc_id,
        instance=instance,
        resources={"docflow": DocflowResource()},  # settings from the environment: the data folder's types
    )
    assert result.success

    extraction = rt.store.load_extraction(up.doc_id)
    assert (extraction.doc_type, extraction.schema_name, extraction.backend) == (
        "purchase_order",
        "PurchaseOrder",
        "local/heuristics",
    )
    assert extraction.fields == {
        "po_number": "PO-2026-0117",
        "vendor": "Globex Industrial Supply Ltd",
        "order_date": "2026-11-03",
        "total": 1250.0,
        "currency": "USD",
    }
    with rt.store.tx() as conn:
        row = conn.execute(
            "SELECT po_number, vendor, order_date, total, currency, provenance, validation_errors "
            "FROM docflow.purchase_orders WHERE doc_id = %s",
            (up.doc_id,),
        ).fetchone()
        types = {
            r["column_name"]: r["data_type"]
            for r in conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'docflow' AND table_name = 'purchase_orders'"
            ).fetchall()
        }
    assert row is not None
    assert row["po_number"] == "PO-2026-0117" and row["vendor"] == "Globex Industrial Supply Ltd"
    assert row["order_date"] == dt.date(2026, 11, 3) and row["total"] == Decimal("1250.0")
    assert row["currency"] == "USD" and isinstance(row["provenance"], dict)
    assert types["order_date"] == "date" and types["total"] == "numeric" and types["po_number"] == "text"
    assert types["provenance"] == "jsonb"

    listed = CliRunner().invoke(cli, ["types", "--json"], env={"DOCFLOW_RULES_PATH": str(rules)})
    assert listed.exit_code == 0, listed.output
    by_name = {t["name"]: t for t in json.loads(listed.output)}
    po = by_name["purchase_order"]
    assert (po["view"], po["extractor"], po["schema"]) == (
        "docflow.purchase_orders",
        "generic",
        "PurchaseOrder",
    )
    assert [f["name"] for f in po["fields"]] == ["po_number", "vendor", "order_date", "total", "currency"]
    assert by_name["invoice"]["extractor"] == "built-in" and by_name["letter"]["view"] is None


def test_views_are_made_once_and_follow_their_schema_file(rt, rules) -> None:
    with rt.store.tx() as conn:
        typed_views.ensure_views(conn, load_types(rules))  # made here, or already by another test
        assert typed_views.ensure_views(conn, load_types(rules)) == []  # unchanged: nothing replaced
    before = schema_fingerprint(rules)
    schema = json.loads((rules.parent / "schemas" / "purchase_order.json").read_text())
    schema["properties"]["delivery_date"] = {"type": "string", "format": "date"}
    (rules.parent / "schemas" / "purchase_order.json").write_text(json.dumps(schema))
    assert schema_fingerprint(rules) != before
    with rt.store.tx() as conn:
        assert typed_views.ensure_views(conn, load_types(rules)) == ["purchase_orders"]
        columns = [
            r["column_name"]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'docflow' "
                "AND table_name = 'purchase_orders' ORDER BY ordinal_position"
            ).fetchall()
        ]
    assert "delivery_date" in columns


def test_the_built_in_types_come_from_their_files_with_the_same_behaviour() -> None:
    invoice = get_type("invoice")
    assert invoice.schema_file == (REPO_ROOT / "data" / "schemas" / "invoice.json").resolve()
    assert invoice.view == "invoices" and invoice.model.__name__ == "Invoice"
    dumped = invoice.model.model_validate({"total_amount": "12.50", "currency": " eur "}).model_dump(
        mode="json"
    )
    assert (dumped["total_amount"], dumped["currency"]) == (12.5, "EUR")
    with pytest.raises(ValueError):
        invoice.model.model_validate({"unknown_field": 1})  # extra="forbid"
    assert get_type("letter").model.__name__ == "KeyValues" and get_type("letter").view is None


def test_remote_backends_get_the_schema_file_in_plain_json_schema(rules) -> None:
    sent = wire_schema(get_type("purchase_order", rules))
    assert list(sent["properties"]) == ["po_number", "vendor", "order_date", "total", "currency"]
    assert sent["properties"]["total"]["type"] == "number"
    assert "Supplier" in sent["properties"]["vendor"]["description"]
    assert "x-aliases" not in json.dumps(sent) and "required" not in sent  # any field may be missing


def test_a_view_named_like_a_table_is_refused(rt, rules) -> None:
    spec = yaml.safe_load(rules.read_text(encoding="utf-8"))
    spec["types"]["purchase_order"]["view"] = "documents"
    rules.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"docflow\.documents exists"), rt.store.tx() as conn:
        typed_views.ensure_views(conn, load_types(rules))


def test_the_generic_extractor_reads_a_pdf_by_its_labels_and_aliases(rules, tmp_path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    from docflow import backends
    from docflow.models import Classification, RawFile
    from docflow.settings import Settings

    path = tmp_path / "scan-0042.pdf"
    pdf = canvas.Canvas(str(path), pagesize=A4)
    rows = [
        ("PURCHASE ORDER", ""),
        ("Order number:", "4500012345"),  # an alias
        ("Supplier:", "Acme Fasteners GmbH"),
        ("PO Date:", "12.10.2026"),
        ("Description", "Amount"),
        ("Bolts M8", "120,00 EUR"),
        ("Order total:", "1.234,50 EUR"),
    ]
    for i, (label, value) in enumerate(rows):
        pdf.drawString(60, 800 - 22 * i, label)
        pdf.drawString(250, 800 - 22 * i, value)
    pdf.save()
    data = path.read_bytes()
    settings = Settings(rules_path=rules)
    raw = RawFile(doc_id="x", sha256="0", size=len(data), content_type="application/pdf", filename=path.name)
    parsed = backends.get_parser(settings).parse(data, raw)
    assert backends.get_classifier(settings).classify(data, raw).doc_type == "purchase_order"
    classified = Classification(doc_type="purchase_order", confidence=0.9, reasoning="test", backend="test")
    extraction = backends.get_extractor(settings).extract(parsed, classified)
    assert extraction.fields == {
        "po_number": "4500012345",
        "vendor": "Acme Fasteners GmbH",
        "order_date": "2026-10-12",
        "total": 1234.5,
        "currency": "EUR",
    }
    assert extraction.validation_errors == []


def test_a_rules_file_copied_alone_keeps_the_packaged_schemas(tmp_path) -> None:
    copy = tmp_path / "rules.yaml"
    shutil.copy(REPO_ROOT / "data" / "doc_types.yaml", copy)
    invoice = get_type("invoice", copy)
    assert invoice.schema_file == (REPO_ROOT / "data" / "schemas" / "invoice.json").resolve()
    assert invoice.model.__name__ == "Invoice" and invoice.view == "invoices"
