from datetime import date
from decimal import Decimal

import pytest

from docflow.backends.extract.normalize import parse_amount, parse_currency, parse_date, parse_percent
from docflow.schemas import (
    SCHEMAS,
    Contract,
    Invoice,
    KeyValues,
    Receipt,
    get_schema,
    schema_fingerprint,
    validate_fields,
)

# --- normalisers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("$ 1 234.56", "1234.56"),
        ("(12.00)", "-12.00"),
        ("12,-", "12"),
        ("€ -9,32", "-9.32"),
        ("12.00-", "-12.00"),
        ("0,75 €", "0.75"),
        ("3.441.812", "3441812"),
        ("1,234", "1234"),
        ("4.7566", "4.7566"),
        ("1'234.50 CHF", "1234.50"),
        ("EUR 99", "99"),
    ],
)
def test_parse_amount(text: str, expected: str) -> None:
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3,4,5", "--"])
def test_parse_amount_rejects_non_numbers(text: str) -> None:
    assert parse_amount(text) is None


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("2021-03-04", True, date(2021, 3, 4)),
        ("2023-11-13T19:33:42Z", True, date(2023, 11, 13)),
        ("03/04/2021", True, date(2021, 4, 3)),
        ("03/04/2021", False, date(2021, 3, 4)),
        ("03/20/2023", True, date(2023, 3, 20)),  # impossible day-first: falls back
        ("04.03.2021", False, date(2021, 3, 4)),  # dotted dates are always day-first
        ("4 March 2021", True, date(2021, 3, 4)),
        ("March 4, 2021", True, date(2021, 3, 4)),
        ("Invoice Date: August 3 , 2014", True, date(2014, 8, 3)),
        ("du 02 Juillet 2015", True, date(2015, 7, 2)),
        ("Factuurdatum: 19 april 2014", True, date(2014, 4, 19)),
        ("is executed this 23rd day of December, 2003, by", True, date(2003, 12, 23)),
        ("13 Sep, 2022 06:04", True, date(2022, 9, 13)),
        ("2021年3月4日", True, date(2021, 3, 4)),
    ],
)
def test_parse_date(text: str, day_first: bool, expected: date) -> None:
    assert parse_date(text, day_first=day_first) == expected


@pytest.mark.parametrize("text", ["no date here", "31/31/2020", "Invoice 2022089083", "Page 1/1"])
def test_parse_date_none(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("€", "EUR"),
        ("EUR", "EUR"),
        ("Total in EUR €83.20", "EUR"),
        ("$ 12.00", "USD"),
        ("US$ 5", "USD"),
        ("CA$ 5", "CAD"),
        ("£10", "GBP"),
        ("316,83 zł", "PLN"),
        ("PLN", "PLN"),
        ("CHF 100", "CHF"),
        ("Rs 1939", "INR"),
        ("Summe brutto (in EURO) 202,80", "EUR"),
        ("VAT USA", None),
        ("nothing", None),
    ],
)
def test_parse_currency(text: str, expected: str | None) -> None:
    assert parse_currency(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("VAT (19%)", "19"), ("zzgl. 19,0% MwSt.", "19.0"), ("no", None)]
)
def test_parse_percent(text: str, expected: str | None) -> None:
    assert parse_percent(text) == (Decimal(expected) if expected else None)


# --- schemas and registry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_type", "schema"),
    [
        ("invoice", Invoice),
        ("receipt", Receipt),
        ("contract", Contract),
        ("form", KeyValues),
        ("letter", KeyValues),
    ],
)
def test_get_schema(doc_type: str, schema: type) -> None:
    assert get_schema(doc_type) is schema


def test_every_schema_is_versioned_and_all_fields_optional() -> None:
    for schema in SCHEMAS.values():
        assert isinstance(schema.schema_version, str) and schema.schema_version
        assert schema() is not None  # no required field
        assert "schema_version" not in schema.model_fields


def test_fingerprint_is_stable_and_tracks_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    first = schema_fingerprint()
    assert first == schema_fingerprint()
    monkeypatch.setattr(Invoice, "schema_version", "999")
    assert schema_fingerprint() != first


def test_validate_fields_dumps_json_types() -> None:
    fields, errors = validate_fields(
        Invoice,
        {
            "invoice_date": date(2021, 3, 4),
            "total_amount": Decimal("12.50"),
            "currency": "eur",
            "vendor_name": None,
        },
    )
    assert errors == []
    assert fields == {"invoice_date": "2021-03-04", "total_amount": 12.5, "currency": "EUR"}


def test_validate_fields_drops_invalid_values_and_reports_them() -> None:
    fields, errors = validate_fields(
        Invoice, {"currency": "Euros", "tax_rate": Decimal(250), "invoice_number": "A-1", "due_date": "soon"}
    )
    assert fields == {"invoice_number": "A-1"}
    assert {e.split(":")[0] for e in errors} == {"currency", "tax_rate", "due_date"}


def test_contract_dates_accept_dates_or_clauses() -> None:
    fields, errors = validate_fields(
        Contract, {"agreement_date": "2015-06-11", "effective_date": "the date of the Closing"}
    )
    assert errors == []
    assert fields == {"agreement_date": "2015-06-11", "effective_date": "the date of the Closing"}
    assert Contract.model_validate(fields).agreement_date == date(2015, 6, 11)
