"""What a health record holds, and its canonical byte encoding (what gets encrypted and stored).

A record is a lab panel (the 30 features of the Breast Cancer Wisconsin (Diagnostic) pathology
panel, by canonical snake_case name) or one ECG lead (float32 millivolts and a sampling rate).

Encoding, all integers little-endian::

    b"AIDR" | version (1 byte) | header length (uint16) | header (compact JSON, sorted keys) | payload

The header says what the payload is; the payload is raw numbers: 30 float64 panel values in
`PANEL_FEATURES` order, or the ECG's float32 samples. Only one encoding of a record is accepted
(`decode_record` re-encodes and compares), so equal records always have equal bytes and CIDs.
Messages of the errors raised here name fields, never patient values.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from aidoc.constants import DataType
from aidoc.errors import RecordFormatError

# The Wisconsin diagnostic panel in sklearn.datasets.load_breast_cancer().feature_names order, spaces
# made underscores ("mean radius" -> "mean_radius", "radius error" -> "radius_error"): the one place
# that defines the panel's feature names and their order.
_PANEL_MEASURES = (
    "radius", "texture", "perimeter", "area", "smoothness",
    "compactness", "concavity", "concave_points", "symmetry", "fractal_dimension",
)
PANEL_FEATURES: tuple[str, ...] = (
    *(f"mean_{measure}" for measure in _PANEL_MEASURES),
    *(f"{measure}_error" for measure in _PANEL_MEASURES),
    *(f"worst_{measure}" for measure in _PANEL_MEASURES),
)

# A panel may carry its pathology-confirmed outcome, which training jobs learn from (PanelMLP's labels).
PANEL_OUTCOMES: tuple[str, ...] = ("malignant", "benign")

MAGIC = b"AIDR"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<4sBH")  # magic, version, header length
MAX_HEADER_BYTES = 1024

MIN_SAMPLING_RATE_HZ = 50.0
MAX_SAMPLING_RATE_HZ = 20_000.0
MIN_ECG_SECONDS = 1.0
MAX_ECG_ABS_MV = 100.0  # beyond this the samples are not millivolts (microvolts, raw ADC counts)
DEFAULT_MAX_ECG_SAMPLES = 2_000_000  # 8 MB of float32: 33 minutes at 1 kHz
MAX_LEAD_NAME_CHARS = 16
_LEAD_NAME = re.compile(r"[A-Za-z0-9 ._+-]{1,%d}" % MAX_LEAD_NAME_CHARS)


def canonical_feature_name(name: str) -> str:
    """The canonical panel name for sklearn's or a user's spelling: "Mean Radius" -> "mean_radius"."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@dataclass(frozen=True, eq=False, repr=False)
class HealthRecord:
    """One patient record. Build it with `HealthRecord.lab_panel(...)` or `HealthRecord.ecg(...)`;
    the constructor validates and normalizes (panel keys canonical and ordered, ECG samples a
    read-only 1-D float32 array) and raises RecordFormatError otherwise. Its repr shows no values."""

    data_type: DataType
    panel: Mapping[str, float] | None = None
    samples: np.ndarray | None = None
    sampling_rate: float | None = None
    lead: str | None = None
    outcome: str | None = None  # a lab panel's confirmed diagnosis, one of PANEL_OUTCOMES (training data)

    def __post_init__(self) -> None:
        try:
            data_type = DataType(self.data_type)
        except ValueError:
            raise RecordFormatError(f"unknown record data type {self.data_type!r}; use LAB_PANEL or ECG") from None
        object.__setattr__(self, "data_type", data_type)
        if data_type == DataType.LAB_PANEL:
            if self.samples is not None or self.sampling_rate is not None or self.lead is not None:
                raise RecordFormatError("a lab panel record holds panel values only, not ECG samples")
            object.__setattr__(self, "panel", _validated_panel(self.panel))
            if self.outcome is not None and self.outcome not in PANEL_OUTCOMES:
                raise RecordFormatError(f"a lab panel's outcome is one of {', '.join(PANEL_OUTCOMES)}")
        elif data_type == DataType.ECG:
            if self.outcome is not None:
                raise RecordFormatError("only lab panels carry an outcome")
            if self.panel is not None:
                raise RecordFormatError("an ECG record holds samples only, not panel values")
            rate = _validated_sampling_rate(self.sampling_rate)
            object.__setattr__(self, "sampling_rate", rate)
            object.__setattr__(self, "samples", _validated_samples(self.samples, rate))
            object.__setattr__(self, "lead", _validated_lead(self.lead))
        else:
            raise RecordFormatError(f"{data_type.name} records are not supported yet; use a lab panel or an ECG")

    @classmethod
    def lab_panel(cls, values: Mapping[str, float], outcome: str | None = None) -> HealthRecord:
        """A lab panel from feature name -> value (sklearn or snake_case names), with its confirmed
        outcome (malignant or benign) when known."""
        return cls(DataType.LAB_PANEL, panel=values, outcome=outcome)

    @classmethod
    def ecg(cls, samples: Any, sampling_rate: float, lead: str | None = None) -> HealthRecord:
        """One ECG lead: samples in millivolts at `sampling_rate` Hz."""
        return cls(DataType.ECG, samples=samples, sampling_rate=sampling_rate, lead=lead)

    @property
    def duration_s(self) -> float:
        """The ECG's length in seconds (0 for a panel)."""
        if self.samples is None or self.sampling_rate is None:
            return 0.0
        return len(self.samples) / self.sampling_rate

    def panel_vector(self) -> np.ndarray:
        """The panel values as float64 in PANEL_FEATURES order."""
        if self.panel is None:
            raise RecordFormatError(f"this is an {self.data_type.name} record, not a lab panel")
        return np.array([self.panel[name] for name in PANEL_FEATURES], dtype=np.float64)

    def __repr__(self) -> str:
        if self.data_type == DataType.LAB_PANEL:
            return f"HealthRecord(LAB_PANEL, {len(PANEL_FEATURES)} features)"
        return f"HealthRecord(ECG, lead {self.lead or '?'}, {self.duration_s:g} s at {self.sampling_rate:g} Hz)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HealthRecord):
            return NotImplemented
        return encode_record(self) == encode_record(other)

    __hash__ = None  # type: ignore[assignment]  # holds a numpy array


def _validated_panel(values: Any) -> Mapping[str, float]:
    if not isinstance(values, Mapping):
        raise RecordFormatError("a lab panel must map feature names to numbers")
    canonical: dict[str, float] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise RecordFormatError("lab panel feature names must be strings")
        name = canonical_feature_name(key)
        if name not in PANEL_FEATURES:
            raise RecordFormatError(f"unknown lab panel feature {key[:40]!r}; expected the {len(PANEL_FEATURES)} "
                                    "Wisconsin diagnostic features (e.g. mean_radius)")
        if name in canonical:
            raise RecordFormatError(f"lab panel feature {name} is given twice")
        canonical[name] = _panel_value(name, value)
    missing = [name for name in PANEL_FEATURES if name not in canonical]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise RecordFormatError(f"the lab panel lacks {shown}; give all {len(PANEL_FEATURES)} features")
    return MappingProxyType({name: canonical[name] for name in PANEL_FEATURES})


def _panel_value(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RecordFormatError(f"lab panel feature {name} is not a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise RecordFormatError(f"lab panel feature {name} must be a finite number >= 0")
    return number + 0.0  # -0.0 -> 0.0: one encoding per value


def _validated_sampling_rate(rate: Any) -> float:
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise RecordFormatError("an ECG needs its sampling rate in Hz as a number")
    rate = float(rate)
    if not (math.isfinite(rate) and MIN_SAMPLING_RATE_HZ <= rate <= MAX_SAMPLING_RATE_HZ):
        raise RecordFormatError(f"the ECG sampling rate must be between {MIN_SAMPLING_RATE_HZ:g} and "
                                f"{MAX_SAMPLING_RATE_HZ:g} Hz")
    return rate


def _validated_samples(samples: Any, rate: float) -> np.ndarray:
    if samples is None:
        raise RecordFormatError("an ECG record needs its samples")
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf, refused below
            array = np.array(samples, dtype=np.float32)  # a copy: the record owns it
    except (TypeError, ValueError, OverflowError):
        raise RecordFormatError("ECG samples must be numbers (millivolts)") from None
    if array.ndim != 1:
        raise RecordFormatError("an ECG record holds one lead: a 1-D sequence of samples")
    if len(array) < MIN_ECG_SECONDS * rate:
        raise RecordFormatError(f"the ECG is shorter than {MIN_ECG_SECONDS:g} s; record a longer strip")
    if not np.isfinite(array).all():
        raise RecordFormatError("the ECG holds NaN or infinite samples")
    if np.abs(array).max() > MAX_ECG_ABS_MV:
        raise RecordFormatError(f"ECG samples exceed ±{MAX_ECG_ABS_MV:g} mV; give the samples in millivolts")
    array = array + np.float32(0.0)  # -0.0 -> 0.0
    array.flags.writeable = False
    return array


def _validated_lead(lead: Any) -> str | None:
    if lead is None:
        return None
    if not isinstance(lead, str) or not _LEAD_NAME.fullmatch(lead):
        raise RecordFormatError(f"an ECG lead name is 1 to {MAX_LEAD_NAME_CHARS} letters, digits, spaces or ._+-")
    return lead


def encode_record(record: HealthRecord) -> bytes:
    """The record's canonical bytes (deterministic: equal records give equal bytes)."""
    if record.data_type == DataType.LAB_PANEL:
        header: dict[str, Any] = {"data_type": int(DataType.LAB_PANEL), "features": len(PANEL_FEATURES)}
        if record.outcome is not None:
            header["outcome"] = record.outcome
        payload = record.panel_vector().astype("<f8").tobytes()
    else:
        assert record.samples is not None
        header = {"data_type": int(DataType.ECG), "lead": record.lead, "samples": len(record.samples),
                  "sampling_rate": record.sampling_rate}
        payload = record.samples.astype("<f4").tobytes()
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)) + header_bytes + payload


def decode_record(data: bytes, max_samples: int = DEFAULT_MAX_ECG_SAMPLES) -> HealthRecord:
    """Parses `encode_record`'s bytes. Raises RecordFormatError (and nothing else) on any other input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RecordFormatError("a record is bytes")
    data = bytes(data)
    if len(data) < _PREFIX.size:
        raise RecordFormatError("the record is truncated (shorter than its prefix)")
    magic, version, header_length = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise RecordFormatError("not an AIDoc record (bad magic bytes); encode records with encode_record")
    if version != FORMAT_VERSION:
        raise RecordFormatError(f"record format version {version} is not supported; this build reads version "
                                f"{FORMAT_VERSION}")
    if header_length > MAX_HEADER_BYTES or len(data) < _PREFIX.size + header_length:
        raise RecordFormatError("the record header is truncated or too long")
    header = _parse_header(data[_PREFIX.size:_PREFIX.size + header_length])
    payload = data[_PREFIX.size + header_length:]
    data_type = header.get("data_type")
    if data_type == DataType.LAB_PANEL and type(data_type) is int:
        record = _decode_panel(header, payload)
    elif data_type == DataType.ECG and type(data_type) is int:
        record = _decode_ecg(header, payload, max_samples)
    else:
        raise RecordFormatError("the record's data type is unknown; this build reads lab panels and ECGs")
    if encode_record(record) != data:
        raise RecordFormatError("the record is not in canonical form; re-encode it with encode_record")
    return record


def _parse_header(raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise RecordFormatError("the record header is not valid JSON") from None
    if not isinstance(header, dict):
        raise RecordFormatError("the record header is not a JSON object")
    return header


def _reject_constant(name: str) -> None:
    raise RecordFormatError(f"the record header holds {name}; numbers must be finite")


def _expect_keys(header: dict[str, Any], keys: set[str]) -> None:
    if set(header) != keys:
        raise RecordFormatError(f"the record header must have exactly the fields {', '.join(sorted(keys))}")


def _decode_panel(header: dict[str, Any], payload: bytes) -> HealthRecord:
    _expect_keys(header, {"data_type", "features"} | ({"outcome"} if "outcome" in header else set()))
    outcome = header.get("outcome")
    if outcome is not None and (type(outcome) is not str or outcome not in PANEL_OUTCOMES):
        raise RecordFormatError(f"a lab panel's outcome is one of {', '.join(PANEL_OUTCOMES)}")
    if header["features"] != len(PANEL_FEATURES) or type(header["features"]) is not int:
        raise RecordFormatError(f"a lab panel record holds {len(PANEL_FEATURES)} features")
    if len(payload) != 8 * len(PANEL_FEATURES):
        raise RecordFormatError("the lab panel payload is truncated or too long")
    values = np.frombuffer(payload, dtype="<f8")
    return HealthRecord.lab_panel(dict(zip(PANEL_FEATURES, (float(v) for v in values))), outcome)


def _decode_ecg(header: dict[str, Any], payload: bytes, max_samples: int) -> HealthRecord:
    _expect_keys(header, {"data_type", "lead", "samples", "sampling_rate"})
    count, rate = header["samples"], header["sampling_rate"]
    if type(count) is not int or not 0 < count <= max_samples:
        raise RecordFormatError(f"an ECG record holds 1 to {max_samples} samples")
    if type(rate) is not float:
        raise RecordFormatError("the ECG sampling rate must be a JSON float")
    if len(payload) != 4 * count:
        raise RecordFormatError("the ECG payload is truncated or too long for its sample count")
    return HealthRecord.ecg(np.frombuffer(payload, dtype="<f4"), rate, header["lead"])
