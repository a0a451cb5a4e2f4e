"""Random payloads standing in for ciphertexts, for scripts that exercise transactions only.
They hold no health data; the oracle workers encrypt real records and store them on IPFS."""

import hashlib
import secrets

from aidoc.cid import cid_v1_raw


def stand_in_ciphertext(size: int) -> tuple[str, str]:
    """(CIDv1, 0x-prefixed sha256) of `size` random bytes."""
    blob = secrets.token_bytes(size)
    return cid_v1_raw(blob), "0x" + hashlib.sha256(blob).hexdigest()
