"""Training tasks, on a node's own queue: a compute-to-data job (DP-SGD on the consented cohort,
TrainingMarket) and the two sides of a federated round (an institution's local update and the
aggregator's FedAvg, FederatedRounds).

Each reads the chain first (the source of truth: a task delivered twice, or for a job no longer
open, does nothing), keeps plaintext and per-record gradients in this process's memory, and hands
its transaction to the node's sender (aidoc.outbox.ContractCall), which alone signs with the node's
key; the weights it names go to IPFS once that transaction is mined."""

from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path

import numpy as np
from eth_utils import keccak

from aidoc.chain.contracts import call_batch, call_struct, decode_event, event_topic, rpc_request
from aidoc.constants import DELTA_UNIT, EPSILON_MILLI, FailureReason, JobStatus, Purpose, TrainingStatus
from aidoc.errors import AidocError
from aidoc.models.artifacts import load_model, save_model
from aidoc.models.panel import PanelMLP
from aidoc.outbox import ContractCall
from aidoc.records import PANEL_OUTCOMES
from aidoc.storage import compute_cid
from aidoc.timing import Stages
from aidoc.training.federated import accuracy, fedavg, local_update
from aidoc.training.private import train_private
from aidoc.transient import TRANSIENT_ERRORS
from workers.app import AGGREGATE_TASK, LOCAL_ROUND_TASK, TRAIN_JOB_TASK, app
from workers.diagnosis import PermanentFailure, fetch_record
from workers.runtime import worker_state

log = logging.getLogger(__name__)

HELD_OUT_FRACTION = 0.2
COMPLETE_JOB_GAS_BASE, COMPLETE_JOB_GAS_PER_RECORD = 500_000, 85_000  # measured: 413k @2, 75k/record @128
ROUND_CALL_GAS = 550_000  # measured: submitUpdate 152k, postAggregate up to 443k (finishing)


class TrainingTaskError(AidocError):
    """A training task cannot go on (no usable cohort, an update that does not match its hash)."""


# ---------------------------------------------------------------- compute-to-data


@app.task(name=TRAIN_JOB_TASK, acks_late=True, reject_on_worker_lost=True)
def train_job(job_id: int) -> dict:
    state = worker_state()
    runtime = state.runtime
    job = call_struct(runtime.marketplace.training, "getJob", job_id)
    if job["status"] != JobStatus.OPEN or job["node"].lower() != runtime.address.lower():
        return {"job": job_id, "skipped": "not open for this node"}
    try:
        return _train_job(state, job_id, job)
    except TRANSIENT_ERRORS:
        raise  # IPFS or the RPC endpoint down: Celery redelivers after the visibility timeout
    except Exception as error:  # noqa: BLE001 - no usable cohort, or a bug: give the job up, which refunds
        reason = FailureReason.UNSUPPORTED_INPUT if isinstance(error, TrainingTaskError) else FailureReason.INTERNAL_ERROR
        log.exception("job %d cannot be completed; abandoning it (%s)", job_id, reason.name)
        runtime.outbox.push_call(ContractCall("training", "abandonJob", (job_id, int(reason)), ROUND_CALL_GAS,
                                              f"abandonJob of job {job_id}"))
        return {"job": job_id, "abandoned": reason.name}


def _train_job(state, job_id: int, job: dict) -> dict:
    runtime = state.runtime
    contracts = runtime.marketplace
    epsilon = job["epsilonMilli"] / EPSILON_MILLI
    cohort = usable_cohort(runtime, job)
    features, targets, used = [], [], []
    for record_id, info in cohort:
        try:
            record = fetch_record(runtime, info["ciphertextCid"], info["ciphertextHash"], info["keyEnvelopeCid"],
                                  info["dataType"], Stages())
        except PermanentFailure as failure:
            log.warning("job %d: record %d left out (%s)", job_id, record_id, failure.reason.name)
            continue
        if record.outcome is None:  # nothing to learn from without the confirmed outcome
            continue
        features.append(record.panel_vector())
        targets.append(PANEL_OUTCOMES.index(record.outcome))
        used.append(record_id)
        if len(used) == job["maxRecords"]:
            break
    if len(used) < 4:
        raise TrainingTaskError(f"job {job_id}: only {len(used)} usable records; the buyer may cancel after the "
                                "deadline for a refund")
    x, y = np.array(features), np.array(targets)
    held_out = _held_out_mask(len(used), job_id)
    base = state.models.get(*_weights_of(contracts, job["baseModelId"])).network
    if not isinstance(base, PanelMLP):
        raise TrainingTaskError(f"job {job_id}: the base model is not a panel MLP")
    trained = train_private(x[~held_out], y[~held_out], epsilon=epsilon, delta=job["delta"] / DELTA_UNIT,
                            initial=base, seed=job_id)
    accuracy_bps = round(accuracy(trained.network, x[held_out], y[held_out]) * 10_000)
    weights = save_model(trained.network)
    spent_milli = max(1, min(job["epsilonMilli"], int(np.ceil(trained.epsilon * EPSILON_MILLI))))
    # The cohort commitment binds the records, their ciphertexts and the held-out split, salted:
    # an auditor given the salt can check exactly what was trained on and what was held out.
    salt = secrets.token_bytes(32)
    hashes = {record_id: info["ciphertextHash"] for record_id, info in cohort}
    commitment = keccak(b"".join([job_id.to_bytes(32, "big"), salt]
                                 + [r.to_bytes(32, "big") + bytes(hashes[r]) + bytes([int(h)]) for r, h in
                                    zip(used, held_out)]))
    order = sorted(used)
    runtime.outbox.push_call(ContractCall(
        "training", "completeJob",
        (job_id, order, commitment, spent_milli, compute_cid(weights), hashlib.sha256(weights).digest(),
         accuracy_bps, int(held_out.sum())),
        COMPLETE_JOB_GAS_BASE + COMPLETE_JOB_GAS_PER_RECORD * len(order), f"completeJob of job {job_id}",
        publish=weights))
    log.info("job %d: trained on %d records (%d held out), epsilon %.3f of %.3f, accuracy %.4f", job_id, len(used),
             int(held_out.sum()), trained.epsilon, epsilon, accuracy_bps / 10_000)
    return {"job": job_id, "records": len(used), "epsilon": trained.epsilon, "accuracy_bps": accuracy_bps}


def usable_cohort(runtime, job: dict) -> list[tuple[int, dict]]:
    """Records of the job's data type whose owners granted TRAINING to the buyer, that this node can
    open, and whose epsilon budget has room for this job: by record id, up to twice maxRecords
    (some may turn out unreadable or unlabelled)."""
    contracts = runtime.marketplace
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


def _held_out_mask(count: int, seed: int) -> np.ndarray:
    mask = np.zeros(count, dtype=bool)
    chosen = np.random.default_rng(seed).choice(count, size=max(1, round(count * HELD_OUT_FRACTION)), replace=False)
    mask[chosen] = True
    return mask


def _weights_of(contracts, model_id: int) -> tuple[str, bytes]:
    model = call_struct(contracts.models, "getModel", model_id)
    return model["weightsCid"], bytes(model["weightsSha256"])


# ---------------------------------------------------------------- federated rounds


@app.task(name=LOCAL_ROUND_TASK, acks_late=True, reject_on_worker_lost=True)
def local_round(training_id: int, round_number: int) -> dict:
    """An institution's update for the round: the round's starting model trained on the panels only
    this institution holds (AIDOC_LOCAL_DATASET), its weights on IPFS, submitUpdate by its sender."""
    state = worker_state()
    runtime = state.runtime
    rounds = runtime.marketplace.rounds
    training = call_struct(rounds, "getTraining", training_id)
    if training["status"] != TrainingStatus.RUNNING or training["currentRound"] != round_number:
        return {"training": training_id, "round": round_number, "skipped": "not the current round"}
    if call_struct(rounds, "getUpdate", training_id, round_number, runtime.address)["numSamples"]:
        return {"training": training_id, "round": round_number, "skipped": "already submitted"}
    start = _round_start(state, rounds, training_id, round_number)
    features, targets = local_dataset(runtime.oracle.local_dataset)
    update = save_model(local_update(start, features, targets, seed=training_id * 1000 + round_number))
    runtime.outbox.push_call(ContractCall(
        "rounds", "submitUpdate",
        (training_id, round_number, compute_cid(update), hashlib.sha256(update).digest(), len(targets)),
        ROUND_CALL_GAS, f"submitUpdate of training {training_id} round {round_number}", publish=update))
    return {"training": training_id, "round": round_number, "samples": len(targets)}


@app.task(name=AGGREGATE_TASK, acks_late=True, reject_on_worker_lost=True)
def aggregate_round(training_id: int, round_number: int) -> dict:
    """The aggregator's FedAvg of the round's updates (each checked against its on-chain sha256),
    scored on the aggregator's own held-out panels (AIDOC_LOCAL_DATASET), posted by its sender."""
    state = worker_state()
    runtime = state.runtime
    rounds = runtime.marketplace.rounds
    training = call_struct(rounds, "getTraining", training_id)
    if training["status"] != TrainingStatus.RUNNING or training["currentRound"] != round_number:
        return {"training": training_id, "round": round_number, "skipped": "not the current round"}
    updates = round_updates(runtime.marketplace, runtime.store, training_id, round_number,
                            runtime.oracle.max_weights_bytes)
    if not updates:
        raise TrainingTaskError(f"training {training_id} round {round_number}: no update to aggregate yet")
    aggregate = fedavg(updates)
    features, targets = local_dataset(runtime.oracle.local_dataset)
    metric_bps = round(accuracy(load_model(aggregate, None).network, features, targets) * 10_000)
    runtime.outbox.push_call(ContractCall(
        "rounds", "postAggregate",
        (training_id, round_number, compute_cid(aggregate), hashlib.sha256(aggregate).digest(), metric_bps),
        ROUND_CALL_GAS, f"postAggregate of training {training_id} round {round_number}", publish=aggregate))
    return {"training": training_id, "round": round_number, "updates": len(updates), "metric_bps": metric_bps}


def round_updates(marketplace, store, training_id: int, round_number: int,
                  max_size: int = 256 * 1024 * 1024) -> list[tuple[bytes, int]]:
    """The round's submitted updates in the participants' on-chain order, each verified against its
    on-chain sha256: what the aggregator averages, and what anyone re-averages to check it."""
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
            raise TrainingTaskError(f"the update at {answer['updateCid']} does not match its on-chain sha256")
        updates.append((weights, int(answer["numSamples"])))
    return updates


def _round_start(state, rounds, training_id: int, round_number: int) -> PanelMLP:
    info = call_struct(rounds, "getRound", training_id, round_number)
    network = state.models.get(info["startCid"], bytes(info["startSha256"])).network
    if not isinstance(network, PanelMLP):
        raise TrainingTaskError(f"training {training_id}: the starting model is not a panel MLP")
    return network


def local_dataset(path: str) -> tuple[np.ndarray, np.ndarray]:
    """An institution's own labelled panels: an .npz of `features` (n x 30) and `targets` (0 malignant,
    1 benign), read without pickle."""
    if not path:
        raise TrainingTaskError("this node has no local dataset: set AIDOC_LOCAL_DATASET to its .npz of panels")
    with np.load(Path(path), allow_pickle=False) as data:
        return np.asarray(data["features"], dtype=np.float64), np.asarray(data["targets"], dtype=np.int64)
