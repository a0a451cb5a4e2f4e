"""Where a diagnosis spends its time: named stages in milliseconds, carried with the work from the
watcher to the sender and kept in Redis for `make bench` (never anything about the record)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class Stages:
    """Accumulates wall time per stage name."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - started) * 1000)

    def add(self, name: str, ms: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + ms
