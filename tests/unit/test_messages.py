"""The messages between the node's two sides: every task the chain side dispatches is one the
workers register, with the arguments they take, and every message survives its JSON round trip."""

from __future__ import annotations

import inspect

import pytest

from aidoc.chain.request import DiagnosisRequest
from aidoc.node.messages import (
    AggregateRound,
    ContractCall,
    Diagnose,
    DiagnosisJob,
    LocalRound,
    OutboxItem,
    TrainJob,
    node_queue,
)

TERMS = DiagnosisRequest("0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, "0x" + "44" * 20, 7, 3, 5, 1, 2,
                         1_900_000_000)
JOB = DiagnosisJob(9, TERMS, b"\x01" * 32, "0x" + "aa" * 32, "0x" + "bb" * 32, 4, dispatched_at=12.5)


@pytest.mark.parametrize("message", [Diagnose((JOB, JOB)), TrainJob(3), LocalRound(2, 1), AggregateRound(2, 1)])
def test_each_dispatched_task_is_registered_by_the_workers_with_its_arguments(message):
    import aidoc.workers.tasks  # noqa: F401 - registers the tasks
    import aidoc.workers.training  # noqa: F401
    from aidoc.workers.app import app

    task = app.tasks[message.task]
    parameters = [p for p in inspect.signature(task.run).parameters.values() if p.name != "self"]
    assert len(parameters) == len(message.task_args())


def test_a_diagnosis_job_and_its_batch_survive_json():
    (jobs,) = Diagnose((JOB,)).task_args()
    assert [DiagnosisJob.from_json(data) for data in jobs] == [JOB]


def test_outbox_items_survive_json():
    item = OutboxItem("fulfil", 9, TERMS, commitment=b"\x02" * 32, result_cid="bafy", ciphertext=b"\x00\xff" * 8,
                      queued_at=1.5, stages={"infer": 3.25})
    assert OutboxItem.from_json(item.to_json()) == item
    failure = OutboxItem.failure(9, TERMS, 4)
    assert OutboxItem.from_json(failure.to_json()) == failure and failure.kind == "failure"


def test_contract_calls_keep_nested_bytes():
    call = ContractCall("training", "completeJob", (1, [2, 3], b"\x05" * 32, "bafy"), 500_000, "completeJob of job 1",
                        publish=b"weights")
    assert ContractCall.from_json(call.to_json()) == ContractCall(
        "training", "completeJob", (1, [2, 3], b"\x05" * 32, "bafy"), 500_000, "completeJob of job 1", b"weights")


def test_a_node_queue_is_the_node_s_own_whatever_the_address_case():
    assert node_queue("0xAbC") == node_queue("0xabc") == "aidoc.node.0xabc"
