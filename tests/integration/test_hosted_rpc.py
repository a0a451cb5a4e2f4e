"""The hosted-RPC stand-in (aidoc.stack.hosted_rpc) behaves as a provider's free tier does, and the
project's JSON-RPC client waits out its 429 answers instead of failing."""

from __future__ import annotations

import pytest
import requests
from web3 import Web3

from aidoc.chain.contracts import rpc_batch, rpc_request
from aidoc.errors import TransientError
from aidoc.stack.hosted_rpc import HostedRpc
from aidoc.stack.process import free_port
from aidoc.stack.services import anvil


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    port = free_port()
    with anvil(tmp_path_factory.mktemp("hosted"), port):
        yield f"http://127.0.0.1:{port}"


def test_it_refuses_development_methods_and_lists_no_accounts(chain):
    with HostedRpc(chain, rate=100) as proxy:
        w3 = Web3(Web3.HTTPProvider(proxy.url("dev")))
        assert w3.eth.accounts == [] and w3.eth.chain_id == 31337
        for method in ("evm_mine", "anvil_setBalance", "eth_sendTransaction", "debug_traceTransaction"):
            with pytest.raises(TransientError, match="does not exist/is not available"):
                rpc_request(w3, method, [])
        assert proxy.by_method("dev")["evm_mine"] == 1 and proxy.total("other") == 0


def test_calls_above_the_rate_are_answered_429_and_the_client_waits_them_out(chain):
    with HostedRpc(chain, rate=5) as proxy:
        response = requests.post(proxy.url("burst"), json=[{"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber",
                                                            "params": []} for i in range(6)], timeout=10)
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"
        assert proxy.refused["burst"] == 1 and proxy.total("burst") == 6  # every call of a batch counts

        w3 = Web3(Web3.HTTPProvider(proxy.url("client")))
        heads = [rpc_request(w3, "eth_blockNumber", []) for _ in range(12)]
        assert len(heads) == 12 and proxy.refused["client"] >= 1  # refused, waited, answered
        assert len(rpc_batch(w3, "eth_chainId", [[] for _ in range(5)])) == 5
        with pytest.raises(TransientError, match="rate-limited a batch of calls 5 times in a row"):
            rpc_batch(w3, "eth_chainId", [[] for _ in range(6)])  # more than the limit at once: never admitted
