"""Federated averaging of panel-MLP updates, as FederatedRounds coordinates it on-chain.

Each institution trains the round's starting model on panels only it holds (`local_update`) and
publishes the weights (safetensors) with their sample count. The aggregator computes FedAvg: the
sample-weighted mean of every tensor, accumulated in float64 in the participants' on-chain order
and rounded once to float32, so anyone holding the same updates computes the same bytes and can
check the posted aggregate's sha256 (`verify_aggregate`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from aidoc.errors import ModelArtifactError
from aidoc.models.artifacts import load_model, save_model
from aidoc.models.inference import DiagnosticModel
from aidoc.models.panel import PanelMLP
from aidoc.models.training import binary_metrics, fit_network, seeded

LOCAL_EPOCHS = 5


def local_update(start: PanelMLP, features: np.ndarray, targets: np.ndarray, *, epochs: int = LOCAL_EPOCHS,
                 seed: int = 0) -> PanelMLP:
    """The round's starting model trained on one institution's panels (its standardization kept:
    it is the base model's, the same for every participant)."""
    with seeded(seed):
        network = PanelMLP(start.hidden, start.dropout)
        network.load_state_dict(start.state_dict())
        fit_network(network, features, targets, epochs=epochs, batch_size=32, lr=3e-3, weight_decay=1e-2, seed=seed)
    return network


def fedavg(updates: Sequence[tuple[bytes, int]]) -> bytes:
    """The aggregate of (weights artifact, sample count) updates, as a weights artifact."""
    if not updates:
        raise ModelArtifactError("FedAvg needs at least one update")
    networks = [load_model(weights, None).network for weights, _ in updates]
    counts = [int(samples) for _, samples in updates]
    if any(count <= 0 for count in counts):
        raise ModelArtifactError("every update must come with a positive sample count")
    first = networks[0]
    if any(not isinstance(n, PanelMLP) or n.hyperparameters() != first.hyperparameters() for n in networks):
        raise ModelArtifactError("FedAvg needs updates of one architecture")
    total = float(sum(counts))
    averaged: dict[str, torch.Tensor] = {}
    for name, reference in first.state_dict().items():
        accumulated = torch.zeros(reference.shape, dtype=torch.float64)
        for network, count in zip(networks, counts):
            accumulated += network.state_dict()[name].to(torch.float64) * (count / total)
        averaged[name] = accumulated.to(reference.dtype)
    aggregate = PanelMLP(first.hidden, first.dropout)
    aggregate.load_state_dict(averaged)
    return save_model(aggregate)


def verify_aggregate(updates: Sequence[tuple[bytes, int]], aggregate_sha256: bytes) -> bool:
    """Whether the posted aggregate is FedAvg of the posted updates."""
    return hashlib.sha256(fedavg(updates)).digest() == bytes(aggregate_sha256)


def accuracy(network: PanelMLP, features: np.ndarray, targets: np.ndarray) -> float:
    """Held-out accuracy (malignant = probability of class 0 >= 0.5)."""
    probabilities = DiagnosticModel(network).predict_arrays(np.asarray(features, dtype=np.float32))[:, 0]
    return binary_metrics(np.asarray(targets), probabilities)["accuracy"]


def base_model(public_features: np.ndarray, seed: int = 0) -> PanelMLP:
    """An untrained panel MLP standardized on the provider's public reference panels: the starting
    point of the demo's training (a shared standardization is what makes updates averageable)."""
    with seeded(seed):
        network = PanelMLP()
    network.set_standardization(public_features)
    network.eval()
    return network
