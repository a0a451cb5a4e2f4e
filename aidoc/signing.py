"""EIP-712 messages a patient or a requester signs off-chain: consent grants and revocations
(ConsentRegistry) and ERC-2612 permits (AIDToken). A relayer submits them, so the signer needs no
ETH. Keys are eth-account keys loaded from a keystore or an environment variable, never a file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

CONSENT_DOMAIN_NAME = "AIDoc ConsentRegistry"
TOKEN_DOMAIN_NAME = "AIDoc Token"
DOMAIN_VERSION = "1"

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

CONSENT_GRANT_FIELDS = [
    {"name": "recordId", "type": "uint256"},
    {"name": "grantee", "type": "address"},
    {"name": "purposes", "type": "uint8"},
    {"name": "expiry", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]

CONSENT_REVOCATION_FIELDS = [
    {"name": "recordId", "type": "uint256"},
    {"name": "grantee", "type": "address"},
    {"name": "purposes", "type": "uint8"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]

PERMIT_FIELDS = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


@dataclass(frozen=True)
class Signature:
    """A 65-byte signature, and its parts for functions that take (v, r, s)."""

    signature: bytes
    v: int
    r: bytes
    s: bytes


def _typed_data(domain_name: str, chain_id: int, verifying_contract: str, primary_type: str,
                fields: list[dict[str, str]], message: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, primary_type: fields},
        "primaryType": primary_type,
        "domain": {
            "name": domain_name,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        },
        "message": message,
    }


def _sign(private_key: str | bytes, domain_name: str, chain_id: int, verifying_contract: str,
          primary_type: str, fields: list[dict[str, str]], message: dict[str, Any]) -> Signature:
    typed_data = _typed_data(domain_name, chain_id, verifying_contract, primary_type, fields, message)
    signed = Account.sign_message(encode_typed_data(full_message=typed_data), private_key)
    return Signature(
        signature=bytes(signed.signature),
        v=signed.v,
        r=signed.r.to_bytes(32, "big"),
        s=signed.s.to_bytes(32, "big"),
    )


def _consent_message(record_id: int, grantee: str, purposes: int, expiry: int | None, nonce: int,
                     deadline: int) -> tuple[str, list[dict[str, str]], dict[str, Any]]:
    """The primary type, fields and message of a grant (`expiry` given) or a revocation."""
    message: dict[str, Any] = {"recordId": record_id, "grantee": grantee, "purposes": purposes}
    if expiry is not None:
        message["expiry"] = expiry
    message.update({"nonce": nonce, "deadline": deadline})
    if expiry is None:
        return "ConsentRevocation", CONSENT_REVOCATION_FIELDS, message
    return "ConsentGrant", CONSENT_GRANT_FIELDS, message


def sign_consent_grant(private_key: str | bytes, *, chain_id: int, registry: str, record_id: int,
                       grantee: str, purposes: int, expiry: int, nonce: int, deadline: int) -> Signature:
    """The record owner's signature for ConsentRegistry.grantConsentBySig."""
    primary, fields, message = _consent_message(record_id, grantee, purposes, expiry, nonce, deadline)
    return _sign(private_key, CONSENT_DOMAIN_NAME, chain_id, registry, primary, fields, message)


def sign_consent_revocation(private_key: str | bytes, *, chain_id: int, registry: str, record_id: int,
                            grantee: str, purposes: int, nonce: int, deadline: int) -> Signature:
    """The record owner's signature for ConsentRegistry.revokeConsentBySig."""
    primary, fields, message = _consent_message(record_id, grantee, purposes, None, nonce, deadline)
    return _sign(private_key, CONSENT_DOMAIN_NAME, chain_id, registry, primary, fields, message)


def consent_signer(signature: bytes, *, chain_id: int, registry: str, record_id: int, grantee: str,
                   purposes: int, expiry: int | None, nonce: int, deadline: int) -> str:
    """Who signed a grant (`expiry` given) or a revocation (`expiry` None): what a relayer checks
    before it pays gas for a signature the registry would refuse."""
    check_signature(signature)
    primary, fields, message = _consent_message(record_id, grantee, purposes, expiry, nonce, deadline)
    typed_data = _typed_data(CONSENT_DOMAIN_NAME, chain_id, registry, primary, fields, message)
    try:
        return Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature)
    except (ValueError, TypeError) as error:  # eth_keys' BadSignature is a ValueError
        raise MalformedSignature(f"it recovers no key: {error}") from None


class MalformedSignature(ValueError):
    """A signature OpenZeppelin's ECDSA (and so the registry) refuses whoever signed."""


def check_signature(signature: bytes) -> None:
    """Raises MalformedSignature unless `signature` is r ‖ s ‖ v with v 27 or 28 and a low s (EIP-2)."""
    if len(signature) != 65:
        raise MalformedSignature(f"{len(signature)} bytes, not 65")
    if signature[64] not in (27, 28):
        raise MalformedSignature(f"v is {signature[64]}, not 27 or 28")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_N:
        raise MalformedSignature("s is in the upper half of the curve order (EIP-2 refuses it)")


def sign_permit(private_key: str | bytes, *, chain_id: int, token: str, owner: str, spender: str,
                value: int, nonce: int, deadline: int) -> Signature:
    """An ERC-2612 permit for AIDToken."""
    message = {"owner": owner, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline}
    return _sign(private_key, TOKEN_DOMAIN_NAME, chain_id, token, "Permit", PERMIT_FIELDS, message)
