"""A compute node stakes AID and registers its fee, the data types it reads and its X25519 key."""

from __future__ import annotations

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
