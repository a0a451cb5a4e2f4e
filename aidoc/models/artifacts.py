"""Model artifacts: a trained network as safetensors bytes, and loading them back safely.

The safetensors header's ``__metadata__`` holds ``kind`` (which whitelisted architecture),
``format_version``, ``architecture`` (hyperparameters, JSON), ``labels`` (JSON list) and ``input``
(the input spec, JSON). Loading checks the sha256 first, parses with safetensors only (no pickle,
no torch.load), rebuilds the architecture named by ``kind`` from its validated hyperparameters and
loads the tensors strictly (same names, dtypes and shapes, finite values).

The bytes are written here rather than by safetensors.torch.save because that orders the metadata
by a per-process hash (different bytes, hence a different sha256, on every run); this writer emits
the same format with sorted keys, so equal weights give equal files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from typing import Any

import numpy as np
import torch

from aidoc.errors import ModelArtifactError, WeightsHashMismatch
from aidoc.models.ecg import EcgCNN
from aidoc.models.inference import DEFAULT_MAX_BATCH, DiagnosticModel, DiagnosticNetwork
from aidoc.models.panel import PanelMLP

FORMAT_VERSION = "1"
MAX_ARTIFACT_BYTES = 256 * 1024 * 1024
# The only architectures a weights file may name.
ARCHITECTURES: dict[str, type[DiagnosticNetwork]] = {PanelMLP.kind: PanelMLP, EcgCNN.kind: EcgCNN}
_DTYPES: dict[torch.dtype, tuple[str, str]] = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}
_REQUIRED_METADATA = ("kind", "format_version", "architecture", "labels", "input")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def save_model(model: DiagnosticModel | DiagnosticNetwork) -> bytes:
    """The network's weights and metadata as safetensors bytes (deterministic for equal weights)."""
    network = model.network if isinstance(model, DiagnosticModel) else model
    metadata = {"kind": network.kind, "format_version": FORMAT_VERSION,
                "architecture": _json(network.hyperparameters()), "labels": _json(list(network.labels)),
                "input": _json(network.input_spec())}
    header: dict[str, Any] = {"__metadata__": metadata}
    chunks: list[bytes] = []
    offset = 0
    for name, tensor in sorted(network.state_dict().items()):
        dtype_name, numpy_dtype = _DTYPES[tensor.dtype]
        data = tensor.detach().cpu().contiguous().numpy().astype(numpy_dtype).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header_bytes = _json(header).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # tensor data 8-byte aligned, as safetensors writes it
    return struct.pack("<Q", len(header_bytes)) + header_bytes + b"".join(chunks)


def load_model(weights: bytes, expected_sha256: bytes | None, device: str | torch.device | None = None,
               max_batch: int = DEFAULT_MAX_BATCH) -> DiagnosticModel:
    """Checks, parses and builds a model. WeightsHashMismatch if sha256(weights) != expected_sha256
    (checked before anything else), ModelArtifactError for anything that is not a known model."""
    if not isinstance(weights, (bytes, bytearray, memoryview)):
        raise ModelArtifactError("model weights must be bytes")
    weights = bytes(weights)
    if expected_sha256 is not None:
        if not isinstance(expected_sha256, (bytes, bytearray)) or len(expected_sha256) != 32:
            raise WeightsHashMismatch("the expected weights hash must be a 32-byte sha256 digest")
        if not hmac.compare_digest(hashlib.sha256(weights).digest(), bytes(expected_sha256)):
            raise WeightsHashMismatch("the model weights do not match their registered sha256; fetch them again")
    if len(weights) > MAX_ARTIFACT_BYTES:
        raise ModelArtifactError(f"the model file is larger than {MAX_ARTIFACT_BYTES // 2**20} MiB")
    tensors, metadata = _parse_safetensors(weights)
    network = _build_network(metadata)
    try:
        network.load_state_dict(_state_dict(network, tensors), strict=True)
    except RuntimeError as error:  # names and shapes are checked above; this is a last line of defence
        raise ModelArtifactError(f"the model file's tensors do not load into {network.kind}: "
                                 f"{str(error).splitlines()[0][:200]}") from None
    return DiagnosticModel(network, device=device, max_batch=max_batch)


def _parse_safetensors(weights: bytes) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    from safetensors import deserialize

    try:
        tensors = dict(deserialize(weights))
    except Exception:  # noqa: BLE001 - SafetensorError, or anything else the parser raises on bad bytes
        raise ModelArtifactError("the model file is not a valid safetensors file (pickle and torch.save files "
                                 "are refused); export the weights with safetensors") from None
    except BaseException as error:  # a Rust panic surfaces as pyo3's PanicException, a BaseException
        if type(error).__name__ != "PanicException":
            raise
        raise ModelArtifactError("the model file is not a valid safetensors file; export it with safetensors") \
            from None
    (header_length,) = struct.unpack_from("<Q", weights)  # safetensors has validated the header
    metadata = json.loads(weights[8:8 + header_length]).get("__metadata__") or {}
    missing = [key for key in _REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ModelArtifactError(f"the model file's metadata lacks {', '.join(missing)}; it was not saved by "
                                 "aidoc.models.save_model")
    return tensors, metadata


def _metadata_json(metadata: dict[str, str], key: str) -> Any:
    try:
        return json.loads(metadata[key])
    except (ValueError, RecursionError):
        raise ModelArtifactError(f"the model file's {key} metadata is not valid JSON") from None


def _build_network(metadata: dict[str, str]) -> DiagnosticNetwork:
    kind = metadata["kind"]
    if kind not in ARCHITECTURES:
        raise ModelArtifactError(f"unknown model kind {kind[:40]!r}; supported: {', '.join(ARCHITECTURES)}")
    if metadata["format_version"] != FORMAT_VERSION:
        raise ModelArtifactError(f"model format version {metadata['format_version'][:20]!r} is not supported; "
                                 f"this build reads version {FORMAT_VERSION}")
    hyperparameters = _metadata_json(metadata, "architecture")
    if not isinstance(hyperparameters, dict):
        raise ModelArtifactError("the model file's architecture metadata is not a JSON object")
    network = ARCHITECTURES[kind].from_hyperparameters(hyperparameters)
    if _metadata_json(metadata, "labels") != list(network.labels):
        raise ModelArtifactError(f"the {kind} labels must be {', '.join(network.labels)}")
    if _metadata_json(metadata, "input") != json.loads(_json(network.input_spec())):
        raise ModelArtifactError(f"the model file's input spec does not match the {kind} architecture")
    return network


def _state_dict(network: DiagnosticNetwork, tensors: dict[str, dict[str, Any]]) -> dict[str, torch.Tensor]:
    expected = network.state_dict()
    if set(tensors) != set(expected):
        unexpected, missing = sorted(set(tensors) - set(expected)), sorted(set(expected) - set(tensors))
        detail = f"missing {missing[0][:60]}" if missing else f"unexpected {unexpected[0][:60]}"
        raise ModelArtifactError(f"the model file's tensors do not fit the {network.kind} architecture ({detail})")
    state: dict[str, torch.Tensor] = {}
    for name, reference in expected.items():
        info = tensors[name]
        dtype_name, numpy_dtype = _DTYPES[reference.dtype]
        if info["dtype"] != dtype_name or list(info["shape"]) != list(reference.shape):
            raise ModelArtifactError(f"tensor {name} must be {dtype_name} of shape {list(reference.shape)}")
        array = np.frombuffer(info["data"], dtype=numpy_dtype).reshape(reference.shape)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ModelArtifactError(f"tensor {name} holds NaN or infinite values")
        state[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))
    return state
