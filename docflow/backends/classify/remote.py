"""What the remote classify and extract backends share: official clients built from settings, and one
mapping of their errors onto docflow's error tree.

Both `llama-cloud` and `openai` are Stainless-generated clients with the same error classes: the client
itself retries connection errors, 408/409/429 and 5xx `remote_max_retries` times (honouring Retry-After);
what still fails after that becomes

- `BackendUnavailable` (retryable: the asset's RetryPolicy tries again later) for 429, 5xx, 408, timeouts
  and connection errors;
- `ConfigError` naming the environment variable for a missing key or a 401/403;
- `RemoteError` (not retryable) for any other 4xx and for output that does not parse.
"""

import json
from typing import Any

from docflow.errors import BackendUnavailable, ConfigError, DocflowError, MissingExtra
from docflow.settings import Settings

LLAMA_KEY_ENV = "DOCFLOW_LLAMA_CLOUD_API_KEY"
OPENAI_KEY_ENV = "DOCFLOW_OPENAI_API_KEY"


class RemoteError(DocflowError):
    """A remote backend refused the request (4xx) or answered something unusable; retrying cannot help."""


def llamacloud_client(settings: Settings) -> Any:
    """The official LlamaCloud client (`llama-cloud`), pointed at `llama_cloud_base_url` when set."""
    try:
        from llama_cloud import LlamaCloud
    except ImportError as exc:
        raise MissingExtra("llama-cloud", "llamacloud", "LlamaCloud classify/extract") from exc
    if settings.llama_cloud_api_key is None or not settings.llama_cloud_api_key.get_secret_value():
        raise ConfigError(f"the llamacloud backend needs an API key: set {LLAMA_KEY_ENV}")
    return LlamaCloud(
        api_key=settings.llama_cloud_api_key.get_secret_value(),
        base_url=settings.llama_cloud_base_url or None,
        timeout=settings.remote_timeout_s,
        max_retries=settings.remote_max_retries,
    )


def openai_client(settings: Settings) -> Any:
    """The official OpenAI client, for OpenAI or any OpenAI-compatible server (`openai_base_url`)."""
    try:
        from openai import OpenAI
    except ImportError as exc:
        raise MissingExtra("openai", "openai", "OpenAI classify/extract") from exc
    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value():
        raise ConfigError(f"the openai backend needs an API key: set {OPENAI_KEY_ENV}")
    return OpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url or None,
        timeout=settings.remote_timeout_s,
        max_retries=settings.remote_max_retries,
    )


def from_client(exc: Exception, *packages: str) -> bool:
    """True for an exception raised by one of the client packages (or httpx below them)."""
    return type(exc).__module__.startswith((*packages, "httpx"))


def api_error(exc: Exception, service: str, key_env: str) -> DocflowError:
    """Map an exception of an official client (or its poller) to docflow's error tree."""
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    if isinstance(status, int):
        message = _message(exc)
        if status in (408, 429) or status >= 500:
            return BackendUnavailable(f"{service} is unavailable (HTTP {status}): {message}")
        if status in (401, 403):
            return ConfigError(f"{service} rejected the API key (HTTP {status}): check {key_env}")
        return RemoteError(f"{service} refused the request (HTTP {status}): {message}")
    if name in ("APIConnectionError", "APITimeoutError", "PollingTimeoutError") or isinstance(
        exc, TimeoutError | ConnectionError
    ):
        return BackendUnavailable(f"{service} did not answer: {name}: {exc}")
    if name == "PollingError":  # the remote job ran and failed: the document, not the service
        return RemoteError(f"{service} job failed: {exc}")
    return RemoteError(f"{service} answered something unusable: {name}: {exc}")


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body.get("message")
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
        if detail:
            return str(detail)[:300]
    return str(exc)[:300]


def parse_json_object(text: str | None, service: str) -> dict[str, Any]:
    """The JSON object an LLM answered (tolerating a ```json fence); `RemoteError` when there is none."""
    raw = (text or "").strip()
    if raw.startswith("```"):
        raw = raw.strip("`")
        raw = raw[raw.find("{") :] if "{" in raw else raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RemoteError(f"{service} did not answer JSON: {raw[:200]!r}") from exc
    if not isinstance(value, dict):
        raise RemoteError(f"{service} answered JSON that is not an object: {raw[:200]!r}")
    return value
