"""Typed SQL views (migration 0002) and docflow.analytics on the real embedded Postgres, with rows made by
materializing sample documents through Dagster plus hand-written rows holding values that do not convert."""

import uuid

import dagster as dg
import pytest
from psycopg.types.json import Jsonb

from docflow import analytics, ingest
from docflow.defs.assets import build_assets
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.runtime import REPO_ROOT
from docflow.settings import get_settings

SAMPLES = REPO_ROOT / "data" / "samples"


def _materialize(rt, instance, name: str, tenant: str) -> str:
    path = SAMPLES / name
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, tenant)
    ingest.upload(rt.bucket, rt.store, up)
    instance.add_dynamic_partitions(documents.name, [up.doc_id])
    result = dg.materialize(
        build_assets(get_settings()),
        partition_key=up.doc_id,
        instance=instance,
        resources={"docflow": DocflowResource()},
    )
    assert result.success
    return up.doc_id


def _insert(rt, tenant: str, doc_type: str, fields: dict) -> str:
    doc_id = f"{tenant}-{uuid.uuid4().hex}"
    with rt.store.tx() as conn:
        conn.execute(
            "INSERT INTO docflow.documents (doc_id, tenant, bucket, key, sha256, filename, status) "
            "VALUES (%s, %s, 'b', %s, %s, %s, 'done')",  # one document per content: the id as its sha256
            (doc_id, tenant, f"{tenant}/{doc_id}.pdf", doc_id, f"{doc_id}.pdf"),
        )
        conn.execute(
            "INSERT INTO docflow.classifications (doc_id, doc_type, confidence, reasoning, backend) "
            "VALUES (%s, %s, 0.5, 'test', 'test')",
            (doc_id, doc_type),
        )
        conn.execute(
            "INSERT INTO docflow.extractions "
            "(doc_id, doc_type, schema_name, schema_version, fields, backend) "
            "VALUES (%s, %s, 'X', '1', %s, 'test')",
            (doc_id, doc_type, Jsonb(fields)),
        )
    return doc_id


@pytest.fixture(scope="module")
def tenant(rt, instance) -> dict[str, str]:
    name = f"a{uuid.uuid4().hex[:6]}"
    ids = {
        "invoice": _materialize(rt, instance, "invoice-northwind-2024-0042.pdf", name),
        "receipt": _materialize(rt, instance, "receipt-corner-cafe.txt", name),
        "bad_invoice": _insert(
            rt,
            name,
            "invoice",
            {
                "total_amount": "12,50 EUR",
                "invoice_date": "2023-02-30",
                "due_date": "next week",
                "tax_rate": [],
            },
        ),
        "contract": _insert(
            rt,
            name,
            "contract",
            {
                "parties": ["Alpha Inc.", "Beta LLC", "Client"],
                "agreement_date": "2024-01-31",
                "effective_date": "the date of the Closing",
            },
        ),
        "statement": _insert(
            rt,
            name,
            "financial_statement",
            {
                "currency": "eur",
                "revenue": [
                    {"value": 4631.0, "unit": "millions", "period_end": "2023-12-31"},
                    {"value": "n/a", "period_end": "FY2022"},
                ],
            },
        ),
    }
    return {"name": name, **ids}


def test_invoices_view_has_real_types_and_matches_the_extraction(rt, tenant) -> None:
    frame = analytics.invoices(tenant=tenant["name"])
    assert set(frame.doc_id) == {tenant["invoice"], tenant["bad_invoice"]}
    assert str(frame.total_amount.dtype) == "float64"
    assert str(frame.invoice_date.dtype).startswith("datetime64")
    good = frame.set_index("doc_id").loc[tenant["invoice"]]
    fields = rt.store.load_extraction(tenant["invoice"]).fields
    assert good.total_amount == pytest.approx(fields["total_amount"])
    assert good.invoice_date.date().isoformat() == fields["invoice_date"]
    assert good.vendor_name == fields["vendor_name"]
    assert good.currency == fields["currency"]


def test_bad_values_become_null_instead_of_failing_the_query(rt, tenant) -> None:
    with rt.store.tx() as conn:
        row = conn.execute(
            "SELECT total_amount, invoice_date, due_date, tax_rate FROM docflow.invoices WHERE doc_id = %s",
            (tenant["bad_invoice"],),
        ).fetchone()
        assert row == {"total_amount": None, "invoice_date": None, "due_date": None, "tax_rate": None}
        casts = conn.execute(
            "SELECT docflow.try_numeric(' -1.5e3 ') AS n, docflow.try_numeric('1.2.3') AS bad_n, "
            "docflow.try_date('2024-02-29') AS d, docflow.try_date('2023-02-29') AS bad_d"
        ).fetchone()
    assert float(casts["n"]) == -1500.0 and casts["bad_n"] is None
    assert casts["d"].isoformat() == "2024-02-29" and casts["bad_d"] is None


def test_receipts_contracts_and_revenue_views(tenant) -> None:
    receipts = analytics.receipts(tenant=tenant["name"])
    assert list(receipts.doc_id) == [tenant["receipt"]]
    assert receipts.total.iloc[0] > 0
    contracts = analytics.contracts(tenant=tenant["name"])
    row = contracts.iloc[0]
    assert list(row.parties) == ["Alpha Inc.", "Beta LLC", "Client"]
    assert row.agreement_date.date().isoformat() == "2024-01-31"
    assert row.effective_date != row.effective_date  # NaT: a clause, not a date...
    assert row.effective_date_text == "the date of the Closing"  # ...kept as text
    figures = analytics.revenue_figures(tenant=tenant["name"])
    assert len(figures) == 2
    assert figures.value.iloc[0] == 4631.0 and figures.value.isna().iloc[1]
    assert list(figures.currency) == ["EUR", "EUR"]  # the statement's currency, upper-cased


def test_documents_and_type_counts(tenant) -> None:
    docs = analytics.documents(tenant=tenant["name"])
    assert len(docs) == 5 and set(docs.status) == {"done"}
    counts = analytics.doc_type_counts(tenant=tenant["name"]).set_index("doc_type").documents.to_dict()
    assert counts == {"invoice": 2, "receipt": 1, "contract": 1, "financial_statement": 1}
    assert analytics.documents(tenant=tenant["name"], status="failed").empty
    assert analytics.query("SELECT %s::int + 1 AS n", [41]).n.iloc[0] == 42
    with pytest.raises(ValueError, match="unknown view"):
        analytics.view("payslips")
