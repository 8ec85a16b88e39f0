"""Backends: the work of each asset, free of Dagster.

Each concern has a Protocol and a registry keyed by a `kind` ("local", "llamacloud", "openai"). Settings pick
the kind; `get_*(settings)` builds the backend once per process and settings value (models load once) and
returns it. Equal settings give the same backend; changed settings a new one, so nothing needs clearing.
Remote backends import their client lazily and raise `MissingExtra`/`ConfigError` with a clear message.
"""

from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

from docflow.errors import ConfigError, UnsupportedFormat
from docflow.models import Classification, Extraction, ParsedDocument, RawFile
from docflow.settings import Settings


@runtime_checkable
class Parser(Protocol):
    name: str

    def parse(self, data: bytes, raw: RawFile) -> ParsedDocument: ...

    @staticmethod
    def readable_types() -> frozenset[str]:
        """The content types this backend reads (asked of the class: no client is built)."""
        ...

    @staticmethod
    def formats_read() -> str:
        """Those formats in words, for the message that refuses another."""
        ...


@runtime_checkable
class Classifier(Protocol):
    name: str

    def classify(self, data: bytes, raw: RawFile) -> Classification: ...


@runtime_checkable
class Extractor(Protocol):
    name: str

    def extract(self, parsed: ParsedDocument, classification: Classification) -> Extraction: ...


@runtime_checkable
class Embedder(Protocol):
    name: str  # e.g. "local/all-MiniLM-L6-v2"; stored with each vector so models never mix
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


PARSERS: dict[str, str] = {
    "local": "docflow.backends.parse.local:LocalParser",
    "llamacloud": "docflow.backends.parse.llamacloud:LlamaParseParser",
}
CLASSIFIERS: dict[str, str] = {
    "local": "docflow.backends.classify.local:LocalClassifier",
    "llamacloud": "docflow.backends.classify.llamacloud:LlamaCloudClassifier",
    "openai": "docflow.backends.classify.openai:OpenAIClassifier",
}
EXTRACTORS: dict[str, str] = {
    "local": "docflow.backends.extract.local:LocalExtractor",
    "llamacloud": "docflow.backends.extract.llamacloud:LlamaExtractor",
    "openai": "docflow.backends.extract.openai:OpenAIExtractor",
}
EMBEDDERS: dict[str, str] = {
    "local": "docflow.backends.embed.local:LocalEmbedder",
    "openai": "docflow.backends.embed.openai:OpenAIEmbedder",
}


def _build(registry: dict[str, str], kind: str, settings: Settings, concern: str):
    if kind not in registry:
        known = ", ".join(sorted(registry))
        raise ConfigError(f"unknown {concern} backend {kind!r}; known: {known}")
    module_name, _, attr = registry[kind].partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr).from_settings(settings)


@lru_cache(maxsize=8)  # keyed by the settings value: changed settings build a new backend, nothing to clear
def _cached(registry_name: str, kind: str, settings: Settings):
    registry = {"parse": PARSERS, "classify": CLASSIFIERS, "extract": EXTRACTORS, "embed": EMBEDDERS}
    return _build(registry[registry_name], kind, settings, registry_name)


def get_parser(settings: Settings) -> Parser:
    return _cached("parse", settings.parse_backend, settings)


@lru_cache(maxsize=4)
def _parser_class(kind: str):
    if kind not in PARSERS:
        raise ConfigError(f"unknown parse backend {kind!r}; known: {', '.join(sorted(PARSERS))}")
    module_name, _, attr = PARSERS[kind].partition(":")
    return getattr(__import__(module_name, fromlist=[attr]), attr)


def readable_types(settings: Settings) -> frozenset[str]:
    """The content types the configured parse backend reads: what the API and `raw_file` accept."""
    return _parser_class(settings.parse_backend).readable_types()


def check_readable(settings: Settings, content_type: str, filename: str = "") -> None:
    """Refuse (`UnsupportedFormat`, naming the type and the backend) a document the configured parse
    backend cannot read. The one check of the API's uploads and the pipeline's `raw_file` step."""
    kind = settings.parse_backend
    if content_type in readable_types(settings):
        return
    what = f" ({filename})" if filename else ""
    message = f"unsupported document type {content_type}{what}: DOCFLOW_PARSE_BACKEND={kind} does not read it"
    if kind != "llamacloud" and content_type in _parser_class("llamacloud").readable_types():
        message += " (LlamaParse does: DOCFLOW_PARSE_BACKEND=llamacloud)"
    raise UnsupportedFormat(f"{message}; {_parser_class(kind).formats_read()}")


def get_classifier(settings: Settings) -> Classifier:
    return _cached("classify", settings.classify_backend, settings)


def get_extractor(settings: Settings) -> Extractor:
    return _cached("extract", settings.extract_backend, settings)


def get_embedder(settings: Settings) -> Embedder:
    return _cached("embed", settings.embed_backend, settings)
