"""The transaction sender: `python -m aidoc.oracles.sender`. One per node key: it alone owns the nonce.

It takes finished work from the node's outbox, up to `batch_size` results or whatever arrived
within `batch_wait` seconds, fulfils them in one fulfilBatch, and reports failures with
reportFailure. A transaction left unmined is replaced with higher fees (aidoc.chain.transactions).
Only once a fulfilment is final on-chain does its publisher (aidoc.oracles.publisher, a thread of
this process) put the result's ciphertext on IPFS."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace

from aidoc.chain.contracts import TransactionReverted, decode_event
from aidoc.chain.transactions import Transactor
from aidoc.constants import FailureReason, RequestStatus
from aidoc.errors import StorageError
from aidoc.node.messages import OutboxItem
from aidoc.node.retry import TRANSIENT_ERRORS
from aidoc.node.runtime import NodeRuntime
from aidoc.oracles.chain_state import MarketState
from aidoc.oracles.publisher import Publisher
from aidoc.oracles.spool import ResultSpool

log = logging.getLogger("aidoc.sender")

# fulfilBatch measures 39-45k gas per request and ~60k of overhead (BENCHMARKS.md); the budget
# leaves room for a revoked-consent refund or a first-time write per item.
BATCH_BASE_GAS = 150_000
BATCH_ITEM_GAS = 90_000
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
        self.chain = MarketState(runtime)
        self.publisher = Publisher(runtime, self.chain, self.spool)
        self.stats = SenderStats()
        self.running = True

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
            settled = outcome.get(item.request_id) or Settled(self.chain.status_of(item.request_id))
            status = settled.status
            if status == RequestStatus.FULFILLED and settled.commitment is None:
                # Fulfilled before this batch: by this very item in a batch whose receipt we lost
                # (an RPC outage), or by another result for it. The chain's event says which.
                fulfilment = self.chain.fulfilment_of(item.request_id)
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
        if self.chain.status_of(item.request_id) != RequestStatus.PENDING:
            self.stats.skipped += 1
            return
        function = self.contracts.market.functions.reportFailure(item.request_id, item.request.as_tuple(), item.reason)
        try:
            self.transactor.send(function, f"reportFailure of request {item.request_id}")
            self.stats.failures_reported += 1
        except TransactionReverted as error:
            log.error("reportFailure of request %d reverted: %s", item.request_id, error.reason)

    def run(self) -> None:
        replaced = self.transactor.replace_stuck()
        if replaced:
            log.info("replaced %d transaction(s) an earlier sender left pending", replaced)
        recovered = self.outbox.recover()
        if recovered:
            log.info("re-queued %d item(s) a previous sender left in flight", recovered)
        # Publishing (an upload per result) runs beside the fulfilments, never between two batches.
        publisher = threading.Thread(target=self.publisher.run, name="publisher", daemon=True)
        publisher.start()
        while self.running:
            try:
                self.step()
            except TRANSIENT_ERRORS as error:
                log.warning("sender pass failed (%s); retrying", error)
                time.sleep(1.0)
        publisher.join(timeout=10)

    def stop(self, *_: object) -> None:
        self.running = False
        self.publisher.stop()


def main() -> None:
    from aidoc.node.service import run_service

    def build() -> tuple[Sender, str]:
        sender = Sender(NodeRuntime())
        oracle = sender.runtime.oracle
        return sender, (f"sending for node {sender.runtime.address} "
                        f"(batches of up to {oracle.batch_size}, {oracle.batch_wait * 1000:.0f} ms)")

    run_service("sender", build)


if __name__ == "__main__":
    main()
