"""Training without taking the data, end to end on the real stack (anvil, Redis, js-ipfs, Celery
workers and senders per node): federated rounds across two institutions and an aggregator, and a
DP compute-to-data job on consented records, with their payouts, epsilon budgets and audit trail."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from aidoc.config import AID, ENV_PREFIX
from aidoc.constants import DataType, JobStatus, Purpose, TrainingStatus
from aidoc.models.artifacts import save_model
from aidoc.training.data import federated_split
from aidoc.training.federated import base_model, verify_aggregate
from conftest import STAKE

REWARD, FEE, ROYALTY, NODE_FEE = AID, 2 * AID, AID // 2, 2 * AID


@pytest.fixture(scope="module")
def split():
    return federated_split(3, seed=3)


@pytest.fixture(scope="module")
def base_id(stack, funded, split, tmp_path_factory):
    from aidoc.flow.model import register_model

    path = tmp_path_factory.mktemp("base") / "base.safetensors"
    path.write_bytes(save_model(base_model(split.public_features)))
    return register_model(funded(0), path, "panel-base", DataType.LAB_PANEL, 5 * AID)


def start_training_node(stack, funded, name: str, features, targets, tmp_path):
    from aidoc.stack.local import start_node

    session = stack.staked_node([DataType.LAB_PANEL], STAKE, NODE_FEE, marketplace=funded(0).marketplace)
    dataset = tmp_path / f"{name}.npz"
    np.savez(dataset, features=features, targets=targets)
    processes = [p for p in start_node(stack.services, session.identity, 1, run_dir=tmp_path / name,
                                       settings={ENV_PREFIX + "LOCAL_DATASET": str(dataset)})]
    return session, processes


def wait(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.3)


def test_federated_rounds_pay_each_update_and_post_a_verifiable_fedavg(stack, funded, split, base_id, tmp_path):
    from aidoc.flow.training import open_federated_training, round_info, run_federated_training, training_state
    from aidoc.training.cohort import round_updates

    nodes, processes = [], []
    try:
        for institution in split.institutions[:2]:
            session, started = start_training_node(stack, funded, institution.name, institution.features,
                                                   institution.targets, tmp_path)
            nodes.append(session)
            processes += started
        aggregator, started = start_training_node(stack, funded, "aggregator", split.test_features,
                                                  split.test_targets, tmp_path)
        processes += started
        sponsor = funded(100 * AID)
        token = sponsor.marketplace.token.functions
        before = {s.address: token.balanceOf(s.address).call() for s in [*nodes, aggregator, sponsor]}
        training_id = open_federated_training(sponsor, base_id, [n.address for n in nodes], aggregator.address,
                                              reward_per_update=REWARD, aggregator_fee=FEE, max_rounds=2,
                                              target_accuracy=0.9999)
        finished = []
        run_federated_training(sponsor, training_id, [n.address for n in nodes], aggregator.address,
                               on_round=lambda number, _: finished.append(number), timeout=120)
        assert finished == [1, 2]
        state = training_state(sponsor, training_id)
        assert state["status"] == TrainingStatus.FINISHED and state["currentRound"] == 2 and state["modelId"]  # finished at the round limit
        # Anyone can recompute the last aggregate from the on-chain updates and compare its hash.
        final = round_info(sponsor, training_id, 2)
        updates = round_updates(sponsor.marketplace, sponsor.store, training_id, 2)
        assert len(updates) == 2 and verify_aggregate(updates, bytes(final["aggregateSha256"]))
        assert hashlib.sha256(sponsor.store.cat(final["aggregateCid"])).digest() == bytes(final["aggregateSha256"])
        after = {s.address: token.balanceOf(s.address).call() for s in [*nodes, aggregator, sponsor]}
        for node in nodes:
            assert after[node.address] - before[node.address] == 2 * REWARD  # one update per round
        assert after[aggregator.address] - before[aggregator.address] == 2 * FEE
        assert before[sponsor.address] - after[sponsor.address] == 2 * (2 * REWARD + FEE)  # nothing left escrowed
    finally:
        for process in reversed(processes):
            process.stop()


def test_a_dp_job_pays_each_contributing_record_and_respects_epsilon_limits(stack, funded, split, base_id,
                                                                            tmp_path):
    from aidoc.chain.contracts import call_struct
    from aidoc.flow.audit import audit_trail
    from aidoc.flow.consent import grant_consent
    from aidoc.flow.record import add_record
    from aidoc.flow.training import open_training_job, run_training_job, set_epsilon_limit
    from aidoc.training.cohort import CohortOpening, verify_cohort

    node, processes = start_training_node(stack, funded, "compute", split.test_features[:1], split.test_targets[:1],
                                          tmp_path)
    try:
        buyer = funded(100 * AID)
        contracts = buyer.marketplace
        expiry = contracts.w3.eth.get_block("latest")["timestamp"] + 30 * 86400
        owners, records = [], []
        for record in split.institutions[0].records()[:12]:
            owner = funded(0)
            record_id = add_record(owner, record, [node.address], 0)
            grant_consent(owner, record_id, buyer.address, Purpose.TRAINING, expiry)
            owners.append(owner)
            records.append(record_id)
        capped = records[0]
        set_epsilon_limit(owners[0], capped, 0.5)  # below this job's budget: left out
        diagnosis_only = funded(0)  # a record consented for diagnosis only never joins a cohort
        other = add_record(diagnosis_only, split.institutions[0].records()[20], [node.address], 0)
        grant_consent(diagnosis_only, other, buyer.address, Purpose.DIAGNOSIS, expiry)

        token = contracts.token.functions
        buyer_before = token.balanceOf(buyer.address).call()
        job_id = open_training_job(buyer, base_id, node.address, epsilon=2.0, delta=1e-5,
                                   royalty_per_record=ROYALTY, node_fee=NODE_FEE, max_records=20)
        job = run_training_job(buyer, job_id, node.address, timeout=180)
        assert job["status"] == JobStatus.COMPLETED, job
        used = job["recordCount"]
        assert used == 11  # the 12 consented records but the capped one
        assert 0 < job["epsilonSpentMilli"] <= 2000
        assert token.balanceOf(owners[0].address).call() == 0 and token.balanceOf(diagnosis_only.address).call() == 0
        assert all(token.balanceOf(o.address).call() == ROYALTY for o in owners[1:])
        assert buyer_before - token.balanceOf(buyer.address).call() == used * ROYALTY + NODE_FEE  # the rest refunded
        assert token.balanceOf(contracts.training.address).call() == 0
        assert contracts.training.functions.epsilonSpent(records[1]).call() == job["epsilonSpentMilli"]
        assert contracts.training.functions.epsilonSpent(capped).call() == 0
        model = contracts.models.functions.getModel(job["modelId"]).call()
        assert model[0] == buyer.address  # the new version is the buyer's
        assert hashlib.sha256(buyer.store.cat(model[7])).digest() == bytes(model[4])
        trail = audit_trail(owners[1], records[1])
        assert any(e.action == "accessed" and e.purposes == Purpose.TRAINING and f"training job {job_id}" in e.detail
                   for e in trail)
        assert not any(e.action == "accessed" for e in audit_trail(owners[0], capped))
        # The node kept the opening of its cohort commitment: an auditor checks it against the chain.
        completed = contracts.training.events.JobCompleted().get_logs(
            from_block=contracts.deployment.block_number, argument_filters={"jobId": job_id})
        commitment = bytes(completed[0]["args"]["cohortCommitment"])
        opening_path = (stack.services.run_dir / "cohorts" / node.address.lower()
                        / CohortOpening.file_name(job_id, commitment))
        opening = CohortOpening.from_json(opening_path.read_text())
        used_ids = [int(e["args"]["recordId"]) for e in contracts.training.events.RecordUsedForTraining().get_logs(
            from_block=contracts.deployment.block_number, argument_filters={"jobId": job_id})]
        hashes = {r: bytes(call_struct(contracts.consents, "getRecord", r)["ciphertextHash"]) for r in opening.record_ids}
        assert len(opening.members) == used and sum(m.held_out for m in opening.members) == completed[0]["args"]["heldOutCount"]
        assert verify_cohort(opening, commitment, used_ids, hashes)
        assert records[0] not in opening.record_ids  # the capped record is not in the cohort
        tampered = CohortOpening(opening.job_id, opening.salt, opening.members[1:])
        assert not verify_cohort(tampered, commitment)
    finally:
        for process in reversed(processes):
            process.stop()
