"""Remote classify backends against a local HTTP server that speaks the documented APIs.

The real clients (`llama-cloud`, `openai`) are pointed at the server with `base_url`; only the remote
service is replaced. `FakeAPI` is also used by test_extract_remote.py.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from docflow.backends import CLASSIFIERS, get_classifier
from docflow.backends.classify.llamacloud import LlamaCloudClassifier
from docflow.backends.classify.openai import OpenAIClassifier
from docflow.backends.classify.remote import RemoteError
from docflow.errors import BackendUnavailable, ConfigError
from docflow.models import RawFile
from docflow.settings import Settings

Reply = tuple[int, Any]


class FakeAPI:
    """A scripted JSON API: per (method, path prefix) a list of replies, the last one repeating."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                api.requests.append(
                    {
                        "method": method,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                status, payload = api.reply(method, self.path.split("?", 1)[0])
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after-ms", "10")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def script(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method, path)] = list(replies)

    def reply(self, method: str, path: str) -> Reply:
        matches = [key for key in self.routes if key[0] == method and path.startswith(key[1])]
        if not matches:
            return 404, {"detail": f"no route {method} {path}"}
        replies = self.routes[max(matches, key=lambda k: len(k[1]))]
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def calls(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    server = FakeAPI()
    yield server
    server.close()


RAW = RawFile(doc_id="d", sha256="", size=10, content_type="text/plain", filename="bill-17.txt")
INVOICE_TEXT = b"INVOICE\nInvoice number: 17\nBill to: Globex\nTotal: 144.00 EUR\n"


# --- LlamaCloud Classify ------------------------------------------------------------------------------


def llama_settings(api: FakeAPI, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "classify_backend": "llamacloud",
        "llama_cloud_api_key": SecretStr("llx-test"),
        "llama_cloud_base_url": api.url,
        "remote_poll_interval_s": 0.01,
        "remote_max_retries": 2,
        "remote_timeout_s": 10.0,
    }
    values.update(kw)
    return Settings(**values)


def classify_job(status: str, result: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "cls-1",
        "configuration": {"rules": [{"type": "invoice", "description": "a bill"}]},
        "document_input_type": "file_id",
        "file_input": "dfl-1",
        "project_id": "p",
        "status": status,
        "user_id": "u",
        "result": result,
    }


FILE = {"id": "dfl-1", "name": "bill-17.txt", "project_id": "p"}


def test_llamacloud_classify_sends_rules_and_maps_the_result(api: FakeAPI) -> None:
    api.script("POST", "/api/v1/beta/files", (200, FILE))
    api.script("POST", "/api/v2/classify", (200, classify_job("PENDING")))
    api.script(
        "GET",
        "/api/v2/classify/cls-1",
        (200, classify_job("RUNNING")),
        (
            200,
            classify_job("COMPLETED", {"type": "invoice", "confidence": 0.93, "reasoning": "says INVOICE"}),
        ),
    )
    clf = LlamaCloudClassifier.from_settings(llama_settings(api))
    result = clf.classify(INVOICE_TEXT, RAW)
    assert (result.doc_type, result.confidence, result.reasoning) == ("invoice", 0.93, "says INVOICE")
    assert result.backend == "llamacloud/classify"
    sent = json.loads(api.calls("POST", "/api/v2/classify")[0]["body"])
    rule_types = [r["type"] for r in sent["configuration"]["rules"]]
    assert "invoice" in rule_types and "contract" in rule_types and "other" not in rule_types
    assert all(r["description"] for r in sent["configuration"]["rules"])
    assert sent["file_input"] == "dfl-1"
    upload = api.calls("POST", "/api/v1/beta/files")[0]
    assert upload["headers"]["authorization"] == "Bearer llx-test"
    assert INVOICE_TEXT in upload["body"]  # the document's bytes were uploaded (multipart)
    assert len(api.calls("GET", "/api/v2/classify/cls-1")) == 2  # polled until COMPLETED


def test_llamacloud_low_confidence_or_no_type_is_other(api: FakeAPI) -> None:
    api.script("POST", "/api/v1/beta/files", (200, FILE))
    api.script("POST", "/api/v2/classify", (200, classify_job("PENDING")))
    api.script(
        "GET",
        "/api/v2/classify/cls-1",
        (200, classify_job("COMPLETED", {"type": "invoice", "confidence": 0.2, "reasoning": "weak"})),
        (200, classify_job("COMPLETED", {"type": None, "confidence": 0.9, "reasoning": "no rule fits"})),
    )
    clf = LlamaCloudClassifier.from_settings(llama_settings(api))
    weak = clf.classify(INVOICE_TEXT, RAW)
    assert weak.doc_type == "other" and "below the threshold" in weak.reasoning
    none = clf.classify(INVOICE_TEXT, RAW)
    assert none.doc_type == "other" and "no rule matched" in none.reasoning


def test_llamacloud_429_then_success_is_retried_by_the_client(api: FakeAPI) -> None:
    api.script("POST", "/api/v1/beta/files", (429, {"detail": "slow down"}), (200, FILE))
    api.script("POST", "/api/v2/classify", (200, classify_job("PENDING")))
    done = classify_job("COMPLETED", {"type": "invoice", "confidence": 0.9, "reasoning": "ok"})
    api.script("GET", "/api/v2/classify/cls-1", (200, done))
    result = LlamaCloudClassifier.from_settings(llama_settings(api)).classify(INVOICE_TEXT, RAW)
    assert result.doc_type == "invoice"
    assert len(api.calls("POST", "/api/v1/beta/files")) == 2


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (429, BackendUnavailable, "HTTP 429"),
        (503, BackendUnavailable, "HTTP 503"),
        (401, ConfigError, "DOCFLOW_LLAMA_CLOUD_API_KEY"),
        (400, RemoteError, "bad file"),
    ],
)
def test_llamacloud_errors_map_to_the_error_tree(
    api: FakeAPI, status: int, error: type, message: str
) -> None:
    api.script("POST", "/api/v1/beta/files", (status, {"detail": "bad file"}))
    clf = LlamaCloudClassifier.from_settings(llama_settings(api, remote_max_retries=0))
    with pytest.raises(error, match=message) as info:
        clf.classify(INVOICE_TEXT, RAW)
    assert info.value.retryable is (error is BackendUnavailable)


def test_llamacloud_failed_job_is_a_clear_error(api: FakeAPI) -> None:
    api.script("POST", "/api/v1/beta/files", (200, FILE))
    api.script("POST", "/api/v2/classify", (200, classify_job("PENDING")))
    failed = classify_job("FAILED") | {"error_message": "could not parse the file"}
    api.script("GET", "/api/v2/classify/cls-1", (200, failed))
    with pytest.raises(RemoteError, match="could not parse the file"):
        LlamaCloudClassifier.from_settings(llama_settings(api)).classify(INVOICE_TEXT, RAW)


def test_timeouts_are_retryable() -> None:
    import socket

    with socket.socket() as sock:  # accepts connections (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        s = Settings(
            llama_cloud_api_key=SecretStr("k"),
            llama_cloud_base_url=url,
            remote_timeout_s=0.3,
            remote_max_retries=0,
        )
        with pytest.raises(BackendUnavailable, match="did not answer"):
            LlamaCloudClassifier.from_settings(s).classify(INVOICE_TEXT, RAW)


# --- OpenAI structured outputs ------------------------------------------------------------------------


def openai_settings(api: FakeAPI, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "classify_backend": "openai",
        "openai_api_key": SecretStr("sk-test"),
        "openai_base_url": api.url + "/v1",
        "openai_model": "test-model",
        "remote_max_retries": 2,
        "remote_timeout_s": 10.0,
    }
    values.update(kw)
    return Settings(**values)


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }


def test_openai_classify_uses_a_json_schema_and_maps_the_answer(api: FakeAPI) -> None:
    answer = {"doc_type": "invoice", "confidence": 0.88, "reasoning": "'Invoice number' and a total"}
    api.script("POST", "/v1/chat/completions", (200, completion(json.dumps(answer))))
    result = OpenAIClassifier.from_settings(openai_settings(api)).classify(INVOICE_TEXT, RAW)
    assert (result.doc_type, result.confidence) == ("invoice", 0.88)
    assert "Invoice number" in result.reasoning
    assert result.backend == "openai/test-model"
    request = api.calls("POST", "/v1/chat/completions")[0]
    sent = json.loads(request["body"])
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert sent["model"] == "test-model"
    schema = sent["response_format"]["json_schema"]["schema"]
    assert "invoice" in schema["properties"]["doc_type"]["enum"]
    assert set(schema["required"]) == {"doc_type", "confidence", "reasoning"}
    assert "Invoice number: 17" in sent["messages"][-1]["content"]


def test_openai_429_then_success(api: FakeAPI) -> None:
    answer = {"doc_type": "contract", "confidence": 0.7, "reasoning": "WHEREAS"}
    api.script(
        "POST",
        "/v1/chat/completions",
        (429, {"error": {"message": "rate"}}),
        (200, completion(json.dumps(answer))),
    )
    result = OpenAIClassifier.from_settings(openai_settings(api)).classify(INVOICE_TEXT, RAW)
    assert result.doc_type == "contract"
    assert len(api.calls("POST", "/v1/chat/completions")) == 2


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        ((500, {"error": {"message": "boom"}}), BackendUnavailable, "HTTP 500"),
        ((429, {"error": {"message": "rate"}}), BackendUnavailable, "HTTP 429"),
        ((403, {"error": {"message": "no"}}), ConfigError, "DOCFLOW_OPENAI_API_KEY"),
        ((400, {"error": {"message": "model not found"}}), RemoteError, "model not found"),
        ((200, completion("I think it is an invoice")), RemoteError, "did not answer JSON"),
        ((200, completion('{"doc_type": "menu", "confidence": 1, "reasoning": ""}')), RemoteError, "unknown"),
    ],
)
def test_openai_errors_map_to_the_error_tree(api: FakeAPI, reply: Reply, error: type, message: str) -> None:
    api.script("POST", "/v1/chat/completions", reply)
    clf = OpenAIClassifier.from_settings(openai_settings(api, remote_max_retries=0))
    with pytest.raises(error, match=message):
        clf.classify(INVOICE_TEXT, RAW)


def test_openai_below_threshold_is_other(api: FakeAPI) -> None:
    answer = {"doc_type": "invoice", "confidence": 0.1, "reasoning": "a guess"}
    api.script("POST", "/v1/chat/completions", (200, completion(json.dumps(answer))))
    result = OpenAIClassifier.from_settings(openai_settings(api)).classify(INVOICE_TEXT, RAW)
    assert result.doc_type == "other"
    assert "below the threshold" in result.reasoning


@pytest.mark.parametrize(
    ("kind", "env"), [("openai", "DOCFLOW_OPENAI_API_KEY"), ("llamacloud", "LLAMA_CLOUD")]
)
def test_missing_api_key_names_the_env_var(kind: str, env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCFLOW_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("DOCFLOW_LLAMA_CLOUD_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=env):
        get_classifier(Settings(classify_backend=kind, openai_api_key=None, llama_cloud_api_key=None))


def test_remote_backends_are_registered() -> None:
    assert {"local", "llamacloud", "openai"} <= set(CLASSIFIERS)
