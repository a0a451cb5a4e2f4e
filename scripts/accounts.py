"""Throwaway accounts for development chains."""

import secrets

from brownie import accounts


def fresh_local_account(funder, eth: str = "1 ether"):
    """A new account with a random key held in memory only, funded with `eth` by `funder`.

    Brownie's accounts.add() without a key would print the new key's mnemonic to the console; a
    key that never leaves this process needs no mnemonic, and logs must never show one."""
    account = accounts.add("0x" + secrets.token_hex(32))
    funder.transfer(account, eth)
    return account
