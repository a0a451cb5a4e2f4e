"""What the chain says about this node's requests, as the sender and the publisher ask it: a
request's status (now, or at the newest block buried under `confirmations`) and the result it was
fulfilled with."""

from __future__ import annotations

from aidoc.chain.contracts import decode_event, event_topic, rpc_request
from aidoc.constants import RequestStatus
from aidoc.node.runtime import NodeRuntime


class MarketState:
    def __init__(self, runtime: NodeRuntime):
        self.contracts = runtime.marketplace
        self.oracle = runtime.oracle

    def status_of(self, request_id: int, block: int | str = "latest") -> RequestStatus:
        state = self.contracts.market.functions.getRequestState(request_id).call(block_identifier=block)
        return RequestStatus(state[1])

    def safe_block(self) -> int:
        """The newest block buried under `confirmations`: what it says is final."""
        return max(0, self.contracts.w3.eth.block_number - self.oracle.confirmations)

    def is_final(self, request_id: int) -> bool:
        """Whether the request is fulfilled `confirmations` blocks below the head."""
        return self.status_of(request_id, self.safe_block()) == RequestStatus.FULFILLED

    def fulfilment_of(self, request_id: int) -> tuple[bytes, str] | None:
        """The (result commitment, result CID) the request was fulfilled with, from its
        DiagnosisFulfilled event (looked for in the last AIDOC_LOG_RANGE blocks: this node fulfilled
        it recently)."""
        market = self.contracts.market
        head = int(rpc_request(self.contracts.w3, "eth_blockNumber", []), 16)
        first = max(self.contracts.deployment.block_number, head - self.oracle.log_range + 1)
        logs = rpc_request(self.contracts.w3, "eth_getLogs", [{
            "address": market.address, "fromBlock": hex(first), "toBlock": hex(head),
            "topics": ["0x" + event_topic(market, "DiagnosisFulfilled").hex(), "0x" + request_id.to_bytes(32, "big").hex()],
        }])
        for entry in logs:
            args = decode_event(market, "DiagnosisFulfilled", entry)
            if args is not None:
                return bytes(args["resultCommitment"]), str(args["resultCid"])
        return None
