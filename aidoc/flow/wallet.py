"""What an account holds and sends: its ETH (for gas) and AID balances, and AID or ETH transfers,
each checked before anything is signed."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from aidoc.chain.contracts import Marketplace
from aidoc.errors import AidocError
from aidoc.flow.session import Session


class InsufficientBalance(AidocError):
    """A transfer of more than the account holds."""


@dataclass(frozen=True)
class Balance:
    address: str
    eth: int  # wei
    aid: int  # AID units (18 decimals)


def balance_of(marketplace: Marketplace, address: str) -> Balance:
    return Balance(address, marketplace.w3.eth.get_balance(address),
                   marketplace.token.functions.balanceOf(address).call())


def transfer(session: Session, to: str, amount: int, *, eth: bool = False) -> None:
    """Sends `amount` AID units (or with `eth`, wei) from the session's account to `to`."""
    held = balance_of(session.marketplace, session.address)
    if amount <= 0:
        raise InsufficientBalance("a transfer needs an amount above 0")
    have = held.eth if eth else held.aid
    if amount > have:
        unit = "ETH" if eth else "AID"
        raise InsufficientBalance(f"{session.address} holds {Web3.from_wei(have, 'ether')} {unit}, less than the "
                                  f"{Web3.from_wei(amount, 'ether')} {unit} to send")
    if eth:
        session.transactor.transfer_eth(to, amount)
    else:
        session.send(session.marketplace.token.functions.transfer(to, amount), f"transfer of AID to {to}")
