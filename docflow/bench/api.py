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

The floor: in the same run, with the same 50 SSE streams still open on docflow's server, the same uploads
(20 one at a time, then 200 at once, from another tenant) go to a bare FastAPI app (`floor_app`, uvicorn
with as many workers) whose one route does the same durable write: it streams the multipart body into the
same staging, registers the document row with the same statement (quota counted) and puts the bytes in the
same kind of spool (or the bucket). No authentication, parameter model, type sniffing or idempotency: what
docflow's upload costs on top of that is `ack_ms_p95 / floor_ack_ms_p95` (target: within 1.25x). docflow's
burst goes first; the floor's waits until docflow's uploads are all in the bucket.

The uploads are sent as load tools (wrk, k6) send them: the multipart bodies are encoded before the clock
starts, each upload has its own kept-alive HTTP/1.1 connection opened before the burst, and a request is a
write and a read on it (asyncio streams on uvloop), so the generator's own CPU hardly competes with the
server on a small machine; `client_cpu_ms_per_upload` says what it did cost. The latency is still the time
from writing the request to reading the whole 202 response, for 200 requests in flight at once. With
`extra={"api_client": "httpx"}` the uploads go through one httpx.AsyncClient instead (the earlier generator:
encoding per request, connections opened by the burst itself). The SSE clients use httpx in both cases.
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from docflow.settings import Settings

UPLOADS = 200
SSE_CLIENTS = 50
SEQUENTIAL = 20  # of the SSE clients' documents, uploaded one at a time first
P95_RATIO_TARGET = 1.25  # docflow's upload p95 over the floor app's


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


async def _burst(uploader, tenant: str, ids: range, phase: str, server_cpu: Callable[[], float]) -> dict:
    cpu, cpu_server = time.process_time(), server_cpu()
    started = time.perf_counter()
    results = await asyncio.gather(*(_upload(uploader, tenant, i, phase) for i in ids))
    ended = time.perf_counter()
    return {
        "results": list(results),
        "wall": ended - started,
        "ended": ended,
        "latencies": [ms for ms, status, _ in results if status == 202],
        "client_cpu_ms": (time.process_time() - cpu) * 1000,
        "server_cpu_ms": (server_cpu() - cpu_server) * 1000,
    }


async def _floor(
    base: str, key: str, tenant: str, client_kind: str, server_cpu: Callable[[], float]
) -> dict[str, Any]:
    """The floor app's share: 20 uploads one at a time (warm), then the burst."""
    import httpx

    url = httpx.URL(base)
    limits = httpx.Limits(max_connections=UPLOADS + 10, max_keepalive_connections=UPLOADS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        uploader: Any = client
        if client_kind == "raw":
            uploader = _Uploader(url.host, url.port or 80, key)
            uploader.prepare(tenant, range(SEQUENTIAL + UPLOADS))
            await uploader.connect(1)
        warm = [await _upload(uploader, tenant, i) for i in range(SEQUENTIAL)]
        if isinstance(uploader, _Uploader):
            await uploader.connect(UPLOADS - len(uploader.idle))
        out = await _burst(uploader, tenant, range(SEQUENTIAL, SEQUENTIAL + UPLOADS), "", server_cpu)
        if isinstance(uploader, _Uploader):
            uploader.close()
    return {**out, "warm": warm}


async def _load(
    base: str,
    key: str,
    tenant: str,
    progress: Callable[[str], None],
    client_kind: str = "raw",
    server_cpu: Callable[[], float] = lambda: 0.0,
    floor: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    drained: Callable[[list[str], float], float | None] = lambda ids, ended: None,
) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=UPLOADS + SSE_CLIENTS + 10, max_keepalive_connections=UPLOADS)
    headers = {"Authorization": f"Bearer {key}"}
    connect_ms = None
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as client:
        uploader: Any = client
        if client_kind == "raw":
            url = httpx.URL(base)
            uploader = _Uploader(url.host, url.port or 80, key)
            uploader.prepare(tenant, range(SSE_CLIENTS + UPLOADS))
            await uploader.connect(1)
        warm = [await _upload(uploader, tenant, i, "sequential") for i in range(SEQUENTIAL)]  # base latency
        if isinstance(uploader, _Uploader):
            await uploader.connect(SSE_CLIENTS - SEQUENTIAL - 1)
        warm += await asyncio.gather(*(_upload(uploader, tenant, i) for i in range(SEQUENTIAL, SSE_CLIENTS)))
        followed = [doc_id for _, status, doc_id in warm if status == 202]
        progress(f"bench api: {len(followed)} documents for the SSE clients; opening {SSE_CLIENTS} streams")
        stop = asyncio.Event()
        firsts = [asyncio.get_running_loop().create_future() for _ in followed]
        readers = [
            asyncio.create_task(_follow(client, d, f, stop)) for d, f in zip(followed, firsts, strict=True)
        ]
        first_ms = [v for v in await asyncio.gather(*firsts) if v is not None]

        if isinstance(uploader, _Uploader):
            connect_ms = await uploader.connect(UPLOADS - len(uploader.idle))
        progress(f"bench api: {UPLOADS} concurrent uploads with {len(readers)} SSE streams open")
        out = await _burst(
            uploader, tenant, range(SSE_CLIENTS, SSE_CLIENTS + UPLOADS), "concurrent", server_cpu
        )
        if isinstance(uploader, _Uploader):
            uploader.close()
        ids = [doc_id for _, status, doc_id in warm + out["results"] if status == 202]
        in_bucket_s = await asyncio.to_thread(drained, ids, out["ended"])
        floor_out = None
        if floor is not None:
            progress(f"bench api: the floor app: {UPLOADS} concurrent uploads with the SSE streams open")
            floor_out = await floor()
        await asyncio.sleep(1.0)
        streams_open = sum(not t.done() for t in readers)
        stop.set()
        for task in readers:
            task.cancel()
        seen = await asyncio.gather(*readers, return_exceptions=True)
    return {
        **out,
        "warm": warm,
        "first_ms": first_ms,
        "followed": followed,
        "seen": seen,
        "streams_open": streams_open,
        "client": client_kind,
        "connect_ms": connect_ms,
        "in_bucket_s": in_bucket_s,
        "floor": floor_out,
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
                doc_id=make_doc_id(tenant, staged.sha256),
                tenant=tenant,
                bucket=settings.bucket,
                key=key,
                sha256=staged.sha256,
                size=staged.size,
                content_type="text/plain",
                filename=staged.filename,
            )
            if await registrar.register(doc, 0, False):
                body = staged.body
                if spool is not None and isinstance(body, bytes):
                    await spool.put(key, staged.sha256, body)
                else:
                    await s3.put(key, body, staged.size, staged.sha256)
        finally:
            staged.cleanup()
        return JSONResponse({"doc_id": doc.doc_id}, status_code=202)

    return app


def _serve(cmd: list[str], env: dict[str, str], base: str) -> subprocess.Popen:
    import httpx

    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code < 500:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"{cmd[2:4]} did not start: {server.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()


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


def api_section(settings: Settings, options, progress: Callable[[str], None]) -> dict[str, Any]:
    from docflow.orchestration.instance import dagster_env, dagster_instance
    from docflow.passthrough import purge
    from docflow.runtime import runtime
    from docflow.store.tenants import create_api_key, set_limits

    env = {**os.environ, **dagster_env(settings)}
    rt = runtime(settings)
    instance = dagster_instance(settings)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    floor_tenant = f"{tenant}-floor"
    key = create_api_key(rt.store, tenant, "bench")
    for t in (tenant, floor_tenant):
        set_limits(rt.store, t, docs_per_day=10 * (UPLOADS + SSE_CLIENTS), bytes_per_day=None)
    port, floor_port = _free_port(), _free_port()
    workers = int(options.extra.get("api_workers", os.cpu_count() or 1))
    cmd = [sys.executable, "-m", "docflow.cli", "api", "--port", str(port), "--workers", str(workers)]
    floor_cmd = [
        *[sys.executable, "-m", "uvicorn", "docflow.bench.api:floor_app", "--factory"],
        *["--port", str(floor_port), "--workers", str(workers), "--log-level", "warning"],
    ]
    base, floor_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
    server = _serve(cmd, env, base)
    try:
        floor_server = _serve(floor_cmd, {**env, FLOOR_TENANT_ENV: floor_tenant}, floor_base)
    except BaseException:
        _stop(server)
        raise
    try:
        progress(f"bench api: uvicorn up on {base}, the floor app on {floor_base}")
        for phase in STAGES.values():
            phase.clear()
        client_kind = str(options.extra.get("api_client", "raw"))

        def floor() -> Awaitable[dict[str, Any]]:
            return _floor(floor_base, key, floor_tenant, client_kind, _cpu_seconds(floor_server.pid))

        def drained(ids: list[str], ended: float) -> float | None:
            return _wait_for_bucket(rt, tenant, ids, ended)

        with asyncio.Runner(loop_factory=_loop_factory() if client_kind == "raw" else None) as runner:
            out = runner.run(
                _load(base, key, tenant, progress, client_kind, _cpu_seconds(server.pid), floor, drained)
            )
        floor_out = out["floor"]
        floor_ids = [
            doc_id for _, status, doc_id in floor_out["warm"] + floor_out["results"] if status == 202
        ]
        floor_out["in_bucket_s"] = _wait_for_bucket(rt, floor_tenant, floor_ids, floor_out["ended"])
    finally:
        _stop(server)
        _stop(floor_server)

    ids = [doc_id for _, status, doc_id in out["warm"] + out["results"] if status == 202]
    registered, missing_objects = _lost(rt, tenant, ids)
    floor_registered, floor_missing = _lost(rt, floor_tenant, floor_ids)
    got_uploaded = sum(1 for s in out["seen"] if isinstance(s, list) and "uploaded" in s)
    errors = [(status, detail) for _, status, detail in out["results"] if status != 202]
    floor_errors = [(status, detail) for _, status, detail in floor_out["results"] if status != 202]
    for doc_id in [*registered, *floor_registered]:  # leave nothing behind
        purge(rt, instance, doc_id)

    latencies, floor_latencies = out["latencies"], floor_out["latencies"]
    p95, floor_p95 = _pct(latencies, 0.95), _pct(floor_latencies, 0.95)
    ratio = round(p95 / floor_p95, 2) if floor_p95 else None
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
        "ack_ms_p95": p95,
        "ack_ms_max": _pct(latencies, 1.0),
        "ack_ms_mean": round(statistics.fmean(latencies), 1) if latencies else None,
        "uploads_per_s": round(len(latencies) / out["wall"], 1),
        "load_client": out["client"],
        "client_connect_ms": round(out["connect_ms"], 1) if out["connect_ms"] is not None else None,
        "client_cpu_ms_per_upload": round(out["client_cpu_ms"] / UPLOADS, 2),
        "server_cpu_ms_per_upload": round(out["server_cpu_ms"] / UPLOADS, 2),
        "concurrent_server_stages": _stage_summary("concurrent"),
        "all_in_bucket_s_after_burst": out["in_bucket_s"],
        "floor_sequential_ack_ms_p50": _pct([ms for ms, _, _ in floor_out["warm"]], 0.50),
        "floor_accepted": len(floor_latencies),
        "floor_errors": floor_errors[:5],
        "floor_lost": SEQUENTIAL + UPLOADS - len(set(floor_ids) & set(floor_registered)) + floor_missing,
        "floor_ack_ms_p50": _pct(floor_latencies, 0.50),
        "floor_ack_ms_p95": floor_p95,
        "floor_ack_ms_max": _pct(floor_latencies, 1.0),
        "floor_uploads_per_s": round(len(floor_latencies) / floor_out["wall"], 1),
        "floor_server_cpu_ms_per_upload": round(floor_out["server_cpu_ms"] / UPLOADS, 2),
        "floor_all_in_bucket_s_after_burst": floor_out["in_bucket_s"],
        "p95_ratio_to_floor": ratio,
        "p95_ratio_target": P95_RATIO_TARGET,
        "p95_ratio_met": ratio is not None and ratio <= P95_RATIO_TARGET,
        "sse_clients": len(out["followed"]),
        "sse_first_event_ms_p50": _pct(out["first_ms"], 0.50),
        "sse_first_event_ms_p95": _pct(out["first_ms"], 0.95),
        "sse_got_uploaded": got_uploaded,
        "sse_streams_open_during_uploads": out["streams_open"],
    }
