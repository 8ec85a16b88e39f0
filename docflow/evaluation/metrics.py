"""Report sections of `docflow eval`. Each takes the runtime and the manifest items and returns a dict."""

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from docflow.errors import NotFound
from docflow.evaluation.compare import field_score
from docflow.evaluation.parse import parse_section
from docflow.evaluation.retrieval import retrieval_section
from docflow.pipeline import Runtime

if TYPE_CHECKING:
    from docflow.evaluation import Item


def _ratio(correct: float, n: int) -> float | None:
    return round(correct / n, 4) if n else None


def classification(rt: Runtime, items: list["Item"]) -> dict[str, Any]:
    per_type: dict[str, Counter] = defaultdict(Counter)
    confusion: dict[str, Counter] = defaultdict(Counter)
    for item in items:
        if not item.doc_type:
            continue
        try:
            predicted = rt.store.load_classification(item.doc_id).doc_type
        except NotFound:
            predicted = "(failed)"
        per_type[item.doc_type]["n"] += 1
        per_type[item.doc_type]["correct"] += predicted == item.doc_type
        confusion[item.doc_type][predicted] += 1
    n = sum(c["n"] for c in per_type.values())
    correct = sum(c["correct"] for c in per_type.values())
    return {
        "accuracy": _ratio(correct, n),
        "n": n,
        "per_type": {
            t: {"accuracy": _ratio(c["correct"], c["n"]), "n": c["n"]} for t, c in sorted(per_type.items())
        },
        "confusion": {t: dict(c) for t, c in sorted(confusion.items())},
    }


def fields(rt: Runtime, items: list["Item"]) -> dict[str, Any]:
    """Every truth field of every document, keyed `<doc_type>.<field>`; a failed document scores 0."""
    scores: dict[str, list[float]] = defaultdict(list)
    misses: list[dict[str, Any]] = []
    for item in items:
        truth_fields = item.truth.get("fields") or {}
        if not truth_fields:
            continue
        try:
            predicted = rt.store.load_extraction(item.doc_id).fields
        except NotFound:
            predicted = {}
        for name, truth in truth_fields.items():
            if truth is None:  # no upstream truth for this field: not scored
                continue
            score = field_score(truth, predicted.get(name))
            scores[f"{item.doc_type}.{name}"].append(score)
            if score < 1.0:
                misses.append(
                    {"path": item.path.name, "field": name, "truth": truth, "predicted": predicted.get(name)}
                )
    all_scores = [s for values in scores.values() for s in values]
    return {
        "accuracy": _ratio(sum(all_scores), len(all_scores)),
        "n": len(all_scores),
        "per_field": {
            key: {"accuracy": _ratio(sum(v), len(v)), "n": len(v)} for key, v in sorted(scores.items())
        },
        "misses": misses,
    }


SECTIONS: dict[str, Callable[[Runtime, list["Item"]], dict[str, Any]]] = {
    "classification": classification,
    "fields": fields,
    "retrieval": retrieval_section,
    "parse": parse_section,
}
