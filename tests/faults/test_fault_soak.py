"""Faults injected into the real stack while a stream of requests runs through it.

The stream goes in phases. Each phase sends its share of the requests at a steady rate while one
fault happens to the node or to what it depends on:

    steady                      (none: the baseline)
    worker children SIGKILLed   three Celery pool processes killed mid-task, a second apart
    worker SIGKILLed            the whole Celery worker killed (the node's supervisor starts it again)
    RPC unreachable             the node's RPC endpoint (through a TCP proxy) down for 3 s
    IPFS stopped                the js-ipfs daemon stopped for 3 s
    watcher restarted           the watcher stopped (the supervisor starts it; it backfills)
    Redis restarted, kept       Redis shut down with a save and started again
    Redis restarted, lost       Redis shut down without saving and started empty
    reorg                       the last blocks (fewer than the node's confirmations) replaced by
                                another branch that re-includes their transactions
    events delivered twice      every request of the phase handed to the workers twice more

The client (this test, as the doctor) signs every request up front and sends them in nonce order,
each send holding `Run.sending`; the reorg holds that lock, and the heartbeat's, for as long as it
replaces blocks, so no request of the doctor's can reach the chain between the moment the reorg
reads the doomed blocks and the moment it reverts them (such a request would be dropped with the
branch, and every later nonce would wait behind the gap for ever). Every signed request is then
accounted for: mined, or re-sent with a line saying so (counted in the report as `client_resent`).

Then every request must have ended exactly once: Fulfilled (one DiagnosisFulfilled event) or
Failed/Cancelled (refunded), and the tokens must add up: what the doctor paid is exactly what the
provider, the data owners and the node were paid, and the market holds no escrow. Every fulfilled
request's result must be on IPFS and open for the doctor with the commitment on-chain.

AIDOC_FAULT_REQUESTS sets the stream's length (default 300; `make faults` runs more)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis
from eth_utils import keccak

from aidoc.chain.contracts import call_struct, open_marketplace, rpc_request
from aidoc.config import AID, ServiceSettings, project_dir
from aidoc.constants import DataType, RequestStatus
from aidoc.flow.result import fetch_result, settlement, wait_for_settlements
from aidoc.node.messages import node_queue
from aidoc.node.namespace import NodeNamespace
from aidoc.node.outbox import Outbox
from aidoc.stack.local import NodeSupervisor, start_node
from aidoc.stack.testbed import TERMS
from aidoc.workers.recovery import unacknowledged_requests
from bench.e2e import signed_requests
from conftest import CONFIRMATIONS

REQUESTS = int(os.environ.get("AIDOC_FAULT_REQUESTS", "300"))
RATE = 25.0  # requests per second during each phase
RECORDS = 12
NODE_STAKE, NODE_FEE, PRICE, ROYALTY = TERMS.stake, TERMS.node_fee, TERMS.model_price, TERMS.royalty
REPORT = project_dir() / "reports" / "faults.json"


@dataclass
class Run:
    bed: object
    doctor: object
    node: object
    processes: list
    heartbeat: object
    proxy: object
    supervisor: object = None
    sending: threading.Lock = field(default_factory=threading.Lock)  # held by the client for each send
    injected: Counter = field(default_factory=Counter)
    reorg_depths: list[int] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)

    def rpc(self, method: str, params: list):
        return rpc_request(self.doctor.marketplace.w3, method, params)

    def process(self, name: str):
        return next(p for p in self.processes if p.name == name)


# ------------------------------------------------------------------------------------------ faults


def kill_worker_children(run: Run) -> None:
    worker = run.process("worker").process.pid
    for _ in range(3):
        time.sleep(0.6)
        children = Path(f"/proc/{worker}/task/{worker}/children").read_text().split()
        if children:
            os.kill(int(children[0]), signal.SIGKILL)  # Celery starts a new pool process
            run.injected["worker child SIGKILL"] += 1


def kill_worker(run: Run) -> None:
    """SIGKILLs the whole Celery worker (main process and pool); the node's supervisor starts it
    again, and the figures say how long after that restart the requests it held were settled."""
    time.sleep(0.5)
    held, deadline = held_by_worker(run), time.monotonic() + 5
    while not held and time.monotonic() < deadline:  # kill it while it holds work, as the OOM killer would
        time.sleep(0.005)
        held = held_by_worker(run)
    run.figures["worker_sigkill_held_requests"] = len(held)
    os.killpg(run.process("worker").process.pid, signal.SIGKILL)
    run.injected["worker SIGKILL (main process and pool)"] += 1
    _wait_for_restart(run, "worker")
    restarted = time.monotonic()
    deadline = restarted + 120
    while held and time.monotonic() < deadline:
        held = [i for i in held if settlement(run.doctor, i).status == RequestStatus.PENDING]
        time.sleep(0.2)
    run.figures["worker_sigkill_settled_s_after_restart"] = None if held else round(time.monotonic() - restarted, 1)


def held_by_worker(run: Run) -> list[int]:
    """The requests in the tasks the worker has taken and not acknowledged."""
    return unacknowledged_requests(redis.Redis.from_url(run.bed.services.redis_url), node_queue(run.node.address))


def rpc_outage(run: Run) -> None:
    time.sleep(0.5)
    run.proxy.down()
    run.injected["RPC outage (3 s)"] += 1
    time.sleep(3.0)
    run.proxy.up()


def ipfs_outage(run: Run) -> None:
    time.sleep(0.5)
    ipfs = run.bed.processes["ipfs"]
    ipfs.stop()
    run.injected["IPFS daemon stopped (3 s)"] += 1
    time.sleep(3.0)
    ipfs.start()


def watcher_restart(run: Run) -> None:
    """Stops the watcher (SIGTERM); the supervisor starts it again and it backfills."""
    time.sleep(0.5)
    os.kill(run.process("watcher").process.pid, signal.SIGTERM)
    run.injected["watcher stopped and restarted"] += 1
    _wait_for_restart(run, "watcher")


def _wait_for_restart(run: Run, name: str, timeout: float = 120) -> None:
    restarts = run.supervisor.restarts.get(name, 0)
    deadline = time.monotonic() + timeout
    while run.supervisor.restarts.get(name, 0) == restarts and time.monotonic() < deadline:
        time.sleep(0.1)


def _restart_redis(run: Run, keep: bool) -> None:
    time.sleep(0.5)
    server = run.bed.processes["redis"]
    client = redis.Redis.from_url(run.bed.services.redis_url)
    try:
        client.shutdown(save=keep, nosave=not keep)
    except redis.exceptions.ConnectionError:
        pass
    server.process.wait(timeout=30)
    server.process = None
    if not keep:
        data_dir = Path(server.command[server.command.index("--dir") + 1])
        (data_dir / "dump.rdb").unlink(missing_ok=True)
    run.injected["Redis restart, state kept" if keep else "Redis restart, state lost"] += 1
    time.sleep(1.0)
    server.start()


def redis_restart_kept(run: Run) -> None:
    _restart_redis(run, keep=True)


def redis_restart_lost(run: Run) -> None:
    _restart_redis(run, keep=False)


def reorg(run: Run) -> None:
    """Replaces the newest blocks, one of them the node's own transaction where it sends one in
    time, with a new branch holding the same transactions one block later (as a real reorg
    re-includes them from the mempool)."""
    time.sleep(0.5)
    with run.sending, run.heartbeat.lock:  # no request of the doctor's, no heartbeat block meanwhile
        _replace_newest_blocks(run)


def _replace_newest_blocks(run: Run) -> None:
    head = int(run.rpc("eth_blockNumber", []), 16)
    snapshot = run.rpc("evm_snapshot", [])
    deadline = time.monotonic() + 5
    while int(run.rpc("eth_blockNumber", []), 16) == head and time.monotonic() < deadline:
        time.sleep(0.01)  # only the node mines now: its next fulfilment lands on the doomed branch
    run.proxy.down()
    run.rpc("evm_mine", [])
    tip = int(run.rpc("eth_blockNumber", []), 16)
    raws = []
    for number in range(head + 1, tip + 1):
        block = run.rpc("eth_getBlockByNumber", [hex(number), False])
        raws += [run.rpc("eth_getRawTransactionByHash", [tx]) for tx in block["transactions"]]
    run.rpc("evm_revert", [snapshot])
    run.rpc("evm_mine", [])  # the new branch starts with a block of its own
    for raw in raws:
        try:
            run.rpc("eth_sendRawTransaction", [raw])
        except Exception as error:  # noqa: BLE001 - one refused (the node replaced it meanwhile) must not stop the rest
            print(f"reorg: re-including {raw[:18]}... was refused ({error})")
    run.reorg_depths.append(tip - head)
    run.injected[f"reorg of {tip - head} block(s), {len(raws)} transaction(s) re-included"] += 1
    run.proxy.up()


def deliver_twice(run: Run, first_block: int) -> None:
    """Hands every request seen since `first_block` to the workers twice more."""
    from aidoc.node.messages import Diagnose, dispatch
    from aidoc.oracles.watcher import ChainLogSource

    time.sleep(2.0)
    source = ChainLogSource(run.doctor.marketplace, run.node.address)
    jobs = [found.job for found in source.logs(first_block, source.head())]
    for _ in range(2):
        for index in range(0, len(jobs), 8):
            dispatch(Diagnose(tuple(jobs[index:index + 8])), run.node.address, run.bed.services.redis_url)
    run.injected["request delivered twice more"] += len(jobs)


def account_for_every_request(run: Run, signed: list[bytes], timeout: float = 60) -> int:
    """Waits until every signed request is mined; one that the chain does not know (it never got
    there, or a reorg dropped it) is sent again, in nonce order, with a line saying so. Returns how
    many re-sends the chain accepted (one it refused as already known was in its pool after all)."""
    resent = 0
    deadline = time.monotonic() + timeout
    while True:
        mined = int(run.rpc("eth_getTransactionCount", [run.doctor.address, "latest"]), 16)
        unmined = [(index, raw) for index, raw in enumerate(signed) if not _receipt(run, raw)]
        if not unmined:
            return resent
        assert time.monotonic() < deadline, (f"{len(unmined)} signed request(s) not mined after {timeout:.0f} s "
                                             f"(doctor's nonce {mined}, {resent} re-sent)")
        time.sleep(1.0)
        if mined == int(run.rpc("eth_getTransactionCount", [run.doctor.address, "latest"]), 16):
            for index, raw in unmined:  # the chain made no progress on them for a second: send again
                if _receipt(run, raw):
                    continue
                tx_hash = "0x" + keccak(raw).hex()
                print(f"client: request {index} ({tx_hash}) is not on the chain; sending it again")
                try:
                    run.rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
                except Exception as error:  # noqa: BLE001 - "already known" or "nonce too low": it is in
                    print(f"client: the chain answered {error}")
                else:
                    resent += 1


def _receipt(run: Run, raw: bytes):
    return run.rpc("eth_getTransactionReceipt", ["0x" + keccak(raw).hex()])


PHASES = [("steady", None), ("worker children SIGKILLed", kill_worker_children), ("worker SIGKILLed", kill_worker),
          ("RPC unreachable", rpc_outage), ("IPFS stopped", ipfs_outage), ("watcher restarted", watcher_restart),
          ("Redis restarted, kept", redis_restart_kept), ("Redis restarted, lost", redis_restart_lost),
          ("reorg", reorg), ("events delivered twice", None)]


# ------------------------------------------------------------------------------------------- test


def test_every_request_ends_exactly_once_under_faults(bed, heartbeat, rpc_proxy, models_dir):
    from aidoc.records import load_record_file

    marketplace = open_marketplace(bed.services)
    provider, model_id = bed.provider_with_model(models_dir / "panel-mlp.safetensors", DataType.LAB_PANEL,
                                                 marketplace=marketplace)
    doctor = bed.funded(REQUESTS * TERMS.per_request + AID, marketplace)
    doctor.send(marketplace.token.functions.approve(marketplace.market.address, 2**255), "approve")
    node = bed.staked_node([DataType.LAB_PANEL], marketplace=marketplace)
    samples = [load_record_file(p) for p in sorted((models_dir / "samples").glob("panel-*.json"))]
    consented = bed.consented_records(samples, node.address, doctor.address, RECORDS, marketplace=marketplace)
    records, owners = [r for r, _ in consented], [owner.address for _, owner in consented]
    token, market = marketplace.token.functions, marketplace.market
    parties = [doctor.address, provider.address, *owners, market.address]
    before = {address: token.balanceOf(address).call() for address in parties}
    earnings_before = call_struct(market, "nodeAccount", node.address)["earnings"]
    start_block = marketplace.w3.eth.block_number + 1

    # The node reaches the chain through the proxy; the doctor and this test go straight to anvil.
    node_services = replace(ServiceSettings(), rpc_url=rpc_proxy.url)
    processes = start_node(node_services, node.identity, concurrency=2)
    supervisor = NodeSupervisor(processes, print, interval=0.5)  # what `aidoc node run` does
    supervisor.start()
    run = Run(bed, doctor, node, processes, heartbeat, rpc_proxy, supervisor)
    try:
        signed = signed_requests(doctor, model_id, node.address, records, REQUESTS)
        per_phase = -(-REQUESTS // len(PHASES))
        for index, (name, fault) in enumerate(PHASES):
            phase = signed[index * per_phase:(index + 1) * per_phase]
            first_block = int(run.rpc("eth_blockNumber", []), 16)
            injector = threading.Thread(target=fault, args=(run,), name=name) if fault else None
            if name == "events delivered twice":
                injector = threading.Thread(target=deliver_twice, args=(run, first_block), name=name)
            if injector:
                injector.start()
            started = time.monotonic()
            for position, raw in enumerate(phase):
                delay = started + position / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with run.sending:
                    run.rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
            if injector:
                injector.join(120)
                assert not injector.is_alive(), f"the fault of phase {name!r} did not finish"

        resent = account_for_every_request(run, signed)
        requested = market.events.DiagnosisRequested().get_logs(from_block=start_block)
        ids = [int(e["args"]["requestId"]) for e in requested if e["args"]["requester"] == doctor.address]
        assert len(ids) == len(set(ids)) == REQUESTS

        settled = wait_for_settlements(doctor, ids, timeout=300, poll=0.5)
        outbox = redis.Redis.from_url(bed.services.redis_url)
        publish_key = Outbox(outbox, NodeNamespace.of(marketplace, node.address)).publish_key
        deadline = time.monotonic() + 60
        while outbox.llen(publish_key) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(p.process is not None and p.process.poll() is None for p in processes), "a node process is down"
        fulfilled = [i for i in ids if settled[i].status == RequestStatus.FULFILLED]
        # Every fulfilled result is on IPFS, opens for the doctor and matches its commitment.
        # (Results whose queue entry the Redis restart without state lost come from the sender's disk
        # spool once they have waited there SPOOL_RECOVERY_AGE_S.)
        unreadable, deadline = [], time.monotonic() + 120
        for request_id in fulfilled:
            try:
                fetch_result(doctor, request_id, timeout=max(1.0, deadline - time.monotonic()))
            except Exception as error:  # noqa: BLE001 - counted and reported below
                unreadable.append((request_id, f"{type(error).__name__}: {error}"))
    finally:
        supervisor.stop()
        for process in reversed(processes):
            process.stop()

    statuses = Counter(s.status.name for s in settled.values())
    assert statuses.get("PENDING", 0) == 0, f"requests left pending: {statuses}"

    # Exactly once: one DiagnosisFulfilled per fulfilled request, none for the others; one
    # DiagnosisFailed per failed one.
    fulfilled_events = Counter(int(e["args"]["requestId"])
                               for e in market.events.DiagnosisFulfilled().get_logs(from_block=start_block))
    failed_events = Counter(int(e["args"]["requestId"])
                            for e in market.events.DiagnosisFailed().get_logs(from_block=start_block))
    failed = [i for i in ids if settled[i].status == RequestStatus.FAILED]
    assert all(fulfilled_events[i] == 1 for i in fulfilled)
    assert all(fulfilled_events[i] == 0 for i in ids if i not in fulfilled)
    assert all(failed_events[i] == 1 for i in failed)
    assert all(failed_events[i] == 0 for i in ids if i not in failed)

    # The tokens add up: the doctor paid exactly for the fulfilled requests, and that went to the
    # provider, the data owners and the node's earnings; refunds came back whole.
    after = {address: token.balanceOf(address).call() for address in parties}
    earnings = call_struct(market, "nodeAccount", node.address)["earnings"] - earnings_before
    count = len(fulfilled)
    assert before[doctor.address] - after[doctor.address] == count * (PRICE + ROYALTY + NODE_FEE)
    assert after[provider.address] - before[provider.address] == count * PRICE
    assert sum(after[o] - before[o] for o in owners) == count * ROYALTY
    assert earnings == count * NODE_FEE
    assert after[market.address] - before[market.address] == earnings  # no escrow left behind

    assert all(0 < depth < CONFIRMATIONS for depth in run.reorg_depths), run.reorg_depths
    report = {
        "requests": REQUESTS,
        "phases": [name for name, _ in PHASES],
        "faults_injected": dict(run.injected),
        "outcomes": dict(statuses),
        "failure_reasons": dict(Counter(s.failure.name for s in settled.values() if s.failure)),
        "double_fulfilled": sum(1 for n in fulfilled_events.values() if n > 1),
        "lost": statuses.get("PENDING", 0),
        "results_unreadable": len(unreadable),
        "client_resent": resent,
        "proxy_connections_refused": rpc_proxy.refused,
        "node_process_restarts": dict(supervisor.restarts),
        **run.figures,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    assert not unreadable, unreadable[:5]
