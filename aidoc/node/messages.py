"""What passes between a node's two sides: the chain side (aidoc.oracles: watcher, sender) and the
compute side (aidoc.workers: the Celery app and its tasks).

- Tasks, watcher or driver -> workers: `Diagnose` (a batch of DiagnosisRequested events), `TrainJob`
  (a compute-to-data job), `LocalRound` and `AggregateRound` (a federated round), each put on the
  node's own Celery queue by `dispatch()`, which every caller uses.
- Results, workers -> sender: `OutboxItem` (a sealed result to fulfil, or a failure to report) and
  `ContractCall` (a transaction the sender alone signs), carried by the node's Outbox in Redis.

All of it is JSON on the wire: never a record's content, never a key."""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import asdict, dataclass, field
from typing import ClassVar, Literal

from celery import Celery

from aidoc.chain.request import DiagnosisRequest

# The Celery task names, the queue a node's workers consume, and the default queue of the app.
DIAGNOSE_TASK = "aidoc.diagnose"
TRAIN_JOB_TASK = "aidoc.train_job"
LOCAL_ROUND_TASK = "aidoc.local_round"
AGGREGATE_TASK = "aidoc.aggregate_round"
DIAGNOSIS_QUEUE = "aidoc.diagnoses"


NODE_QUEUE_PREFIX = "aidoc.node."


def node_queue(node: str) -> str:
    """The Celery queue only `node`'s workers consume: several nodes may share one Redis, and a task
    must reach the node whose key opens its records and whose sender signs its transaction."""
    return f"{NODE_QUEUE_PREFIX}{node.lower()}"


def is_node_queue(name: str) -> bool:
    return name.startswith(NODE_QUEUE_PREFIX)


# ---------------------------------------------------------------- tasks: to the workers


@dataclass(frozen=True)
class DiagnosisJob:
    """What the watcher hands to a worker: one DiagnosisRequested event."""

    request_id: int
    request: DiagnosisRequest
    result_key: bytes
    block_hash: str
    tx_hash: str
    log_index: int
    dispatched_at: float = 0.0  # when the watcher queued it (wall clock), for the queue-wait figure

    def to_json(self) -> dict:
        data = asdict(self)
        data["result_key"] = base64.b64encode(self.result_key).decode()
        return data

    @classmethod
    def from_json(cls, data: dict) -> "DiagnosisJob":
        return cls(
            request_id=int(data["request_id"]),
            request=DiagnosisRequest(**data["request"]),
            result_key=base64.b64decode(data["result_key"]),
            block_hash=data["block_hash"],
            tx_hash=data["tx_hash"],
            log_index=int(data["log_index"]),
            dispatched_at=float(data.get("dispatched_at", 0.0)),
        )


@dataclass(frozen=True)
class Diagnose:
    """Diagnose a batch of requests (what the watcher saw in one pass, up to AIDOC_TASK_BATCH)."""

    jobs: tuple[DiagnosisJob, ...]
    task: ClassVar[str] = DIAGNOSE_TASK

    def task_args(self) -> list:
        return [[job.to_json() for job in self.jobs]]


@dataclass(frozen=True)
class TrainJob:
    """Complete compute-to-data job `job_id` (TrainingMarket) if it is open for this node."""

    job_id: int
    task: ClassVar[str] = TRAIN_JOB_TASK

    def task_args(self) -> list:
        return [self.job_id]


@dataclass(frozen=True)
class LocalRound:
    """Train and submit this institution's update for a federated round (FederatedRounds)."""

    training_id: int
    round_number: int
    task: ClassVar[str] = LOCAL_ROUND_TASK

    def task_args(self) -> list:
        return [self.training_id, self.round_number]


@dataclass(frozen=True)
class AggregateRound:
    """Average a federated round's updates and post the aggregate (the aggregator's node)."""

    training_id: int
    round_number: int
    task: ClassVar[str] = AGGREGATE_TASK

    def task_args(self) -> list:
        return [self.training_id, self.round_number]


NodeTask = Diagnose | TrainJob | LocalRound | AggregateRound


@functools.lru_cache(maxsize=8)
def _broker(broker_url: str) -> Celery:
    """A Celery client of the node's broker: it only sends, so it needs none of the workers' tasks."""
    client = Celery("aidoc-dispatch", broker=broker_url, set_as_current=False)
    client.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    return client


def dispatch(task: NodeTask, node: str, broker_url: str) -> None:
    """Puts `task` on `node`'s own queue of the broker at `broker_url` (the node's Redis)."""
    _broker(broker_url).send_task(task.task, args=task.task_args(), queue=node_queue(node))


# ---------------------------------------------------------------- results: to the sender

Kind = Literal["fulfil", "failure"]


@dataclass(frozen=True)
class OutboxItem:
    """One request's outcome, ready for the chain."""

    kind: Kind
    request_id: int
    request: DiagnosisRequest
    commitment: bytes = b""
    result_cid: str = ""
    ciphertext: bytes = b""
    reason: int = 0
    queued_at: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # ms per stage so far (aidoc.node.stages)

    @classmethod
    def failure(cls, request_id: int, request: DiagnosisRequest, reason: int) -> "OutboxItem":
        """A request to report as failed with `reason` (a FailureReason), which refunds it."""
        return cls(kind="failure", request_id=request_id, request=request, reason=int(reason))

    def to_json(self) -> str:
        data = asdict(self)
        data["commitment"] = self.commitment.hex()
        data["ciphertext"] = base64.b64encode(self.ciphertext).decode()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "OutboxItem":
        data = json.loads(raw)
        return cls(
            kind=data["kind"],
            request_id=int(data["request_id"]),
            request=DiagnosisRequest(**data["request"]),
            commitment=bytes.fromhex(data["commitment"]),
            result_cid=data["result_cid"],
            ciphertext=base64.b64decode(data["ciphertext"]),
            reason=int(data["reason"]),
            queued_at=float(data["queued_at"]),
            stages={k: float(v) for k, v in data.get("stages", {}).items()},
        )


@dataclass(frozen=True)
class ContractCall:
    """A transaction a worker asks the node's sender to send (the sender alone signs with the node's
    key and owns its nonce): a training job's completion, a federated update or aggregate.
    `publish` is content to put on IPFS once the transaction is mined (the weights it names)."""

    contract: str  # the Marketplace attribute: "training" or "rounds"
    function: str
    args: tuple
    gas: int
    action: str
    publish: bytes = b""

    def to_json(self) -> str:
        return json.dumps({"contract": self.contract, "function": self.function, "args": _jsonable(self.args),
                           "gas": self.gas, "action": self.action,
                           "publish": base64.b64encode(self.publish).decode()}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "ContractCall":
        data = json.loads(raw)
        return cls(data["contract"], data["function"], tuple(_from_jsonable(data["args"])), int(data["gas"]),
                   data["action"], base64.b64decode(data["publish"]))


def _jsonable(value):
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _from_jsonable(value):
    if isinstance(value, dict):
        return bytes.fromhex(value["bytes"])
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value
