"""IPFS content identifiers for single-block payloads, as Kubo computes them with
`cid-version=1, raw-leaves=true`: CIDv1, raw codec, sha2-256, base32. Payloads above one chunk
(256 KiB) are chunked into a DAG by IPFS and get a dag-pb root instead (see aidoc.storage later)."""

from __future__ import annotations

import base64
import hashlib

RAW_CODEC = 0x55
SHA2_256 = 0x12
CHUNK_SIZE = 256 * 1024


def cid_v1_raw(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256, base32) of `data`, which must fit in one 256 KiB chunk."""
    if len(data) > CHUNK_SIZE:
        raise ValueError(f"payload of {len(data)} bytes spans several IPFS chunks; this helper covers one")
    multihash = bytes([SHA2_256, 32]) + hashlib.sha256(data).digest()
    binary = bytes([0x01, RAW_CODEC]) + multihash
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")
