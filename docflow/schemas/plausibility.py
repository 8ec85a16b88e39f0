"""Plausibility: values that validate against their schema but that no document would hold.

A photographed receipt's registration number read as its total is a valid Decimal; summed by an analyst it
is a fortune. The rules here look at a validated model as a whole (an amount against the document's other
amounts, a date against the calendar) and name the values that cannot be right. Such a value is kept in
the extraction (a person can still see what was read) with a validation error of the form

    "<field path>: implausible: <why> (got <value>)"

The stable `implausible` marker after the path is what the typed SQL views (migration 0007) and the asset
check read to leave the value out of typed columns and to warn. `validate_fields` applies these rules, so
every extract backend gets them. Rules are general: none is written for one document, issuer or type.
"""

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

MARK = "implausible"
# An amount with more integer digits than this is an identifier (registration, account, phone or order
# number), not money: ten digits already reach billions.
MAX_INTEGER_DIGITS = 10
# A total more than this many times the largest other amount on the document (its tax, its line items and
# their sum, the gross its tax and rate imply) was read from something else. Generous, as line items are
# often found only in part.
FAR_LARGER = 1000
EARLIEST = dt.date(1900, 1, 1)
FUTURE_YEARS = 5  # documents are dated at most this far ahead (due dates, effective dates)
LOW_CONFIDENCE = 0.2  # the confidence left to an implausible value

_MESSAGE = re.compile(rf"^(?P<path>[A-Za-z_][\w.]*): {MARK}: ")


@dataclass(frozen=True)
class MoneyFields:
    """Where a schema keeps a document's money: its total, tax, tax rate and line items."""

    total: str
    items: str | None = None
    tax: str | None = None
    rate: str | None = None


def money_fields(schema: type[BaseModel]) -> MoneyFields | None:
    """The money of a schema generated from a file (docflow.schemas.types), found by the fields' kinds and
    names: the amount whose name says total, the amount and the percent whose names say tax, the list of
    objects that have an amount. None for a schema without a total."""
    kinds: dict[str, str] = getattr(schema, "field_kinds", {})
    amounts = [n for n, k in kinds.items() if k == "amount"]
    total = next((n for n in amounts if "total" in n), None)
    if total is None:
        return None
    items: dict[str, tuple[str, ...]] = getattr(schema, "item_fields", {})
    return MoneyFields(
        total=total,
        items=next((n for n, names in items.items() if "amount" in names), None),
        tax=next((n for n in amounts if "tax" in n), None),
        rate=next((n for n, k in kinds.items() if k == "percent" and "tax" in n), None),
    )


# (earlier, later) field names: a document cannot be due before it was issued
DATE_ORDER: tuple[tuple[str, str], ...] = (("invoice_date", "due_date"),)
_ITEM_AMOUNTS = ("quantity", "unit_price", "amount")


def check(model: BaseModel, today: dt.date | None = None) -> dict[str, str]:
    """The implausible values of a validated `model`: field path (as pydantic writes it) -> why."""
    today = today or dt.date.today()
    found: dict[str, str] = {}
    for path, value in _dates(model):
        reason = date_problem(value, today)
        if reason:
            found[path] = reason
    names = type(model).model_fields
    for earlier, later in (pair for pair in DATE_ORDER if pair[0] in names and pair[1] in names):
        first, second = getattr(model, earlier), getattr(model, later)
        if _is_date(first) and _is_date(second) and second < first and later not in found:
            found[later] = f"before {earlier} {first.isoformat()}"
    money = money_fields(type(model))
    if money is not None:
        found.update(_money(model, money))
    return found


def messages(model: BaseModel, today: dt.date | None = None) -> list[str]:
    """`check` as validation error messages (see the module docstring for their form)."""
    problems = check(model, today)
    return [f"{path}: {MARK}: {why} (got {_value(model, path)})" for path, why in problems.items()]


def is_implausible(message: str) -> bool:
    return _MESSAGE.match(message) is not None


def flagged_path(message: str) -> str | None:
    """The field path a message marked implausible names; None for any other message."""
    match = _MESSAGE.match(message)
    return match["path"] if match else None


def implausible_fields(errors: list[str]) -> list[str]:
    """The top-level fields that `errors` (an extraction's validation errors) flag as implausible."""
    paths = (flagged_path(m) for m in errors)
    return list(dict.fromkeys(p.split(".")[0] for p in paths if p))


def lower_confidence(confidence: dict[str, float], errors: list[str]) -> dict[str, float]:
    """`confidence` with every field flagged implausible by `errors` capped at LOW_CONFIDENCE."""
    flagged = set(implausible_fields(errors))
    return {k: min(v, LOW_CONFIDENCE) if k in flagged else v for k, v in confidence.items()}


# --- the rules --------------------------------------------------------------------------------------------
def integer_digits(value: Decimal) -> int:
    return len(str(int(abs(value))))


def amount_problem(value: Decimal) -> str | None:
    """An amount that is an identifier: too many integer digits for money."""
    digits = integer_digits(value)
    if digits > MAX_INTEGER_DIGITS:
        return f"{digits} integer digits: an identifier, not an amount"
    return None


def date_problem(value: dt.date, today: dt.date) -> str | None:
    if value < EARLIEST:
        return f"before {EARLIEST.year}"
    if value > _years_after(today, FUTURE_YEARS):
        return f"more than {FUTURE_YEARS} years after today"
    return None


def _money(model: BaseModel, money: MoneyFields) -> dict[str, str]:
    flagged: dict[str, str] = {}
    total: Decimal | None = getattr(model, money.total)
    tax: Decimal | None = getattr(model, money.tax) if money.tax else None
    rate: Decimal | None = getattr(model, money.rate) if money.rate else None
    if money.tax and tax is not None and (reason := amount_problem(tax)):
        flagged[money.tax], tax = reason, None
    if total is not None and (reason := amount_problem(total)):
        flagged[money.total], total = reason, None
    items: list[Decimal] = []
    for i, item in enumerate((getattr(model, money.items) if money.items else None) or []):
        for name in _ITEM_AMOUNTS:
            value = getattr(item, name, None)
            if value is not None and (reason := amount_problem(value)):
                flagged[f"{money.items}.{i}.{name}"] = reason
        amount = _item_amount(item, flagged, f"{money.items}.{i}")
        if amount is not None and amount > 0:
            items.append(amount)
    if total is None or total <= 0:  # no total, or a credit note's: nothing to weigh the others against
        return flagged
    if money.tax and tax is not None and tax > total:
        flagged[money.tax], tax = f"larger than the total {total}", None
    others = [*items, sum(items, Decimal(0))]
    if tax is not None and tax > 0:
        others.append(tax)
        if rate is not None and rate > 0:
            others.append(tax * (100 + rate) / rate)  # the gross the tax and its rate imply
    largest = max(others)
    if largest > 0 and total > FAR_LARGER * largest:
        flagged[money.total] = (
            f"more than {FAR_LARGER} times every other amount on the document (largest {largest:.2f})"
        )
    return flagged


def _item_amount(item: BaseModel, flagged: dict[str, str], prefix: str) -> Decimal | None:
    """A line item's amount, or its quantity times its unit price; None if either is implausible."""
    amount, quantity, price = (getattr(item, n, None) for n in ("amount", "quantity", "unit_price"))
    if amount is not None:
        return None if f"{prefix}.amount" in flagged else amount
    if quantity is not None and price is not None:
        if f"{prefix}.quantity" in flagged or f"{prefix}.unit_price" in flagged:
            return None
        return quantity * price
    return None


def _dates(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, dt.date]]:
    """Every date in `model`, nested models and lists included, with its path."""
    for name in type(model).model_fields:
        yield from _dates_in(getattr(model, name), f"{prefix}{name}")


def _dates_in(value: Any, path: str) -> Iterator[tuple[str, dt.date]]:
    if _is_date(value):
        yield path, value
    elif isinstance(value, BaseModel):
        yield from _dates(value, f"{path}.")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _dates_in(item, f"{path}.{i}")


def _is_date(value: Any) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _value(model: Any, path: str) -> str:
    for part in path.split("."):
        model = model[int(part)] if isinstance(model, list) else getattr(model, part)
    text = model.isoformat() if _is_date(model) else str(model)
    return text if len(text) <= 40 else text[:37] + "..."
