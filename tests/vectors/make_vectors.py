"""Writes tests/vectors/crypto.json: fixed inputs and the outputs the Python side computes from them.
The JavaScript side (web/src/crypto.js) must compute the same outputs (tests/unit/
test_web_crypto.py checks both). Run it again only when a format changes on purpose:
`python tests/vectors/make_vectors.py`."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account

from aidoc.crypto.envelope import LENGTH_BYTES, RECORD_MAGIC, record_bucket
from aidoc.crypto.keys import derive_encryption_key, encryption_key_signature, encryption_key_typed_data
from aidoc.crypto.result import canonical_result, result_commitment

# Well-known development keys (anvil's accounts 1 and 2): never funded on any real network.
KEYS = ["0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"]


def identity_vector(key: str) -> dict:
    account = Account.from_key(key)
    private = derive_encryption_key(bytes(account.key))
    return {
        "privateKey": key,
        "address": account.address,
        "typedData": encryption_key_typed_data(account.address),
        "signature": "0x" + encryption_key_signature(bytes(account.key)).hex(),
        "x25519PrivateKey": bytes(private).hex(),
        "x25519PublicKey": private.public_key.encode().hex(),
    }


def record_vector() -> dict:
    """A record ciphertext with a fixed data key and nonce (the writer picks both at random)."""
    data_key, nonce, data_type = bytes(range(32)), bytes(range(100, 112)), 1
    plaintext = json.dumps({"format": "aidoc.lab-panel", "values": [14.2, 20.1]}).encode()
    header = RECORD_MAGIC + bytes([data_type]) + nonce
    body = len(plaintext).to_bytes(LENGTH_BYTES, "big") + plaintext
    body += bytes(record_bucket(data_type, len(plaintext)) - len(body))
    return {"dataKey": data_key.hex(), "nonce": nonce.hex(), "dataType": data_type,
            "plaintext": plaintext.hex(), "ciphertext": (header + AESGCM(data_key).encrypt(nonce, body, header)).hex()}


def commitment_vector() -> dict:
    result = {"label": "malignant", "model": 3, "probabilities": {"benign": 0.0712, "malignant": 0.9288}}
    salt = bytes(range(200, 232))
    return {"requestId": 42, "salt": salt.hex(), "result": result,
            "canonical": canonical_result(result).decode(),
            "commitment": "0x" + result_commitment(42, salt, canonical_result(result)).hex()}


if __name__ == "__main__":
    vectors = {"identity": [identity_vector(key) for key in KEYS], "record": record_vector(),
               "commitment": commitment_vector()}
    Path(__file__).with_name("crypto.json").write_text(json.dumps(vectors, indent=2) + "\n")
