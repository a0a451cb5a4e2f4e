"""Training without taking the data, from the parties' side: a buyer opens a compute-to-data job
(TrainingMarket) and a sponsor a federated training (FederatedRounds), each escrowing its budget;
a patient caps the privacy budget her record may spend. The nodes do the work (aidoc.workers.training);
until nodes watch for new jobs and rounds themselves, the buyer's or sponsor's driver here hands each
node its task (`run_training_job`, `run_federated_training`): each task reads the chain first, so a
duplicate or stale one does nothing."""

from __future__ import annotations

import hashlib
import time
from typing import Callable

from aidoc.chain.contracts import call_struct
from aidoc.constants import DELTA_UNIT, EPSILON_MILLI, JobStatus, TrainingStatus
from aidoc.errors import AidocError, WeightsHashMismatch
from aidoc.flow.session import Session
from aidoc.node.messages import AggregateRound, LocalRound, TrainJob, dispatch


class TrainingTimeout(AidocError):
    """A job or a round did not settle in the time given."""


def open_training_job(buyer: Session, base_model_id: int, node: str, *, epsilon: float, delta: float,
                      royalty_per_record: int, node_fee: int, max_records: int, days: float = 7) -> int:
    """Escrows royalty_per_record x max_records + node_fee and opens the job; returns its id."""
    contracts = buyer.marketplace
    budget = royalty_per_record * max_records + node_fee
    buyer.send(contracts.token.functions.approve(contracts.training.address, budget), "approve the training budget")
    deadline = contracts.w3.eth.get_block("latest")["timestamp"] + int(days * 86400)
    receipt = buyer.send(contracts.training.functions.openJob(
        base_model_id, node, round(epsilon * EPSILON_MILLI), round(delta * DELTA_UNIT), royalty_per_record, node_fee,
        max_records, deadline), f"openJob on model {base_model_id}")
    return int(buyer.event(receipt, contracts.training, "JobOpened")["jobId"])


def set_epsilon_limit(owner: Session, record_id: int, epsilon: float) -> None:
    """Caps the total privacy budget (epsilon) training jobs may spend on the owner's record."""
    owner.send(owner.marketplace.training.functions.setEpsilonLimit(record_id, round(epsilon * EPSILON_MILLI)),
               f"setEpsilonLimit of record {record_id}")


def wait_for_job(session: Session, job_id: int, timeout: float = 300, poll: float = 0.5) -> dict:
    """The job once it has left Open (its fields named as in ITrainingMarket.Job)."""
    deadline = time.monotonic() + timeout
    while True:
        job = call_struct(session.marketplace.training, "getJob", job_id)
        if job["status"] != JobStatus.OPEN:
            return job
        if time.monotonic() > deadline:
            raise TrainingTimeout(f"training job {job_id} is still open after {timeout:.0f} s")
        time.sleep(poll)


def open_federated_training(sponsor: Session, base_model_id: int, participants: list[str], aggregator: str, *,
                            reward_per_update: int, aggregator_fee: int, max_rounds: int, target_accuracy: float,
                            round_seconds: int = 600) -> int:
    """Escrows every round's rewards and opens a federated training; returns its id."""
    contracts = sponsor.marketplace
    budget = (len(participants) * reward_per_update + aggregator_fee) * max_rounds
    sponsor.send(contracts.token.functions.approve(contracts.rounds.address, budget), "approve the rounds' rewards")
    receipt = sponsor.send(contracts.rounds.functions.openTraining(
        base_model_id, participants, aggregator, reward_per_update, aggregator_fee, max_rounds,
        round(target_accuracy * 10_000), round_seconds), f"openTraining on model {base_model_id}")
    return int(sponsor.event(receipt, contracts.rounds, "TrainingOpened")["trainingId"])


def training_state(session: Session, training_id: int) -> dict:
    return call_struct(session.marketplace.rounds, "getTraining", training_id)


def round_info(session: Session, training_id: int, round_number: int) -> dict:
    return call_struct(session.marketplace.rounds, "getRound", training_id, round_number)


def run_training_job(buyer: Session, job_id: int, node: str, timeout: float = 300) -> dict:
    """Hands job `job_id` to its node's workers (on the node's queue of the buyer's broker) and
    waits until it has left Open; returns the job."""
    dispatch(TrainJob(job_id), node, buyer.services.redis_url)
    return wait_for_job(buyer, job_id, timeout=timeout)


def run_federated_training(sponsor: Session, training_id: int, participants: list[str], aggregator: str, *,
                           on_round: Callable[[int, dict], None] | None = None, timeout: float = 300) -> dict:
    """Drives a federated training round by round until it stops running: each round, every
    participant's node trains and submits its update, then the aggregator's node posts FedAvg.
    `on_round(round_number, round_info)` hears of each finished round. Returns the final training."""
    broker = sponsor.services.redis_url
    rounds = sponsor.marketplace.rounds
    while True:
        state = training_state(sponsor, training_id)
        if state["status"] != TrainingStatus.RUNNING:
            return state
        round_number = state["currentRound"]
        for participant in participants:
            dispatch(LocalRound(training_id, round_number), participant, broker)
        _wait(lambda: all(call_struct(rounds, "getUpdate", training_id, round_number, p)["numSamples"]
                          for p in participants), f"the updates of round {round_number}", timeout)
        dispatch(AggregateRound(training_id, round_number), aggregator, broker)

        def moved_on() -> bool:
            now = training_state(sponsor, training_id)
            return now["currentRound"] != round_number or now["status"] != TrainingStatus.RUNNING

        _wait(moved_on, f"the aggregate of round {round_number}", timeout)
        if on_round is not None:
            on_round(round_number, round_info(sponsor, training_id, round_number))


def model_weights(session: Session, model_id: int) -> bytes:
    """A registered model's weights from IPFS, checked against their on-chain sha256."""
    model = call_struct(session.marketplace.models, "getModel", model_id)
    weights = session.store.cat(model["weightsCid"])
    if hashlib.sha256(weights).digest() != bytes(model["weightsSha256"]):
        raise WeightsHashMismatch(f"the weights of model {model_id} do not match their on-chain sha256")
    return weights


def _wait(done: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TrainingTimeout(f"{what} did not arrive within {timeout:.0f} s; see the nodes' worker logs")
        time.sleep(0.5)
