"""web3.py bindings of a deployed marketplace: the ABIs Brownie builds (build/contracts/*.json) at
the addresses of deployments/<chainId>.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from eth_utils import keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from aidoc.chain.deployments import CONTRACT_NAMES, Deployment, load_deployment
from aidoc.config import ServiceSettings
from aidoc.errors import AidocError, ConfigError, DeploymentNotFound, TransientError


class TransactionReverted(AidocError):
    """A transaction, its gas estimate or a view call reverted; the message names the contract's error."""

    def __init__(self, action: str, reason: str):
        super().__init__(f"{action} was refused by the contract: {reason}")
        self.reason = reason


@lru_cache(maxsize=None)
def load_abi(build_dir: Path, name: str) -> list[dict]:
    """The ABI of contract `name` from Brownie's build folder."""
    path = Path(build_dir) / "contracts" / f"{name}.json"
    if not path.exists():
        raise ConfigError(f"no ABI for {name} at {path}; run `make compile` first")
    return json.loads(path.read_text())["abi"]


@dataclass(frozen=True)
class Marketplace:
    """The five contracts of one deployment, bound to one web3 connection."""

    w3: Web3
    deployment: Deployment
    token: Contract
    consents: Contract
    models: Contract
    nodes: Contract
    market: Contract

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    def all(self) -> tuple[Contract, ...]:
        return (self.token, self.consents, self.models, self.nodes, self.market)


def connect_web3(rpc_url: str, timeout: float = 30.0) -> Web3:
    """A web3 connection to `rpc_url`; TransientError when nothing answers there."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    if not w3.is_connected():
        raise TransientError(f"no Ethereum node answers at {rpc_url}; start one (aidoc up) or set AIDOC_RPC_URL")
    return w3


def bind_marketplace(w3: Web3, deployment: Deployment, build_dir: Path) -> Marketplace:
    contracts = {
        name: w3.eth.contract(address=Web3.to_checksum_address(deployment.address(name)), abi=load_abi(build_dir, name))
        for name in CONTRACT_NAMES
    }
    return Marketplace(
        w3=w3,
        deployment=deployment,
        token=contracts["AIDToken"],
        consents=contracts["ConsentRegistry"],
        models=contracts["ModelRegistry"],
        nodes=contracts["NodeRegistry"],
        market=contracts["DiagnosisMarket"],
    )


def open_marketplace(settings: ServiceSettings | None = None, w3: Web3 | None = None) -> Marketplace:
    """The marketplace recorded for the chain at AIDOC_RPC_URL, checked to be live."""
    settings = settings or ServiceSettings()
    w3 = w3 or connect_web3(settings.rpc_url)
    deployment = load_deployment(settings.deployments_dir, w3.eth.chain_id)
    marketplace = bind_marketplace(w3, deployment, settings.build_dir)
    if len(w3.eth.get_code(marketplace.market.address)) == 0:
        raise DeploymentNotFound(
            f"deployments/{deployment.chain_id}.json points at no contract on this chain (was it restarted?); "
            "run `aidoc deploy` again"
        )
    return marketplace


@lru_cache(maxsize=None)
def _error_selectors(build_dir: Path) -> dict[bytes, tuple[str, list[str], list[str]]]:
    selectors: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in CONTRACT_NAMES:
        for item in load_abi(build_dir, name):
            if item.get("type") != "error":
                continue
            types = [_abi_type(arg) for arg in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            selectors[keccak(text=signature)[:4]] = (item["name"], [a["name"] for a in item["inputs"]], types)
    return selectors


def _abi_type(arg: dict) -> str:
    if arg["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in arg["components"]) + ")" + arg["type"][5:]
    return arg["type"]


def revert_data(error: ContractLogicError) -> str | bytes | None:
    """The raw revert data web3 attached to a failed call, if any."""
    return error.data if isinstance(error.data, (str, bytes)) else None


def decode_revert(data: bytes | str | None, build_dir: Path) -> str:
    """A custom error's revert data as `Name(arg=value, ...)`, or a plain description."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x")) if data.startswith("0x") else data.encode()
    if not data or len(data) < 4:
        return "reverted without a reason"
    from eth_abi import decode

    if data[:4] == keccak(text="Error(string)")[:4]:
        return decode(["string"], data[4:])[0]
    known = _error_selectors(Path(build_dir)).get(data[:4])
    if known is None:
        return f"reverted with unknown error 0x{data[:4].hex()}"
    name, names, types = known
    try:
        values = decode(types, data[4:])
    except Exception:  # noqa: BLE001 - malformed revert data is reported, not raised
        return f"{name}(<undecodable arguments>)"
    shown = ", ".join(f"{n}={v.hex() if isinstance(v, bytes) else v}" for n, v in zip(names, values))
    return f"{name}({shown})"


def call_struct(contract: Contract, function: str, *args) -> dict:
    """Calls a view function and names its result's fields (web3 returns structs as tuples)."""
    try:
        value = getattr(contract.functions, function)(*args).call()
    except ContractLogicError as error:
        reason = decode_revert(revert_data(error), ServiceSettings().build_dir) if revert_data(error) else str(error)
        raise TransactionReverted(function, reason) from None
    return _named(contract, function, value)


def call_batch(w3: Web3, calls: list[tuple[Contract, str, tuple]]) -> list[dict]:
    """Several view calls in one JSON-RPC batch (one round trip), each result named as by call_struct."""
    with w3.batch_requests() as batch:
        for contract, function, args in calls:
            batch.add(getattr(contract.functions, function)(*args))
        values = batch.execute()
    return [_named(contract, function, value) for (contract, function, _), value in zip(calls, values)]


def _named(contract: Contract, function: str, value) -> dict:
    outputs = next(i for i in contract.abi if i.get("type") == "function" and i["name"] == function)["outputs"]
    if len(outputs) == 1 and outputs[0]["type"] == "tuple":
        return dict(zip([c["name"] for c in outputs[0]["components"]], value))
    if len(outputs) == 1:
        value = [value]
    return dict(zip([o["name"] or f"out{i}" for i, o in enumerate(outputs)], value))
