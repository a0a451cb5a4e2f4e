from aidoc.storage.unixfs import cid_v1_raw  # noqa: F401  (kept for scripts/gas_report.py)
