"""Who a training uses, and the proof of it.

Compute-to-data jobs (TrainingMarket): the records a job may use (TRAINING consent to the buyer,
the job's data type, room in each record's epsilon budget), the held-out split, and the salted
cohort commitment the node posts with completeJob. The commitment binds the job, the records, their
ciphertexts and which of them were held out; the node keeps its opening (`CohortOpening`, with the
salt) so that an auditor given it can check exactly what was trained on (`verify_cohort`), while
nobody without the salt can test a guess of the split against the chain.

Federated rounds (FederatedRounds): whether a round is the one to work on, and a round's updates in
the participants' on-chain order, each checked against its on-chain sha256: what the aggregator
averages, and what anyone re-averages to check the posted aggregate."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from eth_utils import keccak

from aidoc.chain.contracts import Marketplace, call_batch, call_struct, decode_event, event_topic, rpc_request
from aidoc.constants import Purpose, TrainingStatus
from aidoc.errors import AidocError
from aidoc.storage import ContentStore

log = logging.getLogger(__name__)

HELD_OUT_FRACTION = 0.2
MIN_COHORT = 4  # fewer usable records than this cannot be trained on and scored


class CohortError(AidocError):
    """A training cannot go on: no usable cohort, or an update that does not match its hash."""


# ---------------------------------------------------------------- compute-to-data jobs


def usable_cohort(contracts: Marketplace, job: dict) -> list[tuple[int, dict]]:
    """Records of the job's data type whose owners granted TRAINING to the buyer, that are not
    retired, and whose epsilon budget has room for this job: (record id, ConsentRegistry record)
    by record id, up to twice maxRecords (some may turn out unreadable or unlabelled)."""
    consents = contracts.consents
    buyer_topic = "0x" + bytes.fromhex(job["buyer"][2:]).rjust(32, b"\0").hex()
    logs = rpc_request(contracts.w3, "eth_getLogs", [{
        "address": consents.address, "fromBlock": hex(contracts.deployment.block_number), "toBlock": "latest",
        "topics": ["0x" + event_topic(consents, "ConsentGranted").hex(), None, buyer_topic]}])
    candidates = sorted({int(decode_event(consents, "ConsentGranted", entry)["recordId"]) for entry in logs})
    calls = []
    for record_id in candidates:
        calls += [(consents, "hasConsent", (record_id, job["buyer"], int(Purpose.TRAINING))),
                  (consents, "getRecord", (record_id,)),
                  (contracts.training, "epsilonSpent", (record_id,)),
                  (contracts.training, "epsilonLimitOf", (record_id,))]
    answers = call_batch(contracts.w3, calls) if calls else []
    cohort = []
    for record_id, (consent, info, spent, limit) in zip(candidates, zip(*[iter(answers)] * 4)):
        if not consent["out0"] or info["retired"] or info["dataType"] != job["dataType"]:
            continue
        if spent["out0"] + job["epsilonMilli"] > limit["out0"]:
            log.info("job: record %d left out: its epsilon budget would be exceeded", record_id)
            continue
        cohort.append((record_id, info))
        if len(cohort) == 2 * job["maxRecords"]:
            break
    return cohort


def held_out_mask(count: int, seed: int) -> np.ndarray:
    """Which of `count` records are held out for scoring (HELD_OUT_FRACTION, at least one), seeded."""
    mask = np.zeros(count, dtype=bool)
    chosen = np.random.default_rng(seed).choice(count, size=max(1, round(count * HELD_OUT_FRACTION)), replace=False)
    mask[chosen] = True
    return mask


@dataclass(frozen=True)
class CohortMember:
    record_id: int
    ciphertext_hash: bytes  # the record's ciphertext sha256, as registered on-chain
    held_out: bool


@dataclass(frozen=True)
class CohortOpening:
    """What opens a job's cohort commitment: the job, the salt, and each record used, in order."""

    job_id: int
    salt: bytes
    members: tuple[CohortMember, ...]

    @classmethod
    def new(cls, job_id: int, members: list[CohortMember]) -> "CohortOpening":
        return cls(job_id, secrets.token_bytes(32), tuple(members))

    def commitment(self) -> bytes:
        """keccak256(jobId ‖ salt ‖ for each member: recordId ‖ ciphertextHash ‖ heldOut byte)."""
        return keccak(b"".join([self.job_id.to_bytes(32, "big"), self.salt]
                               + [m.record_id.to_bytes(32, "big") + bytes(m.ciphertext_hash) + bytes([int(m.held_out)])
                                  for m in self.members]))

    @property
    def record_ids(self) -> list[int]:
        return [m.record_id for m in self.members]

    def to_json(self) -> str:
        return json.dumps({"job_id": self.job_id, "salt": self.salt.hex(), "members": [
            {"record_id": m.record_id, "ciphertext_hash": bytes(m.ciphertext_hash).hex(), "held_out": m.held_out}
            for m in self.members]}, indent=1)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "CohortOpening":
        try:
            data = json.loads(raw)
            return cls(int(data["job_id"]), bytes.fromhex(data["salt"]), tuple(
                CohortMember(int(m["record_id"]), bytes.fromhex(m["ciphertext_hash"]), bool(m["held_out"]))
                for m in data["members"]))
        except (ValueError, KeyError, TypeError) as error:
            raise CohortError(f"not a cohort opening ({error}); expected the JSON file the node wrote") from None

    def save(self, directory: Path) -> Path:
        """Writes the opening to `directory`/`file_name(job, commitment)` (no health data: ids and
        hashes that are on-chain already, the split and the salt) for the node's operator to hand to
        an auditor. The name holds the commitment, so a job run again with a new salt never
        overwrites the opening of a commitment already posted."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.file_name(self.job_id, self.commitment())
        path.write_text(self.to_json())
        return path

    @staticmethod
    def file_name(job_id: int, commitment: bytes) -> str:
        """job-<id>-<commitment hex>.json: the opening of the commitment a JobCompleted event holds."""
        return f"job-{job_id}-{bytes(commitment).hex()}.json"


def verify_cohort(opening: CohortOpening, commitment: bytes, on_chain_records: list[int] | None = None,
                  registered_hashes: dict[int, bytes] | None = None) -> bool:
    """Whether `opening` opens `commitment` (a job's JobCompleted cohortCommitment); with the job's
    on-chain record list and the records' registered ciphertext hashes, also whether it names
    exactly those records with those ciphertexts."""
    if opening.commitment() != bytes(commitment):
        return False
    if on_chain_records is not None and sorted(opening.record_ids) != sorted(on_chain_records):
        return False
    if registered_hashes is not None and any(
            bytes(registered_hashes.get(m.record_id, b"")) != bytes(m.ciphertext_hash) for m in opening.members):
        return False
    return True


# ---------------------------------------------------------------- federated rounds


def is_current_round(training: dict, round_number: int) -> bool:
    """Whether a FederatedRounds training is running and `round_number` is the round it is in."""
    return training["status"] == TrainingStatus.RUNNING and training["currentRound"] == round_number


def round_updates(marketplace: Marketplace, store: ContentStore, training_id: int, round_number: int,
                  max_size: int = 256 * 1024 * 1024) -> list[tuple[bytes, int]]:
    """The round's submitted updates (weights, sample count) in the participants' on-chain order,
    each verified against its on-chain sha256."""
    rounds = marketplace.rounds
    participants = call_struct(rounds, "participantsOf", training_id)["out0"]
    answers = call_batch(marketplace.w3, [(rounds, "getUpdate", (training_id, round_number, p))
                                          for p in participants])
    updates = []
    for answer in answers:
        if not answer["numSamples"]:
            continue
        weights = store.cat(answer["updateCid"], max_size=max_size)
        if hashlib.sha256(weights).digest() != bytes(answer["updateSha256"]):
            raise CohortError(f"the update at {answer['updateCid']} does not match its on-chain sha256")
        updates.append((weights, int(answer["numSamples"])))
    return updates


def local_dataset(path: str) -> tuple[np.ndarray, np.ndarray]:
    """An institution's own labelled panels: an .npz of `features` (n x 30) and `targets` (0 malignant,
    1 benign), read without pickle."""
    if not path:
        raise CohortError("this node has no local dataset: set AIDOC_LOCAL_DATASET to its .npz of panels")
    with np.load(Path(path), allow_pickle=False) as data:
        return np.asarray(data["features"], dtype=np.float64), np.asarray(data["targets"], dtype=np.int64)
