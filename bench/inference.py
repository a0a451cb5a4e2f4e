"""Batched inference of both models, in records per second, at batch sizes 1 to 4,096, on the CPU
and on the GPU when torch sees one. Each figure is `DiagnosticModel.predict` on whole records, so
it includes preprocessing (an ECG's resampling and filtering), as a worker runs it."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from aidoc.models import load_model
from aidoc.records import HealthRecord, load_record_file

BATCH_SIZES = (1, 8, 64, 512, 4096)
QUICK_BATCH_SIZES = (1, 64)
MIN_SECONDS = 0.5  # repeat each measurement for at least this long


def sample_records(models_dir: Path) -> dict[str, HealthRecord]:
    records: dict[str, HealthRecord] = {}
    for path in sorted((models_dir / "samples").glob("*")):
        record = load_record_file(path)
        records.setdefault(record.data_type.name, record)
    return records


def records_per_second(model, record: HealthRecord, batch: int) -> float:
    records = [record] * batch
    model.predict(records)  # warm up (allocations, kernels)
    runs, started = 0, time.perf_counter()
    while True:
        model.predict(records)
        runs += 1
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_SECONDS:
            return runs * batch / elapsed


def measure(models_dir: Path, quick: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """model file -> device -> batch size -> records per second."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    records = sample_records(models_dir)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in ("panel-mlp", "ecg-cnn"):
        weights = (models_dir / f"{name}.safetensors").read_bytes()
        for device in devices:
            model = load_model(weights, None, device=device, max_batch=4096)
            record = records[model.input_type.name]
            results.setdefault(name, {})[_device_name(device)] = {
                str(batch): round(records_per_second(model, record, batch), 1)
                for batch in (QUICK_BATCH_SIZES if quick else BATCH_SIZES)
            }
    return results


def _device_name(device: str) -> str:
    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


if __name__ == "__main__":
    import json

    from aidoc.config import models_dir

    print(json.dumps(measure(models_dir()), indent=2))
