"""`docflow bench --soak MINUTES`: steady uploads with random faults, then an account of every upload.

For MINUTES, each round uploads a few documents under `<prefix>soak-<id>/` (mostly good ones made unique
from data/samples, some from the bad-input corpus, docflow.bench.badinput), sometimes restarts the embedded
S3 server (a fault), ticks the real `s3_document_sensor` and executes the runs it requests through the
Dagster instance, in this process (what the daemon would launch). At the end it drains the sensor and
reports, as JSON: documents in, processed, failed (by reason), wrong outcomes (a bad file processed or a
good one failed) and **lost** (an upload with no document, or a document left unfinished): must be 0.
"""

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from docflow.bench import BenchOptions
from docflow.bench.badinput import bad_inputs
from docflow.errors import BackendUnavailable
from docflow.orchestration.instance import dagster_instance
from docflow.runtime import REPO_ROOT, runtime
from docflow.settings import Settings
from docflow.store import bulk

SAMPLE_TYPES = {".txt", ".md", ".html"}
S3_REFUSES = {"dotdot_name", "long_name"}  # SeaweedFS (and MinIO) refuse such keys: they cannot land


def soak_section(
    settings: Settings, options: BenchOptions, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    import dagster as dg

    from docflow.defs import build_defs
    from docflow.defs.partitions import documents
    from docflow.defs.resources import DocflowResource
    from docflow.ingest import ScanCursor
    from docflow.runner import QUIET

    minutes = float(options.extra.get("minutes", 1.0))
    rng = random.Random(options.extra.get("seed", 8))
    p_bad, p_restart = float(options.extra.get("p_bad", 0.2)), float(options.extra.get("p_restart", 0.05))
    rt = runtime(settings)
    instance = dagster_instance(rt.settings)
    defs = build_defs(rt.settings)
    s3_document_sensor = defs.resolve_sensor_def("s3_document_sensor")
    run_id = uuid.uuid4().hex[:8]
    tenant = f"soak-{run_id}"
    prefix = f"{rt.settings.prefix}{tenant}/"
    samples = [p for p in sorted((REPO_ROOT / "data" / "samples").iterdir()) if p.suffix in SAMPLE_TYPES]
    objects = list(rt.bucket.list(rt.settings.prefix))  # start from now: earlier uploads are not ours
    cursor = ScanCursor(
        since=max((o.last_modified for o in objects), default=ScanCursor().since),
        seen={o.key: (o.etag, o.last_modified.timestamp()) for o in objects},
    ).dump()
    uploaded: dict[str, bool] = {}  # key -> expected to fail (a bad input)
    pending: list[tuple[str, bytes, bool]] = []  # uploads S3 refused during a fault: tried again
    stats: Counter[str] = Counter()
    requested: set[str] = set()

    def put(key: str, data: bytes, bad: bool) -> None:
        try:
            rt.bucket._client.put_object(Bucket=rt.bucket.name, Key=key, Body=data)
        except Exception:  # S3 down (a fault): the uploader tries again next round, like any client
            stats["upload_retries"] += 1
            with lock:
                pending.append((key, data, bad))
            return
        with lock:
            uploaded[key] = bad

    def tick_and_run() -> int:
        nonlocal cursor
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"docflow": DocflowResource()}
        )
        try:
            result = s3_document_sensor(context)
        except Exception as exc:  # a tick that raises is a finding: counted, and the next tick goes on
            stats["sensor_errors"] += 1
            progress(f"soak: sensor tick raised {type(exc).__name__}: {exc}")
            return 0
        stats["ticks"] += 1
        cursor = result.cursor or cursor
        for req in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(documents.name, list(req.partition_keys))
        launched = 0
        for request in result.run_requests or []:
            if request.run_key in requested:
                continue
            requested.add(request.run_key)
            job = defs.resolve_job_def(request.job_name or "process_documents")
            run = job.execute_in_process(
                partition_key=request.partition_key,
                tags=dict(request.tags),
                instance=instance,
                raise_on_error=False,
                run_config=QUIET,
            )
            stats["runs_ok" if run.success else "runs_failed"] += 1
            launched += 1
        return launched

    started = time.monotonic()
    deadline = started + minutes * 60
    rate = float(
        options.extra.get("per_minute", 30)
    )  # uploads per minute, steady, whatever the pipeline does
    lock = threading.Lock()

    next_restart = [started + min(20.0, minutes * 20)]

    def uploader() -> None:  # steady uploads and faults in the background; the sensor and runs go on
        n = 0
        while time.monotonic() < deadline:
            time.sleep(rng.expovariate(rate / 60))
            with lock:
                retry, pending[:] = list(pending), []
            for key, data, bad in retry:
                put(key, data, bad)
            n += 1
            nonce = f"{run_id}-{n}"
            if rng.random() < p_bad:
                kinds = [b for b in bad_inputs(nonce, seed=n) if b.expect and b.kind not in S3_REFUSES]
                item = rng.choice(kinds)
                put(f"{prefix}bad/{n:05d}-{item.kind}-{item.name}", item.data, True)
            else:
                sample = rng.choice(samples)
                data = sample.read_bytes() + f"\n\nsoak reference {nonce}\n".encode()
                put(f"{prefix}good/{n:05d}-{sample.name}", data, False)
            due = time.monotonic() >= next_restart[0]  # at least one restart per soak, then every minute
            if settings.embedded_s3 and (due or rng.random() < p_restart):  # (rt.settings has the URL filled)
                next_restart[0] = time.monotonic() + 60
                stats["s3_restarts"] += 1
                progress("soak: restarting the embedded S3 server")
                _restart_s3(rt.settings)

    thread = threading.Thread(target=uploader, name="soak-uploader", daemon=True)
    thread.start()
    while time.monotonic() < deadline:
        if not tick_and_run():
            time.sleep(1.0)
        progress(f"soak: {len(uploaded)} uploaded, {stats['runs_ok'] + stats['runs_failed']} runs")
    thread.join()

    for _ in range(200):  # drain: the pending uploads, then ticks until nothing new comes
        retry, pending[:] = list(pending), []
        for key, data, bad in retry:
            put(key, data, bad)
        if not tick_and_run() and not pending and stats["ticks"] and _all_registered(rt, prefix, uploaded):
            break
    return _account(rt, prefix, uploaded, stats, time.monotonic() - started, minutes)


def _restart_s3(settings: Settings) -> None:
    from docflow.embedded import home_dir
    from docflow.embedded.s3 import ensure_s3, stop_s3

    stop_s3(home_dir(settings))
    time.sleep(1.0)
    ensure_s3(home_dir(settings), settings.embedded_s3_port, settings.bucket)


def _all_registered(rt, prefix: str, uploaded: dict[str, bool]) -> bool:
    try:
        keys = {k for d in rt.store.document_keys() for k in d["keys"] if k.startswith(prefix)}
    except BackendUnavailable:
        return False
    return set(uploaded) <= keys


def _account(
    rt, prefix: str, uploaded: dict[str, bool], stats: Counter[str], seconds: float, minutes: float
) -> dict[str, Any]:
    docs = [d for d in rt.store.list_documents(limit=1_000_000) if d.key.startswith(prefix)]
    status = {d.doc_id: d for d in docs}
    by_key: dict[str, Any] = {
        key: status.get(doc_id) for key, doc_id in bulk.keys_by_prefix(rt.store, prefix).items()
    }
    unregistered = [k for k in uploaded if by_key.get(k) is None]
    unfinished = [
        k for k in uploaded if by_key.get(k) is not None and by_key[k].status not in ("done", "failed")
    ]
    wrong = [
        k
        for k, bad in uploaded.items()
        if by_key.get(k) is not None
        and by_key[k].status in ("done", "failed")
        and (by_key[k].status == "failed") != bad
    ]
    reasons = Counter(_reason(d.error) for d in docs if d.status == "failed")
    return {
        "minutes": minutes,
        "seconds": round(seconds, 1),
        "docs_in": len(uploaded),
        "documents": len(docs),
        "processed": sum(d.status == "done" for d in docs),
        "failed": sum(d.status == "failed" for d in docs),
        "failed_by_reason": dict(reasons.most_common()),
        "wrong_outcome": len(wrong),
        "wrong_examples": wrong[:10],
        "lost": len(unregistered) + len(unfinished),
        "lost_unregistered": unregistered[:10],
        "lost_unfinished": unfinished[:10],
        **{
            k: stats[k]
            for k in ("ticks", "runs_ok", "runs_failed", "s3_restarts", "upload_retries", "sensor_errors")
        },
    }


def _reason(error: str | None) -> str:
    """`stage: reason` without the document-specific tail (numbers, names), for grouping."""
    import re

    text = (error or "").split(" (", 1)[0]
    return re.sub(r"[\d,]+|'[^']*'", "#", text)[:120]
