"""A patient adds a record: parse the file, encrypt it under a fresh data key, wrap that key to the
chosen nodes (and to the patient), store ciphertext and key envelope, register both CIDs and the
ciphertext's sha256 on-chain. The plaintext never leaves the patient's machine."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aidoc.chain.contracts import call_batch, call_struct
from aidoc.constants import DataType, input_types_mask
from aidoc.crypto import encrypt_record
from aidoc.errors import AidocError
from aidoc.flow.session import Session
from aidoc.records import HealthRecord, encode_record, load_record_file
from aidoc.storage import compute_cid


class NodeNotRegistered(AidocError):
    """A record was to be shared with an address that is not a registered node."""


MAX_ROYALTY = 2**80 - 1  # the registry stores a record's royalty in 80 bits


def node_encryption_key(session: Session, node: str, data_type: DataType | None = None) -> bytes:
    """The X25519 key of `node`, checked to be a registered node that takes requests (and, given
    `data_type`, reads that type): a record sealed to any other could never be diagnosed."""
    found = call_struct(session.marketplace.nodes, "getNode", node)
    if not found["registered"] or not any(found["encryptionKey"]):
        raise NodeNotRegistered(f"{node} is not a registered node; pick one from `aidoc node list`")
    if found["unbondingEnd"]:
        raise NodeNotRegistered(f"node {node} is leaving (unbonding) and takes no requests; pick another from "
                                "`aidoc node list`")
    if data_type is not None and not input_types_mask(data_type) & found["inputTypes"]:
        raise NodeNotRegistered(f"node {node} does not read {data_type.name.lower()} records; pick one that does "
                                "from `aidoc node list`")
    return bytes(found["encryptionKey"])


def add_record(session: Session, source: Path | HealthRecord, nodes: list[str], royalty: int) -> int:
    """Registers an encrypted record readable by `nodes` (and its owner); returns its record id.
    Everything the registry would refuse is checked before anything is uploaded: the nodes, the
    royalty, and the registration itself (estimated with the CIDs computed locally)."""
    record = load_record_file(Path(source)) if not isinstance(source, HealthRecord) else source
    if not 0 <= royalty <= MAX_ROYALTY:
        raise AidocError(f"a royalty of {royalty} AID units does not fit the registry (at most {MAX_ROYALTY})")
    recipients = [node_encryption_key(session, node, record.data_type) for node in nodes]
    sealed = encrypt_record(encode_record(record), recipients + [session.identity.encryption_public_key],
                            data_type=int(record.data_type))
    digest, data_type = hashlib.sha256(sealed.ciphertext).digest(), int(record.data_type)

    def register(ciphertext_cid: str, envelope_cid: str):
        return session.marketplace.consents.functions.registerRecord(ciphertext_cid, digest, data_type, envelope_cid,
                                                                     royalty)

    # A refusal says why before any upload (with the CIDs computed here; the store's own are sent).
    session.transactor.estimate(register(compute_cid(sealed.ciphertext), compute_cid(sealed.key_envelope)),
                                "registerRecord")
    receipt = session.send(register(session.store.add(sealed.ciphertext), session.store.add(sealed.key_envelope)),
                           "registerRecord")
    return int(session.event(receipt, session.marketplace.consents, "RecordRegistered")["recordId"])


@dataclass(frozen=True)
class MyRecord:
    record_id: int
    data_type: DataType
    royalty: int
    retired: bool
    block: int


def my_records(session: Session) -> list[MyRecord]:
    """The caller's records since the deployment (one eth_getLogs and one batch of reads)."""
    consents = session.marketplace.consents
    logs = consents.events.RecordRegistered().get_logs(from_block=session.marketplace.deployment.block_number,
                                                       argument_filters={"owner": session.address})
    if not logs:
        return []
    records = call_batch(session.marketplace.w3, [(consents, "getRecord", (int(log["args"]["recordId"]),))
                                                   for log in logs])
    return [MyRecord(int(log["args"]["recordId"]), DataType(int(found["dataType"])), int(found["royalty"]),
                     bool(found["retired"]), int(log["blockNumber"])) for log, found in zip(logs, records)]

