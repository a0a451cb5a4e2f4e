"""New block heads pushed over WebSocket (eth_subscribe "newHeads"), for an endpoint that offers
it (AIDOC_WS_URL): the watcher then learns of each block without asking, and an idle node costs
its endpoint one eth_getLogs per block instead of an eth_blockNumber poll and an eth_getLogs."""

from __future__ import annotations

import json
import logging

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from aidoc.errors import TransientError

log = logging.getLogger(__name__)


class HeadSubscription:
    """One newHeads subscription. `next_head(timeout)` is the number of the next block announced,
    or None when none came within `timeout` s; TransientError when the connection fails (the caller
    polls instead, and subscribes again later)."""

    def __init__(self, url: str, open_timeout: float = 10.0):
        self.url = url
        self.open_timeout = open_timeout
        self._connection: ClientConnection | None = None

    def open(self) -> "HeadSubscription":
        try:
            self._connection = connect(self.url, open_timeout=self.open_timeout, max_size=2**20)
            self._connection.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                              "params": ["newHeads"]}))
            answer = json.loads(self._connection.recv(timeout=self.open_timeout))
        except (OSError, TimeoutError, WebSocketException, ValueError) as error:
            self.close()
            raise TransientError(f"no newHeads subscription at {self.url}: {error}") from None
        if "result" not in answer:
            self.close()
            raise TransientError(f"{self.url} refused eth_subscribe newHeads: {answer.get('error', answer)}")
        return self

    def next_head(self, timeout: float) -> int | None:
        if self._connection is None:
            raise TransientError(f"the newHeads subscription at {self.url} is closed")
        try:
            message = json.loads(self._connection.recv(timeout=timeout))
        except TimeoutError:
            return None
        except (OSError, WebSocketException, ValueError) as error:
            self.close()
            raise TransientError(f"the newHeads subscription at {self.url} failed: {error}") from None
        head = message.get("params", {}).get("result", {}).get("number") if isinstance(message, dict) else None
        return int(head, 16) if isinstance(head, str) else None

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except (OSError, WebSocketException):
                pass
            self._connection = None
