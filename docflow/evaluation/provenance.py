"""Provenance in `docflow eval`'s field report: of the extracted values that match the truth (by the field
metric's rules, docflow.evaluation.compare), the share that carry a box whose source text holds the value
after normalization (docflow.backends.extract.provenance.contains).

A correct value is a leaf: a scalar field, an item of a list field matched to a truth item, a matched
revenue entry's keys that the truth gives, a form's answer whose question matched. Values of documents whose
parser gave no text boxes (office files, e-mail, plain text) cannot carry one: they are counted, and the
share is also given over documents with boxes.
"""

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from docflow.backends.extract.provenance import contains
from docflow.errors import NotFound
from docflow.evaluation.compare import FUZZY, fuzzy_ratio, revenue_matches, value_matches
from docflow.pipeline import Runtime

if TYPE_CHECKING:
    from docflow.evaluation import Item

MAX_MISSES = 200


def correct_values(path: str, truth: Any, predicted: Any) -> list[tuple[str, Any]]:
    """(path, predicted value) of every leaf of `predicted` that matches `truth`."""
    if predicted is None or truth is None:
        return []
    if isinstance(truth, list) and truth and isinstance(truth[0], dict):  # revenue entries
        pred = predicted if isinstance(predicted, list) else []
        out: list[tuple[str, Any]] = []
        free = [i for i, p in enumerate(pred) if isinstance(p, dict)]
        for t in truth:
            j = next((i for i in free if revenue_matches(t, pred[i])), None)
            if j is None:
                continue
            free.remove(j)
            out += [(f"{path}.{j}.{k}", pred[j][k]) for k, v in t.items() if v is not None and k in pred[j]]
        return out
    if isinstance(truth, list):
        pred = predicted if isinstance(predicted, list) else [predicted]
        out, free = [], list(range(len(pred)))
        for t in truth:
            j = max(free, key=lambda i: fuzzy_ratio(t, pred[i]), default=None)
            if j is not None and fuzzy_ratio(t, pred[j]) >= FUZZY:
                free.remove(j)
                out.append((f"{path}.{j}" if isinstance(predicted, list) else path, pred[j]))
        return out
    if isinstance(truth, dict):  # key_values: question -> answer(s)
        pred = predicted if isinstance(predicted, dict) else {}
        out = []
        for key, answer in truth.items():
            match = max(pred, key=lambda k: fuzzy_ratio(key, k), default=None)
            if match is not None and fuzzy_ratio(key, match) >= FUZZY:
                out += correct_values(f"{path}.{match}", answer, pred[match])
        return out
    return [(path, predicted)] if value_matches(truth, predicted) else []


def located_section(rt: Runtime, items: list["Item"]) -> dict[str, Any]:
    """The share of correct values with a box whose text holds them, overall, per type and per folder."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses: list[dict[str, Any]] = []
    for item in items:
        truth_fields = item.truth.get("fields") or {}
        if not truth_fields:
            continue
        try:
            extraction = rt.store.load_extraction(item.doc_id)
            boxed_doc = bool(rt.store.load_parsed(item.doc_id).spans)
        except NotFound:
            continue
        for name, truth in truth_fields.items():
            for path, value in correct_values(name, truth, extraction.fields.get(name)):
                source = extraction.provenance.get(path)
                boxed = source is not None and contains(source.text, value)
                for group in ("all", f"type:{item.doc_type}", f"folder:{item.folder}"):
                    counts[group]["correct"] += 1
                    counts[group]["boxed"] += boxed
                    counts[group]["correct_with_layout"] += boxed_doc
                    counts[group]["boxed_with_layout"] += boxed and boxed_doc
                if not boxed and len(misses) < MAX_MISSES:
                    misses.append(
                        {
                            "path": item.path.name,
                            "field": path,
                            "value": value,
                            "source": source.text[:200] if source else None,
                            "layout": boxed_doc,
                        }
                    )

    def share(c: dict[str, int]) -> dict[str, Any]:
        return {
            "share": round(c["boxed"] / c["correct"], 4) if c["correct"] else None,
            "correct": c["correct"],
            "boxed": c["boxed"],
            "share_with_layout": round(c["boxed_with_layout"] / c["correct_with_layout"], 4)
            if c["correct_with_layout"]
            else None,
            "correct_with_layout": c["correct_with_layout"],
        }

    return {
        **share(counts["all"]),
        "per_type": {k[5:]: share(c) for k, c in sorted(counts.items()) if k.startswith("type:")},
        "per_folder": {k[7:]: share(c) for k, c in sorted(counts.items()) if k.startswith("folder:")},
        "misses": misses,
    }
