"""A JSON-RPC proxy that behaves like a hosted provider's free tier in front of a local chain: it
refuses development methods (evm_*, anvil_*, unlocked-account signing), lists no accounts, and
answers HTTP 429 to a key that makes more than `rate` calls in any one-second window (each call of
a batch counts, as hosted providers count them). It counts every call by key and method, so a test
or a benchmark can say what a client cost. Each URL path is a key with its own limit and counts
(`http://127.0.0.1:PORT/node`, `.../cli`), as a provider's per-project keys are."""

from __future__ import annotations

import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from aidoc.ratelimit import SlidingWindow

DEV_METHOD_PREFIXES = ("evm_", "anvil_", "hardhat_", "debug_", "personal_", "ganache_", "miner_", "txpool_")
UNLOCKED_METHODS = frozenset({"eth_sendTransaction", "eth_sign", "eth_signTransaction", "eth_signTypedData_v4"})
WINDOW_S = 1.0


class HostedRpc:
    """The proxy; `url(key)` is what a client connects to. Start with `start()`, stop with `stop()`
    (or use it as a context manager)."""

    def __init__(self, upstream: str, rate: int = 25) -> None:
        self.upstream = upstream
        self.rate = rate
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()  # (key, method) -> calls
        self.refused: collections.Counter[str] = collections.Counter()  # key -> 429 answers
        self._window = SlidingWindow(rate, WINDOW_S)
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = proxy.handle(self.path.strip("/") or "default", body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]

    def url(self, key: str = "default") -> str:
        return f"http://127.0.0.1:{self.port}/{key}"

    def start(self) -> "HostedRpc":
        threading.Thread(target=self._server.serve_forever, name="hosted-rpc", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "HostedRpc":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def total(self, key: str) -> int:
        """Every call `key` made, refused or not."""
        with self._lock:
            return sum(count for (k, _), count in self.calls.items() if k == key)

    def by_method(self, key: str) -> dict[str, int]:
        with self._lock:
            return {method: count for (k, method), count in sorted(self.calls.items()) if k == key}

    def handle(self, key: str, body: bytes) -> tuple[int, Any]:
        """The HTTP status and JSON answer for one POST from `key`."""
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
        calls = payload if isinstance(payload, list) else [payload]
        with self._lock:
            for call in calls:
                self.calls[(key, str(call.get("method")) if isinstance(call, dict) else "?")] += 1
            if self._window.admit(key, len(calls)) is not None:
                self.refused[key] += 1
                return 429, {"jsonrpc": "2.0", "id": None,
                             "error": {"code": 429, "message": f"rate limit of {self.rate} calls/s exceeded"}}
        answers = [self._refusal(call) for call in calls]
        forward = [call for call, answer in zip(calls, answers) if answer is None]
        if forward:
            upstream = self._forward(forward if isinstance(payload, list) else forward[0])
            upstream = upstream if isinstance(upstream, list) else [upstream]
            by_id = {json.dumps(answer.get("id")): answer for answer in upstream if isinstance(answer, dict)}
            answers = [answer if answer is not None else by_id.get(json.dumps(call.get("id")))
                       for call, answer in zip(calls, answers)]
        return 200, answers if isinstance(payload, list) else answers[0]

    @staticmethod
    def _refusal(call: Any) -> dict | None:
        """The answer a hosted provider gives `call` itself, or None to forward it."""
        if not isinstance(call, dict):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        method = str(call.get("method"))
        if method == "eth_accounts":
            return {"jsonrpc": "2.0", "id": call.get("id"), "result": []}
        if method.startswith(DEV_METHOD_PREFIXES) or method in UNLOCKED_METHODS:
            return {"jsonrpc": "2.0", "id": call.get("id"),
                    "error": {"code": -32601, "message": f"the method {method} does not exist/is not available"}}
        return None

    def _forward(self, payload: Any) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            return session.post(self.upstream, json=payload, timeout=30).json()
        except (requests.exceptions.RequestException, ValueError) as error:
            calls = payload if isinstance(payload, list) else [payload]
            answers = [{"jsonrpc": "2.0", "id": call.get("id"),
                        "error": {"code": -32603, "message": f"upstream unavailable: {error}"}} for call in calls]
            return answers if isinstance(payload, list) else answers[0]
