"""TrainingMarket: compute-to-data training jobs with differential privacy. Jobs open, complete,
cancel and are abandoned; the escrow pays a royalty per contributing record, the node's fee and
refunds the rest to the wei; every record's epsilon adds up within its owner's (or the default)
budget; consent, type and access are checked per record; the trained model is published for the
buyer with its provenance, and each record's use reaches the ConsentRegistry's access log."""

from __future__ import annotations

import pytest
from brownie import chain, web3

from aidoc.config import AID
from aidoc.constants import DataType, FailureReason, ModelStatus, Purpose
from conftest import (
    CID,
    CIPHERTEXT_HASH,
    DAY,
    DEFAULT_EPSILON_LIMIT,
    ENVELOPE_CID,
    MIN_STAKE,
    MODEL_PRICE,
    event_args,
    grant,
    now,
    plain,
    register_model,
    register_node,
    register_record,
    reverts_with,
)

# ITrainingMarket.JobStatus
NONE, OPEN, COMPLETED, CANCELLED, ABANDONED = range(5)

BASE_NAME = "fna-cytology-mlp"
EPSILON = 1_500  # milli-epsilon: epsilon 1.5
DELTA = 10**13  # units of 1e-18: delta 1e-5
ROYALTY_PER_RECORD = AID
TRAINING_FEE = 5 * AID
MAX_RECORDS = 5
BUDGET = ROYALTY_PER_RECORD * MAX_RECORDS + TRAINING_FEE
COHORT_COMMITMENT = "0x" + "c0" * 32
TRAINED_CID = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
TRAINED_HASH = "0x" + "56" * 32
ACCURACY_BPS = 9_649
HELD_OUT = 114
ZERO_HASH = "0x" + "00" * 32


def open_job(token, training, buyer, base_model, node, *, epsilon=EPSILON, delta=DELTA, royalty=ROYALTY_PER_RECORD,
             fee=TRAINING_FEE, max_records=MAX_RECORDS, deadline=None):
    token.approve(training, royalty * max_records + fee, {"from": buyer})
    deadline = now() + 7 * DAY if deadline is None else deadline
    tx = training.openJob(base_model, node, epsilon, delta, royalty, fee, max_records, deadline, {"from": buyer})
    return tx.return_value, tx


def complete(training, node, job_id, record_ids, *, epsilon=EPSILON, cid=TRAINED_CID, digest=TRAINED_HASH,
             accuracy=ACCURACY_BPS, held_out=HELD_OUT, sender=None):
    return training.completeJob(job_id, record_ids, COHORT_COMMITMENT, epsilon, cid, digest, accuracy, held_out,
                                {"from": sender or node})


def balances(token, *holders) -> dict:
    return {str(h): token.balanceOf(h) for h in holders}


def moved(token, before: dict) -> dict:
    """What each holder of `before` gained (negative: lost) since."""
    return {h: token.balanceOf(h) - b for h, b in before.items()}


def training_record(consents, owner, buyer, data_type=DataType.CYTOLOGY, purposes=Purpose.TRAINING, days=30):
    record_id = register_record(consents, owner, data_type=data_type)
    grant(consents, owner, record_id, buyer, purposes=purposes, days=days)
    return record_id


@pytest.fixture
def base_model(models, provider):
    return register_model(models, provider, data_type=DataType.CYTOLOGY, name=BASE_NAME)


@pytest.fixture
def trainer(token, nodes, node):
    register_node(token, nodes, node, data_types=(DataType.CYTOLOGY,))
    return node


@pytest.fixture
def cohort(consents, patient, patient2, doctor):
    """Three cytology records with TRAINING consent to the buyer (doctor): patient's, patient2's,
    patient's again, so that one owner's records are not consecutive."""
    return [training_record(consents, owner, doctor) for owner in (patient, patient2, patient)]


@pytest.fixture
def job(token, training, doctor, base_model, trainer):
    return open_job(token, training, doctor, base_model, trainer)[0]


# ---------------------------------------------------------------- opening


def test_open_job_escrows_the_budget_and_records_the_terms(token, training, doctor, base_model, trainer):
    before = balances(token, doctor, training)
    deadline = now() + 7 * DAY
    job_id, tx = open_job(token, training, doctor, base_model, trainer, deadline=deadline)

    assert job_id == 1 and training.jobCount() == 1
    assert moved(token, before) == {doctor.address: -BUDGET, training.address: BUDGET}
    assert event_args(tx, "JobOpened") == {
        "jobId": 1, "buyer": doctor.address, "node": trainer.address, "baseModelId": base_model,
        "dataType": DataType.CYTOLOGY, "epsilonMilli": EPSILON, "delta": DELTA,
        "royaltyPerRecord": ROYALTY_PER_RECORD, "nodeFee": TRAINING_FEE, "maxRecords": MAX_RECORDS,
        "deadline": deadline,
    }
    assert plain(training.getJob(job_id)) == (
        doctor.address, deadline, EPSILON, trainer.address, ROYALTY_PER_RECORD, DataType.CYTOLOGY, OPEN,
        TRAINING_FEE, DELTA, MAX_RECORDS, 0, 0, base_model, 0,
    )
    with reverts_with("UnknownJob", 2):
        training.getJob(2)


def test_open_job_rejects_bad_terms(token, training, doctor, base_model, trainer):
    token.approve(training, 10 * BUDGET, {"from": doctor})
    before = balances(token, doctor, training)
    soon = now() + DAY
    bad_terms = [
        (dict(epsilon=0), ("InvalidEpsilon", 0)),
        (dict(delta=10**18), ("InvalidDelta", 10**18)),
        (dict(max_records=0), ("InvalidMaxRecords", 0)),
        (dict(max_records=training.MAX_RECORDS_PER_JOB() + 1), ("InvalidMaxRecords", 129)),
        (dict(deadline=now()), ("InvalidDeadline", now())),
        (dict(deadline=now() + training.MAX_JOB_DURATION() + 60),
         ("InvalidDeadline", now() + training.MAX_JOB_DURATION() + 60)),
    ]
    for change, (error, *args) in bad_terms:
        terms = dict(epsilon=EPSILON, delta=DELTA, max_records=MAX_RECORDS, deadline=soon) | change
        with reverts_with(error, *args):
            training.openJob(base_model, trainer, terms["epsilon"], terms["delta"], ROYALTY_PER_RECORD,
                             TRAINING_FEE, terms["max_records"], terms["deadline"], {"from": doctor})
    assert training.MAX_RECORDS_PER_JOB() == 128 and training.MAX_JOB_DURATION() == 30 * DAY
    # The largest delta below 1 and a deadline at the cap are accepted.
    training.openJob(base_model, trainer, EPSILON, 10**18 - 1, 0, 0, 1, now() + training.MAX_JOB_DURATION(),
                     {"from": doctor})
    assert training.jobCount() == 1
    assert moved(token, before) == {doctor.address: 0, training.address: 0}


def test_open_job_needs_an_active_base_model_and_a_capable_active_node(token, training, models, nodes, doctor,
                                                                       provider, base_model, trainer, node2,
                                                                       stranger, auditor):
    token.approve(training, BUDGET, {"from": doctor})
    deadline = now() + DAY

    def attempt(model, node):
        return training.openJob(model, node, EPSILON, DELTA, ROYALTY_PER_RECORD, TRAINING_FEE, MAX_RECORDS,
                                deadline, {"from": doctor})

    with reverts_with("UnknownModel", 99):
        attempt(99, trainer)
    with reverts_with("NodeNotActive", stranger.address):
        attempt(base_model, stranger)
    register_node(token, nodes, node2, data_types=(DataType.LAB_PANEL, DataType.ECG))
    with reverts_with("NodeUnsupportedInput", node2.address, DataType.CYTOLOGY):
        attempt(base_model, node2)
    models.suspend(base_model, "under review", {"from": auditor})
    with reverts_with("ModelNotActive", base_model, ModelStatus.SUSPENDED):
        attempt(base_model, trainer)
    # A lab-panel model makes a lab-panel job: node2 supports that type.
    panel_model = register_model(models, provider, data_type=DataType.LAB_PANEL, name="panel-mlp")
    job_id = attempt(panel_model, node2).return_value
    assert training.getJob(job_id)[5] == DataType.LAB_PANEL
    assert training.jobCount() == 1


def test_open_job_without_allowance_moves_nothing(token, training, doctor, base_model, trainer):
    token.approve(training, BUDGET - 1, {"from": doctor})
    with reverts_with("ERC20InsufficientAllowance", training.address, BUDGET - 1, BUDGET):
        training.openJob(base_model, trainer, EPSILON, DELTA, ROYALTY_PER_RECORD, TRAINING_FEE, MAX_RECORDS,
                         now() + DAY, {"from": doctor})
    assert training.jobCount() == 0 and token.balanceOf(training) == 0


# ---------------------------------------------------------------- completion


def test_complete_pays_each_owner_the_node_and_refunds_the_rest_to_the_wei(token, training, job, cohort, doctor,
                                                                           patient, patient2, trainer, provider):
    before = balances(token, doctor, patient, patient2, trainer, provider, training)
    tx = complete(training, trainer, job, cohort)

    # Three records used out of five: patient owns two, patient2 one; two royalties go back.
    assert moved(token, before) == {
        doctor.address: 2 * ROYALTY_PER_RECORD,
        patient.address: 2 * ROYALTY_PER_RECORD,
        patient2.address: ROYALTY_PER_RECORD,
        trainer.address: TRAINING_FEE,
        provider.address: 0,
        training.address: -BUDGET,
    }
    assert sum(moved(token, before).values()) == 0
    assert token.balanceOf(training) == 0
    # One transfer per owner, though patient's records are not consecutive.
    paid = [(t["to"], t["value"]) for t in tx.events["Transfer"]]
    assert paid == [(patient.address, 2 * ROYALTY_PER_RECORD), (patient2.address, ROYALTY_PER_RECORD),
                    (trainer.address, TRAINING_FEE), (doctor.address, 2 * ROYALTY_PER_RECORD)]


def test_complete_publishes_the_trained_model_for_the_buyer_with_provenance(token, training, models, job, cohort,
                                                                            doctor, trainer, provider,
                                                                            base_model):
    tx = complete(training, trainer, job, cohort)
    model_id = tx.events["ModelRegistered"]["modelId"]

    assert model_id == base_model + 1
    assert event_args(tx, "JobCompleted") == {
        "jobId": job, "modelId": model_id, "cohortCommitment": COHORT_COMMITMENT, "recordCount": 3,
        "epsilonSpentMilli": EPSILON, "accuracyBps": ACCURACY_BPS, "heldOutCount": HELD_OUT,
    }
    # Version 1 of the base model's family for the buyer, at the base model's price and input type.
    assert event_args(tx, "ModelRegistered") == {
        "modelId": model_id, "provider": doctor.address, "name": BASE_NAME, "version": 1,
        "weightsCid": TRAINED_CID, "weightsSha256": TRAINED_HASH, "inputType": DataType.CYTOLOGY,
        "price": MODEL_PRICE,
    }
    assert event_args(tx, "ModelPublishedFor") == {
        "modelId": model_id, "provider": doctor.address, "publisher": training.address,
    }
    assert plain(models.getModel(model_id)) == (
        doctor.address, MODEL_PRICE, DataType.CYTOLOGY, ModelStatus.ACTIVE, TRAINED_HASH, 1, BASE_NAME, TRAINED_CID,
    )
    assert models.latestVersion(doctor, BASE_NAME) == 1 and models.latestVersion(provider, BASE_NAME) == 1
    job_state = plain(training.getJob(job))
    assert job_state[6] == COMPLETED
    assert job_state[10:] == (3, EPSILON, base_model, model_id)


def test_a_second_job_publishes_the_buyers_next_version(token, training, models, base_model, trainer, cohort,
                                                        doctor):
    first, _ = open_job(token, training, doctor, base_model, trainer)
    complete(training, trainer, first, cohort[:1])
    second, _ = open_job(token, training, doctor, base_model, trainer)
    tx = complete(training, trainer, second, cohort[1:], digest="0x" + "57" * 32)
    assert event_args(tx, "ModelRegistered")["version"] == 2
    assert models.latestVersion(doctor, BASE_NAME) == 2
    assert training.getJob(second)[13] == tx.events["ModelRegistered"]["modelId"] == training.getJob(first)[13] + 1


def test_complete_logs_each_records_use_for_training_in_the_consent_registry(training, job, cohort, doctor,
                                                                             trainer):
    tx = complete(training, trainer, job, cohort)
    assert [event_args(tx, "RecordAccessed", i) for i in range(3)] == [
        {"recordId": record_id, "grantee": doctor.address, "node": trainer.address, "purpose": Purpose.TRAINING,
         "requestId": job}
        for record_id in cohort
    ]
    assert [event_args(tx, "RecordUsedForTraining", i) for i in range(3)] == [
        {"recordId": record_id, "jobId": job, "epsilonSpentMilli": EPSILON, "cumulativeMilli": EPSILON}
        for record_id in cohort
    ]
    assert tx.events["RecordAccessed"][0].address == training.consents()


def test_only_the_jobs_node_completes_it(token, training, nodes, job, cohort, doctor, node2, stranger, trainer):
    register_node(token, nodes, node2, data_types=(DataType.CYTOLOGY,))
    for intruder in (doctor, node2, stranger):
        with reverts_with("NotJobNode", job, intruder.address):
            complete(training, trainer, job, cohort, sender=intruder)
    with reverts_with("UnknownJob", 7):
        complete(training, trainer, 7, cohort)
    assert training.getJob(job)[6] == OPEN


def test_complete_rejects_a_malformed_result(training, job, cohort, trainer):
    cases = [
        (dict(record_ids=[]), ("InvalidRecordCount", 0, MAX_RECORDS)),
        (dict(record_ids=[1, 2, 3, 4, 5, 6]), ("InvalidRecordCount", 6, MAX_RECORDS)),
        (dict(record_ids=[cohort[1], cohort[0]]), ("RecordIdsNotIncreasing", 1, cohort[0])),
        (dict(record_ids=[cohort[0], cohort[0]]), ("RecordIdsNotIncreasing", 1, cohort[0])),
        (dict(epsilon=0), ("InvalidEpsilonSpent", 0, EPSILON)),
        (dict(epsilon=EPSILON + 1), ("InvalidEpsilonSpent", EPSILON + 1, EPSILON)),
        (dict(cid=""), ("EmptyCid",)),
        (dict(digest=ZERO_HASH), ("ZeroHash",)),
        (dict(accuracy=10_001), ("InvalidAccuracy", 10_001)),
    ]
    for change, (error, *args) in cases:
        record_ids = change.pop("record_ids", cohort)
        with reverts_with(error, *args):
            complete(training, trainer, job, record_ids, **change)
    assert training.getJob(job)[6] == OPEN
    assert [training.epsilonSpent(r) for r in cohort] == [0, 0, 0]


def test_complete_after_the_deadline_is_refused(token, training, job, cohort, trainer):
    deadline = training.getJob(job)[1]
    chain.sleep(deadline - now() + 1)
    with reverts_with("JobDeadlinePassed", job, deadline):
        complete(training, trainer, job, cohort)


def test_a_completed_job_cannot_end_again(training, job, cohort, trainer, doctor):
    complete(training, trainer, job, cohort)
    with reverts_with("JobNotOpen", job, COMPLETED):
        complete(training, trainer, job, cohort, epsilon=1)
    with reverts_with("JobNotOpen", job, COMPLETED):
        training.abandonJob(job, FailureReason.MODEL_ERROR, {"from": trainer})
    chain.sleep(8 * DAY)
    with reverts_with("JobNotOpen", job, COMPLETED):
        training.cancelJob(job, {"from": doctor})


def test_a_node_with_no_stake_left_is_not_paid_to_complete(token, training, nodes, job, cohort, trainer, admin,
                                                          doctor):
    nodes.slash(trainer, MIN_STAKE, admin, "leaked a cohort", {"from": admin})
    before = balances(token, doctor, trainer, training)
    with reverts_with("NodeNotBonded", trainer.address):
        complete(training, trainer, job, cohort)
    assert moved(token, before) == {doctor.address: 0, trainer.address: 0, training.address: 0}


def test_complete_with_every_record_and_no_refund(token, training, consents, doctor, patient, base_model, trainer):
    records = [training_record(consents, patient, doctor) for _ in range(MAX_RECORDS)]
    job_id, _ = open_job(token, training, doctor, base_model, trainer)
    before = balances(token, doctor, patient, trainer, training)
    tx = complete(training, trainer, job_id, records)
    assert moved(token, before) == {doctor.address: 0, patient.address: MAX_RECORDS * ROYALTY_PER_RECORD,
                                    trainer.address: TRAINING_FEE, training.address: -BUDGET}
    assert [t["to"] for t in tx.events["Transfer"]] == [patient.address, trainer.address]


# ---------------------------------------------------------------- consent and record checks


@pytest.mark.parametrize("case", ["no grant", "diagnosis only", "revoked", "expired", "retired", "wrong type",
                                  "unknown", "other grantee"])
def test_each_record_needs_live_training_consent_of_the_jobs_type(token, training, consents, job, cohort, doctor,
                                                                   doctor2, patient, trainer, case):
    grant_days = 1 if case == "expired" else 30
    if case == "no grant":
        bad = register_record(consents, patient, data_type=DataType.CYTOLOGY)
    elif case == "diagnosis only":
        bad = training_record(consents, patient, doctor, purposes=Purpose.DIAGNOSIS | Purpose.RESEARCH)
    elif case == "wrong type":
        bad = training_record(consents, patient, doctor, data_type=DataType.LAB_PANEL)
    elif case == "unknown":
        bad = consents.recordCount() + 1
    elif case == "other grantee":
        bad = training_record(consents, patient, doctor2)
    else:
        bad = training_record(consents, patient, doctor, days=grant_days)
    if case == "revoked":
        consents.revokeConsent(bad, doctor, Purpose.TRAINING, {"from": patient})
    elif case == "retired":
        consents.retireRecord(bad, {"from": patient})
    elif case == "expired":
        chain.sleep(2 * DAY)

    expected = {
        "no grant": ("ConsentMissing", bad, doctor.address, Purpose.TRAINING),
        "diagnosis only": ("ConsentMissing", bad, doctor.address, Purpose.TRAINING),
        "revoked": ("ConsentMissing", bad, doctor.address, Purpose.TRAINING),
        "other grantee": ("ConsentMissing", bad, doctor.address, Purpose.TRAINING),
        "expired": ("ConsentExpired", bad, doctor.address, consents.consentOf(bad, doctor)[1]),
        "retired": ("RecordIsRetired", bad),
        "wrong type": ("RecordDataTypeMismatch", bad, DataType.LAB_PANEL, DataType.CYTOLOGY),
        "unknown": ("UnknownRecord", bad),
    }[case]
    before = balances(token, doctor, patient, trainer, training)
    # The good records come first: their budget writes must be rolled back with the rest.
    with reverts_with(*expected):
        complete(training, trainer, job, [*cohort, bad])
    assert moved(token, before) == dict.fromkeys(before, 0)
    assert [training.epsilonSpent(r) for r in cohort] == [0, 0, 0]
    assert training.getJob(job)[6] == OPEN
    # Without the bad record the same job completes.
    complete(training, trainer, job, cohort)


# ---------------------------------------------------------------- privacy budgets


def test_the_default_budget_bounds_cumulative_epsilon_across_jobs(token, training, models, cohort, doctor, patient,
                                                                  base_model, trainer):
    record = cohort[0]
    assert training.defaultEpsilonLimitMilli() == DEFAULT_EPSILON_LIMIT == training.epsilonLimitOf(record)
    first, _ = open_job(token, training, doctor, base_model, trainer, epsilon=6_000)
    tx = complete(training, trainer, first, [record], epsilon=6_000)
    assert event_args(tx, "RecordUsedForTraining")["cumulativeMilli"] == 6_000
    assert training.epsilonSpent(record) == 6_000

    second, _ = open_job(token, training, doctor, base_model, trainer, epsilon=6_000)
    before = balances(token, doctor, patient, trainer, training)
    model_count = models.modelCount()
    with reverts_with("EpsilonBudgetExceeded", record, 6_000, DEFAULT_EPSILON_LIMIT):
        complete(training, trainer, second, [record], epsilon=6_000)
    assert moved(token, before) == dict.fromkeys(before, 0)
    assert training.epsilonSpent(record) == 6_000 and training.getJob(second)[6] == OPEN
    assert models.modelCount() == model_count

    # Spending exactly what is left is allowed; then the record is exhausted.
    tx = complete(training, trainer, second, [record], epsilon=4_000)
    assert event_args(tx, "RecordUsedForTraining") == {
        "recordId": record, "jobId": second, "epsilonSpentMilli": 4_000, "cumulativeMilli": DEFAULT_EPSILON_LIMIT,
    }
    third, _ = open_job(token, training, doctor, base_model, trainer)
    with reverts_with("EpsilonBudgetExceeded", record, DEFAULT_EPSILON_LIMIT, DEFAULT_EPSILON_LIMIT):
        complete(training, trainer, third, [record], epsilon=1)
    # Other records keep their own budgets.
    complete(training, trainer, third, cohort[1:])
    assert [training.epsilonSpent(r) for r in cohort] == [DEFAULT_EPSILON_LIMIT, EPSILON, EPSILON]


def test_a_job_that_would_exceed_one_budget_moves_nothing(token, training, models, cohort, doctor, patient,
                                                         patient2, base_model, trainer):
    training.setEpsilonLimit(cohort[2], 1_000, {"from": patient})
    job_id, _ = open_job(token, training, doctor, base_model, trainer)
    before = balances(token, doctor, patient, patient2, trainer, training)
    count = models.modelCount()
    with reverts_with("EpsilonBudgetExceeded", cohort[2], 0, 1_000):
        complete(training, trainer, job_id, cohort)
    assert moved(token, before) == dict.fromkeys(before, 0)
    assert [training.epsilonSpent(r) for r in cohort] == [0, 0, 0]
    assert models.modelCount() == count and training.getJob(job_id)[6] == OPEN


def test_owner_sets_a_records_budget(token, training, cohort, doctor, patient, base_model, trainer):
    record = cohort[0]
    tx = training.setEpsilonLimit(record, 2_000, {"from": patient})
    assert event_args(tx, "EpsilonLimitSet") == {"recordId": record, "owner": patient.address, "limitMilli": 2_000}
    assert training.epsilonLimitOf(record) == 2_000
    assert training.epsilonLimitOf(cohort[1]) == DEFAULT_EPSILON_LIMIT

    first, _ = open_job(token, training, doctor, base_model, trainer)
    complete(training, trainer, first, [record])
    second, _ = open_job(token, training, doctor, base_model, trainer)
    with reverts_with("EpsilonBudgetExceeded", record, EPSILON, 2_000):
        complete(training, trainer, second, [record])
    # Raising the limit lets the record be used again.
    training.setEpsilonLimit(record, 3_000, {"from": patient})
    tx = complete(training, trainer, second, [record])
    assert event_args(tx, "RecordUsedForTraining")["cumulativeMilli"] == 2 * EPSILON


def test_an_owner_limit_of_zero_forbids_training_and_is_not_the_default(token, training, cohort, doctor, patient,
                                                                        admin, base_model, trainer):
    record = cohort[0]
    training.setEpsilonLimit(record, 0, {"from": patient})
    assert training.epsilonLimitOf(record) == 0
    job_id, _ = open_job(token, training, doctor, base_model, trainer)
    with reverts_with("EpsilonBudgetExceeded", record, 0, 0):
        complete(training, trainer, job_id, [record], epsilon=1)
    # A default change does not reach a record whose owner set its own limit.
    training.setDefaultEpsilonLimit(50_000, {"from": admin})
    assert training.epsilonLimitOf(record) == 0 and training.epsilonLimitOf(cohort[1]) == 50_000
    with reverts_with("EpsilonBudgetExceeded", record, 0, 0):
        complete(training, trainer, job_id, [record], epsilon=1)
    complete(training, trainer, job_id, cohort[1:])
    assert [training.epsilonSpent(r) for r in cohort] == [0, EPSILON, EPSILON]


def test_admin_sets_the_default_budget_of_records_without_their_own(training, cohort, admin, patient, stranger):
    training.setEpsilonLimit(cohort[0], 2_000, {"from": patient})
    tx = training.setDefaultEpsilonLimit(1_000, {"from": admin})
    assert event_args(tx, "DefaultEpsilonLimitSet") == {"limitMilli": 1_000}
    assert training.defaultEpsilonLimitMilli() == 1_000
    assert training.epsilonLimitOf(cohort[1]) == 1_000
    assert training.epsilonLimitOf(cohort[0]) == 2_000
    for intruder in (patient, stranger):
        with reverts_with("AccessControlUnauthorizedAccount", intruder.address, training.DEFAULT_ADMIN_ROLE()):
            training.setDefaultEpsilonLimit(10**6, {"from": intruder})
    assert training.defaultEpsilonLimitMilli() == 1_000


def test_only_the_records_owner_sets_its_budget(training, consents, cohort, patient, patient2, doctor, stranger):
    for intruder in (patient2, doctor, stranger):
        with reverts_with("NotRecordOwner", cohort[0], intruder.address):
            training.setEpsilonLimit(cohort[0], 10**6, {"from": intruder})
    with reverts_with("UnknownRecord", 99):
        training.setEpsilonLimit(99, 0, {"from": patient})
    assert training.epsilonLimitOf(cohort[0]) == DEFAULT_EPSILON_LIMIT


# ---------------------------------------------------------------- cancel and abandon


def test_buyer_cancels_after_the_deadline_for_a_full_refund(token, training, job, cohort, doctor, trainer):
    deadline = training.getJob(job)[1]
    with reverts_with("JobNotExpired", job, deadline):
        training.cancelJob(job, {"from": doctor})
    chain.sleep(deadline - now() + 1)
    with reverts_with("NotJobBuyer", job, trainer.address):
        training.cancelJob(job, {"from": trainer})
    before = balances(token, doctor, trainer, training)
    tx = training.cancelJob(job, {"from": doctor})
    assert event_args(tx, "JobCancelled") == {"jobId": job, "buyer": doctor.address, "refund": BUDGET}
    assert moved(token, before) == {doctor.address: BUDGET, trainer.address: 0, training.address: -BUDGET}
    assert training.getJob(job)[6] == CANCELLED
    with reverts_with("JobNotOpen", job, CANCELLED):
        training.cancelJob(job, {"from": doctor})
    with reverts_with("JobNotOpen", job, CANCELLED):
        training.abandonJob(job, FailureReason.INTERNAL_ERROR, {"from": trainer})
    assert [training.epsilonSpent(r) for r in cohort] == [0, 0, 0]


def test_node_abandons_an_open_job_at_any_time_and_the_buyer_is_refunded(token, training, job, cohort, doctor,
                                                                          trainer, stranger):
    for intruder in (doctor, stranger):
        with reverts_with("NotJobNode", job, intruder.address):
            training.abandonJob(job, FailureReason.MODEL_ERROR, {"from": intruder})
    with reverts_with("InvalidReason", 0):
        training.abandonJob(job, 0, {"from": trainer})
    before = balances(token, doctor, trainer, training)
    tx = training.abandonJob(job, FailureReason.MODEL_ERROR, {"from": trainer})
    assert event_args(tx, "JobAbandoned") == {
        "jobId": job, "node": trainer.address, "reasonCode": FailureReason.MODEL_ERROR, "refund": BUDGET,
    }
    assert moved(token, before) == {doctor.address: BUDGET, trainer.address: 0, training.address: -BUDGET}
    assert training.getJob(job)[6] == ABANDONED
    with reverts_with("JobNotOpen", job, ABANDONED):
        complete(training, trainer, job, cohort)
    with reverts_with("UnknownJob", 5):
        training.abandonJob(5, 1, {"from": trainer})
    with reverts_with("UnknownJob", 5):
        training.cancelJob(5, {"from": doctor})


def test_escrow_of_several_jobs_is_kept_apart(token, training, cohort, doctor, doctor2, patient, patient2,
                                              base_model, trainer, consents):
    """Two buyers' jobs in flight: each completion or refund touches only its own escrow."""
    for record_id, owner in zip(cohort, (patient, patient2, patient)):
        grant(consents, owner, record_id, doctor2, purposes=Purpose.TRAINING)
    first, _ = open_job(token, training, doctor, base_model, trainer)
    second, _ = open_job(token, training, doctor2, base_model, trainer, royalty=2 * AID, max_records=2, fee=AID)
    assert token.balanceOf(training) == BUDGET + 5 * AID
    complete(training, trainer, second, cohort[:2], epsilon=100)
    assert token.balanceOf(training) == BUDGET
    training.abandonJob(first, FailureReason.INTERNAL_ERROR, {"from": trainer})
    assert token.balanceOf(training) == 0
    assert [training.epsilonSpent(r) for r in cohort] == [100, 100, 0]


def test_a_job_with_no_budget_moves_no_tokens(token, training, cohort, doctor, base_model, trainer):
    job_id, tx = open_job(token, training, doctor, base_model, trainer, royalty=0, fee=0)
    assert "Transfer" not in tx.events
    tx = complete(training, trainer, job_id, cohort)
    assert "Transfer" not in tx.events and len(tx.events["RecordAccessed"]) == 3


# ---------------------------------------------------------------- a full cohort


def _rpc(method, params=()):
    response = web3.provider.make_request(method, list(params))
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response.get("result")


def _send(sender, contract, function, args, nonce=None) -> dict:
    """contract.function(*args) from `sender` (an address with a key in `keys`, or an unlocked
    account) with plain web3, its receipt. Brownie polls each receipt from its own thread, and after
    hundreds of transactions in a row it sometimes reports a mined one as dropped."""
    tx = {"from": sender, "to": contract.address, "value": 0, "gas": 11_500_000, "gasPrice": 10**9,
          "chainId": chain.id, "data": getattr(contract, function).encode_input(*args),
          "nonce": web3.eth.get_transaction_count(sender) if nonce is None else nonce}
    key = _KEYS.get(sender)
    if key is None:
        sent = web3.eth.send_transaction(tx)
    else:
        sent = web3.eth.send_raw_transaction(web3.eth.account.sign_transaction(
            {k: v for k, v in tx.items() if k != "from"} | {"gas": 500_000}, key).raw_transaction)
    receipt = web3.eth.wait_for_transaction_receipt(sent)
    assert receipt["status"] == 1, f"{function} reverted"
    return receipt


_KEYS: dict[str, bytes] = {}


def patients_with_training_records(consents, buyer, count) -> list[tuple[str, int]]:
    """`count` new patients holding no AID, each with one cytology record granting TRAINING to
    `buyer`: (patient address, record id) pairs."""
    expiry = now() + 30 * DAY
    made = []
    for _ in range(count):
        patient = web3.eth.account.create()
        _KEYS[patient.address] = patient.key
        _rpc("anvil_setBalance", [patient.address, hex(10**18)])
        record_id = consents.recordCount() + 1
        _send(patient.address, consents, "registerRecord",
              (CID, CIPHERTEXT_HASH, DataType.CYTOLOGY, ENVELOPE_CID, 0), nonce=0)
        _send(patient.address, consents, "grantConsent", (record_id, buyer, Purpose.TRAINING, expiry), nonce=1)
        made.append((patient.address, record_id))
    assert [consents.getRecord(r)[0] for _, r in made] == [p for p, _ in made]
    return made


def test_a_full_cohort_of_max_records_fits_in_a_development_block(token, training, consents, doctor, base_model,
                                                                  trainer):
    """MAX_RECORDS_PER_JOB records, each owned by a different patient holding no AID yet (no payment
    can be summed, every payment and every budget slot is a first write): the completion fits in a
    12M-gas block, the development chains' limit."""
    count = training.MAX_RECORDS_PER_JOB()
    job_id, _ = open_job(token, training, doctor, base_model, trainer, max_records=count)
    cohort = patients_with_training_records(consents, doctor, count)
    receipt = _send(trainer.address, training, "completeJob",
                    (job_id, [record_id for _, record_id in cohort], COHORT_COMMITMENT, EPSILON, TRAINED_CID,
                     TRAINED_HASH, ACCURACY_BPS, HELD_OUT))
    accessed = web3.keccak(text="RecordAccessed(uint256,address,address,uint8,uint256)")
    assert sum(1 for log in receipt["logs"] if log["topics"][0] == accessed) == count
    assert [token.balanceOf(patient) for patient, _ in cohort] == [ROYALTY_PER_RECORD] * count
    assert [training.epsilonSpent(record_id) for _, record_id in cohort] == [EPSILON] * count
    assert training.getJob(job_id)[6] == COMPLETED and token.balanceOf(training) == 0
    gas = receipt["gasUsed"]
    assert gas < 11_000_000, gas
    print(f"completeJob @{count} records, distinct owners: {gas:,} gas ({gas // count:,} per record)")
