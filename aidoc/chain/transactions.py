"""Signing and sending transactions from one local key: EIP-1559 fees, a nonce this process owns,
replacement of a transaction that sits unmined, and reverts decoded into their custom errors."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from aidoc.chain.contracts import TransactionReverted, chain_id, decode_revert, encode_call, revert_data
from aidoc.errors import AidocError, TransientError

log = logging.getLogger(__name__)

# Receipt polls: 5 ms first (a local chain mines in milliseconds), doubling to 2 s, so that a
# transaction waiting for a public chain's 12 s block costs about a dozen calls, not thousands.
RECEIPT_POLL_S, RECEIPT_POLL_MAX_S = 0.005, 2.0
NONCE_CHECK_S = 2.0  # unmined this long: check once that the transaction is not queued behind a nonce gap
FEES_MAX_AGE_S = 1.0  # fees are read at most once a second (two RPC calls each time)
GAS_HEADROOM = 1.2  # estimates can fall short when state changes between estimate and inclusion
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 5, 4  # +25%: nodes require >= +10% to replace


@dataclass
class Fees:
    max_fee: int
    priority_fee: int

    def bumped(self) -> "Fees":
        return Fees(
            max_fee=self.max_fee * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR + 1,
            priority_fee=self.priority_fee * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR + 1,
        )


class NonceAhead(Exception):
    """The chain's next nonce for the sending key is below the one a transaction was sent at."""

    def __init__(self, chain_nonce: int):
        super().__init__(chain_nonce)
        self.chain_nonce = chain_nonce


class OutOfEth(AidocError):
    """The sending account holds too little ETH for a transaction's gas (and value)."""


class Transactor:
    """Sends transactions from `account`. One Transactor per key and process: it owns the nonce."""

    def __init__(self, w3: Web3, account: LocalAccount, build_dir: Path, *, tx_timeout: float = 30.0,
                 max_replacements: int = 5):
        self.w3 = w3
        self.account = account
        self.build_dir = build_dir
        self.tx_timeout = tx_timeout
        self.max_replacements = max_replacements
        self._nonce: int | None = None
        self._fees: Fees | None = None
        self._fees_at = 0.0
        self._chain_id: int | None = None
        self._genesis: bytes | None = None  # block 0's hash when the nonce was last read from the chain
        self._last_mined: bytes | None = None  # the hash of this Transactor's latest mined transaction
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = chain_id(self.w3)
        return self._chain_id

    def current_fees(self) -> Fees:
        now = time.monotonic()
        if self._fees is None or now - self._fees_at > FEES_MAX_AGE_S:
            self._fees, self._fees_at = self._read_fees(), now
        return self._fees

    def _read_fees(self) -> Fees:
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        try:
            priority = self.w3.eth.max_priority_fee
        except (Web3RPCError, ValueError):
            priority = 10**9
        priority = max(priority, 1)
        return Fees(max_fee=2 * base_fee + priority, priority_fee=priority)

    def call_reason(self, error: ContractLogicError) -> str:
        return decode_revert(revert_data(error), self.build_dir) if revert_data(error) else str(error.message or error)

    def estimate(self, function: ContractFunction, action: str) -> int:
        try:
            return function.estimate_gas({"from": self.address})
        except ContractLogicError as error:
            raise TransactionReverted(action, self.call_reason(error)) from None
        except requests.exceptions.RequestException as error:
            raise TransientError(f"the RPC endpoint failed while estimating {action}: {error}") from None

    def send(self, function: ContractFunction, action: str, *, gas: int | None = None,
             value: int = 0) -> TxReceipt:
        """Estimates, signs, sends and waits for `function`; raises TransactionReverted with the
        contract's custom error if it would revert or did."""
        gas = gas or int(self.estimate(function, action) * GAS_HEADROOM)
        tx_base = {"from": self.address, "gas": gas, "value": value, "chainId": self.chain_id}
        tx = function.build_transaction({**tx_base, "nonce": 0, "maxFeePerGas": 1, "maxPriorityFeePerGas": 1})
        return self._send_locked(tx, action)

    def send_call(self, contract: Contract, function: str, args: tuple, action: str, *, gas: int) -> TxReceipt:
        """Like `send` for a call whose gas budget the caller knows, with the calldata encoded by
        eth_abi: no estimate and none of web3.py's per-call ABI work (the sender's hot path)."""
        tx = {"from": self.address, "to": contract.address, "data": encode_call(contract, function, args),
              "gas": gas, "value": 0, "chainId": self.chain_id}
        return self._send_locked(tx, action)

    def _send_locked(self, tx: dict[str, Any], action: str) -> TxReceipt:
        with self._lock:
            try:
                return self._send_built(tx, action)
            except requests.exceptions.RequestException as error:
                self._nonce = None  # resynchronise from the node next time
                raise TransientError(f"the RPC endpoint failed while sending {action}: {error}") from None

    def transfer_eth(self, to: str, value: int) -> TxReceipt:
        with self._lock:
            tx = {"from": self.address, "to": to, "value": value, "gas": 21_000, "chainId": self.chain_id}
            return self._send_built(tx, "ETH transfer")

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")
            self._genesis = bytes(self.w3.eth.get_block(0)["hash"])
        return self._nonce

    def _history_lost(self) -> bool:
        """Whether the chain lost what this key sent before: a new genesis (a restarted chain) or
        our latest mined transaction gone (a rollback). A pending count below our nonce alone is no
        evidence: a load-balanced endpoint's other backend may not have seen our transactions yet."""
        if self._genesis is not None and bytes(self.w3.eth.get_block(0)["hash"]) != self._genesis:
            return True
        if self._last_mined is None:
            return False
        try:
            self.w3.eth.get_transaction_receipt(self._last_mined)
        except TransactionNotFound:
            return True
        return False

    def _send_built(self, tx: dict[str, Any], action: str) -> TxReceipt:
        receipt = self._send_at(tx, self._next_nonce(), action, advance=True)
        if receipt["status"] != 1:
            raise TransactionReverted(action, self._replay_reason(tx, receipt))
        return receipt

    def _send_at(self, tx: dict[str, Any], nonce: int, action: str, *, advance: bool,
                 fees: Fees | None = None) -> TxReceipt:
        """Sends `tx` at `nonce`, replacing it with higher fees while it stays unmined, and returns
        the receipt of whichever of our versions was mined."""
        fees = fees or self.current_fees()
        sent: list[bytes] = []
        for _ in range(self.max_replacements + 1):
            signed = self.account.sign_transaction(
                {**tx, "nonce": nonce, "maxFeePerGas": fees.max_fee, "maxPriorityFeePerGas": fees.priority_fee}
            )
            try:
                sent.append(self.w3.eth.send_raw_transaction(signed.raw_transaction))
            except Web3RPCError as error:
                message = str(error).lower()
                if "nonce too low" in message or "already known" in message:
                    if sent:  # one of our earlier versions got in (or is about to)
                        return self._wait_for_any(sent, self.tx_timeout * 4, action)
                    self._nonce = None  # someone else used this key: resynchronise
                    nonce = self._next_nonce()
                    continue
                if "underpriced" in message:
                    fees = fees.bumped()
                    continue
                if "insufficient funds" in message:
                    raise self._out_of_eth(tx, fees, action) from None
                raise
            if advance and len(sent) == 1:
                self._nonce = nonce + 1
            try:
                receipt = self._wait_for_any(sent, self.tx_timeout, action, nonce)
            except NonceAhead as ahead:
                log.warning("%s: this key's next nonce on the chain is %d, not %d (a restarted or rolled-back chain): "
                            "sending it again at %d", action, ahead.chain_nonce, nonce, ahead.chain_nonce)
                mined = self._strand(tx, nonce, fees, sent, action)
                if mined is not None:
                    return mined
                nonce, sent = ahead.chain_nonce, []
                self._genesis = bytes(self.w3.eth.get_block(0)["hash"])
                self._last_mined = None
                if advance:
                    self._nonce = nonce
                continue
            except TimeExhausted:
                log.warning("%s (nonce %d) unmined after %.0f s: replacing it with higher fees", action, nonce,
                            self.tx_timeout)
                fees = fees.bumped()
                continue
            self._last_mined = bytes(receipt["transactionHash"])
            return receipt
        raise TransientError(f"{action} stayed unmined after {self.max_replacements} fee bumps; the node is congested")

    def _strand(self, tx: dict[str, Any], nonce: int, fees: Fees, sent: list[bytes], action: str) -> TxReceipt | None:
        """Replaces the copy of `tx` left queued at `nonce`, behind the gap, with a 0-ETH self-transfer,
        so that filling the gap later mines a harmless transfer and not `tx` a second time. Returns
        the receipt instead if one of the copies turns out to be mined after all."""
        void = {"from": self.address, "to": self.address, "value": 0, "gas": 21_000, "chainId": self.chain_id}
        for _ in range(self.max_replacements + 1):
            fees = fees.bumped()
            signed = self.account.sign_transaction(
                {**void, "nonce": nonce, "maxFeePerGas": fees.max_fee, "maxPriorityFeePerGas": fees.priority_fee})
            try:
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
                return None
            except Web3RPCError as error:
                message = str(error).lower()
                if "underpriced" in message:
                    continue
                if "nonce too low" in message:  # the gap was filled meanwhile: a copy may be mined
                    try:
                        return self._wait_for_any(sent, self.tx_timeout, action)
                    except TimeExhausted:
                        return None  # something else took the nonce: nothing of ours is left queued
                raise
        raise TransientError(f"{action}: could not replace the copy queued at nonce {nonce}; "
                             "restart the sender once the chain is back")

    def _out_of_eth(self, tx: dict[str, Any], fees: Fees, action: str) -> "OutOfEth":
        needed = int(tx["gas"]) * fees.max_fee + int(tx.get("value", 0))
        held = self.w3.eth.get_balance(self.address)
        return OutOfEth(f"{self.address} has {Web3.from_wei(held, 'ether')} ETH and {action} needs up to "
                        f"{Web3.from_wei(needed, 'ether')} ETH (gas {tx['gas']} at up to {fees.max_fee} wei, plus "
                        f"what it sends): send it at least {Web3.from_wei(max(needed - held, 1), 'ether')} ETH "
                        "(on a development chain: aidoc faucet)")

    def _wait_for_any(self, hashes: list[bytes], timeout: float, action: str, nonce: int | None = None) -> TxReceipt:
        """The receipt of whichever of `hashes` (versions of one `nonce`) is mined first. Once, after
        NONCE_CHECK_S unmined, it checks that the chain's next nonce for this key (its pending count)
        has reached `nonce`; if not, and the chain lost our history, the transaction sits queued
        behind a gap and never will be mined: NonceAhead (a chain restarted under a running sender
        leaves its nonce ahead)."""
        started = time.monotonic()
        deadline = started + timeout
        pause = RECEIPT_POLL_S
        checked = nonce is None
        while True:
            for tx_hash in reversed(hashes):
                try:
                    return self.w3.eth.get_transaction_receipt(tx_hash)
                except TransactionNotFound:
                    pass
            if not checked and time.monotonic() - started >= NONCE_CHECK_S:
                checked = True
                chain_nonce = self.w3.eth.get_transaction_count(self.address, "pending")
                if chain_nonce < nonce and self._history_lost():
                    raise NonceAhead(chain_nonce)
            if time.monotonic() >= deadline:
                raise TimeExhausted(f"{action}: no receipt after {timeout:.0f} s")
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, RECEIPT_POLL_MAX_S)

    def replace_stuck(self) -> int:
        """Replaces every transaction this key has pending from an earlier process (the nonces
        between the mined and the pending count) with a 0-ETH self-transfer at doubled fees, so that
        new transactions do not queue behind an underpriced one. Returns how many it replaced."""
        with self._lock:
            mined = self.w3.eth.get_transaction_count(self.address, "latest")
            pending = self.w3.eth.get_transaction_count(self.address, "pending")
            fees = self.current_fees().bumped().bumped().bumped()
            tx = {"from": self.address, "to": self.address, "value": 0, "gas": 21_000, "chainId": self.chain_id}
            for nonce in range(mined, pending):
                log.warning("replacing transaction %d left pending by an earlier sender", nonce)
                self._send_at(tx, nonce, "replacement of a stuck transaction", advance=False, fees=fees)
            self._nonce = None
            return pending - mined

    def _replay_reason(self, tx: dict[str, Any], receipt: TxReceipt) -> str:
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)
        except ContractLogicError as error:
            return self.call_reason(error)
        except Exception as error:  # noqa: BLE001 - only used to describe an already-failed transaction
            return f"reverted ({error})"
        return f"reverted in block {receipt['blockNumber']} (out of gas, or state changed before inclusion)"
