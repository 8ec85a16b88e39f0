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

The floor: in the same run, with the same 50 SSE streams open on docflow's server, the same bursts of 200
uploads (from another tenant, after 20 one at a time to warm it) go to a bare FastAPI app (`floor_app`,
uvicorn with as many workers) whose one route does the same durable write: it streams the multipart body
into the same staging, registers the document row with the same statement (quota counted) and puts the bytes
in the same kind of spool (or the bucket). No authentication, parameter model, type sniffing or idempotency:
what docflow's upload costs on top of that is `ack_ms_p95 / floor_ack_ms_p95` (target: within 1.25x). The
machine's other load varies from one burst to the next, so each server gets ROUNDS bursts, in alternating
order (docflow first), each after the previous burst's uploads are all in the bucket; the p95s are over all
of a server's bursts.

The uploads are sent as load tools (wrk, k6) send them: the multipart bodies are encoded before the clock
starts, each upload has its own kept-alive HTTP/1.1 connection opened before the burst, and a request is a
write and a read on it (asyncio streams on uvloop), so the generator's own CPU hardly competes with the
server on a small machine; `client_cpu_ms_per_upload` says what it did cost. The latency is still the time
from writing the request to reading the whole 202 response, for 200 requests in flight at once. With
`extra={"api_client": "httpx"}` the uploads go through one httpx.AsyncClient instead (the earlier generator:
encoding per request, connections opened by the burst itself). The SSE clients use httpx in both cases.
"""

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docflow.bench import free_port
from docflow.settings import Settings

UPLOADS = 200
SSE_CLIENTS = 50
SEQUENTIAL = 20  # of the SSE clients' documents, uploaded one at a time first
P95_RATIO_TARGET = 1.25  # docflow's upload p95 over the floor app's
ROUNDS = 3  # bursts to each server (the machine's other load varies from one burst to the next)


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
    if isinstance(client, _Uploader):
        return await client.upload(tenant, i, phase)
    files = {"file": (f"bench-{i}.txt", _doc(tenant, i))}
    started = time.perf_counter()
    r = await client.post("/v1/documents", files=files)
    elapsed = (time.perf_counter() - started) * 1000
    if phase:
        STAGES[phase].append(_server_timing(r.headers.get("server-timing", "")))
    return elapsed, r.status_code, r.json().get("doc_id", "") if r.status_code == 202 else r.text[:200]


BOUNDARY = "docflow-bench-" + uuid.uuid4().hex


def _request(host: str, key: str, tenant: str, i: int) -> bytes:
    """A complete multipart upload request, encoded ahead of time."""
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="bench-{i}.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\n"
    ).encode()
    body += _doc(tenant, i) + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (
        f"POST /v1/documents HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Conn:
    """One kept-alive HTTP/1.1 connection: write a request, read its response (Content-Length or chunked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(request)
        status = int((await self.reader.readuntil(b"\r\n")).split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            return status, headers, await self.reader.readexactly(int(headers["content-length"]))
        body = b""
        while size := int((await self.reader.readuntil(b"\r\n")).strip() or b"0", 16):
            body += (await self.reader.readexactly(size + 2))[:-2]
        await self.reader.readuntil(b"\r\n")
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


class _Uploader:
    """Uploads over connections opened before they are needed, with requests encoded before they are timed."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port, self.key = host, port, key
        self.idle: list[_Conn] = []
        self.requests: dict[int, bytes] = {}

    async def connect(self, n: int) -> float:
        """Open `n` more connections; returns how long that took (ms)."""
        started = time.perf_counter()
        pairs = await asyncio.gather(*(asyncio.open_connection(self.host, self.port) for _ in range(n)))
        self.idle += [_Conn(r, w) for r, w in pairs]
        return (time.perf_counter() - started) * 1000

    def prepare(self, tenant: str, ids: range) -> None:
        for i in ids:
            self.requests[i] = _request(f"{self.host}:{self.port}", self.key, tenant, i)

    async def upload(self, tenant: str, i: int, phase: str = "") -> tuple[float, int, str]:
        request = self.requests.pop(i, None) or _request(f"{self.host}:{self.port}", self.key, tenant, i)
        conn = self.idle.pop() if self.idle else _Conn(*await asyncio.open_connection(self.host, self.port))
        started = time.perf_counter()
        status, headers, body = await conn.exchange(request)
        elapsed = (time.perf_counter() - started) * 1000
        if headers.get("connection", "").lower() == "close":
            conn.close()
        else:
            self.idle.append(conn)
        if phase:
            STAGES[phase].append(_server_timing(headers.get("server-timing", "")))
        if status != 202:
            return elapsed, status, body[:200].decode("utf-8", "replace")
        return elapsed, status, json.loads(body).get("doc_id", "")

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle = []


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


@dataclass
class Target:
    """A server the bursts go to: docflow's API or the floor app, with the tenant its uploads belong to."""

    base: str
    tenant: str
    cpu: Callable[[], float]  # the server's CPU seconds so far
    drained: Callable[[list[str], float], float | None]  # waits until those uploads are in the bucket
    phase: str = ""  # where its Server-Timing stages are collected
    next_id: int = 0
    bursts: list[dict[str, Any]] = field(default_factory=list)


async def _burst(target: Target, key: str, client_kind: str) -> dict[str, Any]:
    """UPLOADS uploads at once to `target` over connections opened beforehand; then wait for the bucket."""
    import httpx

    ids = range(target.next_id, target.next_id + UPLOADS)
    target.next_id += UPLOADS
    url = httpx.URL(target.base)
    limits = httpx.Limits(max_connections=UPLOADS + 10, max_keepalive_connections=UPLOADS)
    headers = {"Authorization": f"Bearer {key}"}
    connect_ms = None
    async with httpx.AsyncClient(base_url=target.base, headers=headers, limits=limits, timeout=120) as client:
        uploader: Any = client
        if client_kind == "raw":
            uploader = _Uploader(url.host, url.port or 80, key)
            uploader.prepare(target.tenant, ids)
            connect_ms = await uploader.connect(UPLOADS)
        cpu, cpu_server = time.process_time(), target.cpu()
        started = time.perf_counter()
        results = await asyncio.gather(*(_upload(uploader, target.tenant, i, target.phase) for i in ids))
        ended = time.perf_counter()
        client_cpu_ms = (time.process_time() - cpu) * 1000
        server_cpu_ms = (target.cpu() - cpu_server) * 1000
        if isinstance(uploader, _Uploader):
            uploader.close()
    accepted = [doc_id for _, status, doc_id in results if status == 202]
    out = {
        "results": list(results),
        "wall": ended - started,
        "latencies": [ms for ms, status, _ in results if status == 202],
        "connect_ms": connect_ms,
        "client_cpu_ms": client_cpu_ms,
        "server_cpu_ms": server_cpu_ms,
        "in_bucket_s": await asyncio.to_thread(target.drained, accepted, ended),
    }
    target.bursts.append(out)
    return out


async def _load(
    docflow: Target,
    floor: Target,
    key: str,
    progress: Callable[[str], None],
    client_kind: str = "raw",
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """Warm both servers, open the SSE streams on docflow's, then `rounds` bursts to each server, the order
    alternating (docflow first in the first round), the streams open throughout."""
    import httpx

    limits = httpx.Limits(max_connections=SSE_CLIENTS + 10, max_keepalive_connections=SSE_CLIENTS)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=docflow.base, headers=headers, limits=limits, timeout=120
    ) as client:
        warmed = {}
        for target, count in ((docflow, SSE_CLIENTS), (floor, SEQUENTIAL)):
            uploader: Any = client
            if client_kind == "raw":
                url = httpx.URL(target.base)
                uploader = _Uploader(url.host, url.port or 80, key)
                uploader.prepare(target.tenant, range(count))
                await uploader.connect(1)
            phase = "sequential" if target is docflow else ""
            warm = [
                await _upload(uploader, target.tenant, i, phase) for i in range(SEQUENTIAL)
            ]  # base latency
            if count > SEQUENTIAL:
                if isinstance(uploader, _Uploader):
                    await uploader.connect(count - SEQUENTIAL - 1)
                warm += await asyncio.gather(
                    *(_upload(uploader, target.tenant, i) for i in range(SEQUENTIAL, count))
                )
            if isinstance(uploader, _Uploader):
                uploader.close()
            target.next_id = count
            warmed[target.base] = warm
        followed = [doc_id for _, status, doc_id in warmed[docflow.base] if status == 202]
        progress(f"bench api: {len(followed)} documents for the SSE clients; opening {SSE_CLIENTS} streams")
        stop = asyncio.Event()
        firsts = [asyncio.get_running_loop().create_future() for _ in followed]
        readers = [
            asyncio.create_task(_follow(client, d, f, stop)) for d, f in zip(followed, firsts, strict=True)
        ]
        first_ms = [v for v in await asyncio.gather(*firsts) if v is not None]
        for r in range(rounds):
            for target in (docflow, floor) if r % 2 == 0 else (floor, docflow):
                name = "docflow" if target is docflow else "the floor app"
                progress(
                    f"bench api: round {r + 1}: {UPLOADS} concurrent uploads to {name}, SSE streams open"
                )
                await _burst(target, key, client_kind)
        await asyncio.sleep(1.0)
        streams_open = sum(not t.done() for t in readers)
        stop.set()
        for task in readers:
            task.cancel()
        seen = await asyncio.gather(*readers, return_exceptions=True)
    return {
        "warm": warmed[docflow.base],
        "floor_warm": warmed[floor.base],
        "first_ms": first_ms,
        "followed": followed,
        "seen": seen,
        "streams_open": streams_open,
        "client": client_kind,
    }


def _cpu_seconds(pid: int) -> Callable[[], float]:
    """CPU seconds used so far by a process and its children (uvicorn's workers)."""
    import psutil

    def used() -> float:
        total = 0.0
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
        return total

    return used


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _wait_for_bucket(rt, tenant: str, ids: list[str], ended: float, timeout: float = 120.0) -> float | None:
    """Seconds from the end of the burst until every acknowledged upload's object is in the bucket."""
    wanted = set(ids)
    keys = {
        d.key
        for d in rt.store.list_documents(tenant=tenant, limit=10 * len(wanted) + 10)
        if d.doc_id in wanted
    }
    deadline = time.monotonic() + timeout
    while True:
        listed = {o.key for o in rt.bucket.list(f"{rt.settings.prefix}{tenant}/")}
        if keys <= listed:
            return round(time.perf_counter() - ended, 2)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


FLOOR_TENANT_ENV = "DOCFLOW_BENCH_FLOOR_TENANT"


def floor_app():
    """The floor (uvicorn factory): a bare FastAPI app whose one route does docflow's durable write, the same
    way — the multipart body streamed into the same staging (hashed, spilled to disk when large), the
    document row registered by the same statement with the quota counted, the bytes put in a spool (fsync'd)
    or, when large, in the bucket — with none of docflow's request handling around it. The tenant comes from
    DOCFLOW_BENCH_FLOOR_TENANT."""
    import secrets
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from docflow.api.s3put import S3Writer
    from docflow.api.spool import Spool
    from docflow.api.uploads import read_multipart
    from docflow.bucket import make_doc_id
    from docflow.models import Document
    from docflow.runtime import resolve_settings
    from docflow.store.tenants import ApiDb, Limits, Registrar, api_database_url

    settings = resolve_settings(Settings())
    tenant = os.environ[FLOOR_TENANT_ENV]
    db = ApiDb(api_database_url(settings))
    s3 = S3Writer(settings)
    spool_dir = settings.api_spool_dir or settings.home / "api-spool"
    spool = None if str(spool_dir) == "off" else Spool(Path(f"{spool_dir}-floor").resolve(), s3)
    registrar = Registrar(db, Limits(settings.api_docs_per_day, settings.api_bytes_per_day))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await db.pool()
        s3.connect()
        if spool is not None:
            spool.start()
        yield
        if spool is not None:
            await spool.aclose()
        await s3.aclose()
        await db.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/documents", status_code=202)
    async def upload(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        staged, _ = await read_multipart(content_type, request.stream(), settings.max_bytes)
        try:
            key = (
                f"{settings.prefix}{tenant}/api/{staged.sha256[:16]}-{secrets.token_hex(4)}/{staged.filename}"
            )
            doc = Document(
                doc_id=make_doc_id(tenant, staged.sha256, staged.filename),
                tenant=tenant,
                bucket=settings.bucket,
                key=key,
                sha256=staged.sha256,
                size=staged.size,
                content_type="text/plain",
                filename=staged.filename,
            )
            doc_id, new = await registrar.register(doc, 0, False)
            if new:
                body = staged.body
                if spool is not None and isinstance(body, bytes):
                    await spool.put(key, staged.sha256, body)
                else:
                    await s3.put(key, body, staged.size, staged.sha256)
        finally:
            staged.cleanup()
        return JSONResponse({"doc_id": doc_id}, status_code=202)

    return app


def _serve(cmd: list[str], env: dict[str, str], base: str) -> subprocess.Popen:
    """Start a server (its own process group, stderr to a file) and wait until it answers."""
    import tempfile

    import httpx

    with tempfile.TemporaryFile() as log:  # the server keeps its own handle on it
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code < 500:
                    return server
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                _stop(server)
                log.seek(0)
                raise RuntimeError(f"{cmd[2:4]} did not start: {log.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    """Stop a server and its workers (uvicorn's worker processes are in its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


def _lost(rt, tenant: str, ids: list[str]) -> tuple[dict[str, Any], int]:
    """The tenant's registered documents, and how many of `ids` have no object in the bucket."""
    registered = {d.doc_id: d for d in rt.store.list_documents(tenant=tenant, limit=10 * len(ids) + 10)}
    missing = 0
    for doc_id in ids:
        doc = registered.get(doc_id)
        try:
            rt.bucket.head(doc.key) if doc else None
        except Exception:
            missing += 1
    return registered, missing


def _pooled(target: Target) -> dict[str, Any]:
    """A target's bursts together: the latencies of all its uploads, and its per-burst figures."""
    latencies = [ms for b in target.bursts for ms in b["latencies"]]
    return {
        "latencies": latencies,
        "results": [r for b in target.bursts for r in b["results"]],
        "p95_per_burst": [_pct(b["latencies"], 0.95) for b in target.bursts],
        "uploads_per_s": round(statistics.fmean(len(b["latencies"]) / b["wall"] for b in target.bursts), 1),
        "server_cpu_ms": sum(b["server_cpu_ms"] for b in target.bursts),
        "client_cpu_ms": sum(b["client_cpu_ms"] for b in target.bursts),
        "connect_ms": [b["connect_ms"] for b in target.bursts if b["connect_ms"] is not None],
        "in_bucket_s": [b["in_bucket_s"] for b in target.bursts],
    }


def api_section(settings: Settings, options, progress: Callable[[str], None]) -> dict[str, Any]:
    from docflow.orchestration.instance import dagster_env, open_instance
    from docflow.passthrough import purge
    from docflow.runtime import runtime
    from docflow.store.tenants import create_api_key, set_limits

    env = {**os.environ, **dagster_env(settings)}
    rt = runtime(settings)
    instance = open_instance(env)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    floor_tenant = f"{tenant}-floor"
    rounds = int(options.extra.get("api_rounds", ROUNDS))
    key = create_api_key(rt.store, tenant, "bench")
    for t in (tenant, floor_tenant):
        set_limits(rt.store, t, docs_per_day=SSE_CLIENTS + rounds * UPLOADS + 10, bytes_per_day=None)
    port, floor_port = free_port(), free_port()
    workers = int(options.extra.get("api_workers", os.cpu_count() or 1))
    cmd = [sys.executable, "-m", "docflow.cli", "api", "--port", str(port), "--workers", str(workers)]
    floor_cmd = [
        *[
            sys.executable,
            "-m",
            "uvicorn",
            "docflow.bench.api:floor_app",
            "--factory",
            "--port",
            str(floor_port),
        ],
        *["--workers", str(workers), "--log-level", "warning", "--timeout-keep-alive", "65"],
    ]
    base, floor_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
    server = _serve(cmd, env, base)
    try:
        floor_server = _serve(floor_cmd, {**env, FLOOR_TENANT_ENV: floor_tenant}, floor_base)
    except BaseException:
        _stop(server)
        raise
    docflow = Target(
        base, tenant, _cpu_seconds(server.pid), lambda ids, ended: _wait_for_bucket(rt, tenant, ids, ended)
    )
    docflow.phase = "concurrent"
    floor = Target(
        floor_base,
        floor_tenant,
        _cpu_seconds(floor_server.pid),
        lambda ids, ended: _wait_for_bucket(rt, floor_tenant, ids, ended),
    )
    try:
        progress(f"bench api: uvicorn up on {base}, the floor app on {floor_base}")
        for phase in STAGES.values():
            phase.clear()
        client_kind = str(options.extra.get("api_client", "raw"))
        with asyncio.Runner(loop_factory=_loop_factory() if client_kind == "raw" else None) as runner:
            out = runner.run(_load(docflow, floor, key, progress, client_kind, rounds))
    finally:
        _stop(server)
        _stop(floor_server)

    mine, theirs = _pooled(docflow), _pooled(floor)
    ids = [doc_id for _, status, doc_id in out["warm"] + mine["results"] if status == 202]
    floor_ids = [doc_id for _, status, doc_id in out["floor_warm"] + theirs["results"] if status == 202]
    registered, missing_objects = _lost(rt, tenant, ids)
    floor_registered, floor_missing = _lost(rt, floor_tenant, floor_ids)
    got_uploaded = sum(1 for s in out["seen"] if isinstance(s, list) and "uploaded" in s)
    errors = [(status, detail) for _, status, detail in mine["results"] if status != 202]
    floor_errors = [(status, detail) for _, status, detail in theirs["results"] if status != 202]
    for doc_id in [*registered, *floor_registered]:  # leave nothing behind
        purge(rt, instance, doc_id)

    latencies, floor_latencies = mine["latencies"], theirs["latencies"]
    p95, floor_p95 = _pct(latencies, 0.95), _pct(floor_latencies, 0.95)
    ratio = round(p95 / floor_p95, 2) if floor_p95 else None
    sent = rounds * UPLOADS
    return {
        "uvicorn_workers": workers,
        "rounds": rounds,
        "sequential_ack_ms_p50": _pct([ms for ms, _, _ in out["warm"][:SEQUENTIAL]], 0.50),
        "sequential_ack_ms_p95": _pct([ms for ms, _, _ in out["warm"][:SEQUENTIAL]], 0.95),
        "sequential_server_stages": _stage_summary("sequential"),
        "uploads": UPLOADS,
        "accepted": len(latencies),
        "errors": errors[:5],
        "distinct_ids": len(set(ids)),
        "registered": len(set(ids) & set(registered)),
        "objects_missing": missing_objects,
        "lost": sent + SSE_CLIENTS - len(set(ids) & set(registered)) + missing_objects,
        "ack_ms_p50": _pct(latencies, 0.50),
        "ack_ms_p95": p95,
        "ack_ms_p95_per_burst": mine["p95_per_burst"],
        "ack_ms_max": _pct(latencies, 1.0),
        "ack_ms_mean": round(statistics.fmean(latencies), 1) if latencies else None,
        "uploads_per_s": mine["uploads_per_s"],
        "load_client": out["client"],
        "client_connect_ms": max(mine["connect_ms"], default=None),
        "client_cpu_ms_per_upload": round(mine["client_cpu_ms"] / sent, 2),
        "server_cpu_ms_per_upload": round(mine["server_cpu_ms"] / sent, 2),
        "concurrent_server_stages": _stage_summary("concurrent"),
        "all_in_bucket_s_after_burst": max(mine["in_bucket_s"], key=lambda v: v or 1e9),
        "floor_sequential_ack_ms_p50": _pct([ms for ms, _, _ in out["floor_warm"]], 0.50),
        "floor_accepted": len(floor_latencies),
        "floor_errors": floor_errors[:5],
        "floor_lost": SEQUENTIAL + sent - len(set(floor_ids) & set(floor_registered)) + floor_missing,
        "floor_ack_ms_p50": _pct(floor_latencies, 0.50),
        "floor_ack_ms_p95": floor_p95,
        "floor_ack_ms_p95_per_burst": theirs["p95_per_burst"],
        "floor_ack_ms_max": _pct(floor_latencies, 1.0),
        "floor_uploads_per_s": theirs["uploads_per_s"],
        "floor_server_cpu_ms_per_upload": round(theirs["server_cpu_ms"] / sent, 2),
        "floor_all_in_bucket_s_after_burst": max(theirs["in_bucket_s"], key=lambda v: v or 1e9),
        "p95_ratio_to_floor": ratio,
        "p95_ratio_target": P95_RATIO_TARGET,
        "p95_ratio_met": ratio is not None and ratio <= P95_RATIO_TARGET,
        "sse_clients": len(out["followed"]),
        "sse_first_event_ms_p50": _pct(out["first_ms"], 0.50),
        "sse_first_event_ms_p95": _pct(out["first_ms"], 0.95),
        "sse_got_uploaded": got_uploaded,
        "sse_streams_open_during_uploads": out["streams_open"],
    }
