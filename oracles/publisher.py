"""The publisher: puts the ciphertexts of this node's results on IPFS once their fulfilment is
final. The CID is public from the moment the fulfilment is sent; the content must not be before it
counts, and a result whose fulfilment a reorg undid, or that the chain did not take, is never
published. It runs in the sender's process, on its own thread (an upload per result must never
stand between two fulfilBatch transactions), and recovers from the disk spool the results whose
queue entry a Redis that restarted empty lost."""

from __future__ import annotations

import logging
import time

from aidoc.constants import RequestStatus
from aidoc.errors import StorageError
from aidoc.node.retry import TRANSIENT_ERRORS
from aidoc.node.runtime import NodeRuntime
from aidoc.oracles.chain_state import MarketState
from aidoc.oracles.spool import ResultSpool

log = logging.getLogger("aidoc.publisher")

# The publisher looks for spooled results that Redis lost every SPOOL_SCAN_S seconds; a result
# counts as lost once it has waited SPOOL_RECOVERY_AGE_S (the normal path takes seconds).
SPOOL_SCAN_S = 5.0
SPOOL_RECOVERY_AGE_S = 30.0


class Publisher:
    def __init__(self, runtime: NodeRuntime, chain: MarketState, spool: ResultSpool):
        self.runtime = runtime
        self.chain = chain
        self.outbox = runtime.outbox
        self.spool = spool
        self.published = 0
        self.running = True

    def publish_pending(self, max_items: int = 256) -> int:
        """Uploads the ciphertexts of fulfilments buried under `confirmations` blocks. An IPFS
        outage leaves them for the next pass; a fulfilment a reorg undid goes back to the outbox.
        Returns how many items left the publication queue."""
        confirmations = self.runtime.oracle.confirmations
        publications = self.outbox.publications(max_items)
        handled = 0
        safe_block = self.chain.safe_block() if publications and confirmations else 0
        for raw, item in publications:
            # With no confirmations required, the receipt that queued it already proved it final.
            final = self.chain.status_of(item.request_id, safe_block) if confirmations else RequestStatus.FULFILLED
            if final != RequestStatus.FULFILLED:
                now = self.chain.status_of(item.request_id)
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
            self.published += 1
            handled += 1
        return handled

    def recover_spool(self, min_age: float = SPOOL_RECOVERY_AGE_S) -> int:
        """Publishes results that have waited on disk for `min_age` s while final on-chain: those
        whose queue entry Redis lost. Drops those the chain did not take. Returns how many it published."""
        published = 0
        for spooled in self.spool.older_than(min_age):
            status = self.chain.status_of(spooled.request_id)
            if status == RequestStatus.PENDING:
                continue  # a reorg undid it; the outbox (or the watcher's rescan) sends it again
            fulfilment = self.chain.fulfilment_of(spooled.request_id) if status == RequestStatus.FULFILLED else None
            if fulfilment is None or fulfilment[1] != spooled.result_cid:
                self.spool.drop(spooled.request_id, spooled.result_cid)  # not the result on-chain
                continue
            if not self.chain.is_final(spooled.request_id):
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

    def run(self) -> None:
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
