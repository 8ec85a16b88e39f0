"""Plausibility rules (docflow.schemas.plausibility): the rules alone, through validate_fields, the asset
check's rule, and through the real store: an implausible value is kept with an error and left out of the
typed views and of docflow.analytics."""

import uuid
from datetime import date
from decimal import Decimal

import dagster as dg
import pytest

from docflow import analytics, ingest, quality
from docflow.defs import build_defs
from docflow.defs.partitions import documents
from docflow.models import Extraction
from docflow.runtime import REPO_ROOT
from docflow.schemas import Contract, FinancialStatement, Invoice, Receipt, plausibility, validate_fields
from docflow.settings import get_settings

TODAY = date(2026, 12, 7)


def _flags(schema: type, raw: dict) -> dict[str, str]:
    return plausibility.check(schema.model_validate(raw), TODAY)


# --- the rules alone -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (Decimal("12.50"), False),
        (Decimal("-4631.00"), False),
        (Decimal("9999999999.99"), False),  # ten integer digits: still money
        (Decimal("201901012345"), True),  # a twelve-digit registration number
        (Decimal("-60123456789"), True),
    ],
)
def test_amount_with_too_many_digits_is_an_identifier(value: Decimal, problem: bool) -> None:
    assert (plausibility.amount_problem(value) is not None) == problem


@pytest.mark.parametrize(
    ("day", "problem"),
    [
        (date(1900, 1, 1), False),
        (date(1899, 12, 31), True),
        (date(1019, 3, 4), True),  # a two-digit year read wrong
        (date(2031, 12, 7), False),  # five years ahead: a due or effective date
        (date(2031, 12, 8), True),
        (date(2204, 1, 1), True),
    ],
)
def test_dates_in_a_sane_range(day: date, problem: bool) -> None:
    assert (plausibility.date_problem(day, TODAY) is not None) == problem


@pytest.mark.parametrize(
    ("schema", "raw", "flagged"),
    [
        # a consistent invoice: total = items + tax, tax at its rate
        (
            Invoice,
            {
                "total_amount": "119.00",
                "tax_amount": "19.00",
                "tax_rate": "19",
                "line_items": [{"amount": "60"}, {"amount": "40"}],
                "invoice_date": "2023-07-04",
                "due_date": "2023-08-03",
            },
            set(),
        ),
        # line items found only in part: a total ten times them is not implausible
        (Invoice, {"total_amount": "1939.00", "line_items": [{"amount": "193.90"}]}, set()),
        # a total alone: nothing to weigh it against but its digits
        (Invoice, {"total_amount": "4904.94"}, set()),
        (Receipt, {"total": "201901012345"}, {"total"}),
        # a seven-digit number read as the total of a receipt whose items are a few ringgit
        (
            Receipt,
            {"total": "1234567", "items": [{"amount": "7.50"}, {"quantity": "2", "unit_price": "3.00"}]},
            {"total"},
        ),
        # ... or of an invoice whose tax and rate imply a gross of 119
        (Invoice, {"total_amount": "87654321", "tax_amount": "19", "tax_rate": "19"}, {"total_amount"}),
        (Invoice, {"total_amount": "100", "tax_amount": "150"}, {"tax_amount"}),
        (Invoice, {"total_amount": "-50", "tax_amount": "8"}, set()),  # a credit note
        (
            Invoice,
            {"total_amount": "25", "line_items": [{"quantity": "40012345678", "amount": "25"}]},
            {"line_items.0.quantity"},
        ),
        (Invoice, {"invoice_date": "2023-05-11", "due_date": "2023-04-11"}, {"due_date"}),
        (Invoice, {"invoice_date": "1823-05-11"}, {"invoice_date"}),
        (Receipt, {"date": "2048-01-01", "total": "20.00"}, {"date"}),
        (
            Contract,
            {"agreement_date": "1066-10-14", "effective_date": "the date of the Closing"},
            {"agreement_date"},
        ),
        # revenue in units runs to twelve digits and more: no digit rule there, only the dates
        (
            FinancialStatement,
            {"revenue": [{"value": "383285000000"}, {"value": "1", "period_end": "1776-07-04"}]},
            {"revenue.1.period_end"},
        ),
    ],
)
def test_check_names_the_implausible_values(schema: type, raw: dict, flagged: set[str]) -> None:
    assert set(_flags(schema, raw)) == flagged


def test_validate_fields_keeps_an_implausible_value_and_reports_it() -> None:
    fields, errors = validate_fields(
        Invoice, {"total_amount": Decimal("201901012345"), "currency": "myr", "tax_rate": Decimal(250)}, TODAY
    )
    assert fields == {"total_amount": 201901012345.0, "currency": "MYR"}  # kept; the invalid rate dropped
    [implausible] = [e for e in errors if plausibility.is_implausible(e)]
    assert implausible.startswith("total_amount: implausible: 12 integer digits")
    assert implausible.endswith("(got 201901012345)")
    assert plausibility.implausible_fields(errors) == ["total_amount"]
    assert [e.split(":")[0] for e in errors if not plausibility.is_implausible(e)] == ["tax_rate"]
    assert plausibility.lower_confidence({"total_amount": 0.9, "currency": 0.9}, errors) == {
        "total_amount": plausibility.LOW_CONFIDENCE,
        "currency": 0.9,
    }


def _extraction(raw: dict, **kw) -> Extraction:
    fields, errors = validate_fields(Invoice, raw)
    base = {"doc_type": "invoice", "schema_name": "Invoice", "schema_version": Invoice.schema_version}
    return Extraction(fields=fields, validation_errors=errors, backend="test", **(base | kw))


def test_the_check_warns_on_implausible_values_and_does_not_fail() -> None:
    extraction = _extraction({"invoice_number": "A-1", "total_amount": Decimal("201901012345")})
    verdict = quality.schema_valid(extraction)
    assert (verdict.passed, verdict.severity) == (False, "warn")
    assert "1 implausible value(s) kept but left out of the typed views (total_amount)" in verdict.message
    # a row stored before the rule existed: warned about too, with the way to mark it
    unmarked = extraction.model_copy(update={"validation_errors": []})
    verdict = quality.schema_valid(unmarked)
    assert (verdict.passed, verdict.severity) == (False, "warn") and "re-extract" in verdict.message
    # a value that does not validate at all is still an error
    broken = extraction.model_copy(update={"fields": {**extraction.fields, "tax_rate": 250}})
    assert quality.schema_valid(broken).severity == "error"


# --- through the real store ----------------------------------------------------------------------------
def _document(rt, tenant: str) -> str:
    doc_id = f"{tenant}-{uuid.uuid4().hex}"
    with rt.store.tx() as conn:
        conn.execute(
            "INSERT INTO docflow.documents (doc_id, tenant, bucket, key, sha256, filename, status) "
            "VALUES (%s, %s, 'b', %s, %s, %s, 'done')",  # one document per content: the id as its sha256
            (doc_id, tenant, f"{tenant}/{doc_id}.jpg", doc_id, f"{doc_id}.jpg"),
        )
    return doc_id


def test_an_implausible_total_is_kept_but_left_out_of_the_typed_view(rt) -> None:
    tenant = f"p{uuid.uuid4().hex[:6]}"
    photo = _document(rt, tenant)  # a photographed receipt read as an invoice: its registration number
    rt.store.save_extraction(
        photo,
        _extraction(
            {
                "vendor_name": "Kedai Runcit Sdn Bhd",
                "total_amount": Decimal("201901012345"),
                "currency": "MYR",
                "invoice_date": "2018-03-19",
                "line_items": [{"amount": Decimal("5.30")}],
            }
        ),
    )
    honest = _document(rt, tenant)
    rt.store.save_extraction(honest, _extraction({"total_amount": Decimal("31.80"), "currency": "MYR"}))

    stored = rt.store.load_extraction(photo)
    assert stored.fields["total_amount"] == 201901012345.0
    assert plausibility.implausible_fields(stored.validation_errors) == ["total_amount"]

    with rt.store.tx() as conn:
        row = conn.execute(
            "SELECT total_amount, invoice_date, n_line_items FROM docflow.invoices WHERE doc_id = %s",
            (photo,),
        ).fetchone()
    assert row["total_amount"] is None  # left out ...
    assert row["invoice_date"] == date(2018, 3, 19) and row["n_line_items"] == 1  # ... the rest is there

    frame = analytics.invoices(tenant=tenant).set_index("doc_id")
    assert frame.total_amount.isna()[photo] and frame.total_amount[honest] == pytest.approx(31.8)
    assert frame.groupby("currency").total_amount.sum().to_dict() == {"MYR": pytest.approx(31.8)}


def test_the_views_leave_out_implausible_dates_and_revenue_figures(rt) -> None:
    tenant = f"p{uuid.uuid4().hex[:6]}"
    receipt, statement = _document(rt, tenant), _document(rt, tenant)
    for doc_id, schema, raw in [
        (receipt, Receipt, {"date": "1018-03-19", "total": "9.90"}),
        (
            statement,
            FinancialStatement,
            {"revenue": [{"value": 5, "period_end": "2220-12-31"}, {"value": 6}]},
        ),
    ]:
        fields, errors = validate_fields(schema, raw)
        doc_type = "receipt" if schema is Receipt else "financial_statement"
        rt.store.save_extraction(
            doc_id,
            Extraction(
                doc_type=doc_type,
                schema_name=schema.__name__,
                schema_version=schema.schema_version,
                fields=fields,
                validation_errors=errors,
                backend="test",
            ),
        )
    receipts = analytics.receipts(tenant=tenant)
    assert receipts.receipt_date.isna().all() and receipts.total.tolist() == [pytest.approx(9.9)]
    figures = analytics.revenue_figures(tenant=tenant)
    assert figures.value.tolist() == [5.0, 6.0]
    assert figures.period_end.isna().all() and figures.period_end_text.tolist()[0] == "2220-12-31"


def test_the_asset_check_warns_and_the_document_goes_on(rt, instance) -> None:
    path = REPO_ROOT / "data" / "samples" / "receipt-corner-cafe.txt"
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, f"p{uuid.uuid4().hex[:6]}")
    ingest.upload(rt.bucket, rt.store, up)
    instance.add_dynamic_partitions(documents.name, [up.doc_id])
    defs = build_defs(get_settings())

    def run(job: str) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def(job).execute_in_process(
            partition_key=up.doc_id, instance=instance, raise_on_error=False
        )

    assert run("process_documents").success
    extraction = rt.store.load_extraction(up.doc_id)  # as if the extractor had read an identifier as total
    fields, errors = validate_fields(Receipt, {**extraction.fields, "total": Decimal("201901012345")})
    rt.store.save_extraction(
        up.doc_id, extraction.model_copy(update={"fields": fields, "validation_errors": errors})
    )

    result = run("reembed_documents")
    assert result.success
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}["schema_valid"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "implausible" in check.description and "total" in check.description
    assert result.asset_materializations_for_node("embeddings")  # a warning does not block
    assert rt.store.get_document(up.doc_id).status == "done"
