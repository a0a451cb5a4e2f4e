"""Funding accounts on a development chain: anvil and Ganache hold unlocked accounts with ETH, and
the first one deployed the marketplace and holds the AID supply. No private key is involved."""

from __future__ import annotations

from aidoc.chain.contracts import Marketplace
from aidoc.errors import AidocError


class NoFaucet(AidocError):
    """The chain has no unlocked account to pay from (a testnet or mainnet)."""


def fund(marketplace: Marketplace, to: str, eth: int = 0, aid: int = 0) -> None:
    """Sends `eth` wei and `aid` AID (wei units) to `to` from the chain's first unlocked account."""
    w3 = marketplace.w3
    unlocked = w3.eth.accounts
    if not unlocked:
        raise NoFaucet("this chain has no unlocked account; send ETH and AID to the account yourself")
    source = marketplace.deployment.deployer if marketplace.deployment.deployer in unlocked else unlocked[0]
    if eth:
        w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": source, "to": to, "value": eth}))
    if aid:
        tx = marketplace.token.functions.transfer(to, aid).transact({"from": source})
        if w3.eth.wait_for_transaction_receipt(tx)["status"] != 1:
            raise NoFaucet(f"{source} could not send {aid} AID units; is it the deployer?")
