"""The node recovers from outages on the real stack: requests made while the IPFS daemon or the
watcher was down are fulfilled once it is back (retries with backoff, backfill from the checkpoint)."""

from __future__ import annotations

import re
import time

import redis as redis_lib

from aidoc.config import OracleSettings
from aidoc.constants import DataType, RequestStatus
from aidoc.flow.request import request_diagnosis
from aidoc.flow.result import fetch_result, settlement
from aidoc.node.messages import node_queue
from aidoc.workers.recovery import unacknowledged_requests
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


def test_a_request_whose_worker_was_sigkilled_is_fulfilled_once_the_worker_is_back(stack, node, doctor, models,
                                                                                   models_dir, funded):
    """The worker holds the request's task (waiting for a retry's countdown while IPFS is down) when
    it is SIGKILLed; the task is unacknowledged in Redis, which would hand it out again only after
    the visibility timeout (900 s). The restarted worker takes it back at once."""
    assert OracleSettings().visibility_timeout >= 900  # the default: nothing here waits for it
    record = consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    ipfs = stack.processes["ipfs"]
    worker = next(p for p in node.processes if p.name == "worker")
    ipfs.stop()
    try:
        request_id, _ = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
        retrying = re.compile(rf"request\(s\) \((?:\d+, )*{request_id}(?:, \d+)*\): .*; retrying in")
        deadline = time.monotonic() + 60
        while not retrying.search(worker.log_path.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert retrying.search(worker.log_path.read_text()), "the worker never met the IPFS outage"
        client, queue = redis_lib.Redis.from_url(stack.services.redis_url), node_queue(node.address)
        while request_id not in unacknowledged_requests(client, queue) and time.monotonic() < deadline:
            time.sleep(0.01)  # the retry is held by the worker (its countdown), not in transit
        assert request_id in unacknowledged_requests(client, queue)
        worker.kill()
        assert settlement(doctor, request_id).status == RequestStatus.PENDING
        worker.start()
    finally:
        ipfs.start()
    assert settle(doctor, [request_id], timeout=60)[request_id].status == RequestStatus.FULFILLED
    assert re.search(r"restored \d+ task\(s\) that a previous worker of this node had taken", worker.log_path.read_text())
    assert node.alive()
