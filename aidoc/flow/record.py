"""A patient adds a record: parse the file, encrypt it under a fresh data key, wrap that key to the
chosen nodes (and to the patient), store ciphertext and key envelope, register both CIDs and the
ciphertext's sha256 on-chain. The plaintext never leaves the patient's machine."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aidoc.chain.contracts import call_struct
from aidoc.crypto import encrypt_record
from aidoc.errors import AidocError
from aidoc.flow.session import Session
from aidoc.records import HealthRecord, encode_record, load_record_file


class NodeNotRegistered(AidocError):
    """A record was to be shared with an address that is not a registered node."""


def node_encryption_key(session: Session, node: str) -> bytes:
    key = call_struct(session.marketplace.nodes, "getNode", node)["encryptionKey"]
    if not any(key):
        raise NodeNotRegistered(f"{node} is not a registered node; pick one from `aidoc node list`")
    return bytes(key)


def add_record(session: Session, source: Path | HealthRecord, nodes: list[str], royalty: int) -> int:
    """Registers an encrypted record readable by `nodes` (and its owner); returns its record id."""
    record = load_record_file(Path(source)) if not isinstance(source, HealthRecord) else source
    recipients = [node_encryption_key(session, node) for node in nodes] + [session.identity.encryption_public_key]
    sealed = encrypt_record(encode_record(record), recipients, data_type=int(record.data_type))
    ciphertext_cid = session.store.add(sealed.ciphertext)
    envelope_cid = session.store.add(sealed.key_envelope)
    receipt = session.send(
        session.marketplace.consents.functions.registerRecord(
            ciphertext_cid, hashlib.sha256(sealed.ciphertext).digest(), int(record.data_type), envelope_cid, royalty
        ),
        "registerRecord",
    )
    return int(session.event(receipt, session.marketplace.consents, "RecordRegistered")["recordId"])

