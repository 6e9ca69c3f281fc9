"""A real JSON-RPC HTTP proxy on 127.0.0.1 in front of a node, behaving like a public provider.

It forwards every request (single or batch) to ``upstream`` and counts them by method. Optionally it
refuses ``eth_getLogs`` ranges wider than ``max_log_range`` blocks (the words Alchemy/Infura-style
providers use), answers HTTP 401 to any request without the header ``require_header``, and lets an
``intercept`` answer chosen calls its own way (an older node, a lying one). Imported as
``from rpcproxy import RPCProxy`` (tests/ is on ``sys.path``).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import requests

# call -> the JSON-RPC response object to send instead, or None to forward the call
Intercept = Callable[[dict[str, Any]], dict[str, Any] | None]


class RPCProxy:
    """``with RPCProxy(upstream, max_log_range=1000) as proxy: ... proxy.url ... proxy.counts``."""

    def __init__(
        self,
        upstream: str,
        *,
        max_log_range: int | None = None,
        require_header: tuple[str, str] | None = None,
        intercept: Intercept | None = None,
    ):
        self.upstream = upstream
        self.max_log_range = max_log_range
        self.require_header = require_header
        self.intercept = intercept
        self.counts: Counter[str] = Counter()
        self.seen: list[str] = []  # every method asked, in order
        self.log_ranges: list[tuple[int, int]] = []  # every eth_getLogs range forwarded
        self.refused = 0
        self.unauthorised = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RPCProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RPCProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def forward(self, call: dict[str, Any]) -> dict[str, Any]:
        """The node's own answer to ``call``."""
        return self._upstream(call)  # type: ignore[no-any-return]

    def _upstream(self, body: Any) -> Any:
        return self._session().post(self.upstream, json=body, timeout=60).json()

    def _block(self, tag: Any) -> int:
        if tag in (None, "latest", "pending", "safe", "finalized"):
            return int(
                self._upstream({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})[
                    "result"
                ],
                16,
            )
        if tag == "earliest":
            return 0
        return int(tag, 16) if isinstance(tag, str) else int(tag)

    def _answer(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """The proxy's own answer to ``call`` (a refusal), or None to forward it."""
        method = str(call.get("method"))
        with self._lock:
            self.counts[method] += 1
            self.seen.append(method)
        if self.intercept is not None:
            answer = self.intercept(call)
            if answer is not None:
                return answer
        if method != "eth_getLogs":
            return None
        params = (call.get("params") or [{}])[0]
        start, stop = (
            self._block(params.get("fromBlock", "latest")),
            self._block(params.get("toBlock", "latest")),
        )
        if self.max_log_range is not None and stop - start + 1 > self.max_log_range:
            with self._lock:
                self.refused += 1
            return {
                "jsonrpc": "2.0",
                "id": call.get("id"),
                "error": {
                    "code": -32600,
                    "message": f"eth_getLogs block range too large: {stop - start + 1} > {self.max_log_range} blocks",
                },
            }
        with self._lock:
            self.log_ranges.append((start, stop))
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        if self.require_header is not None:
            name, value = self.require_header
            if handler.headers.get(name) != value:
                with self._lock:
                    self.unauthorised += 1
                self._reply(handler, 401, b'{"error": "unauthorized"}')
                return
        body = json.loads(raw)
        calls = body if isinstance(body, list) else [body]
        answers: list[dict[str, Any] | None] = [self._answer(c) for c in calls]
        forward = [c for c, a in zip(calls, answers, strict=True) if a is None]
        if forward:
            got = self._upstream(forward if isinstance(body, list) else forward[0])
            got_list = got if isinstance(got, list) else [got]
            by_id = {g.get("id"): g for g in got_list}
            answers = [
                a if a is not None else by_id[c.get("id")] for c, a in zip(calls, answers, strict=True)
            ]
        out = answers if isinstance(body, list) else answers[0]
        self._reply(handler, 200, json.dumps(out).encode())

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
