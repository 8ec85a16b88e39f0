"""A local HTTP server speaking the parts of the OpenAI API docflow uses (embeddings, chat completions) and a
Cohere-style /rerank. Tests point the real clients at it with base_url; only the remote service is fake.

Embeddings are deterministic hashed bags of words (texts sharing words are close), unit length, of the
requested `dimensions` (default 16). Failures are scripted: `stub.fail(path, status, headers, body)` queues a
response that the next request to that path gets instead of a success.
"""

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def hashed_vector(text: str, dim: int) -> list[float]:
    vector = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        h = int(hashlib.sha256(word.encode()).hexdigest(), 16)
        vector[h % dim] += 1.0 if (h >> 8) % 2 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector] if any(vector) else [1.0 / math.sqrt(dim)] * dim


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class OpenAIStub:
    default_dim: int = 16
    chat_reply: Callable[[list[dict[str, str]]], str] = lambda messages: "stub answer [1]"
    requests: list[Request] = field(default_factory=list)
    _failures: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = field(default_factory=dict)

    def fail(self, path: str, status: int, headers: dict[str, str] | None = None, body: Any = None) -> None:
        error = body or {"error": {"message": f"stub error {status}", "type": "stub", "code": None}}
        self._failures.setdefault(path, []).append((status, headers or {}, error))

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(path)]

    # --- the endpoints -----------------------------------------------------------------------------
    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        for suffix, queue in self._failures.items():
            if path.endswith(suffix) and queue:
                return queue.pop(0)
        if path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            dim = int(body.get("dimensions") or self.default_dim)
            data = [
                {"object": "embedding", "index": i, "embedding": hashed_vector(text, dim)}
                for i, text in enumerate(inputs)
            ]
            data.reverse()  # the API does not promise order: the client must sort by index
            tokens = sum(len(t.split()) for t in inputs)
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            return 200, {}, {"object": "list", "data": data, "model": body["model"], "usage": usage}
        if path.endswith("/chat/completions"):
            content = self.chat_reply(body["messages"])
            return (
                200,
                {},
                {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
            )
        if path.endswith("/rerank"):
            query_words = set(re.findall(r"\w+", body["query"].lower()))
            scores = [len(query_words & set(re.findall(r"\w+", d.lower()))) for d in body["documents"]]
            results = [{"index": i, "relevance_score": float(s)} for i, s in enumerate(scores)]
            results.sort(key=lambda r: -r["relevance_score"])
            return 200, {}, {"results": results[: body.get("top_n") or len(results)]}
        return 404, {}, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}


class _Handler(BaseHTTPRequestHandler):
    stub: OpenAIStub

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.stub.requests.append(Request(self.path, body, headers, time.monotonic()))
        status, headers, payload = self.stub.handle(self.path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


class StubServer:
    """`with StubServer() as (stub, base_url):` — the server runs in a thread on a free loopback port."""

    def __init__(self, stub: OpenAIStub | None = None) -> None:
        self.stub = stub or OpenAIStub()
        handler = type("Handler", (_Handler,), {"stub": self.stub})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> tuple[OpenAIStub, str]:
        self._thread.start()
        return self.stub, self.base_url

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
