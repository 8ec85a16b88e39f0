"""File formats known by name, and the formats LlamaParse reads: data/formats.yaml, read once.

`type_by_extension` is what the sniffer falls back to when a file's bytes do not tell its format;
`llamaparse_types` is what the LlamaParse backend reads (`docflow.backends.readable_types`).
"""

import functools
from pathlib import Path, PurePosixPath

import yaml

from docflow.errors import ConfigError
from docflow.settings import data_dir

CATEGORIES = ("documents", "images", "spreadsheets", "audio")


@functools.cache
def _table(path: Path | None = None) -> dict:
    path = path or data_dir() / "formats.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    types = {str(ext).lower(): str(mime) for ext, mime in raw["types"].items()}
    llama = raw["llamaparse"]
    extensions = [str(ext).lower() for category in CATEGORIES for ext in llama[category]]
    if missing := sorted(set(extensions) - set(types)):
        raise ConfigError(f"{path}: LlamaParse extensions without a type in `types`: {', '.join(missing)}")
    return {"types": types, "llamaparse": extensions, "source": str(llama["source"])}


def type_by_extension(filename: str) -> str | None:
    """The content type a file of this name's extension has, or None for an extension not listed."""
    return _table()["types"].get(PurePosixPath(filename).suffix.lower().lstrip("."))


def llamaparse_extensions() -> tuple[str, ...]:
    return tuple(_table()["llamaparse"])


def llamaparse_source() -> str:
    return _table()["source"]


@functools.cache
def llamaparse_types() -> frozenset[str]:
    """The content types of the files LlamaParse reads (by the extensions it lists)."""
    types = _table()["types"]
    return frozenset(types[ext] for ext in llamaparse_extensions())
