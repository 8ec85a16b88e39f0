"""The local embedding model run by torch without transformers and sentence-transformers.

A run worker embeds every document's chunks, so it needs torch's kernels; it does not need transformers and
sentence-transformers, whose imports (scikit-learn and scipy among them) take more memory than torch itself,
nor its own private copy of the weights. `CompactModel` is `light.LightModel` (the folder's tokenizer,
configuration and memory-mapped safetensors weights) with the forward done by torch on those weights as they
lie in the file: the pages are shared by every process on the machine that embeds with the same model, and
torch computes as the sentence-transformers model does (same kernels, the same vectors up to float rounding).

Folders `light` does not support (another architecture, a Dense layer, a prompt...) are loaded by
sentence-transformers as before (`local.load_model`).
"""

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from docflow.backends.embed.light import LightModel


def _as_tensor(array: np.ndarray) -> Any:
    """A torch view of a read-only memory-mapped array (no copy). torch warns that the array is not
    writable: nothing writes to the weights."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


class CompactModel(LightModel):
    """A sentence-transformers BERT folder embedded by torch over its memory-mapped weights; the encode
    signature of a SentenceTransformer, as `LocalEmbedder` calls it."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__(folder)
        self._t_embeddings = {k: _as_tensor(v) for k, v in self._embeddings.items()}
        self._t_layers = [{k: tuple(_as_tensor(a) for a in v) for k, v in w.items()} for w in self._layers]

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(  # type: ignore[override]
        self, texts: Sequence[str], batch_size: int = 32, **_options: Any
    ) -> np.ndarray:
        """Unit-length embeddings, one row per text (float32). torch's threads are the process's
        (`local.limit_threads`)."""
        import torch

        with torch.inference_mode():
            return self._encode(texts, batch_size)

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        spec, emb = self.spec, self._t_embeddings
        batch, length = ids.shape
        size, eps = (spec.hidden_size,), spec.layer_norm_eps
        ids_t, types_t = torch.from_numpy(ids), torch.from_numpy(types)
        x = F.embedding(ids_t, emb["word"]) + emb["position"][:length][None]
        x = x + F.embedding(types_t, emb["type"])
        x = F.layer_norm(x, size, emb["ln_w"], emb["ln_b"], eps)
        # what transformers adds to the scores of padded keys
        bias = (1.0 - torch.from_numpy(mask))[:, None, None, :] * torch.finfo(torch.float32).min
        head_dim = spec.hidden_size // spec.heads

        def heads(y):  # (batch, length, hidden) -> (batch, heads, length, head_dim)
            return y.view(batch, length, spec.heads, head_dim).transpose(1, 2)

        activation = F.relu if spec.activation == "relu" else F.gelu  # BERT's exact (erf) GELU
        for w in self._t_layers:
            q, k, v = (heads(F.linear(x, *w[name])) for name in ("query", "key", "value"))
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            context = context.transpose(1, 2).reshape(batch, length, spec.hidden_size)
            x = F.layer_norm(F.linear(context, *w["attention_out"]) + x, size, *w["ln1"], eps)
            inner = activation(F.linear(x, *w["intermediate"]))
            x = F.layer_norm(F.linear(inner, *w["output"]) + x, size, *w["ln2"], eps)
        return x.numpy()
