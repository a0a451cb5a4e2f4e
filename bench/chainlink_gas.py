"""Chainlink's request and fulfilment path, measured on the same chain as ours: LinkToken, Operator
(npm @chainlink/contracts 1.2.0, compiled with the solc 0.8.19 it pins) and a minimal consumer that
receives what a diagnosis fulfilment carries (a 32-byte commitment and a result CID)."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

from eth_abi import encode
from web3 import Web3
from web3.logs import DISCARD

from aidoc.config import project_dir
from aidoc.storage import compute_cid

COMPILER = project_dir() / "tools" / "bench" / "compile_chainlink.cjs"
LINK = 10**18
ROUNDS = 3  # the last round is steady state: no first-write storage costs


def compile_contracts() -> dict[str, dict]:
    out = subprocess.run(["node", str(COMPILER)], capture_output=True, text=True, check=True, cwd=project_dir())
    return json.loads(out.stdout)


def _deploy(w3: Web3, artifact: dict, sender: str, *args):
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = _wait(w3, contract.constructor(*args).transact({"from": sender}))
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def _wait(w3: Web3, tx_hash):
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def measure(w3: Web3, build: Path | None = None) -> dict[str, int]:
    """Gas of a consumer's request (LINK transferAndCall into the Operator) and of the node's
    fulfillOracleRequest2 (with the consumer's callback), in steady state."""
    artifacts = compile_contracts()
    owner, node = w3.eth.accounts[0], w3.eth.accounts[1]
    link = _deploy(w3, artifacts["LinkToken"], owner)
    operator = _deploy(w3, artifacts["Operator"], owner, link.address, owner)
    consumer = _deploy(w3, artifacts["AidocBenchConsumer"], owner, link.address)
    _wait(w3, operator.functions.setAuthorizedSenders([node]).transact({"from": owner}))
    _wait(w3, link.functions.grantMintRole(owner).transact({"from": owner}))
    _wait(w3, link.functions.mint(consumer.address, 100 * LINK).transact({"from": owner}))
    job_id = secrets.token_bytes(32)
    gas: dict[str, int] = {}
    for _ in range(ROUNDS):
        record_cid = compute_cid(secrets.token_bytes(64))
        receipt = _wait(w3, consumer.functions.request(operator.address, job_id, LINK // 10, record_cid).transact(
            {"from": owner}))
        gas["request"] = receipt["gasUsed"]
        (event,) = operator.events.OracleRequest().process_receipt(receipt, errors=DISCARD)
        args = event["args"]
        data = encode(["bytes32", "bytes32", "string"],
                      [args["requestId"], secrets.token_bytes(32), compute_cid(secrets.token_bytes(64))])
        fulfil = operator.functions.fulfillOracleRequest2(args["requestId"], args["payment"], args["callbackAddr"],
                                                          args["callbackFunctionId"], args["cancelExpiration"], data)
        receipt = _wait(w3, fulfil.transact({"from": node, "gas": 500_000}))
        if not consumer.events.ResultReceived().process_receipt(receipt, errors=DISCARD):
            raise RuntimeError("the Operator did not deliver the result to the consumer")
        gas["fulfil"] = receipt["gasUsed"]
    return gas


if __name__ == "__main__":
    import sys

    print(measure(Web3(Web3.HTTPProvider(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8545"))))
