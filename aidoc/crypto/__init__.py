"""Envelopes for records (AES-256-GCM + X25519 sealed data keys) and results (sealed + salted commitment)."""

from aidoc.crypto.envelope import SealedRecord, decrypt_record, encrypt_record, open_record, unwrap_data_key
from aidoc.crypto.keys import derive_encryption_key, encryption_public_key
from aidoc.crypto.result import (
    OpenedResult,
    SealedResult,
    open_result,
    result_commitment,
    seal_result,
    usable_result_key,
)

__all__ = [
    "OpenedResult",
    "SealedRecord",
    "SealedResult",
    "decrypt_record",
    "derive_encryption_key",
    "encrypt_record",
    "encryption_public_key",
    "open_record",
    "open_result",
    "result_commitment",
    "seal_result",
    "unwrap_data_key",
    "usable_result_key",
]
