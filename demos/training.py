"""`make demo-train` (`python -m demos.training`): training without taking the data, on a local stack.

Institutions each run a node (Celery worker on its own queue, and the sender that alone signs
with its key) over breast-cancer panels only they hold, split non-IID. A sponsor opens a federated
training on FederatedRounds; each round, every institution's worker trains the round's model on its
own panels and submits the update (CID, sha256, sample count), and the aggregator's worker computes
FedAvg, scores it and posts it; the contract pays each update and starts the next round until the
target or the round limit. Then patients put labelled panels on IPFS, encrypted to a compute node,
and grant a researcher the TRAINING purpose; the researcher buys two compute-to-data jobs with
DP-SGD at two epsilons; the node trains inside its worker and publishes only the model and its
metrics; each patient is paid a royalty per job and sees the use in her audit trail.

It prints the held-out accuracy of each institution's local-only model, the federated model, a
centrally trained upper bound and the two DP models, the royalties paid and one audit trail."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from aidoc.chain.contracts import chain_time_in
from aidoc.config import AID, ENV_PREFIX
from aidoc.constants import EPSILON_MILLI, DataType, JobStatus, Purpose, TrainingStatus
from aidoc.errors import AidocError, exit_on_user_error
from aidoc.identity import Identity
from demos.marketplace import aid, demo_stack, show_audit, wide_console

STAKE, NODE_FEE, PRICE = 1_000 * AID, 2 * AID, 5 * AID
REWARD_PER_UPDATE, AGGREGATOR_FEE = AID, 2 * AID
ROYALTY_PER_RECORD = AID // 2
MAX_ROUNDS, TARGET_ACCURACY = 8, 0.975  # scored on the aggregator's 40 validation panels
DP_EPSILONS = (1.0, 8.0)
DP_DELTA = 1e-5
DP_PATIENTS = 80  # patients who lend a labelled panel to the compute-to-data jobs
CAPPED_EPSILON = 5.0  # one patient caps her record's budget: it sits out the second job


@dataclass
class Party:
    name: str
    identity: Identity
    session: object


def run_training_demo(console: Console, institutions: int = 4) -> None:
    from aidoc.training.data import federated_split

    if not 3 <= institutions <= 5:
        raise AidocError("the training demo runs 3 to 5 institutions")
    # Strongly non-IID (Dirichlet alpha 0.3): some institutions see almost only one class.
    split = federated_split(institutions, alpha=0.3, seed=5)
    with demo_stack(console, "demo-train") as (services, stack):
        run_training_flow(console, services, stack, split)
    console.print("stack stopped")


def run_training_flow(console: Console, services, stack, split) -> None:
    from aidoc.flow.faucet import fund
    from aidoc.flow.node import register_node
    from aidoc.flow.session import Session
    from aidoc.models.artifacts import save_model
    from aidoc.stack.local import start_node
    from aidoc.training.federated import accuracy, base_model, local_update

    first = Session(Identity.generate(), services)
    marketplace, store = first.marketplace, first.store

    def party(name: str, aid_units: int = 0, identity: Identity | None = None) -> Party:
        identity = identity or Identity.generate()
        fund(marketplace, identity.address, eth=10 * AID, aid=aid_units)
        return Party(name, identity, Session(identity, services, marketplace, store))

    provider = party("provider", identity=first.identity)
    sponsor = party("sponsor", 1_000 * AID)
    institutions = [party(i.name, STAKE) for i in split.institutions]
    aggregator = party("aggregator", STAKE)  # also the compute node of the DP jobs
    run_dir = Path(services.run_dir)

    console.rule("2. the base model, the institutions' nodes")
    base = base_model(split.public_features)
    base_path = run_dir / "base-model.safetensors"
    base_path.write_bytes(save_model(base))
    from aidoc.flow.model import register_model

    base_id = register_model(provider.session, base_path, "breast-cancer-panel-mlp", DataType.LAB_PANEL, PRICE)
    console.print(f"provider registered the untrained base model {base_id} (standardized on "
                  f"{len(split.public_features)} public reference panels)")
    for member, data in [*zip(institutions, split.institutions), (aggregator, None)]:
        register_node(member.session, STAKE, NODE_FEE, [DataType.LAB_PANEL], gpu=False)
        dataset = run_dir / f"{member.name}.npz"
        # The aggregator scores each aggregate on the provider's public panels, never on the test split.
        features, targets = (data.features, data.targets) if data else (split.public_features, split.public_targets)
        np.savez(dataset, features=features, targets=targets)
        for process in start_node(services, member.identity, 1, run_dir=run_dir / member.name,
                                  settings={ENV_PREFIX + "LOCAL_DATASET": str(dataset)}):
            stack.callback(process.stop)
        held = (f"{len(data.targets)} panels, {data.malignant_share:.0%} malignant" if data
                else f"{len(split.public_targets)} validation panels")
        console.print(f"{member.name}: node {member.identity.address[:10]}… staked, worker and sender up ({held})")

    console.rule("3. each institution alone, and all the data in one place")
    rows = []
    for data in split.institutions:
        alone = local_update(base, data.features, data.targets, epochs=60, seed=1)
        rows.append((f"{data.name} alone ({len(data.targets)} panels)",
                     accuracy(alone, split.test_features, split.test_targets)))
    pooled_x, pooled_y = split.pooled()
    central = accuracy(local_update(base, pooled_x, pooled_y, epochs=60, seed=1), split.test_features,
                       split.test_targets)

    console.rule("4. federated rounds (FederatedRounds, FedAvg on the aggregator's worker)")
    federated, rounds = run_federated(console, sponsor, institutions, aggregator, base_id)
    fed_accuracy = accuracy(federated, split.test_features, split.test_targets)

    console.rule("5. compute-to-data with differential privacy (TrainingMarket, DP-SGD in the node's worker)")
    dp_rows, patients, first_record = run_dp_jobs(console, party, aggregator, base_id, split)

    console.rule("6. held-out accuracy (the same 30% test split for every model)")
    table = Table("model", "accuracy")
    for name, value in rows:
        table.add_row(name, f"{value:.3f}")
    table.add_row(f"federated, {rounds} round(s) over {len(institutions)} institutions", f"{fed_accuracy:.3f}")
    table.add_row(f"central upper bound ({len(pooled_y)} panels pooled)", f"{central:.3f}")
    for name, value in dp_rows:
        table.add_row(name, f"{value:.3f}")
    console.print(table)

    console.rule("7. royalties and a patient's audit trail")
    paid = {p.identity.address: marketplace.token.functions.balanceOf(p.identity.address).call() for p in patients}
    total = sum(paid.values())
    console.print(f"{sum(1 for v in paid.values() if v)} patients received {aid(total)} in royalties "
                  f"({aid(ROYALTY_PER_RECORD)} per record per job); patient 1 got {aid(paid[patients[0].identity.address])}")
    show_audit(console, patients[0].session, first_record)


def run_federated(console: Console, sponsor: Party, institutions: list[Party], aggregator: Party, base_id: int):
    from aidoc.flow.training import model_weights, open_federated_training, run_federated_training
    from aidoc.models.artifacts import load_model

    training_id = open_federated_training(
        sponsor.session, base_id, [i.identity.address for i in institutions], aggregator.identity.address,
        reward_per_update=REWARD_PER_UPDATE, aggregator_fee=AGGREGATOR_FEE, max_rounds=MAX_ROUNDS,
        target_accuracy=TARGET_ACCURACY)
    console.print(f"sponsor opened training {training_id}: up to {MAX_ROUNDS} rounds, target accuracy "
                  f"{TARGET_ACCURACY:.1%}, {aid(REWARD_PER_UPDATE)} per update")

    def report(round_number: int, info: dict) -> None:
        console.print(f"round {round_number}: {len(institutions)} updates, aggregate {info['aggregateCid'][:16]}… "
                      f"scored {info['metricBps'] / 100:.2f}% by the aggregator")

    state = run_federated_training(sponsor.session, training_id, [i.identity.address for i in institutions],
                                   aggregator.identity.address, on_round=report)
    if state["status"] != TrainingStatus.FINISHED:
        raise AidocError(f"training {training_id} ended {TrainingStatus(state['status']).name}, not finished")
    weights = model_weights(sponsor.session, state["modelId"])
    console.print(f"training finished after {state['currentRound']} round(s); the aggregate is model {state['modelId']}")
    return load_model(weights, None).network, state["currentRound"]


def run_dp_jobs(console: Console, party, node: Party, base_id: int, split):
    from aidoc.flow.consent import grant_consent
    from aidoc.flow.record import add_record
    from aidoc.flow.training import model_weights, open_training_job, run_training_job, set_epsilon_limit
    from aidoc.models.artifacts import load_model
    from aidoc.training.federated import accuracy

    researcher = party("researcher", 1_000 * AID)
    marketplace = researcher.session.marketplace
    everyone = [record for institution in split.institutions for record in institution.records()]
    pool = [everyone[i] for i in np.random.default_rng(0).permutation(len(everyone))[:DP_PATIENTS]]
    expiry = chain_time_in(marketplace.w3, 90)
    patients, first_record = [], 0
    for index, record in enumerate(pool):
        patient = party(f"patient-{index + 1}")
        record_id = add_record(patient.session, record, [node.identity.address], 0)
        grant_consent(patient.session, record_id, researcher.identity.address, Purpose.TRAINING, expiry)
        if index == 1:
            set_epsilon_limit(patient.session, record_id, CAPPED_EPSILON)
        patients.append(patient)
        first_record = first_record or record_id
    console.print(f"{len(pool)} patients put a labelled panel on IPFS (encrypted to the compute node) and granted "
                  f"the researcher TRAINING; patient 2 capped her record at epsilon {CAPPED_EPSILON:g}")
    rows = []
    for epsilon in DP_EPSILONS:
        job_id = open_training_job(researcher.session, base_id, node.identity.address, epsilon=epsilon,
                                   delta=DP_DELTA, royalty_per_record=ROYALTY_PER_RECORD, node_fee=NODE_FEE,
                                   max_records=len(pool))
        job = run_training_job(researcher.session, job_id, node.identity.address)
        if job["status"] != JobStatus.COMPLETED:
            raise AidocError(f"training job {job_id} ended {JobStatus(job['status']).name}, not completed")
        weights = model_weights(researcher.session, job["modelId"])
        value = accuracy(load_model(weights, None).network, split.test_features, split.test_targets)
        console.print(f"job {job_id}: DP-SGD at epsilon {epsilon:g} (delta {DP_DELTA:g}) on {job['recordCount']} "
                      f"records, epsilon spent {job['epsilonSpentMilli'] / EPSILON_MILLI:.2f}; model {job['modelId']}")
        rows.append((f"DP-SGD, epsilon {epsilon:g} ({job['recordCount']} consented records)", value))
    return rows, patients, first_record


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description="Federated rounds and DP compute-to-data training, paid on-chain.")
    parser.add_argument("--institutions", type=int, default=4, help="institutions (3 to 5, default 4)")
    run_training_demo(wide_console(), institutions=parser.parse_args().institutions)


if __name__ == "__main__":
    main()
