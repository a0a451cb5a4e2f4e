"""Where a node keeps its state in Redis: one namespace per node, chain and deployment.

Everything a node writes to Redis (the watcher's checkpoint and the logs it has seen, the workers'
claims, the outbox to the sender) describes one chain and one market. A development chain that is
started again keeps its chain id but gets a new genesis block, and a redeployed market gets a new
address; Redis kept on disk would otherwise hand the new chain the old chain's checkpoint (so new
requests are never scanned) and the old chain's claims (so new requests with reused ids are skipped
as handled). Keying the namespace by the genesis block's hash and the market's address keeps each
chain's state apart, and `note_chain` tells the operator when the node starts on a chain other than
the one it last ran on."""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from aidoc.chain.contracts import Marketplace, rpc_request

HASH_CHARS = 16  # hex characters of the genesis hash and market address in each key (64 bits each)


def genesis_hash(marketplace: Marketplace) -> str:
    """The hash of the chain's block 0: what tells a restarted development chain from the old one."""
    block = rpc_request(marketplace.w3, "eth_getBlockByNumber", ["0x0", False])
    return str(block["hash"]).lower()


@dataclass(frozen=True)
class NodeNamespace:
    """The Redis keys of one node on one chain (chain id and genesis block) and one deployment."""

    node: str
    chain_id: int
    genesis: str
    market: str

    @classmethod
    def of(cls, marketplace: Marketplace, node: str) -> "NodeNamespace":
        return cls(node.lower(), marketplace.chain_id, genesis_hash(marketplace), marketplace.market.address.lower())

    @property
    def prefix(self) -> str:
        return (f"aidoc:{self.node}:{self.chain_id}:{self.genesis[2:2 + HASH_CHARS]}:"
                f"{self.market[2:2 + HASH_CHARS]}")

    def key(self, *parts: object) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    @property
    def checkpoint_key(self) -> str:
        """The last block the watcher scanned."""
        return self.key("watcher", "checkpoint")

    def claim(self, request_id: int) -> str:
        return self.key("claim", request_id)

    def describe(self) -> str:
        return f"chain {self.chain_id} (genesis {self.genesis[:10]}…), market {self.market}"


def note_chain(client: redis.Redis, namespace: NodeNamespace) -> NodeNamespace | None:
    """Records that the node now runs on `namespace`'s chain and market; returns the one it last ran
    on when that was another (a restarted chain, a redeployment), else None."""
    key = f"aidoc:{namespace.node}:chain"
    current = json.dumps({"chain_id": namespace.chain_id, "genesis": namespace.genesis, "market": namespace.market})
    previous = client.getset(key, current)
    if previous is None or previous.decode() == current:
        return None
    data = json.loads(previous)
    return NodeNamespace(namespace.node, int(data["chain_id"]), data["genesis"], data["market"])
