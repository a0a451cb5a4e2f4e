"""Each identity (patient, doctor, node) holds one secret, its Ethereum key, kept in an encrypted
keystore or an environment variable. Its X25519 encryption key is derived from it with HKDF, so
there is no second secret to store, back up or leak."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.public import PrivateKey

ENCRYPTION_KEY_INFO = b"aidoc-chain x25519 encryption key v1"


def derive_encryption_key(ethereum_private_key: bytes) -> PrivateKey:
    """The X25519 private key that belongs to an Ethereum private key (32 bytes)."""
    if len(ethereum_private_key) != 32:
        raise ValueError("an Ethereum private key is 32 bytes")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ENCRYPTION_KEY_INFO).derive(
        ethereum_private_key
    )
    return PrivateKey(seed)


def encryption_public_key(ethereum_private_key: bytes) -> bytes:
    """The 32-byte X25519 public key that goes on-chain (node registry) or into a request (resultKey)."""
    return derive_encryption_key(ethereum_private_key).public_key.encode()
