"""Pydantic models of the fields extracted per document type.

Every field is optional: an extractor may miss any of them. Types are real (dates, Decimals); dumped with
`model_dump(mode="json")` dates become ISO strings and Decimals become JSON numbers (floats), which is the
form stored in `Extraction.fields`. Bump a model's `schema_version` whenever its fields change.
"""

import datetime as dt
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer


def _currency_code(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise ValueError(f"not an ISO 4217 currency code: {value!r}")
    return code


Amount = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
Percent = Annotated[Decimal, Field(ge=0, le=100), PlainSerializer(float, return_type=float, when_used="json")]
Currency = Annotated[str, AfterValidator(_currency_code)]
# A date where the document may instead hold a clause ("the date of the Closing"): a date if it parses.
DateOrText = Annotated[dt.date | str, Field(union_mode="left_to_right")]


class DocSchema(BaseModel):
    """Base of every per-type schema."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    schema_version: ClassVar[str] = "1"


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str | None = None
    quantity: Amount | None = None
    unit_price: Amount | None = None
    amount: Amount | None = None


class Invoice(DocSchema):
    schema_version: ClassVar[str] = "1"

    invoice_number: str | None = None
    vendor_name: str | None = Field(None, description="The issuer of the invoice.")
    invoice_date: dt.date | None = None
    due_date: dt.date | None = None
    total_amount: Amount | None = Field(None, description="Gross total, taxes included.")
    currency: Currency | None = None
    tax_amount: Amount | None = None
    tax_rate: Percent | None = Field(None, description="VAT/sales-tax rate in percent, e.g. 19.0.")
    line_items: list[LineItem] | None = None


class Receipt(DocSchema):
    schema_version: ClassVar[str] = "1"

    store_name: str | None = None
    date: dt.date | None = None
    total: Amount | None = None
    currency: Currency | None = None
    address: str | None = None
    payment_method: str | None = None
    items: list[LineItem] | None = None


class Contract(DocSchema):
    schema_version: ClassVar[str] = "1"

    title: str | None = None
    parties: list[str] | None = Field(None, description="Party names and their defined-term aliases.")
    agreement_date: DateOrText | None = None
    effective_date: DateOrText | None = None
    expiration_date: str | None = Field(None, description="A date or the clause that defines the term.")
    governing_law: str | None = Field(None, description="The governing-law clause.")


class Experience(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = None
    organization: str | None = None
    start: str | None = None
    end: str | None = None


class Education(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    degree: str | None = None
    institution: str | None = None
    year: str | None = None


class Resume(DocSchema):
    schema_version: ClassVar[str] = "1"

    name: str | None = None
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
    phone: str | None = None
    skills: list[str] | None = None
    experience: list[Experience] | None = None
    education: list[Education] | None = None


class RevenueItem(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    value: Amount
    unit: str | None = Field(None, description="units, thousands, millions or billions")
    currency: Currency | None = None
    period_end: DateOrText | None = None


class FinancialStatement(DocSchema):
    schema_version: ClassVar[str] = "1"

    institution: str | None = None
    period_end: dt.date | None = None
    currency: Currency | None = None
    unit: str | None = None
    revenue: list[RevenueItem] | None = None


class KeyValues(DocSchema):
    """Generic schema for forms and any other type: label -> value(s)."""

    schema_version: ClassVar[str] = "1"

    key_values: dict[str, str | list[str]] | None = None
