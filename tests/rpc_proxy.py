"""A JSON-RPC endpoint in front of a real node that answers chosen calls its own way (an older node, a lying
one) and forwards the rest. Imported as ``from rpc_proxy import RPCProxy`` (tests/ is on ``sys.path``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

# call -> the JSON-RPC response object to send instead, or None to forward the call to the node
Intercept = Callable[[dict[str, Any]], dict[str, Any] | None]


class RPCProxy:
    """Serves on 127.0.0.1 (a free port) until :meth:`close`; ``seen`` lists every method asked."""

    def __init__(self, upstream: str, intercept: Intercept):
        self.upstream = upstream
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls = body if isinstance(body, list) else [body]
                answers = [proxy._answer(call) for call in calls]
                data = json.dumps(answers if isinstance(body, list) else answers[0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._intercept = intercept
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def forward(self, call: dict[str, Any]) -> dict[str, Any]:
        """The node's own answer to ``call``."""
        return requests.post(self.upstream, json=call, timeout=30).json()  # type: ignore[no-any-return]

    def _answer(self, call: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(call["method"])
        answer = self._intercept(call)
        return self.forward(call) if answer is None else answer

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
