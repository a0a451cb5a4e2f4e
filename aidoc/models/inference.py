"""Running a diagnostic model on health records: batched, on the GPU when there is one.

Every architecture is a `DiagnosticNetwork`: a torch module that also knows its kind, the data type
and preprocessing of its input, its class labels and the hyperparameters that rebuild it.
`DiagnosticModel` wraps a trained network for prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from aidoc.constants import DataType
from aidoc.errors import ModelArtifactError, RecordFormatError
from aidoc.records import HealthRecord

DEFAULT_MAX_BATCH = 64


class DiagnosticNetwork(nn.Module):
    """Base of the architectures a model artifact may name (see artifacts.ARCHITECTURES).

    forward() maps a float32 batch of preprocessed inputs to class logits."""

    kind: ClassVar[str]
    input_type: ClassVar[DataType]
    labels: ClassVar[tuple[str, ...]]

    def hyperparameters(self) -> dict[str, Any]:
        """What from_hyperparameters needs to rebuild this architecture (JSON-serializable)."""
        raise NotImplementedError

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any]) -> DiagnosticNetwork:
        """Builds the architecture; ModelArtifactError if the hyperparameters are not acceptable."""
        raise NotImplementedError

    def input_spec(self) -> dict[str, Any]:
        """What the network reads, for the artifact's metadata (JSON-serializable)."""
        raise NotImplementedError

    def preprocess(self, record: HealthRecord) -> np.ndarray:
        """One record as the float32 array forward() expects (without the batch axis)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Prediction:
    """A model's answer for one record."""

    label: str
    probabilities: dict[str, float]
    model_kind: str


def select_device(preferred: str | torch.device | None = None) -> torch.device:
    """`preferred` if given, else CUDA when torch sees a GPU, else the CPU."""
    if preferred is not None:
        return torch.device(preferred)
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class DiagnosticModel:
    """A trained network ready for prediction (eval mode, on its device)."""

    def __init__(self, network: DiagnosticNetwork, device: str | torch.device | None = None,
                 max_batch: int = DEFAULT_MAX_BATCH):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.device = select_device(device)
        self.network = network.to(self.device).eval()
        self.max_batch = max_batch

    @property
    def kind(self) -> str:
        return self.network.kind

    @property
    def input_type(self) -> DataType:
        return self.network.input_type

    @property
    def labels(self) -> tuple[str, ...]:
        return self.network.labels

    def __repr__(self) -> str:
        return f"DiagnosticModel({self.kind}, {self.input_type.name} -> {'/'.join(self.labels)}, {self.device})"

    def predict(self, records: Sequence[HealthRecord]) -> list[Prediction]:
        """One prediction per record, in order: one forward pass per batch of up to max_batch records.
        RecordFormatError if a record is of another data type or unusable by this model."""
        for record in records:
            if not isinstance(record, HealthRecord) or record.data_type != self.input_type:
                got = record.data_type.name if isinstance(record, HealthRecord) else type(record).__name__
                raise RecordFormatError(f"this {self.kind} model reads {self.input_type.name} records, not {got}")
        predictions: list[Prediction] = []
        for start in range(0, len(records), self.max_batch):
            batch = records[start:start + self.max_batch]
            predictions.extend(self._predict_batch(np.stack([self.network.preprocess(r) for r in batch])))
        return predictions

    def predict_arrays(self, inputs: np.ndarray) -> np.ndarray:
        """Class probabilities for already preprocessed inputs (rows), batched like predict()."""
        parts = [self._probabilities(inputs[start:start + self.max_batch])
                 for start in range(0, len(inputs), self.max_batch)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)), dtype=np.float32)

    def _probabilities(self, inputs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)).to(self.device)
            probabilities = torch.softmax(self.network(batch), dim=1).float().cpu().numpy()
        if not np.isfinite(probabilities).all():
            raise ModelArtifactError(f"the {self.kind} model produced non-finite outputs; its weights are unusable")
        return probabilities

    def _predict_batch(self, inputs: np.ndarray) -> list[Prediction]:
        return [
            Prediction(label=self.labels[int(np.argmax(row))],
                       probabilities={label: float(p) for label, p in zip(self.labels, row)},
                       model_kind=self.kind)
            for row in self._probabilities(inputs)
        ]
