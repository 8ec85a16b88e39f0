"""The HTTP API over a real uvicorn server on loopback (real HTTP client), the real embedded Postgres, S3 and
Dagster instance: uploads, URL ingest with SSRF checks, status, SSE, search/ask, tenants with row-level
security, idempotency, quotas, priorities and passthrough."""

import hashlib
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import httpx
import psycopg
import pytest
from live import LiveServer

from docflow.api.app import create_app
from docflow.bucket import make_doc_id
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.errors import NotFound
from docflow.passthrough import verify
from docflow.runtime import REPO_ROOT, runtime
from docflow.settings import get_settings
from docflow.store import tenants as db

SAMPLES = REPO_ROOT / "data" / "samples"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
MAX_BYTES = 256 * 1024  # the test app's document size limit


# --- servers -----------------------------------------------------------------------------------------------


class Remote:
    """A local HTTP server standing in for the internet (documents to fetch) and for tenants' webhooks."""

    def __init__(self) -> None:
        self.hooks: list[tuple[dict[str, str], bytes]] = []
        self.hook_failures = 0  # answer 503 this many times before accepting
        remote = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path
                if path.startswith("/doc/"):
                    body = f"Invoice {path} for testing\nTotal due: 12.00 EUR\n".encode()
                    self._send(200, body, {"Content-Type": "text/plain"})
                elif path == "/big":
                    self._send(200, b"x" * (MAX_BYTES + 10), {"Content-Type": "text/plain"})
                elif path == "/big-chunked":  # no Content-Length: the limit is enforced while streaming
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for _ in range(40):
                        self.wfile.write(b"y" * 8192)
                elif path.startswith("/redirect?to="):
                    self._send(302, b"", {"Location": path.split("=", 1)[1]})
                elif path == "/slow":
                    time.sleep(3)
                    self._send(200, b"late", {})
                else:
                    self._send(404, b"no", {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if remote.hook_failures > 0:
                    remote.hook_failures -= 1
                    self._send(503, b"busy", {})
                    return
                remote.hooks.append((dict(self.headers), body))
                self._send(200, b"ok", {})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def remote() -> Iterator[Remote]:
    r = Remote()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def api_settings(docflow_env):
    # loopback 127.0.0.1 only is allowed: 127.0.0.2 (also loopback) stays blocked, for the redirect test
    return get_settings().model_copy(
        update={
            "max_bytes": MAX_BYTES,
            "api_fetch_allow_networks": ("127.0.0.1/32",),
            "api_fetch_timeout_s": 2.0,
        }
    )


@pytest.fixture(scope="module")
def server(api_settings, instance) -> Iterator[LiveServer]:
    live = LiveServer(create_app(api_settings, instance))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def strict_server(docflow_env, instance) -> Iterator[LiveServer]:
    """The default settings: no private address may be fetched."""
    live = LiveServer(create_app(get_settings(), instance))
    yield live
    live.stop()


class Tenant:
    def __init__(self, rt, base_url: str) -> None:
        self.name = f"t{uuid.uuid4().hex[:8]}"
        self.key = db.create_api_key(rt.store, self.name, "test")
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60
        )

    def upload(self, body: bytes, filename: str = "doc.txt", **params) -> httpx.Response:
        headers = params.pop("headers", {})
        return self.client.post(
            "/v1/documents", files={"file": (filename, body)}, params=params, headers=headers
        )


@pytest.fixture
def tenant(rt, server) -> Iterator[Tenant]:
    t = Tenant(rt, server.url)
    yield t
    t.client.close()


@pytest.fixture
def other(rt, server) -> Iterator[Tenant]:
    t = Tenant(rt, server.url)
    yield t
    t.client.close()


INVOICE = """INVOICE

Northwind Traders Ltd, 12 Harbour Road, Bristol
Invoice number: NW-2024-0042
Invoice date: 2024-03-01
Due date: 2024-03-31
Bill to: {tag} GmbH

Description                Qty   Unit price   Amount
Consulting services          10       100.00  1000.00

Subtotal: 1000.00 EUR
VAT 20%: 200.00 EUR
Total due: 1200.00 EUR
Payment terms: net 30 days. IBAN GB29 NWBK 6016 1331 9268 19
"""


def text(tag: str) -> bytes:
    return f"Invoice number {tag}\nInvoice date: 2024-03-01\nTotal due: 99.00 EUR\nThank you.\n".encode()


# --- the pipeline, driven as the daemon would ---------------------------------------------------------------

_cursor: dict[str, str | None] = {"value": None}


def sensor(name: str) -> dg.SensorDefinition:
    from docflow.defs import build_defs

    return build_defs(get_settings()).resolve_sensor_def(name)


def tick(instance) -> dg.SensorResult:
    s3_document_sensor = sensor("s3_document_sensor")
    context = dg.build_sensor_context(
        instance=instance, cursor=_cursor["value"], resources={"docflow": DocflowResource()}
    )
    result = s3_document_sensor(context)
    _cursor["value"] = result.cursor
    return result


def stored(doc_ids: list[str], timeout: float = 20.0) -> None:
    """Wait until the documents' objects are in the bucket: a small upload is acknowledged once it is in the
    API's durable spool, and written to the bucket right after."""
    rt = runtime()
    deadline = time.monotonic() + timeout
    for doc_id in doc_ids:
        key = rt.store.get_document(doc_id).key
        while True:
            try:
                rt.bucket.head(key)
                break
            except NotFound:
                assert time.monotonic() < deadline, f"{key} did not reach the bucket"
                time.sleep(0.05)


def process(instance, doc_ids: list[str]) -> dict[str, dg.RunRequest]:
    """One sensor tick, then the requested runs of `doc_ids` executed in this process."""
    from docflow.defs import build_defs

    stored(doc_ids)
    requests = {r.partition_key: r for r in tick(instance).run_requests or [] if r.partition_key in doc_ids}
    assert set(requests) == set(doc_ids), f"the sensor requested {sorted(requests)}, not {doc_ids}"
    existing = set(instance.get_dynamic_partitions(documents.name))
    instance.add_dynamic_partitions(documents.name, [d for d in doc_ids if d not in existing])
    job = build_defs(get_settings()).resolve_job_def("process_documents")
    for doc_id in doc_ids:
        job.execute_in_process(
            partition_key=doc_id,
            instance=instance,
            tags=requests[doc_id].tags,
            run_config=QUIET,
            raise_on_error=False,
        )
    return requests


def sse(client: httpx.Client, doc_id: str, last_event_id: str | None = None) -> list[dict]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events, current = [], {}
    with client.stream("GET", f"/v1/documents/{doc_id}/events", headers=headers, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line:
                if "event" in current:
                    events.append(current)
                current = {}
            elif line.startswith(("id:", "event:", "data:")):
                field, _, value = line.partition(":")
                current[field] = json.loads(value) if field == "data" else value.strip()
    return events


# --- schema, keys ------------------------------------------------------------------------------------------


def test_openapi_schema_is_published(server) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/documents",
        "/v1/documents:fromUrl",
        "/v1/documents/{doc_id}",
        "/v1/documents/{doc_id}/events",
        "/v1/search",
        "/v1/ask",
    ):
        assert path in paths
    assert set(paths["/v1/documents/{doc_id}"]) == {"get", "delete"}
    # the upload's parameters come from its declared route (one model, the auth and idempotency dependencies)
    upload = paths["/v1/documents"]["post"]
    params = {p["name"]: p for p in upload["parameters"]}
    assert {"priority", "passthrough", "filename", "Idempotency-Key"} <= set(params)
    # the key: a FastAPI security scheme (what /docs' Authorize button and generated clients use)
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and "X-API-Key" in scheme["description"]
    assert upload["security"] == [{"ApiKey": []}]
    assert {params[n]["in"] for n in ("priority", "passthrough", "filename")} == {"query"}
    assert params["priority"]["schema"]["maximum"] == 100 and params["priority"]["schema"]["minimum"] == -100
    assert params["passthrough"]["schema"]["type"] == "boolean"
    assert params["filename"]["schema"]["anyOf"][0]["maxLength"] == 300
    assert params["Idempotency-Key"]["in"] == "header"
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert {"priority", "passthrough", "filename"} <= set(form["properties"])
    assert "application/octet-stream" in upload["requestBody"]["content"]
    assert set(upload["responses"]) >= {"202", "401", "413", "415", "422", "429"}


def test_missing_bad_and_revoked_keys_are_401(rt, server, tenant) -> None:
    assert httpx.get(f"{server.url}/v1/documents").status_code == 401
    bad = httpx.get(f"{server.url}/v1/documents", headers={"Authorization": "Bearer dfk_nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/v1/documents", headers={"X-API-Key": tenant.key}).status_code == 200
    key = db.create_api_key(rt.store, tenant.name, "short-lived")
    db.revoke_api_key(rt.store, key)
    assert httpx.get(f"{server.url}/v1/documents", headers={"X-API-Key": key}).status_code == 401
    with rt.store.tx() as conn:  # only hashes are stored
        stored = conn.execute("SELECT key_hash FROM docflow.api_keys WHERE tenant = %s", (tenant.name,))
        hashes = {r["key_hash"] for r in stored.fetchall()}
    assert tenant.key not in hashes and hashlib.sha256(tenant.key.encode()).hexdigest() in hashes


def test_keys_in_use_are_checked_again_in_the_background_and_revocation_still_holds(rt, tenant) -> None:
    import asyncio

    async def go() -> tuple[bool, str | None, str | None]:
        keys = db.KeyCache(db.ApiDb(db.api_database_url(rt.settings), max_size=2), ttl=0.6)
        try:
            first = await keys.tenant(tenant.key)
            await asyncio.sleep(1.5)  # longer than ttl: only the background check can have kept it
            kept, _ = keys.cached(tenant.key)
            db.revoke_api_key(rt.store, tenant.key)
            await asyncio.sleep(0.9)  # a background check has run since the revocation
            return kept, first, await keys.tenant(tenant.key)
        finally:
            await keys.close()
            await keys.db.close()

    kept, first, after_revoking = asyncio.run(go())
    assert first == tenant.name and kept
    assert after_revoking is None


# --- uploads -----------------------------------------------------------------------------------------------


def test_upload_answers_202_with_the_content_id_and_writes_the_bucket(rt, tenant) -> None:
    body = text(tenant.name)
    r = tenant.upload(body, "march invoice.txt")
    assert r.status_code == 202, r.text
    accepted = r.json()
    sha = hashlib.sha256(body).hexdigest()
    assert accepted["doc_id"] == make_doc_id(tenant.name, sha, "march invoice.txt")
    assert accepted["doc_id"] == f"{tenant.name}-march-invoice-{sha[:16]}"  # found by its name in the UI
    assert (accepted["duplicate"], accepted["content_type"], accepted["size"]) == (
        False,
        "text/plain",
        len(body),
    )
    assert r.headers["location"] == f"/v1/documents/{accepted['doc_id']}"
    doc = rt.store.get_document(accepted["doc_id"])
    assert (doc.status, doc.tenant, doc.filename) == ("pending", tenant.name, "march invoice.txt")
    stored([doc.doc_id])
    assert rt.bucket.get_bytes(doc.key) == body
    assert rt.bucket.sha256_of(doc.key)[:2] == (sha, False)  # metadata written: the sensor need not re-hash

    got = tenant.client.get(f"/v1/documents/{accepted['doc_id']}")
    assert got.status_code == 200 and got.json()["status"] == "pending"

    # the same bytes again (any name): the same document, nothing new written or processed
    again = tenant.upload(body, "copy.txt")
    assert again.status_code == 202
    assert again.json()["doc_id"] == accepted["doc_id"] and again.json()["duplicate"] is True
    assert rt.bucket.get_bytes(doc.key) == body
    assert [d.doc_id for d in rt.store.list_documents(tenant=tenant.name)] == [accepted["doc_id"]]


def test_raw_body_upload(tenant) -> None:
    r = tenant.client.post(
        "/v1/documents",
        content=b"# Notes\n\nA markdown page about " + tenant.name.encode(),
        params={"filename": "notes.md"},
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 202, r.text
    assert (r.json()["filename"], r.json()["content_type"]) == ("notes.md", "text/markdown")


def test_bad_uploads(tenant) -> None:
    too_big = tenant.upload(b"a" * (MAX_BYTES + 1))
    assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"

    def chunks():  # no Content-Length: refused while streaming
        for _ in range(MAX_BYTES // 8192 + 2):
            yield b"b" * 8192

    streamed = tenant.client.post("/v1/documents", content=chunks(), params={"filename": "big.txt"})
    assert streamed.status_code == 413

    assert tenant.upload(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4, "x.gz").status_code == 415
    assert tenant.upload(bytes(range(256)) * 8, "blob.bin").status_code == 415
    assert tenant.upload(b"", "empty.txt").status_code == 422
    no_file = tenant.client.post("/v1/documents", files={"other": ("a.txt", b"hello")})
    assert no_file.status_code == 400 and "file" in no_file.json()["detail"]
    assert tenant.upload(b"hello there", priority=1000).status_code == 422
    bad_form = tenant.client.post("/v1/documents", files={"file": ("a.txt", b"hi")}, data={"priority": "x"})
    assert bad_form.status_code == 422 and bad_form.json()["detail"][0]["loc"] == ["body", "priority"]
    passthrough = tenant.upload(b"hello passthrough", passthrough="true")
    assert passthrough.status_code == 400 and "webhook" in passthrough.json()["detail"]
    assert tenant.client.get("/v1/documents").json()["documents"] == []  # nothing was registered


def test_a_middleware_added_to_the_app_sees_every_upload(rt, api_settings, instance) -> None:
    """Uploads go through FastAPI's middleware stack like every other request (no path around it)."""
    from starlette.requests import Request

    app = create_app(api_settings, instance)
    seen: list[tuple[str, str]] = []

    @app.middleware("http")
    async def record(request: Request, call_next):
        seen.append((request.method, request.url.path))
        response = await call_next(request)
        response.headers["X-Seen-By"] = "middleware"
        return response

    live = LiveServer(app)
    t = Tenant(rt, live.url)
    try:
        body = text(f"middleware {t.name}")
        r = t.upload(body, "seen.txt", priority=3)
        assert r.status_code == 202 and r.headers["x-seen-by"] == "middleware"
        assert "spool;dur=" in r.headers["server-timing"]
        assert r.json()["doc_id"] == make_doc_id(t.name, hashlib.sha256(body).hexdigest(), "seen.txt")
        raw = t.client.post("/v1/documents", content=body + b" raw", params={"filename": "raw.txt"})
        assert raw.status_code == 202 and raw.headers["x-seen-by"] == "middleware"
        assert t.upload(b"hi", priority=1000).status_code == 422
        refused = httpx.post(f"{live.url}/v1/documents", files={"file": ("a.txt", b"x")})
        assert refused.status_code == 401 and refused.headers["x-seen-by"] == "middleware"
        assert seen == [("POST", "/v1/documents")] * 4
        stored([r.json()["doc_id"], raw.json()["doc_id"]])
    finally:
        t.client.close()
        live.stop()


TRUE = ["true", "True", "TRUE", "1", "yes", "on", "t", "y", "Y"]
FALSE = ["false", "False", "0", "no", "off", "f", "n", "N"]


def test_query_and_form_accept_the_same_spellings(tenant) -> None:
    """One model validates an upload's options wherever they come from: the same booleans, the same limits,
    the same 422; a form field wins over the query."""

    def both(i: int, **options) -> tuple[httpx.Response, httpx.Response]:
        body = text(f"{tenant.name} spelling {i} {options}")
        by_query = tenant.upload(body + b" q", "q.txt", **options)
        by_form = tenant.client.post(
            "/v1/documents",
            files={"file": ("f.txt", body + b" f")},
            data={k: str(v) for k, v in options.items()},
        )
        return by_query, by_form

    for i, value in enumerate(TRUE):  # passthrough=true needs a webhook: the same 400 either way
        for r in both(i, passthrough=value):
            assert r.status_code == 400 and "webhook" in r.json()["detail"], (value, r.text)
    for i, value in enumerate(FALSE):
        for r in both(100 + i, passthrough=value):
            assert r.status_code == 202 and r.json()["passthrough"] is False, (value, r.text)
    for value in ("maybe", "2", ""):
        by_query, by_form = both(200, passthrough=value)
        assert (by_query.status_code, by_form.status_code) == (422, 422), value
        assert by_query.json()["detail"][0]["loc"] == ["query", "passthrough"]
        assert by_form.json()["detail"][0]["loc"] == ["body", "passthrough"]
    for value, status in (("7", 202), ("-100", 202), ("101", 422), ("x", 422)):
        assert [r.status_code for r in both(300, priority=value)] == [status, status], value
    over = tenant.client.post(
        "/v1/documents",
        params={"priority": "1", "filename": "query.txt"},
        files={"file": ("part.txt", text(f"{tenant.name} override"))},
        data={"priority": "2"},
    )
    assert over.status_code == 202 and (over.json()["priority"], over.json()["filename"]) == (2, "query.txt")


def test_the_bench_load_generator_times_real_202s_over_kept_alive_connections(rt, server, tenant) -> None:
    """`docflow bench --only api` sends pre-encoded uploads over connections opened beforehand."""
    import asyncio

    from docflow.bench.api import _doc, _Uploader

    async def go() -> list[tuple[float, int, str]]:
        uploader = _Uploader("127.0.0.1", server.port, tenant.key)
        uploader.prepare(tenant.name, range(3))
        await uploader.connect(2)
        answers = list(await asyncio.gather(*(uploader.upload(tenant.name, i) for i in range(2))))
        answers.append(await uploader.upload(tenant.name, 2))  # on a connection kept alive
        refused = _Uploader("127.0.0.1", server.port, "dfk_wrong")
        answers.append(await refused.upload(tenant.name, 3))
        uploader.close()
        refused.close()
        return answers

    answers = asyncio.run(go())
    expected = [
        make_doc_id(tenant.name, hashlib.sha256(_doc(tenant.name, i)).hexdigest(), f"bench-{i}.txt")
        for i in range(3)
    ]
    assert [(status, doc_id) for _, status, doc_id in answers[:3]] == [(202, d) for d in expected]
    assert answers[3][1] == 401 and "revoked" in answers[3][2]
    assert all(ms > 0 for ms, _, _ in answers)
    stored(expected)


def test_the_bench_floor_app_does_the_durable_write(rt, server, tenant, monkeypatch) -> None:
    """`docflow bench --only api` compares docflow's uploads with a bare app doing the same write: the row
    registered (a duplicate once) and the bytes in the bucket, with the sha256 metadata."""
    import asyncio

    from docflow.bench.api import FLOOR_TENANT_ENV, _doc, _Uploader, floor_app

    floor_tenant = f"{tenant.name}-floor"
    monkeypatch.setenv(FLOOR_TENANT_ENV, floor_tenant)
    live = LiveServer(floor_app())

    async def go() -> list[tuple[float, int, str]]:
        uploader = _Uploader("127.0.0.1", live.port, "unused")
        uploader.prepare(floor_tenant, range(2))
        await uploader.connect(2)
        answers = list(await asyncio.gather(*(uploader.upload(floor_tenant, i) for i in range(2))))
        answers.append(await uploader.upload(floor_tenant, 0))  # the same bytes again
        uploader.close()
        return answers

    try:
        answers = asyncio.run(go())
    finally:
        live.stop()
    bodies = [_doc(floor_tenant, i) for i in range(2)]
    expected = [
        make_doc_id(floor_tenant, hashlib.sha256(b).hexdigest(), f"bench-{i}.txt")
        for i, b in enumerate(bodies)
    ]
    assert [(status, doc_id) for _, status, doc_id in answers] == [(202, d) for d in [*expected, expected[0]]]
    assert sorted(d.doc_id for d in rt.store.list_documents(tenant=floor_tenant)) == sorted(expected)
    stored(expected)
    for doc_id, body in zip(expected, bodies, strict=True):
        key = rt.store.get_document(doc_id).key
        assert rt.bucket.get_bytes(key) == body
        assert rt.bucket.sha256_of(key)[:2] == (hashlib.sha256(body).hexdigest(), False)


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, None])
def test_multipart_bodies_are_read_whatever_their_chunking(chunk) -> None:
    import asyncio

    from docflow.api.uploads import BadUpload, read_multipart

    data = b"%PDF-like bytes\r\n--not-the-boundary\r\n" * 500 + bytes(range(256))
    request = httpx.Request(
        "POST", "http://x/", files={"file": ("r\u00e9sum\u00e9.txt", data)}, data={"priority": "5"}
    )
    body, content_type = request.read(), request.headers["content-type"]

    async def read(raw: bytes):
        async def chunks():
            step = chunk or len(raw)
            for i in range(0, len(raw), step):
                yield raw[i : i + step]

        return await read_multipart(content_type, chunks(), 10**7)

    staged, fields = asyncio.run(read(body))
    assert (staged.size, staged.sha256, staged.filename) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        "r\u00e9sum\u00e9.txt",
    )
    assert fields == {"priority": "5"}
    staged.cleanup()
    with pytest.raises(BadUpload, match="ends before"):
        asyncio.run(read(body[:-20]))  # cut short


def test_duplicate_concurrent_uploads_make_one_document(rt, tenant) -> None:
    body = text(f"concurrent {tenant.name}")
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: tenant.upload(body, f"same-{i}.txt"), range(10)))  # each its name
    assert {a.status_code for a in answers} == {202}
    [doc_id] = {a.json()["doc_id"] for a in answers}  # the id stored for the bytes, whichever name won
    assert doc_id in {
        make_doc_id(tenant.name, hashlib.sha256(body).hexdigest(), f"same-{i}.txt") for i in range(10)
    }
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 9
    assert len(rt.store.list_documents(tenant=tenant.name)) == 1
    assert tenant.client.get("/v1/usage").json()["documents"] == 1  # counted once


def test_idempotency_key_makes_concurrent_retries_safe(rt, tenant) -> None:
    headers = {"Idempotency-Key": f"req-{uuid.uuid4()}"}
    bodies = [text(f"{tenant.name} first"), text(f"{tenant.name} second")]
    with ThreadPoolExecutor(2) as pool:  # two different bodies, one key: only one request is executed
        answers = list(pool.map(lambda b: tenant.upload(b, "idem.txt", headers=headers), bodies))
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 1
    assert len(rt.store.list_documents(tenant=tenant.name)) == 1
    later = tenant.upload(bodies[0], "idem.txt", headers=headers)
    assert later.json() == answers[0].json()
    reused = tenant.client.post("/v1/documents:fromUrl", json={"url": "http://127.0.0.1/x"}, headers=headers)
    assert reused.status_code == 409


def test_quota_counts_concurrent_uploads_exactly_and_answers_429(rt, tenant) -> None:
    db.set_limits(rt.store, tenant.name, docs_per_day=3, bytes_per_day=None)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: tenant.upload(text(f"{tenant.name} quota {i}")), range(8)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 3 + [429] * 5
    refused = next(a for a in answers if a.status_code == 429)
    assert 0 < int(refused.headers["retry-after"]) <= 86401
    assert len(rt.store.list_documents(tenant=tenant.name)) == 3
    usage = tenant.client.get("/v1/usage").json()
    assert (usage["documents"], usage["docs_per_day"]) == (3, 3)
    db.set_limits(rt.store, tenant.name, docs_per_day=None, bytes_per_day=10)
    assert tenant.upload(text("bytes quota")).status_code == 429


def test_concurrent_uploads_are_acknowledged_from_the_spool_and_all_reach_the_bucket(rt, tenant) -> None:
    bodies = [text(f"{tenant.name} burst {i}") for i in range(24)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda b: tenant.upload(b, "burst.txt"), bodies))
    assert {a.status_code for a in answers} == {202}
    assert all("spool;dur=" in a.headers["server-timing"] for a in answers)  # acknowledged from the spool
    ids = [a.json()["doc_id"] for a in answers]
    stored(ids)
    for doc_id, body in zip(ids, bodies, strict=True):
        key = rt.store.get_document(doc_id).key
        assert rt.bucket.get_bytes(key) == body
        assert rt.bucket.sha256_of(key)[:2] == (hashlib.sha256(body).hexdigest(), False)
    folder = rt.settings.home.resolve() / "api-spool"
    deadline = time.monotonic() + 10
    while list(folder.glob("*.spool")):  # a segment is deleted once all its records are in the bucket
        assert time.monotonic() < deadline, list(folder.iterdir())
        time.sleep(0.05)


def test_spool_segments_of_a_stopped_process_are_written_to_the_bucket(rt, tmp_path) -> None:
    import asyncio
    import fcntl

    from docflow.api.s3put import S3Writer
    from docflow.api.spool import Record, Spool, encode

    prefix = f"spooltest-{uuid.uuid4().hex[:8]}/"
    records = [
        Record(f"{prefix}a/{i}.txt", hashlib.sha256(b"x%d" % i).hexdigest(), b"x%d" % i) for i in range(3)
    ]
    torn = encode(Record(f"{prefix}torn.txt", hashlib.sha256(b"never acked").hexdigest(), b"never acked"))
    dead = tmp_path / "1-dead.spool"  # a crashed process's segment: complete records, then a torn one
    dead.write_bytes(b"".join(encode(r) for r in records[:2]) + torn[:-3])
    live = tmp_path / "2-live.spool"  # still held by a running process: left alone
    live.write_bytes(encode(records[2]))
    with live.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)

        async def recover() -> int:
            spool = Spool(tmp_path, S3Writer(rt.settings))
            try:
                return await spool.recover()
            finally:
                await spool.s3.aclose()

        assert asyncio.run(recover()) == 2
    assert [rt.bucket.get_bytes(r.key) for r in records[:2]] == [b"x0", b"x1"]
    assert rt.bucket.sha256_of(records[0].key)[:2] == (records[0].sha256, False)
    assert [o.key for o in rt.bucket.list(prefix)] == [r.key for r in records[:2]]  # not the torn record
    assert not dead.exists() and live.exists()
    for r in records[:2]:
        rt.bucket.delete(r.key)


# --- tenants and row-level security ------------------------------------------------------------------------


def test_other_tenants_documents_are_invisible(tenant, other) -> None:
    mine = tenant.upload(text(f"private {tenant.name}")).json()["doc_id"]
    theirs = other.upload(text(f"private {other.name}")).json()["doc_id"]
    assert [d["doc_id"] for d in tenant.client.get("/v1/documents").json()["documents"]] == [mine]
    for method, path in (
        ("GET", f"/v1/documents/{theirs}"),
        ("DELETE", f"/v1/documents/{theirs}"),
        ("GET", f"/v1/documents/{theirs}/events"),
    ):
        assert tenant.client.request(method, path).status_code == 404, path
    assert other.client.get(f"/v1/documents/{theirs}").status_code == 200  # not deleted by the attempt


def test_row_level_security_holds_for_queries_without_a_tenant_filter(rt, server, tenant, other) -> None:
    tenant.upload(text(f"rls {tenant.name}"))
    other.upload(text(f"rls {other.name}"))
    url = db.api_database_url(rt.settings)
    store = db.TenantStore(url, tenant.name)
    # a "buggy handler": no tenant filter anywhere
    assert {d.tenant for d in store.list_documents()} == {tenant.name}
    with store.tx() as conn:
        tenants = conn.execute("SELECT DISTINCT tenant FROM docflow.documents").fetchall()
        assert [r["tenant"] for r in tenants] == [tenant.name]
        theirs = conn.execute("UPDATE docflow.documents SET error = 'x' WHERE tenant = %s", (other.name,))
        assert theirs.rowcount == 0
    # the API role cannot read keys
    with pytest.raises(psycopg.errors.InsufficientPrivilege), store.tx() as conn:
        conn.execute("SELECT * FROM docflow.api_keys")
    # nor write another tenant's rows
    with pytest.raises(psycopg.errors.InsufficientPrivilege), store.tx() as conn:
        conn.execute(
            "INSERT INTO docflow.documents (doc_id, tenant, bucket, key, sha256) "
            "VALUES ('x', %s, 'b', 'k', 's')",
            (other.name,),
        )
    with psycopg.connect(url) as conn:  # no tenant set: nothing at all
        assert conn.execute("SELECT count(*) FROM docflow.documents").fetchone()[0] == 0
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False)


# --- URL ingest and SSRF -----------------------------------------------------------------------------------


def test_from_url_downloads_with_the_allow_list(rt, tenant, remote) -> None:
    r = tenant.client.post("/v1/documents:fromUrl", json={"url": f"{remote.url}/doc/a-{tenant.name}.txt"})
    assert r.status_code == 202, r.text
    doc = rt.store.get_document(r.json()["doc_id"])
    assert doc.filename == f"a-{tenant.name}.txt"
    stored([doc.doc_id])
    assert b"Total due" in rt.bucket.get_bytes(doc.key)
    # a redirect to an allowed address is followed
    hop = tenant.client.post(
        "/v1/documents:fromUrl",
        json={"url": f"{remote.url}/redirect?to={remote.url}/doc/b-{tenant.name}.txt"},
    )
    assert hop.status_code == 202 and hop.json()["filename"] == f"b-{tenant.name}.txt"


def test_from_url_refuses_private_addresses_and_bad_input(rt, strict_server, tenant, remote) -> None:
    strict = httpx.Client(base_url=strict_server.url, headers={"Authorization": f"Bearer {tenant.key}"})
    for url in (
        f"{remote.url}/doc/x.txt",  # loopback, not allowed by default
        "http://10.1.2.3/doc.pdf",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://localhost/x",
    ):
        r = strict.post("/v1/documents:fromUrl", json={"url": url})
        assert (r.status_code, r.json()["error"]) == (400, "blocked_address"), url
    # allowed first hop, redirect to a private address: refused at the redirect
    for target in ("http://169.254.169.254/latest/meta-data/", f"http://127.0.0.2:{remote.port}/doc/x.txt"):
        r = tenant.client.post("/v1/documents:fromUrl", json={"url": f"{remote.url}/redirect?to={target}"})
        assert (r.status_code, r.json()["error"]) == (400, "blocked_address"), target
    assert (
        tenant.client.post("/v1/documents:fromUrl", json={"url": f"{remote.url}/missing"}).status_code == 422
    )
    assert tenant.client.post("/v1/documents:fromUrl", json={"url": f"{remote.url}/big"}).status_code == 413
    assert (
        tenant.client.post("/v1/documents:fromUrl", json={"url": f"{remote.url}/big-chunked"}).status_code
        == 413
    )
    assert tenant.client.post("/v1/documents:fromUrl", json={"url": f"{remote.url}/slow"}).status_code == 422
    assert tenant.client.post("/v1/documents:fromUrl", json={"url": "file:///etc/passwd"}).status_code == 422
    assert tenant.client.post("/v1/documents:fromUrl", json={"nope": 1}).status_code == 422
    assert tenant.client.get("/v1/documents").json()["documents"] == []
    strict.close()


# --- processing, progress, results, search, delete ----------------------------------------------------------


def test_open_progress_streams_share_one_row_query_a_tick(rt, tenant) -> None:
    import asyncio

    from docflow.api.events import RowWatch

    doc_ids = [tenant.upload(f"watched {i}\n".encode() * 20, f"w{i}.txt").json()["doc_id"] for i in range(3)]

    class Counted(db.ApiDb):
        queries = 0

        async def run(self, *args, **kwargs):
            Counted.queries += 1
            return await super().run(*args, **kwargs)

    async def go() -> tuple[list, tuple | None]:
        watch = RowWatch(Counted(db.api_database_url(rt.settings), max_size=2), every=0.2)
        try:
            first = await watch.now(tenant.name, doc_ids[0])
            Counted.queries = 0
            ticked = await asyncio.gather(
                *(watch.next(tenant.name, d) for d in [*doc_ids, *doc_ids, f"{tenant.name}-gone"])
            )
            return ticked, first
        finally:
            await watch.close()
            await watch.db.close()

    ticked, first = asyncio.run(go())
    assert Counted.queries == 1  # seven streams, one query
    assert first is not None and first[0] == "pending" and ticked[0] == first
    assert [t[0] for t in ticked[:6]] == ["pending"] * 6 and ticked[6] is None


def test_processed_document_status_events_search_ask_and_delete(rt, instance, tenant, other) -> None:
    body = INVOICE.replace("{tag}", tenant.name).encode()
    accepted = tenant.upload(body, "invoice.txt", priority=7).json()
    doc_id = accepted["doc_id"]
    other.upload(body, "invoice.txt")  # the same bytes for another tenant: another document, not processed

    requests = process(instance, [doc_id])
    assert requests[doc_id].tags["dagster/priority"] == "7"
    assert requests[doc_id].tags["docflow/tenant"] == tenant.name

    detail = tenant.client.get(f"/v1/documents/{doc_id}").json()
    assert (detail["status"], detail["doc_type"]) == ("done", "invoice")
    assert detail["confidence"] > 0.5 and detail["reasoning"] and detail["chunks"] > 0
    assert detail["fields"]["invoice_number"] == "NW-2024-0042"

    events = sse(tenant.client, doc_id)
    stages = [e["event"] for e in events]
    assert stages[0] == "uploaded" and stages[-1] == "done"
    assert set(stages[1:-1]) == {"classified", "parsed", "extracted", "embedded"}
    assert [e["id"] for e in events] == [str(i) for i in range(1, 7)]
    assert sse(tenant.client, doc_id, last_event_id="4") == events[4:]  # resumed

    hits = tenant.client.get("/v1/search", params={"q": "Northwind invoice total", "k": 3}).json()["hits"]
    assert len(hits) == 1 and hits[0]["doc_id"] == doc_id  # one hit per document
    chunks = tenant.client.get("/v1/search", params={"q": "Northwind invoice total", "chunks": "true"})
    assert chunks.status_code == 200 and {h["doc_id"] for h in chunks.json()["hits"]} == {doc_id}
    assert other.client.get("/v1/search", params={"q": "Northwind invoice total"}).json()["hits"] == []
    typed = tenant.client.get("/v1/search", params={"q": "Northwind", "type": "contract"}).json()["hits"]
    assert typed == []
    answer = tenant.client.post("/v1/ask", json={"question": "What is the Northwind invoice total?"}).json()
    assert answer["sources"] and answer["sources"][0]["doc_id"] == doc_id
    assert tenant.client.get("/v1/search").status_code == 422
    assert tenant.client.post("/v1/ask", json={"question": ""}).status_code == 422

    key = rt.store.get_document(doc_id).key
    assert tenant.client.delete(f"/v1/documents/{doc_id}").status_code == 204
    assert tenant.client.get(f"/v1/documents/{doc_id}").status_code == 404
    assert tenant.client.delete(f"/v1/documents/{doc_id}").status_code == 404
    with pytest.raises(NotFound):
        rt.bucket.head(key)
    with rt.store.tx() as conn:
        for table in ("documents", "classifications", "parsed_documents", "extractions", "chunks"):
            n = conn.execute(f"SELECT count(*) AS n FROM docflow.{table} WHERE doc_id = %s", (doc_id,))
            assert n.fetchone()["n"] == 0, table
    assert not instance.has_dynamic_partition(documents.name, doc_id)

    # uploaded again after the delete: a new registration, and a new run
    again = tenant.upload(body, "invoice.txt")
    assert (again.json()["doc_id"], again.json()["duplicate"]) == (doc_id, False)
    stored([doc_id])
    assert doc_id in {r.partition_key for r in tick(instance).run_requests or []}


def test_failed_document_ends_its_events_with_the_error(instance, tenant) -> None:
    doc_id = tenant.upload(b"%PDF-1.7\nthis is not really a pdf\n%%EOF", "broken.pdf").json()["doc_id"]
    process(instance, [doc_id])
    events = sse(tenant.client, doc_id)
    assert events[0]["event"] == "uploaded"
    assert events[-1]["event"] == "error" and events[-1]["data"]["message"]
    assert tenant.client.get(f"/v1/documents/{doc_id}").json()["status"] == "failed"


def test_events_stream_live_while_the_document_is_processed(instance, tenant) -> None:
    doc_id = tenant.upload(text(f"live {tenant.name}"), "live.txt").json()["doc_id"]
    got: list[dict] = []
    reader = threading.Thread(target=lambda: got.extend(sse(tenant.client, doc_id)))
    reader.start()
    time.sleep(1.0)  # the stream is open and has sent `uploaded` only
    process(instance, [doc_id])
    reader.join(30)
    assert not reader.is_alive()
    assert got[0]["event"] == "uploaded" and got[-1]["event"] == "done"


# --- passthrough -------------------------------------------------------------------------------------------


def test_passthrough_posts_signed_results_then_nothing_remains(
    rt, instance, tenant, remote, monkeypatch
) -> None:
    monkeypatch.setenv("DOCFLOW_API_FETCH_ALLOW_NETWORKS", '["127.0.0.1/32"]')  # the sensor's settings

    assert tenant.client.put("/v1/webhook", json={"url": "http://10.0.0.1/hook"}).status_code == 400
    hook = tenant.client.put("/v1/webhook", json={"url": f"{remote.url}/hook/{tenant.name}"})
    assert hook.status_code == 200
    secret = hook.json()["secret"]
    body = (SAMPLES / "receipt-corner-cafe.txt").read_bytes() + tenant.name.encode()
    doc_id = tenant.upload(body, "receipt.txt", passthrough="true").json()["doc_id"]
    process(instance, [doc_id])
    key = rt.store.get_document(doc_id).key
    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": doc_id}))
    assert runs

    remote.hooks.clear()
    remote.hook_failures = 1  # the first attempt fails: retried with backoff
    context = dg.build_sensor_context(instance=instance, resources={"docflow": DocflowResource()})
    sensor("passthrough_sensor")(context)

    [(headers, payload)] = [h for h in remote.hooks if json.loads(h[1])["doc_id"] == doc_id]
    assert verify(secret, payload, headers["X-Docflow-Signature"])
    assert not verify("wrong-secret", payload, headers["X-Docflow-Signature"])
    result = json.loads(payload)
    assert result["status"] == "done" and result["classification"]["doc_type"] == "receipt"
    assert result["chunks"] and result["parsed"]["markdown"]

    # nothing remains: rows, chunks, object, partition, runs and their events
    with rt.store.tx() as conn:
        for table in ("documents", "classifications", "parsed_documents", "extractions", "chunks"):
            n = conn.execute(f"SELECT count(*) AS n FROM docflow.{table} WHERE doc_id = %s", (doc_id,))
            assert n.fetchone()["n"] == 0, table
    with pytest.raises(NotFound):
        rt.bucket.head(key)
    assert not instance.has_dynamic_partition(documents.name, doc_id)
    assert instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": doc_id})) == []
    for asset in ("raw_file", "classification", "embeddings"):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[doc_id]), limit=10
        ).records
        assert records == [], asset
