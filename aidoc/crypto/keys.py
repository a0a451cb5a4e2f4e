"""Each identity (patient, doctor, node) holds one secret, its Ethereum key, kept in an encrypted
keystore, an environment variable or the user's own browser wallet. Its X25519 encryption key is
derived from the account's EIP-712 signature of a fixed message, so there is no second secret to
store, back up or leak, and a wallet that never exposes its private key (MetaMask, Rabby, Frame, a
hardware wallet) derives the same key as the CLI and the node.

Why a signature gives one key everywhere: an ECDSA signature over secp256k1 with an RFC 6979 nonce
is a deterministic function of the key and the message, and wallets and eth-account both sign that
way and both emit the low-s form (EIP-2). The seed is HKDF-SHA256 of the signature's r and s
(v, 0/1 or 27/28 depending on the signer, is left out).

The domain has no chainId and no verifying contract: one account has one encryption key on every
chain, so a record sealed on a testnet opens with the same wallet on another. The message says what
a signature gives away, because any page that obtains it can read what is sealed to the account;
the web app asks for it only on its own origin, and the README tells users never to sign it
elsewhere."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.messages import encode_typed_data
from nacl.public import PrivateKey

ENCRYPTION_KEY_INFO = b"aidoc-chain x25519 encryption key v2"
ENCRYPTION_KEY_STATEMENT = (
    "Sign to unlock your AIDoc chain encryption key. Anyone holding this signature can read the health "
    "records and results sealed to you: sign it only in the AIDoc chain app or CLI."
)


def encryption_key_typed_data(account: str) -> dict[str, Any]:
    """The EIP-712 message whose signature by `account` derives its encryption key (what the web
    app passes to eth_signTypedData_v4)."""
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
            "EncryptionKey": [{"name": "account", "type": "address"}, {"name": "statement", "type": "string"}],
        },
        "primaryType": "EncryptionKey",
        "domain": {"name": "AIDoc chain", "version": "1"},
        "message": {"account": account, "statement": ENCRYPTION_KEY_STATEMENT},
    }


def encryption_key_from_signature(signature: bytes) -> PrivateKey:
    """The X25519 private key of an account, from its 65-byte signature of `encryption_key_typed_data`."""
    if len(signature) != 65:
        raise ValueError("an encryption-key signature is 65 bytes (r, s, v)")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ENCRYPTION_KEY_INFO).derive(signature[:64])
    return PrivateKey(seed)


def encryption_key_signature(ethereum_private_key: bytes) -> bytes:
    """The account's signature of its encryption-key message, as a wallet would make it."""
    account = Account.from_key(ethereum_private_key)
    message = encode_typed_data(full_message=encryption_key_typed_data(account.address))
    return bytes(account.sign_message(message).signature)


def derive_encryption_key(ethereum_private_key: bytes) -> PrivateKey:
    """The X25519 private key that belongs to an Ethereum private key (32 bytes)."""
    if len(ethereum_private_key) != 32:
        raise ValueError("an Ethereum private key is 32 bytes")
    return encryption_key_from_signature(encryption_key_signature(ethereum_private_key))


def encryption_public_key(ethereum_private_key: bytes) -> bytes:
    """The 32-byte X25519 public key that goes on-chain (node registry) or into a request (resultKey)."""
    return derive_encryption_key(ethereum_private_key).public_key.encode()
