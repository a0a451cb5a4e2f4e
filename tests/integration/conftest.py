"""Fixtures for the integration tests: a real stack of anvil, Redis (redis-server or valkey), an
offline js-ipfs daemon, the marketplace deployed by Brownie, the trained models, and a node whose
Celery worker, watcher and sender run as separate processes. Run with plain pytest:
`pytest -p no:pytest-brownie tests/integration` (make test-integration does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis as redis_lib

from aidoc.config import AID, ENV_PREFIX
from aidoc.constants import DataType, RequestStatus
from aidoc.flow.session import Session
from aidoc.identity import Identity
from aidoc.stack.process import ManagedProcess
from aidoc.stack.testbed import TERMS, Testbed, consent_record, ensure_trained_models, testbed

ROYALTY, MODEL_PRICE, NODE_FEE, STAKE = TERMS.royalty, TERMS.model_price, TERMS.node_fee, TERMS.stake
# The node processes refuse records above this, so a test can send an oversized one cheaply.
NODE_MAX_RECORD_BYTES = 1024 * 1024


@dataclass
class Node:
    identity: Identity
    session: Session
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.identity.address

    def alive(self) -> bool:
        return all(p.process is not None and p.process.poll() is None for p in self.processes)


def _start(process: ManagedProcess, started: dict[str, ManagedProcess]) -> ManagedProcess:
    started[process.name] = process.start()
    return process


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Testbed:
    settings = {
        ENV_PREFIX + "MAX_RECORD_BYTES": str(NODE_MAX_RECORD_BYTES),
        ENV_PREFIX + "BATCH_WAIT": "0.1",
        ENV_PREFIX + "POLL_INTERVAL": "0.2",
    }
    with testbed(tmp_path_factory.mktemp("stack"), ipfs_daemon=True, settings=settings) as bed:
        yield bed


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The trained models: scripts/train_models.py runs once per checkout (make models does it too)."""
    return ensure_trained_models()


@pytest.fixture(scope="session")
def funded(stack):
    """Makes a funded Session for a fresh identity."""
    from aidoc.chain.contracts import open_marketplace

    marketplace = open_marketplace(stack.services)
    return lambda aid=1_000 * AID: stack.funded(aid, marketplace)


@pytest.fixture(scope="session")
def provider(funded) -> Session:
    return funded(0)


@pytest.fixture(scope="session")
def models(provider, models_dir) -> dict[DataType, int]:
    from aidoc.flow.model import register_model

    return {
        DataType.LAB_PANEL: register_model(provider, models_dir / "panel-mlp.safetensors", "panel", DataType.LAB_PANEL,
                                           MODEL_PRICE),
        DataType.ECG: register_model(provider, models_dir / "ecg-cnn.safetensors", "ecg", DataType.ECG, MODEL_PRICE),
    }


@pytest.fixture(scope="session")
def node(stack, funded) -> Node:
    from aidoc.stack.local import start_node

    session = stack.staked_node([DataType.LAB_PANEL, DataType.ECG], marketplace=funded(0).marketplace)
    processes = start_node(stack.services, session.identity, concurrency=2)
    node = Node(session.identity, session, processes)
    yield node
    for process in reversed(processes):
        process.stop()


@pytest.fixture(scope="session")
def doctor(funded) -> Session:
    return funded(10_000 * AID)


@pytest.fixture
def patient(funded) -> Session:
    return funded(0)


@pytest.fixture(scope="session")
def redis_client(stack) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(stack.services.redis_url)


def consented_record(patient: Session, doctor: Session, node: Node, source, royalty: int = ROYALTY) -> int:
    """A record of `source` readable by `node`, with diagnosis consent to `doctor` for 30 days."""
    return consent_record(patient, source, [node.address], doctor.address, royalty)


def settle(doctor: Session, request_ids: list[int], timeout: float = 90) -> dict:
    from aidoc.flow.result import wait_for_settlements

    settled = wait_for_settlements(doctor, request_ids, timeout=timeout, poll=0.1)
    pending = [i for i, s in settled.items() if s.status == RequestStatus.PENDING]
    assert not pending, f"requests still pending after {timeout} s: {pending}"
    return settled


def samples_of(models_dir: Path, data_type: DataType) -> list[Path]:
    """The sample patient files of one data type that scripts/train_models.py wrote."""
    from aidoc.records import load_record_file

    found = [p for p in sorted((models_dir / "samples").iterdir()) if load_record_file(p).data_type == data_type]
    assert found, f"no {data_type.name} samples in {models_dir / 'samples'}"
    return found
