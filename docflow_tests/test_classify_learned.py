"""The learned classifier: features, the model as data, folds that never score a model on what it saw."""

import json
import random
from pathlib import Path

import pytest

from docflow.backends.classify.learned import LinearModel, featurize, layout_features, train
from docflow.backends.classify.local import LocalClassifier, load_rules
from docflow.errors import ConfigError
from docflow.evaluation import Item
from docflow.evaluation.folds import assign_folds, cross_validate
from docflow.settings import Settings, data_dir

RULES = load_rules(data_dir() / "doc_types.yaml")
RULES_ONLY = LocalClassifier(RULES, embedder=None)  # rule scores and layout: the features without MiniLM

TEXTS = {
    "invoice": "INVOICE number {n} date 2024-0{m}-12 bill to Globex total due {a} payment terms net 30 VAT",
    "receipt": "CORNER CAFE cashier {n} latte {a} total {a} cash change thank you for your purchase",
    "contract": "This Agreement is entered into by and between the parties; governing law; term {n} WHEREAS",
}


def _samples(per_type: int = 6, seed: int = 1) -> tuple[list[dict[str, float]], list[str]]:
    rnd = random.Random(seed)
    feats, labels = [], []
    for doc_type, template in TEXTS.items():
        for _ in range(per_type):
            text = template.format(n=rnd.randint(1, 999), m=rnd.randint(1, 9), a=f"{rnd.uniform(1, 900):.2f}")
            feats.append(RULES_ONLY.features(text, "", "text/plain", False)[0])
            labels.append(doc_type)
    return feats, labels


def test_layout_features_describe_the_shape_of_the_text() -> None:
    receipt = layout_features("TOTAL 9.50\nCASH 10.00\nCHANGE 0.50", ocr=True)
    prose = layout_features("This agreement is made between the parties named below. " * 5, ocr=False)
    assert receipt["layout:amounts"] > prose["layout:amounts"]
    assert receipt["layout:short_lines"] > prose["layout:short_lines"]
    assert receipt["layout:ocr"] == 1.0 and prose["layout:ocr"] == 0.0


def test_features_are_rule_scores_similarities_and_shape() -> None:
    feats = featurize("Invoice total 10.00", False, {"invoice": 20.0}, {"invoice": 0.5, "receipt": 0.3})
    assert feats["rule:invoice"] == 2.0
    assert feats["sim:invoice"] == pytest.approx(1.0) and feats["sim:receipt"] == pytest.approx(-1.0)
    assert {name.split(":")[0] for name in feats} == {"rule", "sim", "layout"}  # no words, no content type


def test_a_trained_model_classifies_new_text_and_survives_a_round_trip(tmp_path: Path) -> None:
    feats, labels = _samples()
    model = train(feats, labels)
    unseen = RULES_ONLY.features(TEXTS["receipt"].format(n=5, m=1, a="3.20"), "", "text/plain", False)[0]
    probs = model.probabilities(unseen)
    assert max(probs, key=lambda t: probs[t]) == "receipt"
    assert abs(sum(probs.values()) - 1.0) < 1e-9
    assert model.evidence(unseen, "receipt")  # names the features that decided
    path = tmp_path / "model.json"
    model.save(path)
    loaded = LinearModel.load(path)
    assert loaded.probabilities(unseen) == pytest.approx(probs, abs=1e-4)


def test_two_types_train_a_model_with_a_row_each() -> None:
    feats, labels = _samples()
    keep = [n for n, label in enumerate(labels) if label != "contract"]
    model = train([feats[n] for n in keep], [labels[n] for n in keep])
    assert model.types == ["invoice", "receipt"] and len(model.coef) == 2
    assert max(model.probabilities(feats[0]).items(), key=lambda kv: kv[1])[0] == labels[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read"),
        (json.dumps({"format": 99}), "format"),
        (json.dumps({"format": 1, "types": ["a"]}), "lacks"),
        (
            json.dumps(
                {
                    "format": 1,
                    "types": ["a", "b"],
                    "features": ["x"],
                    "mean": [0],
                    "scale": [1, 2],
                    "coef": [[1], [2]],
                    "intercept": [0, 0],
                }
            ),
            "sizes differ",
        ),
    ],
)
def test_broken_model_files_raise_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        LinearModel.load(path)


def test_a_model_that_lacks_a_type_of_the_rules_is_not_used() -> None:
    feats, labels = _samples()
    partial = train(feats, labels)  # knows three of the rules' types
    clf = LocalClassifier(RULES, embedder=None, model=partial)
    assert clf.model is None and "learned" not in clf.name
    result = clf.classify_text(TEXTS["contract"].format(n=1, m=1, a="1"))
    assert result.doc_type == "contract" and "learned" not in result.reasoning


def test_the_learned_model_decides_and_says_why() -> None:
    feats, labels = _samples()
    rules_types = list(RULES.types)
    # a model over every type of the rules: the three sampled ones plus one synthetic document for each other
    for doc_type in rules_types:
        if doc_type not in TEXTS:
            feats.append(RULES_ONLY.features(f"{doc_type} " * 5, "", "text/plain", False)[0])
            labels.append(doc_type)
    clf = LocalClassifier(RULES, embedder=None, model=train(feats, labels))
    assert clf.model is not None and clf.name.endswith("+learned")
    result = clf.classify_text(TEXTS["invoice"].format(n=77, m=3, a="120.00"), filename="scan.txt")
    assert result.doc_type == "invoice"
    assert "learned model" in result.reasoning and "runner-up" in result.reasoning
    assert set(result.scores) == set(rules_types)


def _items(labels: list[str]) -> list[Item]:
    return [Item(Path(f"/d/src{n % 3}/doc{n:03}.pdf"), t, {}, None, f"d{n}") for n, t in enumerate(labels)]


def test_folds_are_stratified_by_type_and_disjoint() -> None:
    labels = ["invoice"] * 7 + ["receipt"] * 5 + ["form"] * 3
    folds = assign_folds(_items(labels), 3)
    for fold in range(3):
        assert {labels[n] for n, f in enumerate(folds) if f == fold} == {"invoice", "receipt", "form"}
    assert sorted(folds.count(f) for f in range(3)) == [5, 5, 5]
    with pytest.raises(ValueError):
        assign_folds(_items(labels), 1)


def test_cross_validation_scores_documents_the_model_did_not_see() -> None:
    """Labels unrelated to the features: a model scored on its own training data looks perfect, held-out
    folds show chance."""
    rnd = random.Random(7)
    labels = [rnd.choice(["a", "b"]) for _ in range(40)]
    feats = [{f"layout:x{i}": rnd.gauss(0, 1) for i in range(80)} for _ in labels]
    in_sample = train(feats, labels, c=100.0)
    seen = sum(
        max(p := in_sample.probabilities(f), key=lambda t: p[t]) == y
        for f, y in zip(feats, labels, strict=True)
    )
    assert seen / len(labels) > 0.95
    report = cross_validate(_items(labels), [(f, {}) for f in feats], 4, threshold=0.0, c=100.0)
    assert report["n"] == 40 and report["accuracy"] < 0.75
    assert set(report["per_folder"]) == {"src0", "src1", "src2"}


def test_training_needs_two_types() -> None:
    feats, _ = _samples(per_type=2)
    with pytest.raises(ConfigError, match="two types"):
        train(feats, ["invoice"] * len(feats))


def test_settings_can_turn_the_learned_model_off(tmp_path: Path) -> None:
    feats, labels = _samples()
    for doc_type in RULES.types:
        if doc_type not in TEXTS:
            feats.append(RULES_ONLY.features(f"{doc_type} " * 5, "", "text/plain", False)[0])
            labels.append(doc_type)
    path = tmp_path / "model.json"
    train(feats, labels).save(path)
    base = {"classifier_model_path": path, "classify_embed_weight": 0}
    assert LocalClassifier.from_settings(Settings(**base)).model is not None
    assert LocalClassifier.from_settings(Settings(**base, classify_learned=False)).model is None


def test_the_rules_temper_a_model_that_learned_a_narrow_sample() -> None:
    """A model trained where every receipt was a photo leans away from a born-digital one; the rules' share
    of the confidence keeps a clear case right."""
    feats, labels = _samples()
    for n, label in enumerate(labels):
        feats[n]["layout:ocr"] = 1.0 if label == "receipt" else 0.0  # the training receipts: all OCRed
    for doc_type in RULES.types:
        if doc_type not in TEXTS:
            feats.append(RULES_ONLY.features(f"{doc_type} " * 5, "", "text/plain", False)[0])
            labels.append(doc_type)
    model = train(feats, labels)
    text = TEXTS["receipt"].format(n=3, m=1, a="4.10")
    model_only = LocalClassifier(RULES, embedder=None, model=model, model_weight=1.0)
    blended = LocalClassifier(RULES, embedder=None, model=model, model_weight=0.7)
    assert blended.classify_text(text).scores["receipt"] > model_only.classify_text(text).scores["receipt"]
    assert blended.classify_text(text).doc_type == "receipt"
