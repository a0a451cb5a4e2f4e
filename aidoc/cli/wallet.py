"""`aidoc balance` and `aidoc transfer`: what an account holds, and sending AID or ETH."""

from __future__ import annotations

from typing import Optional

import typer
from web3 import Web3

from aidoc.cli.params import (
    AccountOption,
    CommandGroup,
    JsonOption,
    checked_address,
    console,
    emit,
    parse_aid,
    reader_for,
    session_for,
    show_aid,
)

app = CommandGroup("Balances and transfers.")


@app.command()
def balance(who: Optional[str] = typer.Argument(None, help="an address or keystore name (default: --account)"),
            account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """ETH (for gas) and AID an account holds; an address or keystore name needs no password."""
    from aidoc.flow.wallet import balance_of

    session = reader_for(None if who else account)
    address = checked_address(who, "account") if who else session.address
    held = balance_of(session.marketplace, address)
    emit(as_json, lambda: {"address": held.address, "eth": str(held.eth), "aid": str(held.aid)},
         lambda: [f"{held.address}: {Web3.from_wei(held.eth, 'ether'):,.6f} ETH, {show_aid(held.aid)}"])


@app.command()
def transfer(to: str, amount: str, eth: bool = typer.Option(False, "--eth", help="send ETH instead of AID"),
             account: Optional[str] = AccountOption) -> None:
    """Send AMOUNT AID (or ETH with --eth) to TO, an address or keystore name."""
    from aidoc.flow.wallet import transfer as send

    recipient, value = checked_address(to, "recipient"), parse_aid(amount)
    session = session_for(account)
    send(session, recipient, value, eth=eth)
    console.print(f"sent {amount} {'ETH' if eth else 'AID'} from {session.address} to {recipient}")
