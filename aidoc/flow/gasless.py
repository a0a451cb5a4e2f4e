"""A patient changes consent without ETH: the change is signed (EIP-712) here and submitted by a
relayer (aidoc.relayer, AIDOC_RELAYER_URL), which pays the gas. The signature binds the record,
grantee, purposes, expiry, the owner's current nonce and a deadline, so the relayer can submit
exactly this change once, before the deadline, or not at all."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from aidoc.chain.contracts import chain_time_in
from aidoc.constants import Purpose
from aidoc.errors import AidocError, ConfigError, TransientError
from aidoc.flow.session import Session
from aidoc.relayer.service import SignedConsentChange
from aidoc.signing import sign_consent_grant, sign_consent_revocation

SIGNATURE_VALID_DAYS = 1 / 24  # a relayed change must be mined within an hour of signing


class RelayerRefused(AidocError):
    """The relayer answered with a refusal; its message says why."""


@dataclass(frozen=True)
class Relayed:
    transaction_hash: str
    block_number: int


def sign_change(session: Session, record_id: int, grantee: str, purposes: Purpose,
                expiry: int | None, *, deadline: int | None = None) -> SignedConsentChange:
    """The owner's signed grant (`expiry` given) or revocation of `purposes` for `grantee`, valid
    until `deadline` (chain time; default an hour from now)."""
    contracts = session.marketplace
    nonce = contracts.consents.functions.nonces(session.address).call()
    deadline = chain_time_in(contracts.w3, SIGNATURE_VALID_DAYS) if deadline is None else deadline
    common = dict(chain_id=contracts.chain_id, registry=contracts.consents.address, record_id=record_id,
                  grantee=grantee, purposes=int(purposes), nonce=nonce, deadline=deadline)
    key = session.identity.account.key
    signed = (sign_consent_grant(key, expiry=expiry, **common) if expiry is not None
              else sign_consent_revocation(key, **common))
    return SignedConsentChange(record_id, grantee, int(purposes), expiry, deadline, signed.signature)


def relay(relayer_url: str, change: SignedConsentChange, timeout: float = 120.0) -> Relayed:
    """Hands `change` to the relayer at `relayer_url` and waits until it is mined."""
    if not relayer_url:
        raise ConfigError("--gasless needs a relayer: set AIDOC_RELAYER_URL (one runs with `aidoc relayer run`)")
    path = "grant" if change.expiry is not None else "revoke"
    try:
        response = requests.post(f"{relayer_url}/v1/consent/{path}", json=change.to_json(), timeout=timeout)
    except requests.exceptions.RequestException:
        raise TransientError(f"no relayer answers at {relayer_url}: check AIDOC_RELAYER_URL, or send the change "
                             "yourself without --gasless") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if response.status_code != 200:
        raise RelayerRefused(f"the relayer refused the consent {change.kind}: "
                             f"{answer.get('error', f'HTTP {response.status_code}')}")
    try:
        return Relayed(str(answer["transactionHash"]), int(answer["blockNumber"]))
    except (KeyError, TypeError, ValueError):
        raise RelayerRefused(f"{relayer_url} answered, but not as an AIDoc relayer does: check AIDOC_RELAYER_URL "
                             "(then see with `aidoc audit RECORD` whether the change went through)") from None
