"""An on-disk content store for machines without an IPFS daemon.

Several processes on one machine (the CLI, Celery workers, the sender) share one root directory:
- `root/blocks/<cid>` holds each block of each file's UnixFS DAG, exactly as Kubo would store it, so
  the CIDs are Kubo's. A block is written to a temp file and renamed into place (os.replace), so a
  reader sees a whole block or none, and two writers of the same block write the same bytes.
- `root/pins/<cid>` is an empty marker per pinned root. Nothing here collects garbage: unpinned
  content stays readable until someone deletes it.
`cat` re-hashes every block it reads, so a corrupted or tampered file is reported, never returned.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from aidoc.errors import ContentNotFound, StorageUnavailable
from aidoc.storage import unixfs


class EmbeddedStore:
    """A ContentStore in a directory: blocks by CID under root/blocks, pin markers under root/pins."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blocks_dir = self.root / "blocks"
        self.pins_dir = self.root / "pins"
        try:
            self.blocks_dir.mkdir(parents=True, exist_ok=True)
            self.pins_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageUnavailable(f"cannot create the embedded store at {self.root}: {error.strerror}") from None

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"

    def add(self, data: bytes, *, pin: bool = True) -> str:
        root_cid, blocks = unixfs.build_dag(data)
        for cid, block in blocks.items():
            if not self._holds(cid, block):  # also rewrites a block that was corrupted on disk
                self._write_atomic(self.blocks_dir / cid, block)
        if pin:
            self._write_atomic(self.pins_dir / root_cid, b"")
        return root_cid

    def cat(self, cid: str, *, max_size: int | None = None) -> bytes:
        unixfs.parse_cid(cid)
        return unixfs.read_dag(cid, self._get_block, max_size)

    def pin(self, cid: str) -> None:
        unixfs.parse_cid(cid)
        if not (self.blocks_dir / cid).exists():
            raise ContentNotFound(f"cannot pin {cid}: it is not in the embedded store at {self.root}; add it first")
        self._write_atomic(self.pins_dir / cid, b"")

    def unpin(self, cid: str) -> None:
        unixfs.parse_cid(cid)
        (self.pins_dir / cid).unlink(missing_ok=True)

    def is_pinned(self, cid: str) -> bool:
        """Whether `cid` carries a pin marker."""
        return (self.pins_dir / cid).exists()

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""

    def _holds(self, cid: str, block: bytes) -> bool:
        try:
            return (self.blocks_dir / cid).read_bytes() == block
        except OSError:
            return False

    def _get_block(self, cid: str) -> bytes:
        try:
            return (self.blocks_dir / cid).read_bytes()
        except FileNotFoundError:
            raise ContentNotFound(f"{cid} is not in the embedded store at {self.root}") from None
        except OSError as error:
            raise StorageUnavailable(f"cannot read block {cid} in {self.root}: {error.strerror}") from None

    def _write_atomic(self, path: Path, payload: bytes) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as error:
            raise StorageUnavailable(
                f"cannot write {path.name} to the embedded store at {self.root}: {error.strerror}"
            ) from None
