"""Embedding: structure-aware chunking (`chunking`, pure Python) and embedders (`local`, ...).

Embedders are built through `docflow.backends.get_embedder`; importing this package does not load torch.
"""

from docflow.backends.embed.chunking import chunk_markdown, count_tokens

__all__ = ["chunk_markdown", "count_tokens"]
