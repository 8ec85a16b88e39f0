"""Sentence embeddings without torch: a numpy forward of a sentence-transformers BERT model folder.

`docflow search` and `docflow ask` embed one short query per process. Importing torch and
sentence-transformers for that costs far more than the query itself, so the query is embedded here from the
same folder the local embedder reads (tokenizer.json, model.safetensors, modules.json, the pooling config),
giving the same vectors up to float rounding.

Only what the folder's configuration asks for is computed: a BERT encoder (absolute positions, GELU), the
pooling modes of `1_Pooling/config.json`, and unit length as `LocalEmbedder` returns. Anything else (another
architecture, a Dense layer, a default prompt, half-precision weights) raises `UnsupportedModel`, and callers
use the sentence-transformers embedder instead.
"""

import json
import math
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tokenizers import Tokenizer

from docflow.errors import ConfigError

MODULE_TRANSFORMER = "Transformer"
MODULE_POOLING = "Pooling"
MODULE_NORMALIZE = "Normalize"
# sentence-transformers' order when a pooling config turns several modes on: their outputs are concatenated
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SUPPORTED_POOLING = ("cls", "max", "mean", "mean_sqrt_len_tokens")
TRANSFORMER_CONFIG_KEYS = {"max_seq_length", "do_lower_case"}  # other keys may change the inputs: not ours
_NEG = np.float32(np.finfo(np.float32).min)  # what transformers adds to the scores of masked keys

_MODELS: dict[str, "LightModel"] = {}  # model folder -> loaded model, once per process
_LOCK = threading.Lock()


class UnsupportedModel(ConfigError):
    """The model folder needs something this numpy forward does not implement; use sentence-transformers."""


@dataclass(frozen=True)
class ModelSpec:
    """What a sentence-transformers folder asks for, as far as this module implements it."""

    transformer_dir: Path
    max_seq_length: int
    lowercase: bool  # sentence_bert_config's do_lower_case: the text is lower-cased before the tokenizer
    pooling: tuple[str, ...]
    hidden_size: int
    layers: int
    heads: int
    activation: str
    layer_norm_eps: float


def read_spec(folder: str | Path) -> ModelSpec:
    """The model's configuration, or `UnsupportedModel` naming the first thing that is not implemented."""
    root = Path(folder)
    modules = _read_json(root / "modules.json", required=True)
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != MODULE_TRANSFORMER or kinds[1:2] != [MODULE_POOLING]:
        raise UnsupportedModel(
            f"{root}: modules {kinds} (supported: Transformer, Pooling, optional Normalize)"
        )
    if any(k != MODULE_NORMALIZE for k in kinds[2:]):
        raise UnsupportedModel(f"{root}: module {kinds[2:]} after pooling is not supported")
    transformer_dir = root / str(modules[0].get("path") or "")
    pooling_dir = root / str(modules[1].get("path") or "")

    st_config = _read_json(root / "config_sentence_transformers.json")
    if st_config.get("default_prompt_name"):
        raise UnsupportedModel(
            f"{root}: a default prompt ({st_config['default_prompt_name']!r}) is not supported"
        )

    tf_config = _read_json(transformer_dir / "sentence_bert_config.json")
    unknown = set(tf_config) - TRANSFORMER_CONFIG_KEYS
    if unknown:
        raise UnsupportedModel(f"{root}: transformer options {sorted(unknown)} are not supported")

    config = _read_json(transformer_dir / "config.json", required=True)
    if config.get("model_type") != "bert":
        raise UnsupportedModel(f"{root}: model type {config.get('model_type')!r} (supported: bert)")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModel(f"{root}: position embeddings {config['position_embedding_type']!r}")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise UnsupportedModel(f"{root}: a decoder is not supported")
    activation = config.get("hidden_act", "gelu")
    if activation not in ("gelu", "relu"):
        raise UnsupportedModel(f"{root}: activation {activation!r} (supported: gelu, relu)")
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    if hidden % heads:
        raise UnsupportedModel(f"{root}: hidden size {hidden} is not a multiple of {heads} heads")

    # sentence-transformers: its own max_seq_length, else the tokenizer's limit capped by the positions
    positions = int(config.get("max_position_embeddings", 512))
    max_seq = tf_config.get("max_seq_length")
    if max_seq is None:
        tokenizer_config = _read_json(transformer_dir / "tokenizer_config.json")
        max_seq = min(int(tokenizer_config.get("model_max_length", positions)), positions)

    return ModelSpec(
        transformer_dir=transformer_dir,
        max_seq_length=int(max_seq),
        lowercase=bool(tf_config.get("do_lower_case", False)),
        pooling=_pooling_modes(pooling_dir, hidden),
        hidden_size=hidden,
        layers=int(config["num_hidden_layers"]),
        heads=heads,
        activation=activation,
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
    )


def _pooling_modes(folder: Path, hidden: int) -> tuple[str, ...]:
    config = _read_json(folder / "config.json", required=True)
    dimension = config.get("embedding_dimension", config.get("word_embedding_dimension", hidden))
    if int(dimension) != hidden:
        raise UnsupportedModel(f"{folder}: pooling dimension {dimension} differs from the model's {hidden}")
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(name for key, name in LEGACY_POOLING_KEYS.items() if config.get(key)) or ("mean",)
    unsupported = [m for m in modes if m not in SUPPORTED_POOLING]
    if unsupported:
        raise UnsupportedModel(f"{folder}: pooling {unsupported} (supported: {', '.join(SUPPORTED_POOLING)})")
    return modes


def _read_json(path: Path, required: bool = False) -> Any:
    if not path.is_file():
        if required:
            raise UnsupportedModel(f"{path} not found")
        return {}
    return json.loads(path.read_text())


class LightModel:
    """Tokenizer and weights of one model folder, and the numpy forward over them."""

    def __init__(self, folder: str | Path):
        self.spec = spec = read_spec(folder)
        self.tokenizer = _load_tokenizer(spec)
        weights = _load_weights(spec.transformer_dir / "model.safetensors")
        self._embeddings = _embedding_weights(weights)
        self._layers = [_layer_weights(weights, i) for i in range(spec.layers)]

    @property
    def dimension(self) -> int:
        return self.spec.hidden_size * len(self.spec.pooling)

    def encode(self, texts: Sequence[str], batch_size: int = 32, threads: int = 1) -> np.ndarray:
        """Unit-length embeddings, one row per text (float32); BLAS on `threads` threads (0: its default)."""
        with blas_threads(threads):
            return self._encode(texts, batch_size)

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        if self.spec.lowercase:
            texts = [t.lower() for t in texts]
        encodings = self.tokenizer.encode_batch(list(texts))
        # similar lengths together, as sentence-transformers batches: less padding
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out = np.zeros((len(encodings), self.dimension), dtype=np.float32)
        for start in range(0, len(order), max(1, batch_size)):
            batch = order[start : start + batch_size]
            out[batch] = self._encode_batch([encodings[i] for i in batch])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _encode_batch(self, encodings: list[Any]) -> np.ndarray:
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), length), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros((len(encodings), length), dtype=np.float32)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            types[row, :n] = e.type_ids
            mask[row, :n] = 1.0
        hidden = self._forward(ids, types, mask)
        return _pool(hidden, mask, self.spec.pooling)

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        spec = self.spec
        emb = self._embeddings
        batch, length = ids.shape
        x = emb["word"][ids] + emb["position"][:length][None] + emb["type"][types]
        x = _layer_norm(x, emb["ln_w"], emb["ln_b"], spec.layer_norm_eps).reshape(batch * length, -1)
        bias = ((1.0 - mask) * _NEG)[:, None, None, :]  # (batch, 1, 1, keys)
        head_dim = spec.hidden_size // spec.heads
        scale = np.float32(1.0 / math.sqrt(head_dim))

        # (batch * length, hidden) -> (batch, heads, length, head_dim)
        def heads(y: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(y.reshape(batch, length, spec.heads, head_dim).transpose(0, 2, 1, 3))

        for w in self._layers:
            q = heads(_linear(x, w["query"]))
            k = heads(_linear(x, w["key"]))
            v = heads(_linear(x, w["value"]))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, spec.hidden_size)
            x = _layer_norm(_linear(context, w["attention_out"]) + x, *w["ln1"], spec.layer_norm_eps)
            inner = _activation(_linear(x, w["intermediate"]), spec.activation)
            x = _layer_norm(_linear(inner, w["output"]) + x, *w["ln2"], spec.layer_norm_eps)
        return x.reshape(batch, length, spec.hidden_size)


def _linear(x: np.ndarray, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """torch's Linear: the weight is stored (out, in); its transposed view goes to BLAS as is, no copy."""
    weight, bias = weights
    return x @ weight.T + bias


@contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """At most `threads` BLAS threads inside the block (0: leave BLAS alone). OpenBLAS's default, a thread per
    core, spins each thread for every small product of a short query and is far slower on a busy machine."""
    if threads <= 0:
        yield
        return
    with threadpool_limits(threads, user_api="blas"):
        yield


def _load_tokenizer(spec: ModelSpec) -> Any:
    path = spec.transformer_dir / "tokenizer.json"
    if not path.is_file():
        raise UnsupportedModel(f"{path} not found (a fast tokenizer is needed)")
    tokenizer = Tokenizer.from_file(str(path))
    # the file may carry a fixed padding and a shorter truncation of its own; the model's limit applies
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=spec.max_seq_length, strategy="longest_first", direction="right")
    return tokenizer


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file, memory-mapped: nothing is read or copied up front, and a
    query reads only the rows of its own tokens from the embedding table. (safetensors.numpy reads the whole
    file into memory.) The format: an 8-byte little-endian header length, a JSON header naming each tensor's
    dtype, shape and byte range, then the data."""
    if not path.is_file():
        raise UnsupportedModel(f"{path} not found (safetensors weights are needed)")
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    weights = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue  # other dtypes (position ids, half-precision weights) fail in _tensor if they are needed
        start, end = info["data_offsets"]
        # some checkpoints keep the encoder under the task head's name
        weights[name.removeprefix("bert.")] = data[start:end].view("<f4").reshape(info["shape"])
    return weights


def _tensor(weights: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in weights:
        raise UnsupportedModel(f"float32 weight {name!r} not found in the checkpoint")
    return weights[name]


def _embedding_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = "embeddings."
    return {
        "word": _tensor(weights, p + "word_embeddings.weight"),
        "position": _tensor(weights, p + "position_embeddings.weight"),
        "type": _tensor(weights, p + "token_type_embeddings.weight"),
        "ln_w": _tensor(weights, p + "LayerNorm.weight"),
        "ln_b": _tensor(weights, p + "LayerNorm.bias"),
    }


def _layer_weights(weights: dict[str, np.ndarray], i: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    p = f"encoder.layer.{i}."

    def pair(name: str) -> tuple[np.ndarray, np.ndarray]:
        return _tensor(weights, f"{p}{name}.weight"), _tensor(weights, f"{p}{name}.bias")

    return {
        "query": pair("attention.self.query"),
        "key": pair("attention.self.key"),
        "value": pair("attention.self.value"),
        "attention_out": pair("attention.output.dense"),
        "ln1": pair("attention.output.LayerNorm"),
        "intermediate": pair("intermediate.dense"),
        "output": pair("output.dense"),
        "ln2": pair("output.LayerNorm"),
    }


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    return centered / np.sqrt(variance + np.float32(eps)) * weight + bias


def _activation(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "relu":
        return np.maximum(x, 0, out=x)
    # BERT's exact GELU, x * (1 + erf(x / sqrt 2)) / 2, in place: the inputs are large for long texts
    y = erf(x * np.float32(1 / math.sqrt(2)))
    y += 1.0
    y *= x
    y *= 0.5
    return y


ERF_P = np.float32(0.3275911)
ERF_A = tuple(np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise (numpy has none; scipy's costs an import): Abramowitz and Stegun
    7.1.26, absolute error below 1.5e-7, about float32's resolution."""
    a = np.abs(x)
    t = a * ERF_P
    t += 1.0
    np.reciprocal(t, out=t)
    poly = np.full_like(t, ERF_A[0])
    for coefficient in ERF_A[1:]:  # Horner: ((a1 t + a2) t + ...) t
        poly *= t
        poly += coefficient
    poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    a *= poly
    np.subtract(1.0, a, out=a)  # erf(|x|)
    return np.copysign(a, x, out=a)


def _pool(hidden: np.ndarray, mask: np.ndarray, modes: tuple[str, ...]) -> np.ndarray:
    """sentence-transformers' Pooling over the real (unmasked) tokens, modes concatenated in config order."""
    weights = mask[:, :, None]
    count = np.maximum(weights.sum(axis=1), 1e-9)
    outputs = []
    for mode in modes:
        if mode == "cls":
            outputs.append(hidden[:, 0])
        elif mode == "max":
            outputs.append(np.where(weights > 0, hidden, -np.inf).max(axis=1))
        else:
            total = (hidden * weights).sum(axis=1)
            outputs.append(total / (count if mode == "mean" else np.sqrt(count)))
    return np.concatenate(outputs, axis=1)


def load_light_model(folder: str | Path) -> LightModel:
    """The model of `folder`, loaded once per process."""
    key = str(Path(folder).resolve())
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = LightModel(key)
        return _MODELS[key]


class LightEmbedder:
    """The same vectors as `LocalEmbedder` for a supported model folder, computed with numpy."""

    def __init__(
        self, folder: str | Path, *, name: str | None = None, batch_size: int = 32, threads: int = 1
    ):
        self._model = load_light_model(folder)
        self.name = f"local/{name or Path(folder).name}"
        self.dimension = self._model.dimension
        self.batch_size = max(1, batch_size)
        self.threads = threads

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order."""
        if not texts:
            return []
        return self._model.encode(texts, self.batch_size, self.threads).tolist()
