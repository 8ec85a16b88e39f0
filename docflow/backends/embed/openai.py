"""Embeddings (and chat completions for `docflow ask`) from OpenAI or any OpenAI-compatible server.

`DOCFLOW_OPENAI_BASE_URL` points the official `openai` client at a compatible server (vLLM, Ollama, LM Studio,
Azure-style gateways, text-embeddings-inference...); `DOCFLOW_OPENAI_EMBED_MODEL` and
`DOCFLOW_OPENAI_EMBED_DIMENSIONS` pick the model and (for models that support it) a shortened vector.

Retries are docflow's, not the client's (the client is built with `max_retries=0`): a 429 waits what the
server asks for (`retry-after-ms`, `Retry-After` in seconds or as an HTTP date), other retryable failures
(connection errors, timeouts, 5xx, 409) back off exponentially with jitter. After `openai_max_retries`
attempts a `BackendUnavailable` is raised (the asset's RetryPolicy may try again later); authentication,
permission and bad-request errors raise `ConfigError` at once. `openai_requests_per_minute` throttles calls
client-side (one limiter per process and base URL), so a large backfill stays under an account's limit instead
of living on 429s.
"""

import email.utils
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

from docflow import metering
from docflow.errors import BackendUnavailable, ConfigError, MissingExtra
from docflow.settings import Settings

T = TypeVar("T")

# Known output sizes; any other model's dimension is learned from its first response.
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
MAX_DELAY_S = 120.0  # never sleep longer than this for one retry, whatever a server asks
BASE_DELAY_S = 0.5


def _openai() -> Any:
    try:
        import openai
    except ImportError as exc:  # a core dependency today, but keep the message if it becomes optional
        raise MissingExtra("openai", "openai", "OpenAI embeddings and answers") from exc
    return openai


def make_client(settings: Settings) -> Any:
    """An `openai.OpenAI` client for the configured server; a compatible server may need no key."""
    openai = _openai()
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if not key and not settings.openai_base_url:
        raise ConfigError("the OpenAI backend needs DOCFLOW_OPENAI_API_KEY (or DOCFLOW_OPENAI_BASE_URL)")
    return openai.OpenAI(
        api_key=key or "not-needed",
        base_url=settings.openai_base_url or None,
        max_retries=0,
        timeout=settings.openai_timeout_s,
    )


class RateLimiter:
    """At most `per_minute` calls per rolling minute (a sliding window of call times); thread-safe."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, sleep=time.sleep):
        if per_minute < 1:
            raise ConfigError(f"requests per minute must be >= 1, got {per_minute}")
        self.per_minute = per_minute
        self._clock, self._sleep = clock, sleep
        self._calls: list[float] = []
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until a call is allowed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._calls = [t for t in self._calls if now - t < 60.0]
                if len(self._calls) < self.per_minute:
                    self._calls.append(now)
                    return waited
                delay = 60.0 - (now - self._calls[0])
            self._sleep(delay)
            waited += delay


_LIMITERS: dict[tuple[str, int], RateLimiter] = {}


def limiter_for(settings: Settings) -> RateLimiter | None:
    rpm = settings.openai_requests_per_minute
    if not rpm:
        return None
    key = (settings.openai_base_url or "openai", rpm)
    return _LIMITERS.setdefault(key, RateLimiter(rpm))


def retry_after(headers: Any) -> float | None:
    """Seconds a server asked us to wait: `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _backoff(attempt: int) -> float:
    return min(MAX_DELAY_S, BASE_DELAY_S * 2**attempt) * random.uniform(0.5, 1.0)


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    max_retries: int,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` (one OpenAI request), retrying 429s, connection errors, timeouts and 5xx (see above)."""
    openai = _openai()
    for attempt in range(max_retries + 1):
        if limiter is not None:
            limiter.acquire()
        try:
            return fn()
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise ConfigError(f"{what}: credentials refused ({exc.status_code}): {exc}") from exc
        except (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError) as exc:
            raise ConfigError(f"{what}: request rejected ({exc.status_code}): {exc}") from exc
        except openai.RateLimitError as exc:
            if _code(exc) == "insufficient_quota":  # waiting does not help
                raise BackendUnavailable(f"{what}: quota exhausted: {exc}") from exc
            error: Exception = exc
            delay = retry_after(exc.response.headers)
            delay = _backoff(attempt) if delay is None else delay
        except (openai.APIConnectionError, openai.InternalServerError, openai.ConflictError) as exc:
            error = exc
            headers = getattr(getattr(exc, "response", None), "headers", None)
            delay = retry_after(headers)
            delay = _backoff(attempt) if delay is None else delay
        except openai.APIStatusError as exc:
            if exc.status_code < 500:
                raise ConfigError(f"{what}: request rejected ({exc.status_code}): {exc}") from exc
            error, delay = exc, _backoff(attempt)
        if attempt == max_retries:
            raise BackendUnavailable(f"{what}: failed after {attempt + 1} attempts: {error}") from error
        sleep(min(delay, MAX_DELAY_S))
    raise AssertionError("unreachable")  # pragma: no cover


def _code(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("code")
    return getattr(exc, "code", None)


class OpenAIEmbedder:
    """Vectors from an OpenAI(-compatible) embeddings endpoint, in batches, with retries and rate limits.

    `name` ("openai/<model>" or "openai/<model>@<dimensions>") is stored with every vector, so chunks of two
    models (or two sizes of one model) are never compared; `dimension` is the model's, learned from the first
    response for models docflow does not know.
    """

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        dimensions: int | None = None,
        batch_size: int = 128,
        max_retries: int = 6,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.model = model
        self.dimensions = dimensions
        self.name = f"openai/{model}" + (f"@{dimensions}" if dimensions else "")
        self.batch_size = max(1, batch_size)
        self.max_retries = max(0, max_retries)
        self._limiter = limiter
        self._sleep = sleep
        self._dimension: int | None = dimensions or KNOWN_DIMENSIONS.get(model)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            make_client(settings),
            settings.openai_embed_model,
            dimensions=settings.openai_embed_dimensions,
            batch_size=settings.openai_embed_batch_size,
            max_retries=settings.openai_max_retries,
            limiter=limiter_for(settings),
        )

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order (the API rejects empty strings: those are sent as a space)."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[start : start + self.batch_size]]
            vectors.extend(self._embed_batch(batch))
        return vectors

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        kwargs: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "float"}
        if self.dimensions:
            kwargs["dimensions"] = self.dimensions
        response = call_with_retries(
            lambda: metering.openai_call(self.model, lambda: self._client.embeddings.create(**kwargs)),
            what=f"embeddings ({self.model})",
            max_retries=self.max_retries,
            limiter=self._limiter,
            sleep=self._sleep,
        )
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(batch):
            raise BackendUnavailable(f"embeddings ({self.model}): {len(data)} vectors for {len(batch)} texts")
        vectors = [list(map(float, d.embedding)) for d in data]
        for vector in vectors:
            if self._dimension is None:
                self._dimension = len(vector)
            if len(vector) != self._dimension:
                raise ConfigError(
                    f"embeddings ({self.model}): got a {len(vector)}-dimensional vector, expected "
                    f"{self._dimension} (set DOCFLOW_OPENAI_EMBED_DIMENSIONS to the model's size)"
                )
        return vectors


def chat(settings: Settings, messages: list[dict[str, str]], *, client: Any = None) -> str:
    """One chat completion from the configured LLM (`openai_model`), with docflow's retries; the text."""
    client = client or make_client(settings)
    response = call_with_retries(
        lambda: client.chat.completions.create(model=settings.openai_model, messages=messages, temperature=0),
        what=f"chat ({settings.openai_model})",
        max_retries=settings.openai_max_retries,
        limiter=limiter_for(settings),
    )
    if not response.choices:
        raise BackendUnavailable(f"chat ({settings.openai_model}): the response has no choices")
    return response.choices[0].message.content or ""
