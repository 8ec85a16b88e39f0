"""Servers on loopback for tests: the HTTP service (uvicorn serving an app in a thread), and a tenant's web
server that receives webhooks."""

import http.server
import json
import threading
import time

import uvicorn
from ports import free_block


class LiveServer:
    def __init__(self, app) -> None:
        self.port = free_block(1)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Receiver:
    """A tenant's web server on loopback: answers each path with the statuses scripted for it (then 200),
    records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.script: dict[str, list[int]] = {}  # path -> statuses to answer, in order
        self.delay: dict[str, float] = {}  # path -> seconds to wait before answering
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((self.path, dict(self.headers), body))
                time.sleep(receiver.delay.get(self.path, 0))
                queue = receiver.script.get(self.path, [])
                status = queue.pop(0) if queue else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"no")
                except OSError:
                    pass  # the sender timed out and left

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def posts(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for _, h, b in self.requests]

    def to(self, path: str) -> list[tuple[dict[str, str], dict]]:
        return [(h, json.loads(b)) for p, h, b in self.requests if p == path]

    def stop(self) -> None:
        self.httpd.shutdown()
