"""A doctor requests a diagnosis: the fees are read from the chain, approved and escrowed, and the
doctor's X25519 public key goes along as the key the result will be sealed to. The doctor's
requests, and cancelling one that timed out or lost its consent (a full refund)."""

from __future__ import annotations

from dataclasses import dataclass

from aidoc.chain.contracts import call_batch, call_struct, utc_time
from aidoc.chain.request import DiagnosisRequest
from aidoc.constants import Purpose, RequestStatus
from aidoc.errors import AidocError
from aidoc.flow.session import Session


def quote(session: Session, record_id: int, model_id: int, node: str) -> int:
    """What a request costs now: model price + the record's royalty + the node's fee."""
    contracts = session.marketplace
    royalty = call_struct(contracts.consents, "checkAccess", record_id, session.address, int(Purpose.DIAGNOSIS))[
        "royalty"
    ]
    price = call_struct(contracts.models, "getModel", model_id)["price"]
    fee = call_struct(contracts.nodes, "getNode", node)["fee"]
    return price + royalty + fee


def request_diagnosis(session: Session, record_id: int, model_id: int, node: str,
                      max_total: int | None = None) -> tuple[int, DiagnosisRequest]:
    """Escrows the fees and requests the diagnosis; returns the request id and its terms."""
    contracts = session.marketplace
    total = quote(session, record_id, model_id, node) if max_total is None else max_total
    session.send(contracts.token.functions.approve(contracts.market.address, total), "approve the escrow")
    receipt = session.send(
        contracts.market.functions.requestDiagnosis(
            record_id, model_id, node, session.identity.encryption_public_key, total
        ),
        f"requestDiagnosis of record {record_id}",
    )
    args = session.event(receipt, contracts.market, "DiagnosisRequested")
    return int(args["requestId"]), DiagnosisRequest.from_event_field(args["request"])


class NotCancellable(AidocError):
    """The request cannot be cancelled (yet): it is settled, not the caller's, or still in time."""


@dataclass(frozen=True)
class MyRequest:
    """One of the caller's requests, with where it stands."""

    request_id: int
    terms: DiagnosisRequest
    status: RequestStatus
    block: int
    refundable: bool  # pending and cancellable now: past its deadline, or its consent is gone


def my_requests(session: Session) -> list[MyRequest]:
    """The caller's diagnosis requests since the deployment, oldest first (one eth_getLogs, one
    batch of state reads)."""
    contracts = session.marketplace
    market = contracts.market
    logs = market.events.DiagnosisRequested().get_logs(from_block=contracts.deployment.block_number,
                                                       argument_filters={"requester": session.address})
    if not logs:
        return []
    states = call_batch(contracts.w3, [(market, "getRequestState", (int(log["args"]["requestId"]),)) for log in logs])
    now = contracts.w3.eth.get_block("latest")["timestamp"]
    found = []
    for log, state in zip(logs, states):
        terms = DiagnosisRequest.from_event_field(log["args"]["request"])
        status = RequestStatus(int(state["status"]))
        refundable = status == RequestStatus.PENDING and (now > terms.deadline or not _consent_held(session, terms))
        found.append(MyRequest(int(log["args"]["requestId"]), terms, status, int(log["blockNumber"]), refundable))
    return found


def _consent_held(session: Session, terms: DiagnosisRequest) -> bool:
    return bool(session.marketplace.consents.functions.hasConsent(terms.record_id, terms.requester,
                                                                   int(Purpose.DIAGNOSIS)).call())


def cancel_request(session: Session, request_id: int) -> int:
    """Cancels the caller's pending request `request_id` whose deadline passed or whose consent is
    gone, and returns the refund; NotCancellable, saying when it can be, otherwise."""
    found = next((r for r in my_requests(session) if r.request_id == request_id), None)
    if found is None:
        raise NotCancellable(f"request {request_id} is not one of {session.address}'s; only its requester can "
                             "cancel it (aidoc requests lists yours)")
    if found.status != RequestStatus.PENDING:
        raise NotCancellable(f"request {request_id} is {found.status.name.lower()}: there is nothing to cancel")
    if not found.refundable:
        raise NotCancellable(f"request {request_id} is still within its deadline ({utc_time(found.terms.deadline)}) "
                             "and its consent holds: "
                             "its node may yet fulfil it; cancel after the deadline")
    session.send(session.marketplace.market.functions.cancel(request_id, found.terms.as_tuple()),
                 f"cancel request {request_id}")
    return found.terms.total
