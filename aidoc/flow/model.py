"""A provider publishes a model: safetensors weights on IPFS, their sha256 and a price on-chain."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aidoc.chain.contracts import call_struct
from aidoc.constants import DataType, ModelStatus
from aidoc.errors import AidocError
from aidoc.flow.session import Session


class ModelFileError(AidocError):
    """A weights file cannot be published."""


@dataclass(frozen=True)
class ModelInfo:
    model_id: int
    provider: str
    name: str
    version: int
    input_type: DataType
    price: int
    status: ModelStatus
    weights_cid: str


def register_model(session: Session, weights_path: Path, name: str, input_type: DataType, price: int) -> int:
    """Uploads the weights, registers them and returns the new model id."""
    from aidoc.models import load_model

    try:
        weights = Path(weights_path).read_bytes()
    except OSError as error:
        raise ModelFileError(f"cannot read {weights_path}: {error.strerror}") from None
    digest = hashlib.sha256(weights).digest()
    model = load_model(weights, digest)  # refuses anything but a known safetensors model, before publishing it
    if model.input_type != input_type:
        raise ModelFileError(f"{weights_path} reads {model.input_type.name} records, not {input_type.name}")
    cid = session.store.add(weights)
    receipt = session.send(
        session.marketplace.models.functions.registerModel(name, cid, digest, int(input_type), price),
        f"registerModel {name}",
    )
    return int(session.event(receipt, session.marketplace.models, "ModelRegistered")["modelId"])


def list_models(session: Session) -> list[ModelInfo]:
    models = session.marketplace.models
    found = []
    for model_id in range(1, models.functions.modelCount().call() + 1):
        info = call_struct(models, "getModel", model_id)
        found.append(ModelInfo(model_id, info["provider"], info["name"], info["version"], DataType(info["inputType"]),
                               info["price"], ModelStatus(info["status"]), info["weightsCid"]))
    return found
