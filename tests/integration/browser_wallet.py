"""A test wallet for the browser tests: an EIP-1193 provider injected into the page, announced by
EIP-6963 like MetaMask, Rabby or Frame announce theirs, so the app runs its one and only wallet
code path. Its key stays in the test process: the page's provider calls an exposed binding, which
signs with eth-account (accounts, eth_signTypedData_v4, eth_sendTransaction) and forwards every
other call to the chain's RPC endpoint."""

from __future__ import annotations

import json
from typing import Any

import requests
from eth_account import Account
from eth_account.messages import encode_typed_data

PROVIDER_SCRIPT = """
(() => {
  const listeners = {};
  const provider = {
    isAidocTestWallet: true,
    async request({ method, params }) {
      const answer = JSON.parse(await window.aidocTestWallet(method, JSON.stringify(params ?? [])));
      if (answer.error) { const e = new Error(answer.error.message); e.code = answer.error.code; throw e; }
      return answer.result;
    },
    on(name, fn) { (listeners[name] ||= []).push(fn); },
    removeListener(name, fn) { listeners[name] = (listeners[name] || []).filter((f) => f !== fn); },
  };
  const info = Object.freeze({ uuid: "6f9a3c1e-1d2b-4c3d-9e8f-aidoc0test01", name: "AIDoc test wallet",
    icon: "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>", rdns: "chain.aidoc.testwallet" });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider",
    { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();
"""


class TestWallet:
    """The wallet's back end: one account, one chain; `chain_id` may lie to test the wrong-network
    path, and `refuse_signatures` makes it reject like a user pressing Reject (EIP-1193 code 4001)."""

    def __init__(self, private_key: bytes, rpc_url: str, chain_id: int | None = None):
        self.account = Account.from_key(private_key)
        self.rpc_url = rpc_url
        self.chain_id = chain_id
        self.refuse_signatures = False
        self.sent: list[str] = []

    def install(self, context) -> None:
        context.expose_binding("aidocTestWallet", lambda _source, method, params: self.handle(method, params))
        context.add_init_script(PROVIDER_SCRIPT)

    def handle(self, method: str, params_json: str) -> str:
        try:
            return json.dumps({"result": self.answer(method, json.loads(params_json))})
        except WalletError as error:
            return json.dumps({"error": {"code": error.code, "message": str(error)}})

    def rpc(self, method: str, params: list) -> Any:
        answer = requests.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                               timeout=30).json()
        if "error" in answer:
            raise WalletError(-32603, answer["error"].get("message", "the chain refused"))
        return answer["result"]

    def answer(self, method: str, params: list) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.account.address]
        if method == "eth_chainId" and self.chain_id is not None:
            return hex(self.chain_id)
        if method == "wallet_switchEthereumChain":
            raise WalletError(4902, "this wallet does not know that chain")
        if method == "eth_signTypedData_v4":
            if self.refuse_signatures:
                raise WalletError(4001, "User rejected the request.")
            typed = json.loads(params[1])
            return "0x" + self.account.sign_message(encode_typed_data(full_message=typed)).signature.hex()
        if method == "eth_sendTransaction":
            if self.refuse_signatures:
                raise WalletError(4001, "User rejected the request.")
            call = params[0]
            transaction = {"from": self.account.address, "to": call["to"], "data": call.get("data", "0x"),
                           "value": int(call.get("value", "0x0"), 16),
                           "nonce": int(self.rpc("eth_getTransactionCount", [self.account.address, "pending"]), 16),
                           "chainId": int(self.rpc("eth_chainId", []), 16), "type": 2}
            transaction["gas"] = int(self.rpc("eth_estimateGas", [{**call, "from": self.account.address}]), 16) * 2
            base = int(self.rpc("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
            transaction.update(maxFeePerGas=2 * base + 10**9, maxPriorityFeePerGas=10**9)
            signed = self.account.sign_transaction(transaction)
            tx_hash = self.rpc("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
            self.sent.append(tx_hash)
            return tx_hash
        return self.rpc(method, params)


class WalletError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
