"""What the relayer does with one signed consent change, apart from HTTP: parse it, check that the
record's owner signed it with their current nonce, hold each signer to a rate, and submit it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import requests
from web3 import Web3
from web3.exceptions import Web3RPCError

from aidoc.chain.contracts import TransactionReverted, call_struct, chain_now
from aidoc.chain.transactions import GAS_HEADROOM, OutOfEth
from aidoc.errors import AidocError, TransientError, one_line
from aidoc.flow.session import Session
from aidoc.ratelimit import SlidingWindow
from aidoc.signing import MalformedSignature, consent_signer

log = logging.getLogger(__name__)

HOUR_S = 3600.0
MAX_UINT8, MAX_UINT64, MAX_UINT256 = 2**8 - 1, 2**64 - 1, 2**256 - 1


class RelayRefused(AidocError):
    """The relayer will not submit a signed consent change; `status` is the HTTP status it answers."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SignedConsentChange:
    """A grant (`expiry` given) or a revocation (`expiry` None) signed by a record's owner."""

    record_id: int
    grantee: str
    purposes: int
    expiry: int | None
    deadline: int
    signature: bytes

    @property
    def kind(self) -> str:
        return "grant" if self.expiry is not None else "revocation"

    @classmethod
    def parse(cls, body: Any, *, grant: bool) -> "SignedConsentChange":
        """From a JSON body: recordId, grantee, purposes, expiry (grants only), deadline, signature
        (0x hex, 65 bytes). RelayRefused(400) names the first field that is wrong."""
        if not isinstance(body, dict):
            raise RelayRefused(400, "the body must be a JSON object")
        names = ["recordId", "grantee", "purposes"] + (["expiry"] if grant else []) + ["deadline", "signature"]
        missing = [name for name in names if name not in body]
        if missing:
            raise RelayRefused(400, f"missing field {missing[0]}")
        grantee = body["grantee"]
        if not isinstance(grantee, str) or not Web3.is_address(grantee):
            raise RelayRefused(400, "grantee must be an 0x address")
        signature = body["signature"]
        try:
            signature_bytes = bytes.fromhex(signature.removeprefix("0x")) if isinstance(signature, str) else b""
        except ValueError:
            signature_bytes = b""
        if len(signature_bytes) != 65:
            raise RelayRefused(400, "signature must be 65 bytes of 0x hex")
        return cls(
            record_id=_uint(body, "recordId", MAX_UINT256),
            grantee=Web3.to_checksum_address(grantee),
            purposes=_uint(body, "purposes", MAX_UINT8),
            expiry=_uint(body, "expiry", MAX_UINT64) if grant else None,
            deadline=_uint(body, "deadline", MAX_UINT256),
            signature=signature_bytes,
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"recordId": self.record_id, "grantee": self.grantee, "purposes": self.purposes}
        if self.expiry is not None:
            body["expiry"] = self.expiry
        return {**body, "deadline": self.deadline, "signature": "0x" + self.signature.hex()}


def _uint(body: dict, name: str, maximum: int) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise RelayRefused(400, f"{name} must be a whole number from 0 to {maximum}")
    return value


class Relayer:
    """Submits signed consent changes from `session`'s account (the relayer's, which pays the gas).

    Before it spends gas it checks, in this order and each refusal free: the record and its owner,
    the signature (well-formed, from the owner, at the owner's current nonce), the deadline against
    the chain's clock, that no other change of the same owner is in flight (only one of them could
    be mined: the nonce), the registry's answer to a gas estimate, and then the signer's hourly limit.
    """

    def __init__(self, session: Session, signer_limit_per_hour: int, clock: Callable[[], float] = time.monotonic):
        self.session = session
        self.signer_limit_per_hour = signer_limit_per_hour
        self._relayed = SlidingWindow(signer_limit_per_hour, HOUR_S, clock)
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def status(self) -> dict[str, Any]:
        contracts = self.session.marketplace
        try:
            balance = contracts.w3.eth.get_balance(self.session.address)
        except (requests.exceptions.RequestException, Web3RPCError, TransientError) as failed:
            raise self._endpoint_failed("reading its balance", failed) from None
        return {"relayer": self.session.address, "chainId": contracts.chain_id,
                "consentRegistry": contracts.consents.address, "balanceWei": str(balance),
                "signerLimitPerHour": self.signer_limit_per_hour}

    def relay(self, change: SignedConsentChange) -> dict[str, Any]:
        """Checks and submits `change`; the transaction's hash and block. RelayRefused says why not."""
        consents = self.session.marketplace.consents
        try:
            owner = call_struct(consents, "getRecord", change.record_id)["owner"]
            nonce = consents.functions.nonces(owner).call()
            now = chain_now(self.session.marketplace.w3)
        except TransactionReverted as refused:
            raise RelayRefused(400, f"record {change.record_id}: {refused.reason}") from None
        except (requests.exceptions.RequestException, Web3RPCError, TransientError) as failed:
            raise self._endpoint_failed("checking the record", failed) from None
        try:
            signer = consent_signer(change.signature, chain_id=self.session.marketplace.chain_id,
                                    registry=consents.address, record_id=change.record_id, grantee=change.grantee,
                                    purposes=change.purposes, expiry=change.expiry, nonce=nonce,
                                    deadline=change.deadline)
        except MalformedSignature as malformed:
            raise RelayRefused(400, f"the signature is malformed ({malformed}): sign again") from None
        if signer != owner:
            raise RelayRefused(400, f"the signature is not from record {change.record_id}'s owner {owner} with "
                                    f"its current nonce {nonce}: sign again")
        if change.deadline < now:
            raise RelayRefused(400, f"the signature's deadline passed {now - change.deadline} s ago (chain time): "
                                    "sign again")
        with self._lock:
            if owner in self._in_flight:
                raise RelayRefused(409, f"another consent change of {owner} is being relayed; only one per nonce "
                                        "can be mined: wait for it, then sign again if this one is still needed")
            self._in_flight.add(owner)
        try:
            return self._submit(change, owner)
        finally:
            with self._lock:
                self._in_flight.discard(owner)

    def _submit(self, change: SignedConsentChange, owner: str) -> dict[str, Any]:
        consents = self.session.marketplace.consents
        function = (consents.functions.grantConsentBySig(change.record_id, change.grantee, change.purposes,
                                                         change.expiry, change.deadline, change.signature)
                    if change.expiry is not None else
                    consents.functions.revokeConsentBySig(change.record_id, change.grantee, change.purposes,
                                                          change.deadline, change.signature))
        action = f"the relayed consent {change.kind} on record {change.record_id}"
        transactor = self.session.transactor
        try:
            gas = int(transactor.estimate(function, action) * GAS_HEADROOM)
        except TransactionReverted as refused:
            raise RelayRefused(400, str(refused)) from None
        except TransientError as failed:
            raise self._endpoint_failed("estimating its gas", failed) from None
        wait = self._relayed.admit(owner)
        if wait is not None:
            raise RelayRefused(429, f"{owner} has had {self._relayed.count(owner)} consent changes relayed in the last "
                                    f"hour (the limit); try again in {max(wait / 60, 1):.0f} min or send it yourself")
        try:
            receipt = transactor.send(function, action, gas=gas)
        except TransactionReverted as refused:  # mined and reverted: its gas is spent, the change counts
            raise RelayRefused(400, str(refused)) from None
        except OutOfEth:
            self._relayed.release(owner)
            log.warning("the relayer %s is out of ETH for gas: fund it", self.session.address)
            raise RelayRefused(503, "the relayer cannot pay for gas now; its operator must fund it, "
                                    "or send the transaction yourself without --gasless") from None
        except TransientError as failed:
            self._relayed.release(owner)
            raise self._endpoint_failed(f"sending {action}", failed) from None
        return {"signer": owner, "transactionHash": "0x" + bytes(receipt["transactionHash"]).hex(),
                "blockNumber": receipt["blockNumber"]}

    @staticmethod
    def _endpoint_failed(doing: str, failed: Exception) -> RelayRefused:
        """A 502 whose message names no URL (the relayer's RPC URL can hold an API key); the cause is
        logged here, on the relayer's side."""
        log.warning("the relayer's RPC endpoint failed while %s: %s", doing, one_line(failed))
        return RelayRefused(502, f"the relayer's RPC endpoint failed while {doing}; try again shortly")
