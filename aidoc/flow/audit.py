"""What a patient can see: every grant, revocation and use of a record, and who was paid what."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aidoc.chain.request import DiagnosisRequest
from aidoc.constants import Purpose
from aidoc.flow.session import Session


@dataclass(frozen=True)
class AuditEntry:
    block: int
    timestamp: int
    action: str  # granted, revoked, accessed
    party: str  # the grantee, or the requester who used the record
    purposes: Purpose
    detail: str


def audit_trail(session: Session, record_id: int) -> list[AuditEntry]:
    """The record's history from the chain, oldest first."""
    consents = session.marketplace.consents
    w3 = session.marketplace.w3
    start = session.marketplace.deployment.block_number
    found: list[tuple[int, int, AuditEntry]] = []
    timestamps: dict[int, int] = {}

    def timestamp(block: int) -> int:
        if block not in timestamps:
            timestamps[block] = w3.eth.get_block(block)["timestamp"]
        return timestamps[block]

    def add(event, action: str, party: str, purposes: int, detail: str) -> None:
        block = event["blockNumber"]
        found.append((block, event["logIndex"], AuditEntry(block, timestamp(block), action, party, Purpose(purposes),
                                                            detail)))

    filters = {"recordId": record_id}
    grants = set()
    for event in consents.events.ConsentGranted().get_logs(from_block=start, argument_filters=filters):
        grants.add((event["transactionHash"], event["args"]["grantee"]))
        add(event, "granted", event["args"]["grantee"], event["args"]["purposes"],
            "until " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(event["args"]["expiry"])))
    for event in consents.events.ConsentRevoked().get_logs(from_block=start, argument_filters=filters):
        replaced = (event["transactionHash"], event["args"]["grantee"]) in grants
        add(event, "revoked", event["args"]["grantee"], event["args"]["purposes"],
            "left out of a new grant" if replaced else "")
    for event in consents.events.RecordAccessed().get_logs(from_block=start, argument_filters=filters):
        args = event["args"]
        use = "training job" if args["purpose"] == Purpose.TRAINING else "request"
        add(event, "accessed", args["grantee"], args["purpose"], f"{use} {args['requestId']} by node {args['node']}")
    return [entry for _, _, entry in sorted(found, key=lambda item: (item[0], item[1]))]


@dataclass(frozen=True)
class Payout:
    provider: int
    data_owner: int
    node: int


def payout_of(request: DiagnosisRequest) -> Payout:
    """How a fulfilled request's escrow is split."""
    return Payout(provider=request.model_fee, data_owner=request.royalty, node=request.node_fee)
