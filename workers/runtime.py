"""One NodeRuntime and model cache per worker process, built on first use (after the fork)."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass

from celery.signals import worker_process_init

from aidoc.errors import ContentMismatch, ContentNotFound, ContentTooLarge, WeightsHashMismatch
from aidoc.models import DiagnosticModel, load_model
from aidoc.node.runtime import NodeRuntime

log = logging.getLogger(__name__)

_state: "WorkerState | None" = None


@dataclass
class WorkerState:
    runtime: NodeRuntime
    models: "ModelCache"


def worker_state() -> WorkerState:
    global _state
    if _state is None:
        runtime = NodeRuntime()
        _state = WorkerState(runtime=runtime, models=ModelCache(runtime))
    return _state


@worker_process_init.connect
def _fresh_state_per_child(**_: object) -> None:
    global _state
    _state = None  # connections opened before the fork must not be shared with the parent
    # Celery runs one task per process at a time; one torch thread each keeps N processes on N cores
    # instead of N x cores threads fighting over them (records are small; batches are per request).
    import torch

    torch.set_num_threads(1)


class ModelCache:
    """Loaded models by weights hash: fetched from IPFS, checked against the on-chain sha256 before
    parsing, kept in memory for the next request (the few most recently used)."""

    def __init__(self, runtime: NodeRuntime, capacity: int = 4):
        self.runtime = runtime
        self.capacity = capacity
        self._models: OrderedDict[bytes, DiagnosticModel] = OrderedDict()

    def get(self, weights_cid: str, weights_sha256: bytes) -> DiagnosticModel:
        if weights_sha256 in self._models:
            self._models.move_to_end(weights_sha256)
            return self._models[weights_sha256]
        try:
            weights = self.runtime.store.cat(weights_cid, max_size=self.runtime.oracle.max_weights_bytes)
        except (ContentMismatch, ContentNotFound, ContentTooLarge) as error:
            raise WeightsHashMismatch(f"the model weights at {weights_cid} cannot be used: {error}") from None
        if hashlib.sha256(weights).digest() != weights_sha256:
            raise WeightsHashMismatch(f"the weights at {weights_cid} do not match the sha256 registered on-chain")
        model = load_model(weights, weights_sha256)
        self._models[weights_sha256] = model
        if len(self._models) > self.capacity:
            self._models.popitem(last=False)
        log.info("loaded model %s (%s)", weights_cid, type(model).__name__)
        return model
