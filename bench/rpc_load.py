"""What the node and a waiting client cost a hosted RPC endpoint: a chain that mines a block every
`block_s` seconds, the node's three processes and the client each behind their own key of a
rate-limited proxy (aidoc.stack.hosted_rpc: 25 calls/s, 429 above), and then

- idle: the node's calls per second while nothing is requested, polling for heads, and told of them
  over eth_subscribe (AIDOC_WS_URL);
- per diagnosis: the node's calls from a request to its fulfilment, less its idle rate over that
  time, averaged over `diagnoses` requests sent one after another;
- the waiting client: its polling calls per block while it waits for a request to settle
  (wait_for_settlements), the one read of the settlement (its log) once it has, and the one-off cost
  of its block-time estimate (once per connection);
- refusals: how many times the proxy answered 429, for each key.

The scene (deployment, provider, node, records) is built on the automining chain directly; the
chain then switches to interval mining, with `BLOCK_SAMPLE` blocks mined `block_s` apart first so
that the node measures the block time it will see."""

from __future__ import annotations

import time
from pathlib import Path

from aidoc.chain.contracts import bind_marketplace, block_time, connect_web3, rpc_request
from aidoc.config import ENV_PREFIX
from aidoc.constants import DataType
from aidoc.flow.request import request_diagnosis
from aidoc.flow.result import BLOCK_TIME_MAX_AGE_S, settlement, wait_for_settlements
from aidoc.stack.hosted_rpc import HostedRpc
from aidoc.stack.local import start_node
from aidoc.stack.testbed import Testbed, consent_record

BLOCK_SAMPLE = 9  # > aidoc.chain.contracts.BLOCK_TIME_SAMPLE
RATE_LIMIT = 25


def measure(bed: Testbed, models_dir: Path, *, block_s: int, idle_s: float, diagnoses: int) -> dict:
    from aidoc.records import load_record_file

    provider, model_id = bed.provider_with_model(models_dir / "panel-mlp.safetensors", DataType.LAB_PANEL)
    doctor = bed.funded(1_000 * 10**18, provider.marketplace)
    node = bed.staked_node([DataType.LAB_PANEL], marketplace=doctor.marketplace)
    panel = load_record_file(next(iter(sorted((models_dir / "samples").glob("panel-*.json")))))
    records = [consent_record(bed.funded(0, doctor.marketplace), panel, [node.address], doctor.address)
               for _ in range(diagnoses)]
    w3 = doctor.marketplace.w3
    rpc_request(w3, "anvil_mine", [hex(BLOCK_SAMPLE), hex(block_s)])
    rpc_request(w3, "evm_setIntervalMining", [block_s])
    with HostedRpc(bed.services.rpc_url, rate=RATE_LIMIT) as proxy:
        client = bed.session(doctor.identity, bind_marketplace(connect_web3(proxy.url("client")),
                                                               doctor.marketplace.deployment,
                                                               bed.services.build_dir))
        processes = start_node(bed.services, node.identity, 1, settings={
            ENV_PREFIX + "RPC_URL": proxy.url("node"), ENV_PREFIX + "POLL_INTERVAL": "0.5"})
        try:
            _wait_until_polling(proxy, block_s)
            idle_from, idle_calls = time.monotonic(), proxy.total("node")
            time.sleep(idle_s)
            idle_rate = (proxy.total("node") - idle_calls) / (time.monotonic() - idle_from)
            before = proxy.total("client")
            block_time(client.marketplace.w3, max_age=BLOCK_TIME_MAX_AGE_S)  # once per connection, as the CLI does
            estimate_calls = proxy.total("client") - before
            per_diagnosis, client_per_block = [], []
            for record_id in records:
                request_id, _ = request_diagnosis(doctor, record_id, model_id, node.address)
                started, node_before = time.monotonic(), proxy.total("node")
                client_before, block_before = proxy.total("client"), w3.eth.block_number
                settled = wait_for_settlements(client, [request_id], timeout=30 * block_s + 60)
                if settled[request_id].status.name != "FULFILLED":
                    raise RuntimeError(f"request {request_id} ended {settled[request_id].status.name}")
                elapsed = time.monotonic() - started
                per_diagnosis.append(proxy.total("node") - node_before - idle_rate * elapsed)
                waited_calls, blocks = proxy.total("client") - client_before, w3.eth.block_number - block_before
                before = proxy.total("client")
                settlement(client, request_id, settled[request_id].status)  # what the wait read once at the end
                read_calls = proxy.total("client") - before
                client_per_block.append((waited_calls - read_calls) / (blocks + 1))  # heads seen, both ends in
        finally:
            for process in reversed(processes):
                process.stop()
        # The same node told of each block over eth_subscribe (AIDOC_WS_URL; anvil serves WebSocket on
        # its HTTP port, and the pushed heads are not calls the proxy sees).
        processes = start_node(bed.services, node.identity, 1, settings={
            ENV_PREFIX + "RPC_URL": proxy.url("subscribed"), ENV_PREFIX + "POLL_INTERVAL": "0.5",
            ENV_PREFIX + "WS_URL": bed.services.rpc_url.replace("http://", "ws://")})
        try:
            _wait_until_polling(proxy, block_s, key="subscribed")
            idle_from, idle_calls = time.monotonic(), proxy.total("subscribed")
            time.sleep(idle_s)
            subscribed_rate = (proxy.total("subscribed") - idle_calls) / (time.monotonic() - idle_from)
        finally:
            for process in reversed(processes):
                process.stop()
            rpc_request(w3, "evm_setAutomine", [True])
        return {
            "block_s": block_s,
            "rate_limit_per_s": RATE_LIMIT,
            "node_idle_calls_per_s": round(idle_rate, 3),
            "node_idle_calls_per_day": round(idle_rate * 86_400),
            "node_idle_calls_per_s_subscribed": round(subscribed_rate, 3),
            "node_calls_per_diagnosis": round(sum(per_diagnosis) / len(per_diagnosis), 1),
            "client_poll_calls_per_block_waiting": round(max(client_per_block), 2),
            "client_settlement_read_calls": read_calls,
            "client_block_time_estimate_calls": estimate_calls,
            "refused_429": dict(proxy.refused),
            "node_calls_by_method": proxy.by_method("node"),
            "diagnoses": diagnoses,
            "idle_s": idle_s,
        }


def _wait_until_polling(proxy: HostedRpc, block_s: int, timeout: float = 120, key: str = "node") -> None:
    """Until the node's start-up calls are behind it: two blocks without a burst of calls."""
    deadline = time.monotonic() + timeout
    last = proxy.total(key)
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(block_s)
        now = proxy.total(key)
        quiet = quiet + 1 if now - last <= 3 else 0
        last = now


def main(argv: list[str] | None = None) -> dict:
    """`python -m bench.rpc_load [--block-s 12] [--idle-s 120] [--diagnoses 3]`: these figures
    alone, on a fresh testbed (make bench measures them too, into reports/bench.json)."""
    import argparse
    import json
    import tempfile

    from aidoc.config import models_dir
    from aidoc.stack.testbed import testbed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-s", type=int, default=12)
    parser.add_argument("--idle-s", type=float, default=120)
    parser.add_argument("--diagnoses", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aidoc-bench-rpc-") as run_dir:
        with testbed(Path(run_dir), ipfs_daemon=False) as bed:
            figures = measure(bed, models_dir(), block_s=args.block_s, idle_s=args.idle_s, diagnoses=args.diagnoses)
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
