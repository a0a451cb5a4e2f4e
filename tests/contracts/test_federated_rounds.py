"""FederatedRounds: federated learning across institutions. A sponsor escrows the rewards of every
round; participants submit one update per round; the aggregator posts the FedAvg aggregate, which
pays the round's updates and its fee and either opens the next round from the aggregate or
finishes the training (target metric reached, or last round) by publishing the aggregate for the
sponsor and refunding what is left. Partial rounds after the deadline, cancellation, access
control and double submissions, with every payment checked to the wei."""

from __future__ import annotations

import pytest
from brownie import accounts, chain
from brownie.convert import to_address

from aidoc.config import AID
from aidoc.constants import DataType, ModelStatus
from conftest import CID, DAY, MODEL_PRICE, WEIGHTS_HASH, event_args, now, plain, register_model, reverts_with

# IFederatedRounds.TrainingStatus
NONE, RUNNING, FINISHED, CANCELLED = range(4)

BASE_NAME = "fna-cytology-mlp"
REWARD = 2 * AID
AGGREGATOR_FEE = 3 * AID
MAX_ROUNDS = 3
TARGET_BPS = 9_500
ROUND_DURATION = DAY
PARTICIPANTS = 3
ESCROW = PARTICIPANTS * MAX_ROUNDS * REWARD + MAX_ROUNDS * AGGREGATOR_FEE
ZERO_HASH = "0x" + "00" * 32
ZERO_ADDRESS = "0x" + "00" * 20


def update_cid(round_: int, index: int) -> str:
    return f"bafkreiupdate{round_:02d}{index:02d}" + "a" * 40


def update_hash(round_: int, index: int) -> str:
    return "0x" + f"{round_:02x}{index:02x}" * 16


def aggregate_cid(round_: int) -> str:
    return f"bafkreiaggregate{round_:02d}" + "b" * 40


def aggregate_hash(round_: int) -> str:
    return "0x" + f"a{round_:01x}" * 32


def balances(token, *holders) -> dict:
    return {str(h): token.balanceOf(h) for h in holders}


def moved(token, before: dict) -> dict:
    return {h: token.balanceOf(h) - b for h, b in before.items()}


@pytest.fixture(scope="module")
def hospitals():
    """Three institutions, each training on its own data."""
    return [accounts[7], accounts[8], accounts[9]]


@pytest.fixture(scope="module")
def sponsor(doctor):
    return doctor


@pytest.fixture(scope="module")
def aggregator(node):
    return node


@pytest.fixture
def base_model(models, provider):
    return register_model(models, provider, data_type=DataType.CYTOLOGY, name=BASE_NAME)


def open_training(token, rounds, sponsor, base_model, participants, aggregator, *, reward=REWARD,
                  fee=AGGREGATOR_FEE, max_rounds=MAX_ROUNDS, target=TARGET_BPS, duration=ROUND_DURATION):
    token.approve(rounds, len(participants) * max_rounds * reward + max_rounds * fee, {"from": sponsor})
    tx = rounds.openTraining(base_model, participants, aggregator, reward, fee, max_rounds, target, duration,
                             {"from": sponsor})
    return tx.return_value, tx


def submit(rounds, training_id, round_, participants, hospitals, samples=100):
    for participant in participants:
        index = hospitals.index(participant)
        rounds.submitUpdate(training_id, round_, update_cid(round_, index), update_hash(round_, index),
                            samples + index, {"from": participant})


def post(rounds, training_id, round_, aggregator, metric):
    return rounds.postAggregate(training_id, round_, aggregate_cid(round_), aggregate_hash(round_), metric,
                                {"from": aggregator})


@pytest.fixture
def training_id(token, rounds, sponsor, base_model, hospitals, aggregator):
    return open_training(token, rounds, sponsor, base_model, hospitals, aggregator)[0]


# ---------------------------------------------------------------- opening


def test_open_training_escrows_every_round_and_opens_round_one_from_the_base_model(token, rounds, sponsor,
                                                                                   base_model, hospitals,
                                                                                   aggregator):
    before = balances(token, sponsor, rounds)
    training_id, tx = open_training(token, rounds, sponsor, base_model, hospitals, aggregator)
    deadline = tx.timestamp + ROUND_DURATION

    assert training_id == 1 and rounds.trainingCount() == 1
    assert ESCROW == 27 * AID
    assert moved(token, before) == {sponsor.address: -ESCROW, rounds.address: ESCROW}
    assert event_args(tx, "TrainingOpened") == {
        "trainingId": 1, "sponsor": sponsor.address, "aggregator": aggregator.address, "baseModelId": base_model,
        "participants": tuple(h.address for h in hospitals), "rewardPerUpdate": REWARD,
        "aggregatorFee": AGGREGATOR_FEE, "maxRounds": MAX_ROUNDS, "targetMetricBps": TARGET_BPS,
        "roundDuration": ROUND_DURATION, "escrow": ESCROW,
    }
    assert event_args(tx, "RoundOpened") == {
        "trainingId": 1, "round": 1, "startCid": CID, "startSha256": WEIGHTS_HASH, "deadline": deadline,
    }
    assert plain(rounds.getTraining(1)) == (
        sponsor.address, ROUND_DURATION, MAX_ROUNDS, 1, aggregator.address, REWARD, RUNNING, AGGREGATOR_FEE,
        TARGET_BPS, ESCROW, base_model, 0,
    )
    assert list(rounds.participantsOf(1)) == [h.address for h in hospitals]
    assert plain(rounds.getRound(1, 1)) == (CID, WEIGHTS_HASH, "", ZERO_HASH, 0, 0, deadline)
    for unknown in (0, 2):
        with reverts_with("UnknownRound", 1, unknown):
            rounds.getRound(1, unknown)
    with reverts_with("UnknownTraining", 2):
        rounds.getTraining(2)
    with reverts_with("UnknownTraining", 2):
        rounds.participantsOf(2)


def test_open_training_rejects_bad_terms(token, rounds, models, sponsor, base_model, hospitals, aggregator, auditor):
    token.approve(rounds, 10**6 * AID, {"from": sponsor})
    before = balances(token, sponsor, rounds)
    a, b, c = hospitals
    too_many = addresses(rounds.MAX_PARTICIPANTS() + 1)
    assert (rounds.MIN_PARTICIPANTS(), rounds.MAX_PARTICIPANTS()) == (2, 32)
    assert (rounds.MIN_ROUND_DURATION(), rounds.MAX_ROUND_DURATION()) == (60, 30 * DAY)
    cases = [
        (dict(participants=[a]), ("InvalidParticipantCount", 1)),
        (dict(participants=too_many), ("InvalidParticipantCount", 33)),
        (dict(participants=[a, ZERO_ADDRESS]), ("InvalidParticipant", ZERO_ADDRESS)),
        (dict(participants=[a, b, a]), ("DuplicateParticipant", a.address)),
        (dict(aggregator=ZERO_ADDRESS), ("InvalidAggregator", ZERO_ADDRESS)),
        (dict(max_rounds=0), ("InvalidMaxRounds", 0)),
        (dict(target=10_001), ("InvalidMetric", 10_001)),
        (dict(duration=59), ("InvalidRoundDuration", 59)),
        (dict(duration=30 * DAY + 1), ("InvalidRoundDuration", 30 * DAY + 1)),
        (dict(model=99), ("UnknownModel", 99)),
    ]
    for change, (error, *args) in cases:
        terms = dict(model=base_model, participants=[a, b, c], aggregator=aggregator, max_rounds=MAX_ROUNDS,
                     target=TARGET_BPS, duration=ROUND_DURATION) | change
        with reverts_with(error, *args):
            rounds.openTraining(terms["model"], terms["participants"], terms["aggregator"], REWARD, AGGREGATOR_FEE,
                                terms["max_rounds"], terms["target"], terms["duration"], {"from": sponsor})
    models.suspend(base_model, "under review", {"from": auditor})
    with reverts_with("ModelNotActive", base_model, ModelStatus.SUSPENDED):
        rounds.openTraining(base_model, [a, b], aggregator, REWARD, AGGREGATOR_FEE, 1, 0, ROUND_DURATION,
                            {"from": sponsor})
    assert rounds.trainingCount() == 0
    assert moved(token, before) == {sponsor.address: 0, rounds.address: 0}


def addresses(count: int) -> list[str]:
    """`count` distinct institutions' addresses (they need no keys: these ones never submit)."""
    return [to_address(f"0x{0xF00D00 + i:040x}") for i in range(count)]


def test_thirty_two_participants_is_the_most(token, rounds, sponsor, base_model, aggregator):
    group = addresses(32)
    training_id, tx = open_training(token, rounds, sponsor, base_model, group, aggregator, max_rounds=1)
    assert len(rounds.participantsOf(training_id)) == 32
    assert token.balanceOf(rounds) == 32 * REWARD + AGGREGATOR_FEE


# ---------------------------------------------------------------- submissions


def test_participants_submit_one_update_per_round(rounds, training_id, hospitals):
    a, b, c = hospitals
    tx = rounds.submitUpdate(training_id, 1, update_cid(1, 0), update_hash(1, 0), 120, {"from": a})
    assert event_args(tx, "UpdateSubmitted") == {
        "trainingId": training_id, "round": 1, "participant": a.address, "updateCid": update_cid(1, 0),
        "updateSha256": update_hash(1, 0), "numSamples": 120,
    }
    assert plain(rounds.getUpdate(training_id, 1, a)) == (update_cid(1, 0), update_hash(1, 0), 120)
    assert plain(rounds.getUpdate(training_id, 1, b)) == ("", ZERO_HASH, 0)
    assert rounds.getRound(training_id, 1)[5] == 1
    with reverts_with("AlreadySubmitted", training_id, 1, a.address):
        rounds.submitUpdate(training_id, 1, update_cid(1, 9), update_hash(1, 9), 5, {"from": a})
    # The first update stands.
    assert plain(rounds.getUpdate(training_id, 1, a)) == (update_cid(1, 0), update_hash(1, 0), 120)
    with reverts_with("UnknownRound", training_id, 2):
        rounds.getUpdate(training_id, 2, a)


def test_submission_checks(rounds, training_id, hospitals, sponsor, aggregator, stranger):
    a = hospitals[0]
    for outsider in (sponsor, aggregator, stranger):
        with reverts_with("NotParticipant", training_id, outsider.address):
            rounds.submitUpdate(training_id, 1, update_cid(1, 0), update_hash(1, 0), 1, {"from": outsider})
    cases = [
        ((2, update_cid(1, 0), update_hash(1, 0), 1), ("NotCurrentRound", training_id, 2, 1)),
        ((0, update_cid(1, 0), update_hash(1, 0), 1), ("NotCurrentRound", training_id, 0, 1)),
        ((1, update_cid(1, 0), update_hash(1, 0), 0), ("ZeroSamples",)),
        ((1, "", update_hash(1, 0), 1), ("EmptyCid",)),
        ((1, update_cid(1, 0), ZERO_HASH, 1), ("ZeroHash",)),
    ]
    for args, (error, *expected) in cases:
        with reverts_with(error, *expected):
            rounds.submitUpdate(training_id, *args, {"from": a})
    with reverts_with("UnknownTraining", 9):
        rounds.submitUpdate(9, 1, update_cid(1, 0), update_hash(1, 0), 1, {"from": a})
    deadline = rounds.getRound(training_id, 1)[6]
    chain.sleep(deadline - now() + 1)
    with reverts_with("RoundDeadlinePassed", training_id, 1, deadline):
        rounds.submitUpdate(training_id, 1, update_cid(1, 0), update_hash(1, 0), 1, {"from": a})
    assert rounds.getRound(training_id, 1)[5] == 0


# ---------------------------------------------------------------- aggregation


def test_aggregate_waits_for_every_update_or_the_deadline(rounds, training_id, hospitals, aggregator):
    deadline = rounds.getRound(training_id, 1)[6]
    with reverts_with("RoundNotReady", training_id, 1, 0, deadline):
        post(rounds, training_id, 1, aggregator, 5_000)
    submit(rounds, training_id, 1, hospitals[:2], hospitals)
    with reverts_with("RoundNotReady", training_id, 1, 2, deadline):
        post(rounds, training_id, 1, aggregator, 5_000)
    submit(rounds, training_id, 1, hospitals[2:], hospitals)
    post(rounds, training_id, 1, aggregator, 5_000)
    assert rounds.getTraining(training_id)[3] == 2


def test_an_empty_round_cannot_be_aggregated_even_after_its_deadline(rounds, training_id, aggregator):
    deadline = rounds.getRound(training_id, 1)[6]
    chain.sleep(deadline - now() + 1)
    with reverts_with("RoundNotReady", training_id, 1, 0, deadline):
        post(rounds, training_id, 1, aggregator, 5_000)


def test_aggregate_checks(rounds, training_id, hospitals, aggregator, sponsor, stranger):
    submit(rounds, training_id, 1, hospitals, hospitals)
    for outsider in (sponsor, hospitals[0], stranger):
        with reverts_with("NotAggregator", training_id, outsider.address):
            post(rounds, training_id, 1, outsider, 5_000)
    with reverts_with("NotCurrentRound", training_id, 2, 1):
        post(rounds, training_id, 2, aggregator, 5_000)
    with reverts_with("InvalidMetric", 10_001):
        post(rounds, training_id, 1, aggregator, 10_001)
    with reverts_with("EmptyCid"):
        rounds.postAggregate(training_id, 1, "", aggregate_hash(1), 5_000, {"from": aggregator})
    with reverts_with("ZeroHash"):
        rounds.postAggregate(training_id, 1, aggregate_cid(1), ZERO_HASH, 5_000, {"from": aggregator})
    with reverts_with("UnknownTraining", 4):
        post(rounds, 4, 1, aggregator, 5_000)
    assert rounds.getTraining(training_id)[3] == 1


def test_a_round_below_target_pays_its_updates_and_opens_the_next_from_the_aggregate(token, rounds, training_id,
                                                                                     hospitals, aggregator,
                                                                                     sponsor):
    submit(rounds, training_id, 1, hospitals, hospitals)
    before = balances(token, *hospitals, aggregator, sponsor, rounds)
    tx = post(rounds, training_id, 1, aggregator, 8_000)
    new_deadline = tx.timestamp + ROUND_DURATION

    assert moved(token, before) == {
        **{h.address: REWARD for h in hospitals}, aggregator.address: AGGREGATOR_FEE, sponsor.address: 0,
        rounds.address: -(3 * REWARD + AGGREGATOR_FEE),
    }
    assert event_args(tx, "AggregatePosted") == {
        "trainingId": training_id, "round": 1, "aggregateCid": aggregate_cid(1),
        "aggregateSha256": aggregate_hash(1), "metricBps": 8_000, "updates": 3,
    }
    assert event_args(tx, "RoundOpened") == {
        "trainingId": training_id, "round": 2, "startCid": aggregate_cid(1), "startSha256": aggregate_hash(1),
        "deadline": new_deadline,
    }
    assert "TrainingFinished" not in tx.events
    training = plain(rounds.getTraining(training_id))
    assert training[3] == 2 and training[6] == RUNNING
    assert training[9] == ESCROW - 3 * REWARD - AGGREGATOR_FEE == token.balanceOf(rounds)
    first = plain(rounds.getRound(training_id, 1))
    assert first[:6] == (CID, WEIGHTS_HASH, aggregate_cid(1), aggregate_hash(1), 8_000, 3)
    assert plain(rounds.getRound(training_id, 2)) == (aggregate_cid(1), aggregate_hash(1), "", ZERO_HASH, 0, 0,
                                                      new_deadline)
    # Round 1 is closed: its late updates and aggregates go nowhere.
    with reverts_with("NotCurrentRound", training_id, 1, 2):
        rounds.submitUpdate(training_id, 1, update_cid(1, 0), update_hash(1, 0), 1, {"from": hospitals[0]})
    with reverts_with("NotCurrentRound", training_id, 1, 2):
        post(rounds, training_id, 1, aggregator, 9_900)
    # The updates of round 1 stay readable for anyone recomputing its FedAvg.
    assert [plain(rounds.getUpdate(training_id, 1, h))[2] for h in hospitals] == [100, 101, 102]


def test_reaching_the_target_finishes_and_publishes_the_aggregate_for_the_sponsor(token, rounds, models,
                                                                                  training_id, hospitals,
                                                                                  aggregator, sponsor, provider,
                                                                                  base_model):
    submit(rounds, training_id, 1, hospitals, hospitals)
    post(rounds, training_id, 1, aggregator, 9_000)
    submit(rounds, training_id, 2, hospitals, hospitals)
    before = balances(token, *hospitals, aggregator, sponsor, rounds)
    tx = post(rounds, training_id, 2, aggregator, TARGET_BPS)
    model_id = tx.events["ModelRegistered"]["modelId"]
    refund = ESCROW - 2 * (3 * REWARD + AGGREGATOR_FEE)

    assert moved(token, before) == {
        **{h.address: REWARD for h in hospitals}, aggregator.address: AGGREGATOR_FEE, sponsor.address: refund,
        rounds.address: -(3 * REWARD + AGGREGATOR_FEE + refund),
    }
    assert token.balanceOf(rounds) == 0
    assert event_args(tx, "TrainingFinished") == {
        "trainingId": training_id, "modelId": model_id, "rounds": 2, "metricBps": TARGET_BPS, "refund": refund,
    }
    assert event_args(tx, "ModelRegistered") == {
        "modelId": model_id, "provider": sponsor.address, "name": BASE_NAME, "version": 1,
        "weightsCid": aggregate_cid(2), "weightsSha256": aggregate_hash(2), "inputType": DataType.CYTOLOGY,
        "price": MODEL_PRICE,
    }
    assert event_args(tx, "ModelPublishedFor") == {
        "modelId": model_id, "provider": sponsor.address, "publisher": rounds.address,
    }
    assert "RoundOpened" not in tx.events
    assert models.getModel(model_id)[0] == sponsor.address
    assert models.latestVersion(provider, BASE_NAME) == 1
    training = plain(rounds.getTraining(training_id))
    assert (training[3], training[6], training[9], training[11]) == (2, FINISHED, 0, model_id)
    with reverts_with("TrainingNotRunning", training_id, FINISHED):
        submit(rounds, training_id, 2, hospitals[:1], hospitals)
    with reverts_with("TrainingNotRunning", training_id, FINISHED):
        post(rounds, training_id, 2, aggregator, TARGET_BPS)
    with reverts_with("TrainingNotRunning", training_id, FINISHED):
        rounds.cancelTraining(training_id, {"from": sponsor})


def test_the_last_round_finishes_below_target_and_pays_out_everything(token, rounds, sponsor, base_model,
                                                                      hospitals, aggregator):
    before = balances(token, *hospitals, aggregator, sponsor, rounds)
    training_id, _ = open_training(token, rounds, sponsor, base_model, hospitals, aggregator, max_rounds=2)
    for round_ in (1, 2):
        submit(rounds, training_id, round_, hospitals, hospitals)
        tx = post(rounds, training_id, round_, aggregator, 6_000 + round_)
    assert event_args(tx, "TrainingFinished")["rounds"] == 2
    assert event_args(tx, "TrainingFinished")["refund"] == 0
    assert event_args(tx, "TrainingFinished")["metricBps"] == 6_002
    escrow = 2 * (3 * REWARD + AGGREGATOR_FEE)
    assert moved(token, before) == {
        **{h.address: 2 * REWARD for h in hospitals}, aggregator.address: 2 * AGGREGATOR_FEE,
        sponsor.address: -escrow, rounds.address: 0,
    }
    assert rounds.getTraining(training_id)[6] == FINISHED


def test_a_single_round_training_finishes_at_once(token, rounds, sponsor, base_model, hospitals, aggregator):
    training_id, _ = open_training(token, rounds, sponsor, base_model, hospitals[:2], aggregator, max_rounds=1,
                                   target=10_000)
    submit(rounds, training_id, 1, hospitals[:2], hospitals)
    tx = post(rounds, training_id, 1, aggregator, 0)
    assert event_args(tx, "TrainingFinished")["rounds"] == 1
    assert token.balanceOf(rounds) == 0


def test_a_partial_round_after_the_deadline_pays_only_the_updates_it_got(token, rounds, training_id, hospitals,
                                                                        aggregator, sponsor):
    a, b, late = hospitals
    submit(rounds, training_id, 1, [a, b], hospitals)
    chain.sleep(ROUND_DURATION + 1)
    with reverts_with("RoundDeadlinePassed", training_id, 1, rounds.getRound(training_id, 1)[6]):
        submit(rounds, training_id, 1, [late], hospitals)
    before = balances(token, *hospitals, aggregator, sponsor, rounds)
    tx = post(rounds, training_id, 1, aggregator, 9_999)
    assert event_args(tx, "AggregatePosted")["updates"] == 2
    # The target is reached: the sponsor gets back all but the two updates and one fee.
    refund = ESCROW - 2 * REWARD - AGGREGATOR_FEE
    assert moved(token, before) == {
        a.address: REWARD, b.address: REWARD, late.address: 0, aggregator.address: AGGREGATOR_FEE,
        sponsor.address: refund, rounds.address: -ESCROW,
    }
    assert [t["to"] for t in tx.events["Transfer"]] == [a.address, b.address, aggregator.address, sponsor.address]


def test_a_partial_round_continues_with_everyone_in_the_next(token, rounds, training_id, hospitals, aggregator):
    a, b, late = hospitals
    submit(rounds, training_id, 1, [a], hospitals)
    chain.sleep(ROUND_DURATION + 1)
    post(rounds, training_id, 1, aggregator, 1_000)
    # The latecomer is still a participant of round 2.
    submit(rounds, training_id, 2, [late, b, a], hospitals)
    before = balances(token, *hospitals)
    post(rounds, training_id, 2, aggregator, 2_000)
    assert moved(token, before) == {h.address: REWARD for h in hospitals}
    assert rounds.getTraining(training_id)[3] == 3


# ---------------------------------------------------------------- cancellation


def test_sponsor_cancels_a_stalled_round_paying_the_updates_it_got(token, rounds, training_id, hospitals,
                                                                  aggregator, sponsor, stranger):
    submit(rounds, training_id, 1, hospitals[:1], hospitals)
    deadline = rounds.getRound(training_id, 1)[6]
    with reverts_with("RoundNotExpired", training_id, 1, deadline):
        rounds.cancelTraining(training_id, {"from": sponsor})
    chain.sleep(deadline - now() + 1)
    for intruder in (aggregator, hospitals[0], stranger):
        with reverts_with("NotSponsor", training_id, intruder.address):
            rounds.cancelTraining(training_id, {"from": intruder})
    before = balances(token, *hospitals, aggregator, sponsor, rounds)
    tx = rounds.cancelTraining(training_id, {"from": sponsor})
    refund = ESCROW - REWARD
    assert event_args(tx, "TrainingCancelled") == {
        "trainingId": training_id, "round": 1, "paidUpdates": 1, "refund": refund,
    }
    assert moved(token, before) == {
        hospitals[0].address: REWARD, hospitals[1].address: 0, hospitals[2].address: 0, aggregator.address: 0,
        sponsor.address: refund, rounds.address: -ESCROW,
    }
    training = plain(rounds.getTraining(training_id))
    assert (training[6], training[9], training[11]) == (CANCELLED, 0, 0)
    with reverts_with("TrainingNotRunning", training_id, CANCELLED):
        post(rounds, training_id, 1, aggregator, 9_000)
    with reverts_with("TrainingNotRunning", training_id, CANCELLED):
        rounds.cancelTraining(training_id, {"from": sponsor})
    with reverts_with("UnknownTraining", 3):
        rounds.cancelTraining(3, {"from": sponsor})


def test_cancel_in_a_later_round_refunds_the_rounds_not_run(token, rounds, training_id, hospitals, aggregator,
                                                            sponsor):
    submit(rounds, training_id, 1, hospitals, hospitals)
    post(rounds, training_id, 1, aggregator, 1_000)
    chain.sleep(ROUND_DURATION + 1)
    before = balances(token, *hospitals, aggregator, sponsor, rounds)
    tx = rounds.cancelTraining(training_id, {"from": sponsor})
    refund = ESCROW - 3 * REWARD - AGGREGATOR_FEE
    assert event_args(tx, "TrainingCancelled") == {
        "trainingId": training_id, "round": 2, "paidUpdates": 0, "refund": refund,
    }
    assert moved(token, before) == {**{h.address: 0 for h in hospitals}, aggregator.address: 0,
                                    sponsor.address: refund, rounds.address: -refund}
    assert token.balanceOf(rounds) == 0


def test_trainings_keep_their_escrows_apart(token, rounds, sponsor, doctor2, base_model, hospitals, aggregator):
    first, _ = open_training(token, rounds, sponsor, base_model, hospitals, aggregator)
    second, _ = open_training(token, rounds, doctor2, base_model, hospitals[:2], aggregator, max_rounds=1, fee=0)
    assert token.balanceOf(rounds) == ESCROW + 2 * REWARD
    submit(rounds, second, 1, hospitals[:2], hospitals)
    post(rounds, second, 1, aggregator, 0)
    assert token.balanceOf(rounds) == ESCROW
    assert rounds.getTraining(first)[9] == ESCROW and rounds.getTraining(second)[6] == FINISHED
    # The same institution's update in another training does not count in this one.
    assert rounds.getRound(first, 1)[5] == 0


def test_a_training_without_rewards_moves_no_tokens(token, rounds, sponsor, base_model, hospitals, aggregator):
    training_id, tx = open_training(token, rounds, sponsor, base_model, hospitals, aggregator, reward=0, fee=0,
                                    max_rounds=1)
    assert "Transfer" not in tx.events
    submit(rounds, training_id, 1, hospitals, hospitals)
    tx = post(rounds, training_id, 1, aggregator, 0)
    assert "Transfer" not in tx.events and rounds.getTraining(training_id)[6] == FINISHED
