"""The hand-off from a node's Celery workers to its transaction sender: a reliable queue in Redis.

Workers push finished work (a sealed result to fulfil, or a failure to report). The sender moves
items atomically (LMOVE) into a processing list, and removes them only once the chain has settled
them, so a sender that dies mid-batch loses nothing: on start it puts the processing list back.
Replaying an item is harmless, because fulfilBatch skips requests that are no longer pending.

Results whose fulfilment is final wait in a third list until their ciphertext is on IPFS."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import redis

from aidoc.node.messages import ContractCall, OutboxItem
from aidoc.node.namespace import NodeNamespace

TIMINGS_KEPT = 100_000  # stage timings of the newest fulfilled requests, for the benchmarks


class Outbox:
    """The queues of one node on one chain and market (keys in the node's namespace)."""

    def __init__(self, client: redis.Redis, namespace: NodeNamespace):
        self.redis = client
        self.pending_key = namespace.key("outbox")
        self.processing_key = namespace.key("outbox", "processing")
        self.publish_key = namespace.key("publish")
        self.timings_key = namespace.key("timings")
        self.calls_key = namespace.key("calls")
        self.calls_processing_key = namespace.key("calls", "processing")
        self.last_fulfilment_key = namespace.key("last-fulfilment")

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
            pipe.set(self.last_fulfilment_key, json.dumps({"request_id": publish[-1].request_id, "at": time.time()}))
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

    def last_fulfilment(self) -> tuple[int, float] | None:
        """The request id and Unix time of the newest fulfilment the sender settled, if any."""
        raw = self.redis.get(self.last_fulfilment_key)
        if raw is None:
            return None
        data = json.loads(raw)
        return int(data["request_id"]), float(data["at"])

    def depth(self) -> dict[str, int]:
        return {
            "pending": self.redis.llen(self.pending_key),
            "processing": self.redis.llen(self.processing_key),
            "publish": self.redis.llen(self.publish_key),
        }
