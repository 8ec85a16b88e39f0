"""Optional reranking of search hits (`DOCFLOW_RERANK`): a local cross-encoder or a /rerank API.

* `local`: a sentence-transformers `CrossEncoder` from a local folder (`DOCFLOW_RERANK_MODEL`), loaded once
  per process with the hub offline: docflow never downloads a model at run time.
* `api`: a Cohere/Jina/Voyage-style endpoint (`DOCFLOW_RERANK_URL`, e.g. `https://api.cohere.com/v2/rerank`,
  or a self-hosted text-embeddings-inference/Infinity server) taking `{model, query, documents, top_n}` and
  answering `{"results": [{"index": i, "relevance_score": s}, ...]}`; retried like the OpenAI calls.

A reranker returns the hits reordered (best first) with `score` replaced by its relevance score.
"""

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from docflow.backends.embed.openai import MAX_DELAY_S, _backoff, retry_after
from docflow.errors import BackendUnavailable, ConfigError, MissingExtra
from docflow.models import SearchHit
from docflow.settings import Settings

if TYPE_CHECKING:
    import httpx  # imported when an API reranker is built: search without one does not pay for it

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


@runtime_checkable
class Reranker(Protocol):
    name: str

    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]: ...


def _reordered(hits: Sequence[SearchHit], scores: Sequence[float]) -> list[SearchHit]:
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
    return [hits[i].model_copy(update={"score": float(scores[i])}) for i in order]


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a local sentence-transformers CrossEncoder on CPU."""

    def __init__(self, model_path: str, batch_size: int = 16) -> None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise ConfigError(f"cross-encoder folder not found: {model_path} (check DOCFLOW_RERANK_MODEL)")
        self._model = _load_cross_encoder(str(path.resolve()))
        self.name = f"cross-encoder/{path.name}"
        self.batch_size = batch_size

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        if not settings.rerank_model:
            raise ConfigError("DOCFLOW_RERANK=local needs DOCFLOW_RERANK_MODEL (a cross-encoder folder)")
        return cls(settings.rerank_model)

    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        if not hits:
            return []
        pairs = [(query, h.text) for h in hits]
        scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return _reordered(hits, [float(s) for s in scores])


def _load_cross_encoder(path: str) -> Any:
    with _LOCK:
        if path not in _MODELS:
            os.environ["HF_HUB_OFFLINE"] = "1"
            try:
                from sentence_transformers import CrossEncoder
            except ImportError as exc:
                raise MissingExtra("sentence-transformers", "local-ml", "local reranking") from exc
            try:
                _MODELS[path] = CrossEncoder(path, device="cpu", local_files_only=True)
            except Exception as exc:  # anything inside transformers/torch: say which model and why
                raise ConfigError(f"cannot load cross-encoder {path!r}: {type(exc).__name__}: {exc}") from exc
        return _MODELS[path]


class APIReranker:
    """A hosted reranker speaking the common /rerank request and response shape."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        client: "httpx.Client | None" = None,
    ) -> None:
        import httpx

        self.url = url
        self.model = model
        self.name = f"api/{model or 'rerank'}"
        self.max_retries = max_retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(timeout=timeout_s, headers=headers)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        if not settings.rerank_url:
            raise ConfigError("DOCFLOW_RERANK=api needs DOCFLOW_RERANK_URL (a /rerank endpoint)")
        key = settings.rerank_api_key.get_secret_value() if settings.rerank_api_key else None
        return cls(settings.rerank_url, settings.rerank_model, key, max_retries=settings.openai_max_retries)

    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        if not hits:
            return []
        body: dict[str, Any] = {"query": query, "documents": [h.text for h in hits], "top_n": len(hits)}
        if self.model:
            body["model"] = self.model
        results = self._post(body).get("results")
        if not isinstance(results, list):
            raise BackendUnavailable(f"reranker {self.url}: the response has no 'results' list")
        scores = [float("-inf")] * len(hits)  # a hit the service left out goes last, in its old order
        for r in results:
            index = int(r["index"])
            if 0 <= index < len(hits):
                scores[index] = float(r.get("relevance_score", r.get("score", 0.0)))
        return _reordered(hits, scores)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                error: str = f"{type(exc).__name__}: {exc}"
                delay = _backoff(attempt)
            else:
                if response.status_code < 400:
                    return response.json()
                if response.status_code in (401, 403) or (
                    response.status_code < 500 and response.status_code != 429
                ):
                    raise ConfigError(f"reranker {self.url}: {response.status_code} {response.text[:200]}")
                error = f"{response.status_code} {response.text[:200]}"
                wait = retry_after(response.headers)
                delay = _backoff(attempt) if wait is None else wait
            if attempt == self.max_retries:
                raise BackendUnavailable(f"reranker {self.url}: failed after {attempt + 1} attempts: {error}")
            time.sleep(min(delay, MAX_DELAY_S))
        raise AssertionError("unreachable")  # pragma: no cover


RERANKERS: dict[str, type] = {"local": CrossEncoderReranker, "api": APIReranker}
_BUILT: dict[Settings, Reranker] = {}


def get_reranker(settings: Settings) -> Reranker | None:
    """The configured reranker (built once per settings), or None when `rerank` is 'none'."""
    if settings.rerank == "none":
        return None
    if settings not in _BUILT:
        _BUILT[settings] = RERANKERS[settings.rerank].from_settings(settings)
    return _BUILT[settings]
