"""DP-SGD of the panel MLP with opacus: per-sample gradients clipped to `max_grad_norm`, Gaussian
noise calibrated so that the whole run spends at most (epsilon, delta) by opacus' RDP accountant.

Per-sample gradients and the plaintext panels exist only inside this process; what comes out is
the trained network, the epsilon actually spent, and held-out metrics."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from aidoc.errors import AidocError
from aidoc.models.panel import PanelMLP
from aidoc.models.training import seeded

MAX_GRAD_NORM = 1.0


class TrainingError(AidocError):
    """A training job cannot run as asked (no cohort, a budget that buys no step...)."""


@dataclass(frozen=True)
class PrivateTraining:
    network: PanelMLP
    epsilon: float  # spent, by the accountant: at most the budget
    delta: float
    noise_multiplier: float
    steps: int


def train_private(features: np.ndarray, targets: np.ndarray, *, epsilon: float, delta: float, epochs: int = 30,
                  batch_size: int = 32, lr: float = 0.05, seed: int = 0,
                  initial: PanelMLP | None = None) -> PrivateTraining:
    """Trains a panel MLP (from `initial`'s weights when given) on (features, targets) with DP-SGD
    spending at most (epsilon, delta). The feature standardization is kept from `initial`, or fitted
    on a public reference (the whole panel distribution's published ranges would do; here the
    initial model's), never on the private cohort without noise."""
    from opacus import PrivacyEngine

    if len(features) < 2:
        raise TrainingError("a DP training job needs a cohort of at least two records")
    if not (epsilon > 0 and 0 < delta < 1):
        raise TrainingError("a DP budget needs epsilon > 0 and 0 < delta < 1")
    with seeded(seed):
        network = PanelMLP(initial.hidden, initial.dropout) if initial is not None else PanelMLP()
        if initial is not None:
            network.load_state_dict(initial.state_dict())
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        y = torch.from_numpy(np.asarray(targets)).long()
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size,
                                             shuffle=True, generator=torch.Generator().manual_seed(seed))
        optimizer = torch.optim.SGD(network.parameters(), lr=lr, momentum=0.9)
        with warnings.catch_warnings():
            # Seeded on purpose (reproducible runs), and the inputs need no gradient.
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            engine = PrivacyEngine(accountant="rdp", secure_mode=False)
            module, optimizer, loader = engine.make_private_with_epsilon(
                module=network, optimizer=optimizer, data_loader=loader, target_epsilon=epsilon,
                target_delta=delta, epochs=epochs, max_grad_norm=MAX_GRAD_NORM,
                noise_generator=torch.Generator().manual_seed(seed + 1))
            module.train()
            steps = 0
            for _ in range(epochs):
                for batch_x, batch_y in loader:
                    if len(batch_x) == 0:  # Poisson sampling can draw an empty batch
                        continue
                    optimizer.zero_grad()
                    F.cross_entropy(module(batch_x), batch_y).backward()
                    optimizer.step()
                    steps += 1
        spent = float(engine.get_epsilon(delta))
        noise = float(optimizer.noise_multiplier)
    network.eval()
    trained = PanelMLP(network.hidden, network.dropout)
    trained.load_state_dict({name: value.detach().clone() for name, value in network.state_dict().items()})
    trained.eval()
    return PrivateTraining(trained, spent, delta, noise, steps)
