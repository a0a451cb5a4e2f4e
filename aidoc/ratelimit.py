"""A sliding-window rate limit per key: the relayer's per-signer hourly limit and the hosted-RPC
stand-in's per-key calls per second."""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable


class SlidingWindow:
    """At most `limit` events per key in any `window_s` seconds. Thread-safe."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._events: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def admit(self, key: str, events: int = 1) -> float | None:
        """Counts `events` more for `key` and returns None if they stay within the limit; otherwise
        counts nothing and returns how many seconds until the oldest counted event leaves the window."""
        with self._lock:
            window, now = self._events[key], self.clock()
            while window and window[0] <= now - self.window_s:
                window.popleft()
            if len(window) + events > self.limit:
                return (window[0] + self.window_s - now) if window else self.window_s
            window.extend([now] * events)
            return None

    def release(self, key: str) -> None:
        """Uncounts `key`'s latest event (one that turned out to cost nothing)."""
        with self._lock:
            if self._events[key]:
                self._events[key].pop()

    def count(self, key: str) -> int:
        with self._lock:
            return len(self._events[key])
