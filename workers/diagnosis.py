"""One diagnosis, from a request's terms to a sealed result in the node's outbox.

consent -> record (fetch, verify, unwrap key, decrypt, parse) -> model (fetch, verify, load) ->
inference -> result (seal to the requester, salted commitment, CID) -> outbox. Plaintext exists
only in this process's memory. A permanent problem ends as a failure with a reason code (the
requester is refunded on-chain); a transient one (IPFS or RPC down) propagates for a retry.
The outbox push is the task's (workers/tasks.py), once for all the requests of a task."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from enum import Enum

from aidoc.chain.contracts import call_batch
from aidoc.constants import FailureReason, Purpose, RequestStatus
from aidoc.crypto import open_record, seal_result, usable_result_key
from aidoc.errors import (
    ContentMismatch,
    ContentNotFound,
    ContentTooLarge,
    CorruptCiphertext,
    ModelArtifactError,
    RecordFormatError,
    WeightsHashMismatch,
    WrongKey,
)
from aidoc.node.messages import DiagnosisJob, OutboxItem
from aidoc.node.stages import Stages
from aidoc.records import HealthRecord, decode_record
from aidoc.storage import compute_cid

log = logging.getLogger(__name__)

MAX_ENVELOPE_BYTES = 64 * 1024


class Outcome(str, Enum):
    FULFILMENT_QUEUED = "fulfilment queued"
    FAILURE_QUEUED = "failure queued"
    NOT_PENDING = "not pending"
    PAST_DEADLINE = "past deadline"
    DUPLICATE = "another delivery holds it"
    ALREADY_HANDLED = "already handled"


class PermanentFailure(Exception):
    """The request cannot be fulfilled, whoever tries again: report it with this reason."""

    def __init__(self, reason: FailureReason, detail: str):
        super().__init__(f"{reason.name}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class ChainView:
    """What the chain says about one request now: its state, the consent, the record, the model."""

    state: dict
    consent: bool
    record: dict
    model: dict


@dataclass(frozen=True)
class Diagnosed:
    """How one request ended in this worker, and what (if anything) goes to the outbox for it."""

    outcome: Outcome
    item: OutboxItem | None = None


def read_chain(contracts, jobs: list[DiagnosisJob]) -> list[ChainView]:
    """The chain's view of each job, all in one JSON-RPC batch: four eth_calls per job, each asked
    once however many jobs share it (requests for one model or one record)."""
    if not jobs:
        return []
    per_job = []
    for job in jobs:
        request = job.request
        per_job.append([
            (contracts.market, "getRequestState", (job.request_id,)),
            (contracts.consents, "hasConsent", (request.record_id, request.requester, int(Purpose.DIAGNOSIS))),
            (contracts.consents, "getRecord", (request.record_id,)),
            (contracts.models, "getModel", (request.model_id,)),
        ])
    distinct = list(dict.fromkeys((contract.address, function, args) for calls in per_job
                                  for contract, function, args in calls))
    by_address = {contract.address: contract for calls in per_job for contract, _, _ in calls}
    answers = call_batch(contracts.w3, [(by_address[address], function, args) for address, function, args in distinct])
    answer_of = dict(zip(distinct, answers))
    views = []
    for calls in per_job:
        state, consent, record, model = (answer_of[(contract.address, function, args)]
                                         for contract, function, args in calls)
        views.append(ChainView(state, bool(consent["out0"]), record, model))
    return views


def run_diagnosis(state, job: DiagnosisJob, view: ChainView, stages: Stages) -> Diagnosed:
    """Runs `job` with a worker's state (workers.runtime.WorkerState) and the chain's view of it."""
    if RequestStatus(view.state["status"]) != RequestStatus.PENDING:
        return Diagnosed(Outcome.NOT_PENDING)
    if job.request.deadline <= time.time():  # the market skips late fulfilments anyway
        return Diagnosed(Outcome.PAST_DEADLINE)  # too late to fulfil; the requester's cancel refunds it
    if not usable_result_key(job.result_key):  # checked before any record is decrypted
        log.warning("request %d: the requester's result key is not a usable X25519 key", job.request_id)
        return Diagnosed(Outcome.FAILURE_QUEUED, OutboxItem.failure(job.request_id, job.request, FailureReason.WRONG_KEY))
    try:
        result = diagnose(state, job, stages, view.consent, view.record, view.model)
    except PermanentFailure as failure:
        log.warning("request %d cannot be fulfilled: %s", job.request_id, failure)
        return Diagnosed(Outcome.FAILURE_QUEUED, OutboxItem.failure(job.request_id, job.request, failure.reason))
    with stages("crypto"):
        sealed = seal_result(job.request_id, result, job.result_key)
        result_cid = compute_cid(sealed.ciphertext)
    return Diagnosed(Outcome.FULFILMENT_QUEUED, OutboxItem(
        kind="fulfil",
        request_id=job.request_id,
        request=job.request,
        commitment=sealed.commitment,
        result_cid=result_cid,
        ciphertext=sealed.ciphertext,
        stages=stages.ms,
    ))


def diagnose(state, job: DiagnosisJob, stages: Stages, consent: bool, record_info: dict, model_info: dict) -> dict:
    """The result of `job` (a dict sealed to the requester); PermanentFailure when impossible."""
    runtime = state.runtime
    request = job.request
    if not consent:  # checked before anything is fetched or decrypted
        raise PermanentFailure(FailureReason.CONSENT_REVOKED, "the patient's consent is gone")
    data_type, input_type = record_info["dataType"], model_info["inputType"]
    if input_type != data_type:
        raise PermanentFailure(FailureReason.UNSUPPORTED_INPUT, f"model input type {input_type} != record type {data_type}")

    record = fetch_record(runtime, record_info["ciphertextCid"], record_info["ciphertextHash"],
                          record_info["keyEnvelopeCid"], data_type, stages)
    try:
        with stages("ipfs"):
            model = state.models.get(model_info["weightsCid"], model_info["weightsSha256"])
    except WeightsHashMismatch as error:
        raise PermanentFailure(FailureReason.WEIGHTS_MISMATCH, str(error)) from None
    except ModelArtifactError as error:
        raise PermanentFailure(FailureReason.MODEL_ERROR, str(error)) from None
    if model.input_type != data_type:
        raise PermanentFailure(FailureReason.UNSUPPORTED_INPUT, "the weights are for another input type")
    try:
        with stages("inference"):
            prediction = model.predict([record])[0]
    except RecordFormatError as error:
        raise PermanentFailure(FailureReason.UNSUPPORTED_INPUT, str(error)) from None
    except Exception as error:  # noqa: BLE001 - any model failure on this input is reported, not fatal
        log.exception("model %d failed on request %d", request.model_id, job.request_id)
        raise PermanentFailure(FailureReason.MODEL_ERROR, type(error).__name__) from None
    return result_document(job.request_id, request.record_id, request.model_id, model_info, prediction)


def result_document(request_id: int, record_id: int, model_id: int, model_info: dict, prediction) -> dict:
    """What the requester reads (sealed to them; aidoc.crypto.result pads it to one length)."""
    return {
        "requestId": request_id,
        "recordId": record_id,
        "model": {"id": model_id, "name": model_info["name"], "version": model_info["version"]},
        "label": prediction.label,
        "probabilities": {label: round(float(p), 6) for label, p in prediction.probabilities.items()},
    }


def fetch_record(runtime, ciphertext_cid: str, ciphertext_hash: bytes, envelope_cid: str, data_type: int,
                 stages: Stages) -> HealthRecord:
    """Fetches, verifies, decrypts and parses a record; PermanentFailure with the reason otherwise."""
    limit = runtime.oracle.max_record_bytes
    try:
        with stages("ipfs"):
            ciphertext = runtime.store.cat(ciphertext_cid, max_size=limit)
    except ContentTooLarge:
        raise PermanentFailure(FailureReason.RECORD_TOO_LARGE, f"the record exceeds {limit} bytes") from None
    except (ContentMismatch, ContentNotFound) as error:
        raise PermanentFailure(FailureReason.CORRUPT_RECORD, str(error)) from None
    if hashlib.sha256(ciphertext).digest() != bytes(ciphertext_hash):
        raise PermanentFailure(FailureReason.CORRUPT_RECORD, "the ciphertext does not match its on-chain sha256")
    try:
        with stages("ipfs"):
            envelope = runtime.store.cat(envelope_cid, max_size=MAX_ENVELOPE_BYTES)
    except (ContentTooLarge, ContentMismatch, ContentNotFound) as error:
        raise PermanentFailure(FailureReason.WRONG_KEY, f"the key envelope is unusable: {error}") from None
    try:
        with stages("crypto"):
            sealed_type, plaintext = open_record(ciphertext, envelope, runtime.identity.encryption_key)
    except WrongKey as error:
        raise PermanentFailure(FailureReason.WRONG_KEY, str(error)) from None
    except CorruptCiphertext as error:
        raise PermanentFailure(FailureReason.CORRUPT_RECORD, str(error)) from None
    if sealed_type != data_type:
        raise PermanentFailure(FailureReason.CORRUPT_RECORD, "the ciphertext's data type differs from the chain's")
    try:
        record = decode_record(plaintext)
    except RecordFormatError as error:
        raise PermanentFailure(FailureReason.CORRUPT_RECORD, str(error)) from None
    if int(record.data_type) != data_type:
        raise PermanentFailure(FailureReason.CORRUPT_RECORD, "the record's content is of another data type")
    return record

