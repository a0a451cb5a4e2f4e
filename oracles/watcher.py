"""The chain watcher: `python -m aidoc.oracles.watcher`.

It reads the node's DiagnosisRequested logs with eth_getLogs over bounded block ranges (no
long-lived filters, which RPC providers drop), only up to `confirmations` blocks below the head. It
passes once per block: told of each by an eth_subscribe newHeads subscription where AIDOC_WS_URL
names one, else polling the head at the chain's block time.
Its checkpoint lives in Redis, in the node's namespace for this chain's genesis block and market
(aidoc.node.namespace), so a restarted watcher backfills everything it missed, and a restarted
chain is scanned from its deployment block. Each pass
rescans `reorg_depth` blocks below the checkpoint, so a log that a reorg moved into another block
is seen again; logs are deduplicated by (blockHash, txHash, logIndex), and the worker task is
idempotent, so a log seen twice costs nothing."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Protocol, Sequence

import redis
from web3 import Web3

from aidoc.chain.contracts import Marketplace, block_time, decode_event, event_topic, rpc_request
from aidoc.chain.heads import HeadSubscription
from aidoc.chain.request import DiagnosisRequest
from aidoc.config import OracleSettings
from aidoc.errors import TransientError
from aidoc.node.messages import DiagnosisJob
from aidoc.node.namespace import NodeNamespace

log = logging.getLogger("aidoc.watcher")

SEEN_TTL_S = 7 * 24 * 3600
MAX_POLL_S = 15.0  # the longest wait between passes, whatever the block time
REESTIMATE_PASSES = 200  # passes between two estimates of the block time
HEAD_SILENCE_S = 2 * MAX_POLL_S  # subscribed: a pass that asks for the head itself when no block came for this long
RESUBSCRIBE_S = 60.0  # after a subscription failed, polling this long before subscribing again
# How providers say an eth_getLogs range returns too much (Alchemy, Infura, QuickNode, geth, anvil).
TOO_MANY_LOGS = re.compile(r"too many|limit exceeded|query returned more than|range is too large|block range",
                           re.IGNORECASE)


@dataclass(frozen=True)
class RequestLog:
    """A DiagnosisRequested log, decoded, with where it sits on the chain."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    job: DiagnosisJob

    @property
    def key(self) -> str:
        return f"{self.block_hash}:{self.tx_hash}:{self.log_index}"


class FoundLog(Protocol):
    """A decoded log: `key` says which log it is (block hash, tx hash, log index), `job` what is
    dispatched for it (a DiagnosisJob for the node, the event itself for the web app's indexer)."""

    @property
    def key(self) -> str: ...

    @property
    def job(self) -> Any: ...


class LogSource(Protocol):
    def head(self) -> int: ...

    def logs(self, from_block: int, to_block: int) -> Sequence[FoundLog]: ...

    def block_time(self) -> float: ...


class FollowerState(Protocol):
    """Where a follower keeps its checkpoint and the logs it has dispatched: Redis for the node
    (WatcherState), the web app's database for its indexer (aidoc.web.indexer)."""

    def checkpoint(self) -> int | None: ...

    def set_checkpoint(self, block: int) -> None: ...

    def first_sightings(self, keys: list[str]) -> list[bool]: ...

    def forget(self, keys: list[str]) -> None: ...

    def settle(self, from_block: int, to_block: int, keys: list[str]) -> None: ...

    def reset(self) -> int: ...


class ChainLogSource:
    """DiagnosisRequested logs addressed to one node, read with eth_getLogs."""

    def __init__(self, marketplace: Marketplace, node: str):
        self.w3 = marketplace.w3
        self.market = marketplace.market
        self.topics = [Web3.to_hex(event_topic(self.market, "DiagnosisRequested")), None, None,
                       Web3.to_hex(Web3.to_bytes(hexstr=node).rjust(32, b"\0"))]

    def head(self) -> int:
        return int(rpc_request(self.w3, "eth_blockNumber", []), 16)

    def block_time(self) -> float:
        return block_time(self.w3)

    def logs(self, from_block: int, to_block: int) -> list[RequestLog]:
        raw_logs = rpc_request(self.w3, "eth_getLogs", [
            {"address": self.market.address, "fromBlock": hex(from_block), "toBlock": hex(to_block),
             "topics": self.topics}
        ])
        found = []
        for raw in raw_logs:
            args = None if raw.get("removed") else decode_event(self.market, "DiagnosisRequested", raw)
            if args is None:
                continue
            job = DiagnosisJob(
                request_id=int(args["requestId"]),
                request=DiagnosisRequest.from_event_field(args["request"]),
                result_key=bytes(args["resultKey"]),
                block_hash=raw["blockHash"],
                tx_hash=raw["transactionHash"],
                log_index=int(raw["logIndex"], 16),
            )
            found.append(RequestLog(int(raw["blockNumber"], 16), job.block_hash, job.tx_hash, job.log_index, job))
        return found


class WatcherState:
    """The checkpoint (last block scanned) and the set of logs already dispatched, in Redis, in the
    node's namespace for its chain and market."""

    def __init__(self, client: redis.Redis, namespace: NodeNamespace):
        self.redis = client
        self.namespace = namespace
        self.prefix = namespace.key("watcher")

    def checkpoint(self) -> int | None:
        value = self.redis.get(self.namespace.checkpoint_key)
        return None if value is None else int(value)

    def set_checkpoint(self, block: int) -> None:
        self.redis.set(self.namespace.checkpoint_key, block)

    def first_sightings(self, keys: list[str]) -> list[bool]:
        """Marks `keys` as seen (one round trip); True for each that was not seen before."""
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.set(f"{self.prefix}:seen:{key}", 1, nx=True, ex=SEEN_TTL_S)
        return [bool(answer) for answer in pipe.execute()]

    def reset(self) -> int:
        """Forgets the checkpoint, the logs seen and the workers' claims (all of this namespace's
        chain-derived state but the outbox, whose stale items the market refuses by their request
        digest); returns how many keys it deleted."""
        deleted = self.redis.delete(self.namespace.checkpoint_key)
        for pattern in (f"{self.prefix}:seen:*", self.namespace.claim("*")):
            batch: list[bytes] = []
            for key in self.redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    deleted += self.redis.delete(*batch)
                    batch = []
            if batch:
                deleted += self.redis.delete(*batch)
        return deleted

    def forget(self, keys: list[str]) -> None:
        """Un-sees logs whose dispatch failed, so that the next pass dispatches them again."""
        if keys:
            self.redis.delete(*(f"{self.prefix}:seen:{key}" for key in keys))

    def settle(self, from_block: int, to_block: int, keys: list[str]) -> None:
        """Nothing to do: a request log a reorg dropped was dispatched anyway, and its fulfilment is
        refused by the market (the request digest no longer matches), which costs the node nothing."""


def block_ranges(start: int, end: int, size: int) -> Iterable[tuple[int, int]]:
    """[start, end] in consecutive ranges of at most `size` blocks."""
    while start <= end:
        yield start, min(end, start + size - 1)
        start += size


class Watcher:
    """Dispatches each new log once, in batches of up to `settings.task_batch` jobs (one worker task
    each: its chain reads, Redis commands and Celery bookkeeping are shared). The node's watcher
    follows its DiagnosisRequested logs; the web app's indexer follows every marketplace event with
    the same confirmation, reorg-rescan and backfill rules (aidoc.web.indexer)."""

    def __init__(self, source: LogSource, state: FollowerState, dispatch: Callable[[list[Any]], None],
                 settings: OracleSettings, start_block: int = 0, heads: HeadSubscription | None = None):
        self.source = source
        self.heads = heads  # None: poll for the head; else wait for the blocks it announces
        self.subscribed = False
        self.resubscribe_at = 0.0
        self.announced: int | None = None  # the highest head the subscription announced
        self.state = state
        self.dispatch = dispatch
        self.settings = settings
        self.start_block = start_block
        self.log_range = settings.log_range  # halved when the provider says a range has too many logs
        self.interval = settings.poll_interval  # raised to the chain's block time (adapt_interval)
        self.passes = 0
        self.running = True

    def adapt_interval(self) -> float:
        """Polls once per block on a chain with a block time (12 s on Ethereum: an idle node makes
        about two calls per block), and every AIDOC_POLL_INTERVAL on a chain that mines on demand."""
        chosen = max(self.settings.poll_interval, min(MAX_POLL_S, self.source.block_time()))
        if chosen != self.interval:
            log.info("polling every %g s (the chain's block time; AIDOC_POLL_INTERVAL is the floor)", chosen)
        self.interval = chosen
        return chosen

    def poll_once(self, head: int | None = None) -> int:
        """Scans new (and recently reorged) blocks up to `head` (default: asks the endpoint);
        returns how many new logs it dispatched."""
        head = self.source.head() if head is None else head
        safe_head = head - self.settings.confirmations
        checkpoint = self.state.checkpoint()
        if checkpoint is not None and head < checkpoint:
            # Only a chain started again under the same genesis (a development chain loaded from an
            # earlier state) gets here: a reorg deeper than the confirmations would too, and gets
            # the same treatment, a full rescan.
            log.warning("the chain's head (block %d) is below this node's checkpoint (block %d): the chain was "
                        "reset under the node; forgetting the logs seen and requests claimed on it and rescanning "
                        "from the deployment block %d", head, checkpoint, self.start_block)
            self.state.reset()
            checkpoint = None
        if checkpoint is not None and safe_head <= checkpoint:
            return 0  # no new block: nothing to scan (a rescan for reorgs comes with the next one)
        if checkpoint is None:
            start = self.start_block
        else:
            start = max(self.start_block, checkpoint + 1 - self.settings.reorg_depth)
        if safe_head < start:
            return 0
        dispatched = 0
        for low, high in block_ranges(start, safe_head, self.log_range):
            found = self.source.logs(low, high)
            new = [entry for entry, first in zip(found, self.state.first_sightings([e.key for e in found])) if first]
            size = self.settings.task_batch
            for index in range(0, len(new), size):
                try:
                    self.dispatch([entry.job for entry in new[index:index + size]])
                except BaseException:
                    self.state.forget([entry.key for entry in new[index:]])  # this batch and the rest
                    raise
                dispatched += len(new[index:index + size])
            self.state.settle(low, high, [entry.key for entry in found])
            self.state.set_checkpoint(high)  # a crash mid-backfill resumes from here
        return dispatched

    def run(self) -> None:
        try:
            self._run()
        finally:
            if self.heads is not None:
                self.heads.close()
                self.subscribed = False

    def _run(self) -> None:
        head = None
        while self.running:
            try:
                self.passes += 1
                if self.passes % REESTIMATE_PASSES == 1:
                    self.adapt_interval()
                count = self.poll_once(self.head_for_pass(head))
                if count:
                    log.info("dispatched %d new request(s)", count)
            except Exception as error:  # noqa: BLE001 - Redis or the RPC endpoint down or erring; keep watching
                if TOO_MANY_LOGS.search(str(error)) and self.log_range > 1:
                    self.log_range = max(1, self.log_range // 2)
                    log.warning("the RPC endpoint refused a log range as too large; asking for %d blocks at a time",
                                self.log_range)
                    continue
                log.warning("watcher pass failed (%s: %s); retrying", type(error).__name__, error)
                time.sleep(min(5.0, self.interval * 4))
            head = self.wait_for_block()

    def head_for_pass(self, announced: int | None) -> int:
        """The head a pass scans to: the one announced, else the endpoint's. Subscribed, an asked-for
        head above every announced one means the subscription went quiet while blocks were mined
        (some providers drop subscriptions without closing the socket): subscribe again at once."""
        if announced is not None:
            return announced
        head = self.source.head()
        if self.subscribed and self.announced is not None and head > self.announced:
            log.warning("the newHeads subscription announced no block since %d while the chain reached %d; "
                        "subscribing again", self.announced, head)
            self.heads.close()
            self.subscribed, self.resubscribe_at, self.announced = False, 0.0, None
        return head

    def wait_for_block(self) -> int | None:
        """Until the next pass: the next head the subscription announces (None after HEAD_SILENCE_S
        without one, so that a pass asks for the head itself), or, polling, `interval` s and None."""
        if self.heads is not None and not self.subscribed and time.monotonic() >= self.resubscribe_at:
            try:
                self.heads.open()
                self.subscribed = True
                log.info("following new blocks through eth_subscribe at %s", self.heads.url)
            except TransientError as error:
                self._unsubscribed(error)
        if not self.subscribed:
            time.sleep(self.interval)
            return None
        silent_until = time.monotonic() + HEAD_SILENCE_S
        while self.running and time.monotonic() < silent_until:
            try:
                head = self.heads.next_head(timeout=1.0)  # in slices: a stop request is seen within a second
            except TransientError as error:
                self._unsubscribed(error)
                return None
            if head is not None:
                return self._drain(head)
        return None

    def _drain(self, head: int) -> int:
        """The highest of `head` and the heads already queued behind it (a burst of blocks, or a pass
        slower than a block): one pass scans to it, not one pass per block."""
        try:
            while (queued := self.heads.next_head(timeout=0)) is not None:
                head = max(head, queued)
        except TransientError as error:
            self._unsubscribed(error)
        self.announced = max(head, self.announced or 0)
        return head

    def _unsubscribed(self, error: TransientError) -> None:
        self.subscribed = False
        self.resubscribe_at = time.monotonic() + RESUBSCRIBE_S
        log.warning("%s; polling every %g s, subscribing again in %.0f s", error, self.interval, RESUBSCRIBE_S)

    def stop(self, *_: object) -> None:
        self.running = False


def main() -> None:
    from aidoc.node.messages import Diagnose, dispatch
    from aidoc.node.namespace import note_chain
    from aidoc.node.runtime import NodeRuntime
    from aidoc.node.service import run_service

    def build() -> tuple[Watcher, str]:
        runtime = NodeRuntime()
        marketplace = runtime.marketplace
        namespace = runtime.namespace
        previous = note_chain(runtime.redis, namespace)
        if previous is not None:
            log.warning("this node last ran on %s and now runs on %s (a restarted chain or a new deployment): "
                        "its state there is kept apart, and it scans this chain from the deployment block %d",
                        previous.describe(), namespace.describe(), marketplace.deployment.block_number)
        watcher = Watcher(
            ChainLogSource(marketplace, runtime.address),
            WatcherState(runtime.redis, namespace),
            lambda jobs: dispatch(Diagnose(tuple(replace(job, dispatched_at=time.time()) for job in jobs)),
                                  runtime.address, runtime.services.redis_url),
            runtime.oracle,
            start_block=marketplace.deployment.block_number,
            heads=HeadSubscription(runtime.oracle.ws_url) if runtime.oracle.ws_url else None,
        )
        return watcher, f"watching DiagnosisRequested for node {runtime.address} on chain {marketplace.chain_id}"

    run_service("watcher", build)


if __name__ == "__main__":
    main()
