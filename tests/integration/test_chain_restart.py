"""A node whose chain is started again under it (`aidoc down` then `aidoc up`: a fresh anvil with the
same chain id, while Redis comes back with the old chain's checkpoint and claims) serves the new
chain: its state is keyed by the chain's genesis block and the market's address, and it says so.

Its own stack (anvil, Redis, the embedded IPFS store), because it restarts the chain."""

from __future__ import annotations

import time

import pytest

from aidoc.chain.contracts import open_marketplace, rpc_request
from aidoc.chain.deployments import deploy_marketplace
from aidoc.config import AID, ENV_PREFIX, OracleSettings
from aidoc.constants import DataType, RequestStatus
from aidoc.flow.request import request_diagnosis
from aidoc.identity import Identity
from aidoc.node.namespace import NodeNamespace
from aidoc.stack.local import start_node
from aidoc.stack.testbed import consent_record
from aidoc.stack.testbed import testbed as own_testbed  # (a name pytest does not collect)
from conftest import samples_of, settle

OLD_CHAIN_EXTRA_BLOCKS = 100  # the old chain ends well above where the new one will be


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    settings = {ENV_PREFIX + "POLL_INTERVAL": "0.2", ENV_PREFIX + "BATCH_WAIT": "0.1"}
    with own_testbed(tmp_path_factory.mktemp("restart"), ipfs_daemon=False, settings=settings) as stack:
        yield stack


def diagnose_once(bed, node: Identity, models_dir) -> tuple[object, int]:
    """On the chain deployed now: a panel model, `node` staked, a consented record, one request
    fulfilled by the node's processes; returns the marketplace and the request id."""
    marketplace = open_marketplace(bed.services)
    _, model_id = bed.provider_with_model(models_dir / "panel-mlp.safetensors", DataType.LAB_PANEL,
                                          marketplace=marketplace)
    bed.staked_node([DataType.LAB_PANEL], marketplace=marketplace, identity=node)
    doctor = bed.funded(100 * AID, marketplace)
    record = consent_record(bed.funded(0, marketplace), samples_of(models_dir, DataType.LAB_PANEL)[0],
                            [node.address], doctor.address)
    request_id, _ = request_diagnosis(doctor, record, model_id, node.address)
    assert settle(doctor, [request_id])[request_id].status == RequestStatus.FULFILLED
    return marketplace, request_id


def wait_for_checkpoint(bed, marketplace, node: Identity, block: int, timeout: float = 30) -> None:
    import redis

    from aidoc.oracles.watcher import WatcherState

    state = WatcherState(redis.Redis.from_url(bed.services.redis_url), NodeNamespace.of(marketplace, node.address))
    deadline = time.monotonic() + timeout
    while (state.checkpoint() or 0) < block and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (state.checkpoint() or 0) >= block, f"the watcher did not reach block {block}"


def test_a_node_serves_a_restarted_chain_whose_redis_kept_the_old_state(bed, models_dir):
    node = Identity.generate()
    processes = start_node(bed.services, node)
    try:
        old_market, first_id = diagnose_once(bed, node, models_dir)
        rpc_request(old_market.w3, "anvil_mine", [hex(OLD_CHAIN_EXTRA_BLOCKS)])
        old_head = old_market.w3.eth.block_number
        wait_for_checkpoint(bed, old_market, node, old_head - OracleSettings().confirmations)
    finally:
        for process in reversed(processes):
            process.stop()

    anvil = bed.processes["anvil"]
    anvil.stop()
    anvil.start()  # a fresh chain, same chain id and port; Redis keeps what the node wrote
    deploy_marketplace(bed.services)

    processes = start_node(bed.services, node)
    try:
        new_market, second_id = diagnose_once(bed, node, models_dir)
        assert second_id == first_id  # request ids start again: a claim keyed by id alone would skip it
        assert new_market.w3.eth.block_number < old_head  # a checkpoint shared across chains would hide it
    finally:
        for process in reversed(processes):
            process.stop()
    watcher_log = next(p for p in processes if p.name == "watcher").log_path.read_text()
    assert "this node last ran on chain 31337" in watcher_log and "scans this chain from the deployment block" in \
        watcher_log
