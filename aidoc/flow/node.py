"""A compute node stakes AID and registers its fee, the data types it reads and its X25519 key;
anyone can list the registered nodes with their terms and their reputation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aidoc.chain.contracts import call_batch, call_struct, utc_time
from aidoc.constants import DataType, input_types_mask
from aidoc.errors import AidocError
from aidoc.flow.session import Session


def register_node(session: Session, stake: int, fee: int, data_types: list[DataType], gpu: bool) -> None:
    contracts = session.marketplace
    session.send(contracts.token.functions.approve(contracts.nodes.address, stake), "approve the stake")
    session.send(
        contracts.nodes.functions.register(
            stake, fee, session.identity.encryption_public_key, input_types_mask(*data_types), gpu
        ),
        "register the node",
    )


BATCH_CALLS = 300  # view calls per JSON-RPC batch (providers cap a batch's size)


class NodeStatus(Enum):
    """Whether a node can take requests now (INodeRegistry.isActive), and if not, why."""

    ACTIVE = "active"
    UNBONDING = "unbonding"  # exiting: takes no new requests; its stake unlocks at unbonding_end
    UNDERSTAKED = "understaked"  # registered, but slashed below the minimum stake
    WITHDRAWN = "withdrawn"  # registered once, and withdrew its stake


@dataclass(frozen=True)
class Reputation:
    """INodeRegistry.Reputation: how the node's requests ended, and how often it was slashed."""

    fulfilled: int
    failed: int
    timed_out: int
    slashed: int


@dataclass(frozen=True)
class NodeInfo:
    address: str
    stake: int  # AID in wei units
    fee: int  # AID in wei units, per diagnosis
    data_types: tuple[DataType, ...]
    gpu: bool
    status: NodeStatus
    unbonding_end: int  # when an exiting node's stake unlocks (Unix seconds); 0 unless unbonding
    encryption_key: bytes
    reputation: Reputation


def _node_info(address: str, node: dict, reputation: dict, active: dict) -> NodeInfo:
    if not node["registered"]:
        status = NodeStatus.WITHDRAWN
    elif node["unbondingEnd"]:
        status = NodeStatus.UNBONDING
    else:
        status = NodeStatus.ACTIVE if active["out0"] else NodeStatus.UNDERSTAKED
    return NodeInfo(
        address=address, stake=node["stake"], fee=node["fee"], data_types=data_types_of(node["inputTypes"]),
        gpu=node["gpu"], status=status, unbonding_end=node["unbondingEnd"],
        encryption_key=bytes(node["encryptionKey"]),
        reputation=Reputation(reputation["fulfilled"], reputation["failed"], reputation["timedOut"],
                              reputation["slashed"]),
    )


def list_nodes(session: Session, include_withdrawn: bool = False) -> list[NodeInfo]:
    """Every node that registered (NodeRegistered events since the deployment), in the order they
    first registered, with what the registry holds for them now; withdrawn ones only if asked."""
    nodes = session.marketplace.nodes
    start = session.marketplace.deployment.block_number
    addresses = list(dict.fromkeys(event["args"]["node"] for event in
                                   nodes.events.NodeRegistered().get_logs(from_block=start)))
    if not addresses:
        return []
    calls = [(nodes, name, (address,)) for address in addresses for name in ("getNode", "reputationOf", "isActive")]
    answers = [answer for chunk in range(0, len(calls), BATCH_CALLS)
               for answer in call_batch(session.marketplace.w3, calls[chunk:chunk + BATCH_CALLS])]
    found = [_node_info(address, *answers[3 * index: 3 * index + 3]) for index, address in enumerate(addresses)]
    return [info for info in found if include_withdrawn or info.status is not NodeStatus.WITHDRAWN]


class NodeActionRefused(AidocError):
    """A node operator's action the registry or market would refuse: nothing to withdraw, still bonded."""


@dataclass(frozen=True)
class LocalState:
    """What the node's own Redis says: how far its watcher got and what waits."""

    synced_block: int | None  # the last block its watcher scanned
    queued_tasks: int  # requests waiting for a worker
    outbox: dict[str, int]  # results waiting for (or in) a transaction, and for publication
    last_fulfilment: tuple[int, float] | None  # request id, Unix time


@dataclass(frozen=True)
class NodeReport:
    info: NodeInfo
    earnings: int  # AID units to withdraw from the market
    head: int
    local: LocalState | None  # None when the node's Redis is not reachable from here


def node_report(session: Session, address: str, redis_url: str | None) -> NodeReport:
    """The node at `address`: its registry entry, its earnings and, when its Redis answers at
    `redis_url`, how far it is synced and what it has waiting. Reads only."""
    contracts = session.marketplace
    nodes = contracts.nodes
    node, reputation, active, account = call_batch(contracts.w3, [
        (nodes, "getNode", (address,)), (nodes, "reputationOf", (address,)), (nodes, "isActive", (address,)),
        (contracts.market, "nodeAccount", (address,))])
    if not node["registered"] and not node["stake"] and not reputation["fulfilled"]:
        raise NodeActionRefused(f"{address} is not a registered node (aidoc node list shows those that are)")
    return NodeReport(_node_info(address, node, reputation, active), int(account["earnings"]),
                      contracts.w3.eth.block_number, _local_state(session, address, redis_url))


def _local_state(session: Session, address: str, redis_url: str | None) -> LocalState | None:
    import redis

    from aidoc.node.messages import node_queue
    from aidoc.node.namespace import NodeNamespace
    from aidoc.node.outbox import Outbox

    if not redis_url:
        return None
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    namespace = NodeNamespace.of(session.marketplace, address)
    try:
        checkpoint = client.get(namespace.checkpoint_key)
        outbox = Outbox(client, namespace)
        return LocalState(None if checkpoint is None else int(checkpoint), int(client.llen(node_queue(address))),
                          outbox.depth(), outbox.last_fulfilment())
    except redis.RedisError:
        return None


def withdraw_earnings(session: Session, to: str | None = None) -> int:
    """Sends the node's earnings in the market to `to` (default: the node); returns the amount."""
    contracts = session.marketplace
    earnings = int(call_struct(contracts.market, "nodeAccount", session.address)["earnings"])
    if earnings == 0:
        raise NodeActionRefused(f"node {session.address} has no earnings to withdraw")
    session.send(contracts.market.functions.withdrawNodeEarnings(to or session.address), "withdraw node earnings")
    return earnings


def unbond(session: Session) -> tuple[str, int]:
    """The node's next step out: begins unbonding (it takes no new requests; returns ("unbonding",
    the time its stake unlocks)), or once that time has passed withdraws the stake (("withdrawn",
    the amount)). NodeActionRefused while the stake is still locked."""
    contracts = session.marketplace
    node = call_struct(contracts.nodes, "getNode", session.address)
    if not node["registered"]:
        raise NodeActionRefused(f"{session.address} is not a registered node")
    if not node["unbondingEnd"]:
        receipt = session.send(contracts.nodes.functions.beginUnbonding(), "begin unbonding")
        return "unbonding", int(session.event(receipt, contracts.nodes, "UnbondingStarted")["unbondingEnd"])
    now = contracts.w3.eth.get_block("latest")["timestamp"]
    if now < node["unbondingEnd"]:
        raise NodeActionRefused(f"node {session.address} is unbonding until {utc_time(node['unbondingEnd'])}; its stake "
                                "can be withdrawn after that")
    session.send(contracts.nodes.functions.withdrawStake(), "withdraw the stake")
    return "withdrawn", int(node["stake"])



def data_types_of(mask: int) -> tuple[DataType, ...]:
    """The data types a NodeRegistry capability bitmask names (the inverse of input_types_mask)."""
    return tuple(data_type for data_type in DataType if mask & (1 << int(data_type)))
