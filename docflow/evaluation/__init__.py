"""`docflow eval MANIFEST`: process the manifest's documents through the real pipeline and score them.

Manifest format (../shared/eval/README.md): CSV with `path,doc_type,truth_path,...`; paths are absolute or
relative to the manifest's folder; `doc_type` and `truth_path` may be empty (e.g. a holdout manifest).
Sections of the report: classification, fields (and, where truth has them, parse and retrieval — see
`docflow.evaluation.metrics`).
"""

import csv
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docflow import services
from docflow.bucket import make_doc_id
from docflow.evaluation import metrics
from docflow.settings import Settings

EVAL_TENANT = "eval"


@dataclass
class Item:
    """One manifest row with what the pipeline made of it."""

    path: Path
    doc_type: str  # truth, '' when unknown
    truth: dict[str, Any]
    truth_dir: Path | None
    doc_id: str


def load_manifest(manifest: Path, tenant: str = EVAL_TENANT) -> list[Item]:
    base = manifest.resolve().parent
    items = []
    with manifest.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = _resolve(base, row["path"])
            truth_path = _resolve(base, row["truth_path"]) if row.get("truth_path") else None
            truth = json.loads(truth_path.read_text(encoding="utf-8")) if truth_path else {}
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            items.append(
                Item(
                    path=path,
                    doc_type=row.get("doc_type") or truth.get("doc_type", ""),
                    truth=truth,
                    truth_dir=truth_path.parent if truth_path else None,
                    doc_id=make_doc_id(tenant, sha256),
                )
            )
    return items


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def run_eval(
    manifest: Path,
    settings: Settings,
    force: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Process every document of the manifest (tenant `eval`) and return the quality report."""
    from docflow.runner import run_paths

    started = time.perf_counter()
    items = load_manifest(manifest)
    summaries = {
        s.doc_id: s for s in run_paths([i.path for i in items], EVAL_TENANT, settings, force, progress)
    }
    rt = services.runtime(settings)
    report: dict[str, Any] = {
        "manifest": str(manifest),
        "n_documents": len(items),
        "failed": sum(1 for i in items if summaries[i.doc_id].status != "done"),
        "failures": [
            {"path": str(i.path), "error": summaries[i.doc_id].error}
            for i in items
            if summaries[i.doc_id].status != "done"
        ],
    }
    for name, section in metrics.SECTIONS.items():
        progress(f"scoring {name}")
        report[name] = section(rt, items)
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report
