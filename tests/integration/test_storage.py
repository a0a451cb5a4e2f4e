"""aidoc.storage: Kubo-compatible CIDs, the embedded store, and the RPC client against a real js-ipfs daemon.

The CID vectors below were produced by js-ipfs 0.18.1 (`ipfs add --cid-version=1 --raw-leaves`), and the
integration tests check the live daemon agrees with the local DAG builder for every size."""

from __future__ import annotations

import concurrent.futures
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aidoc.cid
from aidoc.errors import (
    ContentMismatch,
    ContentNotFound,
    ContentTooLarge,
    ContentUnreachable,
    StorageError,
    StorageUnavailable,
    TransientError,
)
from aidoc.stack.ipfs import ipfs_daemon
from aidoc.stack.process import ManagedProcess, ServiceStartError, free_port
from aidoc.storage import EmbeddedStore, IpfsRpcStore, open_store, unixfs
from aidoc.storage.base import ContentStore

CHUNK = unixfs.CHUNK_SIZE
DEPTH_TWO = 174 * CHUNK + 1  # one chunk more than a depth-1 node holds

# size -> CID that js-ipfs returned for payload(size)
KNOWN_CIDS = {
    0: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    1: "bafkreie6a5wov4sgwyad3hbgqcrljtyl77igtaczakyll3pox5eqhh7exu",
    CHUNK: "bafkreigmsqkvv6x6rmfw67s3677fer7w6amj4wd2kho6gd6qqfnlvvczgq",
    CHUNK + 1: "bafybeido6cpknm5dyj5ngza2gxtdtgmi2wdhkqrevakom4ih2wcsmvrs34",
    2 * CHUNK: "bafybeiapu3vqzxdrwf73nrxmetzzz57eoxpghq3j2f7glk5vy7srks73yy",
    174 * CHUNK: "bafybeifwcdxx3yp4cm4sawshxrvwixs36eeupjntrb7rsyencc7kw5m5hi",
    DEPTH_TWO: "bafybeidgsehalithh4xgy4ruhew2znnqmji6i7zed4dw6zqr3tvn522mxq",
}
RANDOM_SIZES = [7, 1000, 300_000, 1_500_123, 5 * CHUNK - 7]
MISSING_CID = unixfs.block_cid(unixfs.RAW_CODEC, b"nobody stored this")


def payload(size: int, seed: str = "aidoc") -> bytes:
    """Deterministic pseudo-random bytes (the same for a size on every run and machine)."""
    return random.Random(f"{seed}:{size}").randbytes(size)


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An offline js-ipfs daemon for this module; yields its API URL."""
    base = tmp_path_factory.mktemp("ipfs")
    port = free_port()
    with ipfs_daemon(base / "run", base / "repo", port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def rpc(daemon: str) -> Iterator[IpfsRpcStore]:
    store = IpfsRpcStore(daemon, timeout=30.0, lookup_timeout=1.0)
    yield store
    store.close()


@pytest.fixture
def embedded(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store")


class FakeDaemon:
    """A local HTTP server that impersonates an IPFS RPC: `respond(path_with_query, body)` gives
    (status, body) for each POST; every request path is recorded in `paths`."""

    def __init__(self, respond: Callable[[str, bytes], tuple[int, bytes]]) -> None:
        fake = self
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.paths.append(self.path)
                status, answer = respond(self.path, body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_daemon() -> Iterator[Callable[[Callable[[str, bytes], tuple[int, bytes]]], FakeDaemon]]:
    started: list[FakeDaemon] = []

    def start(respond: Callable[[str, bytes], tuple[int, bytes]]) -> FakeDaemon:
        started.append(FakeDaemon(respond))
        return started[-1]

    yield start
    for fake in started:
        fake.close()


def proxy_to(
    upstream: str, tamper: Callable[[str, bytes], bytes] | None = None
) -> Callable[[str, bytes], tuple[int, bytes]]:
    """A FakeDaemon responder that forwards to the real daemon and lets `tamper(path, answer)` edit answers."""

    def respond(path: str, body: bytes) -> tuple[int, bytes]:
        answer = httpx.post(f"{upstream}{path}", content=body, headers={"Content-Type": _content_type(body)})
        return answer.status_code, tamper(path, answer.content) if tamper else answer.content

    return respond


def _content_type(body: bytes) -> str:
    if body.startswith(b"--"):
        return "multipart/form-data; boundary=" + body[2 : body.index(b"\r\n")].decode()
    return "application/octet-stream"


def flip_first_byte(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:] if data else b"\x00"


# --- CIDs and the DAG builder ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", sorted(KNOWN_CIDS))
def test_compute_cid_matches_known_daemon_vectors(size: int) -> None:
    assert unixfs.compute_cid(payload(size)) == KNOWN_CIDS[size]


def test_single_chunk_is_raw_and_larger_is_dag_pb() -> None:
    assert unixfs.parse_cid(unixfs.compute_cid(payload(CHUNK)))[0] == unixfs.RAW_CODEC
    assert unixfs.parse_cid(unixfs.compute_cid(payload(CHUNK + 1)))[0] == unixfs.DAG_PB_CODEC


def test_cid_v1_raw_is_the_single_chunk_cid_and_aidoc_cid_reexports_it() -> None:
    assert aidoc.cid.cid_v1_raw is unixfs.cid_v1_raw
    assert unixfs.cid_v1_raw(payload(CHUNK)) == KNOWN_CIDS[CHUNK]
    with pytest.raises(ValueError, match="compute_cid"):
        unixfs.cid_v1_raw(payload(CHUNK + 1))


def test_depth_two_layout_fills_a_node_then_grows() -> None:
    root, blocks = unixfs.build_dag(payload(DEPTH_TWO))
    top = unixfs.decode_file_node(blocks[root])
    assert top.filesize == DEPTH_TWO and top.data == b""
    assert top.blocksizes == [174 * CHUNK, 1]
    full, rest = (unixfs.decode_file_node(blocks[child]) for child in top.children)
    assert len(full.children) == 174 and set(full.blocksizes) == {CHUNK}
    assert len(rest.children) == 1 and rest.blocksizes == [1]
    assert all(unixfs.parse_cid(child)[0] == unixfs.RAW_CODEC for child in full.children + rest.children)
    assert len(blocks) == 175 + 3


def test_links_carry_empty_name_and_cumulative_tsize() -> None:
    root, blocks = unixfs.build_dag(payload(DEPTH_TWO))
    root_block = blocks[root]
    children = unixfs.decode_file_node(root_block).children
    # A link is `12 <len> 0a <cid> 12 00 18 <tsize>`: recover Tsize after each child's CID and empty Name.
    for child in children:
        after = root_block.split(unixfs.cid_bytes(*unixfs.parse_cid(child)), 1)[1]
        assert after[:3] == b"\x12\x00\x18"
        tsize, _ = unixfs._read_varint(after, 3)
        child_node = unixfs.decode_file_node(blocks[child])
        assert tsize == len(blocks[child]) + sum(len(blocks[leaf]) for leaf in child_node.children)
    assert root_block.index(b"\x12") == 0  # Links come before Data (field 1) in canonical dag-pb


@given(st.integers(min_value=0, max_value=2**63))
def test_varint_round_trip(value: int) -> None:
    encoded = unixfs._varint(value)
    assert unixfs._read_varint(encoded + b"\xff", 0) == (value, len(encoded))


@pytest.mark.parametrize(
    ("cid", "reason"),
    [
        ("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "CIDv0"),
        ("", "malformed"),
        ("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA", "malformed"),
        (KNOWN_CIDS[1].upper(), "malformed"),
        (unixfs.cid_string(unixfs.cid_bytes(0x55, bytes(32))[:-2]), "multihash"),
        ("b!!notbase32", "base32"),
        (unixfs.cid_string(unixfs.cid_bytes(0x71, bytes(32))), "codec 0x71"),
        (unixfs.cid_string(bytes([1, 0x55, 0x11, 20]) + bytes(20)), "multihash 0x11"),
    ],
)
def test_parse_cid_rejects_malformed_or_unsupported(cid: str, reason: str) -> None:
    with pytest.raises(ContentMismatch, match=reason):
        unixfs.parse_cid(cid)


def test_parse_cid_returns_codec_and_digest() -> None:
    codec, digest = unixfs.parse_cid(KNOWN_CIDS[0])
    assert codec == unixfs.RAW_CODEC
    assert digest.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256(b"")


def test_decode_file_node_rejects_non_file_blocks() -> None:
    with pytest.raises(ContentMismatch, match="UnixFS"):
        unixfs.decode_file_node(b"\xff\xff")
    with pytest.raises(ContentMismatch, match="not a file"):
        unixfs.decode_file_node(unixfs._len_field(1, unixfs._varint_field(1, 1)))  # a Directory


# --- the embedded store ---------------------------------------------------------------------------------

sizes = st.one_of(st.integers(0, 4096), st.integers(CHUNK - 2, CHUNK + 2), st.integers(CHUNK, 4 * CHUNK))
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@HYPOTHESIS
@given(size=sizes, seed=st.integers(0, 2**32))
def test_embedded_round_trip_with_kubo_cids(embedded: EmbeddedStore, size: int, seed: int) -> None:
    data = payload(size, str(seed))
    cid = embedded.add(data)
    assert cid == unixfs.compute_cid(data)
    assert embedded.cat(cid) == data
    assert embedded.is_pinned(cid)


@HYPOTHESIS
@given(size=st.integers(1, 3 * CHUNK), seed=st.integers(0, 2**32), pick=st.integers(0, 2**32), at=st.floats(0, 1))
def test_embedded_detects_any_flipped_byte(embedded: EmbeddedStore, size: int, seed: int, pick: int, at: float) -> None:
    data = payload(size, str(seed))
    cid, blocks = unixfs.build_dag(data)
    embedded.add(data)
    target = sorted(blocks)[pick % len(blocks)]
    path = embedded.blocks_dir / target
    stored = bytearray(path.read_bytes())
    stored[min(int(at * len(stored)), len(stored) - 1)] ^= 0x40
    path.write_bytes(bytes(stored))
    with pytest.raises(ContentMismatch):
        embedded.cat(cid)
    assert embedded.add(data) == cid  # adding the bytes again repairs the block
    assert embedded.cat(cid) == data


def test_embedded_missing_content_and_missing_block(embedded: EmbeddedStore) -> None:
    with pytest.raises(ContentNotFound, match=MISSING_CID):
        embedded.cat(MISSING_CID)
    cid, blocks = unixfs.build_dag(payload(3 * CHUNK))
    embedded.add(payload(3 * CHUNK))
    (embedded.blocks_dir / next(c for c in blocks if c != cid)).unlink()
    with pytest.raises(ContentNotFound):
        embedded.cat(cid)


def test_embedded_too_large_is_refused_from_the_root_alone(embedded: EmbeddedStore) -> None:
    data = payload(3 * CHUNK)
    cid, blocks = unixfs.build_dag(data)
    embedded.add(data)
    assert embedded.cat(cid, max_size=len(data)) == data
    for child in blocks:
        if child != cid:
            (embedded.blocks_dir / child).unlink()  # the limit must be enforced before any child is read
    with pytest.raises(ContentTooLarge, match=f"{len(data)} bytes"):
        embedded.cat(cid, max_size=len(data) - 1)
    small = embedded.add(b"12345")
    with pytest.raises(ContentTooLarge):
        embedded.cat(small, max_size=4)


def test_embedded_pins(embedded: EmbeddedStore) -> None:
    cid = embedded.add(b"record", pin=False)
    assert not embedded.is_pinned(cid)
    embedded.pin(cid)
    assert embedded.is_pinned(cid)
    embedded.unpin(cid)
    embedded.unpin(cid)
    assert not embedded.is_pinned(cid)
    assert embedded.cat(cid) == b"record"
    with pytest.raises(ContentNotFound, match="add it first"):
        embedded.pin(MISSING_CID)
    with pytest.raises(ContentMismatch):
        embedded.pin("Qm-not-a-cid")


def _add_in_process(root: str, size: int) -> str:
    store = EmbeddedStore(Path(root))
    cid = store.add(payload(size))
    assert store.cat(cid) == payload(size)
    return cid


def test_embedded_store_shared_by_processes(tmp_path: Path) -> None:
    with concurrent.futures.ProcessPoolExecutor(4) as pool:
        cids = list(pool.map(_add_in_process, [str(tmp_path)] * 8, [3 * CHUNK + 5] * 8))
    assert set(cids) == {unixfs.compute_cid(payload(3 * CHUNK + 5))}
    assert not list((tmp_path / "blocks").glob(".tmp-*"))
    assert EmbeddedStore(tmp_path).cat(cids[0]) == payload(3 * CHUNK + 5)


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    embedded = open_store(None, tmp_path)
    remote = open_store("http://127.0.0.1:1", tmp_path)
    assert isinstance(embedded, EmbeddedStore) and isinstance(remote, IpfsRpcStore)
    assert isinstance(embedded, ContentStore) and isinstance(remote, ContentStore)
    remote.close()


# --- the js-ipfs daemon ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", sorted(KNOWN_CIDS) + RANDOM_SIZES)
def test_daemon_and_embedded_agree(rpc: IpfsRpcStore, tmp_path: Path, size: int) -> None:
    data = payload(size, "agree")
    cid = rpc.add(data)  # add() itself raises unless the daemon's CID equals the local one
    assert cid == EmbeddedStore(tmp_path).add(data)
    assert rpc.cat(cid) == data


def test_daemon_answers_ping(rpc: IpfsRpcStore) -> None:
    assert rpc.ping() == "0.18.1"


def _pinned(daemon: str, cid: str) -> bool:
    answer = httpx.post(f"{daemon}/api/v0/pin/ls", params={"arg": cid, "type": "recursive", "cid-base": "base32"})
    return answer.status_code == 200 and cid in answer.text


def test_daemon_pin_unpin(rpc: IpfsRpcStore, daemon: str) -> None:
    cid = rpc.add(payload(2 * CHUNK, "pins"), pin=False)
    assert not _pinned(daemon, cid)
    rpc.pin(cid)
    assert _pinned(daemon, cid)
    rpc.unpin(cid)
    assert not _pinned(daemon, cid)
    rpc.unpin(cid)  # unpinning what is not pinned is a no-op
    assert rpc.add(b"pinned by default") and _pinned(daemon, unixfs.compute_cid(b"pinned by default"))


def test_daemon_missing_cid_is_reported_promptly_as_unreachable(rpc: IpfsRpcStore) -> None:
    started = time.monotonic()
    with pytest.raises(ContentUnreachable, match=MISSING_CID):  # transient: a slow provider may still answer
        rpc.cat(MISSING_CID)
    with pytest.raises(ContentUnreachable):
        rpc.pin(MISSING_CID)
    assert time.monotonic() - started < 6  # js-ipfs offline waits forever without the timeout option


def test_daemon_too_large_is_refused_before_the_download(daemon: str, fake_daemon) -> None:
    data = payload(3 * CHUNK, "large")
    spy = fake_daemon(proxy_to(daemon))
    store = IpfsRpcStore(spy.url)
    cid = store.add(data)
    with pytest.raises(ContentTooLarge, match=cid):
        store.cat(cid, max_size=len(data) - 1)
    assert not any(path.startswith("/api/v0/cat") for path in spy.paths)
    assert store.cat(cid, max_size=len(data)) == data
    single = store.add(b"x" * 100)
    with pytest.raises(ContentTooLarge):
        store.cat(single, max_size=99)


def test_daemon_rejects_malformed_cid_locally(rpc: IpfsRpcStore) -> None:
    with pytest.raises(ContentMismatch, match="CIDv0"):
        rpc.cat("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")


def test_stopped_daemon_is_unavailable_and_restart_keeps_content(tmp_path: Path) -> None:
    port = free_port()
    process = ipfs_daemon(tmp_path / "run", tmp_path / "repo", port).start()
    store = IpfsRpcStore(f"http://127.0.0.1:{port}", timeout=5.0)
    cid = store.add(payload(CHUNK + 10, "restart"))
    process.stop()
    with pytest.raises(StorageUnavailable, match=f"127.0.0.1:{port}.*AIDOC_IPFS_API") as caught:
        store.cat(cid)
    assert isinstance(caught.value, TransientError)
    with pytest.raises(StorageUnavailable):
        store.add(b"anything")
    process = ipfs_daemon(tmp_path / "run", tmp_path / "repo", port).start()
    try:
        assert store.cat(cid) == payload(CHUNK + 10, "restart")
    finally:
        process.stop()


def test_killed_daemon_restarts_on_its_repo(tmp_path: Path) -> None:
    process = ipfs_daemon(tmp_path / "run", tmp_path / "repo", free_port()).start()
    with pytest.raises(ServiceStartError, match="already serves"):
        ipfs_daemon(tmp_path / "run", tmp_path / "repo", free_port())
    process.kill()  # leaves js-ipfs's repo.lock behind
    process = ipfs_daemon(tmp_path / "run", tmp_path / "repo", free_port()).start()
    process.stop()


def test_missing_jsipfs_says_to_run_make_ipfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIDOC_PROJECT_DIR", str(tmp_path))  # a project without tools/ipfs
    with pytest.raises(ServiceStartError, match="make ipfs"):
        ipfs_daemon(tmp_path / "run", tmp_path / "repo", free_port())


def test_ipfs_daemon_is_an_offline_managed_process(tmp_path: Path) -> None:
    process = ipfs_daemon(tmp_path / "run", tmp_path / "repo", free_port())
    assert isinstance(process, ManagedProcess) and process.command[-2:] == ["daemon", "--offline"]
    assert "polyfill.cjs" in process.env["NODE_OPTIONS"]


# --- hostile or broken daemons --------------------------------------------------------------------------


def test_tampered_cat_is_a_mismatch(daemon: str, fake_daemon) -> None:
    data = payload(2 * CHUNK + 3, "tamper")
    IpfsRpcStore(daemon).add(data)
    hostile = fake_daemon(proxy_to(daemon, lambda path, body: flip_first_byte(body) if "/cat" in path else body))
    with pytest.raises(ContentMismatch, match="do not hash"):
        IpfsRpcStore(hostile.url).cat(unixfs.compute_cid(data))


def test_tampered_raw_block_is_a_mismatch(daemon: str, fake_daemon) -> None:
    cid = IpfsRpcStore(daemon).add(b"lab panel")
    hostile = fake_daemon(proxy_to(daemon, lambda path, body: flip_first_byte(body) if "/block/get" in path else body))
    with pytest.raises(ContentMismatch, match="does not hash"):
        IpfsRpcStore(hostile.url).cat(cid)


def test_extra_bytes_from_cat_are_a_mismatch(daemon: str, fake_daemon) -> None:
    data = payload(CHUNK + 1, "extra")
    IpfsRpcStore(daemon).add(data)
    hostile = fake_daemon(proxy_to(daemon, lambda path, body: body + b"!" if "/cat" in path else body))
    with pytest.raises(ContentMismatch, match="more than"):
        IpfsRpcStore(hostile.url).cat(unixfs.compute_cid(data))


def test_daemon_with_other_chunking_is_a_mismatch(fake_daemon) -> None:
    other = fake_daemon(lambda path, body: (200, b'{"Name":"blob","Hash":"%s","Size":"9"}\n' % KNOWN_CIDS[1].encode()))
    with pytest.raises(ContentMismatch, match="default chunking"):
        IpfsRpcStore(other.url).add(b"different")


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (500, "Failed to get block: request timed out", ContentUnreachable),
        (500, "block was not found locally (offline): ipld: could not find x", ContentNotFound),
        (500, "leveldb: disk full", StorageUnavailable),
        (503, "busy", StorageUnavailable),
        (400, "Invalid request query input", StorageError),
    ],
)
def test_daemon_errors_are_mapped(fake_daemon, status: int, message: str, error: type[Exception]) -> None:
    body = b'{"Message":"%s","Code":0,"Type":"error"}' % message.encode()
    broken = fake_daemon(lambda path, _: (status, body))
    with pytest.raises(error, match=re.escape(message.split(":")[0])) as caught:
        IpfsRpcStore(broken.url).cat(MISSING_CID)
    assert type(caught.value) is error


def test_hanging_daemon_is_unavailable(fake_daemon) -> None:
    release = threading.Event()

    def hang(path: str, body: bytes) -> tuple[int, bytes]:
        release.wait(5)
        return 200, b"{}"

    hanging = fake_daemon(hang)
    try:
        with pytest.raises(StorageUnavailable, match="did not answer"):
            IpfsRpcStore(hanging.url, timeout=0.3).ping()
    finally:
        release.set()


def test_a_dag_that_expands_past_its_declared_size_is_refused_early() -> None:
    """A root that claims 1 byte over children that reuse blocks to expand to ~30 MiB."""
    import hashlib

    blocks: dict[str, bytes] = {}

    def put(codec: int, block: bytes) -> tuple[bytes, str]:
        binary = unixfs.cid_bytes(codec, hashlib.sha256(block).digest())
        blocks[unixfs.cid_string(binary)] = block
        return binary, unixfs.cid_string(binary)

    leaf, _ = put(unixfs.RAW_CODEC, b"x" * 1024)
    middle, _ = put(unixfs.DAG_PB_CODEC, unixfs.encode_file_node([unixfs.Link(leaf, 1024)] * 174, [1024] * 174))
    upper, _ = put(unixfs.DAG_PB_CODEC, unixfs.encode_file_node([unixfs.Link(middle, 1)] * 174, [174 * 1024] * 174))
    _, root = put(unixfs.DAG_PB_CODEC, unixfs.encode_file_node([unixfs.Link(upper, 1)], [1]))
    fetched = []

    def get_block(cid: str) -> bytes:
        fetched.append(cid)
        return blocks[cid]

    with pytest.raises(ContentMismatch, match="expands past"):
        unixfs.read_dag(root, get_block, max_size=100)
    assert len(fetched) <= 4  # root, upper, middle, the first leaf: not 174 x 174 leaves
