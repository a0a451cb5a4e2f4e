"""The Wisconsin diagnostic panels (scikit-learn's load_breast_cancer, 569 x 30) divided the way a
federated demo needs them: a public reference slice the model provider holds, one shared held-out
test set, and the rest split across institutions non-IID (each institution's malignant share is
drawn from a Dirichlet distribution, so some see mostly benign panels and others mostly malignant)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aidoc.records import PANEL_FEATURES, PANEL_OUTCOMES, HealthRecord

TEST_FRACTION = 0.3
PUBLIC_REFERENCE = 40  # panels the provider holds itself: the base model's standardization comes from them


@dataclass(frozen=True)
class Institution:
    name: str
    features: np.ndarray
    targets: np.ndarray  # 0 malignant, 1 benign (PANEL_LABELS)

    @property
    def malignant_share(self) -> float:
        return float((self.targets == 0).mean())

    def records(self) -> list[HealthRecord]:
        """The institution's panels as records, each with its confirmed outcome."""
        return [HealthRecord.lab_panel(dict(zip(PANEL_FEATURES, map(float, row))), PANEL_OUTCOMES[int(target)])
                for row, target in zip(self.features, self.targets)]


@dataclass(frozen=True)
class FederatedSplit:
    public_features: np.ndarray
    public_targets: np.ndarray  # the provider's own panels: the base model's standardization, the aggregator's validation
    test_features: np.ndarray
    test_targets: np.ndarray
    institutions: list[Institution]

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """Every institution's panels together: what central training (the upper bound) would see."""
        return (np.concatenate([i.features for i in self.institutions]),
                np.concatenate([i.targets for i in self.institutions]))


def federated_split(institutions: int = 4, *, alpha: float = 0.6, seed: int = 0) -> FederatedSplit:
    """A seeded non-IID split of the panels across `institutions` (3 to 8)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    if not 2 <= institutions <= 8:
        raise ValueError("a federated split needs 2 to 8 institutions")
    data = load_breast_cancer()
    x_rest, x_test, y_rest, y_test = train_test_split(data.data, data.target, test_size=TEST_FRACTION,
                                                      stratify=data.target, random_state=seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_rest))
    public, private = order[:PUBLIC_REFERENCE], order[PUBLIC_REFERENCE:]
    shares = rng.dirichlet([alpha] * institutions, size=2)  # per class: how its panels spread
    parts: list[list[int]] = [[] for _ in range(institutions)]
    for label in (0, 1):
        members = private[y_rest[private] == label]
        cuts = (np.cumsum(shares[label])[:-1] * len(members)).astype(int)
        for index, chunk in enumerate(np.split(members, cuts)):
            parts[index] += chunk.tolist()
    for index, part in enumerate(parts):  # every institution holds a few of each class at least
        if len(part) < 10:
            donor = max(range(institutions), key=lambda i: len(parts[i]))
            parts[index] += parts[donor][:10 - len(part)]
            del parts[donor][:10 - len(part)]
    members = [Institution(f"hospital-{chr(ord('A') + i)}", x_rest[sorted(part)], y_rest[sorted(part)])
               for i, part in enumerate(parts)]
    return FederatedSplit(x_rest[public], y_rest[public], x_test, y_test, members)
