"""The node recovers from outages on the real stack: requests made while the IPFS daemon or the
watcher was down are fulfilled once it is back (retries with backoff, backfill from the checkpoint)."""

from __future__ import annotations

import time

from aidoc.constants import DataType, RequestStatus
from aidoc.flow.request import request_diagnosis
from aidoc.flow.result import fetch_result, settlement
from conftest import consented_record, samples_of, settle


def test_a_request_made_while_ipfs_is_down_is_fulfilled_once_it_is_back(stack, node, doctor, models, models_dir,
                                                                        funded):
    record = consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.ECG)[0])
    ipfs = stack.processes["ipfs"]
    ipfs.stop()
    try:
        request_id, _ = request_diagnosis(doctor, record, models[DataType.ECG], node.address)
        time.sleep(4)  # the worker meets the outage and retries with backoff
        assert settlement(doctor, request_id).status == RequestStatus.PENDING
    finally:
        ipfs.start()
    assert settle(doctor, [request_id])[request_id].status == RequestStatus.FULFILLED
    assert fetch_result(doctor, request_id).result["label"]
    worker_log = next(p for p in node.processes if p.name == "worker").log_path.read_text()
    assert f"request {request_id}: " in worker_log and "retrying in" in worker_log
    assert node.alive()


def test_requests_made_while_the_watcher_is_down_are_backfilled(node, doctor, models, models_dir, funded):
    watcher = next(p for p in node.processes if p.name == "watcher")
    watcher.stop()
    try:
        records = [consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
                   for _ in range(3)]
        ids = [request_diagnosis(doctor, r, models[DataType.LAB_PANEL], node.address)[0] for r in records]
        time.sleep(1)
        assert all(settlement(doctor, i).status == RequestStatus.PENDING for i in ids)
    finally:
        watcher.start()
    settled = settle(doctor, ids)
    assert all(settled[i].status == RequestStatus.FULFILLED for i in ids)
