"""A user's session: who acts (an Identity), on which marketplace, with which content store."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from web3.logs import DISCARD

from aidoc.chain.contracts import Marketplace, open_marketplace
from aidoc.chain.transactions import Transactor
from aidoc.config import ServiceSettings
from aidoc.identity import Identity
from aidoc.storage import ContentStore, open_store


@dataclass
class Session:
    identity: Identity
    services: ServiceSettings = field(default_factory=ServiceSettings)
    marketplace: Marketplace | None = None
    store: ContentStore | None = None

    def __post_init__(self) -> None:
        if self.marketplace is None:
            self.marketplace = open_marketplace(self.services)
        if self.store is None:
            self.store = open_store(self.services.ipfs_api or None, self.services.store_dir)

    @property
    def address(self) -> str:
        return self.identity.address

    @cached_property
    def transactor(self) -> Transactor:
        return Transactor(self.marketplace.w3, self.identity.account, self.services.build_dir)

    def send(self, function, action: str):
        """Sends a contract call from this session's account and returns the receipt."""
        return self.transactor.send(function, action)

    def event(self, receipt, contract, name: str) -> dict:
        """The args of the first `name` event `contract` emitted in `receipt`."""
        events = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise LookupError(f"no {name} event in transaction {receipt['transactionHash'].hex()}")
        return events[0]["args"]

