"""Health records: the canonical encoding, its strict decoder (fuzzed), and the file formats."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from aidoc.constants import DataType
from aidoc.errors import RecordFormatError
from aidoc.records import (
    PANEL_FEATURES,
    HealthRecord,
    decode_record,
    encode_record,
    load_record_file,
    write_ecg_csv,
    write_panel_json,
)
from aidoc.records.record import MAGIC

PYDICOM_ECG = Path(pydicom.data.get_testdata_file("waveform_ecg.dcm"))
SECRET_VALUE = 123.4567  # a patient value no error message may show


@pytest.fixture(scope="module")
def wdbc():
    return load_breast_cancer()


@pytest.fixture
def panel(wdbc) -> HealthRecord:
    return HealthRecord.lab_panel(dict(zip(wdbc.feature_names, wdbc.data[7].tolist())))


@pytest.fixture
def ecg() -> HealthRecord:
    t = np.arange(2500) / 250
    return HealthRecord.ecg(np.sin(2 * np.pi * 1.2 * t) * 0.8 + 0.01 * np.cos(40 * t), 250, "II")


def _with_header(header: dict, payload: bytes) -> bytes:
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + struct.pack("<BH", 1, len(raw)) + raw + payload


# ---------------------------------------------------------------- records and encoding


def test_panel_features_are_sklearns_names(wdbc):
    assert PANEL_FEATURES == tuple(name.replace(" ", "_") for name in wdbc.feature_names)
    assert len(PANEL_FEATURES) == 30


def test_panel_round_trip_is_canonical(panel, wdbc):
    data = encode_record(panel)
    assert data == encode_record(panel)
    decoded = decode_record(data)
    assert decoded == panel and decoded.data_type == DataType.LAB_PANEL
    assert encode_record(decoded) == data
    assert np.array_equal(decoded.panel_vector(), wdbc.data[7])  # float64, exact
    assert list(decoded.panel) == list(PANEL_FEATURES)


def test_panel_accepts_any_spelling_and_order(panel):
    shuffled = {name.upper().replace("_", " "): panel.panel[name] for name in reversed(PANEL_FEATURES)}
    assert HealthRecord.lab_panel(shuffled) == panel


def test_ecg_round_trip_keeps_float32_samples(ecg):
    data = encode_record(ecg)
    decoded = decode_record(data)
    assert decoded == ecg
    assert decoded.samples.dtype == np.float32 and np.array_equal(decoded.samples, ecg.samples)
    assert decoded.sampling_rate == 250.0 and decoded.lead == "II" and decoded.duration_s == 10.0
    assert len(data) < 4 * len(ecg.samples) + 100  # compact: raw float32 plus a small header


def test_records_are_immutable(ecg):
    with pytest.raises(ValueError):
        ecg.samples[0] = 1.0
    with pytest.raises(TypeError):
        HealthRecord.lab_panel({name: 1.0 for name in PANEL_FEATURES}).panel["mean_radius"] = 2.0


def test_repr_and_errors_hide_patient_values(panel):
    values = dict(panel.panel) | {"mean_area": SECRET_VALUE}
    assert str(SECRET_VALUE) not in repr(HealthRecord.lab_panel(values))
    with pytest.raises(RecordFormatError) as error:
        HealthRecord.lab_panel(values | {"mean_radius": -SECRET_VALUE})
    assert str(SECRET_VALUE) not in str(error.value) and "mean_radius" in str(error.value)


@pytest.mark.parametrize("change, message", [
    (lambda v: {k: x for k, x in v.items() if k != "worst_symmetry"}, "lacks worst_symmetry"),
    (lambda v: v | {"mean_radius": float("nan")}, "finite"),
    (lambda v: v | {"mean_radius": float("inf")}, "finite"),
    (lambda v: v | {"mean_radius": "12"}, "not a number"),
    (lambda v: v | {"mean_radius": True}, "not a number"),
    (lambda v: v | {"tumour_size": 1.0}, "unknown lab panel feature"),
    (lambda v: v | {"Mean Radius": 1.0}, "given twice"),
])
def test_bad_panels_are_refused(panel, change, message):
    with pytest.raises(RecordFormatError, match=message):
        HealthRecord.lab_panel(change(dict(panel.panel)))


@pytest.mark.parametrize("samples, rate, message", [
    (np.zeros(1000), 10.0, "sampling rate"),
    (np.zeros(1000), 1e9, "sampling rate"),
    (np.zeros(1000), float("nan"), "sampling rate"),
    (np.zeros(100), 500.0, "shorter than"),
    (np.full(1000, np.nan), 500.0, "NaN"),
    (np.full(1000, 1e39), 500.0, "infinite"),
    (np.full(1000, 500.0), 500.0, "millivolts"),
    (np.zeros((2, 1000)), 500.0, "one lead"),
])
def test_bad_ecgs_are_refused(samples, rate, message):
    with pytest.raises(RecordFormatError, match=message):
        HealthRecord.ecg(samples, rate)


def test_unsupported_data_types_are_refused():
    with pytest.raises(RecordFormatError, match="not supported"):
        HealthRecord(DataType.IMAGE)
    with pytest.raises(RecordFormatError, match="unknown record data type"):
        HealthRecord(9)  # type: ignore[arg-type]


def test_every_truncation_is_refused(panel, ecg):
    for data in (encode_record(panel), encode_record(ecg)[:400]):
        for end in range(len(data)):
            with pytest.raises(RecordFormatError):
                decode_record(data[:end])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d + b"\x00", "too long"),
    (lambda d: b"XXXX" + d[4:], "magic"),
    (lambda d: d[:4] + b"\x02" + d[5:], "version 2"),
])
def test_malformed_encodings_are_refused(ecg, mutate, message):
    with pytest.raises(RecordFormatError, match=message):
        decode_record(mutate(encode_record(ecg)))


@pytest.mark.parametrize("header, payload, message", [
    ({"data_type": 3, "features": 30}, b"\x00" * 240, "data type is unknown"),
    ({"data_type": 1.0, "features": 30}, b"\x00" * 240, "data type is unknown"),
    ({"data_type": 1, "features": 29}, b"\x00" * 232, "30 features"),
    ({"data_type": 1, "features": 30, "extra": 1}, b"\x00" * 240, "exactly the fields"),
    ({"data_type": 1, "features": 30}, struct.pack("<30d", *([1.0] * 29 + [float("nan")])), "finite"),
    ({"data_type": 2, "lead": None, "samples": 1000, "sampling_rate": 1e9}, b"\x00" * 4000, "sampling rate"),
    ({"data_type": 2, "lead": None, "samples": 1000, "sampling_rate": 500}, b"\x00" * 4000, "JSON float"),
    ({"data_type": 2, "lead": None, "samples": 1000, "sampling_rate": 500.0}, b"\x00" * 3999, "truncated"),
    ({"data_type": 2, "lead": None, "samples": 1000, "sampling_rate": 500.0},
     np.full(1000, np.inf, dtype="<f4").tobytes(), "infinite"),
    ({"data_type": 2, "lead": "<script>", "samples": 1000, "sampling_rate": 500.0}, b"\x00" * 4000, "lead name"),
])
def test_bad_headers_and_payloads_are_refused(header, payload, message):
    with pytest.raises(RecordFormatError, match=message):
        decode_record(_with_header(header, payload))


def test_non_canonical_encodings_and_limits_are_refused(ecg):
    data = encode_record(ecg)
    spaced = _with_header({"data_type": 2, "lead": "II", "samples": 2500, "sampling_rate": 250.0}, b"")
    spaced = spaced.replace(b'"lead":', b'"lead": ').replace(b"\x01@\x00", b"\x01A\x00")
    with pytest.raises(RecordFormatError, match="canonical"):
        decode_record(spaced + data[-4 * 2500:])
    with pytest.raises(RecordFormatError, match="1 to 1000 samples"):
        decode_record(data, max_samples=1000)
    assert decode_record(data, max_samples=2500) == ecg


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_fuzz_decode_raises_only_record_format_error(data):
    try:
        decode_record(data)
    except RecordFormatError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_decode_of_mutated_records(data):
    t = np.arange(250) / 250
    valid = bytearray(encode_record(HealthRecord.ecg(np.sin(t * 7), 125.0, "II")))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(valid) - 1))
        valid[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(valid)))
    try:
        decoded = decode_record(bytes(valid[:cut]))
    except RecordFormatError:
        return
    assert encode_record(decoded) == bytes(valid[:cut])


# ---------------------------------------------------------------- files


def test_panel_json_round_trip(tmp_path, panel):
    path = write_panel_json(tmp_path / "p.json", panel)
    assert load_record_file(path) == panel
    assert set(json.loads(path.read_text())) == set(PANEL_FEATURES)


def test_panel_json_with_sklearn_names(tmp_path, panel, wdbc):
    path = tmp_path / "panel.json"
    path.write_text(json.dumps(dict(zip(wdbc.feature_names, wdbc.data[7].tolist()))))
    assert load_record_file(path) == panel


def test_panel_csv_wide_and_long(tmp_path, panel, wdbc):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(wdbc.feature_names) + "\n" + ",".join(repr(float(v)) for v in wdbc.data[7]) + "\n")
    long = tmp_path / "long.csv"
    long.write_text("feature,value\n" + "".join(f"{k},{v!r}\n" for k, v in panel.panel.items()))
    bare = tmp_path / "bare.csv"
    bare.write_text("# from the lab\n" + "".join(f"{k}, {v!r}\n" for k, v in panel.panel.items()))
    for path in (wide, long, bare):
        assert load_record_file(path) == panel, path.name


def test_panel_files_with_problems_are_refused(tmp_path, panel):
    cases = {
        "missing.json": json.dumps({k: v for k, v in panel.panel.items() if k != "mean_area"}),
        "list.json": "[1, 2, 3]",
        "broken.json": '{"mean_radius": ',
        "text.csv": "feature,value\n" + "".join(f"{k},{SECRET_VALUE}x\n" for k in PANEL_FEATURES),
        "tworows.csv": ",".join(PANEL_FEATURES) + "\n" + ",".join(["1"] * 30) + "\n" + ",".join(["1"] * 30) + "\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(RecordFormatError) as error:
            load_record_file(tmp_path / name)
        assert name in str(error.value) and str(SECRET_VALUE) not in str(error.value)


def test_ecg_csv_round_trip_is_exact(tmp_path, ecg):
    path = write_ecg_csv(tmp_path / "e.csv", ecg)
    assert path.read_text().startswith("# sampling_rate=250.0\n# lead=II\nmv\n")
    assert load_record_file(path) == ecg


@pytest.mark.parametrize("column, scale", [("time", 1.0), ("time_s", 1.0), ("time_ms", 1000.0)])
def test_ecg_csv_with_a_time_column(tmp_path, column, scale):
    samples = np.sin(np.arange(1500) / 30)
    path = tmp_path / "timed.csv"
    path.write_text(f"{column},ecg\n" + "".join(f"{i / 500 * scale:.6f},{v:.5f}\n" for i, v in enumerate(samples)))
    record = load_record_file(path)
    assert record.data_type == DataType.ECG and record.sampling_rate == pytest.approx(500.0, rel=1e-6)
    assert record.duration_s == pytest.approx(3.0, rel=1e-3)
    assert np.allclose(record.samples, samples, atol=1e-5)


def test_headerless_ecg_csv_with_rate_line(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("# sampling_rate = 360 Hz\n" + "\n".join("0.25" for _ in range(720)) + "\n")
    record = load_record_file(path)
    assert record.sampling_rate == 360.0 and len(record.samples) == 720 and record.lead is None


@pytest.mark.parametrize("text, message", [
    ("mv\n" + "0.1\n" * 1000, "sampling_rate"),
    ("time,mv\n" + "".join(f"{t},{0.1}\n" for t in (0.0, 0.002, 0.005, 0.006) * 300), "increase"),
    ("time,mv\n" + "".join(f"{i * 0.002 + (0.0007 if i % 2 else 0)},0.1\n" for i in range(1000)), "evenly"),
    ("# sampling_rate=500\ntime,mv\n" + "".join(f"{i / 250},0.1\n" for i in range(1000)), "disagree"),
    ("# sampling_rate=500\na,b\n" + "1,2\n" * 1000, "one column"),
    ("# sampling_rate=500\nmv\n" + "0.1\n" * 999 + "oops\n", "not a number"),
])
def test_ecg_csv_problems_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(RecordFormatError, match=message):
        load_record_file(path)


def test_pydicom_ecg_lead_ii_in_millivolts():
    record = load_record_file(PYDICOM_ECG)
    assert record.data_type == DataType.ECG and record.lead == "II"
    assert record.sampling_rate == 1000.0 and len(record.samples) == 10_000 and record.duration_s == 10.0
    dataset = pydicom.dcmread(PYDICOM_ECG)
    group = dataset.WaveformSequence[0]
    assert group.MultiplexGroupLabel == "RHYTHM"
    raw = np.frombuffer(group.WaveformData, dtype="<i2").reshape(10_000, 12)[:, 1]  # channel 2 is lead II
    assert np.allclose(record.samples, raw * 1.25 / 1000, atol=1e-6)  # 1.25 uV per unit
    assert 0.5 < record.samples.max() < 3.0  # an R wave in mV


def _edited_dicom(tmp_path: Path, edit) -> Path:
    dataset = pydicom.dcmread(PYDICOM_ECG)
    edit(dataset.WaveformSequence[0].ChannelDefinitionSequence)
    path = tmp_path / "edited.dcm"
    dataset.save_as(path)
    return path


def test_dicom_without_lead_ii_uses_the_first_channel(tmp_path):
    def rename_lead_ii(channels):
        channels[1].ChannelSourceSequence[0].CodeMeaning = "Lead X"
        channels[1].ChannelSourceSequence[0].CodeValue = "5.6.3-9-99"

    record = load_record_file(_edited_dicom(tmp_path, rename_lead_ii))
    lead_i = pydicom.dcmread(PYDICOM_ECG).waveform_array(0)[:, 0] / 1000
    assert record.lead == "I" and np.allclose(record.samples, lead_i, atol=1e-6)


def test_dicom_sensitivity_units_and_baseline_are_applied(tmp_path):
    def millivolts_with_baseline(channels):
        channels[1].ChannelSensitivity = "0.00125"
        channels[1].ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
        channels[1].ChannelBaseline = "0.5"

    expected = load_record_file(PYDICOM_ECG).samples + 0.5
    record = load_record_file(_edited_dicom(tmp_path, millivolts_with_baseline))
    assert np.allclose(record.samples, expected, atol=1e-6)


def test_dicom_with_unknown_units_is_refused(tmp_path):
    def kelvin(channels):
        channels[1].ChannelSensitivityUnitsSequence[0].CodeValue = "K"

    with pytest.raises(RecordFormatError, match="sensitivity units are K"):
        load_record_file(_edited_dicom(tmp_path, kelvin))


def test_dispatch_on_content_and_unknown_formats(tmp_path, panel):
    no_suffix = tmp_path / "ecg_export"
    no_suffix.write_bytes(PYDICOM_ECG.read_bytes())
    assert load_record_file(no_suffix).lead == "II"
    json_as_txt = write_panel_json(tmp_path / "panel.txt", panel)
    assert load_record_file(json_as_txt) == panel
    for name, data in {"scan.png": b"\x89PNG\r\n\x1a\n" + bytes(64), "corrupt.dcm": bytes(128) + b"DICM" + bytes(50),
                       "ct.dcm": Path(pydicom.data.get_testdata_file("CT_small.dcm")).read_bytes()}.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(RecordFormatError) as error:
            load_record_file(tmp_path / name)
        assert name in str(error.value)
    with pytest.raises(RecordFormatError, match="supported are lab panels as .json or .csv"):
        load_record_file(tmp_path / "scan.png")
    with pytest.raises(RecordFormatError, match="without a waveform"):
        load_record_file(tmp_path / "ct.dcm")
    with pytest.raises(RecordFormatError, match="cannot read"):
        load_record_file(tmp_path / "absent.csv")


# ---------------------------------------------------------------- outcomes (training labels)


def test_a_panel_carries_its_confirmed_outcome_through_encoding_and_files(panel, tmp_path):
    labelled = HealthRecord.lab_panel(dict(panel.panel), "malignant")
    data = encode_record(labelled)
    assert data != encode_record(panel)  # the outcome is part of the record
    assert decode_record(data).outcome == "malignant" and decode_record(encode_record(panel)).outcome is None
    path = write_panel_json(tmp_path / "p.json", labelled)
    assert json.loads(path.read_text())["outcome"] == "malignant"
    assert load_record_file(path) == labelled


@pytest.mark.parametrize("outcome", ["cancer", "", 1, True])
def test_an_outcome_is_malignant_or_benign(panel, outcome):
    with pytest.raises(RecordFormatError, match="outcome is one of malignant, benign"):
        HealthRecord.lab_panel(dict(panel.panel), outcome)


def test_only_panels_carry_an_outcome_and_a_forged_outcome_header_is_refused(panel, ecg):
    with pytest.raises(RecordFormatError, match="only lab panels"):
        HealthRecord(DataType.ECG, samples=ecg.samples, sampling_rate=ecg.sampling_rate, outcome="benign")
    data = encode_record(HealthRecord.lab_panel(dict(panel.panel), "benign"))
    forged = data.replace(b'"outcome":"benign"', b'"outcome":"benigm"')
    with pytest.raises(RecordFormatError, match="outcome"):
        decode_record(forged)
