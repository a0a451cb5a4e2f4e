"""Files that patients bring, read into HealthRecords; and writers for the demo's sample files.

Supported:
- lab panel, JSON: an object of feature name -> number (sklearn names or snake_case), and optionally
  "outcome": "malignant" or "benign" (the confirmed diagnosis, which training jobs learn from).
- lab panel, CSV: a header row of feature names and one row of values, or two columns
  feature,value (an optional header row such as ``feature,value``).
- ECG, DICOM waveform (.dcm): lead II of the rhythm multiplex group, else its first channel,
  scaled to millivolts with the channel sensitivity, correction factor, baseline and units.
- ECG, CSV: one column of millivolt samples with a ``# sampling_rate=500`` line, or a time
  column (``time`` / ``time_s`` in seconds, ``time_ms`` in milliseconds) and a sample column.
  ``# lead=II`` names the lead. Lines starting with ``#`` are otherwise comments.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from aidoc.constants import DataType
from aidoc.errors import RecordFormatError
from aidoc.records.record import PANEL_FEATURES, HealthRecord, canonical_feature_name

SUPPORTED_FORMATS = ("lab panels as .json or .csv (feature names and values); ECGs as a DICOM waveform (.dcm) "
                     "or a .csv of millivolt samples with '# sampling_rate=<Hz>' or a time column")
MAX_RECORD_FILE_BYTES = 64 * 1024 * 1024
_TIME_COLUMNS = {"time": 1.0, "time_s": 1.0, "t": 1.0, "seconds": 1.0, "time_ms": 1e-3, "ms": 1e-3}
_RATE_KEYS = ("sampling_rate", "sampling_rate_hz", "fs")
_TIME_STEP_TOLERANCE = 0.01  # a time column's steps may differ from their median by 1 %
# DICOM Channel Sensitivity Units (UCUM codes) -> factor to millivolts.
_UNIT_TO_MV = {"uV": 1e-3, "mV": 1.0, "V": 1e3}
# Lead II in the SCP-ECG and ISO/IEEE 11073 (MDC) code tables, for files whose code meanings are unusual.
_LEAD_II_CODES = {"5.6.3-9-2", "2:2", "MDC_ECG_LEAD_II"}


def load_record_file(path: Path) -> HealthRecord:
    """Reads a lab panel or ECG file (see the module docstring); RecordFormatError if it is none."""
    path = Path(path)
    data = _read_bytes(path)
    suffix = path.suffix.lower()
    if suffix in (".dcm", ".dicom") or (suffix not in (".csv", ".json") and data[128:132] == b"DICM"):
        return _ecg_from_dicom(data, path.name)
    if suffix == ".json" or (suffix != ".csv" and data.lstrip()[:1] == b"{"):
        return _panel_from_json(data, path.name)
    if suffix == ".csv":
        return _record_from_csv(data, path.name)
    raise RecordFormatError(f"{path.name}: unsupported file format; supported are {SUPPORTED_FORMATS}")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_RECORD_FILE_BYTES:
            raise RecordFormatError(f"{path.name} is larger than {MAX_RECORD_FILE_BYTES // 2**20} MiB; "
                                    "give a single record")
        return path.read_bytes()
    except OSError as error:
        raise RecordFormatError(f"cannot read {path}: {error.strerror}") from None


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecordFormatError(f"{name} is not UTF-8 text; save it as UTF-8 CSV or JSON") from None


# ---------------------------------------------------------------- lab panels


def _panel_from_json(data: bytes, name: str) -> HealthRecord:
    try:
        values = json.loads(_text(data, name))
    except (ValueError, RecursionError):
        raise RecordFormatError(f"{name} is not valid JSON; give an object of feature name -> value") from None
    if not isinstance(values, dict):
        raise RecordFormatError(f"{name} must hold a JSON object of feature name -> value")
    outcome = values.pop("outcome", None)
    return _panel_record(values, name, outcome)


def _panel_record(values: dict[str, Any], name: str, outcome: Any = None) -> HealthRecord:
    try:
        return HealthRecord.lab_panel(values, outcome)
    except RecordFormatError as error:
        raise RecordFormatError(f"{name}: {error}") from None


def _is_feature(cell: str) -> bool:
    return canonical_feature_name(cell) in PANEL_FEATURES


def _number(cell: str, what: str, name: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise RecordFormatError(f"{name}: {what} is not a number") from None


def _panel_from_rows(rows: list[list[str]], name: str) -> HealthRecord | None:
    """A panel in wide (header + values) or long (feature,value) layout; None if the rows are no panel."""
    if rows and sum(_is_feature(cell) for cell in rows[0]) > 1:  # wide
        if len(rows) != 2 or len(rows[0]) != len(rows[1]):
            raise RecordFormatError(f"{name}: a wide lab panel CSV has a header row and exactly one row of values")
        return _panel_record({key: _number(value, f"the value of {key[:40]}", name)
                              for key, value in zip(rows[0], rows[1])}, name)
    body = rows[1:] if rows and not _is_feature(rows[0][0]) and len(rows[0]) == 2 else rows
    if body and all(len(row) == 2 for row in body) and sum(_is_feature(row[0]) for row in body) > 1:  # long
        values: dict[str, Any] = {}
        for key, value in body:
            if key in values:
                raise RecordFormatError(f"{name}: lab panel feature {key[:40]} is given twice")
            values[key] = _number(value, f"the value of {key[:40]}", name)
        return _panel_record(values, name)
    return None


# ---------------------------------------------------------------- CSV


def _record_from_csv(data: bytes, name: str) -> HealthRecord:
    metadata: dict[str, str] = {}
    lines: list[str] = []
    for line in _text(data, name).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").partition("=")
            if sep:
                metadata[key.strip().lower()] = value.strip()
        elif stripped:
            lines.append(stripped)
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(lines)]
    except csv.Error:
        raise RecordFormatError(f"{name} is not a valid CSV file") from None
    if not rows:
        raise RecordFormatError(f"{name} holds no data; supported are {SUPPORTED_FORMATS}")
    panel = _panel_from_rows(rows, name)
    return panel if panel is not None else _ecg_from_rows(rows, metadata, name)


def _ecg_from_rows(rows: list[list[str]], metadata: dict[str, str], name: str) -> HealthRecord:
    header = [canonical_feature_name(cell) for cell in rows[0]] if not _is_numeric_row(rows[0]) else None
    body = rows[1:] if header is not None else rows
    width = len(header) if header is not None else len(rows[0])
    if not body or any(len(row) != width for row in body):
        raise RecordFormatError(f"{name}: every ECG CSV row must have {width} column(s) of numbers")
    time_columns = [i for i, column in enumerate(header or []) if column in _TIME_COLUMNS]
    signal_columns = [i for i in range(width) if i not in time_columns]
    if len(time_columns) > 1 or len(signal_columns) != 1:
        raise RecordFormatError(f"{name}: an ECG CSV has one column of millivolt samples (and optionally a time "
                                f"column); supported are {SUPPORTED_FORMATS}")
    try:
        table = np.array([[float(cell) for cell in row] for row in body], dtype=np.float64)
    except ValueError:
        raise RecordFormatError(f"{name}: the ECG CSV holds a cell that is not a number") from None
    rate = _rate_from_metadata(metadata, name)
    if time_columns:
        assert header is not None
        time_rate = _rate_from_times(table[:, time_columns[0]] * _TIME_COLUMNS[header[time_columns[0]]], name)
        if rate is not None and abs(time_rate - rate) > _TIME_STEP_TOLERANCE * rate:
            raise RecordFormatError(f"{name}: the time column and the sampling_rate line disagree")
        rate = rate if rate is not None else time_rate
    if rate is None:
        raise RecordFormatError(f"{name}: an ECG CSV needs a '# sampling_rate=<Hz>' line or a time column")
    try:
        return HealthRecord.ecg(table[:, signal_columns[0]], rate, metadata.get("lead") or None)
    except RecordFormatError as error:
        raise RecordFormatError(f"{name}: {error}") from None


def _is_numeric_row(row: list[str]) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def _rate_from_metadata(metadata: dict[str, str], name: str) -> float | None:
    for key in _RATE_KEYS:
        if key in metadata:
            return _number(re.sub(r"\s*hz$", "", metadata[key], flags=re.IGNORECASE), f"# {key}", name)
    return None


def _rate_from_times(times: np.ndarray, name: str) -> float:
    steps = np.diff(times)
    if len(steps) == 0 or not np.isfinite(times).all() or (steps <= 0).any():
        raise RecordFormatError(f"{name}: the time column must increase from row to row")
    median = float(np.median(steps))
    if np.abs(steps - median).max() > _TIME_STEP_TOLERANCE * median:
        raise RecordFormatError(f"{name}: the time column is not evenly spaced; resample the ECG to a fixed rate")
    return (len(times) - 1) / float(times[-1] - times[0])


# ---------------------------------------------------------------- DICOM


def _ecg_from_dicom(data: bytes, name: str) -> HealthRecord:
    import pydicom
    from pydicom.waveforms.numpy_handler import multiplex_array

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        if "WaveformSequence" not in dataset or not dataset.WaveformSequence:
            raise RecordFormatError(f"{name} is a DICOM file without a waveform; give a DICOM ECG")
        index = _rhythm_group(dataset.WaveformSequence)
        group = dataset.WaveformSequence[index]
        channels = list(group.ChannelDefinitionSequence)
        lead_names = [_lead_name(channel) for channel in channels]
        channel = lead_names.index("II") if "II" in lead_names else 0
        raw = multiplex_array(dataset, index, as_raw=True)[:, channel].astype(np.float64)
        millivolts = _to_millivolts(raw, channels[channel], name)
        rate = float(group.SamplingFrequency)
    except RecordFormatError:
        raise
    except Exception as error:  # noqa: BLE001 - pydicom raises many types on malformed files
        raise RecordFormatError(f"{name} is not a readable DICOM ECG waveform ({type(error).__name__}); "
                                f"supported are {SUPPORTED_FORMATS}") from None
    lead = lead_names[channel]
    try:
        return HealthRecord.ecg(millivolts, rate, lead if lead and len(lead) <= 16 else None)
    except RecordFormatError as error:
        raise RecordFormatError(f"{name}: {error}") from None


def _rhythm_group(groups) -> int:
    """The multiplex group holding the rhythm strip (not e.g. a derived median beat)."""
    for index, group in enumerate(groups):
        if "RHYTHM" in str(group.get("MultiplexGroupLabel", "")).upper():
            return index
    for index, group in enumerate(groups):
        if str(group.get("WaveformOriginality", "")).upper() == "ORIGINAL":
            return index
    return 0


def _lead_name(channel) -> str | None:
    """"II" for a channel whose source is "Lead II" / "Lead II (Einthoven)" / MDC lead II, etc."""
    sources = channel.get("ChannelSourceSequence") or []
    if not sources:
        return None
    source = sources[0]
    if str(source.get("CodeValue", "")) in _LEAD_II_CODES:
        return "II"
    meaning = re.sub(r"\(.*?\)", "", str(source.get("CodeMeaning", ""))).strip()
    meaning = re.sub(r"^lead\s+", "", meaning, flags=re.IGNORECASE).strip()
    return meaning or None


def _to_millivolts(raw: np.ndarray, channel, name: str) -> np.ndarray:
    units = channel.get("ChannelSensitivityUnitsSequence") or []
    unit = str(units[0].get("CodeValue", "")) if units else ""
    if unit not in _UNIT_TO_MV:
        raise RecordFormatError(f"{name}: the ECG channel's sensitivity units are {unit or 'missing'}; "
                                f"expected one of {', '.join(_UNIT_TO_MV)}")
    sensitivity = float(channel.get("ChannelSensitivity", 1.0))
    correction = float(channel.get("ChannelSensitivityCorrectionFactor", 1.0))
    baseline = float(channel.get("ChannelBaseline", 0.0))  # in the sensitivity units (PS3.3 C.10.9.1.4.3)
    if not all(math.isfinite(v) for v in (sensitivity, correction, baseline)):
        raise RecordFormatError(f"{name}: the ECG channel's sensitivity or baseline is not finite")
    return (raw * sensitivity * correction + baseline) * _UNIT_TO_MV[unit]


# ---------------------------------------------------------------- writers (sample files)


def write_panel_json(path: Path, record: HealthRecord) -> Path:
    """Writes a lab panel record as a JSON object of feature -> value (values round-trip exactly)."""
    if record.data_type != DataType.LAB_PANEL or record.panel is None:
        raise RecordFormatError("write_panel_json writes lab panel records")
    path = Path(path)
    content: dict[str, Any] = dict(record.panel)
    if record.outcome is not None:
        content["outcome"] = record.outcome
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def write_ecg_csv(path: Path, record: HealthRecord) -> Path:
    """Writes an ECG record as one column of millivolts with '# sampling_rate=' (and '# lead=') lines;
    the samples are written in their shortest float32 form, so they read back identical."""
    if record.data_type != DataType.ECG or record.samples is None:
        raise RecordFormatError("write_ecg_csv writes ECG records")
    lines = [f"# sampling_rate={record.sampling_rate!r}"]
    if record.lead:
        lines.append(f"# lead={record.lead}")
    lines.append("mv")
    lines.extend(np.format_float_positional(value, unique=True, trim="-") for value in record.samples)
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path
