"""`aidoc train ...`: training without taking the data. `train job` is a compute-to-data job (a
node trains a model with DP-SGD on consented records and publishes it with its provenance);
`train federated` is a federated training across institutions, in rounds."""

from __future__ import annotations

import math
from typing import Optional

import typer

from aidoc.cli.params import (
    AccountOption,
    CommandGroup,
    JsonOption,
    checked_address,
    console,
    emit,
    hex32,
    parse_aid,
    positive,
    reader_for,
    session_for,
    show_aid,
    show_time,
    table,
    wei,
)
from aidoc.constants import JobStatus, TrainingStatus
from aidoc.errors import ConfigError

app = CommandGroup("Training without taking the data: compute-to-data jobs and federated rounds.")
job_app = CommandGroup("Compute-to-data jobs: a node trains on consented records with differential privacy.")
federated_app = CommandGroup("Federated trainings: institutions train locally, an aggregator averages each round.")
app.add_typer(job_app, name="job")
app.add_typer(federated_app, name="federated")

TimeoutOption = typer.Option(300.0, help="seconds to wait for each step before giving up")


def _fields(pairs: list[tuple[str, object]]):
    """A two-column table of a single item's fields."""
    shown = table("field", "value")
    for name, value in pairs:
        shown.add_row(name, str(value))
    return shown


def _number(value: float, option: str, low: float, high: float, advice: str) -> float:
    if not (math.isfinite(value) and low < value < high):
        raise ConfigError(f"{option} {value:g} is out of range; {advice}")
    return value


# ---------------------------------------------------------------- compute-to-data jobs


@job_app.command("open")
def job_open(model: int = typer.Option(..., help="the base model to train (an active panel model)"),
             node: str = typer.Option(..., help="the node that trains, where the records are readable"),
             epsilon: float = typer.Option(..., help="the largest privacy budget (epsilon) the training may spend per record"),
             delta: float = typer.Option(1e-5, help="the DP delta of the training (between 0 and 1)"),
             royalty: str = typer.Option(..., help="AID paid to a record's owner per record used"),
             fee: str = typer.Option(..., help="AID paid to the node on completion"),
             max_records: int = typer.Option(..., help="the most records the training may use"),
             days: float = typer.Option(7, help="days the node has to complete it"),
             account: Optional[str] = AccountOption) -> None:
    """Open a training job on MODEL by NODE, escrowing royalty x max-records + fee."""
    from aidoc.flow.training import open_training_job

    model, node = positive(model, "model"), checked_address(node, "node")
    _number(epsilon, "--epsilon", 0, 1e6, "give a privacy budget above 0, like 2")
    _number(delta, "--delta", 0, 1, "give a probability between 0 and 1, like 1e-5")
    _number(days, "--days", 0, 36_500, "give more than 0 days")
    if max_records < 1:
        raise ConfigError(f"--max-records {max_records} is out of range; give 1 or more")
    royalty_units, fee_units = parse_aid(royalty), parse_aid(fee)
    job_id = open_training_job(session_for(account), model, node, epsilon=epsilon, delta=delta,
                               royalty_per_record=royalty_units, node_fee=fee_units, max_records=max_records, days=days)
    console.print(f"training job {job_id} opened: {show_aid(royalty_units * max_records + fee_units)} escrowed")


@job_app.command("run")
def job_run(job: int, timeout: float = TimeoutOption, account: Optional[str] = AccountOption) -> None:
    """Hand JOB to its node's workers and wait until it completes or the node gives it up."""
    from aidoc.flow.training import run_training_job, training_job

    job = positive(job, "training job")
    session = reader_for(account)
    opened = training_job(session, job)
    if opened.status != JobStatus.OPEN:
        raise ConfigError(f"training job {job} is {opened.status.name.lower()}: there is nothing left to run")
    with console.status(f"waiting for node {opened.node}"):
        run_training_job(session, job, opened.node, timeout=timeout)
    done = training_job(session, job)
    if done.status == JobStatus.COMPLETED:
        console.print(f"training job {job}: completed: model {done.model_id}, {done.record_count} records, "
                      f"epsilon {done.epsilon_spent:g} spent per record")
    else:
        console.print(f"training job {job}: {done.status.name.lower()} (the escrow went back to the buyer)")


@job_app.command("show")
def job_show(job: int, account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """A training job's terms and status."""
    from aidoc.flow.training import training_job

    job = positive(job, "training job")
    info = training_job(reader_for(account), job)
    emit(as_json, lambda: {
        "id": info.job_id, "status": info.status.name.lower(), "buyer": info.buyer, "node": info.node,
        "base_model_id": info.base_model_id, "data_type": info.data_type.name.lower(), "epsilon": info.epsilon,
        "delta": info.delta, "royalty_per_record": wei(info.royalty_per_record), "node_fee": wei(info.node_fee),
        "max_records": info.max_records, "deadline": info.deadline, "record_count": info.record_count,
        "epsilon_spent": info.epsilon_spent, "model_id": info.model_id,
    }, lambda: _fields([
        ("job", info.job_id), ("status", info.status.name.lower()), ("buyer", info.buyer), ("node", info.node),
        ("base model", info.base_model_id), ("data type", info.data_type.name.lower()),
        ("epsilon (per record)", f"{info.epsilon:g}"), ("delta", f"{info.delta:g}"),
        ("royalty per record", show_aid(info.royalty_per_record)), ("node fee", show_aid(info.node_fee)),
        ("max records", info.max_records), ("deadline", show_time(info.deadline)), ("records used", info.record_count),
        ("epsilon spent", f"{info.epsilon_spent:g}"), ("trained model", info.model_id or "-"),
    ]))


@job_app.command("provenance")
def job_provenance(job: int, account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Where a completed job's model came from: the cohort commitment, the records used, the epsilon
    spent and the held-out accuracy."""
    from aidoc.flow.training import job_provenance as provenance_of

    job = positive(job, "training job")
    found = provenance_of(reader_for(account), job)
    emit(as_json, lambda: {
        "job_id": found.job_id, "model_id": found.model_id, "base_model_id": found.base_model_id,
        "buyer": found.buyer, "node": found.node, "cohort_commitment": hex32(found.cohort_commitment),
        "record_ids": list(found.record_ids), "records_used": len(found.record_ids),
        "epsilon_spent": found.epsilon_spent, "accuracy": found.accuracy, "held_out_count": found.held_out_count,
        "block": found.block, "transaction": found.transaction,
    }, lambda: _fields([
        ("job", found.job_id), ("trained model", found.model_id), ("base model", found.base_model_id),
        ("buyer", found.buyer), ("node", found.node), ("cohort commitment", hex32(found.cohort_commitment)),
        ("records used", f"{len(found.record_ids)}: {', '.join(map(str, found.record_ids))}"),
        ("epsilon spent (per record)", f"{found.epsilon_spent:g}"),
        ("held-out accuracy", f"{found.accuracy:.4f} on {found.held_out_count} records"),
        ("completed in", f"block {found.block}, transaction {found.transaction}"),
    ]))


# ---------------------------------------------------------------- federated trainings


@federated_app.command("open")
def federated_open(model: int = typer.Option(..., help="the base model every round starts from"),
                   participant: list[str] = typer.Option(..., "--participant",
                                                         help="an institution's node address (give each)"),
                   aggregator: str = typer.Option(..., help="the node that averages each round"),
                   reward: str = typer.Option(..., help="AID paid per participant's update"),
                   aggregator_fee: str = typer.Option(..., help="AID paid to the aggregator per round"),
                   rounds: int = typer.Option(..., help="the most rounds the training may take"),
                   target: float = typer.Option(0.95, help="the metric (0..1) that ends the training early"),
                   round_seconds: int = typer.Option(600, help="seconds each round is open for updates"),
                   account: Optional[str] = AccountOption) -> None:
    """Open a federated training of MODEL, escrowing every round's rewards and fees."""
    from aidoc.flow.training import open_federated_training

    model = positive(model, "model")
    participants = [checked_address(p, "participant") for p in participant]
    aggregator = checked_address(aggregator, "aggregator")
    _number(target, "--target", -1e-9, 1 + 1e-9, "give a metric from 0 to 1, like 0.95")
    if not 1 <= rounds < 2**16:
        raise ConfigError(f"--rounds {rounds} is out of range; give 1 to 65535")
    reward_units, fee_units = parse_aid(reward), parse_aid(aggregator_fee)
    training_id = open_federated_training(
        session_for(account), model, participants, aggregator, reward_per_update=reward_units,
        aggregator_fee=fee_units, max_rounds=rounds, target_accuracy=target, round_seconds=round_seconds)
    escrow = (len(participants) * reward_units + fee_units) * rounds
    console.print(f"federated training {training_id} opened: {show_aid(escrow)} escrowed")


@federated_app.command("run")
def federated_run(training: int, timeout: float = TimeoutOption, account: Optional[str] = AccountOption) -> None:
    """Drive TRAINING round by round (each participant's node trains, then the aggregator's node
    averages) until it finishes; prints each round."""
    from aidoc.flow.training import federated_training, run_federated_training

    training = positive(training, "federated training")
    session = reader_for(account)
    state = federated_training(session, training)
    if state.status != TrainingStatus.RUNNING:
        raise ConfigError(f"federated training {training} is {state.status.name.lower()}: there is nothing left to run")

    def on_round(number: int, info: dict) -> None:
        console.print(f"round {number}: aggregate {info['aggregateCid']}, metric {info['metricBps'] / 10_000:.4f} "
                      f"({info['updates']} updates)")

    run_federated_training(session, training, list(state.participants), state.aggregator, on_round=on_round,
                           timeout=timeout)
    done = federated_training(session, training)
    console.print(f"federated training {training}: {done.status.name.lower()} after round {done.current_round}"
                  + (f": model {done.model_id}" if done.model_id else ""))


@federated_app.command("show")
def federated_show(training: int, account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """A federated training's status, participants and rounds (each aggregate's CID and metric)."""
    from aidoc.flow.training import federated_training

    training = positive(training, "federated training")
    state = federated_training(reader_for(account), training)

    def rendered():
        summary = _fields([
            ("training", state.training_id), ("status", state.status.name.lower()),
            ("round", f"{state.current_round} of at most {state.max_rounds}"),
            ("target metric", f"{state.target_metric:.4f}"), ("sponsor", state.sponsor),
            ("aggregator", state.aggregator), ("participants", ", ".join(state.participants)),
            ("reward per update", show_aid(state.reward_per_update)),
            ("aggregator fee", show_aid(state.aggregator_fee)), ("escrow left", show_aid(state.escrow)),
            ("base model", state.base_model_id), ("trained model", state.model_id or "-"),
        ])
        rounds = table("round", "updates", "aggregate", "metric", "deadline")
        for r in state.rounds:
            rounds.add_row(str(r.number), str(r.updates), r.aggregate_cid or "-",
                           f"{r.metric:.4f}" if r.aggregate_cid else "-", show_time(r.deadline))
        return [summary, rounds]

    emit(as_json, lambda: {
        "id": state.training_id, "status": state.status.name.lower(), "current_round": state.current_round,
        "max_rounds": state.max_rounds, "target_metric": state.target_metric, "sponsor": state.sponsor,
        "aggregator": state.aggregator, "participants": list(state.participants),
        "reward_per_update": wei(state.reward_per_update), "aggregator_fee": wei(state.aggregator_fee),
        "escrow": wei(state.escrow), "round_duration": state.round_duration, "base_model_id": state.base_model_id,
        "model_id": state.model_id,
        "rounds": [{"round": r.number, "start_cid": r.start_cid, "start_sha256": hex32(r.start_sha256),
                    "aggregate_cid": r.aggregate_cid or None,
                    "aggregate_sha256": hex32(r.aggregate_sha256) if r.aggregate_cid else None,
                    "metric": r.metric if r.aggregate_cid else None, "updates": r.updates, "deadline": r.deadline}
                   for r in state.rounds],
    }, rendered)
