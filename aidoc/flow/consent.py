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


@dataclass(frozen=True)
class GrantChange:
    """What a grant changes for one grantee: the chain keeps one grant per grantee (purposes and one
    expiry), and a new grant replaces it; a live purpose it leaves out is revoked (ConsentRevoked)."""

    purposes: Purpose  # what the grantee holds after it
    expiry: int
    added: Purpose  # not held (live) before
    removed: Purpose  # held before, gone after: the audit trail records its revocation
    previous: ConsentState | None  # the live grant it replaces


def plan_grant(session: Session, record_id: int, grantee: str, purposes: Purpose, expiry: int,
               replace: bool = False) -> GrantChange:
    """The grant to send: `purposes` added to what `grantee` holds now (all of it until `expiry`),
    or with `replace` exactly `purposes`."""
    held = call_struct(session.marketplace.consents, "consentOf", record_id, grantee)
    now = session.marketplace.w3.eth.get_block("latest")["timestamp"]
    live = Purpose(held["purposes"]) if held["purposes"] and held["expiry"] > now else Purpose(0)
    previous = ConsentState(grantee, live, held["expiry"], True) if live else None
    after = purposes if replace else purposes | live
    return GrantChange(after, expiry, after & ~live, live & ~after, previous)


def grant_consent(session: Session, record_id: int, grantee: str, purposes: Purpose, expiry: int) -> None:
    """Sends the grant as given: it replaces `grantee`'s earlier one (plan_grant says how)."""
    session.send(
        session.marketplace.consents.functions.grantConsent(record_id, grantee, int(purposes), expiry),
        f"grantConsent on record {record_id}",
    )


def request_timeout(session: Session) -> int:
    """How long (s) a diagnosis request may wait for its node before the requester can cancel it."""
    return int(session.marketplace.market.functions.requestTimeout().call())


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
