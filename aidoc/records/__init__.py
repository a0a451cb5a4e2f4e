"""Health records: what they hold, their canonical bytes, and the files patients bring."""

from aidoc.records.formats import SUPPORTED_FORMATS, load_record_file, write_ecg_csv, write_panel_json
from aidoc.records.record import (
    DEFAULT_MAX_ECG_SAMPLES,
    PANEL_FEATURES,
    PANEL_OUTCOMES,
    HealthRecord,
    canonical_feature_name,
    decode_record,
    encode_record,
)

__all__ = [
    "DEFAULT_MAX_ECG_SAMPLES",
    "PANEL_FEATURES",
    "PANEL_OUTCOMES",
    "SUPPORTED_FORMATS",
    "HealthRecord",
    "canonical_feature_name",
    "decode_record",
    "encode_record",
    "load_record_file",
    "write_ecg_csv",
    "write_panel_json",
]
