"""Result ciphertexts on the node's disk from just before their fulfilment is sent until they are
on IPFS. The Redis queues carry them too, but a Redis that restarts empty would take with it the
only copy of results the requesters have already paid for; the sender's publisher finds what such
a loss left here and publishes it (aidoc.oracles.publisher.Publisher.recover_spool).

Files are named <requestId>-<resultCid> and written atomically (temp file, rename). Nothing secret
is here: each file is sealed to its requester, exactly what goes to IPFS."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aidoc.node.messages import OutboxItem


@dataclass(frozen=True)
class SpooledResult:
    request_id: int
    result_cid: str
    path: Path

    def read(self) -> bytes:
        return self.path.read_bytes()


class ResultSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def keep(self, items: list[OutboxItem]) -> None:
        for item in items:
            path = self._path(item.request_id, item.result_cid)
            if path.exists():
                continue
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(item.ciphertext)
            os.replace(tmp, path)

    def drop(self, request_id: int, result_cid: str) -> None:
        self._path(request_id, result_cid).unlink(missing_ok=True)

    def older_than(self, seconds: float) -> list[SpooledResult]:
        """What has waited here at least `seconds`: the normal path publishes within seconds."""
        cutoff = time.time() - seconds
        found = []
        for path in self.directory.iterdir():
            request_id, _, cid = path.name.partition("-")
            if not request_id.isdigit() or not cid:
                continue
            try:
                if path.stat().st_mtime <= cutoff:
                    found.append(SpooledResult(int(request_id), cid, path))
            except FileNotFoundError:
                continue
        return found

    def _path(self, request_id: int, result_cid: str) -> Path:
        return self.directory / f"{request_id}-{result_cid}"
