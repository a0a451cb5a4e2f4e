"""A thin client of the Kubo HTTP RPC (`/api/v0/...`), which Kubo and js-ipfs both serve, on httpx.

Why not ipfshttpclient: its last release (0.7.0, 2021) checks the daemon's version at connect() and
raises VersionMismatch for every daemon since Kubo 0.8, so it cannot talk to any current Kubo.

Trust: nothing the daemon returns is taken on faith.
- `add` recomputes the CID locally (aidoc.storage.unixfs) and requires the daemon's to be the same:
  a difference means the daemon chunks or hashes differently, and its CIDs would not match ours.
- `cat` first fetches the root block with `/api/v0/block/get` (hash-checked; for content of one chunk
  that block *is* the content). For a dag-pb root it learns the file size from the root, so an
  oversized file is refused before it is downloaded; then it streams `/api/v0/cat`, stops reading past
  the declared size, and recomputes the whole DAG from the bytes: any difference is ContentMismatch.
- A CID the daemon does not hold: Kubo online searches the network for it indefinitely, and an
  offline node may wait too, so the root lookup carries the RPC's `timeout` option (a duration, which
  Kubo and js-ipfs both honour) and a lookup that runs out of time raises ContentUnreachable (a
  StorageUnavailable: transient, the worker retries).
  (js-ipfs 0.18 `--offline` waits forever on a missing block and ignores an `offline=true` parameter.)
  The `/cat` that follows has no such option (it would also cut long downloads): a DAG whose root is
  present but a child is not ends with httpx's read timeout, as StorageUnavailable.

Errors: a daemon that cannot be reached, times out or answers 5xx for another reason raises
StorageUnavailable (transient); "not found" answers raise ContentNotFound.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from aidoc.errors import ContentMismatch, ContentNotFound, ContentUnreachable, StorageError, StorageUnavailable
from aidoc.storage import unixfs

DEFAULT_API_URL = "http://127.0.0.1:5001"

# Daemon answers (Kubo and js-ipfs) meaning "this CID is not here"; and "not found within the
# lookup timeout", which is transient: a provider may be slow to answer.
_NOT_FOUND = re.compile(r"not found|could not find|no link named", re.IGNORECASE)
_LOOKUP_TIMED_OUT = re.compile(r"context deadline exceeded|timed out", re.IGNORECASE)
_NOT_PINNED = re.compile(r"not pinned|is not pinned", re.IGNORECASE)


class IpfsRpcStore:
    """A ContentStore backed by an IPFS daemon's HTTP RPC (Kubo, or js-ipfs from tools/ipfs)."""

    def __init__(self, api_url: str = DEFAULT_API_URL, timeout: float = 30.0, *, lookup_timeout: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.lookup_timeout = lookup_timeout
        self._client = httpx.Client(base_url=f"{self.api_url}/api/v0/", timeout=timeout)

    def __repr__(self) -> str:
        return f"IpfsRpcStore({self.api_url!r})"

    def ping(self) -> str:
        """The daemon's version string; StorageUnavailable when it does not answer."""
        with self._call("version") as response:
            return str(_json(response.read()).get("Version", "unknown"))

    def add(self, data: bytes, *, pin: bool = True) -> str:
        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            "hash": "sha2-256",
            "cid-base": "base32",
            "pin": _flag(pin),
            "progress": "false",
        }
        with self._call("add", params=params, files={"file": ("blob", data, "application/octet-stream")}) as response:
            lines = [line for line in response.read().splitlines() if line.strip()]
        if not lines:
            raise StorageError(f"IPFS daemon at {self.api_url} answered /add with nothing")
        answer = _json(lines[-1])
        returned, expected = answer.get("Hash"), unixfs.compute_cid(data)
        if returned != expected:
            raise ContentMismatch(
                f"IPFS daemon at {self.api_url} stored {len(data)} bytes as {returned}, expected {expected}: "
                "it is not using Kubo's default chunking (256 KiB, balanced, raw leaves, sha2-256)"
            )
        return expected

    def cat(self, cid: str, *, max_size: int | None = None) -> bytes:
        codec, _ = unixfs.parse_cid(cid)
        root = self._get_block(cid)
        unixfs.verify_block(cid, root)
        size = len(root) if codec == unixfs.RAW_CODEC else unixfs.decode_file_node(root).filesize
        unixfs.check_size(cid, size, max_size)
        if codec == unixfs.RAW_CODEC:
            return root  # one chunk: the hash-checked root block is the whole content
        data = self._cat_stream(cid, size)
        if unixfs.compute_cid(data) != cid:
            raise ContentMismatch(f"IPFS daemon at {self.api_url} returned bytes for {cid} that do not hash to it")
        return data

    def pin(self, cid: str) -> None:
        unixfs.parse_cid(cid)
        self._call_simple("pin/add", cid, timeout=True)

    def unpin(self, cid: str) -> None:
        unixfs.parse_cid(cid)
        try:
            self._call_simple("pin/rm", cid)
        except ContentNotFound:
            pass  # not pinned (or not held at all): the outcome the caller asked for

    def close(self) -> None:
        self._client.close()

    def _get_block(self, cid: str) -> bytes:
        with self._call("block/get", params={"arg": cid, "timeout": self._lookup_param()}, cid=cid) as response:
            return response.read()

    def _cat_stream(self, cid: str, size: int) -> bytes:
        out = bytearray()
        with self._call("cat", params={"arg": cid}, cid=cid) as response:
            for chunk in response.iter_bytes():
                out += chunk
                if len(out) > size:
                    raise ContentMismatch(f"IPFS daemon at {self.api_url} sent more than the {size} bytes of {cid}")
        return bytes(out)

    def _call_simple(self, command: str, cid: str, *, timeout: bool = False) -> None:
        params = {"arg": cid, **({"timeout": self._lookup_param()} if timeout else {})}
        with self._call(command, params=params, cid=cid) as response:
            response.read()

    def _lookup_param(self) -> str:
        return f"{int(self.lookup_timeout * 1000)}ms"

    @contextmanager
    def _call(self, command: str, *, cid: str | None = None, **kwargs: object) -> Iterator[httpx.Response]:
        """POSTs one RPC command and yields the streaming response once its status is 200."""
        try:
            with self._client.stream("POST", command, **kwargs) as response:  # type: ignore[arg-type]
                if response.status_code != 200:
                    self._raise_for(command, response, cid)
                yield response
        except httpx.TimeoutException:
            raise StorageUnavailable(
                f"IPFS daemon at {self.api_url} did not answer /{command} within {self.timeout:.0f} s; "
                "check that it is running (aidoc up) or set AIDOC_IPFS_API to one that is"
            ) from None
        except httpx.TransportError as error:
            raise StorageUnavailable(
                f"IPFS daemon at {self.api_url} is unreachable ({type(error).__name__}); "
                "start it (aidoc up) or set AIDOC_IPFS_API to a running daemon's API URL"
            ) from None

    def _raise_for(self, command: str, response: httpx.Response, cid: str | None) -> None:
        message = _error_message(response.read())
        if cid is not None and _LOOKUP_TIMED_OUT.search(message):
            raise ContentUnreachable(f"IPFS daemon at {self.api_url} found no copy of {cid} in time: {message}")
        if (cid is not None and _NOT_FOUND.search(message)) or (command == "pin/rm" and _NOT_PINNED.search(message)):
            raise ContentNotFound(f"IPFS daemon at {self.api_url} does not have {cid}: {message}")
        if response.status_code >= 500:
            raise StorageUnavailable(f"IPFS daemon at {self.api_url} failed /{command}: {message}")
        raise StorageError(f"IPFS daemon at {self.api_url} refused /{command} (HTTP {response.status_code}): {message}")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        raise StorageError(f"IPFS daemon answered something that is not JSON: {raw[:120]!r}") from None
    return value if isinstance(value, dict) else {}


def _error_message(raw: bytes) -> str:
    """The `Message` of a Kubo-style error body, else the body's first line."""
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, dict) and value.get("Message"):
        return str(value["Message"])
    text = raw.decode("utf-8", "replace").strip().splitlines()
    return text[0][:200] if text else "(empty error response)"
