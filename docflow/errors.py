"""The one error tree of docflow.

`BadDocument` and its children are about the input: retrying cannot help, the document is marked failed
with the message. `BackendUnavailable` is about a service: retrying may help (the asset's RetryPolicy does).
"""


class DocflowError(Exception):
    """Base of every error docflow raises on purpose."""

    retryable: bool = False


class ConfigError(DocflowError):
    """Settings are missing or inconsistent (e.g. a remote backend without its API key)."""


class MissingExtra(ConfigError, ImportError):
    """An optional package is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is required{what}: install it with `pip install 'docflow[{extra}]'`")


class BadDocument(DocflowError):
    """The document itself cannot be processed (corrupt, encrypted, unsupported, too large...)."""


class UnsupportedFormat(BadDocument):
    """The content type is not one docflow can parse."""


class DocumentTooLarge(BadDocument):
    """The document exceeds a configured limit (bytes, pages)."""


class BackendUnavailable(DocflowError):
    """A service (S3, Postgres, a remote API) failed in a way that may pass; safe to retry."""

    retryable = True


class NotFound(DocflowError):
    """A document, object or row that was asked for does not exist."""
