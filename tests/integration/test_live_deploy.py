"""`aidoc deploy` on a chain that behaves like a public testnet (chain id 11155111, no unlocked
accounts, a 1 gwei base fee): Brownie's live-network bugs are patched around (no traceback), gas is
estimated (not the development network's 30,000,000), fees are capped by AIDOC_MAX_FEE_GWEI, the
deployer is a keystore, and deploying again reuses what is deployed (--fresh redeploys)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from web3 import Web3

from aidoc.config import project_dir
from aidoc.identity import Identity, save_keystore
from aidoc.stack.process import free_port
from aidoc.stack.services import anvil

CHAIN_ID = 11155111
PASSWORD = "deployer password"
MAX_FEE_GWEI = 3


@pytest.fixture(scope="module")
def live_chain(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("live")
    port = free_port()
    with anvil(run_dir, port, chain_id=CHAIN_ID, accounts=0, base_fee=10**9):
        yield run_dir, f"http://127.0.0.1:{port}"


def deploy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("aidoc") or "aidoc", "deploy", *args], cwd=project_dir(), env=env,
                          capture_output=True, text=True, timeout=600)


def test_deploying_to_a_live_like_chain_estimates_gas_caps_fees_and_is_idempotent(live_chain):
    run_dir, url = live_chain
    w3 = Web3(Web3.HTTPProvider(url))
    assert w3.eth.accounts == [] and w3.eth.chain_id == CHAIN_ID
    deployer = Identity.generate()
    save_keystore(run_dir / "keystores", "deployer", deployer, PASSWORD)
    w3.provider.make_request("anvil_setBalance", [deployer.address, hex(10**19)])  # funding, as a faucet would
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIDOC_")},
           "AIDOC_RPC_URL": url, "AIDOC_KEYSTORE_DIR": str(run_dir / "keystores"), "AIDOC_DEPLOYER_KEYSTORE": "deployer",
           "AIDOC_PASSWORD": PASSWORD, "AIDOC_DEPLOYMENTS_DIR": str(run_dir / "deployments"),
           "AIDOC_MAX_FEE_GWEI": str(MAX_FEE_GWEI)}

    first = deploy(env)
    said = first.stdout + first.stderr
    assert first.returncode == 0, said
    assert "Traceback" not in said and "TypeError" not in said, said
    record = json.loads((run_dir / "deployments" / f"{CHAIN_ID}.json").read_text())
    assert record["deployer"] == deployer.address and len(record["build_hashes"]) == 7
    transactions = [tx for number in range(1, w3.eth.block_number + 1)
                    for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]]
    assert len(transactions) >= 7 and all(tx["from"] == deployer.address for tx in transactions)
    assert all(tx["gas"] < 10_000_000 for tx in transactions), sorted(tx["gas"] for tx in transactions)[-3:]
    assert all(tx["maxFeePerGas"] <= MAX_FEE_GWEI * 10**9 for tx in transactions)

    head = w3.eth.block_number
    again = deploy(env)
    assert again.returncode == 0 and "nothing to deploy" in again.stdout, again.stdout + again.stderr
    assert "Traceback" not in again.stdout + again.stderr  # Container.at() on a live network
    assert w3.eth.block_number == head
    assert json.loads((run_dir / "deployments" / f"{CHAIN_ID}.json").read_text()) == record

    fresh = deploy(env, "--fresh")
    assert fresh.returncode == 0 and "a fresh deployment was asked for" in fresh.stdout.lower(), fresh.stdout
    renewed = json.loads((run_dir / "deployments" / f"{CHAIN_ID}.json").read_text())
    assert renewed["contracts"]["DiagnosisMarket"] != record["contracts"]["DiagnosisMarket"]


def test_the_block_time_is_read_from_the_chain(live_chain):
    """What the watcher and waiting clients pace themselves by: 12 s blocks read as 12 s; blocks
    mined on demand (several in one second) as 0."""
    from aidoc.chain.contracts import block_time, rpc_request

    _, url = live_chain
    w3 = Web3(Web3.HTTPProvider(url))
    rpc_request(w3, "anvil_mine", [hex(10), hex(12)])  # ten blocks, 12 s apart
    assert block_time(w3) == 12.0
    rpc_request(w3, "anvil_mine", [hex(10), hex(0)])  # ten blocks in the same second
    assert block_time(w3) == 0.0
