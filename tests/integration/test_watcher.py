"""The watcher's block-range logic against a scripted chain (a fake log source) and a real Redis:
confirmations, backfill after downtime, reorg rescans, deduplication, bounded eth_getLogs ranges."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import redis as redis_lib

from aidoc.chain.request import DiagnosisRequest
from aidoc.config import OracleSettings
from aidoc.node.messages import DiagnosisJob
from aidoc.node.namespace import NodeNamespace
from aidoc.oracles.watcher import RequestLog, Watcher, WatcherState, block_ranges
from aidoc.stack.process import free_port
from aidoc.stack.services import redis_server

NODE = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    port = free_port()
    with redis_server(tmp_path_factory.mktemp("redis"), port):
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def state(redis_url, request):
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    return WatcherState(client, NodeNamespace(NODE, request.node.name.__hash__() % 10_000, "0x" + "01" * 32,
                                             "0x" + "02" * 20))


def request_log(request_id: int, block: int, fork: str = "a") -> RequestLog:
    terms = DiagnosisRequest(NODE, NODE, NODE, NODE, 1, 1, 1, 1, 1, 10**9)
    block_hash = f"0x{fork}{block:063x}"
    job = DiagnosisJob(request_id, terms, b"\1" * 32, block_hash, f"0x{request_id:064x}", 0)
    return RequestLog(block, block_hash, job.tx_hash, 0, job)


@dataclass
class ScriptedChain:
    """A chain whose head and logs the test sets; it records every eth_getLogs range asked for."""

    head_block: int = 0
    mined: list[RequestLog] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)
    seconds_per_block: float = 0.0

    def head(self) -> int:
        return self.head_block

    def block_time(self) -> float:
        return self.seconds_per_block

    def logs(self, from_block: int, to_block: int) -> list[RequestLog]:
        self.ranges.append((from_block, to_block))
        return [log for log in self.mined if from_block <= log.block_number <= to_block]


def watcher(chain: ScriptedChain, state: WatcherState, dispatched: list, **settings) -> Watcher:
    defaults = {"confirmations": 0, "reorg_depth": 3, "log_range": 100}
    return Watcher(chain, state, dispatched.extend, OracleSettings(**{**defaults, **settings}), start_block=1)


def test_block_ranges_cover_the_span_in_bounded_steps():
    assert list(block_ranges(1, 10, 4)) == [(1, 4), (5, 8), (9, 10)]
    assert list(block_ranges(5, 4, 4)) == []


def test_logs_wait_for_their_confirmations(state):
    chain, dispatched = ScriptedChain(head_block=10, mined=[request_log(1, 8), request_log(2, 10)]), []
    w = watcher(chain, state, dispatched, confirmations=2)
    assert w.poll_once() == 1 and [j.request_id for j in dispatched] == [1]
    chain.head_block = 12
    assert w.poll_once() == 1 and [j.request_id for j in dispatched] == [1, 2]


def test_a_restarted_watcher_backfills_from_its_checkpoint(state):
    chain, dispatched = ScriptedChain(head_block=5, mined=[request_log(1, 3)]), []
    watcher(chain, state, dispatched).poll_once()
    chain.mined += [request_log(n, 5 + n * 40) for n in range(2, 7)]  # mined while the watcher was down
    chain.head_block = 300
    restarted, after_restart = watcher(chain, state, []), []
    restarted.dispatch = after_restart.extend
    restarted.poll_once()
    assert sorted(j.request_id for j in after_restart) == [2, 3, 4, 5, 6]
    assert state.checkpoint() == 300
    assert all(high - low < 100 for low, high in chain.ranges)  # never one huge eth_getLogs


def test_a_log_seen_twice_is_dispatched_once(state):
    chain, dispatched = ScriptedChain(head_block=10, mined=[request_log(1, 9)]), []
    w = watcher(chain, state, dispatched)
    w.poll_once()
    chain.head_block = 11  # the next pass rescans block 9 (reorg depth 3)
    w.poll_once()
    assert [j.request_id for j in dispatched] == [1]


def test_a_reorg_within_the_rescan_depth_redelivers_the_moved_log(state):
    chain, dispatched = ScriptedChain(head_block=10, mined=[request_log(1, 9, fork="a")]), []
    w = watcher(chain, state, dispatched)
    w.poll_once()
    chain.mined = [request_log(1, 10, fork="b")]  # the same request re-mined in another block
    chain.head_block = 11
    w.poll_once()
    assert [(j.request_id, j.block_hash[2]) for j in dispatched] == [(1, "a"), (1, "b")]


def test_a_reorg_deeper_than_the_confirmations_never_reaches_the_workers(state):
    chain, dispatched = ScriptedChain(head_block=10, mined=[request_log(1, 10, fork="a")]), []
    w = watcher(chain, state, dispatched, confirmations=2)
    w.poll_once()
    chain.mined = []  # the block holding the request was dropped before it was buried
    chain.head_block = 12
    w.poll_once()
    assert dispatched == []


def test_the_first_pass_starts_at_the_deployment_block(state):
    chain, dispatched = ScriptedChain(head_block=50, mined=[request_log(1, 2)]), []
    w = watcher(chain, state, dispatched)
    w.start_block = 20
    w.poll_once()
    assert dispatched == [] and chain.ranges[0][0] == 20


def test_a_failed_dispatch_is_retried_on_the_next_pass(state):
    chain, dispatched = ScriptedChain(head_block=10, mined=[request_log(1, 9)]), []
    w = watcher(chain, state, dispatched)

    def broker_down(job):
        raise ConnectionError("broker unreachable")

    w.dispatch = broker_down
    with pytest.raises(ConnectionError):
        w.poll_once()
    w.dispatch = dispatched.extend
    assert w.poll_once() == 1 and [j.request_id for j in dispatched] == [1]


def test_a_provider_refusing_a_large_range_gets_smaller_ranges(state):
    class PickyChain(ScriptedChain):
        def logs(self, from_block, to_block):
            if to_block - from_block + 1 > 25:
                raise ValueError("query returned more than 10000 results")
            return super().logs(from_block, to_block)

    chain, dispatched = PickyChain(head_block=100, mined=[request_log(1, 70)]), []
    w = watcher(chain, state, dispatched)
    w.settings = OracleSettings(confirmations=0, reorg_depth=3, log_range=100, poll_interval=0)
    w.running = True
    passes = iter(range(4))
    original = w.poll_once

    def poll_a_few_times(head=None):
        if next(passes, None) is None:
            w.running = False
            return 0
        return original(head)

    w.poll_once = poll_a_few_times
    w.run()
    assert w.log_range <= 25 and [j.request_id for j in dispatched] == [1]


def test_new_logs_go_to_the_workers_in_batches_of_task_batch(state):
    chain = ScriptedChain(head_block=10, mined=[request_log(i, 5 + i % 3) for i in range(1, 6)])
    batches: list[list] = []
    w = Watcher(chain, state, batches.append, OracleSettings(confirmations=0, reorg_depth=3, log_range=100,
                                                             task_batch=2), start_block=1)
    assert w.poll_once() == 5
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert sorted(job.request_id for batch in batches for job in batch) == [1, 2, 3, 4, 5]


def test_a_batch_whose_dispatch_failed_goes_out_again_and_only_it(state):
    chain = ScriptedChain(head_block=10, mined=[request_log(i, 5) for i in range(1, 6)])
    sent: list[list[int]] = []

    def second_batch_fails(jobs):
        if len(sent) == 1:
            raise ConnectionError("broker unreachable")
        sent.append([job.request_id for job in jobs])

    w = Watcher(chain, state, second_batch_fails, OracleSettings(confirmations=0, reorg_depth=3, log_range=100,
                                                                 task_batch=2), start_block=1)
    with pytest.raises(ConnectionError):
        w.poll_once()
    assert sent == [[1, 2]]
    w.dispatch = lambda jobs: sent.append([job.request_id for job in jobs])
    assert w.poll_once() == 3
    assert sent == [[1, 2], [3, 4], [5]]


def test_a_chain_reset_below_the_checkpoint_is_rescanned_from_the_deployment_block(state, caplog):
    """A development chain loaded from an earlier state keeps its genesis (and so the namespace)
    but its head falls below the checkpoint: the watcher says so, forgets the old chain's logs and
    claims, and scans the new chain from the deployment block."""
    chain, dispatched = ScriptedChain(head_block=60, mined=[request_log(1, 40)]), []
    w = watcher(chain, state, dispatched)
    w.poll_once()
    claim = state.namespace.claim(1)
    state.redis.set(claim, b"handled")  # what the worker left for the old chain's request 1
    chain.mined, chain.head_block = [request_log(1, 12, fork="c")], 20  # the new chain's own request 1
    with caplog.at_level("WARNING", logger="aidoc.watcher"):
        assert w.poll_once() == 1
    assert [(j.request_id, j.block_hash[2]) for j in dispatched] == [(1, "a"), (1, "c")]
    assert chain.ranges[-1][0] == 1 and state.checkpoint() == 20
    assert state.redis.get(claim) is None
    assert "below this node's checkpoint (block 60)" in caplog.text and "deployment block 1" in caplog.text


def test_the_state_of_two_chains_with_one_chain_id_is_kept_apart(redis_url):
    """Another genesis block (a restarted anvil) or another market address is another namespace:
    the old chain's checkpoint does not hide the new chain's blocks."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    old = NodeNamespace(NODE, 31337, "0x" + "0a" * 32, "0x" + "02" * 20)
    WatcherState(client, old).set_checkpoint(500)
    for new in (NodeNamespace(NODE, 31337, "0x" + "0b" * 32, old.market),
                NodeNamespace(NODE, 31337, old.genesis, "0x" + "03" * 20)):
        assert new.prefix != old.prefix and WatcherState(client, new).checkpoint() is None
        assert new.claim(1) != old.claim(1)


def test_the_node_says_when_it_starts_on_another_chain_than_last_time(redis_url):
    from aidoc.node.namespace import note_chain

    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    first = NodeNamespace(NODE, 31337, "0x" + "0a" * 32, "0x" + "02" * 20)
    assert note_chain(client, first) is None  # the node's first start
    assert note_chain(client, first) is None  # the same chain again
    second = NodeNamespace(NODE, 31337, "0x" + "0b" * 32, first.market)
    assert note_chain(client, second) == first
    assert "genesis 0x0a0a0a0a" in first.describe()


def test_an_idle_chain_costs_one_call_per_pass_and_no_log_queries(state):
    """No new block, no eth_getLogs: an idle node on a hosted endpoint asks for the head only."""
    chain, dispatched = ScriptedChain(head_block=10, mined=[request_log(1, 9)]), []
    w = watcher(chain, state, dispatched)
    w.poll_once()
    for _ in range(5):
        assert w.poll_once() == 0
    assert len(chain.ranges) == 1
    chain.head_block = 11
    w.poll_once()
    assert len(chain.ranges) == 2 and chain.ranges[-1][0] == 11 - 3  # the new block, with the reorg rescan


def test_the_watcher_polls_once_per_block_on_a_chain_with_a_block_time(state):
    w = watcher(ScriptedChain(seconds_per_block=12.0), state, [], poll_interval=0.5)
    assert w.adapt_interval() == 12.0
    w.source = ScriptedChain(seconds_per_block=0.0)  # a development chain mining on demand
    assert w.adapt_interval() == 0.5
    w.source = ScriptedChain(seconds_per_block=60.0)
    assert w.adapt_interval() == 15.0  # never longer than MAX_POLL_S


@dataclass
class CountingChain(ScriptedChain):
    head_calls: int = 0

    def head(self) -> int:
        self.head_calls += 1
        return self.head_block


def _run_for(w: Watcher, seconds: float) -> None:
    import threading
    import time

    runner = threading.Thread(target=w.run, daemon=True)
    runner.start()
    time.sleep(seconds)
    w.stop()
    runner.join(timeout=10)
    assert not runner.is_alive()


def test_subscribed_to_new_heads_the_watcher_passes_once_per_block_without_asking_for_the_head(state, tmp_path):
    """A real anvil mining a block a second announces each over eth_subscribe; the watcher scans up
    to each announced head and never polls for one (before: one eth_blockNumber per pass)."""
    from web3 import Web3

    from aidoc.chain.heads import HeadSubscription
    from aidoc.stack.services import anvil

    port = free_port()
    with anvil(tmp_path, port, block_time=1):
        chain, dispatched = CountingChain(mined=[request_log(1, 2)]), []
        w = watcher(chain, state, dispatched, poll_interval=0.2)
        w.heads = HeadSubscription(f"ws://127.0.0.1:{port}")
        _run_for(w, 4.5)
        head = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}")).eth.block_number
    assert [job.request_id for job in dispatched] == [1]
    assert chain.head_calls == 1  # the first pass, before the subscription: then only announced heads
    scanned_to = [high for _, high in chain.ranges]
    assert scanned_to == sorted(scanned_to) and scanned_to[-1] >= 3 and scanned_to[-1] <= head
    assert len(chain.ranges) <= head + 1  # at most one eth_getLogs per block


def test_without_a_subscription_the_watcher_says_so_and_polls(state, caplog):
    from aidoc.chain.heads import HeadSubscription

    chain = CountingChain(head_block=5)
    w = watcher(chain, state, [], poll_interval=0.1)
    w.heads = HeadSubscription(f"ws://127.0.0.1:{free_port()}", open_timeout=1.0)  # nothing listens there
    with caplog.at_level("WARNING", logger="aidoc.watcher"):
        _run_for(w, 1.5)
    assert chain.head_calls >= 5  # polled on
    warnings = [r.getMessage() for r in caplog.records if "subscribing again" in r.getMessage()]
    assert len(warnings) == 1 and "no newHeads subscription at ws://127.0.0.1:" in warnings[0], warnings


def _subscribed_watcher(state, port: int) -> Watcher:
    from aidoc.chain.heads import HeadSubscription

    w = watcher(CountingChain(), state, [], poll_interval=0.1)
    w.heads = HeadSubscription(f"ws://127.0.0.1:{port}").open()
    w.subscribed = True
    return w


class QueuedHeads:
    """Heads already received and waiting to be read (what a burst of blocks leaves on the socket)."""

    url = "ws://queued"

    def __init__(self, heads: list[int]):
        self.heads = heads

    def next_head(self, timeout: float) -> int | None:
        return self.heads.pop(0) if self.heads else None

    def close(self) -> None:
        pass


def test_a_burst_of_announced_heads_is_one_pass_to_the_highest(state):
    """Before: one pass (one eth_getLogs) per queued head, falling further behind after a slow pass."""
    w = watcher(CountingChain(), state, [])
    w.heads, w.subscribed = QueuedHeads([7, 8, 9, 10]), True
    assert w.wait_for_block() == 10 and w.announced == 10 and w.heads.heads == []


def test_a_subscription_gone_quiet_while_blocks_were_mined_is_renewed(state, tmp_path, caplog, monkeypatch):
    from web3 import Web3

    from aidoc.oracles import watcher as watcher_module
    from aidoc.stack.services import anvil

    port = free_port()
    with anvil(tmp_path, port):
        w = _subscribed_watcher(state, port)
        http = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        http.provider.make_request("evm_mine", [])
        monkeypatch.setattr(watcher_module, "HEAD_SILENCE_S", 30.0)
        assert w.wait_for_block() == 1
        monkeypatch.setattr(watcher_module, "HEAD_SILENCE_S", 1.0)
        # Blocks mined, nothing announced in HEAD_SILENCE_S: what a provider that drops a
        # subscription without closing the socket leaves. A pass then asks for the head itself.
        http.provider.make_request("anvil_mine", [3])
        w.source.head_block = http.eth.block_number
        with caplog.at_level("WARNING", logger="aidoc.watcher"):
            assert w.head_for_pass(None) == 4
        assert not w.subscribed and any("announced no block since 1 while the chain reached 4" in r.getMessage()
                                        for r in caplog.records)
        assert w.wait_for_block() is None and w.subscribed  # subscribed again at once (then 1 s of silence)
        http.provider.make_request("evm_mine", [])
        monkeypatch.setattr(watcher_module, "HEAD_SILENCE_S", 30.0)
        assert w.wait_for_block() == 5
        w.stop()
        w.run()  # returns at once (stopped) and closes the subscription on its way out
        assert w.heads._connection is None
