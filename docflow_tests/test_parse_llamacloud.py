"""The LlamaParse backend: the real llama-cloud SDK against a local HTTP server that implements the
endpoints it calls (file upload, parse job create, job poll with expand)."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from docflow.backends import get_parser
from docflow.backends.parse.llamacloud import LlamaParseParser
from docflow.errors import BackendUnavailable, BadDocument
from docflow.models import RawFile
from docflow.settings import Settings

RAW = RawFile(doc_id="d", sha256="0" * 64, size=5, content_type="application/pdf", filename="a.pdf")


class FakeLlamaCloud(BaseHTTPRequestHandler):
    script: ClassVar[dict] = {}  # behaviour knobs, set per test
    calls: ClassVar[list] = []

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
            assert b"%PDF" in body
            return self._send(200, {"id": "file-1", "name": "a.pdf", "project_id": "p"})
        if self.path.startswith("/api/v2/parse"):
            request = json.loads(body)
            assert request["file_id"] == "file-1" and request["tier"] == "fast"
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
            body["markdown"] = {
                "pages": [
                    {"page_number": 2, "markdown": "| a | b |\n|---|---|\n| 1 | 2 |", "success": True},
                    {"page_number": 1, "markdown": "# Invoice 42\n\nTotal 9.50", "success": True},
                ]
            }
            body["text"] = {
                "pages": [
                    {"page_number": 1, "text": "Invoice 42 Total 9.50"},
                    {"page_number": 2, "text": "a b 1 2"},
                ]
            }
        self._send(200, body)


@pytest.fixture
def server():
    FakeLlamaCloud.calls = []
    FakeLlamaCloud.script = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLlamaCloud)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def parser_for(url: str, **kw) -> LlamaParseParser:
    settings = Settings(
        parse_backend="llamacloud",
        llama_cloud_api_key="llx-test",
        llama_cloud_base_url=url,
        llama_parse_tier="fast",
    )
    parser = get_parser(settings)
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
