"""`docflow bench`: the performance report. Each section measures one thing and returns a flat-ish dict;
sections are registered in SECTIONS and selected with `--only`. Sections import their heavy parts lazily."""

import importlib
import json
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

from docflow.settings import Settings

# name -> "module:function"; the function takes (settings, BenchOptions, progress) and returns a dict.
SECTIONS: dict[str, str] = {
    "pipeline": "docflow.bench.pipeline:pipeline_section",
    "search": "docflow.bench.search:search_section",
    "parse": "docflow.bench.parse:parse_section",
    "api": "docflow.bench.api:api_section",
    "sensor": "docflow.bench.sensor:sensor_section",
    "fairness": "docflow.bench.fairness:fairness_section",
    "partitions": "docflow.bench.partitions:partitions_section",
    "workers": "docflow.bench.workers:workers_section",
}
# The headline numbers are also copied to the top level of the report.
HEADLINE = {
    "pipeline": [
        "docs",
        "pages",
        "wall_s",
        "docs_per_min",
        "bare_wall_s",
        "overhead_ratio",
        "latency_p50_s",
        "latency_p95_s",
        "single_latency_p50_s",
        "single_latency_p95_s",
        "per_asset_s",
        "peak_rss_mb",
        "peak_pss_mb",
        "excess",
    ],
    "search": ["search_p50_ms", "search_p95_ms", "search_worst_p95_ms", "search_worst_recall_at_10"],
    "api": ["ack_ms_p95", "floor_ack_ms_p95", "p95_ratio_to_floor"],
    "sensor": ["sensor_tick_s"],
    "fairness": ["small_p95_ratio", "high_priority_overtook"],
    "workers": ["docs_per_hour_per_worker", "scaling"],
    "partitions": ["tick_ratio_retention_on", "partitions_tab_ratio_retention_on"],
}


class BenchOptions:
    def __init__(self, docs: int = 100, extra: dict[str, Any] | None = None) -> None:
        self.docs = docs
        self.extra = extra or {}

    def ints(self, key: str, default: Sequence[int]) -> list[int]:
        """A list option: `--extra sizes=1000,5000` arrives as text, a single value as a number."""
        value = self.extra.get(key, default)
        if isinstance(value, int | str):
            value = str(value).split(",")
        return [int(v) for v in value]

    def flag(self, key: str, default: bool) -> bool:
        """A yes/no option: `--extra backfill=0` (or false, no, off) turns it off."""
        value = str(self.extra.get(key, default)).strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--extra {key}={value}: expected 1/0, true/false, yes/no or on/off")


def free_port() -> int:
    """A TCP port free on the loopback now, for a service a section starts."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> dict[str, Any]:
    import os

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def run_bench(
    settings: Settings,
    options: BenchOptions,
    only: list[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    unknown = set(only or []) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown bench section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}")
    report: dict[str, Any] = {"machine": machine()}
    for name, target in SECTIONS.items():
        if only and name not in only:
            continue
        module_name, _, attr = target.partition(":")
        progress(f"bench {name}...")
        started = time.perf_counter()
        section = getattr(importlib.import_module(module_name), attr)(settings, options, progress)
        section.setdefault("section_s", round(time.perf_counter() - started, 2))
        report[name] = section
        report.update({k: section[k] for k in HEADLINE.get(name, []) if k in section})
    return report


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str)
