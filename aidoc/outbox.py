"""The hand-off from a node's Celery workers to its transaction sender: a reliable queue in Redis.

Workers push finished work (a sealed result to fulfil, or a failure to report). The sender moves
items atomically (LMOVE) into a processing list, and removes them only once the chain has settled
them, so a sender that dies mid-batch loses nothing: on start it puts the processing list back.
Replaying an item is harmless, because fulfilBatch skips requests that are no longer pending.

Results whose fulfilment is final wait in a third list until their ciphertext is on IPFS."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import redis

from aidoc.market import DiagnosisRequest

Kind = Literal["fulfil", "failure"]
TIMINGS_KEPT = 100_000  # stage timings of the newest fulfilled requests, for the benchmarks


@dataclass(frozen=True)
class OutboxItem:
    """One request's outcome, ready for the chain."""

    kind: Kind
    request_id: int
    request: DiagnosisRequest
    commitment: bytes = b""
    result_cid: str = ""
    ciphertext: bytes = b""
    reason: int = 0
    queued_at: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # ms per stage so far (aidoc.timing)

    @classmethod
    def failure(cls, request_id: int, request: DiagnosisRequest, reason: int) -> "OutboxItem":
        """A request to report as failed with `reason` (a FailureReason), which refunds it."""
        return cls(kind="failure", request_id=request_id, request=request, reason=int(reason))

    def to_json(self) -> str:
        data = asdict(self)
        data["commitment"] = self.commitment.hex()
        data["ciphertext"] = base64.b64encode(self.ciphertext).decode()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "OutboxItem":
        data = json.loads(raw)
        return cls(
            kind=data["kind"],
            request_id=int(data["request_id"]),
            request=DiagnosisRequest(**data["request"]),
            commitment=bytes.fromhex(data["commitment"]),
            result_cid=data["result_cid"],
            ciphertext=base64.b64decode(data["ciphertext"]),
            reason=int(data["reason"]),
            queued_at=float(data["queued_at"]),
            stages={k: float(v) for k, v in data.get("stages", {}).items()},
        )


@dataclass(frozen=True)
class ContractCall:
    """A transaction a worker asks the node's sender to send (the sender alone signs with the node's
    key and owns its nonce): a training job's completion, a federated update or aggregate.
    `publish` is content to put on IPFS once the transaction is mined (the weights it names)."""

    contract: str  # the Marketplace attribute: "training" or "rounds"
    function: str
    args: tuple
    gas: int
    action: str
    publish: bytes = b""

    def to_json(self) -> str:
        return json.dumps({"contract": self.contract, "function": self.function, "args": _jsonable(self.args),
                           "gas": self.gas, "action": self.action,
                           "publish": base64.b64encode(self.publish).decode()}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "ContractCall":
        data = json.loads(raw)
        return cls(data["contract"], data["function"], tuple(_from_jsonable(data["args"])), int(data["gas"]),
                   data["action"], base64.b64decode(data["publish"]))


def _jsonable(value):
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _from_jsonable(value):
    if isinstance(value, dict):
        return bytes.fromhex(value["bytes"])
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


class Outbox:
    """The queues of one node (keys are namespaced by the node's address)."""

    def __init__(self, client: redis.Redis, node: str):
        self.redis = client
        prefix = f"aidoc:{node.lower()}"
        self.pending_key = f"{prefix}:outbox"
        self.processing_key = f"{prefix}:outbox:processing"
        self.publish_key = f"{prefix}:publish"
        self.timings_key = f"{prefix}:timings"
        self.calls_key = f"{prefix}:calls"
        self.calls_processing_key = f"{prefix}:calls:processing"

    def push(self, item: OutboxItem) -> None:
        self.push_many([item])

    def push_many(self, items: list[OutboxItem], pipe: redis.client.Pipeline | None = None) -> None:
        """Queues `items` in one command; into `pipe` when given (the caller executes it)."""
        if not items:
            return
        now = time.time()
        raws = [(item if item.queued_at else replace(item, queued_at=now)).to_json() for item in items]
        (pipe if pipe is not None else self.redis).rpush(self.pending_key, *raws)

    def take(self, max_items: int, wait: float) -> list[tuple[bytes, OutboxItem]]:
        """Up to `max_items` items: blocks until the first arrives (at most `wait` s), then gathers
        more for up to `wait` s. Each comes with its raw form, for `settle()`."""
        first = self.redis.blmove(self.pending_key, self.processing_key, timeout=max(wait, 0.01), src="LEFT",
                                  dest="RIGHT")
        if first is None:
            return []
        raws = [first]
        deadline = time.monotonic() + wait
        while len(raws) < max_items:
            pipe = self.redis.pipeline(transaction=False)  # one round trip for as many as there may be
            for _ in range(min(max_items - len(raws), max(1, self.redis.llen(self.pending_key)))):
                pipe.lmove(self.pending_key, self.processing_key, "LEFT", "RIGHT")
            raws += [raw for raw in pipe.execute() if raw is not None]
            if len(raws) >= max_items or time.monotonic() >= deadline:
                break
            time.sleep(min(0.005, wait))
        return [(raw, OutboxItem.from_json(raw)) for raw in raws]

    def done(self, raw: bytes) -> None:
        self.settle([raw])

    def settle(self, raws: list[bytes], *, publish: list[OutboxItem] = (), follow_up: list[OutboxItem] = (),
               timings: list[dict[str, float]] = ()) -> None:
        """Removes settled items from processing, and in the same transaction queues results for
        publication, new items (failures to report) and stage timings: a crash loses none of them."""
        pipe = self.redis.pipeline(transaction=True)
        if publish:
            pipe.rpush(self.publish_key, *(item.to_json() for item in publish))
        self.push_many(list(follow_up), pipe)
        if timings:
            pipe.rpush(self.timings_key, *(json.dumps(stages) for stages in timings))
            pipe.ltrim(self.timings_key, -TIMINGS_KEPT, -1)
        for raw in raws:
            pipe.lrem(self.processing_key, 1, raw)
        pipe.execute()

    def give_back(self, raws: list[bytes]) -> None:
        """Returns items still in processing to the front of the queue (after a transient failure);
        those already done stay done. The sender is the only consumer, so this needs no transaction."""
        for raw in reversed(raws):
            if self.redis.lrem(self.processing_key, 1, raw):
                self.redis.lpush(self.pending_key, raw)

    def recover(self) -> int:
        """Puts back what a previous sender left in processing; returns how many items."""
        moved = 0
        for processing, pending in ((self.processing_key, self.pending_key),
                                    (self.calls_processing_key, self.calls_key)):
            while self.redis.lmove(processing, pending, "RIGHT", "LEFT") is not None:
                moved += 1
        return moved

    def push_call(self, call: ContractCall) -> None:
        self.redis.rpush(self.calls_key, call.to_json())

    def take_call(self) -> tuple[bytes, ContractCall] | None:
        raw = self.redis.lmove(self.calls_key, self.calls_processing_key, "LEFT", "RIGHT")
        return None if raw is None else (raw, ContractCall.from_json(raw))

    def call_done(self, raw: bytes) -> None:
        self.redis.lrem(self.calls_processing_key, 1, raw)

    def give_back_call(self, raw: bytes) -> None:
        if self.redis.lrem(self.calls_processing_key, 1, raw):
            self.redis.lpush(self.calls_key, raw)

    def publications(self, max_items: int) -> list[tuple[bytes, OutboxItem]]:
        raws = self.redis.lrange(self.publish_key, 0, max_items - 1)
        return [(raw, OutboxItem.from_json(raw)) for raw in raws]

    def published(self, raw: bytes) -> None:
        self.redis.lrem(self.publish_key, 1, raw)

    def timings(self) -> list[dict[str, float]]:
        return [json.loads(raw) for raw in self.redis.lrange(self.timings_key, 0, -1)]

    def depth(self) -> dict[str, int]:
        return {
            "pending": self.redis.llen(self.pending_key),
            "processing": self.redis.llen(self.processing_key),
            "publish": self.redis.llen(self.publish_key),
        }
