"""A patient decides who may use a record, for what purpose, until when; and can take it back."""

from __future__ import annotations

from dataclasses import dataclass

from aidoc.chain.contracts import call_struct
from aidoc.constants import Purpose
from aidoc.flow.session import Session


@dataclass(frozen=True)
class ConsentState:
    grantee: str
    purposes: Purpose
    expiry: int
    active: bool


def grant_consent(session: Session, record_id: int, grantee: str, purposes: Purpose, expiry: int) -> None:
    session.send(
        session.marketplace.consents.functions.grantConsent(record_id, grantee, int(purposes), expiry),
        f"grantConsent on record {record_id}",
    )


def revoke_consent(session: Session, record_id: int, grantee: str, purposes: Purpose) -> None:
    session.send(
        session.marketplace.consents.functions.revokeConsent(record_id, grantee, int(purposes)),
        f"revokeConsent on record {record_id}",
    )


def list_consents(session: Session, record_id: int) -> list[ConsentState]:
    """Every grantee ever granted access to `record_id`, with what the chain holds for them now."""
    consents = session.marketplace.consents
    start = session.marketplace.deployment.block_number
    grantees: dict[str, None] = {}
    for event in consents.events.ConsentGranted().get_logs(from_block=start, argument_filters={"recordId": record_id}):
        grantees.setdefault(event["args"]["grantee"])
    now = session.marketplace.w3.eth.get_block("latest")["timestamp"]
    states = []
    for grantee in grantees:
        grant = call_struct(consents, "consentOf", record_id, grantee)
        purposes, expiry = grant["purposes"], grant["expiry"]
        states.append(ConsentState(grantee, Purpose(purposes), expiry, bool(purposes) and expiry > now))
    return states
