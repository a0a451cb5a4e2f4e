"""The lab panel model: an MLP classifying a Wisconsin diagnostic panel as malignant or benign.

The feature standardization (training mean and std) lives in the model as buffers, so the
weights file alone turns raw panel values into a prediction. A scikit-learn logistic regression
on standardized features is the baseline that training reports compare against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from aidoc.constants import DataType
from aidoc.errors import ModelArtifactError
from aidoc.models.inference import DiagnosticNetwork
from aidoc.records import PANEL_FEATURES, PANEL_OUTCOMES, HealthRecord

PANEL_KIND = "panel-mlp"
# In sklearn's target order: load_breast_cancer().target is 0 for malignant, 1 for benign.
PANEL_LABELS = PANEL_OUTCOMES
MAX_HIDDEN_LAYERS = 4
MAX_HIDDEN_UNITS = 1024


class PanelMLP(DiagnosticNetwork):
    """Standardize -> [Linear -> ReLU -> Dropout] per hidden layer -> Linear to the two classes."""

    kind = PANEL_KIND
    input_type = DataType.LAB_PANEL
    labels = PANEL_LABELS

    def __init__(self, hidden: Sequence[int] = (32, 16), dropout: float = 0.1):
        super().__init__()
        self.hidden = tuple(int(units) for units in hidden)
        self.dropout = float(dropout)
        self.register_buffer("feature_mean", torch.zeros(len(PANEL_FEATURES)))
        self.register_buffer("feature_std", torch.ones(len(PANEL_FEATURES)))
        layers: list[nn.Module] = []
        width = len(PANEL_FEATURES)
        for units in self.hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(self.dropout)]
            width = units
        layers.append(nn.Linear(width, len(PANEL_LABELS)))
        self.layers = nn.Sequential(*layers)

    def set_standardization(self, features: np.ndarray) -> None:
        """Stores the mean and std of the training features (rows = samples)."""
        self.feature_mean.copy_(torch.as_tensor(features.mean(axis=0), dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(np.maximum(features.std(axis=0), 1e-6), dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers((features - self.feature_mean) / self.feature_std)

    def hyperparameters(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "dropout": self.dropout}

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any]) -> PanelMLP:
        if set(hyperparameters) != {"hidden", "dropout"}:
            raise ModelArtifactError("panel-mlp hyperparameters must be exactly hidden and dropout")
        hidden, dropout = hyperparameters["hidden"], hyperparameters["dropout"]
        if (not isinstance(hidden, list) or not 1 <= len(hidden) <= MAX_HIDDEN_LAYERS
                or not all(type(units) is int and 1 <= units <= MAX_HIDDEN_UNITS for units in hidden)):
            raise ModelArtifactError(f"panel-mlp hidden must be 1 to {MAX_HIDDEN_LAYERS} layer sizes of 1 to "
                                     f"{MAX_HIDDEN_UNITS} units")
        if type(dropout) is not float or not 0.0 <= dropout < 1.0:
            raise ModelArtifactError("panel-mlp dropout must be a float in [0, 1)")
        return cls(hidden, dropout)

    def input_spec(self) -> dict[str, Any]:
        return {"data_type": int(DataType.LAB_PANEL), "features": list(PANEL_FEATURES)}

    def preprocess(self, record: HealthRecord) -> np.ndarray:
        return record.panel_vector().astype(np.float32)


def fit_logistic_baseline(features: np.ndarray, targets: np.ndarray, seed: int):
    """The comparison baseline: logistic regression on standardized features (training reports only)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed)).fit(features, targets)
