"""Seeded, reproducible training of the two diagnostic models, with held-out metrics.

- `train_panel_model`: the MLP on a stratified split of sklearn's Wisconsin diagnostic data set,
  compared with a logistic regression baseline (accuracy and ROC AUC, malignant = positive).
- `train_ecg_model`: the CNN on neurokit2 simulations, held-out accuracy on separately seeded
  simulations, and `evaluate_real_ecgs`: the real 12-lead ECG that ships with pydicom, and what
  heartpy's example signals are.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aidoc.models.ecg import (
    DEFAULT_SAMPLE_RATE,
    DEFAULT_WINDOW_S,
    ECG_LABELS,
    EcgCNN,
    preprocess_ecg,
    simulate_ecg_dataset,
)
from aidoc.models.inference import DiagnosticModel, DiagnosticNetwork
from aidoc.models.panel import PANEL_LABELS, PanelMLP, fit_logistic_baseline
from aidoc.records import load_record_file

PANEL_TEST_FRACTION = 0.3
BRADYCARDIA_BELOW_BPM = 60.0  # the clinical thresholds the rhythm classes stand for
TACHYCARDIA_ABOVE_BPM = 100.0
IRREGULAR_RR_CV = 0.10
QRS_WIDTH_LIMIT_MS = 80.0  # narrower pulses at half height are QRS complexes; PPG pulses are wider
# Training runs on a fixed number of CPU threads: float reductions split across another number of
# threads round differently, and the weights (hence their on-chain sha256) would depend on the machine.
TRAINING_THREADS = 1


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's global RNG seeded and the thread count fixed inside; both restored afterwards."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(TRAINING_THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def fit_network(network: DiagnosticNetwork, inputs: np.ndarray, targets: np.ndarray, *, epochs: int, batch_size: int,
         lr: float, weight_decay: float, seed: int) -> None:
    """Minibatch AdamW with a cosine learning rate; the shuffling is seeded (callers seed the init)."""
    x, y = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)), torch.from_numpy(targets).long()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    network.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            index = order[start:start + batch_size]
            if len(index) < 2:  # BatchNorm needs two samples
                continue
            loss = F.cross_entropy(network(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    network.eval()


# ---------------------------------------------------------------- lab panel


def panel_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train features, test features, train targets, test targets): a stratified split of
    load_breast_cancer (targets 0 = malignant, 1 = benign, as PANEL_LABELS)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    assert tuple(data.target_names) == PANEL_LABELS
    return train_test_split(data.data, data.target, test_size=PANEL_TEST_FRACTION, stratify=data.target,
                            random_state=seed)


def binary_metrics(targets: np.ndarray, malignant_probability: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    predicted = np.where(malignant_probability >= 0.5, 0, 1)
    return {"accuracy": round(float((predicted == targets).mean()), 4),
            "roc_auc": round(float(roc_auc_score(targets == 0, malignant_probability)), 4)}


def train_panel_model(seed: int = 0, epochs: int = 100) -> tuple[DiagnosticModel, dict[str, Any]]:
    """The panel MLP and its held-out metrics next to the logistic regression baseline's."""
    started = time.perf_counter()
    x_train, x_test, y_train, y_test = panel_split(seed)
    with seeded(seed):
        network = PanelMLP()
        network.set_standardization(x_train)
        fit_network(network, x_train, y_train, epochs=epochs, batch_size=64, lr=3e-3, weight_decay=1e-2, seed=seed)
    model = DiagnosticModel(network)
    mlp_probabilities = model.predict_arrays(x_test.astype(np.float32))[:, 0]
    seconds = time.perf_counter() - started
    baseline = fit_logistic_baseline(x_train, y_train, seed)
    metrics = {
        "data": "sklearn load_breast_cancer (Wisconsin diagnostic, 569 x 30), stratified split",
        "seed": seed, "train": len(y_train), "test": len(y_test),
        "mlp": binary_metrics(y_test, mlp_probabilities),
        "logistic_regression_baseline": binary_metrics(y_test, baseline.predict_proba(x_test)[:, 0]),
        "train_seconds": round(seconds, 2),
    }
    return model, metrics


# ---------------------------------------------------------------- ECG


def train_ecg_model(seed: int = 0, train_per_class: int = 150, test_per_class: int = 50, epochs: int = 20,
                    workers: int | None = None) -> tuple[DiagnosticModel, dict[str, Any]]:
    """The ECG CNN trained on simulations; held-out accuracy on other simulations and the real ECGs."""
    started = time.perf_counter()
    train_seed, test_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    train = simulate_ecg_dataset(train_per_class, train_seed, workers=workers)
    test = simulate_ecg_dataset(test_per_class, test_seed, workers=workers)
    simulated = time.perf_counter()

    def arrays(strips) -> tuple[np.ndarray, np.ndarray]:
        inputs = np.stack([preprocess_ecg(s.samples, s.sampling_rate, DEFAULT_SAMPLE_RATE, DEFAULT_WINDOW_S)
                           for s in strips])
        return inputs, np.array([ECG_LABELS.index(s.label) for s in strips])

    (x_train, y_train), (x_test, y_test) = arrays(train), arrays(test)
    with seeded(seed):
        network = EcgCNN()
        fit_network(network, x_train, y_train, epochs=epochs, batch_size=32, lr=3e-3, weight_decay=1e-3, seed=seed)
    trained = time.perf_counter()
    model = DiagnosticModel(network)
    predicted = model.predict_arrays(x_test).argmax(axis=1)
    confusion = np.zeros((len(ECG_LABELS), len(ECG_LABELS)), dtype=int)
    np.add.at(confusion, (y_test, predicted), 1)
    metrics = {
        "data": "neurokit2 simulations (ecgsyn, simple, stitched simple beats; 100-1000 Hz; noise, wander, "
                "amplitude varied); test set simulated with another seed",
        "seed": seed, "train": len(y_train), "test": len(y_test),
        "accuracy": round(float((predicted == y_test).mean()), 4),
        "recall": {label: round(float(confusion[i, i] / confusion[i].sum()), 4) for i, label in enumerate(ECG_LABELS)},
        "confusion": {"rows_true_columns_predicted": list(ECG_LABELS), "counts": confusion.tolist()},
        "simulate_seconds": round(simulated - started, 2),
        "train_seconds": round(trained - simulated, 2),
        "real_ecgs": evaluate_real_ecgs(model),
    }
    return model, metrics


def pydicom_ecg_path() -> Path:
    """pydicom's waveform_ecg.dcm: a real anonymized 12-lead ECG (ships with pydicom, works offline)."""
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("waveform_ecg.dcm"))


def expected_rhythm(heart_rate_bpm: float, rr_cv: float) -> str:
    """The class a measured rate and RR variability stand for (clinical thresholds)."""
    if rr_cv > IRREGULAR_RR_CV:
        return "irregular"
    if heart_rate_bpm < BRADYCARDIA_BELOW_BPM:
        return "bradycardia"
    return "tachycardia" if heart_rate_bpm > TACHYCARDIA_ABOVE_BPM else "normal"


def neurokit_rhythm(samples: np.ndarray, sampling_rate: float) -> tuple[float, float, int]:
    """(heart rate in bpm, RR coefficient of variation, beats) from neurokit2's R-peak detection."""
    import neurokit2 as nk

    rate = int(round(sampling_rate))
    _, info = nk.ecg_peaks(nk.ecg_clean(samples, sampling_rate=rate), sampling_rate=rate)
    rr = np.diff(info["ECG_R_Peaks"]) / sampling_rate
    if len(rr) < 2:
        return float("nan"), float("nan"), len(info["ECG_R_Peaks"])
    return 60.0 / float(rr.mean()), float(rr.std() / rr.mean()), len(info["ECG_R_Peaks"])


def _heartpy():
    with warnings.catch_warnings():  # heartpy imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        import heartpy

    return heartpy


def heartpy_bpm(samples: np.ndarray, sampling_rate: float) -> float:
    """heartpy's heart rate for a signal (ECG or PPG); NaN when heartpy finds no usable peaks."""
    hp = _heartpy()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            _, measures = hp.process(np.asarray(samples, dtype=np.float64), sampling_rate)
    except hp.exceptions.BadSignalWarning:
        return float("nan")
    return float(measures["bpm"])


def median_pulse_width_ms(samples: np.ndarray, sampling_rate: float) -> float:
    """The median width at half height of the signal's main peaks: ~20-100 ms for QRS complexes,
    well over 100 ms for PPG pulses."""
    from scipy import signal

    x = np.asarray(samples, dtype=np.float64) - np.median(samples)
    peaks, _ = signal.find_peaks(x, distance=max(1, int(0.3 * sampling_rate)), prominence=x.std())
    if len(peaks) == 0:
        return float("nan")
    return float(np.median(signal.peak_widths(x, peaks, rel_height=0.5)[0]) / sampling_rate * 1000)


def evaluate_real_ecgs(model: DiagnosticModel) -> dict[str, Any]:
    """The model on pydicom's real ECG (lead II) with its rate by neurokit2 and heartpy; and what
    heartpy's bundled example signals are (their pulse width tells ECG from PPG)."""
    path = pydicom_ecg_path()
    record = load_record_file(path)
    assert record.samples is not None and record.sampling_rate is not None
    rate, rr_cv, beats = neurokit_rhythm(record.samples, record.sampling_rate)
    prediction = model.predict([record])[0]
    expected = expected_rhythm(rate, rr_cv)
    return {
        "pydicom_waveform_ecg": {
            "file": path.name, "lead": record.lead, "sampling_rate_hz": record.sampling_rate,
            "duration_s": record.duration_s, "beats": beats,
            "heart_rate_bpm_neurokit2": round(rate, 2), "heart_rate_bpm_heartpy": round(heartpy_bpm(
                record.samples, record.sampling_rate), 2), "rr_cv": round(rr_cv, 4),
            "qrs_width_ms": round(median_pulse_width_ms(record.samples, record.sampling_rate), 1),
            "expected_from_rate": expected, "predicted": prediction.label,
            "probabilities": {k: round(v, 4) for k, v in prediction.probabilities.items()},
            "consistent": prediction.label == expected,
        },
        "heartpy_examples": heartpy_examples(),
    }


def heartpy_examples() -> list[dict[str, Any]]:
    """heartpy's three bundled example signals: rate, duration, pulse width and whether they are ECG."""
    hp = _heartpy()
    found = []
    for example in (0, 1, 2):
        data, timer = hp.load_exampledata(example)
        if example == 0:
            rate = 100.0  # data.csv has no timer; heartpy's documentation gives 100 Hz
        elif example == 1:
            rate = float(hp.get_samplerate_mstimer(timer))
        else:
            rate = float(hp.get_samplerate_datetime(timer, timeformat="%Y-%m-%d %H:%M:%S.%f"))
        data = np.asarray(data, dtype=np.float64)
        width = median_pulse_width_ms(data, rate)
        found.append({
            "example": example, "sampling_rate_hz": round(rate, 2), "duration_s": round(len(data) / rate, 1),
            "heart_rate_bpm_heartpy": round(heartpy_bpm(data, rate), 2), "pulse_width_ms": round(width, 1),
            "signal": "ECG" if width < QRS_WIDTH_LIMIT_MS else "PPG (not classified: the ECG model reads ECGs)",
        })
    return found
