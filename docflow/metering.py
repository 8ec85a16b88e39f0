"""Usage metering: what the pipeline's steps actually did, per tenant and UTC day. No Dagster here.

A step runs inside `metered()`. Backends report to the current meter (`report(...)`) what they did: the
remote requests they sent, the tokens of each OpenAI response's `usage`, the pages (and credits) LlamaCloud
bills per job, the pages read by OCR. The pipeline adds the step's own counts (documents and bytes at
`raw_file`, pages at `parsed_markdown`) and writes the lines in one statement (`store/usage.py`) when the
step ends, whether it succeeded or not: a failed attempt's remote calls were made, so they count, and the
retry that follows counts its own. A document processed again (a new configuration, `--force`) is work
done again and counts again.

Cost is an estimate: the counts times the prices in `data/prices.yaml` (`DOCFLOW_PRICES_PATH`), computed
when a line is written, with the prices of that moment. It is not a bill.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

COUNTS = (
    "documents",
    "pages",
    "bytes",
    "ocr_pages",
    "remote_calls",
    "input_tokens",
    "output_tokens",
    "pages_billed",
    "credits",
)


@dataclass
class Line:
    """What one backend (and model) did within one step."""

    documents: int = 0
    pages: int = 0
    bytes: int = 0
    ocr_pages: int = 0
    remote_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    pages_billed: int = 0
    credits: float = 0.0  # as the remote service reported them (LlamaCloud), when it did

    def add(self, **counts: float) -> None:
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + (value or 0))


class Meter:
    """Lines keyed by (backend, model); thread-safe, for a backend that reports from worker threads."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], Line] = {}
        self._lock = threading.Lock()

    def add(self, backend: str, model: str = "", **counts: float) -> None:
        with self._lock:
            self.lines.setdefault((backend, model), Line()).add(**counts)

    def rows(self, prices: "Prices") -> list[dict[str, Any]]:
        """The lines with their estimated cost, for `store.usage.record`."""
        with self._lock:
            items = list(self.lines.items())
        return [
            {
                "backend": backend,
                "model": model,
                **asdict(line),
                "cost_usd": prices.cost(backend, model, line),
            }
            for (backend, model), line in items
        ]


_current: ContextVar[Meter | None] = ContextVar("docflow_meter", default=None)


@contextmanager
def metered() -> Iterator[Meter]:
    """A fresh meter for the code inside (a step); backends report to it through `report`."""
    meter = Meter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def report(backend: str, model: str = "", **counts: float) -> None:
    """Add to the current meter; outside a metered step (a query, a CLI tool) this does nothing."""
    meter = _current.get()
    if meter is not None:
        meter.add(backend, model, **counts)


def report_openai(model: str, response: Any) -> None:
    """One answered OpenAI(-compatible) request with the tokens of its `usage` (servers may omit it)."""
    usage = getattr(response, "usage", None)
    report(
        "openai",
        model,
        remote_calls=1,
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


def openai_call(model: str, call: Callable[[], T]) -> T:
    """`call()` (one OpenAI request) metered: an answer with its tokens, a failure as a call without any."""
    try:
        response = call()
    except Exception:
        report("openai", model, remote_calls=1)
        raise
    report_openai(model, response)
    return response


def credits_of(job: Any) -> float:
    """Credits a LlamaCloud job (or its result) reports in `usage.credits`; 0 when not recorded yet."""
    for holder in (job, getattr(job, "job", None)):
        usage = getattr(holder, "usage", None)
        value = getattr(usage, "credits", None)
        if isinstance(value, int | float):
            return float(value)
    return 0.0


# --- prices ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """Prices of one backend/model in USD; `per_page` may depend on the tier (`model` "parse@<tier>")."""

    input_per_1k_tokens: float = 0.0
    output_per_1k_tokens: float = 0.0
    per_page: float | dict[str, float] = 0.0
    per_call: float = 0.0
    per_credit: float = 0.0  # when the service reports credits, they price the line instead of pages

    def page_price(self, tier: str) -> float:
        if isinstance(self.per_page, dict):
            return float(self.per_page.get(tier, self.per_page.get("*", 0.0)))
        return float(self.per_page)


class Prices:
    """The price table: backend -> model -> Price, with "*" as any other model of a backend."""

    def __init__(self, table: dict[str, dict[str, Price]]) -> None:
        self.table = table

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> "Prices":
        known = {f.name for f in fields(Price)}
        table: dict[str, dict[str, Price]] = {}
        for backend, models in (data.get("prices") or {}).items():
            table[str(backend)] = {}
            for model, entry in (models or {}).items():
                unknown = set(entry or {}) - known
                if unknown:
                    raise ValueError(f"prices: {backend}/{model}: unknown keys {sorted(unknown)}")
                table[str(backend)][str(model)] = Price(**(entry or {}))
        return cls(table)

    def price(self, backend: str, model: str) -> tuple[Price, str]:
        """The price of a backend's model, and the tier named after '@' in the model ("parse@fast")."""
        models = self.table.get(backend, {})
        name, _, tier = model.partition("@")
        for key in (model, name, "*"):
            if key in models:
                return models[key], tier
        return Price(), tier

    def cost(self, backend: str, model: str, line: Line) -> float:
        price, tier = self.price(backend, model)
        cost = line.input_tokens / 1000 * price.input_per_1k_tokens
        cost += line.output_tokens / 1000 * price.output_per_1k_tokens
        cost += line.remote_calls * price.per_call
        if line.credits and price.per_credit:
            cost += line.credits * price.per_credit
        else:
            cost += line.pages_billed * price.page_price(tier)
        return round(cost, 6)


def default_prices_path() -> Path:
    from docflow.settings import data_dir

    return data_dir() / "prices.yaml"


def load_prices(path: Path | None = None) -> Prices:
    """The price table at `path` (default data/prices.yaml), read again when the file changes."""
    path = Path(path or default_prices_path())
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return Prices({})  # no table: counts are metered, cost stays 0
    return _load(str(path), stamp)


@lru_cache(maxsize=4)
def _load(path: str, stamp: int) -> Prices:
    import yaml

    return Prices.from_mapping(yaml.safe_load(Path(path).read_text()) or {})
