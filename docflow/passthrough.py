"""Passthrough (zero retention): a document uploaded with `passthrough=true` is processed like any other;
when its run has finished, the results are POSTed to the tenant's webhook (HMAC-SHA256 signed, retried with
backoff), then everything docflow kept is deleted: the object(s), the rows (classification, parsed text,
extraction, chunks cascade), the partition and the document's runs with their event logs and compute logs.
While it runs, its content stays out of Dagster's records (the assets and checks write counts and timings
only for it, defs/assets.py) and out of the workers' byte cache (pipeline.RecentBytes).

Called by `passthrough_sensor` (docflow/defs/sensors.py) every few seconds, and `purge` by the API's DELETE.
The Dagster instance is only called through its public API (imported lazily); the SQL is in docflow.store.

Signature: header `X-Docflow-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; the
receiver recomputes it with the secret returned by `PUT /v1/webhook` and rejects old timestamps.
"""

import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docflow.errors import DocflowError, NotFound
from docflow.netguard import parse_networks, post_json
from docflow.pipeline import Runtime
from docflow.store.db import jsonable
from docflow.store.tenants import (
    chunk_rows,
    finished_passthrough,
    forget_idempotency,
    get_webhook,
    object_keys,
)

if TYPE_CHECKING:
    from dagster import DagsterInstance

log = logging.getLogger(__name__)
PARTITIONS = "documents"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return abs(time.time() - t) <= tolerance_s and hmac.compare_digest(expected, parts.get("v1", ""))


def results(rt: Runtime, doc_id: str) -> dict[str, Any]:
    """Everything the pipeline produced for the document, as the webhook's JSON body."""
    doc = rt.store.get_document(doc_id)
    body: dict[str, Any] = {
        "event": "document.done" if doc.status == "done" else "document.failed",
        "doc_id": doc.doc_id,
        "tenant": doc.tenant,
        "filename": doc.filename,
        "sha256": doc.sha256,
        "size": doc.size,
        "content_type": doc.content_type,
        "pages": doc.pages,
        "status": doc.status,
        "error": doc.error,
    }
    for name, load in (
        ("classification", rt.store.load_classification),
        ("extraction", rt.store.load_extraction),
        ("parsed", rt.store.load_parsed),
    ):
        try:
            body[name] = jsonable(load(doc_id).model_dump(exclude={"blocks"}))
        except NotFound:
            body[name] = None
    body["chunks"] = chunk_rows(rt.store, doc_id)
    return body


def deliver(
    rt: Runtime, tenant: str, body: dict[str, Any], sleep: Callable[[float], None] = time.sleep
) -> bool:
    """POST the results to the tenant's webhook; True once a 2xx answer came. Retries with exponential
    backoff and jitter (`DOCFLOW_WEBHOOK_RETRIES` attempts); 4xx other than 408/429 are not retried."""
    hook = get_webhook(rt.store, tenant)
    if hook is None:
        log.warning("passthrough document of %s but the tenant has no webhook", tenant)
        return False
    url, secret = hook
    payload = json.dumps(body, default=str).encode()
    allow = parse_networks(rt.settings.api_fetch_allow_networks)
    for attempt in range(max(1, rt.settings.webhook_retries)):
        headers = {"X-Docflow-Signature": sign(secret, payload), "X-Docflow-Event": body["event"]}
        try:
            response = post_json(url, payload, headers, allow, rt.settings.webhook_timeout_s)
            if 200 <= response.status_code < 300:
                return True
            retry = response.status_code >= 500 or response.status_code in (408, 429)
            log.warning("webhook %s answered %s", url, response.status_code)
            if not retry:
                return False
        except (DocflowError, OSError) as exc:
            log.warning("webhook %s failed: %s", url, exc)
        except Exception as exc:  # httpx transport errors
            log.warning("webhook %s failed: %s: %s", url, type(exc).__name__, exc)
        if attempt + 1 < rt.settings.webhook_retries:
            sleep(min(30.0, 0.5 * 2**attempt) * random.uniform(0.8, 1.2))
    return False


def purge(rt: Runtime, instance: "DagsterInstance", doc_id: str, delete_runs: bool = False) -> None:
    """Delete the document's objects, rows (chunks and results cascade, and the stored answers of its
    uploads' idempotency keys) and partition; with `delete_runs`, also its finished runs with their event
    logs and captured stdout/stderr (zero retention).

    The row goes last: it is what tells the next tick that something is left, so a purge interrupted half
    way (a crash, S3 down) is done again rather than leaving runs or objects nobody looks for. The objects
    go before the row, or the S3 sensor would register them again as a new, ordinary document."""
    import dagster as dg

    if delete_runs:
        runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": doc_id}))
        for record in runs:
            if record.dagster_run.is_finished:
                delete_run(instance, record.dagster_run.run_id)
    if instance.has_dynamic_partition(PARTITIONS, doc_id):
        instance.delete_dynamic_partition(PARTITIONS, doc_id)
    try:
        doc = rt.store.get_document(doc_id)
        keys = {doc.key, *object_keys(rt.store, doc_id)}
    except NotFound:
        keys = set()
    for key in keys:
        with contextlib.suppress(NotFound):
            rt.bucket.delete(key)
    forget_idempotency(rt.store, doc_id)
    rt.store.delete_documents([doc_id])


def delete_run(instance: "DagsterInstance", run_id: str) -> None:
    """A run, its events and its compute logs: `delete_run` leaves the logs, whose layout is the compute log
    manager's (`[run_id, "compute_logs", <file>]` for every manager Dagster ships; on disk or in S3)."""
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    instance.delete_run(run_id)


@dataclass
class Flushed:
    delivered: list[str]
    dropped: list[str]  # undeliverable for longer than DOCFLOW_WEBHOOK_GIVE_UP_S: deleted anyway
    waiting: list[str]  # delivery failed; retried next time


def flush(rt: Runtime, instance: "DagsterInstance", sleep: Callable[[float], None] = time.sleep) -> Flushed:
    """Deliver and delete every finished passthrough document whose run is over."""
    import dagster as dg

    out = Flushed([], [], [])
    for doc_id, tenant, age in finished_passthrough(rt.store):
        active = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": doc_id}), limit=20)
        if any(not r.dagster_run.is_finished for r in active):
            continue  # the run is still writing its last events: next time
        if deliver(rt, tenant, results(rt, doc_id), sleep=sleep):
            out.delivered.append(doc_id)
        elif age > rt.settings.webhook_give_up_s:
            out.dropped.append(doc_id)
        else:
            out.waiting.append(doc_id)
            continue
        purge(rt, instance, doc_id, delete_runs=True)
    return out
