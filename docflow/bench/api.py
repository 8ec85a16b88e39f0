"""`docflow bench --only api`: the HTTP API under load on loopback.

uvicorn runs `docflow api` in a subprocess. 50 documents are uploaded first and 50 SSE clients follow them
(streams kept open, polling, for the whole test); the first 20 of those are sent one at a time (base
latency), then 200 uploads are sent at once. Reported:
upload acknowledgement latency (request sent -> 202) with the server's own per-stage times (its
Server-Timing header: receive, register, spool or s3_put), SSE time to first event, how long until every
acknowledged upload is in the bucket (small uploads are acknowledged from the API's durable spool), and
"nothing lost" — every upload answered 202 with a distinct id, registered in Postgres with its object in the
bucket, every SSE client got its document's `uploaded` event. The bench tenant's documents are deleted
afterwards.
"""

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from docflow.settings import Settings

UPLOADS = 200
SSE_CLIENTS = 50
SEQUENTIAL = 20  # of the SSE clients' documents, uploaded one at a time first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def _doc(tenant: str, i: int) -> bytes:
    lines = [f"Invoice {tenant}-{i:05d}", "Invoice date: 2024-05-01", f"Total due: {100 + i}.00 EUR"]
    return ("\n".join(lines) + "\n" + "Line item description. " * 80).encode()


STAGES: dict[str, list[dict[str, float]]] = {"sequential": [], "concurrent": []}


def _server_timing(header: str) -> dict[str, float]:
    stages = {}
    for part in header.split(","):
        name, sep, dur = part.strip().partition(";dur=")
        if sep:
            stages[name] = float(dur)
    return stages


async def _upload(client, tenant: str, i: int, phase: str = "") -> tuple[float, int, str]:
    files = {"file": (f"bench-{i}.txt", _doc(tenant, i))}
    started = time.perf_counter()
    r = await client.post("/v1/documents", files=files)
    elapsed = (time.perf_counter() - started) * 1000
    if phase:
        STAGES[phase].append(_server_timing(r.headers.get("server-timing", "")))
    return elapsed, r.status_code, r.json().get("doc_id", "") if r.status_code == 202 else r.text[:200]


def _stage_summary(phase: str) -> dict[str, float]:
    out = {}
    for name in sorted({k for t in STAGES[phase] for k in t}):
        values = [t[name] for t in STAGES[phase] if name in t]
        out[f"{name}_ms_p50"] = _pct(values, 0.50)
        out[f"{name}_ms_p95"] = _pct(values, 0.95)
    return out


async def _follow(client, doc_id: str, first: asyncio.Future, stop: asyncio.Event) -> list[str]:
    """Open the SSE stream, record when the first event arrives, keep reading until told to stop."""
    started = time.perf_counter()
    seen: list[str] = []
    try:
        async with client.stream("GET", f"/v1/documents/{doc_id}/events") as r:
            if r.status_code != 200:
                first.set_result(None)
                return seen
            event, data = "", {}
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = json.loads(line.split(":", 1)[1])
                elif not line and event:
                    if data.get("doc_id") == doc_id:
                        seen.append(event)
                    if not first.done():
                        first.set_result((time.perf_counter() - started) * 1000)
                    event, data = "", {}
                if stop.is_set():
                    break
    except asyncio.CancelledError:
        pass
    if not first.done():
        first.set_result(None)
    return seen


async def _load(base: str, key: str, tenant: str, progress: Callable[[str], None]) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=UPLOADS + SSE_CLIENTS + 10, max_keepalive_connections=UPLOADS)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as client:
        warm = [await _upload(client, tenant, i, "sequential") for i in range(SEQUENTIAL)]  # base latency
        warm += await asyncio.gather(*(_upload(client, tenant, i) for i in range(SEQUENTIAL, SSE_CLIENTS)))
        followed = [doc_id for _, status, doc_id in warm if status == 202]
        progress(f"bench api: {len(followed)} documents for the SSE clients; opening {SSE_CLIENTS} streams")
        stop = asyncio.Event()
        firsts = [asyncio.get_running_loop().create_future() for _ in followed]
        readers = [
            asyncio.create_task(_follow(client, d, f, stop)) for d, f in zip(followed, firsts, strict=True)
        ]
        first_ms = [v for v in await asyncio.gather(*firsts) if v is not None]

        progress(f"bench api: {UPLOADS} concurrent uploads with {len(readers)} SSE streams open")
        started = time.perf_counter()
        results = await asyncio.gather(
            *(_upload(client, tenant, i, "concurrent") for i in range(SSE_CLIENTS, SSE_CLIENTS + UPLOADS))
        )
        ended = time.perf_counter()
        wall = ended - started
        await asyncio.sleep(1.0)
        streams_open = sum(not t.done() for t in readers)
        stop.set()
        for task in readers:
            task.cancel()
        seen = await asyncio.gather(*readers, return_exceptions=True)
    latencies = [ms for ms, status, _ in results if status == 202]
    return {
        "warm": warm,
        "results": results,
        "wall": wall,
        "ended": ended,
        "latencies": latencies,
        "first_ms": first_ms,
        "followed": followed,
        "seen": seen,
        "streams_open": streams_open,
    }


def _wait_for_bucket(rt, tenant: str, out: dict[str, Any], timeout: float = 120.0) -> float | None:
    """Seconds from the end of the burst until every acknowledged upload's object is in the bucket."""
    ids = {doc_id for _, status, doc_id in out["warm"] + out["results"] if status == 202}
    keys = {
        d.key for d in rt.store.list_documents(tenant=tenant, limit=10 * len(ids) + 10) if d.doc_id in ids
    }
    deadline = time.monotonic() + timeout
    while True:
        listed = {o.key for o in rt.bucket.list(f"{rt.settings.prefix}{tenant}/")}
        if keys <= listed:
            return round(time.perf_counter() - out["ended"], 2)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def api_section(settings: Settings, options, progress: Callable[[str], None]) -> dict[str, Any]:
    import httpx

    from docflow import services
    from docflow.api.db import create_api_key, set_limits
    from docflow.api.passthrough import purge

    env = {**os.environ, **services.dagster_env(settings)}
    rt = services.runtime(settings)
    instance = services.dagster_instance(settings)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    key = create_api_key(rt.store, tenant, "bench")
    set_limits(rt.store, tenant, docs_per_day=10 * (UPLOADS + SSE_CLIENTS), bytes_per_day=None)
    port = _free_port()
    workers = int(options.extra.get("api_workers", os.cpu_count() or 1))
    cmd = [sys.executable, "-m", "docflow.cli", "api", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        progress(f"bench api: uvicorn up on {base}")
        for phase in STAGES.values():
            phase.clear()
        out = asyncio.run(_load(base, key, tenant, progress))
        out["in_bucket_s"] = _wait_for_bucket(rt, tenant, out)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()

    ids = [doc_id for _, status, doc_id in out["warm"] + out["results"] if status == 202]
    registered = {d.doc_id: d for d in rt.store.list_documents(tenant=tenant, limit=10 * len(ids) + 10)}
    missing_objects = 0
    for doc_id in ids:
        doc = registered.get(doc_id)
        try:
            rt.bucket.head(doc.key) if doc else None
        except Exception:
            missing_objects += 1
    got_uploaded = sum(1 for s in out["seen"] if isinstance(s, list) and "uploaded" in s)
    errors = [(status, detail) for _, status, detail in out["results"] if status != 202]
    for doc_id in registered:  # leave nothing behind
        purge(rt, instance, doc_id)

    latencies = out["latencies"]
    return {
        "uvicorn_workers": workers,
        "sequential_ack_ms_p50": _pct([ms for ms, _, _ in out["warm"][:SEQUENTIAL]], 0.50),
        "sequential_ack_ms_p95": _pct([ms for ms, _, _ in out["warm"][:SEQUENTIAL]], 0.95),
        "sequential_server_stages": _stage_summary("sequential"),
        "uploads": UPLOADS,
        "accepted": len(latencies),
        "errors": errors[:5],
        "distinct_ids": len(set(ids)),
        "registered": len(set(ids) & set(registered)),
        "objects_missing": missing_objects,
        "lost": UPLOADS + SSE_CLIENTS - len(set(ids) & set(registered)) + missing_objects,
        "ack_ms_p50": _pct(latencies, 0.50),
        "ack_ms_p95": _pct(latencies, 0.95),
        "ack_ms_max": _pct(latencies, 1.0),
        "ack_ms_mean": round(statistics.fmean(latencies), 1) if latencies else None,
        "uploads_per_s": round(len(latencies) / out["wall"], 1),
        "concurrent_server_stages": _stage_summary("concurrent"),
        "all_in_bucket_s_after_burst": out["in_bucket_s"],
        "p95_target_ms": 200,
        "p95_met": _pct(latencies, 0.95) <= 200,
        "sse_clients": len(out["followed"]),
        "sse_first_event_ms_p50": _pct(out["first_ms"], 0.50),
        "sse_first_event_ms_p95": _pct(out["first_ms"], 0.95),
        "sse_got_uploaded": got_uploaded,
        "sse_streams_open_during_uploads": out["streams_open"],
    }
