"""The UnixFS DAG and CIDv1 that Kubo builds for a file added with `cid-version=1, raw-leaves=true`
and the default chunker and layout, computed locally so that any store's bytes can be checked.

Layout (go-unixfs `importer/balanced`, which js-ipfs's importer reproduces):
- the bytes are cut into 256 KiB chunks; each chunk is a raw block (codec 0x55);
- one chunk: the file's CID is that raw block's CID;
- more: leaves are grouped 174 to a dag-pb (0x70) node, those nodes 174 to a node, and so on until
  one root remains. Every such node is a UnixFS `File` with `filesize` and one `blocksizes` entry per
  child, and links with an empty Name and Tsize = the serialized size of the child's whole DAG;
- empty input: the raw CID of no bytes (Kubo and js-ipfs agree; see tests/integration/test_storage.py).

The two protobuf messages (dag-pb PBNode/PBLink and UnixFS Data) are encoded here by hand, in the
canonical form dag-pb requires: a node's Links (field 2) before its Data (field 1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Callable, NamedTuple

from aidoc.errors import ContentMismatch, ContentTooLarge

RAW_CODEC = 0x55
DAG_PB_CODEC = 0x70
SHA2_256 = 0x12
DIGEST_SIZE = 32
CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174
UNIXFS_FILE = 2
UNIXFS_RAW = 0

# protobuf wire types
_VARINT = 0
_LEN = 2


# --- CIDs -------------------------------------------------------------------------------------------


def cid_bytes(codec: int, digest: bytes) -> bytes:
    """Binary CIDv1 (version, codec, sha2-256 multihash) for a digest."""
    return _varint(1) + _varint(codec) + bytes([SHA2_256, DIGEST_SIZE]) + digest


def cid_string(binary: bytes) -> str:
    """A binary CID in the base32 multibase form IPFS prints ('b' + lower-case RFC 4648, no padding)."""
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def block_cid(codec: int, block: bytes) -> str:
    """The CIDv1 string of a block: sha2-256 of its bytes under `codec`."""
    return cid_string(cid_bytes(codec, hashlib.sha256(block).digest()))


def cid_v1_raw(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256, base32) of `data`, which must fit in one 256 KiB chunk."""
    if len(data) > CHUNK_SIZE:
        raise ValueError(f"payload of {len(data)} bytes spans several IPFS chunks; use compute_cid")
    return block_cid(RAW_CODEC, data)


def parse_cid_bytes(binary: bytes) -> tuple[int, bytes]:
    """(codec, sha2-256 digest) of a binary CIDv1; ContentMismatch when it is anything else."""
    try:
        version, pos = _read_varint(binary, 0)
        codec, pos = _read_varint(binary, pos)
        hash_code, pos = _read_varint(binary, pos)
        length, pos = _read_varint(binary, pos)
    except ValueError:
        raise ContentMismatch(f"malformed CID bytes {binary.hex()[:80]}") from None
    if version != 1:
        raise ContentMismatch(f"unsupported CID version {version}; only CIDv1 (base32 'b...') is supported")
    if codec not in (RAW_CODEC, DAG_PB_CODEC):
        raise ContentMismatch(f"unsupported CID codec 0x{codec:x}; expected raw (0x55) or dag-pb (0x70)")
    if hash_code != SHA2_256 or length != DIGEST_SIZE or len(binary) - pos != DIGEST_SIZE:
        raise ContentMismatch(f"unsupported CID multihash 0x{hash_code:x}/{length}; expected sha2-256")
    return codec, binary[pos:]


def parse_cid(cid: str) -> tuple[int, bytes]:
    """(codec, digest) of a base32 CIDv1 string; ContentMismatch when it is malformed or unsupported."""
    if not isinstance(cid, str) or not cid:
        raise ContentMismatch(f"malformed CID {cid!r}: expected a base32 CIDv1 string 'b...'")
    if cid.startswith("Qm"):
        raise ContentMismatch(f"CIDv0 {cid!r} is not supported; add content with cid-version=1 (base32 'b...')")
    if cid[0] != "b" or cid != cid.strip():
        raise ContentMismatch(f"malformed CID {cid!r}: expected a base32 CIDv1 string 'b...'")
    body = cid[1:].upper()
    try:
        binary = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise ContentMismatch(f"malformed CID {cid!r}: not valid base32") from None
    if cid_string(binary) != cid:
        raise ContentMismatch(f"malformed CID {cid!r}: not in canonical lower-case base32")
    return parse_cid_bytes(binary)


def verify_block(cid: str, block: bytes) -> int:
    """Checks that `block` hashes to `cid` and returns the CID's codec; ContentMismatch otherwise."""
    codec, digest = parse_cid(cid)
    if hashlib.sha256(block).digest() != digest:
        raise ContentMismatch(f"block for {cid} does not hash to its CID (tampered or corrupt content)")
    return codec


# --- protobuf -----------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or oversized varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _len_field(field: int, payload: bytes) -> bytes:
    return _key(field, _LEN) + _varint(len(payload)) + payload


def _varint_field(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + _varint(value)


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decodes a protobuf message into (field number, varint value or bytes), in wire order."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
            out.append((field, value))
        elif wire_type == _LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated length-delimited field")
            out.append((field, buf[pos : pos + length]))
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
    return out


class Link(NamedTuple):
    """A dag-pb link: child CID (binary), and Tsize (the child's cumulative DAG size)."""

    cid: bytes
    tsize: int


def encode_file_node(links: list[Link], blocksizes: list[int]) -> bytes:
    """The dag-pb block of an internal UnixFS File node over `links` (Links first, then Data)."""
    unixfs = _varint_field(1, UNIXFS_FILE) + _varint_field(3, sum(blocksizes))
    unixfs += b"".join(_varint_field(4, size) for size in blocksizes)
    pb_links = b"".join(
        _len_field(2, _len_field(1, link.cid) + _len_field(2, b"") + _varint_field(3, link.tsize)) for link in links
    )
    return pb_links + _len_field(1, unixfs)


class FileNode(NamedTuple):
    """A decoded UnixFS file block: child CIDs in order, inline data, the declared sizes."""

    children: list[str]
    data: bytes
    filesize: int
    blocksizes: list[int]


def decode_file_node(block: bytes) -> FileNode:
    """Decodes a dag-pb UnixFS File (or Raw) node; ContentMismatch when it is not one."""
    try:
        children: list[str] = []
        unixfs: bytes | None = None
        for field, value in _fields(block):
            if field == 2 and isinstance(value, bytes):
                link_hash = next((v for f, v in _fields(value) if f == 1 and isinstance(v, bytes)), None)
                if link_hash is None:
                    raise ValueError("link without a Hash")
                parse_cid_bytes(link_hash)
                children.append(cid_string(link_hash))
            elif field == 1 and isinstance(value, bytes):
                unixfs = value
            else:
                raise ValueError(f"unexpected dag-pb field {field}")
        if unixfs is None:
            raise ValueError("node has no UnixFS Data")
        kind, data, filesize, blocksizes = None, b"", None, []
        for field, value in _fields(unixfs):
            if field == 1 and isinstance(value, int):
                kind = value
            elif field == 2 and isinstance(value, bytes):
                data = value
            elif field == 3 and isinstance(value, int):
                filesize = value
            elif field == 4 and isinstance(value, int):
                blocksizes.append(value)
        if kind not in (UNIXFS_FILE, UNIXFS_RAW):
            raise ValueError(f"UnixFS node of type {kind} is not a file")
        if len(blocksizes) != len(children):
            raise ValueError(f"{len(children)} links but {len(blocksizes)} blocksizes")
    except ValueError as error:
        raise ContentMismatch(f"malformed UnixFS file node: {error}") from None
    total = len(data) + sum(blocksizes)
    return FileNode(children, data, total if filesize is None else filesize, blocksizes)


# --- the balanced DAG ----------------------------------------------------------------------------------


class _Built(NamedTuple):
    cid: bytes
    filesize: int
    tsize: int


def build_dag(data: bytes) -> tuple[str, dict[str, bytes]]:
    """The root CID of `data` as Kubo adds it, and every block of its DAG by CID string."""
    blocks: dict[str, bytes] = {}
    return _build(data, blocks), blocks


def compute_cid(data: bytes) -> str:
    """The CIDv1 Kubo returns for `ipfs add --cid-version=1 --raw-leaves` of `data`."""
    return _build(data, None)


def _build(data: bytes, blocks: dict[str, bytes] | None) -> str:
    """Builds the balanced DAG bottom-up (leaves grouped 174 to a node, level after level, which is the
    tree Kubo's fill-then-deepen builder makes), storing blocks in `blocks` unless it is None."""

    def put(codec: int, block: bytes | memoryview, filesize: int, tsize: int) -> _Built:
        binary = cid_bytes(codec, hashlib.sha256(block).digest())
        if blocks is not None:
            blocks[cid_string(binary)] = bytes(block)
        return _Built(binary, filesize, tsize)

    view = memoryview(data)  # chunks are hashed in place, copied only when kept
    level = []
    for start in _chunk_starts(data):
        chunk = view[start : start + CHUNK_SIZE]
        level.append(put(RAW_CODEC, chunk, len(chunk), len(chunk)))
    while len(level) > 1:
        parents: list[_Built] = []
        for start in range(0, len(level), MAX_LINKS):
            group = level[start : start + MAX_LINKS]
            node = encode_file_node([Link(c.cid, c.tsize) for c in group], [c.filesize for c in group])
            parents.append(
                put(DAG_PB_CODEC, node, sum(c.filesize for c in group), len(node) + sum(c.tsize for c in group))
            )
        level = parents
    return cid_string(level[0].cid)


def _chunk_starts(data: bytes) -> range:
    """Offsets of the 256 KiB chunks; an empty file is one empty chunk."""
    return range(0, max(len(data), 1), CHUNK_SIZE)


# --- reading a DAG back ---------------------------------------------------------------------------------


def read_dag(cid: str, get_block: Callable[[str], bytes], max_size: int | None = None) -> bytes:
    """Reassembles the file under `cid` from blocks that `get_block` returns, checking every block's hash
    and every declared size; ContentTooLarge once the root says the file exceeds `max_size`."""
    root = get_block(cid)
    codec = verify_block(cid, root)
    if codec == RAW_CODEC:
        check_size(cid, len(root), max_size)
        return root
    node = decode_file_node(root)
    check_size(cid, node.filesize, max_size)
    out = bytearray()
    _append_node(cid, node, get_block, out, limit=node.filesize)
    if len(out) != node.filesize:
        raise ContentMismatch(f"{cid} declares {node.filesize} bytes but its DAG holds {len(out)}")
    return bytes(out)


def _append_node(cid: str, node: FileNode, get_block: Callable[[str], bytes], out: bytearray, limit: int) -> None:
    """Appends the node's bytes to `out`, never past `limit` (the root's declared size, already
    checked against max_size): a DAG that reuses blocks to claim little and expand to much is
    refused as soon as it overflows, not after it filled memory."""
    out += node.data
    _check_overflow(cid, out, limit)
    for child, declared in zip(node.children, node.blocksizes):
        block = get_block(child)
        start = len(out)
        if verify_block(child, block) == RAW_CODEC:
            out += block
            _check_overflow(cid, out, limit)
        else:
            _append_node(child, decode_file_node(block), get_block, out, limit)
        if len(out) - start != declared:
            raise ContentMismatch(f"{cid}: child {child} holds {len(out) - start} bytes, its parent says {declared}")


def _check_overflow(cid: str, out: bytearray, limit: int) -> None:
    if len(out) > limit:
        raise ContentMismatch(f"{cid}: its DAG expands past the {limit} bytes its root declares")


def check_size(cid: str, size: int, max_size: int | None) -> None:
    """ContentTooLarge when `size` exceeds `max_size` (None: no limit)."""
    if max_size is not None and size > max_size:
        raise ContentTooLarge(f"{cid} is {size} bytes, over the {max_size}-byte limit for this content")
