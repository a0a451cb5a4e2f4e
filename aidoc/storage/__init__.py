"""Content storage for encrypted records, key envelopes, model weights and results.

`open_store` picks the IPFS daemon client when an API URL is configured (AIDOC_IPFS_API), and the
embedded on-disk store otherwise; both return Kubo's CIDv1 for the same bytes and verify what they read."""

from __future__ import annotations

from pathlib import Path

from aidoc.storage.base import ContentStore
from aidoc.storage.embedded import EmbeddedStore
from aidoc.storage.ipfs_rpc import DEFAULT_API_URL, IpfsRpcStore
from aidoc.storage.unixfs import build_dag, cid_v1_raw, compute_cid, decode_file_node, parse_cid

__all__ = [
    "DEFAULT_API_URL",
    "ContentStore",
    "EmbeddedStore",
    "IpfsRpcStore",
    "build_dag",
    "cid_v1_raw",
    "compute_cid",
    "decode_file_node",
    "open_store",
    "parse_cid",
]


def open_store(api_url: str | None, embedded_root: Path) -> ContentStore:
    """An IpfsRpcStore on `api_url` when one is given, else an EmbeddedStore in `embedded_root`."""
    if api_url:
        return IpfsRpcStore(api_url)
    return EmbeddedStore(embedded_root)
