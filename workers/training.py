"""Training tasks, on a node's own queue: a compute-to-data job (DP-SGD on the consented cohort,
TrainingMarket) and the two sides of a federated round (an institution's local update and the
aggregator's FedAvg, FederatedRounds).

Each reads the chain first (the source of truth: a task delivered twice, or for a job no longer
open, does nothing), keeps plaintext and per-record gradients in this process's memory, and hands
its transaction to the node's sender (aidoc.node.messages.ContractCall), which alone signs with the node's
key; the weights it names go to IPFS once that transaction is mined."""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from aidoc.chain.contracts import call_struct
from aidoc.constants import DELTA_UNIT, EPSILON_MILLI, FailureReason, JobStatus
from aidoc.models.artifacts import load_model, save_model
from aidoc.models.panel import PanelMLP
from aidoc.node.messages import AGGREGATE_TASK, LOCAL_ROUND_TASK, TRAIN_JOB_TASK, ContractCall
from aidoc.node.retry import TRANSIENT_ERRORS
from aidoc.node.stages import Stages
from aidoc.records import PANEL_OUTCOMES
from aidoc.storage import compute_cid
from aidoc.training.cohort import (
    MIN_COHORT,
    CohortError,
    CohortMember,
    CohortOpening,
    held_out_mask,
    is_current_round,
    local_dataset,
    round_updates,
    usable_cohort,
)
from aidoc.training.federated import accuracy, fedavg, local_update
from aidoc.training.private import train_private
from aidoc.workers.app import app
from aidoc.workers.diagnosis import PermanentFailure, fetch_record
from aidoc.workers.runtime import worker_state

log = logging.getLogger(__name__)

COMPLETE_JOB_GAS_BASE, COMPLETE_JOB_GAS_PER_RECORD = 500_000, 85_000  # measured: 413k @2, 75k/record @128
ROUND_CALL_GAS = 550_000  # measured: submitUpdate 152k, postAggregate up to 443k (finishing)


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
        reason = FailureReason.UNSUPPORTED_INPUT if isinstance(error, CohortError) else FailureReason.INTERNAL_ERROR
        log.exception("job %d cannot be completed; abandoning it (%s)", job_id, reason.name)
        runtime.outbox.push_call(ContractCall("training", "abandonJob", (job_id, int(reason)), ROUND_CALL_GAS,
                                              f"abandonJob of job {job_id}"))
        return {"job": job_id, "abandoned": reason.name}


def _train_job(state, job_id: int, job: dict) -> dict:
    runtime = state.runtime
    contracts = runtime.marketplace
    epsilon = job["epsilonMilli"] / EPSILON_MILLI
    cohort = usable_cohort(contracts, job)
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
    if len(used) < MIN_COHORT:
        raise CohortError(f"job {job_id}: only {len(used)} usable records; the buyer may cancel after the "
                                "deadline for a refund")
    x, y = np.array(features), np.array(targets)
    held_out = held_out_mask(len(used), job_id)
    base = state.models.get(*_weights_of(contracts, job["baseModelId"])).network
    if not isinstance(base, PanelMLP):
        raise CohortError(f"job {job_id}: the base model is not a panel MLP")
    trained = train_private(x[~held_out], y[~held_out], epsilon=epsilon, delta=job["delta"] / DELTA_UNIT,
                            initial=base, seed=job_id)
    accuracy_bps = round(accuracy(trained.network, x[held_out], y[held_out]) * 10_000)
    weights = save_model(trained.network)
    spent_milli = max(1, min(job["epsilonMilli"], int(np.ceil(trained.epsilon * EPSILON_MILLI))))
    hashes = {record_id: bytes(info["ciphertextHash"]) for record_id, info in cohort}
    opening = CohortOpening.new(job_id, [CohortMember(r, hashes[r], bool(h)) for r, h in zip(used, held_out)])
    commitment = opening.commitment()
    # The opening stays with the node, for an auditor (aidoc.training.cohort.verify_cohort).
    opening.save(runtime.services.run_dir / "cohorts" / runtime.address.lower())
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
    if not is_current_round(training, round_number):
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
    if not is_current_round(training, round_number):
        return {"training": training_id, "round": round_number, "skipped": "not the current round"}
    updates = round_updates(runtime.marketplace, runtime.store, training_id, round_number,
                            runtime.oracle.max_weights_bytes)
    if not updates:
        raise CohortError(f"training {training_id} round {round_number}: no update to aggregate yet")
    aggregate = fedavg(updates)
    features, targets = local_dataset(runtime.oracle.local_dataset)
    metric_bps = round(accuracy(load_model(aggregate, None).network, features, targets) * 10_000)
    runtime.outbox.push_call(ContractCall(
        "rounds", "postAggregate",
        (training_id, round_number, compute_cid(aggregate), hashlib.sha256(aggregate).digest(), metric_bps),
        ROUND_CALL_GAS, f"postAggregate of training {training_id} round {round_number}", publish=aggregate))
    return {"training": training_id, "round": round_number, "updates": len(updates), "metric_bps": metric_bps}


def _round_start(state, rounds, training_id: int, round_number: int) -> PanelMLP:
    info = call_struct(rounds, "getRound", training_id, round_number)
    network = state.models.get(info["startCid"], bytes(info["startSha256"])).network
    if not isinstance(network, PanelMLP):
        raise CohortError(f"training {training_id}: the starting model is not a panel MLP")
    return network
