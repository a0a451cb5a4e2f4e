"""Training without taking the data, from the parties' side: a buyer opens a compute-to-data job
(TrainingMarket) and a sponsor a federated training (FederatedRounds), each escrowing its budget;
a patient caps the privacy budget her record may spend. The nodes do the work (workers/training.py)."""

from __future__ import annotations

import time

from aidoc.chain.contracts import call_struct
from aidoc.constants import DELTA_UNIT, EPSILON_MILLI, JobStatus
from aidoc.errors import AidocError
from aidoc.flow.session import Session


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
