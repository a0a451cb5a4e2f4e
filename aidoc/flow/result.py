"""A doctor collects a result: wait for the request to settle, fetch the sealed result from IPFS,
open it with the doctor's key, and check it against the salted commitment on-chain."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aidoc.chain.contracts import block_time, call_batch
from aidoc.constants import FailureReason, RequestStatus
from aidoc.crypto import OpenedResult, open_result
from aidoc.errors import AidocError, ContentNotFound, StorageUnavailable
from aidoc.flow.session import Session

MAX_WAIT_POLL_S = 15.0
BLOCK_TIME_MAX_AGE_S = 600.0  # a waiting client estimates the block time once per connection and 10 min
STATE_BATCH = 300  # request states per JSON-RPC batch (providers cap a batch's size)


class ResultUnavailable(AidocError):
    """The request has no result to fetch (yet, or ever)."""


class CommitmentMismatch(AidocError):
    """A result does not match the commitment the node posted on-chain."""


@dataclass(frozen=True)
class Settlement:
    request_id: int
    status: RequestStatus
    failure: FailureReason | None = None
    result_cid: str = ""
    commitment: bytes = b""


def settlement(session: Session, request_id: int, status: RequestStatus | None = None) -> Settlement:
    """How `request_id` ended (or that it is still pending); `status`, when the caller has just
    read it, saves reading it again."""
    market = session.marketplace.market
    if status is None:
        status = RequestStatus(market.functions.getRequestState(request_id).call()[1])
    start = session.marketplace.deployment.block_number
    if status == RequestStatus.FULFILLED:
        event = market.events.DiagnosisFulfilled().get_logs(from_block=start, argument_filters={"requestId": request_id})
        args = event[-1]["args"]
        return Settlement(request_id, status, result_cid=args["resultCid"], commitment=bytes(args["resultCommitment"]))
    if status == RequestStatus.FAILED:
        event = market.events.DiagnosisFailed().get_logs(from_block=start, argument_filters={"requestId": request_id})
        reason = int(event[-1]["args"]["reason"])
        return Settlement(request_id, status, failure=FailureReason(reason) if reason in FailureReason._value2member_map_
                          else FailureReason.INTERNAL_ERROR)
    return Settlement(request_id, status)


def wait_for_settlements(session: Session, request_ids: list[int], timeout: float,
                         poll: float = 0.25, progress=None) -> dict[int, Settlement]:
    """Waits until every request has left Pending, or `timeout` s; returns what each ended as.
    Each look is one JSON-RPC batch (all open requests' states), at most once per `poll` s or per
    block on a chain with a block time, so a waiting client costs a hosted endpoint one call a block."""
    market = session.marketplace.market
    deadline = time.monotonic() + timeout
    open_ids = sorted(set(request_ids))
    settled: dict[int, RequestStatus] = {}
    poll = max(poll, min(MAX_WAIT_POLL_S, block_time(session.marketplace.w3, max_age=BLOCK_TIME_MAX_AGE_S)))
    while open_ids and time.monotonic() < deadline:
        states = [state for chunk in range(0, len(open_ids), STATE_BATCH)
                  for state in call_batch(session.marketplace.w3, [(market, "getRequestState", (request_id,))
                                                                   for request_id in open_ids[chunk:chunk + STATE_BATCH]])]
        still_open = []
        for request_id, state in zip(open_ids, states):
            status = RequestStatus(int(state["status"]))
            if status == RequestStatus.PENDING:
                still_open.append(request_id)
            else:
                settled[request_id] = status
                if progress:
                    progress(request_id)
        open_ids = still_open
        if open_ids:
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    return {request_id: settlement(session, request_id, settled.get(request_id)) for request_id in request_ids}


def fetch_result(session: Session, request_id: int, timeout: float = 30.0) -> OpenedResult:
    """The opened result of a fulfilled request, verified against its on-chain commitment."""
    settled = settlement(session, request_id)
    if settled.status != RequestStatus.FULFILLED:
        detail = f" ({settled.failure.name})" if settled.failure else ""
        raise ResultUnavailable(f"request {request_id} is {settled.status.name.lower()}{detail}: there is no result")
    deadline = time.monotonic() + timeout
    while True:  # the node publishes the ciphertext only once its fulfilment is final
        try:
            ciphertext = session.store.cat(settled.result_cid, max_size=1024 * 1024)
            break
        except (ContentNotFound, StorageUnavailable):
            if time.monotonic() >= deadline:
                raise ResultUnavailable(
                    f"the result of request {request_id} ({settled.result_cid}) is not on IPFS yet; try again shortly"
                ) from None
            time.sleep(0.25)
    opened = open_result(ciphertext, session.identity.encryption_key)
    if opened.request_id != request_id or opened.commitment != settled.commitment:
        raise CommitmentMismatch(f"the result at {settled.result_cid} does not match request {request_id}'s commitment")
    return opened
