"""The learned classifier, trained and scored on folds of a manifest (`docflow train-classifier`,
`docflow eval --folds K`).

Folds are stratified by true type: the documents, by type and then path, are dealt to the K folds in turn,
so every fold holds its share of every type and the split never depends on what the model does. Each fold is
scored by a model trained on the other K-1 (its standardisation included), so the held-out
accuracy is that of documents the model has not seen. The model written to disk is then trained on all.

Reading a document's text (the classifier's own way: the first pages, OCR of page 1 for a scan) is the slow
part; it is cached under `<home>/cache/classify-text`, keyed by the content hash and by the source of the
parse backend that reads it, so a change to parsing or OCR reads again.
"""

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docflow.backends.classify.learned import blend, decide, train
from docflow.evaluation import worker_pool
from docflow.settings import Settings

if TYPE_CHECKING:
    from docflow.evaluation import Item


@cache
def _reader_version() -> str:
    """A hash of the parse backend's source: the text a document gives changes only with it."""
    digest = hashlib.sha256()
    folder = resources.files("docflow.backends.parse")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            digest.update(entry.read_bytes())
    return digest.hexdigest()[:12]


_READER: Any = None  # the rules classifier of a worker process, which reads as the classifier does


def _init_reader(rules_path: str) -> None:
    global _READER
    from docflow.backends.classify.local import RuleClassifier, load_rules

    _READER = RuleClassifier(load_rules(Path(rules_path)))


def _read_one(path: str) -> dict[str, Any]:
    from docflow.models import RawFile
    from docflow.sniff import sniff_content_type

    data = Path(path).read_bytes()
    name = Path(path).name
    content_type = sniff_content_type(data, name)
    raw = RawFile(doc_id="-", sha256="", size=len(data), content_type=content_type, filename=name)
    text, ocr, _ = _READER.read_text(data, raw)
    return {"text": text, "ocr": ocr, "content_type": content_type}


def read_texts(
    items: list["Item"],
    settings: Settings,
    workers: int | None = None,
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """What the classifier reads of each item (cached), read by `workers` processes."""
    from docflow.settings import data_dir

    cache_dir = settings.home / "cache" / "classify-text"
    cache_dir.mkdir(parents=True, exist_ok=True)
    rules = str(settings.rules_path or data_dir() / "doc_types.yaml")
    keys = [f"{hashlib.sha256(i.path.read_bytes()).hexdigest()}-{_reader_version()}" for i in items]
    found = {k: json.loads(p.read_text()) for k in keys if (p := cache_dir / f"{k}.json").exists()}
    todo = {k: i for k, i in zip(keys, items, strict=True) if k not in found}
    if todo:
        progress(f"reading {len(todo)} documents as the classifier does ({len(found)} cached)")
        with worker_pool(workers, len(todo), _init_reader, (rules,)) as pool:
            results = pool.map(_read_one, [str(i.path) for i in todo.values()])
            for key, result in zip(todo, results, strict=True):
                (cache_dir / f"{key}.json").write_text(json.dumps(result))
                found[key] = result
    return [found[k] for k in keys]


def featurized(
    items: list["Item"], settings: Settings, progress: Callable[[str], None] = print
) -> list[tuple[dict[str, float], dict[str, float]]]:
    """(the learned features, the rules' confidences) of each item, by the configured local classifier."""
    from docflow.backends.classify.local import LocalClassifier

    texts = read_texts(items, settings, progress=progress)
    clf = LocalClassifier.from_settings(settings.model_copy(update={"classify_learned": False}))
    progress(f"featurizing {len(items)} documents")
    return [
        clf.features(t["text"], i.path.name, t["content_type"], t["ocr"])
        for i, t in zip(items, texts, strict=True)
    ]


def assign_folds(items: list["Item"], k: int) -> list[int]:
    """Stratified by type: the documents, by type and then path, dealt to the folds in turn."""
    if k < 2:
        raise ValueError("folds need K >= 2")
    order = sorted(range(len(items)), key=lambda i: (items[i].doc_type, str(items[i].path)))
    folds = [0] * len(items)
    for n, index in enumerate(order):
        folds[index] = n % k
    return folds


def cross_validate(
    items: list["Item"],
    samples: list[tuple[dict[str, float], dict[str, float]]],
    k: int,
    threshold: float,
    weight: float = 1.0,
    c: float = 0.5,
) -> dict[str, Any]:
    """Accuracy of models trained on K-1 folds on the fold they did not see, decided as the classifier does
    (`weight` of the model beside the rules' confidences): overall, per type and per folder."""
    labelled = [n for n, item in enumerate(items) if item.doc_type]
    subset = [items[n] for n in labelled]
    folds = assign_folds(subset, k)
    predicted: dict[int, str] = {}
    for fold in range(k):
        train_idx = [labelled[n] for n, f in enumerate(folds) if f != fold]
        test_idx = [labelled[n] for n, f in enumerate(folds) if f == fold]
        if not test_idx:
            continue
        model = train([samples[n][0] for n in train_idx], [items[n].doc_type for n in train_idx], c=c)
        for n in test_idx:
            feats, rules = samples[n]
            predicted[n] = decide(blend(model.probabilities(feats), rules, weight), threshold)
    per_type: dict[str, Counter] = defaultdict(Counter)
    per_folder: dict[str, Counter] = defaultdict(Counter)
    confusion: dict[str, Counter] = defaultdict(Counter)
    misses = []
    for n, guess in predicted.items():
        item = items[n]
        right = guess == item.doc_type
        for group in (per_type[item.doc_type], per_folder[item.folder]):
            group["n"] += 1
            group["correct"] += right
        confusion[item.doc_type][guess] += 1
        if not right:
            misses.append({"path": item.path.name, "truth": item.doc_type, "predicted": guess})
    correct = sum(c["correct"] for c in per_type.values())

    def ratio(c: Counter) -> dict[str, Any]:
        return {"accuracy": round(c["correct"] / c["n"], 4), "n": c["n"]}

    return {
        "folds": k,
        "accuracy": round(correct / len(predicted), 4) if predicted else None,
        "n": len(predicted),
        "per_type": {t: ratio(c) for t, c in sorted(per_type.items())},
        "per_folder": {f: ratio(c) for f, c in sorted(per_folder.items())},
        "confusion": {t: dict(c) for t, c in sorted(confusion.items())},
        "misses": misses,
    }


def classification_folds(
    items: list["Item"], k: int, settings: Settings, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    samples = featurized(items, settings, progress)
    return cross_validate(items, samples, k, settings.classify_threshold, settings.classify_model_weight)


def train_classifier(
    items: list["Item"],
    out: Path,
    settings: Settings,
    k: int = 5,
    c: float = 0.5,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score the model on K held-out folds, then train it on every labelled item and write it to `out`."""
    labelled = [i for i in items if i.doc_type]
    samples = featurized(labelled, settings, progress)
    weight = settings.classify_model_weight
    report = cross_validate(labelled, samples, k, settings.classify_threshold, weight, c) if k else {}
    info = {
        "trained_at": datetime.now(UTC).date().isoformat(),
        "documents": len(labelled),
        "per_type": dict(sorted(Counter(i.doc_type for i in labelled).items())),
        "c": c,
        "held_out_accuracy": report.get("accuracy"),
        "folds": k,
    }
    model = train([f for f, _ in samples], [i.doc_type for i in labelled], c=c, info=info)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return {"model": str(out), "features": len(model.features), **report}
