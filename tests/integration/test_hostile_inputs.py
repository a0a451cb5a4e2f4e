"""Hostile inputs on the real stack (anvil, Redis, js-ipfs, and a node whose Celery worker, watcher
and sender run as processes), fuzzed with Hypothesis: record ciphertexts flipped, truncated or
extended; plaintexts that are no valid record; key envelopes of garbage, sealed to other keys,
tampered, or holding another data key; CIDs that are malformed or name other bytes; records and
envelopes over their size limits; weights whose hash differs from the registry, weights that are no
model, pickles disguised as weights; and request parameters the market must refuse.

Hypothesis only generates here: a fixed seed per variant of each kind, no shrinking and no example
database, so every run tries the same inputs (the same mutations: the sealed bytes they apply to are
fresh each run, which no expected outcome depends on). They are all registered and requested first, and settle
together, so the node works through them in one pass rather than one per example. Each request must
end Failed with the one reason code its input determines (every mutation is confined to where it
determines the outcome; see each kind), refunded in full and paying nobody; the controls in the same
batch must be fulfilled and paid; no pickle may ever be loaded; and the node must stay up. What was
tried is written to reports/hostile-inputs.json."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import pickle
import random
import re
import shlex
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey, PublicKey, SealedBox
from test_oracle_e2e import balance, node_earnings, register_raw, valid_panel_bytes

from aidoc.chain.contracts import TransactionReverted
from aidoc.config import AID, project_dir
from aidoc.constants import DataType, FailureReason, Purpose, RequestStatus
from aidoc.crypto import SealedRecord, encrypt_record
from aidoc.crypto.envelope import NONCE_BYTES, RECORD_MAGIC
from aidoc.crypto.result import SMALL_ORDER_POINTS, with_top_bit
from aidoc.errors import ContentMismatch
from aidoc.flow.consent import grant_consent
from aidoc.flow.request import quote, request_diagnosis
from aidoc.flow.session import Session
from aidoc.models import ARCHITECTURES, load_model
from aidoc.records import encode_record, load_record_file
from aidoc.storage import compute_cid, parse_cid
from aidoc.storage.unixfs import DAG_PB_CODEC, cid_bytes, cid_string
from aidoc.workers.diagnosis import MAX_ENVELOPE_BYTES
from conftest import (
    MODEL_PRICE,
    NODE_FEE,
    NODE_MAX_RECORD_BYTES,
    ROYALTY,
    Node,
    consented_record,
    samples_of,
    settle,
)

FULFILLED = RequestStatus.FULFILLED
CORRUPT = FailureReason.CORRUPT_RECORD
WRONG_KEY = FailureReason.WRONG_KEY
TOO_LARGE = FailureReason.RECORD_TOO_LARGE
WEIGHTS_MISMATCH = FailureReason.WEIGHTS_MISMATCH
MODEL_ERROR = FailureReason.MODEL_ERROR
UNSUPPORTED = FailureReason.UNSUPPORTED_INPUT
REPORT = project_dir() / "reports" / "hostile-inputs.json"
RECORD_PREFIX = struct.Struct("<4sBH")  # aidoc.records.record: magic, version, header length

GENERATE_ONLY = settings(database=None, deadline=None, phases=[Phase.generate],
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.filter_too_much])


def draw(label: str, strategy: st.SearchStrategy, count: int, *, distinct=repr, pool: int = 40) -> list:
    """`count` examples of `strategy` that differ in `distinct(example)` (fewer if it has fewer), the
    same ones on every run. Hypothesis generates `pool` examples from a seed fixed per label
    (generation only: no shrinking, no example database); its first, the strategy's simplest (offset
    0, empty bytes), is kept, and the rest are a seeded sample of the others, since its early
    examples are small and often repeat."""
    examples: dict[object, object] = {}

    @seed(zlib.crc32(label.encode()))
    @settings(GENERATE_ONLY, max_examples=pool)
    @given(strategy)
    def collect(example):
        examples.setdefault(distinct(example), example)

    collect()
    found = list(examples.values())
    return found[:1] + random.Random(zlib.crc32(label.encode())).sample(found[1:], min(len(found) - 1, count - 1))


@dataclass
class Case:
    kind: str
    variant: str
    detail: str
    expected: RequestStatus | FailureReason  # FULFILLED for a control, else the one reason code
    owner: Session
    record_id: int
    model_id: int
    request_id: int = 0


@dataclass
class Scene:
    node: Node
    doctor: Session
    patient: Session  # owns every hostile record: it must earn no royalty
    owner: Session  # owns the controls' records
    provider: Session  # registers every hostile model: it must earn nothing
    models: dict[DataType, int]  # the genuine models (the `provider` fixture's)
    plaintexts: dict[DataType, bytes]  # a valid encoded record of each type
    weights: dict[DataType, bytes]  # the genuine safetensors files
    records: dict[DataType, int]  # a valid record of each type, of `patient`, for the hostile models
    markers: Path  # where an unpickled payload would leave a file
    cases: list[Case] = field(default_factory=list)

    @property
    def node_key(self) -> bytes:
        return self.node.identity.encryption_public_key

    def seal(self, plaintext: bytes, data_type: DataType = DataType.LAB_PANEL,
             recipients: list[bytes] | None = None) -> SealedRecord:
        return encrypt_record(plaintext, recipients or [self.node_key], data_type=int(data_type))

    def record(self, kind: str, variant: str, detail: str, expected, *, ciphertext: bytes | None = None,
               envelope: bytes | None = None, ciphertext_cid: str | None = None, ciphertext_hash: bytes | None = None,
               envelope_cid: str | None = None, data_type: DataType = DataType.LAB_PANEL,
               owner: Session | None = None) -> None:
        """Registers a record from these parts (the bytes are stored unless a CID is given; the
        sha256 is the ciphertext's unless given) and requests its diagnosis with the genuine model."""
        owner = owner or self.patient
        consents = owner.marketplace.consents
        receipt = owner.send(consents.functions.registerRecord(
            ciphertext_cid or owner.store.add(ciphertext), ciphertext_hash or hashlib.sha256(ciphertext).digest(),
            int(data_type), envelope_cid or owner.store.add(envelope), ROYALTY), "registerRecord")
        record_id = owner.event(receipt, consents, "RecordRegistered")["recordId"]
        expiry = owner.marketplace.w3.eth.get_block("latest")["timestamp"] + 30 * 86400
        grant_consent(owner, record_id, self.doctor.address, Purpose.DIAGNOSIS, expiry)
        self.request(Case(kind, variant, detail, expected, owner, record_id, self.models[data_type]))

    def model(self, kind: str, variant: str, detail: str, expected, weights: bytes, *, sha256: bytes | None = None,
              cid: str | None = None, input_type: DataType = DataType.LAB_PANEL) -> None:
        """Registers `weights` as a model of `provider` and requests it on a valid record."""
        registry = self.provider.marketplace.models
        receipt = self.provider.send(registry.functions.registerModel(
            "hostile", cid or self.provider.store.add(weights), sha256 or hashlib.sha256(weights).digest(),
            int(input_type), MODEL_PRICE), "registerModel")
        model_id = self.provider.event(receipt, registry, "ModelRegistered")["modelId"]
        self.request(Case(kind, variant, detail, expected, self.patient, self.records[input_type], model_id))

    def request(self, case: Case) -> None:
        case.request_id, _ = request_diagnosis(self.doctor, case.record_id, case.model_id, self.node.address)
        self.cases.append(case)


def flip(data: bytes, position: int, xor: int) -> bytes:
    flipped = bytearray(data)
    flipped[position] ^= xor
    return bytes(flipped)


def at_offset(flip_: tuple[int, int]) -> int:
    """A flip's offset: flips drawn as (offset, xor) are told apart by it."""
    return flip_[0]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def refused_locally(cid: str) -> bool:
    """Whether the node refuses `cid` without asking IPFS (a well-formed CID of bytes nobody stored
    would instead wait out the lookup timeout, a transient error that is retried)."""
    try:
        parse_cid(cid)
    except ContentMismatch:
        return True
    return False


def malformed_cids(real: str) -> st.SearchStrategy:
    """Strings the node must refuse as CIDs: random text, and near misses of the real CID."""
    digest = parse_cid(real)[1]
    near_misses = [
        real.upper(), real[1:], " " + real, real + "\n", "/ipfs/" + real, "B" + real[1:], real + "a",
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  # CIDv0
        cid_string(cid_bytes(0x71, digest)),  # dag-cbor
        cid_string(bytes([2]) + cid_bytes(0x55, digest)[1:]),  # version 2
        cid_string(bytes([1, 0x55, 0x13, 64]) + digest * 2),  # sha2-512
    ]
    return st.one_of(st.text(min_size=1, max_size=64), st.sampled_from(near_misses),
                     st.integers(1, len(real) - 1).map(lambda cut: real[:cut])).filter(refused_locally)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)


# ---------------------------------------------------------------- the kinds of hostile input


def corrupt_ciphertexts(scene: Scene) -> None:
    """Stored ciphertext bytes that are not what was sealed. The registered sha256 is that of the
    bytes stored (except in the last variant), so the AEAD tag is what catches them:
    CORRUPT_RECORD, whatever the offset (magic, data type, nonce, body or tag)."""
    kind = "corrupt or truncated ciphertext"
    sealed = scene.seal(scene.plaintexts[DataType.LAB_PANEL])
    text, envelope = sealed.ciphertext, sealed.key_envelope
    size, header = len(text), len(RECORD_MAGIC) + 1 + NONCE_BYTES
    regions = {"magic": (0, len(RECORD_MAGIC) - 1, 1), "data type": (len(RECORD_MAGIC), len(RECORD_MAGIC), 1),
               "nonce": (len(RECORD_MAGIC) + 1, header - 1, 2), "body": (header, size - 17, 2),
               "tag": (size - 16, size - 1, 2)}
    for region, (first, last, count) in regions.items():
        for position, xor in draw(f"{kind}: flip in the {region}", st.tuples(st.integers(first, last),
                                                                             st.integers(1, 255)), count):
            scene.record(kind, "byte flipped", f"byte {position}/{size} ({region}) ^ {xor:#04x}", CORRUPT,
                         ciphertext=flip(text, position, xor), envelope=envelope)
    for cut in draw(f"{kind}: truncated", st.integers(0, size - 1), 4):
        scene.record(kind, "truncated", f"first {cut} of {size} bytes", CORRUPT, ciphertext=text[:cut],
                     envelope=envelope)
    for extra in draw(f"{kind}: extended", st.binary(min_size=1, max_size=64), 3):
        scene.record(kind, "extended", f"{len(extra)} bytes appended", CORRUPT, ciphertext=text + extra,
                     envelope=envelope)
    for position, xor in draw(f"{kind}: sha256", st.tuples(st.integers(0, 31), st.integers(1, 255)), 2):
        scene.record(kind, "registered sha256 differs", f"sha256 byte {position} ^ {xor:#04x}", CORRUPT,
                     ciphertext=text, envelope=envelope, ciphertext_hash=flip(sha256(text), position, xor))


def not_records(scene: Scene) -> None:
    """Ciphertexts that open, around plaintexts that are no valid record of the registered type:
    CORRUPT_RECORD. Flips stay in the panel's prefix and JSON header, where no change leaves a valid
    canonical record (a flip in the payload may just change a value); the data-type confusions are
    caught by the sealed type byte or by the decoded record's own type."""
    kind = "sealed plaintext that is not a valid record"
    panel, ecg = scene.plaintexts[DataType.LAB_PANEL], scene.plaintexts[DataType.ECG]
    bases = {"lab panel": (panel, DataType.LAB_PANEL), "ECG": (ecg, DataType.ECG)}
    header_end = RECORD_PREFIX.size + RECORD_PREFIX.unpack_from(panel)[2]

    def sealed(variant: str, detail: str, plaintext: bytes, data_type: DataType = DataType.LAB_PANEL,
               sealed_as: DataType | None = None) -> None:
        opened = scene.seal(plaintext, sealed_as or data_type)
        scene.record(kind, variant, detail, CORRUPT, ciphertext=opened.ciphertext, envelope=opened.key_envelope,
                     data_type=data_type)

    for junk in draw(f"{kind}: random", st.binary(max_size=512).filter(lambda b: not b.startswith(b"AIDR")), 2):
        sealed("random bytes", f"{len(junk)} bytes", junk)
    for position, xor in draw(f"{kind}: header", st.tuples(st.integers(0, header_end - 1), st.integers(1, 255)), 3,
                              distinct=at_offset):
        sealed("panel prefix or header byte flipped", f"byte {position}/{header_end} ^ {xor:#04x}",
               flip(panel, position, xor))
    for name, at in draw(f"{kind}: truncated", st.tuples(st.sampled_from(sorted(bases)), st.integers(0, 2**32)), 3):
        plaintext, data_type = bases[name]
        cut = at % len(plaintext)
        sealed("truncated", f"{name}: first {cut} of {len(plaintext)} bytes", plaintext[:cut], data_type)
    for name, extra in draw(f"{kind}: extended", st.tuples(st.sampled_from(sorted(bases)),
                                                           st.binary(min_size=1, max_size=32)), 2):
        plaintext, data_type = bases[name]
        sealed("extended", f"{name} + {len(extra)} bytes", plaintext + extra, data_type)
    bad_values = st.sampled_from([math.nan, math.inf, -math.inf]) | st.floats(max_value=-1e-12)
    for index, value in draw(f"{kind}: value", st.tuples(st.integers(0, 29), bad_values), 3):
        edited = bytearray(panel)
        struct.pack_into("<d", edited, header_end + 8 * index, value)
        sealed("panel value not finite or negative", f"value {index} = {value!r}", bytes(edited))
    sealed("data type confusion", "an ECG sealed and registered as a lab panel", ecg)
    sealed("data type confusion", "a lab panel sealed as an ECG, registered as a lab panel", panel,
           sealed_as=DataType.ECG)
    sealed("data type confusion", "a lab panel sealed and registered as an ECG", panel, DataType.ECG)
    sealed("data type confusion", "a lab panel sealed as a panel, registered as an ECG", panel, DataType.ECG,
           sealed_as=DataType.LAB_PANEL)


def bad_envelopes(scene: Scene) -> None:
    """Key envelopes that give the node no data key: WRONG_KEY. The node's sealed box is altered as
    bytes (not as base64 text, where a change to the last character's unused bits decodes to the
    same box). An envelope that does unwrap, to another 32-byte data key, is caught by the AEAD
    instead: CORRUPT_RECORD (it cannot be told from a tampered ciphertext)."""
    kind = "wrong key or bad key envelope"
    panel = scene.plaintexts[DataType.LAB_PANEL]
    sealed = scene.seal(panel)
    node_hex = scene.node_key.hex()
    box = base64.b64decode(json.loads(sealed.key_envelope)["recipients"][node_hex])

    def with_box(raw: bytes) -> bytes:
        return json.dumps({"version": 1, "recipients": {node_hex: base64.b64encode(raw).decode()}}).encode()

    def bad(variant: str, detail: str, envelope: bytes, expected=WRONG_KEY, ciphertext: bytes = sealed.ciphertext):
        scene.record(kind, variant, detail, expected, ciphertext=ciphertext, envelope=envelope)

    for junk in draw(f"{kind}: random", st.binary(max_size=512), 3):
        bad("random bytes", f"{len(junk)} bytes", junk)
    for value in draw(f"{kind}: json", JSON, 3):
        bad("JSON that is no envelope", json.dumps(value)[:60], json.dumps(value).encode())
    for value in draw(f"{kind}: entry", JSON, 3):
        bad("the node's entry is no sealed box", json.dumps(value)[:60],
            json.dumps({"version": 1, "recipients": {node_hex: value}}).encode())
    for count in draw(f"{kind}: others", st.integers(1, 3), 2):
        others = scene.seal(panel, recipients=[PrivateKey.generate().public_key.encode() for _ in range(count)])
        bad("sealed to other keys only", f"{count} other recipient(s)", others.key_envelope,
            ciphertext=others.ciphertext)
    stranger = PrivateKey.generate().public_key.encode()
    misaddressed = scene.seal(panel, recipients=[stranger])
    bad("the node's entry sealed to another key", "a box for a random key, under the node's key",
        with_box(base64.b64decode(json.loads(misaddressed.key_envelope)["recipients"][stranger.hex()])),
        ciphertext=misaddressed.ciphertext)
    for position, xor in draw(f"{kind}: box flip", st.tuples(st.integers(0, len(box) - 1), st.integers(1, 255)), 3,
                              distinct=at_offset):
        bad("sealed box byte flipped", f"box byte {position}/{len(box)} ^ {xor:#04x}", with_box(flip(box, position, xor)))
    for cut in draw(f"{kind}: box truncated", st.integers(0, len(box) - 1), 2):
        bad("sealed box truncated", f"first {cut} of {len(box)} bytes", with_box(box[:cut]))
    for cut in draw(f"{kind}: truncated", st.integers(0, len(sealed.key_envelope) - 1), 3):
        bad("envelope truncated", f"first {cut} of {len(sealed.key_envelope)} bytes", sealed.key_envelope[:cut])
    for length in draw(f"{kind}: key length", st.integers(0, 64).filter(lambda n: n != 32), 2):
        bad("sealed data key of the wrong length", f"{length} bytes",
            with_box(SealedBox(PublicKey(scene.node_key)).encrypt(os.urandom(length))))
    for key in draw(f"{kind}: other data key", st.binary(min_size=32, max_size=32), 2):
        bad("another data key sealed to the node", key.hex()[:16] + "…",
            with_box(SealedBox(PublicKey(scene.node_key)).encrypt(key)), expected=CORRUPT)


def mismatched_cids(scene: Scene) -> None:
    """CIDs that are malformed (refused before IPFS is asked), that name other stored bytes, or that
    carry the right digest under the dag-pb codec. A bad ciphertext CID is CORRUPT_RECORD, a bad
    envelope CID WRONG_KEY, a bad weights CID WEIGHTS_MISMATCH; an envelope CID naming another
    record's envelope for the node unwraps another data key: CORRUPT_RECORD."""
    kind = "CID that does not match its bytes"
    store = scene.patient.store
    sealed = scene.seal(scene.plaintexts[DataType.LAB_PANEL])
    other = scene.seal(scene.plaintexts[DataType.LAB_PANEL])  # another record for the node
    text, envelope = sealed.ciphertext, sealed.key_envelope
    text_cid, envelope_cid = store.add(text), store.add(envelope)

    for cid in draw(f"{kind}: ciphertext", malformed_cids(text_cid), 4):
        scene.record(kind, "malformed ciphertext CID", repr(cid)[:60], CORRUPT, ciphertext_cid=cid,
                     ciphertext_hash=sha256(text), envelope=envelope)
    for cid in draw(f"{kind}: envelope", malformed_cids(envelope_cid), 3):
        scene.record(kind, "malformed key envelope CID", repr(cid)[:60], WRONG_KEY, ciphertext=text, envelope_cid=cid)
    genuine = scene.weights[DataType.LAB_PANEL]
    for cid in draw(f"{kind}: weights", malformed_cids(compute_cid(genuine)), 2):
        # The registered sha256 is one no worker has loaded: a cached model is found by its hash alone.
        scene.model(kind, "malformed weights CID", repr(cid)[:60], WEIGHTS_MISMATCH, genuine, cid=cid,
                    sha256=flip(sha256(genuine), 0, 1))

    named = {"random bytes": b"", "its key envelope": envelope, "another record's ciphertext": other.ciphertext}
    junk = st.binary(max_size=256).filter(lambda b: not b.startswith(RECORD_MAGIC))
    names = st.tuples(st.sampled_from(sorted(named)), st.booleans(), junk)
    for name, hash_of_named, noise in draw(f"{kind}: ciphertext names", names, 4, distinct=lambda t: t[:2]):
        stored = noise if name == "random bytes" else named[name]
        scene.record(kind, "ciphertext CID names other bytes",
                     f"{name}; sha256 of {'those bytes' if hash_of_named else 'the real ciphertext'}", CORRUPT,
                     ciphertext_cid=store.add(stored), ciphertext_hash=sha256(stored if hash_of_named else text),
                     envelope=envelope)
    named = {"random bytes": (b"", WRONG_KEY), "the ciphertext": (text, WRONG_KEY),
             "another record's key envelope": (other.key_envelope, CORRUPT)}
    names = st.tuples(st.sampled_from(sorted(named)), st.binary(max_size=256))
    for name, noise in draw(f"{kind}: envelope names", names, 3, distinct=lambda t: t[0]):
        stored, expected = named[name]
        scene.record(kind, "key envelope CID names other bytes", name, expected, ciphertext=text,
                     envelope_cid=store.add(noise if name == "random bytes" else stored))
    # One raw block each, so these name stored blocks, under the codec of a UnixFS file node.
    scene.record(kind, "right digest, dag-pb codec", "ciphertext", CORRUPT,
                 ciphertext_cid=cid_string(cid_bytes(DAG_PB_CODEC, parse_cid(text_cid)[1])),
                 ciphertext_hash=sha256(text), envelope=envelope)
    scene.record(kind, "right digest, dag-pb codec", "key envelope", WRONG_KEY, ciphertext=text,
                 envelope_cid=cid_string(cid_bytes(DAG_PB_CODEC, parse_cid(envelope_cid)[1])))


def oversized(scene: Scene) -> None:
    """Records over the node's limit (NODE_MAX_RECORD_BYTES, refused from the DAG root before the
    download): RECORD_TOO_LARGE. Key envelopes over theirs: WRONG_KEY. Both limits are inclusive:
    a record of exactly the limit is read (and these bytes fail the AEAD: CORRUPT_RECORD), and a
    valid envelope padded to exactly its limit is a control that must be fulfilled."""
    kind = "oversized record or envelope"
    limit = NODE_MAX_RECORD_BYTES
    sealed = scene.seal(scene.plaintexts[DataType.LAB_PANEL])
    for extra in draw(f"{kind}: record", st.integers(1, 256 * 1024), 3):
        scene.record(kind, "record over the node's limit", f"{limit} + {extra} bytes", TOO_LARGE,
                     ciphertext=random.Random(extra).randbytes(limit + extra), envelope=sealed.key_envelope)
    at_limit = RECORD_MAGIC + bytes([int(DataType.LAB_PANEL)]) + random.Random(0).randbytes(limit - 6)
    scene.record(kind, "record at the node's limit", f"{limit} bytes", CORRUPT, ciphertext=at_limit,
                 envelope=sealed.key_envelope)
    padded = sealed.key_envelope + b" " * (MAX_ENVELOPE_BYTES - len(sealed.key_envelope))
    scene.record(kind, "key envelope over its limit", f"{MAX_ENVELOPE_BYTES} + 1 bytes", WRONG_KEY,
                 ciphertext=sealed.ciphertext, envelope=padded + b" ")
    control = scene.seal(scene.plaintexts[DataType.LAB_PANEL])
    scene.record("control", "key envelope at its limit", f"{MAX_ENVELOPE_BYTES} bytes", FULFILLED,
                 ciphertext=control.ciphertext, owner=scene.owner,
                 envelope=control.key_envelope + b" " * (MAX_ENVELOPE_BYTES - len(control.key_envelope)))


def mismatched_weights(scene: Scene) -> None:
    """Weights whose sha256 is not the registered one: WEIGHTS_MISMATCH, checked before parsing.
    No registered hash here is one a worker has loaded (its cache is keyed by the hash)."""
    kind = "weights whose hash differs from the registry"
    genuine = scene.weights[DataType.LAB_PANEL]
    for position, xor in draw(f"{kind}: sha256", st.tuples(st.integers(0, 31), st.integers(1, 255)), 3):
        scene.model(kind, "genuine weights, registered sha256 differs", f"sha256 byte {position} ^ {xor:#04x}",
                    WEIGHTS_MISMATCH, genuine, sha256=flip(sha256(genuine), position, xor))
    for noise in draw(f"{kind}: random", st.binary(min_size=1, max_size=1024), 1):  # never the genuine sha256
        scene.model(kind, "random bytes, registered sha256 of the genuine weights + them", f"{len(noise)} bytes",
                    WEIGHTS_MISMATCH, noise, sha256=sha256(genuine + noise))
    for noise in draw(f"{kind}: other model", st.binary(min_size=1, max_size=32), 1):
        scene.model(kind, "the ECG model's weights under another sha256", f"{len(noise)} bytes of noise",
                    WEIGHTS_MISMATCH, scene.weights[DataType.ECG], sha256=sha256(noise))


def not_models(scene: Scene) -> None:
    """Weights with their own sha256 registered that are no loadable model: MODEL_ERROR. Byte edits
    stay where no edit leaves a valid file (length prefix, truncation, trailing bytes: a flip in a
    tensor may just change a weight). A genuine model of the other input type: UNSUPPORTED_INPUT."""
    kind = "weights that are not a model"
    genuine = scene.weights[DataType.LAB_PANEL]
    (header_length,) = struct.unpack_from("<Q", genuine)
    metadata = json.loads(genuine[8:8 + header_length])["__metadata__"]
    state = load_model(genuine, None).network.state_dict()

    for noise in draw(f"{kind}: random", st.binary(max_size=1024), 2):
        scene.model(kind, "random bytes", f"{len(noise)} bytes", MODEL_ERROR, noise)
    for cut in draw(f"{kind}: truncated", st.integers(0, len(genuine) - 1), 3):
        scene.model(kind, "truncated", f"first {cut} of {len(genuine)} bytes", MODEL_ERROR, genuine[:cut])
    for extra in draw(f"{kind}: extended", st.binary(min_size=1, max_size=64), 2):
        scene.model(kind, "extended", f"{len(extra)} bytes appended", MODEL_ERROR, genuine + extra)
    for position, xor in draw(f"{kind}: prefix", st.tuples(st.integers(0, 7), st.integers(1, 255)), 2):
        scene.model(kind, "header length flipped", f"byte {position} ^ {xor:#04x}", MODEL_ERROR,
                    flip(genuine, position, xor))
    for name, at, value in draw(f"{kind}: non-finite", st.tuples(st.sampled_from(sorted(state)), st.integers(0, 2**20),
                                                                 st.sampled_from([math.nan, math.inf, -math.inf])), 2):
        tensor = state[name].clone()
        tensor.view(-1)[at % tensor.numel()] = value
        scene.model(kind, "a non-finite weight", f"{name}[{at % tensor.numel()}] = {value}", MODEL_ERROR,
                    safetensors.torch.save({**state, name: tensor}, metadata=metadata))

    architecture = json.loads(metadata["architecture"])
    labels = json.loads(metadata["labels"])

    def parsed(text: str):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return None

    hostile_metadata = {  # field -> (strategy of a hostile value, how many), "removed" leaves a field out
        "kind": (st.text(max_size=24).filter(lambda k: k not in ARCHITECTURES), 1),
        "format_version": (st.text(max_size=8).filter(lambda v: v != metadata["format_version"]), 1),
        "architecture": (st.one_of(
            st.fixed_dictionaries({"hidden": st.lists(st.integers(-3, 1100) | st.sampled_from([2**31, 2**64]),
                                                      max_size=5), "dropout": st.floats(0, 0.9)})
            .filter(lambda a: a["hidden"] != architecture["hidden"]).map(json.dumps),
            st.text(max_size=24).filter(lambda text: parsed(text) != architecture),
            st.integers(1_000, 50_000).map(lambda depth: "[" * depth)), 3),
        "labels": (st.lists(st.text(max_size=12), max_size=4).filter(lambda v: v != labels).map(json.dumps), 1),
        "input": (st.dictionaries(st.text(max_size=12), st.integers() | st.text(max_size=8), max_size=3)
                  .map(json.dumps), 1),
        "removed": (st.sampled_from(sorted(metadata)), 1),
    }
    for key, (strategy, count) in hostile_metadata.items():
        for value in draw(f"{kind}: metadata {key}", strategy, count):
            edited = ({k: v for k, v in metadata.items() if k != value} if key == "removed"
                      else {**metadata, key: value})
            detail = (f"without {value}" if key == "removed"
                      else f"{key} = {value[:40]!r}" + ("…" if len(value) > 40 else ""))
            scene.model(kind, "hostile metadata", detail, MODEL_ERROR, safetensors.torch.save(state, metadata=edited))

    scene.model(kind, "a model of another input type", "ECG weights registered as a lab panel model", UNSUPPORTED,
                scene.weights[DataType.ECG])
    scene.model(kind, "a model of another input type", "lab panel weights registered as an ECG model", UNSUPPORTED,
                genuine, input_type=DataType.ECG)


class LeavesAMark:
    """Unpickling this creates a file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


class RunsACommand:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.path)}",)


def pickles(scene: Scene) -> None:
    """Pickles and torch.save files with their own sha256 registered: MODEL_ERROR, and never
    unpickled (each would leave a file under scene.markers)."""
    kind = "pickle disguised as weights"
    state = load_model(scene.weights[DataType.LAB_PANEL], None).network.state_dict()
    for payload in (LeavesAMark, RunsACommand):  # the payloads work when unpickled
        proof = scene.markers.parent / f"proof-{payload.__name__}"
        loaded = pickle.loads(pickle.dumps(payload(proof)))
        if hasattr(loaded, "close"):
            loaded.close()
        assert proof.exists()
    plain = {
        "pickle of the state dict": lambda mark: state,
        "pickle that opens a file": lambda mark: {"weights": state, "hook": LeavesAMark(mark)},
        "pickle that runs a command": lambda mark: RunsACommand(mark),
        "pickle behind a safetensors length prefix": lambda mark: LeavesAMark(mark),
    }
    for variant, build in sorted(plain.items()):
        for protocol in draw(f"{kind}: {variant}", st.integers(0, pickle.HIGHEST_PROTOCOL), 2):
            mark = scene.markers / f"{len(scene.cases)}"
            data = pickle.dumps(build(mark), protocol=protocol)
            if "prefix" in variant:
                data = struct.pack("<Q", len(data)) + data
            scene.model(kind, variant, f"protocol {protocol}", MODEL_ERROR, data)
    for variant, build in [("torch.save of the state dict", lambda mark: state),
                           ("torch.save whose pickle opens a file", lambda mark: {"state": state,
                                                                                   "hook": LeavesAMark(mark)})]:
        buffer = io.BytesIO()
        torch.save(build(scene.markers / f"{len(scene.cases)}"), buffer)
        scene.model(kind, variant, "zip", MODEL_ERROR, buffer.getvalue())


HOSTILE_KINDS = (corrupt_ciphertexts, not_records, bad_envelopes, mismatched_cids, oversized, mismatched_weights,
                 not_models, pickles)



def refused_requests(scene: Scene) -> Counter:
    """Request parameters the market refuses with a custom error before any escrow is taken: the
    doctor's balance, the market's and the request count do not move. Returns the count per error."""
    doctor, node = scene.doctor, scene.node.address
    contracts = doctor.marketplace
    market, token = contracts.market, contracts.token
    patient, provider = scene.patient, scene.provider
    panel, panel_model = scene.records[DataType.LAB_PANEL], scene.models[DataType.LAB_PANEL]
    key = doctor.identity.encryption_public_key
    total = quote(doctor, panel, panel_model, node)
    w3 = contracts.w3

    def now() -> int:
        return w3.eth.get_block("latest")["timestamp"]

    def new_record(data_type: DataType = DataType.LAB_PANEL) -> int:
        sealed = scene.seal(scene.plaintexts[DataType.LAB_PANEL])
        receipt = patient.send(contracts.consents.functions.registerRecord(
            patient.store.add(sealed.ciphertext), sha256(sealed.ciphertext), int(data_type),
            patient.store.add(sealed.key_envelope), ROYALTY), "registerRecord")
        return patient.event(receipt, contracts.consents, "RecordRegistered")["recordId"]

    def new_model(input_type: DataType = DataType.LAB_PANEL) -> int:
        weights = scene.weights[DataType.LAB_PANEL]
        receipt = provider.send(contracts.models.functions.registerModel(
            "refused", provider.store.add(weights), sha256(weights), int(input_type), MODEL_PRICE), "registerModel")
        return provider.event(receipt, contracts.models, "ModelRegistered")["modelId"]

    # Every record and model these attempts name exists before the counts that "unknown" ids exceed.
    retired = new_record()
    grant_consent(patient, retired, doctor.address, Purpose.DIAGNOSIS, now() + 86400)
    patient.send(contracts.consents.functions.retireRecord(retired), "retireRecord")
    unconsented = new_record()
    image_record = new_record(DataType.IMAGE)
    grant_consent(patient, image_record, doctor.address, Purpose.DIAGNOSIS, now() + 86400)
    image_model = new_model(DataType.IMAGE)
    deactivated = new_model()
    provider.send(contracts.models.functions.deactivate(deactivated), "deactivate")
    other_purposes = []
    for purposes in draw("request: other purposes", st.sampled_from([Purpose.RESEARCH, Purpose.TRAINING,
                                                                      Purpose.INSURANCE, Purpose(14)]), 1):
        other_purposes.append((new_record(), purposes))
        grant_consent(patient, other_purposes[-1][0], doctor.address, purposes, now() + 86400)
    timeout = market.functions.requestTimeout().call()
    short_consents = []
    for seconds in draw("request: short consent", st.integers(60, timeout - 60), 1):
        short_consents.append((new_record(), seconds))
        grant_consent(patient, short_consents[-1][0], doctor.address, Purpose.DIAGNOSIS, now() + seconds)
    records, models = contracts.consents.functions.recordCount().call(), contracts.models.functions.modelCount().call()

    attempts: list[tuple[str, str, dict]] = []
    for record in draw("request: unknown record", st.just(0) | st.integers(records + 1, 2**256 - 1), 2):
        attempts.append(("UnknownRecord", f"record {record}", {"record": record}))
    attempts.append(("RecordIsRetired", "a retired record", {"record": retired}))
    attempts.append(("ConsentMissing", "a record without consent", {"record": unconsented}))
    for record, purposes in other_purposes:
        attempts.append(("ConsentMissing", f"consent for {purposes!r} only", {"record": record}))
    for record, seconds in short_consents:
        attempts.append(("ConsentExpiresBeforeDeadline", f"consent for {seconds} s", {"record": record}))
    for model in draw("request: unknown model", st.just(0) | st.integers(models + 1, 2**256 - 1), 2):
        attempts.append(("UnknownModel", f"model {model}", {"model": model}))
    attempts.append(("ModelNotActive", "a deactivated model", {"model": deactivated}))
    attempts.append(("InputTypeMismatch", "the ECG model on a lab panel", {"model": scene.models[DataType.ECG]}))
    for raw in draw("request: node", st.binary(min_size=20, max_size=20), 2):
        address = w3.to_checksum_address(raw)
        attempts.append(("NodeNotActive", f"node {address}", {"node": address}))
    attempts.append(("NodeUnsupportedInput", "an IMAGE record and model",
                     {"record": image_record, "model": image_model}))
    for point, top_bit in draw("request: result key", st.tuples(st.sampled_from(SMALL_ORDER_POINTS), st.booleans()), 3):
        result_key = with_top_bit(point) if top_bit else point
        attempts.append(("InvalidResultKey", f"result key {result_key.hex()[:16]}…", {"key": result_key}))
    for max_total in draw("request: max total", st.integers(0, total - 1), 2):
        attempts.append(("PriceAboveLimit", f"maxTotal {max_total} < {total}", {"max_total": max_total}))
    for allowance in draw("request: allowance", st.integers(0, total - 1), 2):
        attempts.append(("ERC20InsufficientAllowance", f"allowance {allowance} < {total}", {"allowance": allowance}))

    before = (balance(doctor), balance(doctor, market.address), market.functions.requestCount().call())
    tried: Counter = Counter()
    for error, detail, terms in attempts:
        doctor.send(token.functions.approve(market.address, terms.get("allowance", total)), "approve")
        call = market.functions.requestDiagnosis(terms.get("record", panel), terms.get("model", panel_model),
                                                 terms.get("node", node), terms.get("key", key),
                                                 terms.get("max_total", total))
        with pytest.raises(TransactionReverted) as refused:
            doctor.send(call, f"requestDiagnosis ({detail})")
        assert refused.value.reason.startswith(error + "("), f"{detail}: {refused.value.reason}"
        tried[error] += 1
    assert (balance(doctor), balance(doctor, market.address), market.functions.requestCount().call()) == before
    return tried


# ---------------------------------------------------------------- the test


def outcome(settled) -> str:
    """FULFILLED, or the reason code of a failure (RequestStatus and FailureReason are IntEnums whose
    values overlap, so they are compared by name: FULFILLED == CORRUPT_RECORD == 2)."""
    return settled.failure.name if settled.status == RequestStatus.FAILED else settled.status.name


def test_hostile_inputs_fail_with_their_reason_and_refund(node, provider, models, models_dir, funded, tmp_path):
    started = time.monotonic()
    doctor = funded(10_000 * AID)
    patient, owner, hostile_provider = funded(0), funded(0), funded(0)
    samples = {data_type: samples_of(models_dir, data_type)[0] for data_type in (DataType.LAB_PANEL, DataType.ECG)}
    scene = Scene(
        node=node, doctor=doctor, patient=patient, owner=owner, provider=hostile_provider, models=models,
        plaintexts={DataType.LAB_PANEL: valid_panel_bytes(models_dir),
                    DataType.ECG: encode_record(load_record_file(samples[DataType.ECG]))},
        weights={DataType.LAB_PANEL: (models_dir / "panel-mlp.safetensors").read_bytes(),
                 DataType.ECG: (models_dir / "ecg-cnn.safetensors").read_bytes()},
        records={data_type: consented_record(patient, doctor, node, source) for data_type, source in samples.items()},
        markers=tmp_path / "markers")
    scene.markers.mkdir()

    refusals = refused_requests(scene)
    worker_log = node.processes[0].log_path  # the Celery worker (conftest starts worker, sender, watcher)
    log_offset = worker_log.stat().st_size

    market = doctor.marketplace.market
    watched = {"doctor": doctor, "patient": patient, "owner": owner, "provider": provider,
               "hostile provider": hostile_provider}
    before = {name: balance(session) for name, session in watched.items()}
    before["market"] = balance(doctor, market.address)
    before["node"] = node_earnings(node)

    for data_type, source in samples.items():  # the controls: genuine records and models
        record = consented_record(owner, doctor, node, source)
        scene.request(Case("control", "genuine record and model", data_type.name, FULFILLED, owner, record,
                           models[data_type]))
    for make in HOSTILE_KINDS:
        make(scene)
    submitted = time.monotonic()

    settled = settle(doctor, [case.request_id for case in scene.cases], timeout=180)
    outcomes = {case.request_id: outcome(settled[case.request_id]) for case in scene.cases}
    wrong = [f"request {case.request_id} ({case.kind}: {case.variant}: {case.detail}) ended "
             f"{outcomes[case.request_id]}, expected {case.expected.name}"
             for case in scene.cases if outcomes[case.request_id] != case.expected.name]

    controls = [case for case in scene.cases if case.expected is FULFILLED]
    hostile = [case for case in scene.cases if case.expected is not FULFILLED]
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps({
        "hostile requests": len(hostile),
        "by kind": dict(Counter(case.kind for case in hostile)),
        "by variant": dict(Counter(f"{case.kind}: {case.variant}" for case in hostile)),
        "refused at requestDiagnosis": dict(refusals),
        "controls": len(controls),
        "seconds": {"submitting": round(submitted - started, 1), "total": round(time.monotonic() - started, 1)},
        "cases": [{"request": case.request_id, "kind": case.kind, "variant": case.variant, "detail": case.detail,
                   "expected": case.expected.name, "outcome": outcomes[case.request_id]}
                  for case in scene.cases],
    }, indent=1))
    assert not wrong, "\n".join(wrong)

    cost = MODEL_PRICE + ROYALTY + NODE_FEE
    fulfilled = len(controls)
    assert balance(doctor) == before["doctor"] - fulfilled * cost  # every failure refunded in full
    assert balance(patient) == before["patient"]  # no royalty for a failed request
    assert balance(owner) == before["owner"] + fulfilled * ROYALTY
    assert balance(hostile_provider) == before["hostile provider"]
    assert balance(provider) == before["provider"] + fulfilled * MODEL_PRICE
    assert node_earnings(node) == before["node"] + fulfilled * NODE_FEE
    assert balance(doctor, market.address) == before["market"] + fulfilled * NODE_FEE  # no escrow left behind
    assert not list(scene.markers.iterdir()), "the node unpickled fetched weights"
    assert node.alive()
    # Nor did a worker child die (the pool would replace it), nor was any input taken for a transient error.
    with worker_log.open("rb") as log:
        log.seek(log_offset)
        lines = log.read().decode(errors="replace").splitlines()
    assert not [line for line in lines if "WorkerLostError" in line or "exited with" in line]
    ids = {str(case.request_id) for case in scene.cases}
    retried = [line for line in lines for listed in re.findall(r"request\(s\) \(([\d, ]+)\):.*retrying in", line)
               if ids & set(listed.split(", "))]
    assert not retried, retried


def test_a_deeply_nested_key_envelope_fails_as_wrong_key(node, models, models_dir, funded):
    """A key envelope of nested JSON arrays deeper than Python's recursion limit (64 KiB of "[",
    within the envelope size limit). It must be refunded and leave the node up, like any envelope
    that gives no data key; and it should say WRONG_KEY."""
    doctor, patient = funded(10_000 * AID), funded(0)
    sealed = encrypt_record(valid_panel_bytes(models_dir), [node.identity.encryption_public_key],
                            data_type=int(DataType.LAB_PANEL))
    record = register_raw(patient, doctor, sealed.ciphertext, b"[" * MAX_ENVELOPE_BYTES, DataType.LAB_PANEL)
    before = balance(doctor)
    request_id, _ = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
    settled = settle(doctor, [request_id])[request_id]
    assert settled.status == RequestStatus.FAILED and balance(doctor) == before
    assert node.alive()
    assert settled.failure == WRONG_KEY  # json.loads' RecursionError is a malformed envelope, not a bug
