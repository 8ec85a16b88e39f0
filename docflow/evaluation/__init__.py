"""`docflow eval MANIFEST`: process the manifest's documents with docflow's five steps and score them.

Manifest format (../shared/eval/README.md): CSV with `path,doc_type,truth_path,...`; paths are absolute or
relative to the manifest's folder; `doc_type` and `truth_path` may be empty (e.g. a holdout manifest).
Sections of the report: classification, fields (and, where truth has them, parse and retrieval — see
`docflow.evaluation.metrics`), each also summarised per source folder and per document type; with
`folds`, the learned classifier is scored on documents it was not trained on (`docflow.evaluation.folds`).

The documents run through `pipeline.STEPS`, the functions the assets call, in worker processes (one per
core by default) rather than one Dagster run each: the eval measures what the steps make of a document,
and Dagster's own path is measured by `docflow bench`. With `reuse_parse`, a document parsed before keeps
its stored parse, so a change to classification or extraction is measured without parsing and OCR again.
"""

import csv
import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from docflow import ingest, pipeline
from docflow.bucket import make_doc_id
from docflow.errors import NotFound
from docflow.evaluation import metrics
from docflow.evaluation.provenance import located_section
from docflow.pipeline import Runtime, config_fingerprint
from docflow.runtime import bucket_for, runtime
from docflow.settings import Settings
from docflow.store import Store

EVAL_TENANT = "eval"


@dataclass
class Item:
    """One manifest row with what the pipeline made of it."""

    path: Path
    doc_type: str  # truth, '' when unknown
    truth: dict[str, Any]
    truth_dir: Path | None
    doc_id: str

    @property
    def folder(self) -> str:
        """The source folder the document came from (`docs/<folder>/<file>` in the eval sets)."""
        return self.path.parent.name


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
                    doc_id=make_doc_id(tenant, sha256, path.name),  # until registered
                )
            )
    return items


def select(items: list[Item], folders: Iterable[str] = (), doc_types: Iterable[str] = ()) -> list[Item]:
    """The items in any of `folders` and of any of `doc_types` (an empty filter keeps everything)."""
    folders, doc_types = set(folders), set(doc_types)
    return [
        i
        for i in items
        if (not folders or i.folder in folders) and (not doc_types or i.doc_type in doc_types)
    ]


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


# --- processing ---------------------------------------------------------------------------------------

_WORKER_RT: Runtime | None = None
PARSE_STEPS = ("raw_file", "parsed_markdown")


def worker_pool(
    workers: int | None, jobs: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """Spawned processes, one per core unless `workers` says otherwise and never more than `jobs`, each held
    to one thread per numeric library: the OCR and embedding libraries would otherwise each take all cores."""
    n = max(1, min(workers or os.cpu_count() or 1, jobs))
    return ProcessPoolExecutor(n, get_context("spawn"), _start_worker, (initializer, initargs))


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if initializer is not None:
        initializer(*initargs)


def _init_worker(settings: Settings) -> None:
    global _WORKER_RT
    _WORKER_RT = Runtime(
        store=Store(settings.database_url or ""), bucket=bucket_for(settings), settings=settings
    )


def _process_one(doc_id: str, steps: tuple[str, ...]) -> tuple[str, float]:
    assert _WORKER_RT is not None
    started = time.perf_counter()
    try:
        pipeline.process(_WORKER_RT, doc_id, steps)
    except Exception as exc:  # a retryable error in a pipeline run; here it is this document's result
        _WORKER_RT.store.set_status(doc_id, "failed", error=f"{type(exc).__name__}: {exc}")
    return doc_id, time.perf_counter() - started


def _plan(rt: Runtime, items: list[Item], force: bool, reuse_parse: bool) -> dict[str, tuple[str, ...]]:
    """Which steps each document needs: none when done with this configuration (unless `force`)."""
    fingerprint = config_fingerprint(rt.settings)
    plan: dict[str, tuple[str, ...]] = {}
    for doc_id in dict.fromkeys(i.doc_id for i in items):
        doc = rt.store.get_document(doc_id)
        if not force and doc.status == "done" and doc.config_fingerprint == fingerprint:
            continue
        steps = tuple(pipeline.STEPS)
        if reuse_parse and doc.sha256:
            try:
                rt.store.load_parsed(doc_id)
                steps = tuple(s for s in steps if s not in PARSE_STEPS)
            except NotFound:
                pass
        plan[doc_id] = steps
    return plan


def process_items(
    rt: Runtime,
    items: list[Item],
    force: bool = False,
    reuse_parse: bool = False,
    workers: int | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, float]:
    """Upload, register and process the items' documents; returns the seconds each processed one took."""
    for item in items:  # bytes the tenant has under another name keep the id they are stored under
        up = ingest.plan_upload(item.path, item.path.parent, "", EVAL_TENANT)
        item.doc_id = ingest.upload(rt.bucket, rt.store, up).doc_id
    plan = _plan(rt, items, force, reuse_parse)
    names = {i.doc_id: i.path.name for i in items}
    progress(f"{len(plan)} of {len(items)} documents to process")
    seconds: dict[str, float] = {}
    if not plan:
        return seconds
    with worker_pool(workers, len(plan), _init_worker, (rt.settings,)) as pool:
        futures = [pool.submit(_process_one, doc_id, steps) for doc_id, steps in plan.items()]
        for n, future in enumerate(as_completed(futures), 1):
            doc_id, took = future.result()
            seconds[doc_id] = took
            progress(f"[{n}/{len(plan)}] {names[doc_id]}: {took:.1f} s")
    return seconds


# --- the report ---------------------------------------------------------------------------------------


def summary(rt: Runtime, items: list[Item], corpus: list[Item]) -> dict[str, Any]:
    """The headline number of each section over `items` (retrieval judged against all of `corpus`)."""
    cls = metrics.classification(rt, items)
    fld = metrics.fields(rt, items)
    parse = metrics.parse_section(rt, items, rendered=False)
    ret = metrics.retrieval_section(rt, items, corpus=corpus)
    return {
        "n": len(items),
        "classification": cls["accuracy"],
        "fields": fld["accuracy"],
        "n_fields": fld["n"],
        "text_similarity": parse["text_similarity"],
        "table_cell_recall": parse["table_cell_recall"],
        "recall_at_5": ret["recall_at_5"],
    }


def grouped(rt: Runtime, items: list[Item], key: Callable[[Item], str]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[key(item) or "(unknown)"].append(item)
    return {name: summary(rt, group, items) for name, group in sorted(groups.items())}


def run_eval(
    manifest: Path,
    settings: Settings,
    force: bool = False,
    progress: Callable[[str], None] = lambda _: None,
    folders: Iterable[str] = (),
    doc_types: Iterable[str] = (),
    reuse_parse: bool = False,
    workers: int | None = None,
    folds: int = 0,
) -> dict[str, Any]:
    """Process the selected documents of the manifest (tenant `eval`) and return the quality report."""
    started = time.perf_counter()
    items = select(load_manifest(manifest), folders, doc_types)
    if not items:
        raise ValueError(f"no document of {manifest} matches the selection")
    rt = runtime(settings)
    seconds = process_items(rt, items, force, reuse_parse, workers, progress)
    statuses = {i.doc_id: rt.store.get_document(i.doc_id) for i in items}
    failed = [i for i in items if statuses[i.doc_id].status != "done"]
    report: dict[str, Any] = {
        "manifest": str(manifest),
        "n_documents": len(items),
        "failed": len(failed),
        "failures": [{"path": str(i.path), "error": statuses[i.doc_id].error} for i in failed],
        "processed": len(seconds),
        "processing_seconds": round(sum(seconds.values()), 2),
    }
    for name, section in metrics.SECTIONS.items():
        progress(f"scoring {name}")
        report[name] = section(rt, items)
    # correct values that carry a box holding them (once here: not per folder and type like the sections)
    report["fields"]["located"] = located_section(rt, items)
    progress("scoring per folder and per type")
    report["by_folder"] = grouped(rt, items, lambda i: i.folder)
    report["by_type"] = grouped(rt, items, lambda i: i.doc_type)
    if folds:
        from docflow.evaluation.folds import classification_folds

        progress(f"classification on {folds} held-out folds")
        report["classification_folds"] = classification_folds(items, folds, rt.settings, progress)
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report
