"""Trains both diagnostic models and writes what the demo and the pipeline tests use:
`python scripts/train_models.py --out build/models` (plain Python, not a Brownie script).

Writes to --out: panel-mlp.safetensors, ecg-cnn.safetensors, samples/ (patient files: lab panels
from held-out Wisconsin rows, simulated ECG CSVs, pydicom's real ECG as DICOM and as CSV) and,
last, metrics.json (held-out metrics, sha256 of each artifact, each sample's truth and prediction).
The weights are a function of --seed: the same seed gives the same bytes on the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aidoc.config import project_dir
from aidoc.errors import exit_on_user_error
from aidoc.models import (
    ECG_LABELS,
    PANEL_LABELS,
    DiagnosticModel,
    save_model,
    simulate_ecg,
    train_ecg_model,
    train_panel_model,
)
from aidoc.models.training import TRAINING_THREADS, panel_split, pydicom_ecg_path
from aidoc.records import PANEL_FEATURES, HealthRecord, load_record_file, write_ecg_csv, write_panel_json

PANEL_SAMPLES_PER_CLASS = 2


def write_artifact(out: Path, name: str, model: DiagnosticModel) -> dict[str, Any]:
    data = save_model(model)
    (out / name).write_bytes(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def write_samples(samples: Path, seed: int, real_ecg_truth: str) -> dict[str, str]:
    """The demo's patient files; returns file name -> true class (from the data set or simulation;
    for the real ECG, the class its measured heart rate stands for)."""
    if samples.exists():
        shutil.rmtree(samples)
    samples.mkdir(parents=True)
    truth: dict[str, str] = {}
    _, x_test, _, y_test = panel_split(seed)
    rows = [int(i) for label in range(len(PANEL_LABELS)) for i in np.flatnonzero(y_test == label)[
        :PANEL_SAMPLES_PER_CLASS]]
    for number, row in enumerate(sorted(rows), start=1):
        name = f"panel-{number:02d}.json"
        write_panel_json(samples / name, HealthRecord.lab_panel(dict(zip(PANEL_FEATURES, x_test[row].tolist()))))
        truth[name] = PANEL_LABELS[int(y_test[row])]
    sample_seeds = np.random.SeedSequence([seed, 2]).generate_state(len(ECG_LABELS))
    for number, (label, sample_seed) in enumerate(zip(ECG_LABELS, sample_seeds), start=1):
        strip = simulate_ecg(label, int(sample_seed))
        name = f"ecg-simulated-{number:02d}.csv"
        write_ecg_csv(samples / name, HealthRecord.ecg(strip.samples, strip.sampling_rate, "II"))
        truth[name] = label
    real = pydicom_ecg_path()
    shutil.copyfile(real, samples / "ecg-real-pydicom.dcm")
    write_ecg_csv(samples / "ecg-real-pydicom-lead-ii.csv", load_record_file(real))
    truth["ecg-real-pydicom.dcm"] = truth["ecg-real-pydicom-lead-ii.csv"] = real_ecg_truth
    return truth


def predict_samples(samples: Path, truth: dict[str, str], models: list[DiagnosticModel]) -> list[dict[str, Any]]:
    found = []
    for name in sorted(truth):
        record = load_record_file(samples / name)
        model = next(m for m in models if m.input_type == record.data_type)
        prediction = model.predict([record])[0]
        found.append({"file": name, "data_type": record.data_type.name, "truth": truth[name],
                      "predicted": prediction.label, "probability": round(prediction.probabilities[prediction.label],
                                                                          4)})
    return found


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=project_dir() / "build" / "models", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="processes simulating ECGs (default: up to 2)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    panel, panel_metrics = train_panel_model(args.seed)
    ecg, ecg_metrics = train_ecg_model(args.seed, workers=args.workers)
    artifacts = {"panel-mlp.safetensors": write_artifact(out, "panel-mlp.safetensors", panel),
                 "ecg-cnn.safetensors": write_artifact(out, "ecg-cnn.safetensors", ecg)}
    real = ecg_metrics["real_ecgs"]["pydicom_waveform_ecg"]
    truth = write_samples(out / "samples", args.seed,
                          f"{real['expected_from_rate']} (real, {real['heart_rate_bpm_neurokit2']:.0f} bpm)")
    metrics = {
        "seed": args.seed, "torch": torch.__version__, "training_threads": TRAINING_THREADS,
        "panel": panel_metrics, "ecg": ecg_metrics, "artifacts": artifacts,
        "samples": predict_samples(out / "samples", truth, [panel, ecg]),
        "total_seconds": round(time.perf_counter() - started, 2),
    }
    partial = out / "metrics.json.partial"
    partial.write_text(json.dumps(metrics, indent=2) + "\n")
    partial.replace(out / "metrics.json")  # last: its presence means the folder is complete
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
