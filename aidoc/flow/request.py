"""A doctor requests a diagnosis: the fees are read from the chain, approved and escrowed, and the
doctor's X25519 public key goes along as the key the result will be sealed to."""

from __future__ import annotations

from aidoc.chain.contracts import call_struct
from aidoc.chain.request import DiagnosisRequest
from aidoc.constants import Purpose
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
