"""A compute node stakes AID and registers its fee, the data types it reads and its X25519 key;
anyone can list the registered nodes with their terms and their reputation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aidoc.chain.contracts import call_batch
from aidoc.constants import DataType, input_types_mask
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
    found = []
    for index, address in enumerate(addresses):
        node, reputation, active = answers[3 * index: 3 * index + 3]
        if not node["registered"]:
            status = NodeStatus.WITHDRAWN
        elif node["unbondingEnd"]:
            status = NodeStatus.UNBONDING
        else:
            status = NodeStatus.ACTIVE if active["out0"] else NodeStatus.UNDERSTAKED
        if status is NodeStatus.WITHDRAWN and not include_withdrawn:
            continue
        found.append(NodeInfo(
            address=address, stake=node["stake"], fee=node["fee"], data_types=data_types_of(node["inputTypes"]),
            gpu=node["gpu"], status=status, unbonding_end=node["unbondingEnd"],
            encryption_key=bytes(node["encryptionKey"]),
            reputation=Reputation(reputation["fulfilled"], reputation["failed"], reputation["timedOut"],
                                  reputation["slashed"]),
        ))
    return found


def data_types_of(mask: int) -> tuple[DataType, ...]:
    """The data types a NodeRegistry capability bitmask names (the inverse of input_types_mask)."""
    return tuple(data_type for data_type in DataType if mask & (1 << int(data_type)))
