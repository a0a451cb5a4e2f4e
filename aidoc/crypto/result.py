"""Diagnosis results: sealed to the requester's X25519 key (the resultKey of the request), and
committed on-chain with a salt.

The commitment is keccak256(requestId (32 bytes) || salt (32 bytes) || result bytes). The salt is
random and travels only inside the sealed result, so nobody who sees the chain can test a guess
such as 'malignant' against the commitment; the requester, who can open the result, recomputes
it and checks it against the chain.

Nor may the ciphertext's length answer the guess: the sealed body (JSON) is padded with trailing
spaces, which JSON ignores, to RESULT_PAD_BYTES (or the next multiple of it for a larger result), so
every result of a model seals to the same length whatever its label."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from eth_utils import keccak
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from aidoc.errors import CorruptCiphertext, WrongKey

SALT_BYTES = 32
RESULT_VERSION = 1
RESULT_PAD_BYTES = 1024


def padded(body: bytes, block: int = RESULT_PAD_BYTES) -> bytes:
    """`body` with trailing spaces up to the next multiple of `block` (at least one block)."""
    return body + b" " * (-len(body) % block if body else block)


@dataclass(frozen=True)
class SealedResult:
    """What a node publishes: the ciphertext for IPFS and the commitment for the chain."""

    ciphertext: bytes
    commitment: bytes


@dataclass(frozen=True)
class OpenedResult:
    """A result as the requester reads it."""

    request_id: int
    result: dict
    salt: bytes
    commitment: bytes


def result_commitment(request_id: int, salt: bytes, result_bytes: bytes) -> bytes:
    """keccak256(requestId || salt || result): what the node posts on-chain."""
    return keccak(request_id.to_bytes(32, "big") + salt + result_bytes)


def canonical_result(result: dict) -> bytes:
    """The deterministic byte form of a result, the one the commitment covers."""
    return json.dumps(result, sort_keys=True, separators=(",", ":")).encode()


# libsodium's small-order X25519 points (crypto_scalarmult/curve25519 has_small_order), which it
# also refuses with the top bit set; DiagnosisMarket refuses the same keys at request time.
SMALL_ORDER_POINTS: tuple[bytes, ...] = tuple(bytes.fromhex(h) for h in (
    "00" * 32,
    "01" + "00" * 31,
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ec" + "ff" * 30 + "7f",
    "ed" + "ff" * 30 + "7f",
    "ee" + "ff" * 30 + "7f",
))


def with_top_bit(point: bytes) -> bytes:
    return point[:31] + bytes([point[31] | 0x80])


def usable_result_key(key: bytes) -> bool:
    """Whether results can be sealed to `key`: 32 bytes and not a small-order point (the market
    refuses those at request time too)."""
    try:
        SealedBox(PublicKey(key)).encrypt(b"")
    except (NaclCryptoError, RuntimeError, ValueError, TypeError):  # libsodium: RuntimeError on small order
        return False
    return True


def seal_result(request_id: int, result: dict, requester_key: bytes) -> SealedResult:
    """Encrypts `result` to the requester's X25519 public key and commits to it with a fresh salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    result_bytes = canonical_result(result)
    body = json.dumps(
        {"version": RESULT_VERSION, "requestId": request_id, "salt": salt.hex(), "result": result},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    ciphertext = SealedBox(PublicKey(requester_key)).encrypt(padded(body))
    return SealedResult(ciphertext=ciphertext, commitment=result_commitment(request_id, salt, result_bytes))


def open_result(ciphertext: bytes, private_key: PrivateKey) -> OpenedResult:
    """Decrypts a sealed result with the requester's key and recomputes its commitment."""
    try:
        body = json.loads(SealedBox(private_key).decrypt(ciphertext))
    except NaclCryptoError:
        raise WrongKey("this result does not open with your key: it was sealed to another requester") from None
    except ValueError:
        raise CorruptCiphertext("the result decrypts to something that is not a result") from None
    try:
        request_id = int(body["requestId"])
        salt = bytes.fromhex(body["salt"])
        result = dict(body["result"])
    except (KeyError, TypeError, ValueError):
        raise CorruptCiphertext("the result is missing its request id, salt or content") from None
    return OpenedResult(
        request_id=request_id,
        result=result,
        salt=salt,
        commitment=result_commitment(request_id, salt, canonical_result(result)),
    )
