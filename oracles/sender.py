"""The transaction sender: `python -m oracles.sender`. One per node key: it alone owns the nonce.

It takes finished work from the node's outbox, up to `batch_size` results or whatever arrived
within `batch_wait` seconds, fulfils them in one fulfilBatch, and reports failures with
reportFailure. A transaction left unmined is replaced with higher fees (aidoc.chain.transactions).
Only once a fulfilment is final on-chain does it publish the result's ciphertext to IPFS: the CID
is public from the moment the transaction is sent, the content must not be before it counts."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace

from aidoc.chain.contracts import TransactionReverted, decode_event, event_topic, rpc_request
from aidoc.chain.transactions import Transactor
from aidoc.constants import FailureReason, RequestStatus
from aidoc.errors import StorageError
from aidoc.node import NodeRuntime
from aidoc.outbox import OutboxItem
from aidoc.transient import TRANSIENT_ERRORS
from oracles.spool import ResultSpool

log = logging.getLogger("aidoc.sender")

# fulfilBatch measures 39-45k gas per request and ~60k of overhead (BENCHMARKS.md); the budget
# leaves room for a revoked-consent refund or a first-time write per item.
BATCH_BASE_GAS = 150_000
BATCH_ITEM_GAS = 90_000
# The publisher looks for spooled results that Redis lost every SPOOL_SCAN_S seconds; a result
# counts as lost once it has waited SPOOL_RECOVERY_AGE_S (the normal path takes seconds).
SPOOL_SCAN_S = 5.0
SPOOL_RECOVERY_AGE_S = 30.0
# What each event in a fulfilBatch receipt says its request became (None: the event's `status`).
RECEIPT_OUTCOMES = (("DiagnosisFulfilled", RequestStatus.FULFILLED), ("DiagnosisFailed", RequestStatus.FAILED),
                    ("FulfilmentSkipped", None))


@dataclass(frozen=True)
class Settled:
    """What a request became, by a fulfilBatch receipt (with the commitment that fulfilled it)."""

    status: RequestStatus
    commitment: bytes | None = None


@dataclass
class SenderStats:
    batches: int = 0
    fulfilled: int = 0
    failures_reported: int = 0
    skipped: int = 0
    published: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class Sender:
    def __init__(self, runtime: NodeRuntime, transactor: Transactor | None = None):
        self.runtime = runtime
        self.contracts = runtime.marketplace
        self.transactor = transactor or Transactor(
            self.contracts.w3, runtime.identity.account, runtime.services.build_dir, tx_timeout=runtime.oracle.tx_timeout
        )
        self.outbox = runtime.outbox
        self.spool = ResultSpool(runtime.services.run_dir / "results-spool" / runtime.address.lower())
        self.stats = SenderStats()
        self.running = True

    def status_of(self, request_id: int, block: int | str = "latest") -> RequestStatus:
        state = self.contracts.market.functions.getRequestState(request_id).call(block_identifier=block)
        return RequestStatus(state[1])

    def safe_block(self) -> int:
        """The newest block buried under `confirmations`: what it says is final."""
        return max(0, self.contracts.w3.eth.block_number - self.runtime.oracle.confirmations)

    def fulfilment_of(self, request_id: int) -> tuple[bytes, str] | None:
        """The (result commitment, result CID) the request was fulfilled with, from its
        DiagnosisFulfilled event (looked for in the last AIDOC_LOG_RANGE blocks: this node fulfilled
        it recently)."""
        market = self.contracts.market
        head = int(rpc_request(self.contracts.w3, "eth_blockNumber", []), 16)
        first = max(self.contracts.deployment.block_number, head - self.runtime.oracle.log_range + 1)
        logs = rpc_request(self.contracts.w3, "eth_getLogs", [{
            "address": market.address, "fromBlock": hex(first), "toBlock": hex(head),
            "topics": ["0x" + event_topic(market, "DiagnosisFulfilled").hex(), "0x" + request_id.to_bytes(32, "big").hex()],
        }])
        for entry in logs:
            args = decode_event(market, "DiagnosisFulfilled", entry)
            if args is not None:
                return bytes(args["resultCommitment"]), str(args["resultCid"])
        return None

    def send_calls(self, max_calls: int = 8) -> int:
        """Sends the contract calls workers queued (training completions, federated updates and
        aggregates), then publishes what each names; returns how many it sent."""
        sent = 0
        while sent < max_calls and (taken := self.outbox.take_call()) is not None:
            raw, call = taken
            try:
                if call.function:  # empty: only the publication is left (IPFS was down after the call)
                    self.transactor.send_call(getattr(self.contracts, call.contract), call.function, call.args,
                                              call.action, gas=call.gas)
            except TransactionReverted as error:
                log.error("%s reverted: %s", call.action, error.reason)
                self.outbox.call_done(raw)
                continue
            except TRANSIENT_ERRORS:
                self.outbox.give_back_call(raw)
                raise
            if call.publish:
                try:
                    self.runtime.store.add(call.publish, pin=True)
                except StorageError as error:
                    log.warning("%s: its content is not published yet (%s); will retry", call.action, error)
                    self.outbox.push_call(replace(call, function="", args=()))
            self.outbox.call_done(raw)
            log.info("%s sent", call.action)
            sent += 1
        return sent

    def step(self) -> int:
        """One batch: returns how many outbox items it settled."""
        self.send_calls()
        taken = self.outbox.take(self.runtime.oracle.batch_size, self.runtime.oracle.batch_wait)
        if not taken:
            return 0
        try:
            self.settle(taken)
        except TRANSIENT_ERRORS as error:
            log.warning("could not settle %d item(s) (%s); they go back to the queue", len(taken), error)
            self.outbox.give_back([raw for raw, _ in taken])
            time.sleep(1.0)
            return 0
        return len(taken)

    def settle(self, taken: list[tuple[bytes, OutboxItem]]) -> None:
        fulfilments = [(raw, item) for raw, item in taken if item.kind == "fulfil"]
        failures = [(raw, item) for raw, item in taken if item.kind == "failure"]
        if fulfilments:
            self.fulfil(fulfilments)
        for raw, item in failures:
            self.report_failure(item)
            self.outbox.done(raw)

    def fulfil(self, fulfilments: list[tuple[bytes, OutboxItem]]) -> None:
        """Fulfils the items in one fulfilBatch (the market skips any no longer pending, so replays
        after a crash cost a little gas and nothing else). What each item became is read from the
        receipt's events; only an item the receipt does not mention costs a status call."""
        items = [item for _, item in fulfilments]
        self.spool.keep(items)  # from here until published, the results also live on disk
        outcome = self.send_batch(items)
        if outcome is None and len(items) > 1:
            # One bad item (terms that do not match, say) sinks a whole batch: send them one by one.
            outcome = {}
            for item in items:
                for request_id, settled in (self.send_batch([item]) or {}).items():
                    if settled.commitment or request_id not in outcome:  # a fulfilment wins over a later skip
                        outcome[request_id] = settled
        outcome = outcome or {}
        publish: list[OutboxItem] = []
        follow_up: list[OutboxItem] = []
        timings: list[dict[str, float]] = []
        for _, item in fulfilments:
            settled = outcome.get(item.request_id) or Settled(self.status_of(item.request_id))
            status = settled.status
            if status == RequestStatus.FULFILLED and settled.commitment is None:
                # Fulfilled before this batch: by this very item in a batch whose receipt we lost
                # (an RPC outage), or by another result for it. The chain's event says which.
                fulfilment = self.fulfilment_of(item.request_id)
                settled = Settled(status, fulfilment[0] if fulfilment else None)
            if status == RequestStatus.FULFILLED and settled.commitment != item.commitment:
                # Another result for the same request (a redelivered task's) is the one on-chain:
                # this one's ciphertext must never be published.
                self.stats.skipped += 1
                log.info("request %d was fulfilled with another result of this node's", item.request_id)
            elif status == RequestStatus.FULFILLED:
                publish.append(item)
                self.stats.fulfilled += 1
                if item.request_id in outcome and item.queued_at:
                    timings.append({**item.stages, "transaction": (time.time() - item.queued_at) * 1000})
            elif status == RequestStatus.PENDING:
                # Its fulfilment reverted even alone: report a failure, which refunds, rather than
                # leave the escrow to time out.
                log.error("request %d could not be fulfilled; reporting an internal failure", item.request_id)
                follow_up.append(OutboxItem.failure(item.request_id, item.request, FailureReason.INTERNAL_ERROR))
            else:
                self.stats.skipped += 1
                log.info("request %d not fulfilled by this batch (now %s)", item.request_id, status.name)
        self.outbox.settle([raw for raw, _ in fulfilments], publish=publish, follow_up=follow_up, timings=timings)
        publishing = {id(item) for item in publish}
        for item in items:
            if id(item) not in publishing:
                self.spool.drop(item.request_id, item.result_cid)

    def send_batch(self, items: list[OutboxItem]) -> dict[int, Settled] | None:
        """Sends one fulfilBatch; returns what the receipt says each request became (fulfilled,
        failed for revoked consent, or skipped as no longer pending), or None if it reverted."""
        batch = [(item.request_id, item.request.as_tuple(), item.commitment, item.result_cid) for item in items]
        market = self.contracts.market
        try:
            # A fixed budget instead of an estimate saves a whole simulated execution per batch;
            # unused gas is not charged.
            receipt = self.transactor.send_call(market, "fulfilBatch", (batch,), f"fulfilBatch of {len(batch)}",
                                                gas=BATCH_BASE_GAS + BATCH_ITEM_GAS * len(batch))
        except TransactionReverted as error:
            log.error("fulfilBatch of %d reverted: %s", len(batch), error.reason)
            return None
        self.stats.batches += 1
        self.stats.batch_sizes.append(len(batch))
        outcome: dict[int, Settled] = {}
        for entry in receipt["logs"]:
            for event, status in RECEIPT_OUTCOMES:
                args = decode_event(market, event, entry)
                if args is None:
                    continue
                request_id = int(args["requestId"])
                if status == RequestStatus.FULFILLED:  # it wins over a skip of a second copy in the batch
                    outcome[request_id] = Settled(status, bytes(args["resultCommitment"]))
                else:
                    outcome.setdefault(request_id, Settled(status or RequestStatus(args["status"])))
                break
        return outcome

    def report_failure(self, item: OutboxItem) -> None:
        if self.status_of(item.request_id) != RequestStatus.PENDING:
            self.stats.skipped += 1
            return
        function = self.contracts.market.functions.reportFailure(item.request_id, item.request.as_tuple(), item.reason)
        try:
            self.transactor.send(function, f"reportFailure of request {item.request_id}")
            self.stats.failures_reported += 1
        except TransactionReverted as error:
            log.error("reportFailure of request %d reverted: %s", item.request_id, error.reason)

    def publish_pending(self, max_items: int = 256) -> int:
        """Uploads the ciphertexts of fulfilments buried under `confirmations` blocks. An IPFS
        outage leaves them for the next pass; a fulfilment a reorg undid goes back to the outbox.
        Returns how many items left the publication queue."""
        confirmations = self.runtime.oracle.confirmations
        publications = self.outbox.publications(max_items)
        handled = 0
        safe_block = self.safe_block() if publications and confirmations else 0
        for raw, item in publications:
            # With no confirmations required, the receipt that queued it already proved it final.
            final = self.status_of(item.request_id, safe_block) if confirmations else RequestStatus.FULFILLED
            if final != RequestStatus.FULFILLED:
                now = self.status_of(item.request_id)
                if now == RequestStatus.PENDING:  # a reorg dropped our fulfilment: send it again
                    self.outbox.published(raw)
                    self.outbox.push(item)
                    handled += 1
                elif now != RequestStatus.FULFILLED:  # failed or cancelled meanwhile: never publish
                    self.outbox.published(raw)
                    self.spool.drop(item.request_id, item.result_cid)
                    handled += 1
                continue  # fulfilled, not yet buried deep enough
            try:
                cid = self.runtime.store.add(item.ciphertext, pin=True)
            except StorageError as error:
                log.warning("result of request %d not published yet (%s); will retry", item.request_id, error)
                return handled
            if cid != item.result_cid:
                log.error("request %d: the store computed CID %s, the chain has %s", item.request_id, cid,
                          item.result_cid)
            self.outbox.published(raw)
            self.spool.drop(item.request_id, item.result_cid)
            self.stats.published += 1
            handled += 1
        return handled

    def recover_spool(self, min_age: float = SPOOL_RECOVERY_AGE_S) -> int:
        """Publishes results that have waited on disk for `min_age` s while final on-chain: those
        whose queue entry Redis lost. Drops those the chain did not take. Returns how many it published."""
        published = 0
        for spooled in self.spool.older_than(min_age):
            status = self.status_of(spooled.request_id)
            if status == RequestStatus.PENDING:
                continue  # a reorg undid it; the outbox (or the watcher's rescan) sends it again
            fulfilment = self.fulfilment_of(spooled.request_id) if status == RequestStatus.FULFILLED else None
            if fulfilment is None or fulfilment[1] != spooled.result_cid:
                self.spool.drop(spooled.request_id, spooled.result_cid)  # not the result on-chain
                continue
            if not self.is_final(spooled.request_id):
                continue
            try:
                self.runtime.store.add(spooled.read(), pin=True)
            except StorageError as error:
                log.warning("spooled result of request %d not published yet (%s)", spooled.request_id, error)
                return published
            self.spool.drop(spooled.request_id, spooled.result_cid)
            log.info("published the result of request %d from the spool", spooled.request_id)
            published += 1
        return published

    def is_final(self, request_id: int) -> bool:
        """Whether the request is fulfilled `confirmations` blocks below the head."""
        return self.status_of(request_id, self.safe_block()) == RequestStatus.FULFILLED

    def run(self) -> None:
        replaced = self.transactor.replace_stuck()
        if replaced:
            log.info("replaced %d transaction(s) an earlier sender left pending", replaced)
        recovered = self.outbox.recover()
        if recovered:
            log.info("re-queued %d item(s) a previous sender left in flight", recovered)
        # Publishing (an upload per result) runs beside the fulfilments, never between two batches.
        publisher = threading.Thread(target=self.run_publisher, name="publisher", daemon=True)
        publisher.start()
        while self.running:
            try:
                self.step()
            except TRANSIENT_ERRORS as error:
                log.warning("sender pass failed (%s); retrying", error)
                time.sleep(1.0)
        publisher.join(timeout=10)

    def run_publisher(self) -> None:
        next_scan = 0.0
        while self.running:
            try:
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + SPOOL_SCAN_S
                    self.recover_spool()
                if not self.publish_pending():
                    time.sleep(max(0.01, self.runtime.oracle.batch_wait))
            except TRANSIENT_ERRORS as error:
                log.warning("publishing pass failed (%s); retrying", error)
                time.sleep(1.0)

    def stop(self, *_: object) -> None:
        self.running = False


def main() -> None:
    from oracles.service import run_service

    def build() -> tuple[Sender, str]:
        sender = Sender(NodeRuntime())
        oracle = sender.runtime.oracle
        return sender, (f"sending for node {sender.runtime.address} "
                        f"(batches of up to {oracle.batch_size}, {oracle.batch_wait * 1000:.0f} ms)")

    run_service("sender", build)


if __name__ == "__main__":
    main()
