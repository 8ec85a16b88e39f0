"""The embedder for search queries: the documents' vectors, at the least cost to the process asking.

A query is one short text. With the local backend, loading torch and sentence-transformers for it costs far
more than embedding it, so a process that has not loaded them embeds queries with the numpy forward of
`light` (the same model folder, the same vectors). A process that already holds the sentence-transformers
model (a run's worker) keeps using it, and so does every model `light` does not support.
"""

import logging

from docflow import backends
from docflow.backends import Embedder
from docflow.settings import Settings

log = logging.getLogger(__name__)


def query_embedder(settings: Settings) -> Embedder:
    """An embedder whose vectors match `backends.get_embedder(settings)`'s, cheapest first."""
    if settings.embed_backend == "local":
        light = light_embedder(settings)
        if light is not None:
            return light
    return backends.get_embedder(settings)


def light_embedder(settings: Settings) -> Embedder | None:
    """The numpy embedder for the local model, or None when sentence-transformers should embed: the model is
    already loaded in this process, is not a local folder, or needs what `light` does not implement."""
    from docflow.backends.embed import local

    model, name, is_folder = local.resolve_model(settings.embed_model)
    if not is_folder or local.loaded(model):
        return None
    try:
        from docflow.backends.embed.light import LightEmbedder, UnsupportedModel
    except ImportError as exc:  # a package of the local-ml extra is missing; sentence-transformers names it
        log.info("query embeddings with sentence-transformers: %s", exc)
        return None
    try:
        return LightEmbedder(
            model, name=name, batch_size=settings.embed_batch_size, threads=settings.torch_threads
        )
    except UnsupportedModel as exc:
        log.info("query embeddings with sentence-transformers: %s", exc)
        return None
