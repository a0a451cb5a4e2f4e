"""The oracle end to end under load: N diagnosis requests on a local anvil, through the watcher,
Celery, the IPFS store, decryption, inference, sealing, the outbox and fulfilBatch.

Latency is what a client sees: from the moment the request's receipt (its DiagnosisRequested log)
is visible to the moment the fulfilment's is, both observed by polling the chain every 10 ms.
Throughput is N over the time from the first request's receipt to the last fulfilment's."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from aidoc.chain.contracts import event_topic, rpc_batch, rpc_request
from aidoc.config import AID, ENV_PREFIX
from aidoc.constants import DataType
from aidoc.node.namespace import NodeNamespace
from aidoc.node.outbox import Outbox
from aidoc.stack.local import start_node
from aidoc.stack.testbed import Testbed

RECORDS = 16  # requests cycle over this many consented records
# Requests sent ahead of the chain at most. anvil 1.7's automine stops mining for good when a
# client floods it with thousands of transactions at once (seen here: 1,520 left pending); a
# window keeps the load at what it mines, which is the most a client could get from it anyway.
IN_FLIGHT = 64


@dataclass
class Setup:
    doctor: object
    model_id: int


def prepare(bed: Testbed, models_dir: Path) -> Setup:
    provider, model_id = bed.provider_with_model(models_dir / "panel-mlp.safetensors", DataType.LAB_PANEL)
    doctor = bed.funded(10**9 * AID // 1000, provider.marketplace)
    contracts = doctor.marketplace
    doctor.send(contracts.token.functions.approve(contracts.market.address, 2**255), "approve")
    return Setup(doctor, model_id)


def panel_node(bed: Testbed, doctor, models_dir: Path):
    """A staked panel node and RECORDS panels consented to `doctor`: (node Session, record ids)."""
    from aidoc.records import load_record_file

    panel = load_record_file(next(iter(sorted((models_dir / "samples").glob("panel-*.json")))))
    node = bed.staked_node([DataType.LAB_PANEL], marketplace=doctor.marketplace)
    consented = bed.consented_records([panel], node.address, doctor.address, RECORDS, marketplace=doctor.marketplace)
    return node, [record_id for record_id, _ in consented]


def _peak_rss_mb(pid: int) -> float:
    """Peak resident memory of `pid` and its descendants, summed (MB)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return round(total, 1)


def run(bed: Testbed, setup: Setup, models_dir: Path, n: int, *, concurrency: int = 2, batch_size: int = 32,
        rate: float | None = None, timeout: float = 600) -> dict:
    """One measured run with a fresh node; `rate` requests per second, or as fast as they go."""
    doctor = setup.doctor
    contracts = doctor.marketplace
    w3 = contracts.w3
    node, records = panel_node(bed, doctor, models_dir)
    processes = start_node(bed.services, node.identity, concurrency,
                           settings={ENV_PREFIX + "BATCH_SIZE": str(batch_size)})
    try:
        signed = signed_requests(doctor, setup.model_id, node.address, records, n)
        observed = _Observer(contracts, n)
        observed.start()
        started = time.perf_counter()
        first_nonce = w3.eth.get_transaction_count(doctor.address, "pending")
        if rate:
            for index, raw in enumerate(signed):
                delay = started + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                rpc_request(w3, "eth_sendRawTransaction", ["0x" + raw.hex()])  # raw: the client shares the CPU
        else:  # as fast as the chain takes them: a window of IN_FLIGHT at a time, each sent as one batch
            for index in range(0, len(signed), IN_FLIGHT):
                wait_for_mined(w3, doctor.address, first_nonce + index - IN_FLIGHT)
                rpc_batch(w3, "eth_sendRawTransaction", [["0x" + raw.hex()] for raw in signed[index:index + IN_FLIGHT]])
        observed.join(timeout)
        worker_rss = _peak_rss_mb(processes[0].process.pid)
        watcher_rss = _peak_rss_mb(processes[2].process.pid)
        timings = Outbox(_redis(bed), NodeNamespace.of(doctor.marketplace, node.address)).timings()
    finally:
        for process in reversed(processes):
            process.stop()
    latencies = sorted(observed.fulfilled[i] - observed.requested[i] for i in observed.fulfilled)
    if len(latencies) < n:
        raise RuntimeError(f"only {len(latencies)} of {n} requests were fulfilled within {timeout:.0f} s")
    span = max(observed.fulfilled.values()) - min(observed.requested.values())
    stages = sorted({name for entry in timings for name in entry})
    return {
        "n": n,
        "rate_per_s": rate,
        "worker_concurrency": concurrency,
        "batch_size": batch_size,
        "throughput_per_s": round(n / span, 1),
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(_percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "stages_ms": {name: round(sum(e.get(name, 0.0) for e in timings) / max(1, len(timings)), 2)
                      for name in stages},
        "worker_peak_rss_mb": worker_rss,
        "watcher_peak_rss_mb": watcher_rss,
    }


def wait_for_mined(w3, address: str, nonce: int, timeout: float = 60) -> None:
    """Waits until `address`'s transactions up to `nonce` are mined."""
    deadline = time.monotonic() + timeout
    while int(rpc_request(w3, "eth_getTransactionCount", [address, "latest"]), 16) <= nonce:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the chain stopped mining {address}'s transactions at nonce {nonce}")
        time.sleep(0.005)


def _redis(bed: Testbed):
    import redis

    return redis.Redis.from_url(bed.services.redis_url)


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def signed_requests(doctor, model_id: int, node: str, records: list[int], n: int) -> list[bytes]:
    """Every request signed up front (so the client's signing is not in the measurement)."""
    from aidoc.flow.request import quote

    contracts = doctor.marketplace
    w3 = contracts.w3
    total = quote(doctor, records[0], model_id, node)
    nonce = w3.eth.get_transaction_count(doctor.address, "pending")
    chain_id = w3.eth.chain_id
    signed = []
    for index in range(n):
        tx = contracts.market.functions.requestDiagnosis(
            records[index % len(records)], model_id, node, doctor.identity.encryption_public_key, total
        ).build_transaction({"from": doctor.address, "nonce": nonce + index, "gas": 250_000, "chainId": chain_id,
                             "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9})
        signed.append(doctor.identity.account.sign_transaction(tx).raw_transaction)
    return signed


class _Observer(threading.Thread):
    """Polls the chain's logs and notes when each request and each fulfilment first became visible."""

    def __init__(self, contracts, n: int):
        super().__init__(daemon=True)
        self.contracts, self.n = contracts, n
        self.requested: dict[int, float] = {}
        self.fulfilled: dict[int, float] = {}
        self.failed: set[int] = set()
        self.first_block = contracts.w3.eth.block_number + 1  # fixed before any request is sent

    def run(self) -> None:
        # Raw JSON-RPC (no web3.py log formatting): the observer shares the CPU with what it measures.
        w3, market = self.contracts.w3, self.contracts.market
        topics = {name: "0x" + event_topic(market, name).hex() for name in
                  ("DiagnosisRequested", "DiagnosisFulfilled", "DiagnosisFailed")}
        next_block = self.first_block
        while len(self.fulfilled) + len(self.failed) < self.n:
            head = int(rpc_request(w3, "eth_blockNumber", []), 16)
            if head >= next_block:
                seen = time.perf_counter()
                logs = rpc_request(w3, "eth_getLogs", [{"address": market.address, "fromBlock": hex(next_block),
                                                        "toBlock": hex(head), "topics": [list(topics.values())]}])
                for log in logs:
                    request_id = int(log["topics"][1], 16)
                    kind = log["topics"][0]
                    if kind == topics["DiagnosisRequested"]:
                        self.requested.setdefault(request_id, seen)
                    elif kind == topics["DiagnosisFulfilled"]:
                        self.fulfilled.setdefault(request_id, seen)
                    else:
                        self.failed.add(request_id)
                next_block = head + 1
            time.sleep(0.01)
