"""The LlamaParse backend: the real llama-cloud SDK against a local HTTP server that implements the
endpoints it calls (file upload, parse job create, job poll with expand). Its tier setting, and the formats
it reads that the local parser does not: sniffed, accepted by the API and the pipeline with the llamacloud
backend only (the pipeline and API tests on the embedded services)."""

import io
import json
import re
import threading
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import yaml
from live import LiveServer
from pydantic import ValidationError

from docflow import backends, formats, ingest, metering, sniff
from docflow.api.app import create_app
from docflow.backends import get_parser
from docflow.backends.parse.llamacloud import LlamaParseParser
from docflow.errors import BackendUnavailable, BadDocument, ConfigError, UnsupportedFormat
from docflow.models import RawFile
from docflow.pipeline import Runtime, config_fingerprint, process
from docflow.settings import LLAMA_PARSE_TIERS, Settings, data_dir, get_settings
from docflow.store import tenants as tenant_db

RAW = RawFile(doc_id="d", sha256="0" * 64, size=5, content_type="application/pdf", filename="a.pdf")


INVOICE_PAGES = [
    {"page_number": 2, "markdown": "| a | b |\n|---|---|\n| 1 | 2 |", "success": True},
    {"page_number": 1, "markdown": "# Invoice 42\n\nTotal 9.50", "success": True},
]
INVOICE_TEXT = {1: "Invoice 42 Total 9.50", 2: "a b 1 2"}  # LlamaParse's own plain text of the pages


class FakeLlamaCloud(BaseHTTPRequestHandler):
    script: ClassVar[dict] = {}  # behaviour knobs, set per test
    calls: ClassVar[list] = []
    uploads: ClassVar[list] = []  # (file name, content type, body) of each file uploaded
    jobs: ClassVar[list] = []  # each parse job's request

    def log_message(self, *args) -> None:
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.calls.append(("POST", self.path, self.headers.get("Authorization")))
        if self.path.startswith("/api/v1/beta/files"):
            if self.script.get("upload_status"):
                return self._send(self.script["upload_status"], {"detail": "nope"})
            part = re.search(rb'filename="([^"]*)"\r\nContent-Type: ([^\r]+)\r\n\r\n', body)
            assert part, body[:300]
            self.uploads.append((part[1].decode(), part[2].decode(), body))
            return self._send(200, {"id": "file-1", "name": part[1].decode(), "project_id": "p"})
        if self.path.startswith("/api/v2/parse"):
            request = json.loads(body)
            self.jobs.append(request)
            return self._send(200, {"id": "job-1", "project_id": "p", "status": "PENDING"})
        self._send(404, {"detail": "unknown"})

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, self.headers.get("Authorization")))
        polls = sum(1 for c in self.calls if c[0] == "GET")
        final = self.script.get("final", "COMPLETED")
        status = final if polls >= 2 else "RUNNING"
        job = {
            "id": "job-1",
            "project_id": "p",
            "status": status,
            "error_message": "bad scan" if final == "FAILED" else None,
        }
        body: dict = {"job": job}
        if "expand" in self.path:
            pages = self.script.get("pages", INVOICE_PAGES)
            if callable(pages):  # the answer depends on the file uploaded last
                pages = pages(self.uploads[-1][0])
            if not self.script.get("text_only"):  # the fast tier returns no markdown
                body["markdown"] = {"pages": pages}
            texts = self.script.get("text", INVOICE_TEXT)
            body["text"] = {
                "pages": [
                    {"page_number": p["page_number"], "text": texts.get(p["page_number"], p["markdown"])}
                    for p in pages
                ]
            }
        self._send(200, body)


@pytest.fixture
def server():
    FakeLlamaCloud.calls = []
    FakeLlamaCloud.script = {}
    FakeLlamaCloud.uploads = []
    FakeLlamaCloud.jobs = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLlamaCloud)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def llama_settings(url: str, tier: str = "fast") -> Settings:
    return Settings(
        parse_backend="llamacloud",
        llama_cloud_api_key="llx-test",
        llama_cloud_base_url=url,
        llama_parse_tier=tier,
    )


def parser_for(url: str, **kw) -> LlamaParseParser:
    parser = get_parser(llama_settings(url))
    assert isinstance(parser, LlamaParseParser)
    for key, value in kw.items():
        setattr(parser, key, value)
    parser.poll_initial_s = 0.01
    return parser


def test_parse_uploads_polls_and_returns_pages_in_order(server) -> None:
    doc = parser_for(server).parse(b"%PDF-1.4 x", RAW)
    assert doc.parser == "llamacloud/llamaparse" and doc.pages == 2
    assert (
        doc.markdown.index("<!-- page 1 -->")
        < doc.markdown.index("# Invoice 42")
        < doc.markdown.index("<!-- page 2 -->")
    )
    assert [b.page for b in doc.blocks if b.kind == "table"] == [2]
    assert doc.text.startswith("Invoice 42 Total 9.50")
    assert [(name, kind) for name, kind, _ in FakeLlamaCloud.uploads] == [("a.pdf", "application/pdf")]
    assert b"%PDF-1.4 x" in FakeLlamaCloud.uploads[0][2]
    assert [(j["file_id"], j["tier"]) for j in FakeLlamaCloud.jobs] == [("file-1", "fast")]
    paths = [c[1] for c in FakeLlamaCloud.calls]
    assert paths[0].startswith("/api/v1/beta/files") and paths[1].startswith("/api/v2/parse")
    assert any(re.search(r"expand=markdown", p) for p in paths)
    assert all(c[2] == "Bearer llx-test" for c in FakeLlamaCloud.calls)


def test_failed_job_is_a_bad_document(server) -> None:
    FakeLlamaCloud.script = {"final": "FAILED"}
    with pytest.raises(BadDocument, match="bad scan"):
        parser_for(server).parse(b"%PDF-1.4 x", RAW)


def test_refused_upload_is_bad_document_and_server_error_is_retryable(server) -> None:
    FakeLlamaCloud.script = {"upload_status": 422}
    with pytest.raises(BadDocument, match="422"):
        parser_for(server).parse(b"%PDF-1.4 x", RAW)
    FakeLlamaCloud.script = {"upload_status": 503}
    parser = parser_for(server)
    parser.client = parser.client.with_options(max_retries=0)
    with pytest.raises(BackendUnavailable, match="503") as info:
        parser.parse(b"%PDF-1.4 x", RAW)
    assert info.value.retryable


def test_poll_timeout_and_unreachable_are_retryable(server) -> None:
    FakeLlamaCloud.script = {"final": "RUNNING"}
    with pytest.raises(BackendUnavailable, match="not done after"):
        parser_for(server, timeout_s=0.3).parse(b"%PDF-1.4 x", RAW)
    parser = parser_for("http://127.0.0.1:9")
    parser.client = parser.client.with_options(max_retries=0)
    with pytest.raises(BackendUnavailable, match="unreachable"):
        parser.parse(b"%PDF-1.4 x", RAW)


def test_fast_tier_returns_text_only_and_its_pages_are_the_markdown(server) -> None:
    FakeLlamaCloud.script = {"text_only": True}
    with metering.metered() as meter:
        doc = parser_for(server).parse(b"%PDF-1.4 x", RAW)
    assert doc.pages == 2 and doc.markdown.index("Invoice 42 Total 9.50") < doc.markdown.index("a b 1 2")
    assert meter.lines[("llamacloud", "parse@fast")].pages_billed == 2


# --- the tier: a setting, validated, sent with each job, priced ---------------------------------------------


def test_the_tier_is_a_validated_setting_sent_with_the_job_and_metered(server) -> None:
    with pytest.raises(ValidationError, match="DOCFLOW_LLAMA_PARSE_TIER must be one of fast, cost_effective"):
        Settings(llama_parse_tier="premium")
    with pytest.raises(ConfigError, match="unknown LlamaParse tier 'premium'"):
        LlamaParseParser(api_key="llx-test", base_url=server, tier="premium")
    assert Settings(llama_parse_tier="Agentic-Plus").llama_parse_tier == "agentic_plus"

    parser = get_parser(llama_settings(server, tier="agentic_plus"))
    parser.poll_initial_s = 0.01
    with metering.metered() as meter:
        parser.parse(b"%PDF-1.4 x", RAW)
    assert [j["tier"] for j in FakeLlamaCloud.jobs] == ["agentic_plus"]
    assert meter.lines[("llamacloud", "parse@agentic_plus")].pages_billed == 2
    # every tier has a price per page of its own in the usage report's price table
    per_page = yaml.safe_load((data_dir() / "prices.yaml").read_text())["prices"]["llamacloud"]["parse"]
    assert set(LLAMA_PARSE_TIERS) <= set(per_page["per_page"])
    assert len({per_page["per_page"][tier] for tier in LLAMA_PARSE_TIERS}) == len(LLAMA_PARSE_TIERS)
    # the tier decides the markdown: another tier is another configuration (documents are re-processed)
    fast, agentic = (config_fingerprint(llama_settings(server, tier)) for tier in ("fast", "agentic"))
    assert fast != agentic


# --- formats the local parser cannot read ---------------------------------------------------------------

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# Small synthetic files with each format's real signature: a Word 97-2003 compound file (OLE2 header and
# the directory entry of its WordDocument stream), a Keynote package (iWork zip of .iwa parts) and a
# WordPerfect document (its 0xFF "WPC" header).
LEGACY = {
    "invoice-legacy.doc": (
        OLE2 + bytes(504) + "WordDocument".encode("utf-16-le") + bytes(600),
        "application/msword",
    ),
    "invoice-deck.key": (
        _zip(
            {"Index/Document.iwa": b"\x00iwa", "Index/Slide.iwa": b"\x00s", "Metadata/Properties.plist": b""}
        ),
        "application/vnd.apple.keynote",
    ),
    "invoice-letter.wpd": (
        b"\xffWPC\x10\x00\x00\x00\x01\x0a\x02\x01" + bytes(500),
        "application/vnd.wordperfect",
    ),
}
NUMBERS = {
    "invoice-legacy.doc": "INV-DOC-7",
    "invoice-deck.key": "INV-KEY-8",
    "invoice-letter.wpd": "INV-WPD-9",
}


def invoice_pages(filename: str) -> list[dict]:
    """What the fake LlamaParse reads from each file: an invoice whose number names the file."""
    markdown = (
        f"# Invoice\n\nNorthwind Traders Ltd\n\nInvoice number: {NUMBERS[filename]}\n\n"
        "Invoice date: 2024-03-01\n\nTotal due: 1,200.00 EUR\n"
    )
    return [{"page_number": 1, "markdown": markdown, "success": True}]


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        *((data, name, kind) for name, (data, kind) in LEGACY.items()),
        (OLE2 + bytes(1024), "ledger.wps", "application/vnd.ms-works"),  # an OLE2 file known by its name
        (_zip({"Index/Document.iwa": b"x"}), "report.pages", "application/vnd.apple.pages"),
        (_zip({"Index/Document.iwa": b"x"}), "sheet.numbers", "application/vnd.apple.numbers"),
        (_zip({"[Content_Types].xml": b"<x/>", "xl/workbook.bin": b"x"}), "b.xlsb", sniff.XLSB),
        (b"\x00\x00\x00\x18ftypheic" + bytes(64), "IMG_0001.HEIC", "image/heic"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(64), "", "image/heic"),  # by its bytes alone
        (b"ID3\x04\x00" + bytes(300), "call.mp3", "audio/mpeg"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><text>Total 3</text></svg>', "logo.svg", sniff.SVG),
        # names never overrule bytes: garbage called .pdf or .wpd is binary, a plain zip called .docx a zip
        (bytes(range(256)) * 8, "renamed.pdf", sniff.BINARY),
        (bytes(range(256)) * 8, "renamed.wpd", sniff.BINARY),
        (_zip({"a.txt": b"x"}), "archive.zip", sniff.ZIP),
    ],
)
def test_formats_the_bytes_cannot_tell_are_named_by_their_extension(data, filename, expected) -> None:
    assert sniff.sniff_content_type(data, filename) == expected


def test_which_formats_are_read_depends_on_the_parse_backend_only() -> None:
    local, llama = Settings(parse_backend="local"), Settings(parse_backend="llamacloud")
    assert backends.readable_types(llama) == formats.llamaparse_types()  # the list in data/formats.yaml
    assert {"doc", "key", "pages", "numbers", "wpd", "heic", "svg", "mp3"} <= set(
        formats.llamaparse_extensions()
    )
    for name, (_, kind) in LEGACY.items():
        backends.check_readable(llama, kind, name)
        with pytest.raises(UnsupportedFormat) as refused:
            backends.check_readable(local, kind, name)
        message = str(refused.value)
        assert f"unsupported document type {kind} ({name})" in message
        assert "DOCFLOW_PARSE_BACKEND=local does not read it (LlamaParse does" in message
    backends.check_readable(local, sniff.MARKDOWN, "notes.md")  # the local parser's formats stay as they were
    listing = r"LlamaParse reads \(https://.*supported_document_types/\): \.pdf, \.docx, "
    with pytest.raises(UnsupportedFormat, match=listing):
        backends.check_readable(llama, sniff.MARKDOWN, "notes.md")  # not in LlamaParse's list
    for settings in (local, llama):
        with pytest.raises(UnsupportedFormat, match="application/octet-stream"):
            backends.check_readable(settings, sniff.BINARY, "blob.bin")


def _register(rt, tenant: str, folder: Path) -> dict[str, str]:
    ids = {}
    for name, (data, _) in LEGACY.items():
        path = folder / name
        path.write_bytes(data)
        up = ingest.plan_upload(path, folder, rt.settings.prefix, tenant)
        ingest.upload(rt.bucket, rt.store, up)
        ids[name] = up.doc_id
    return ids


STEPS = ("raw_file", "classification", "parsed_markdown", "extracted_fields")


def test_llamaparse_formats_go_through_the_pipeline_and_the_local_backend_refuses_them(
    rt, server, tmp_path
) -> None:
    FakeLlamaCloud.script = {"pages": invoice_pages, "text": {}}  # each page's text: its markdown
    llama = Runtime(store=rt.store, bucket=rt.bucket, settings=llama_settings(server))
    ids = _register(rt, f"lp{uuid.uuid4().hex[:6]}", tmp_path)
    for name, doc_id in ids.items():
        process(llama, doc_id, STEPS)
        doc = rt.store.get_document(doc_id)
        assert doc.error is None and doc.content_type == LEGACY[name][1], doc.error
        assert NUMBERS[name] in rt.store.load_parsed(doc_id).markdown
        assert NUMBERS[name] in json.dumps(rt.store.load_extraction(doc_id).fields)
    # LlamaParse got each file under its name and type, with the configured tier
    assert [(name, kind) for name, kind, _ in FakeLlamaCloud.uploads] == [
        (name, kind) for name, (_, kind) in LEGACY.items()
    ]
    assert {j["tier"] for j in FakeLlamaCloud.jobs} == {"fast"}

    local = Runtime(store=rt.store, bucket=rt.bucket, settings=Settings(parse_backend="local"))
    (tmp_path / "again").mkdir()
    for name, doc_id in _register(rt, f"lo{uuid.uuid4().hex[:6]}", tmp_path / "again").items():
        process(local, doc_id, STEPS)
        doc = rt.store.get_document(doc_id)
        assert doc.status == "failed" and doc.content_type == LEGACY[name][1]
        assert doc.error.startswith(f"raw_file: unsupported document type {LEGACY[name][1]} ({name})")
        assert "LlamaParse does" in doc.error
    assert len(FakeLlamaCloud.uploads) == len(LEGACY)  # nothing more was sent


@pytest.fixture(scope="module")
def apps(docflow_env, instance):
    """The API with each parse backend (nothing is parsed here: uploads are only accepted or refused)."""
    base = get_settings()
    servers = {
        kind: LiveServer(create_app(base.model_copy(update={"parse_backend": kind}), instance))
        for kind in ("local", "llamacloud")
    }
    yield servers
    for live in servers.values():
        live.stop()


def test_the_api_accepts_llamaparse_formats_only_with_the_llamacloud_backend(rt, apps) -> None:
    tenant = f"la{uuid.uuid4().hex[:6]}"
    key = tenant_db.create_api_key(rt.store, tenant, "test")
    for kind, live in apps.items():
        with httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            for name, (data, content_type) in LEGACY.items():
                answer = client.post("/v1/documents", files={"file": (name, data)})
                if kind == "llamacloud":
                    assert answer.status_code == 202, answer.text
                    assert answer.json()["content_type"] == content_type
                else:
                    assert answer.status_code == 415, answer.text
                    body = answer.json()
                    assert body["error"] == "unsupported_type"
                    assert f"unsupported document type {content_type} ({name})" in body["detail"]
                    assert "LlamaParse does: DOCFLOW_PARSE_BACKEND=llamacloud" in body["detail"]
