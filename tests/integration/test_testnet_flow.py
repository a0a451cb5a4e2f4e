"""Issue 12's "done when": the whole marketplace flow from the command line against a chain made to
behave like a public testnet: chain id 11155111, a block a second (12 s shortened for time), no
unlocked accounts, a 1 gwei base fee, every party behind a hosted-RPC-like proxy (development
methods refused, 429 above 25 calls/s per key), only keystore accounts, consent granted and revoked
gasless through the relayer, and the chain restarted in the middle under the running node and
relayer (Redis keeps its state across it, as it does across `aidoc down` and `aidoc up`).

On each chain: deploy, fund, register a node, a second node that never runs, a model and a record;
a diagnosis by the running node is fulfilled and its result opened; a diagnosis assigned to the idle
node is cancelled and refunded once the patient has revoked consent. Every request ends fulfilled
or refunded, and the doctor's AID balances to the wei."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from web3 import Web3

from aidoc.config import AID
from aidoc.constants import DataType
from aidoc.identity import Identity, save_keystore
from aidoc.stack.hosted_rpc import HostedRpc
from aidoc.stack.process import ManagedProcess, free_port
from aidoc.stack.services import anvil, redis_server
from conftest import samples_of

CHAIN_ID = 11155111
PASSWORD = "testnet password"
PARTIES = ("deployer", "provider", "node", "idle", "patient", "doctor", "relayer")
PRICE, ROYALTY, FEE = 5 * AID, 1 * AID, 2 * AID  # per diagnosis: model, record owner, node
DOCTOR_AID = 100 * AID


class LiveLikeNetwork:
    """The chain (restartable on its port), Redis, the proxy and the parties' keystores."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.port = free_port()
        self.relayer_port = free_port()
        self.chain: ManagedProcess | None = None
        self.redis = redis_server(run_dir, free_port(), persistent=True).start()
        self.proxy = HostedRpc(f"http://127.0.0.1:{self.port}", rate=25).start()
        self.identities = {name: Identity.generate() for name in PARTIES}
        for name, identity in self.identities.items():
            save_keystore(run_dir / "keystores", name, identity, PASSWORD)

    def start_chain(self) -> None:
        self.chain = anvil(self.run_dir, self.port, chain_id=CHAIN_ID, block_time=1, accounts=0,
                           base_fee=10**9).start()
        direct = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{self.port}"))
        for identity in self.identities.values():  # what a testnet faucet does
            direct.provider.make_request("anvil_setBalance", [identity.address, hex(10**19)])

    def stop_chain(self) -> None:
        self.chain.stop()

    def address(self, name: str) -> str:
        return self.identities[name].address

    def env(self, key: str, **extra: str) -> dict[str, str]:
        """The environment of a party's command: its own proxy key, no AIDOC_ setting of the test run."""
        return {**{k: v for k, v in os.environ.items() if not k.startswith("AIDOC_")},
                "AIDOC_RPC_URL": self.proxy.url(key), "AIDOC_REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/0",
                "AIDOC_KEYSTORE_DIR": str(self.run_dir / "keystores"), "AIDOC_PASSWORD": PASSWORD,
                "AIDOC_DEPLOYMENTS_DIR": str(self.run_dir / "deployments"),
                "AIDOC_STORE_DIR": str(self.run_dir / "ipfs"), "AIDOC_RUN_DIR": str(self.run_dir / key),
                "AIDOC_RELAYER_URL": self.relayer_url, "AIDOC_MAX_FEE_GWEI": "5", **extra}

    @property
    def relayer_url(self) -> str:
        return f"http://127.0.0.1:{self.relayer_port}"

    def aidoc(self, party: str, *args: str, timeout: float = 300) -> str:
        """Runs `aidoc ARGS` as `party` (its keystore); its output, or the test fails with it."""
        command = [shutil.which("aidoc") or "aidoc", *args]
        if party not in ("deployer",) or args[0] != "deploy":
            command += ["--account", party]
        done = subprocess.run(command, env=self.env(party, AIDOC_DEPLOYER_KEYSTORE="deployer"), capture_output=True,
                              text=True, timeout=timeout)
        said = done.stdout + done.stderr
        assert done.returncode == 0, f"aidoc {' '.join(args)} as {party}: {said}"
        assert "Traceback" not in said, said
        return said

    def close(self) -> None:
        self.proxy.stop()
        if self.chain is not None:
            self.chain.stop()
        self.redis.stop()


@pytest.fixture
def testnet(tmp_path):
    net = LiveLikeNetwork(tmp_path)
    try:
        yield net
    finally:
        net.close()


def long_running(net: LiveLikeNetwork, party: str, *args: str, ready: str) -> ManagedProcess:
    """`aidoc ARGS` as `party`, running until stopped; started once its output says `ready`."""
    (net.run_dir / party).mkdir(exist_ok=True)
    log = net.run_dir / f"{party}-run.log"
    process = ManagedProcess(f"{party}-run", [shutil.which("aidoc") or "aidoc", *args, "--account", party],
                             net.run_dir, env=net.env(party), ready=lambda: ready in _read(log),
                             startup_timeout=180)
    return process.start()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def marketplace_round(net: LiveLikeNetwork, models_dir: Path) -> dict:
    """Deploy, fund, register, and one fulfilled and one refunded diagnosis; what it saw."""
    deployed = net.aidoc("deployer", "deploy")
    record = json.loads((net.run_dir / "deployments" / f"{CHAIN_ID}.json").read_text())
    for party, amount in (("doctor", DOCTOR_AID), ("node", 1_000 * AID), ("idle", 1_000 * AID)):
        net.aidoc("deployer", "transfer", party, str(amount // AID))
    for party in ("node", "idle"):
        net.aidoc(party, "node", "register", "--stake", "1000", "--fee", str(FEE // AID), "--type", "panel")
    said = net.aidoc("provider", "model", "register", str(models_dir / "panel-mlp.safetensors"), "--name", "panel",
                     "--input-type", "panel", "--price", str(PRICE // AID))
    model = int(re.search(r"model (\d+)", said).group(1))
    said = net.aidoc("patient", "record", "add", str(samples_of(models_dir, DataType.LAB_PANEL)[0]),
                     "--node", net.address("node"), "--node", net.address("idle"), "--royalty", str(ROYALTY // AID))
    record_id = int(re.search(r"record (\d+) registered", said).group(1))
    patient_eth = _eth(net, "patient")
    said = net.aidoc("patient", "consent", "grant", str(record_id), "doctor", "--days", "7", "--gasless")
    assert "sent by the relayer" in said and _eth(net, "patient") == patient_eth, said  # the relayer paid

    said = net.aidoc("doctor", "diagnose", str(record_id), str(model), "node", "--timeout", "180")
    fulfilled = int(re.search(r"request (\d+): .* escrowed", said).group(1))
    assert f"request {fulfilled}: fulfilled" in said, said
    opened = net.aidoc("doctor", "result", str(fulfilled))
    assert re.search(r"(benign|malignant)", opened) and "decision support" in opened, opened

    said = net.aidoc("doctor", "diagnose", str(record_id), str(model), "idle", "--no-wait")
    refunded = int(re.search(r"request (\d+): .* escrowed", said).group(1))
    net.aidoc("patient", "consent", "revoke", str(record_id), "doctor", "--gasless")
    net.aidoc("doctor", "cancel", str(refunded))
    requests = json.loads(net.aidoc("doctor", "requests", "--json"))
    return {"deployed": deployed, "addresses": record["contracts"], "requests": requests,
            "fulfilled": fulfilled, "refunded": refunded}


def _eth(net: LiveLikeNetwork, party: str) -> int:
    return Web3(Web3.HTTPProvider(f"http://127.0.0.1:{net.port}")).eth.get_balance(net.address(party))


def _aid(net: LiveLikeNetwork, party: str) -> int:
    return int(json.loads(net.aidoc(party, "balance", "--json"))["aid"])


def test_the_whole_flow_on_a_testnet_like_chain_restarted_in_the_middle(testnet, models_dir):
    net = testnet
    net.start_chain()
    node = relayer = None
    try:
        net.aidoc("deployer", "deploy")  # the node and the relayer need a deployment to start on
        relayer = long_running(net, "relayer", "relayer", "run", "--port", str(net.relayer_port),
                               ready="relaying consent signatures")
        node = long_running(net, "node", "node", "run", "--concurrency", "1", ready="Ctrl-C stops")
        first = marketplace_round(net, models_dir)
        assert _aid(net, "doctor") == DOCTOR_AID - (PRICE + ROYALTY + FEE)

        net.stop_chain()  # the chain restarts under the running node and relayer; Redis keeps its state
        net.start_chain()
        second = marketplace_round(net, models_dir)
        assert second["addresses"] == first["addresses"]  # the same deployer nonces: the node's binding holds
        assert (second["fulfilled"], second["refunded"]) == (first["fulfilled"], first["refunded"])  # ids anew
        assert _aid(net, "doctor") == DOCTOR_AID - (PRICE + ROYALTY + FEE)  # to the wei, on the new chain

        statuses = {entry["request_id"]: entry["status"] for entry in second["requests"]}
        assert statuses == {second["fulfilled"]: "fulfilled", second["refunded"]: "cancelled"}, second["requests"]
        watcher_log = _read(net.run_dir / "node" / "watcher.log")
        assert "rescan" in watcher_log.lower(), watcher_log[-3000:]
        assert net.proxy.refused["node"] == 0, dict(net.proxy.refused)
        sender_log = _read(net.run_dir / "node" / "sender.log")
        assert "a restarted or rolled-back chain): sending it again" in sender_log, sender_log[-3000:]
        assert not any(method.startswith(("evm_", "anvil_")) for method in net.proxy.by_method("node"))
    finally:
        for process in (node, relayer):
            if process is not None:
                process.stop()
