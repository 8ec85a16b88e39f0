"""The OpenAI(-compatible) embedder: the real `openai` client against a local server speaking the API."""

import time
import uuid

import pytest
from openai_stub import OpenAIStub, StubServer, hashed_vector
from pydantic import SecretStr

from docflow import backends, ingest, pipeline
from docflow.backends import Embedder
from docflow.backends.embed.openai import OpenAIEmbedder, RateLimiter, retry_after
from docflow.errors import BackendUnavailable, ConfigError
from docflow.pipeline import Runtime, config_fingerprint
from docflow.runtime import REPO_ROOT
from docflow.settings import Settings


@pytest.fixture
def server():
    with StubServer() as (stub, base_url):
        yield stub, base_url


def _settings(base_url: str, **update) -> Settings:
    values = {
        "embed_backend": "openai",
        "openai_base_url": base_url,
        "openai_api_key": SecretStr("sk-test"),
        "openai_embed_model": "stub-embed",
        "openai_embed_batch_size": 4,
        "openai_max_retries": 3,
        **update,
    }
    return Settings(**values)


def test_registered_and_built_from_settings(server) -> None:
    _, base_url = server
    embedder = backends.get_embedder(_settings(base_url))
    assert isinstance(embedder, OpenAIEmbedder) and isinstance(embedder, Embedder)
    assert embedder.name == "openai/stub-embed"


def test_batches_keep_order_and_dimension_follows_the_model(server) -> None:
    stub, base_url = server
    embedder = OpenAIEmbedder.from_settings(_settings(base_url))
    texts = [f"invoice line {i} widgets" for i in range(10)] + [""]
    vectors = embedder.embed(texts)
    assert len(vectors) == 11 and embedder.dimension == 16
    assert vectors[3] == pytest.approx(hashed_vector(texts[3], 16))  # sorted back by index
    calls = stub.calls("/embeddings")
    assert [len(c.body["input"]) for c in calls] == [4, 4, 3]
    assert calls[-1].body["input"][-1] == " "  # the API rejects empty strings
    assert calls[0].body["encoding_format"] == "float" and "dimensions" not in calls[0].body
    assert calls[0].headers["authorization"] == "Bearer sk-test"


def test_dimensions_setting_is_sent_and_named(server) -> None:
    stub, base_url = server
    embedder = OpenAIEmbedder.from_settings(_settings(base_url, openai_embed_dimensions=8))
    assert embedder.name == "openai/stub-embed@8" and embedder.dimension == 8
    assert len(embedder.embed(["hello"])[0]) == 8
    assert stub.calls("/embeddings")[0].body["dimensions"] == 8


def test_unknown_model_dimension_is_probed_once(server) -> None:
    stub, base_url = server
    embedder = OpenAIEmbedder.from_settings(_settings(base_url))
    assert embedder.dimension == 16 and embedder.dimension == 16
    assert len(stub.calls("/embeddings")) == 1


def test_429_with_retry_after_is_honoured_then_succeeds(server) -> None:
    stub, base_url = server
    stub.fail("/embeddings", 429, {"retry-after": "1"})
    embedder = OpenAIEmbedder.from_settings(_settings(base_url))
    started = time.monotonic()
    vectors = embedder.embed(["retry me"])
    assert vectors[0] == pytest.approx(hashed_vector("retry me", 16))
    first, second = stub.calls("/embeddings")
    assert second.at - first.at >= 0.95  # waited what the server asked, not the client's own backoff
    assert time.monotonic() - started < 10


def test_server_errors_are_retried_with_backoff(server) -> None:
    stub, base_url = server
    stub.fail("/embeddings", 500)
    stub.fail("/embeddings", 503, {"retry-after-ms": "50"})
    assert len(OpenAIEmbedder.from_settings(_settings(base_url)).embed(["x"])) == 1
    assert len(stub.calls("/embeddings")) == 3


def test_persistent_429_gives_backend_unavailable(server) -> None:
    stub, base_url = server
    for _ in range(3):
        stub.fail("/embeddings", 429, {"retry-after": "0"})
    embedder = OpenAIEmbedder.from_settings(_settings(base_url, openai_max_retries=2))
    with pytest.raises(BackendUnavailable, match="failed after 3 attempts") as info:
        embedder.embed(["x"])
    assert info.value.retryable and len(stub.calls("/embeddings")) == 3


def test_quota_exhausted_is_not_retried(server) -> None:
    stub, base_url = server
    body = {"error": {"message": "You exceeded your quota", "type": "x", "code": "insufficient_quota"}}
    stub.fail("/embeddings", 429, {}, body)
    with pytest.raises(BackendUnavailable, match="quota"):
        OpenAIEmbedder.from_settings(_settings(base_url)).embed(["x"])
    assert len(stub.calls("/embeddings")) == 1


@pytest.mark.parametrize("status", [401, 400, 404])
def test_client_errors_raise_config_error_at_once(server, status: int) -> None:
    stub, base_url = server
    stub.fail("/embeddings", status)
    with pytest.raises(ConfigError):
        OpenAIEmbedder.from_settings(_settings(base_url)).embed(["x"])
    assert len(stub.calls("/embeddings")) == 1


def test_wrong_vector_size_is_a_config_error(server) -> None:
    stub, base_url = server
    embedder = OpenAIEmbedder.from_settings(_settings(base_url))
    embedder.embed(["learn the size"])
    stub.default_dim = 12  # the server changed model behind our back
    with pytest.raises(ConfigError, match="12-dimensional vector, expected 16"):
        embedder.embed(["now different"])


def test_needs_a_key_or_a_base_url() -> None:
    with pytest.raises(ConfigError, match="DOCFLOW_OPENAI_API_KEY"):
        OpenAIEmbedder.from_settings(
            Settings(embed_backend="openai", openai_api_key=None, openai_base_url=None)
        )


def test_rate_limiter_spaces_calls_within_a_minute() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2, clock=lambda: now[0], sleep=sleep)
    assert limiter.acquire() == 0 and limiter.acquire() == 0
    now[0] = 10.0
    assert limiter.acquire() == pytest.approx(50.0)  # the first call leaves the window at t=60
    assert slept == [pytest.approx(50.0)]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: no wait
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_parsing(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(headers) == expected


def test_fingerprint_changes_with_the_remote_model() -> None:
    a = _settings("http://x/v1")
    assert config_fingerprint(a) != config_fingerprint(Settings())
    assert config_fingerprint(a) != config_fingerprint(_settings("http://x/v1", openai_embed_model="other"))
    assert config_fingerprint(a) != config_fingerprint(_settings("http://x/v1", openai_embed_dimensions=8))


def test_switching_models_re_embeds_and_never_mixes_dimensions(rt, server) -> None:
    """A document embedded by the local model, then by the remote one: its chunks carry the new model and
    dimension; a search with either configuration only sees vectors of its own model."""
    from docflow.retrieval import search

    _, base_url = server
    tenant = f"oa{uuid.uuid4().hex[:6]}"
    path = REPO_ROOT / "data" / "samples" / "invoice-northwind-2024-0042.pdf"
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, tenant)
    ingest.upload(rt.bucket, rt.store, up)
    pipeline.process(rt, up.doc_id)
    assert search(rt, "Northwind Traders invoice", k=3, tenant=tenant)

    try:
        remote = Runtime(rt.store, rt.bucket, rt.settings.model_copy(update=_settings(base_url).model_dump()))
        result = pipeline.embeddings(remote, up.doc_id)
        assert (result.model, result.dimension) == ("openai/stub-embed", 16)
        with rt.store.tx() as conn:
            rows = conn.execute(
                "SELECT DISTINCT embedding_model, vector_dims(embedding) AS dim FROM docflow.chunks "
                "WHERE doc_id = %s",
                (up.doc_id,),
            ).fetchall()
        assert rows == [{"embedding_model": "openai/stub-embed", "dim": 16}]
        assert rt.store.get_document(up.doc_id).config_fingerprint == config_fingerprint(remote.settings)

        hits = search(remote, "Northwind Traders invoice", k=3, tenant=tenant)
        assert hits and {h.doc_id for h in hits} == {up.doc_id}
        assert search(rt, "Northwind Traders invoice", k=3, tenant=tenant) == []  # the local model's are gone
    finally:
        rt.store.delete_documents([up.doc_id])  # no stale document (nor its object) left for other tests
        rt.bucket.delete(up.key)


def test_stub_serves_chat_for_completeness(server) -> None:
    stub, base_url = server
    stub.chat_reply = lambda messages: "pong [1]"
    from docflow.backends.embed.openai import chat

    assert chat(_settings(base_url), [{"role": "user", "content": "ping"}]) == "pong [1]"
    assert stub.calls("/chat/completions")[0].body["model"] == "gpt-4o-mini"


def test_openai_stub_is_a_real_http_server() -> None:
    import httpx

    with StubServer(OpenAIStub(default_dim=4)) as (_, base_url):
        response = httpx.post(f"{base_url}/embeddings", json={"input": ["a b"], "model": "m"})
    assert response.status_code == 200 and len(response.json()["data"][0]["embedding"]) == 4
