"""What the relayer does with one signed consent change, apart from HTTP: parse it, check that the
record's owner signed it with their current nonce, hold each signer to a rate, and submit it."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from web3 import Web3

from aidoc.chain.contracts import TransactionReverted, call_struct
from aidoc.chain.transactions import OutOfEth
from aidoc.errors import AidocError, TransientError
from aidoc.flow.session import Session
from aidoc.signing import consent_signer

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
    """Submits signed consent changes from `session`'s account (the relayer's, which pays the gas)."""

    def __init__(self, session: Session, signer_limit_per_hour: int, clock: Callable[[], float] = time.monotonic):
        self.session = session
        self.signer_limit_per_hour = signer_limit_per_hour
        self.clock = clock
        self._relayed: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def status(self) -> dict[str, Any]:
        contracts = self.session.marketplace
        return {"relayer": self.session.address, "chainId": contracts.chain_id,
                "consentRegistry": contracts.consents.address,
                "balanceWei": str(contracts.w3.eth.get_balance(self.session.address)),
                "signerLimitPerHour": self.signer_limit_per_hour}

    def relay(self, change: SignedConsentChange) -> dict[str, Any]:
        """Checks and submits `change`; the transaction's hash and block. RelayRefused says why not."""
        consents = self.session.marketplace.consents
        try:
            owner = call_struct(consents, "getRecord", change.record_id)["owner"]
        except TransactionReverted as refused:
            raise RelayRefused(400, f"record {change.record_id}: {refused.reason}") from None
        nonce = consents.functions.nonces(owner).call()
        signer = consent_signer(change.signature, chain_id=self.session.marketplace.chain_id,
                                registry=consents.address, record_id=change.record_id, grantee=change.grantee,
                                purposes=change.purposes, expiry=change.expiry, nonce=nonce,
                                deadline=change.deadline)
        if signer != owner:
            raise RelayRefused(400, f"the signature is not from record {change.record_id}'s owner {owner} with "
                                    f"its current nonce {nonce}: sign again")
        self._admit(owner)
        function = (consents.functions.grantConsentBySig(change.record_id, change.grantee, change.purposes,
                                                         change.expiry, change.deadline, change.signature)
                    if change.expiry is not None else
                    consents.functions.revokeConsentBySig(change.record_id, change.grantee, change.purposes,
                                                          change.deadline, change.signature))
        try:
            receipt = self.session.send(function, f"the relayed consent {change.kind} on record {change.record_id}")
        except TransactionReverted as refused:
            raise RelayRefused(400, str(refused)) from None
        except OutOfEth as broke:
            raise RelayRefused(503, f"the relayer cannot pay for gas now ({broke}); its operator must fund it, "
                                    "or send the transaction yourself without --gasless") from None
        except TransientError as failed:
            raise RelayRefused(502, f"the relayer's RPC endpoint failed: {failed}") from None
        return {"signer": owner, "transactionHash": "0x" + bytes(receipt["transactionHash"]).hex(),
                "blockNumber": receipt["blockNumber"]}

    def _admit(self, signer: str) -> None:
        with self._lock:
            window, now = self._relayed[signer], self.clock()
            while window and window[0] <= now - HOUR_S:
                window.popleft()
            if len(window) >= self.signer_limit_per_hour:
                wait = window[0] + HOUR_S - now
                raise RelayRefused(429, f"{signer} has had {len(window)} consent changes relayed in the last hour "
                                        f"(the limit); try again in {wait / 60:.0f} min or send it yourself")
            window.append(now)
