"""Training without taking the data, from the parties' side: a buyer opens a compute-to-data job
(TrainingMarket) and a sponsor a federated training (FederatedRounds), each escrowing its budget;
a patient caps the privacy budget her record may spend. The nodes do the work (aidoc.workers.training);
until nodes watch for new jobs and rounds themselves, the buyer's or sponsor's driver here hands each
node its task (`run_training_job`, `run_federated_training`): each task reads the chain first, so a
duplicate or stale one does nothing."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

from aidoc.chain.contracts import call_batch, call_struct, chain_time_in
from aidoc.constants import DELTA_UNIT, EPSILON_MILLI, DataType, JobStatus, TrainingStatus
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
    deadline = chain_time_in(contracts.w3, days)
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


# ---------------------------------------------------------------- reading jobs and trainings back


class UnknownTraining(AidocError):
    """No training job, or no federated training, has this id."""


class NoProvenance(AidocError):
    """A training job that has not completed has no trained model and no cohort yet."""


@dataclass(frozen=True)
class TrainingJob:
    """ITrainingMarket.Job in Python's units: amounts in AID wei units, epsilon and delta as numbers."""

    job_id: int
    buyer: str
    node: str
    base_model_id: int
    data_type: DataType
    status: JobStatus
    epsilon: float  # the most the training may spend per record
    delta: float
    royalty_per_record: int
    node_fee: int
    max_records: int
    deadline: int  # Unix seconds
    record_count: int  # set on completion
    epsilon_spent: float  # per record, set on completion
    model_id: int  # the trained model, 0 until completion


@dataclass(frozen=True)
class JobProvenance:
    """Where a completed job's model came from (its JobCompleted and RecordUsedForTraining events):
    the node's commitment to the cohort it trained on, the records used, the privacy budget each
    spent, and how the model scored on the held-out records."""

    job_id: int
    model_id: int
    base_model_id: int
    buyer: str
    node: str
    cohort_commitment: bytes
    record_ids: tuple[int, ...]
    epsilon_spent: float
    accuracy: float  # on the held-out records, 0..1
    held_out_count: int
    block: int
    transaction: str


@dataclass(frozen=True)
class FederatedRound:
    """IFederatedRounds.getRound: the model a round started from and its aggregate (empty until posted)."""

    number: int
    start_cid: str
    start_sha256: bytes
    aggregate_cid: str
    aggregate_sha256: bytes
    metric: float  # the aggregate's metric on the aggregator's validation data, 0..1
    updates: int
    deadline: int  # Unix seconds


@dataclass(frozen=True)
class FederatedTraining:
    """IFederatedRounds.Training with its participants and every round so far."""

    training_id: int
    sponsor: str
    aggregator: str
    participants: tuple[str, ...]
    status: TrainingStatus
    current_round: int
    max_rounds: int
    target_metric: float
    reward_per_update: int
    aggregator_fee: int
    escrow: int  # AID still held for the training
    round_duration: int  # seconds
    base_model_id: int
    model_id: int  # the trained model, 0 until the training finished
    rounds: tuple[FederatedRound, ...]


def training_job(session: Session, job_id: int) -> TrainingJob:
    """Job `job_id` as the chain holds it now; UnknownTraining if no job has that id."""
    training = session.marketplace.training
    count = training.functions.jobCount().call()
    if not 1 <= job_id <= count:
        raise UnknownTraining(f"there is no training job {job_id}; {count} jobs were opened, counted from 1")
    job = call_struct(training, "getJob", job_id)
    return TrainingJob(
        job_id=job_id, buyer=job["buyer"], node=job["node"], base_model_id=job["baseModelId"],
        data_type=DataType(job["dataType"]), status=JobStatus(job["status"]), epsilon=job["epsilonMilli"] / EPSILON_MILLI,
        delta=job["delta"] / DELTA_UNIT, royalty_per_record=job["royaltyPerRecord"], node_fee=job["nodeFee"],
        max_records=job["maxRecords"], deadline=job["deadline"], record_count=job["recordCount"],
        epsilon_spent=job["epsilonSpentMilli"] / EPSILON_MILLI, model_id=job["modelId"],
    )


def job_provenance(session: Session, job_id: int) -> JobProvenance:
    """The provenance of completed job `job_id`, from its events; NoProvenance unless it completed."""
    job = training_job(session, job_id)
    if job.status != JobStatus.COMPLETED:
        raise NoProvenance(f"training job {job_id} is {job.status.name.lower()}, not completed: it has no trained "
                           "model and no cohort")
    training = session.marketplace.training
    start = session.marketplace.deployment.block_number
    completed = training.events.JobCompleted().get_logs(from_block=start, argument_filters={"jobId": job_id})
    if not completed:
        raise NoProvenance(f"training job {job_id} is completed but its JobCompleted event is not on this chain's "
                           f"logs from block {start}")
    used = training.events.RecordUsedForTraining().get_logs(from_block=start, argument_filters={"jobId": job_id})
    event = completed[0]
    args = event["args"]
    return JobProvenance(
        job_id=job_id, model_id=args["modelId"], base_model_id=job.base_model_id, buyer=job.buyer, node=job.node,
        cohort_commitment=bytes(args["cohortCommitment"]),
        record_ids=tuple(sorted(int(e["args"]["recordId"]) for e in used)),
        epsilon_spent=args["epsilonSpentMilli"] / EPSILON_MILLI, accuracy=args["accuracyBps"] / 10_000,
        held_out_count=args["heldOutCount"], block=event["blockNumber"],
        transaction="0x" + bytes(event["transactionHash"]).hex(),
    )


def federated_training(session: Session, training_id: int) -> FederatedTraining:
    """Federated training `training_id` with its participants and rounds; UnknownTraining if no
    training has that id."""
    rounds = session.marketplace.rounds
    count = rounds.functions.trainingCount().call()
    if not 1 <= training_id <= count:
        raise UnknownTraining(f"there is no federated training {training_id}; {count} were opened, counted from 1")
    state, participants = call_batch(rounds.w3, [(rounds, "getTraining", (training_id,)),
                                                 (rounds, "participantsOf", (training_id,))])
    numbers = range(1, state["currentRound"] + 1)
    infos = call_batch(rounds.w3, [(rounds, "getRound", (training_id, n)) for n in numbers]) if numbers else []
    return FederatedTraining(
        training_id=training_id, sponsor=state["sponsor"], aggregator=state["aggregator"],
        participants=tuple(participants["out0"]), status=TrainingStatus(state["status"]),
        current_round=state["currentRound"], max_rounds=state["maxRounds"],
        target_metric=state["targetMetricBps"] / 10_000, reward_per_update=state["rewardPerUpdate"],
        aggregator_fee=state["aggregatorFee"], escrow=state["escrow"], round_duration=state["roundDuration"],
        base_model_id=state["baseModelId"], model_id=state["modelId"],
        rounds=tuple(FederatedRound(
            number=n, start_cid=info["startCid"], start_sha256=bytes(info["startSha256"]),
            aggregate_cid=info["aggregateCid"], aggregate_sha256=bytes(info["aggregateSha256"]),
            metric=info["metricBps"] / 10_000, updates=info["updates"], deadline=info["deadline"],
        ) for n, info in zip(numbers, infos)),
    )
