"""The comparison rules of the evaluation set (../shared/eval/README.md), one case per rule and edge."""

from datetime import date, datetime

import pytest

from docflow.evaluation.compare import (
    as_iso_date,
    as_number,
    entries_score,
    field_score,
    fuzzy_ratio,
    list_score,
    value_matches,
)


@pytest.mark.parametrize(
    ("truth", "predicted", "expected"),
    [
        # numbers: equal within 0.01
        (4904.94, 4904.94, True),
        (4904.94, 4904.95, True),
        (4904.94, 4904.96, False),
        (100, "100.00", True),
        (1234.5, "1,234.50", True),
        (19.0, 19, True),
        (10.0, "ten", False),
        (10.0, True, False),
        (10.0, "NaN", False),
        (0.0, None, False),
        # dates: equal when their ISO forms are equal
        ("2023-11-13", "2023-11-13", True),
        ("2023-11-13", date(2023, 11, 13), True),
        ("2023-11-13", datetime(2023, 11, 13, 9, 30), True),
        ("2023-11-13", "2023-11-13T00:00:00", True),
        ("2023-11-13", "2023-11-14", False),
        ("2023-11-13", "13/11/2023", False),
        ("2023-11-13", "2023-13-11", False),
        # strings: case- and whitespace-insensitive, fuzzy ratio >= 0.85
        ("Netlify, Inc.", "NETLIFY, INC.", True),
        ("Netlify, Inc.", "  Netlify,\n Inc. ", True),
        ("ACME Widgets Ltd", "ACMEWidgets Ltd", True),
        ("Amazon Web Services, Inc.", "Amazon Web Services Inc", True),
        ("Amazon Web Services, Inc.", "Amazon", False),
        ("USD", "EUR", False),
        ("INV-0042", None, False),
        # a date field holding upstream text verbatim is compared as a string
        ("the date of the Closing", "The date of the closing", True),
    ],
)
def test_value_matches(truth, predicted, expected: bool) -> None:
    assert value_matches(truth, predicted) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,234.50", 1234.5),
        (" 7 ", 7),
        ("1e3", 1000),
        ("abc", None),
        (None, None),
        (False, None),
        ("inf", None),
    ],
)
def test_as_number(value, expected) -> None:
    number = as_number(value)
    assert (number is None) if expected is None else float(number) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-02-29", "2024-02-29"),
        ("2023-02-29", None),
        ("2024-01-05T10:00:00Z", "2024-01-05"),
        ("Jan 5", None),
    ],
)
def test_as_iso_date(value, expected) -> None:
    assert as_iso_date(value) == expected


def test_fuzzy_ratio_is_symmetric_and_bounded() -> None:
    assert fuzzy_ratio("abc", "ABC") == 1.0
    assert 0.0 <= fuzzy_ratio("abc", "xyz") < 0.5
    assert fuzzy_ratio("vendor a", "vendor b") == fuzzy_ratio("vendor b", "vendor a")


@pytest.mark.parametrize(
    ("truth", "predicted", "expected"),
    [
        (["Alpha Inc.", "Beta LLC"], ["beta llc", "ALPHA INC"], 1.0),
        (["Alpha Inc.", "Beta LLC"], ["Alpha Inc."], pytest.approx(2 / 3)),  # precision 1, recall 1/2
        (["Alpha Inc."], ["Alpha Inc.", "Gamma", "Delta"], pytest.approx(0.5)),  # precision 1/3, recall 1
        (["Alpha Inc."], ["Alpha Inc.", "alpha  inc."], 1.0),  # a set: duplicates count once
        (["Alpha Inc.", "ALPHA  inc."], ["Alpha Inc."], 1.0),
        (["Alpha Inc.", "Beta LLC"], ["Alpha Inc. and Beta LLC"], 0.0),  # one item cannot match two
        (["Alpha Inc."], None, 0.0),
        (["Alpha Inc."], "Alpha Inc.", 1.0),  # a scalar prediction is a one-item set
        ([], [], 1.0),
        ([], ["x"], 0.0),
    ],
)
def test_list_score(truth, predicted, expected) -> None:
    assert list_score(truth, predicted) == expected


REVENUE = [
    {"value": 4631.0, "unit": "millions", "currency": "EUR", "period_end": "2023-12-31"},
    {"value": 4370.0, "unit": "millions", "currency": "EUR", "period_end": "2022-12-31"},
]


@pytest.mark.parametrize(
    ("predicted", "expected"),
    [
        (REVENUE, 1.0),
        ([dict(r, unit="Millions", currency="eur") for r in REVENUE], 1.0),  # strings case-insensitive
        ([REVENUE[0]], pytest.approx(2 / 3)),
        ([REVENUE[0], REVENUE[0]], pytest.approx(0.5)),  # one-to-one: a duplicate cannot match twice
        ([dict(REVENUE[0], value=4631.02), REVENUE[1]], pytest.approx(0.5)),  # value off by more than 0.01
        ([dict(REVENUE[0], period_end="2023-12-30"), REVENUE[1]], pytest.approx(0.5)),
        ([{"value": 4631.0}, {"value": 4370.0}], 0.0),  # missing unit/currency/period_end
        ("4631", 0.0),
        (None, 0.0),
    ],
)
def test_revenue_entries_match_as_objects(predicted, expected) -> None:
    assert field_score(REVENUE, predicted) == expected


def test_null_keys_in_a_truth_entry_are_not_compared() -> None:
    truth = [{"value": 12.5, "unit": None, "currency": None, "period_end": "2021-06-30"}]
    assert entries_score(truth, [{"value": 12.5, "unit": "thousands", "period_end": "2021-06-30"}]) == 1.0


@pytest.mark.parametrize(
    ("truth", "predicted", "expected"),
    [
        ({"Name": "Jane", "Date": "2020-01-02"}, {"name:": "jane", "date": "2020-01-02"}, 1.0),
        ({"Name": "Jane", "Date": "2020-01-02"}, {"Name": "Jane"}, 0.5),
        ({"Colours": ["red", "blue"]}, {"Colours": ["blue", "red"]}, 1.0),
        ({"Name": "Jane"}, "Jane", 0.0),
    ],
)
def test_key_values_are_matched_by_fuzzy_key(truth, predicted, expected) -> None:
    assert field_score(truth, predicted) == expected


@pytest.mark.parametrize(
    ("truth", "predicted", "expected"),
    [(4904.94, 4904.94, 1.0), (4904.94, None, 0.0), ("Acme", "ACME", 1.0), ("2023-01-01", "2023-01-02", 0.0)],
)
def test_scalar_fields_score_zero_or_one(truth, predicted, expected: float) -> None:
    assert field_score(truth, predicted) == expected


def test_text_similarity_reads_markdown_escapes_as_the_characters_they_stand_for() -> None:
    from docflow.evaluation.parse import normalise_words, text_similarity

    assert normalise_words(r"Name: \_\_\_\_ (snake\_case)") == ["name", "____", "snake_case"]
    assert text_similarity(r"Sign here \_\_\_\_\_", "Sign here _____") == 1.0
    assert text_similarity("Sign here _____", "Sign here") < 1.0
