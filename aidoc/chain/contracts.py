"""web3.py bindings of a deployed marketplace: the ABIs Brownie builds (build/contracts/*.json) at
the addresses of deployments/<chainId>.json."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import requests
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
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
    """The seven contracts of one deployment, bound to one web3 connection."""

    w3: Web3
    deployment: Deployment
    token: Contract
    consents: Contract
    models: Contract
    nodes: Contract
    market: Contract
    training: Contract
    rounds: Contract

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    def all(self) -> tuple[Contract, ...]:
        return (self.token, self.consents, self.models, self.nodes, self.market, self.training, self.rounds)


def connect_web3(rpc_url: str, timeout: float = 30.0) -> Web3:
    """A web3 connection to `rpc_url`; TransientError when nothing answers there."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        w3.provider._aidoc_chain_id = int(rpc_request(w3, "eth_chainId", []), 16)  # the probe, kept (chain_id)
    except (TransientError, ValueError, TypeError):
        raise TransientError(f"no Ethereum node answers at {rpc_url}; start one (aidoc up) or set AIDOC_RPC_URL") from None
    return w3


def chain_id(w3: Web3) -> int:
    """The chain id of `w3`'s endpoint, read once per connection (a chain keeps its id)."""
    known = getattr(w3.provider, "_aidoc_chain_id", None)
    if known is None:
        known = w3.provider._aidoc_chain_id = int(w3.eth.chain_id)
    return known


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
        training=contracts["TrainingMarket"],
        rounds=contracts["FederatedRounds"],
    )


def open_marketplace(settings: ServiceSettings | None = None, w3: Web3 | None = None) -> Marketplace:
    """The marketplace recorded for the chain at AIDOC_RPC_URL, checked to be live."""
    settings = settings or ServiceSettings()
    w3 = w3 or connect_web3(settings.rpc_url)
    deployment = load_deployment(settings.deployments_dir, chain_id(w3))
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


DAY = 86_400


def utc_time(timestamp: int) -> str:
    """A chain timestamp as the user reads it: '2026-12-03 18:00:00 UTC'."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def chain_now(w3: Web3) -> int:
    """The chain's latest block time (expiries and deadlines count in chain time, which a dev chain
    may have moved ahead of the wall clock)."""
    return int(w3.eth.get_block("latest")["timestamp"])


def chain_time_in(w3: Web3, days: float) -> int:
    """The chain's latest block time plus `days`."""
    return chain_now(w3) + int(days * DAY)


BLOCK_TIME_SAMPLE = 4  # gaps between the newest blocks whose median is the block time (one batch of 5 calls)


def block_time(w3: Web3, max_age: float = 0.0) -> float:
    """The chain's block time (s): the median gap between the timestamps of its newest blocks, in
    one JSON-RPC batch; 0.0 for a chain that mines on demand (a development chain with automine,
    whose blocks come with transactions, often within one second) or is too young to tell.
    `max_age` > 0 reuses this connection's last estimate when it is at most that old (s)."""
    cached = getattr(w3.provider, "_aidoc_block_time", None)
    if max_age > 0 and cached is not None and time.monotonic() - cached[1] <= max_age:
        return cached[0]
    head = int(rpc_request(w3, "eth_blockNumber", []), 16)
    if head < BLOCK_TIME_SAMPLE:
        return 0.0
    blocks = rpc_batch(w3, "eth_getBlockByNumber", [[hex(n), False] for n in range(head - BLOCK_TIME_SAMPLE, head + 1)])
    stamps = [int(block["timestamp"], 16) for block in blocks]
    gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
    estimate = 0.0 if gaps[0] <= 0 else float(gaps[len(gaps) // 2])  # gap 0: mined on demand
    w3.provider._aidoc_block_time = (estimate, time.monotonic())
    return estimate


def call_struct(contract: Contract, function: str, *args) -> dict:
    """Calls a view function and names its result's fields; a revert raises TransactionReverted
    with the contract's custom error."""
    return call_batch(contract.w3, [(contract, function, args)])[0]


def call_batch(w3: Web3, calls: list[tuple[Contract, str, tuple]]) -> list[dict]:
    """Several view calls in one JSON-RPC batch (one round trip), each result named as by
    call_struct. The calls are encoded and decoded with eth_abi directly: web3.py's per-call
    validation and middleware were most of a worker's time under load (BENCHMARKS.md)."""
    encoded = [_function_codec(contract, function) for contract, function, _ in calls]
    payload = [
        {"jsonrpc": "2.0", "id": index, "method": "eth_call",
         "params": [{"to": contract.address, "data": "0x" + encode_call(contract, function, args).hex()}, "latest"]}
        for index, (contract, function, args) in enumerate(calls)
    ]
    responses = {response.get("id"): response for response in _post_batch(w3, payload)}
    results = []
    for index, ((contract, function, _), codec) in enumerate(zip(calls, encoded)):
        response = responses.get(index, {})
        if "error" in response or "result" not in response:
            error = response.get("error", {"message": "no answer"})
            data = error.get("data") if isinstance(error, dict) else None
            if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
                raise TransactionReverted(function, decode_revert(data, ServiceSettings().build_dir))
            raise TransientError(f"the RPC endpoint failed {function}: {error}")
        value = _checksummed(codec.output_abi, abi_decode(codec.outputs, bytes.fromhex(response["result"][2:])))
        results.append(_named(contract, function, value[0] if len(codec.outputs) == 1 else value))
    return results


def encode_call(contract: Contract, function: str, args: tuple) -> bytes:
    """The calldata of `function(*args)`, encoded with eth_abi (web3.py's per-call ABI matching and
    validation cost the sender a fifth of its time under load)."""
    codec = _function_codec(contract, function)
    return codec.selector + abi_encode(codec.inputs, args)


def decode_event(contract: Contract, event: str, log: Mapping[str, Any]) -> dict | None:
    """The named arguments of `log` (from eth_getLogs or a receipt) if it is `event` emitted by
    `contract`, else None. Decoded with eth_abi, without web3.py's per-log processing."""
    codec = _event_codec(contract, event)
    if not log["topics"] or _as_bytes(log["topics"][0]) != codec.topic:
        return None
    if str(log["address"]).lower() != contract.address.lower():
        return None
    topics = [_as_bytes(topic) for topic in log["topics"]]
    args = {}
    for (name, kind), topic in zip(codec.indexed, topics[1:]):
        value = abi_decode([kind], topic)[0]
        args[name] = Web3.to_checksum_address(value) if kind == "address" else value
    values = _checksummed(codec.data_abi, abi_decode(codec.data_types, _as_bytes(log["data"])))
    args.update(zip(codec.data_names, values))
    return args


def event_topic(contract: Contract, event: str) -> bytes:
    """topic0 of `event`: the keccak of its signature."""
    return _event_codec(contract, event).topic


def _as_bytes(value: bytes | str) -> bytes:
    return bytes(value) if isinstance(value, (bytes, bytearray)) else bytes.fromhex(value.removeprefix("0x"))


@dataclass(frozen=True)
class _EventCodec:
    topic: bytes
    indexed: list[tuple[str, str]]  # (name, ABI type) of each indexed argument, in topic order
    data_names: list[str]
    data_types: list[str]
    data_abi: list[dict]


_EVENT_CODECS: dict[tuple[str, str], _EventCodec] = {}


def _event_codec(contract: Contract, event: str) -> _EventCodec:
    key = (contract.address, event)
    if key not in _EVENT_CODECS:
        item = next(i for i in contract.abi if i.get("type") == "event" and i["name"] == event)
        types = [_abi_type(arg) for arg in item["inputs"]]
        data = [arg for arg in item["inputs"] if not arg["indexed"]]
        _EVENT_CODECS[key] = _EventCodec(
            keccak(text=f"{event}({','.join(types)})"),
            [(arg["name"], _abi_type(arg)) for arg in item["inputs"] if arg["indexed"]],
            [arg["name"] for arg in data], [_abi_type(arg) for arg in data], data,
        )
    return _EVENT_CODECS[key]


@dataclass(frozen=True)
class _Codec:
    selector: bytes
    inputs: list[str]
    outputs: list[str]
    output_abi: list[dict]


def _checksummed(abi: list[dict], values) -> tuple:
    """Addresses as web3.py returns them (EIP-55 checksummed; eth_abi gives lowercase)."""
    fixed = []
    for item, value in zip(abi, values):
        if item["type"] == "address":
            value = Web3.to_checksum_address(value)
        elif item["type"] == "tuple":
            value = _checksummed(item["components"], value)
        fixed.append(value)
    return tuple(fixed)


_CODECS: dict[tuple[str, str], _Codec] = {}


def _function_codec(contract: Contract, function: str) -> _Codec:
    key = (contract.address, function)
    if key not in _CODECS:
        item = next(i for i in contract.abi if i.get("type") == "function" and i["name"] == function)
        inputs = [_abi_type(arg) for arg in item["inputs"]]
        _CODECS[key] = _Codec(keccak(text=f"{function}({','.join(inputs)})")[:4], inputs,
                              [_abi_type(arg) for arg in item["outputs"]], item["outputs"])
    return _CODECS[key]


def rpc_request(w3: Web3, method: str, params: list) -> Any:
    """One JSON-RPC call's raw result (hex strings, no web3.py formatting: eth_getLogs results
    formatted by web3.py were most of the watcher's time under load). An error answer raises
    TransientError with the endpoint's message."""
    answer = _post(w3, {"jsonrpc": "2.0", "id": 0, "method": method, "params": params}, method)
    if not isinstance(answer, dict) or "result" not in answer:
        error = answer.get("error", answer) if isinstance(answer, dict) else answer
        message = error.get("message", error) if isinstance(error, dict) else error
        raise TransientError(f"the RPC endpoint failed {method}: {str(message)[:300]}")
    return answer["result"]


def rpc_batch(w3: Web3, method: str, params: list[list]) -> list[Any]:
    """The same JSON-RPC method with each of `params`, in one HTTP batch; each call's raw result.
    An error answer raises TransientError with the endpoint's message."""
    answers = {a.get("id"): a for a in _post_batch(w3, [{"jsonrpc": "2.0", "id": i, "method": method, "params": p}
                                                        for i, p in enumerate(params)])}
    results = []
    for index in range(len(params)):
        answer = answers.get(index, {})
        if "result" not in answer:
            raise TransientError(f"the RPC endpoint failed {method}: {str(answer.get('error', 'no answer'))[:300]}")
        results.append(answer["result"])
    return results


def _post_batch(w3: Web3, payload: list[dict]) -> list[dict]:
    """One HTTP POST of a JSON-RPC batch to the web3 connection's endpoint."""
    answer = _post(w3, payload, "a batch of calls")
    if not isinstance(answer, list):
        raise TransientError(f"the RPC endpoint answered a batch with {str(answer)[:200]}")
    return answer


def _post(w3: Web3, payload: list[dict] | dict, what: str) -> Any:
    """POSTs a JSON-RPC payload to the web3 connection's endpoint; its decoded JSON answer."""
    provider = w3.provider
    session = getattr(provider, "_aidoc_session", None)
    if session is None:
        session = requests.Session()
        provider._aidoc_session = session  # one keep-alive connection per provider and process
    try:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = session.post(provider.endpoint_uri, json=payload, timeout=30)
            if response.status_code != 429 or attempt == RATE_LIMIT_RETRIES:
                break
            time.sleep(_retry_after(response.headers.get("Retry-After"), attempt))
        if response.status_code == 429:
            raise TransientError(f"the RPC endpoint rate-limited {what} {RATE_LIMIT_RETRIES + 1} times in a row: "
                                 "use an endpoint with a higher limit, or raise AIDOC_POLL_INTERVAL")
        response.raise_for_status()
        answer = response.json()
    except (requests.exceptions.RequestException, ValueError) as error:
        raise TransientError(f"the RPC endpoint failed {what}: {error}") from None
    return answer


RATE_LIMIT_RETRIES = 4  # HTTP 429 answers waited out (Retry-After, else 0.5 s doubling) before giving up


def _retry_after(header: str | None, attempt: int) -> float:
    """Seconds to wait after a 429: the endpoint's Retry-After in seconds (at most 10), else backoff."""
    try:
        return min(10.0, max(0.0, float(header))) if header else 0.5 * 2**attempt
    except ValueError:  # an HTTP date: rare from RPC providers, and a fixed pause serves as well
        return 0.5 * 2**attempt


def _named(contract: Contract, function: str, value) -> dict:
    outputs = next(i for i in contract.abi if i.get("type") == "function" and i["name"] == function)["outputs"]
    if len(outputs) == 1 and outputs[0]["type"] == "tuple":
        return dict(zip([c["name"] for c in outputs[0]["components"]], value))
    if len(outputs) == 1:
        value = [value]
    return dict(zip([o["name"] or f"out{i}" for i, o in enumerate(outputs)], value))
