"""The ECG model: a small 1-D CNN classifying one lead's rhythm, its preprocessing, and the
neurokit2 simulations it is trained on.

Preprocessing (the same for training and inference): resample to `sample_rate` Hz, band-pass
0.5-40 Hz (zero phase), take the central `window_s` seconds (zero-padded after normalization when
shorter), subtract the median and divide by the standard deviation.

Classes, by the simulated heart rate and RR variability:
- normal: 60-100 bpm, regular;   bradycardia: 35-55 bpm, regular;   tachycardia: 105-170 bpm, regular;
- irregular: 55-130 bpm with RR intervals varying by 15-35 % (slow ECGSYN RR oscillations, or
  independently drawn RR intervals like atrial fibrillation).
neurokit2 has no arrhythmia generator: "irregular" is a rhythm property, not a diagnosis.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import nn

from aidoc.constants import DataType
from aidoc.errors import ModelArtifactError, RecordFormatError
from aidoc.models.inference import DiagnosticNetwork
from aidoc.records import HealthRecord

ECG_KIND = "ecg-cnn"
ECG_LABELS = ("normal", "bradycardia", "tachycardia", "irregular")
DEFAULT_SAMPLE_RATE = 100  # Hz the network reads
DEFAULT_WINDOW_S = 10
BAND_HZ = (0.5, 40.0)
MIN_WINDOW_FRACTION = 0.5  # a record must cover at least half the window


# ---------------------------------------------------------------- preprocessing


def preprocess_ecg(samples: np.ndarray, sampling_rate: float, sample_rate: int, window_s: int) -> np.ndarray:
    """One lead in millivolts -> the network's float32 input of shape (1, sample_rate * window_s)."""
    from scipy import signal

    window = sample_rate * window_s
    ratio = Fraction(sample_rate / sampling_rate).limit_denominator(1000)
    x = np.asarray(samples, dtype=np.float64)
    if ratio != 1:
        x = signal.resample_poly(x, ratio.numerator, ratio.denominator)
    if len(x) < MIN_WINDOW_FRACTION * window:
        raise RecordFormatError(f"the ECG is shorter than {MIN_WINDOW_FRACTION * window_s:g} s; this model reads "
                                f"{window_s} s strips")
    high = min(BAND_HZ[1], 0.45 * sample_rate)
    x = signal.sosfiltfilt(signal.butter(2, (BAND_HZ[0], high), "bandpass", fs=sample_rate, output="sos"), x)
    if len(x) > window:
        start = (len(x) - window) // 2
        x = x[start:start + window]
    x = x - np.median(x)
    scale = x.std()
    x = x / scale if scale > 1e-8 else np.zeros_like(x)
    out = np.zeros((1, window), dtype=np.float32)
    out[0, :len(x)] = x
    return out


# ---------------------------------------------------------------- the network


class EcgCNN(DiagnosticNetwork):
    """[Conv1d -> BatchNorm -> ReLU -> MaxPool(2)] per channel width, then average and max pooling
    over time (rate and regularity features) -> Linear -> ReLU -> Dropout -> Linear to the classes."""

    kind = ECG_KIND
    input_type = DataType.ECG
    labels = ECG_LABELS

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, window_s: int = DEFAULT_WINDOW_S,
                 channels: Sequence[int] = (16, 24, 32, 48, 64), kernel_size: int = 7, hidden: int = 32):
        super().__init__()
        self.sample_rate, self.window_s = int(sample_rate), int(window_s)
        self.channels, self.kernel_size, self.hidden = tuple(int(c) for c in channels), int(kernel_size), int(hidden)
        blocks: list[nn.Module] = []
        width = 1
        for out in self.channels:
            blocks += [nn.Conv1d(width, out, self.kernel_size, padding=self.kernel_size // 2, bias=False),
                       nn.BatchNorm1d(out), nn.ReLU(), nn.MaxPool1d(2)]
            width = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Linear(2 * width, self.hidden), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Linear(self.hidden, len(ECG_LABELS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        return self.head(torch.cat([features.mean(dim=2), features.amax(dim=2)], dim=1))

    def hyperparameters(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "window_s": self.window_s, "channels": list(self.channels),
                "kernel_size": self.kernel_size, "hidden": self.hidden}

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any]) -> EcgCNN:
        expected = {"sample_rate", "window_s", "channels", "kernel_size", "hidden"}
        if set(hyperparameters) != expected:
            raise ModelArtifactError(f"ecg-cnn hyperparameters must be exactly {', '.join(sorted(expected))}")
        h = hyperparameters
        checks = {
            "sample_rate": _int_in(h["sample_rate"], 50, 1000),
            "window_s": _int_in(h["window_s"], 2, 60),
            "kernel_size": _int_in(h["kernel_size"], 1, 31),
            "hidden": _int_in(h["hidden"], 1, 1024),
            "channels": isinstance(h["channels"], list) and 1 <= len(h["channels"]) <= 8
            and all(_int_in(c, 1, 256) for c in h["channels"]),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ModelArtifactError(f"ecg-cnn hyperparameters out of range: {', '.join(bad)}")
        if h["sample_rate"] * h["window_s"] < 2 ** len(h["channels"]):
            raise ModelArtifactError("ecg-cnn window is too short for its number of pooling layers")
        return cls(h["sample_rate"], h["window_s"], h["channels"], h["kernel_size"], h["hidden"])

    def input_spec(self) -> dict[str, Any]:
        return {"data_type": int(DataType.ECG), "sample_rate": self.sample_rate, "window_s": self.window_s,
                "band_hz": list(BAND_HZ), "units": "mV", "lead": "II"}

    def preprocess(self, record: HealthRecord) -> np.ndarray:
        assert record.samples is not None and record.sampling_rate is not None
        return preprocess_ecg(record.samples, record.sampling_rate, self.sample_rate, self.window_s)


def _int_in(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


# ---------------------------------------------------------------- simulated training data

SIMULATION_RATES_HZ = (100, 125, 250, 360, 500, 1000)
_HEART_RATES = {"normal": (60.0, 100.0), "bradycardia": (35.0, 55.0), "tachycardia": (105.0, 170.0),
                "irregular": (55.0, 130.0)}
_IRREGULAR_RR_CV = (0.15, 0.35)
_REGULAR_RR_CV = (0.005, 0.04)  # sinus variability
_ECGSYN_AI = np.array([1.2, -5.0, 30.0, -7.5, 0.75])  # neurokit2's P Q R S T amplitudes and widths
_ECGSYN_BI = np.array([0.25, 0.1, 0.1, 0.1, 0.4])


@dataclass(frozen=True)
class SimulatedEcg:
    """One simulated strip: millivolt samples, their rate, the class and how it was made."""

    samples: np.ndarray
    sampling_rate: float
    label: str
    method: str


def simulate_ecg(label: str, seed: int, duration_s: float = 10.0) -> SimulatedEcg:
    """One strip of class `label`, fully determined by `seed` (heart rate, variability, method,
    morphology, noise, baseline wander, amplitude and sampling rate all drawn from it)."""
    import neurokit2 as nk

    rng = np.random.default_rng(seed)
    rate = int(rng.choice(SIMULATION_RATES_HZ))
    heart_rate = float(rng.uniform(*_HEART_RATES[label]))
    longer = duration_s + 1.5  # then a random crop: the strip starts at a random phase
    if label == "irregular" and rng.random() < 0.4:
        method = "stitched"
        ecg = _stitched_beats(heart_rate, float(rng.uniform(*_IRREGULAR_RR_CV)), rate, longer, rng)
    elif label != "irregular" and rng.random() < 0.2:
        method = "simple"
        ecg = nk.ecg_simulate(duration=longer, sampling_rate=rate, heart_rate=heart_rate, method="simple", noise=0.0)
    else:
        method = "ecgsyn"
        hr_std = heart_rate * float(rng.uniform(*(_IRREGULAR_RR_CV if label == "irregular" else _REGULAR_RR_CV)))
        ai = _ECGSYN_AI * rng.uniform(0.7, 1.3, 5)
        bi = _ECGSYN_BI * rng.uniform(0.8, 1.25, 5)
        sim_seed = int(rng.integers(2**31))
        while not _ecgsyn_terminates(sim_seed, heart_rate, hr_std, rate, longer):
            sim_seed += 1
        ecg = nk.ecg_simulate(duration=longer, sampling_rate=rate, heart_rate=heart_rate, heart_rate_std=hr_std,
                              method="ecgsyn", noise=0.0, random_state=sim_seed, ai=ai, bi=bi)
    ecg = np.asarray(ecg, dtype=np.float64)
    ecg = nk.signal_distort(ecg, sampling_rate=rate, noise_amplitude=float(rng.uniform(0.0, 0.08)),
                            noise_frequency=[5, 10, 100], noise_shape="laplace",
                            random_state=int(rng.integers(2**31)), silent=True)
    t = np.arange(len(ecg)) / rate
    wander = rng.uniform(0.0, 0.3) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi))
    ecg = rng.uniform(0.5, 2.0) * ecg + wander
    start = int(rng.integers(0, len(ecg) - int(duration_s * rate) + 1))
    return SimulatedEcg(ecg[start:start + int(duration_s * rate)].astype(np.float32), float(rate), label, method)


def _stitched_beats(heart_rate: float, rr_cv: float, rate: int, duration_s: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Single neurokit2 "simple" beats of independently drawn RR intervals (atrial-fibrillation-like)."""
    import neurokit2 as nk

    beats, total = [], 0.0
    while total < duration_s:
        rr = float(np.clip(60.0 / heart_rate * (1.0 + rr_cv * rng.standard_normal()), 0.3, 2.0))
        beats.append(nk.ecg_simulate(duration=rr, sampling_rate=rate, heart_rate=60.0 / rr * (1 + 1e-9),
                                     method="simple", noise=0.0))
        total += rr
    return np.concatenate(beats)[:int(duration_s * rate)]


def _ecgsyn_terminates(seed: int, heart_rate: float, heart_rate_std: float, rate: int, duration_s: float) -> bool:
    """Whether neurokit2 0.2.13's ECGSYN returns for these arguments.

    Its RR walk (`while i < len(rr): ... i = ip`) never ends when it lands on the last RR sample,
    which scipy.ndimage.zoom's upsampling can leave at 0 (measured: about 1 call in 40 at 100 Hz hangs
    for ever, none at the other simulation rates). This replays that walk with the same random draws;
    callers move on to the next seed when it would hang.
    """
    try:
        from neurokit2.ecg.ecg_simulate import _ecg_simulate_rrprocess
        from neurokit2.misc import check_random_state
        from neurokit2.signal import signal_resample
    except ImportError:  # another neurokit2 version: nothing to replay
        return True
    beats = int(np.round(duration_s * (heart_rate / 60)))
    n = 2 ** (np.ceil(np.log2(beats * (60 / heart_rate) / 1)))
    rr0 = _ecg_simulate_rrprocess(0.1, 0.25, 0.01, 0.01, 0.5, heart_rate, heart_rate_std, 1, n,
                                  check_random_state(seed))
    rr = signal_resample(rr0, sampling_rate=1, desired_sampling_rate=rate)
    if (rr[:-1] <= 0.5 / rate).any():
        return False
    dt, t, i = 1 / rate, 0.0, 0
    while i < len(rr):
        t += rr[i]
        step = int(np.round(t / dt))  # as neurokit2 computes it, to the last bit
        if step <= i:
            return False
        i = step
    return True


def _simulate_item(item: tuple[str, int, float]) -> SimulatedEcg:
    return simulate_ecg(*item)


def simulate_ecg_dataset(per_class: int, seed: int, duration_s: float = 10.0,
                         workers: int | None = None) -> list[SimulatedEcg]:
    """`per_class` strips of every class, in a fixed order; each strip has its own seed drawn from
    `seed`, so the result does not depend on `workers` (processes; default: up to 2 CPU cores)."""
    seeds = np.random.default_rng(seed).integers(2**31, size=per_class * len(ECG_LABELS))
    items = [(ECG_LABELS[i % len(ECG_LABELS)], int(s), duration_s) for i, s in enumerate(seeds)]
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers <= 1:
        return [_simulate_item(item) for item in items]
    # fork: the workers need no re-import of torch and neurokit2 (seconds each); they use neither
    # torch nor threads, so forking a parent that has torch loaded is safe here.
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_simulate_item, items, chunksize=8))
