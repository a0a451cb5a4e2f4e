"""The interface every content store offers: the IPFS daemon client and the embedded on-disk store."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ContentStore(Protocol):
    """Content-addressed storage of opaque bytes (ciphertexts, key envelopes, model weights, results).

    CIDs are base32 CIDv1 strings exactly as Kubo computes them for `cid-version=1, raw-leaves=true`,
    so a CID taken from one store names the same bytes in any other."""

    def add(self, data: bytes, *, pin: bool = True) -> str:
        """Stores `data` and returns its CID; pinned (kept by garbage collection) unless pin=False."""
        ...

    def cat(self, cid: str, *, max_size: int | None = None) -> bytes:
        """The bytes under `cid`, verified against it (ContentMismatch otherwise); ContentNotFound when the
        store does not have them; ContentTooLarge when they exceed `max_size`, raised as early as possible."""
        ...

    def pin(self, cid: str) -> None:
        """Keeps the content under `cid` (which the store must hold) from garbage collection."""
        ...

    def unpin(self, cid: str) -> None:
        """Lets garbage collection drop the content under `cid`; a no-op when it was not pinned."""
        ...

    def close(self) -> None:
        """Releases connections or handles; the store is not used afterwards."""
        ...
