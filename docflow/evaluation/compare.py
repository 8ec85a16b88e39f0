"""Comparison rules of the evaluation set (../shared/eval/README.md), as pure functions.

- numbers are equal within 0.01; dates when their ISO forms are equal;
- strings case- and whitespace-insensitively (equal once case and whitespace are ignored), else matching
  when the fuzzy ratio of the whitespace-collapsed, case-folded forms is >= 0.85;
- lists as sets of fuzzy-matched strings: duplicates (after normalisation) count once, each truth item is
  matched to at most one predicted item, and the field scores F1 (1.0 = the same set, partial otherwise);
- revenue entries as objects: value as a number, period_end as a date, unit and currency as strings; a
  truth key that is null is not compared; entries are matched one-to-one and the field scores F1 too;
- fields absent from the truth (or null there) are not scored (see metrics.fields).
"""

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher
from typing import Any

FUZZY = 0.85
TOLERANCE = 0.01


def norm_text(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value)).strip().casefold()


def fuzzy_ratio(a: Any, b: Any) -> float:
    x, y = norm_text(a), norm_text(b)
    if x.replace(" ", "") == y.replace(" ", ""):  # whitespace-insensitive: "ACME  Inc" == "acme inc"
        return 1.0
    return SequenceMatcher(None, x, y, autojunk=False).ratio()


def as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def as_iso_date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?", value.strip())
        if match:
            try:
                return date.fromisoformat(match.group(1)).isoformat()
            except ValueError:
                return None
    return None


def value_matches(truth: Any, predicted: Any) -> bool:
    """One scalar value: a number, a date or a string."""
    if predicted is None:
        return False
    t_num, p_num = as_number(truth), as_number(predicted)
    if isinstance(truth, int | float) and not isinstance(truth, bool):
        return p_num is not None and t_num is not None and abs(t_num - p_num) <= Decimal(str(TOLERANCE))
    t_date = as_iso_date(truth)
    if t_date is not None:
        return as_iso_date(predicted) == t_date
    return fuzzy_ratio(truth, predicted) >= FUZZY


def _unique(values: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(norm_text(value), value)
    return list(seen.values())


def _f1(hits: int, n_truth: int, n_pred: int) -> float:
    if hits == 0:
        return 0.0
    precision, recall = hits / n_pred, hits / n_truth
    return 2 * precision * recall / (precision + recall)


def list_score(truth: list[Any], predicted: Any) -> float:
    """Sets of fuzzy-matched strings, scored as F1 (1.0 = the same set)."""
    pred = predicted if isinstance(predicted, list) else [] if predicted is None else [predicted]
    truth, pred = _unique(truth), _unique(pred)
    if not truth and not pred:
        return 1.0
    if not truth or not pred:
        return 0.0
    unmatched = list(pred)
    hits = 0
    for t in truth:
        best = max(unmatched, key=lambda p: fuzzy_ratio(t, p), default=None)
        if best is not None and fuzzy_ratio(t, best) >= FUZZY:
            hits += 1
            unmatched.remove(best)
    return _f1(hits, len(truth), len(pred))


def revenue_matches(truth: dict[str, Any], predicted: dict[str, Any]) -> bool:
    """One revenue entry: value a number, period_end a date, other keys strings; null truth keys skipped."""
    for key, t in truth.items():
        if t is None:
            continue
        if key == "value":
            number = as_number(t)
            if number is None or not value_matches(float(number), predicted.get(key)):
                return False
        elif not value_matches(t, predicted.get(key)):
            return False
    return True


def entries_score(truth: list[dict[str, Any]], predicted: Any) -> float:
    """Lists of objects (revenue entries) matched one-to-one, scored as F1."""
    pred = [p for p in predicted if isinstance(p, dict)] if isinstance(predicted, list) else []
    if not pred:
        return 0.0
    unmatched = list(pred)
    hits = 0
    for t in truth:
        match = next((p for p in unmatched if revenue_matches(t, p)), None)
        if match is not None:
            hits += 1
            unmatched.remove(match)
    return _f1(hits, len(truth), len(pred))


def field_score(truth: Any, predicted: Any) -> float:
    """Score in [0, 1] of one field; scalars are 0 or 1, lists and revenue entries partial."""
    if isinstance(truth, list) and truth and isinstance(truth[0], dict):
        return entries_score(truth, predicted)
    if isinstance(truth, list):
        return list_score(truth, predicted)
    if isinstance(truth, dict):  # key_values: question -> answer(s)
        pred = predicted if isinstance(predicted, dict) else {}
        if not truth:
            return 1.0
        scores = []
        for key, answer in truth.items():
            match = max(pred, key=lambda k: fuzzy_ratio(key, k), default=None)
            ok = match is not None and fuzzy_ratio(key, match) >= FUZZY
            scores.append(field_score(answer, pred[match]) if ok else 0.0)
        return sum(scores) / len(scores)
    return 1.0 if value_matches(truth, predicted) else 0.0
