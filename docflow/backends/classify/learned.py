"""The learned part of the local classifier: features of a document, a linear model over them, training.

Features (`featurize`) are named, so a model keeps working when a feature is absent and its file can be read:
- `rule:<type>`: each type's rule score from `data/doc_types.yaml` (cues, negatives, file name, content type);
- `sim:<type>`: the cosine similarity of the opening text's embedding to each type's description, less the
  mean over types (what `LocalClassifier` adds as evidence without a model);
- `layout:<name>`: shape of the text (length, lines, digits, capitals, amounts) and whether OCR read it.
Few features that mean the same on any document, on purpose: with a few hundred training documents from a
dozen sources, a word vocabulary, the raw embedding's dimensions or the content type learned the sources
(a plain-text file was an invoice because the one in the dev set is) and did no better on held-out folds.

The model is multinomial logistic regression over standardised features, trained by `train` (scikit-learn,
at build time only) and stored as JSON (`data/classifier.json`, rebuilt by `docflow train-classifier`);
inference is a dot product. Types stay defined in the rules file: a model that does not know every type of
the rules in use is not used (see `LocalClassifier.from_settings`).
"""

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docflow.errors import ConfigError

FORMAT_VERSION = 1
_WORD = re.compile(r"[^\W\d_]{3,}")
_AMOUNT = re.compile(r"\d[\d,.]*[.,]\d{2}\b")
_DATE = re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}\b")
_MIN_STD = 1e-6


def layout_features(text: str, ocr: bool) -> dict[str, float]:
    """The text's shape: long prose, a short list of amounts, a grid of numbers read alike across kinds."""
    lines = [line for line in text.splitlines() if line.strip()]
    chars = max(len(text), 1)
    n_words = max(len(text.split()), 1)
    return {
        "layout:log_chars": math.log1p(len(text)),
        "layout:log_lines": math.log1p(len(lines)),
        "layout:mean_line_chars": (sum(len(line) for line in lines) / len(lines) / 80) if lines else 0.0,
        "layout:short_lines": sum(len(line.split()) <= 3 for line in lines) / max(len(lines), 1),
        "layout:digits": sum(c.isdigit() for c in text) / chars,
        "layout:capitals": sum(c.isupper() for c in text) / max(sum(c.isalpha() for c in text), 1),
        "layout:amounts": len(_AMOUNT.findall(text)) / n_words,
        "layout:dates": len(_DATE.findall(text)) / n_words,
        "layout:no_text": float(not _WORD.search(text)),
        "layout:ocr": float(ocr),
    }


def featurize(
    text: str,
    ocr: bool,
    rule_scores: dict[str, float],
    similarities: dict[str, float],
) -> dict[str, float]:
    """Every feature of one document."""
    feats = layout_features(text, ocr)
    feats.update({f"rule:{name}": score / 10 for name, score in rule_scores.items()})
    if similarities:
        mean = sum(similarities.values()) / len(similarities)
        feats.update({f"sim:{name}": (sim - mean) * 10 for name, sim in similarities.items()})
    return feats


@dataclass
class LinearModel:
    """Softmax over `coef · ((x - mean) / scale) + intercept`; `features` names the columns of x."""

    types: list[str]
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[list[float]]  # one row per type
    intercept: list[float]
    info: dict[str, Any] = field(default_factory=dict)  # what it was trained on, its fold scores
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == n and all(len(row) == n for row in self.coef)):
            raise ConfigError("classifier model: feature, mean, scale and weight sizes differ")
        if len(self.coef) != len(self.types) or len(self.intercept) != len(self.types):
            raise ConfigError("classifier model: one weight row and intercept per type expected")
        self._index = {name: i for i, name in enumerate(self.features)}

    def probabilities(self, feats: dict[str, float]) -> dict[str, float]:
        x = [0.0] * len(self.features)
        for name, value in feats.items():
            i = self._index.get(name)
            if i is not None:
                x[i] = value
        z = [(v - m) / s for v, m, s in zip(x, self.mean, self.scale, strict=True)]
        logits = [
            sum(w * v for w, v in zip(row, z, strict=True)) + b
            for row, b in zip(self.coef, self.intercept, strict=True)
        ]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        total = sum(exps)
        return {t: e / total for t, e in zip(self.types, exps, strict=True)}

    def evidence(self, feats: dict[str, float], doc_type: str, limit: int = 3) -> list[str]:
        """The features that pushed most towards `doc_type`, for the reasoning."""
        row = self.coef[self.types.index(doc_type)]
        contributions = []
        for name, value in feats.items():
            i = self._index.get(name)
            if i is not None:
                contributions.append((row[i] * (value - self.mean[i]) / self.scale[i], name))
        return [name for c, name in sorted(contributions, reverse=True)[:limit] if c > 0]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "types": self.types,
            "info": self.info,
            "intercept": [round(v, 6) for v in self.intercept],
            "features": self.features,
            "mean": [round(v, 6) for v in self.mean],
            "scale": [round(v, 6) for v in self.scale],
            "coef": [[round(v, 6) for v in row] for row in self.coef],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "LinearModel":
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the classifier model {path}: {exc}") from exc
        if raw.get("format") != FORMAT_VERSION:
            raise ConfigError(
                f"{path}: classifier model format {raw.get('format')}, expected {FORMAT_VERSION}"
            )
        try:
            return cls(
                **{k: raw[k] for k in ("types", "features", "mean", "scale", "coef", "intercept")},
                info=raw.get("info", {}),
            )
        except KeyError as exc:
            raise ConfigError(f"{path}: classifier model lacks {exc}") from exc


def blend(model: dict[str, float], rules: dict[str, float], weight: float) -> dict[str, float]:
    """`weight` of the model's probabilities plus the rest of the rules' confidences, per type."""
    return {t: weight * model.get(t, 0.0) + (1 - weight) * rules.get(t, 0.0) for t in {*model, *rules}}


def decide(probs: dict[str, float], threshold: float, fallback: str = "other") -> str:
    """The most probable type, or `fallback` when that is it or it falls below `threshold`."""
    best = max(probs, key=lambda t: probs[t])
    return best if best != fallback and probs[best] >= threshold else fallback


def train(
    samples: Sequence[dict[str, float]],
    labels: Sequence[str],
    c: float = 0.5,
    info: dict[str, Any] | None = None,
) -> LinearModel:
    """Fit the model on featurized documents."""
    try:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ConfigError(
            "training the classifier needs scikit-learn: pip install 'docflow[local-ml]'"
        ) from exc
    names = sorted({n for feats in samples for n in feats})
    index = {n: i for i, n in enumerate(names)}
    x = np.zeros((len(samples), len(names)))
    for row, feats in enumerate(samples):
        for name, value in feats.items():
            if name in index:
                x[row, index[name]] = value
    mean = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), _MIN_STD)
    types = sorted(set(labels))
    if len(types) < 2:
        raise ConfigError("training the classifier needs documents of at least two types")
    model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    model.fit((x - mean) / scale, list(labels))
    if len(types) == 2:  # scikit-learn keeps one row for two classes: the softmax of -z/2, z/2 is the same
        coef = np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2])
        intercept = np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    else:
        order = [list(model.classes_).index(t) for t in types]
        coef, intercept = model.coef_[order], model.intercept_[order]
    return LinearModel(
        types=types,
        features=names,
        mean=mean.tolist(),
        scale=scale.tolist(),
        coef=coef.tolist(),
        intercept=intercept.tolist(),
        info=info or {},
    )
