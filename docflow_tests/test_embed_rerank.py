"""Rerankers: a /rerank API (local HTTP server, real httpx client) and the local cross-encoder code path."""

import os

import pytest
from openai_stub import StubServer

from docflow.backends.embed.rerank import APIReranker, CrossEncoderReranker, get_reranker
from docflow.errors import BackendUnavailable, ConfigError
from docflow.models import SearchHit
from docflow.settings import Settings

TEXTS = ["the cat sleeps on the sofa", "invoice total due 980 EUR", "invoice from Globex", "weather report"]


def _hits() -> list[SearchHit]:
    return [
        SearchHit(
            doc_id=f"d{i}", key="k", filename=f"f{i}.pdf", doc_type=None, chunk_index=0, score=0.01, text=t
        )
        for i, t in enumerate(TEXTS)
    ]


def test_api_reranker_reorders_by_relevance() -> None:
    with StubServer() as (stub, base_url):
        settings = Settings(rerank="api", rerank_url=f"{base_url}/rerank", rerank_model="stub-rerank")
        reranker = get_reranker(settings)
        assert isinstance(reranker, APIReranker)
        ranked = reranker.rerank("invoice total due", _hits())
        request = stub.calls("/rerank")[0]
    assert [h.doc_id for h in ranked][:2] == ["d1", "d2"]
    assert ranked[0].score == 3.0 and ranked[1].score == 1.0
    assert request.body == {
        "query": "invoice total due",
        "documents": TEXTS,
        "top_n": 4,
        "model": "stub-rerank",
    }


def test_api_reranker_retries_then_gives_up() -> None:
    with StubServer() as (stub, base_url):
        stub.fail("/rerank", 429, {"retry-after": "0"})
        reranker = APIReranker(f"{base_url}/rerank", "m", max_retries=1)
        assert reranker.rerank("invoice", _hits())[0].doc_id in {"d1", "d2"}
        stub.fail("/rerank", 503, {"retry-after": "0"})
        stub.fail("/rerank", 503, {"retry-after": "0"})
        with pytest.raises(BackendUnavailable, match="2 attempts"):
            reranker.rerank("invoice", _hits())
        stub.fail("/rerank", 401)
        with pytest.raises(ConfigError):
            reranker.rerank("invoice", _hits())


def test_rerank_settings_are_checked() -> None:
    assert get_reranker(Settings()) is None
    with pytest.raises(ConfigError, match="DOCFLOW_RERANK_URL"):
        get_reranker(Settings(rerank="api"))
    with pytest.raises(ConfigError, match="DOCFLOW_RERANK_MODEL"):
        get_reranker(Settings(rerank="local"))
    with pytest.raises(ConfigError, match="not found"):
        CrossEncoderReranker("/no/such/cross-encoder")


def test_cross_encoder_code_path_orders_by_its_scores() -> None:
    """No trained cross-encoder ships offline: the bundled MiniLM with an untrained head stands in, which
    checks loading (offline) and that hits come back ordered by the model's own scores."""
    pytest.importorskip("sentence_transformers")
    from docflow.backends.embed.local import bundled_model_path

    reranker = CrossEncoderReranker(str(bundled_model_path()))
    ranked = reranker.rerank("invoice total", _hits())
    scores = reranker._model.predict([("invoice total", t) for t in TEXTS], show_progress_bar=False)
    expected = sorted(range(4), key=lambda i: -float(scores[i]))
    assert [h.doc_id for h in ranked] == [f"d{i}" for i in expected]
    assert [h.score for h in ranked] == pytest.approx(sorted((float(s) for s in scores), reverse=True))


@pytest.mark.skipif(
    not os.environ.get("DOCFLOW_TEST_CROSS_ENCODER"), reason="no trained cross-encoder offline"
)
def test_trained_cross_encoder_prefers_the_relevant_passage() -> None:
    reranker = CrossEncoderReranker(os.environ["DOCFLOW_TEST_CROSS_ENCODER"])
    assert reranker.rerank("how much is due on the invoice?", _hits())[0].doc_id == "d1"
