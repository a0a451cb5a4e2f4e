"""Training without taking the data, in process: DP-SGD within its budget, FedAvg and its
verification, and the non-IID split the federated demo uses."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from aidoc.errors import ModelArtifactError
from aidoc.models.artifacts import load_model, save_model
from aidoc.records import PANEL_OUTCOMES, decode_record, encode_record
from aidoc.training.data import PUBLIC_REFERENCE, federated_split
from aidoc.training.federated import accuracy, base_model, fedavg, local_update, verify_aggregate
from aidoc.training.private import TrainingError, train_private


@pytest.fixture(scope="module")
def split():
    return federated_split(4, seed=0)


@pytest.fixture(scope="module")
def base(split):
    return base_model(split.public_features)


def test_the_split_is_disjoint_non_iid_and_labelled(split):
    sizes = [len(i.targets) for i in split.institutions]
    pooled_x, _ = split.pooled()
    rows = {row.tobytes() for row in pooled_x}
    assert len(rows) == sum(sizes)  # no panel at two institutions
    assert not rows & {row.tobytes() for row in split.test_features}  # none in the held-out set
    assert len(split.public_features) == PUBLIC_REFERENCE and min(sizes) >= 10
    shares = [i.malignant_share for i in split.institutions]
    assert max(shares) - min(shares) > 0.2  # non-IID: the institutions see different case mixes
    record = split.institutions[0].records()[0]
    assert record.outcome in PANEL_OUTCOMES and decode_record(encode_record(record)).outcome == record.outcome


def test_dp_sgd_spends_no_more_than_its_budget_and_learns(split, base):
    x, y = split.pooled()
    loose = train_private(x, y, epsilon=8.0, delta=1e-5, initial=base)
    tight = train_private(x, y, epsilon=0.5, delta=1e-5, initial=base)
    assert 0 < loose.epsilon <= 8.0 + 1e-6 and 0 < tight.epsilon <= 0.5 + 1e-6
    assert tight.noise_multiplier > loose.noise_multiplier  # a smaller budget buys more noise
    untrained = accuracy(base, split.test_features, split.test_targets)
    assert accuracy(loose.network, split.test_features, split.test_targets) > max(untrained, 0.85)
    # The standardization comes from the public base model, never from the private cohort.
    assert np.array_equal(loose.network.feature_mean.numpy(), base.feature_mean.numpy())


@pytest.mark.parametrize("epsilon, delta", [(0, 1e-5), (-1, 1e-5), (1, 0), (1, 1)])
def test_a_budget_that_buys_nothing_is_refused(split, base, epsilon, delta):
    x, y = split.pooled()
    with pytest.raises(TrainingError):
        train_private(x, y, epsilon=epsilon, delta=delta, initial=base)


def test_fedavg_is_the_sample_weighted_mean_and_anyone_can_verify_it(split, base):
    a, b = split.institutions[:2]
    updates = [(save_model(local_update(base, a.features, a.targets, seed=1)), len(a.targets)),
                (save_model(local_update(base, b.features, b.targets, seed=2)), len(b.targets))]
    aggregate = fedavg(updates)
    assert fedavg(updates) == aggregate  # deterministic bytes, hence a checkable sha256
    assert verify_aggregate(updates, hashlib.sha256(aggregate).digest())
    nets = [load_model(w, None).network for w, _ in updates]
    weights = np.array([n for _, n in updates], dtype=np.float64) / sum(n for _, n in updates)
    expected = sum(w * net.layers[0].weight.detach().double().numpy() for w, net in zip(weights, nets))
    got = load_model(aggregate, None).network.layers[0].weight.detach().double().numpy()
    assert np.allclose(got, expected, atol=1e-6)
    # Swapping the sample counts gives another aggregate: the claim is checkable, not just plausible.
    swapped = [(updates[0][0], updates[1][1]), (updates[1][0], updates[0][1])]
    assert not verify_aggregate(swapped, hashlib.sha256(aggregate).digest())


def test_fedavg_refuses_what_it_cannot_average(base):
    with pytest.raises(ModelArtifactError):
        fedavg([])
    with pytest.raises(ModelArtifactError):
        fedavg([(save_model(base), 0)])
