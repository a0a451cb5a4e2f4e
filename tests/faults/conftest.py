"""The fault-injection stack: anvil, Redis and js-ipfs on free ports, the marketplace deployed, a
chain that keeps producing blocks, and a TCP proxy between the node and its RPC endpoint."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tcp_proxy import TcpProxy
from web3 import Web3

from aidoc.config import ENV_PREFIX
from aidoc.stack.testbed import Testbed, ensure_trained_models, testbed

CONFIRMATIONS = 3
NODE_SETTINGS = {
    ENV_PREFIX + "CONFIRMATIONS": str(CONFIRMATIONS),  # reorgs shallower than this are survived
    ENV_PREFIX + "POLL_INTERVAL": "0.1",
    ENV_PREFIX + "BATCH_WAIT": "0.1",
    ENV_PREFIX + "TX_TIMEOUT": "5",
    # The visibility timeout stays at its default (900 s, far beyond the test): a restarted worker
    # must take back what its killed predecessor held (aidoc.workers.recovery), not wait for Redis.
    ENV_PREFIX + "TASK_TIME_LIMIT": "30",
    ENV_PREFIX + "TASK_MAX_RETRIES": "10",
}


class Heartbeat(threading.Thread):
    """Mines an empty block every `interval` s, as a live chain would, so that the last requests of
    a stream get their confirmations. Each block is mined holding `lock`: whoever holds it (a reorg)
    knows that no heartbeat block is on its way to the chain."""

    def __init__(self, rpc_url: str, interval: float = 0.25):
        super().__init__(name="heartbeat", daemon=True)
        self.w3 = Web3(Web3.HTTPProvider(rpc_url))
        self.interval = interval
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                self.w3.provider.make_request("evm_mine", [])


@pytest.fixture(scope="module")
def bed(tmp_path_factory) -> Testbed:
    with testbed(tmp_path_factory.mktemp("faults"), ipfs_daemon=True, settings=NODE_SETTINGS) as stack:
        yield stack


@pytest.fixture(scope="module")
def heartbeat(bed) -> Heartbeat:
    beat = Heartbeat(bed.services.rpc_url)
    beat.start()
    yield beat
    beat.stopped.set()
    beat.join()


@pytest.fixture(scope="module")
def rpc_proxy(bed) -> TcpProxy:
    rpc = bed.services.rpc_url.rsplit(":", 1)
    proxy = TcpProxy(rpc[0].removeprefix("http://"), int(rpc[1]))
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return ensure_trained_models()
