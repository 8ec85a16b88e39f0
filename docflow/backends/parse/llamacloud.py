"""LlamaParse through the maintained `llama-cloud` SDK: upload the file, create a parse job with a tier,
poll it with exponential backoff until done or the timeout, then fetch markdown and text per page.

It reads the formats LlamaParse lists (data/formats.yaml, `docflow.formats`), many the local parser does
not (legacy Office, iWork, WordPerfect, Lotus, HEIC, SVG, audio...). The `fast` tier returns text only,
no markdown: its pages' text is the markdown then.

Errors are split for the asset's RetryPolicy: network errors, timeouts, 408/409/429 and 5xx raise
`BackendUnavailable` (retryable); a 400/413/415/422 answer or a FAILED job raise `BadDocument`; a rejected
API key raises `ConfigError`.
"""

import time
from typing import Any, Self

from docflow import formats, metering
from docflow.backends.parse.markdown import from_markdown
from docflow.errors import BackendUnavailable, BadDocument, ConfigError, DocumentTooLarge, MissingExtra
from docflow.models import ParsedDocument, RawFile
from docflow.settings import LLAMA_PARSE_TIERS, Settings

_DONE = {"COMPLETED", "FAILED", "CANCELLED"}


class LlamaParseParser:
    name = "llamacloud"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        tier: str = "cost_effective",
        timeout_s: float = 300.0,
        max_bytes: int = 100 * 1024 * 1024,
        poll_initial_s: float = 0.5,
        poll_max_s: float = 10.0,
    ) -> None:
        try:
            from llama_cloud import LlamaCloud
        except ImportError as exc:  # pragma: no cover - llama-cloud is a core dependency
            raise MissingExtra("llama-cloud", "llamacloud", "the LlamaParse backend") from exc
        if tier not in LLAMA_PARSE_TIERS:
            raise ConfigError(f"unknown LlamaParse tier {tier!r}; known: {', '.join(LLAMA_PARSE_TIERS)}")
        self.tier = tier
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.poll_initial_s = poll_initial_s
        self.poll_max_s = poll_max_s
        # the SDK itself retries connection errors, 408/409/429 and 5xx (twice, with backoff)
        self.client = LlamaCloud(api_key=api_key, base_url=base_url, timeout=min(timeout_s, 120.0))

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        if settings.llama_cloud_api_key is None:
            raise ConfigError("DOCFLOW_PARSE_BACKEND=llamacloud needs DOCFLOW_LLAMA_CLOUD_API_KEY")
        return cls(
            api_key=settings.llama_cloud_api_key.get_secret_value(),
            base_url=settings.llama_cloud_base_url,
            tier=settings.llama_parse_tier,
            timeout_s=settings.parse_timeout_s,
            max_bytes=settings.max_bytes,
        )

    @staticmethod
    def readable_types() -> frozenset[str]:
        return formats.llamaparse_types()

    @staticmethod
    def formats_read() -> str:
        return f"LlamaParse reads ({formats.llamaparse_source()}): " + ", ".join(
            f".{ext}" for ext in formats.llamaparse_extensions()
        )

    def parse(self, data: bytes, raw: RawFile) -> ParsedDocument:
        if not data:
            raise BadDocument("empty document (0 bytes)")
        if len(data) > self.max_bytes:
            raise DocumentTooLarge(f"document is {len(data):,} bytes, over the limit of {self.max_bytes:,}")
        deadline = time.monotonic() + self.timeout_s
        model, calls, result = f"parse@{self.tier}", 0, None
        try:
            with _mapped_errors():
                calls += 1
                uploaded = self.client.files.create(
                    file=(raw.filename or "document", data, raw.content_type or "application/octet-stream"),
                    purpose="parse",
                )
                calls += 1
                job = self.client.parsing.create(tier=self.tier, version="latest", file_id=uploaded.id)
                job_id, status, error = job.id, job.status, job.error_message
                delay = self.poll_initial_s
                while status not in _DONE:
                    if time.monotonic() + delay > deadline:
                        raise BackendUnavailable(
                            f"LlamaParse job {job_id} not done after {self.timeout_s:g} s (status {status})"
                        )
                    time.sleep(delay)
                    delay = min(delay * 2, self.poll_max_s)
                    calls += 1
                    polled = self.client.parsing.get(job_id).job
                    status, error = polled.status, polled.error_message
                if status != "COMPLETED":
                    raise BadDocument(
                        f"LlamaParse job {job_id} {status.lower()}: {error or 'no reason given'}"
                    )
                calls += 1
                result = self.client.parsing.get(job_id, expand=["markdown", "text"])
        finally:  # the requests were sent (and a finished job billed) whatever happens next
            pages = len(_pages(result)) if result is not None else 0
            credits = metering.credits_of(result) if result is not None else 0.0
            metering.report("llamacloud", model, remote_calls=calls, pages_billed=pages, credits=credits)
        return _to_document(result)


def _pages(result: Any) -> list:
    """The result's pages in order: markdown pages, or text pages when the tier gave no markdown (fast)."""
    pages = result.markdown.pages if result.markdown and result.markdown.pages else None
    if pages is None:
        pages = result.text.pages if result.text and result.text.pages else []
    return sorted(pages, key=lambda page: page.page_number)


def _to_document(result: Any) -> ParsedDocument:
    pages = _pages(result)
    parts, warnings = [], []
    for page in pages:
        parts.append(f"<!-- page {page.page_number} -->")
        body = getattr(page, "markdown", None)
        if body is None:
            body = getattr(page, "text", None)
        if getattr(page, "success", True) and body is not None:
            parts.append(body.strip())
        else:
            warnings.append(f"page {page.page_number}: LlamaParse failed ({getattr(page, 'error', '?')})")
    document = from_markdown(
        "\n\n".join(parts) + "\n", parser="llamacloud/llamaparse", warnings=warnings, pages=len(pages) or None
    )
    if result.text and result.text.pages:  # LlamaParse's own plain text, page by page
        document.text = "\n\n".join(
            page.text.strip() for page in sorted(result.text.pages, key=lambda p: p.page_number)
        )
    return document


class _mapped_errors:
    """SDK exceptions -> docflow's error tree (retryable or not)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            return False
        import llama_cloud

        if isinstance(exc, llama_cloud.APIConnectionError):  # includes APITimeoutError
            raise BackendUnavailable(f"LlamaCloud unreachable: {exc}") from exc
        if isinstance(exc, llama_cloud.APIStatusError):
            code = exc.status_code
            if code in (401, 403):
                raise ConfigError(f"LlamaCloud rejected the API key ({code})") from exc
            if code in (408, 409, 429) or code >= 500:
                raise BackendUnavailable(f"LlamaCloud answered {code}: {exc.message}") from exc
            raise BadDocument(f"LlamaCloud refused the document ({code}): {exc.message}") from exc
        if isinstance(exc, llama_cloud.APIResponseValidationError | llama_cloud.APIError):
            raise BackendUnavailable(f"LlamaCloud sent an unexpected answer: {exc}") from exc
        return False
