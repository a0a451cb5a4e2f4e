"""The terms of a diagnosis request as the DiagnosisMarket stores them: a digest on-chain, the
full terms in the DiagnosisRequested event. Callers rebuild the terms from the event and pass them
back to fulfil, fulfilBatch, reportFailure, cancel and rateModel."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class DiagnosisRequest:
    """IDiagnosisMarket.Request, field for field and in the same order."""

    requester: str
    node: str
    provider: str
    data_owner: str
    record_id: int
    model_id: int
    model_fee: int
    royalty: int
    node_fee: int
    deadline: int

    @property
    def total(self) -> int:
        """The escrow: what the requester paid and what a refund returns."""
        return self.model_fee + self.royalty + self.node_fee

    def as_tuple(self) -> tuple:
        """The ABI tuple for contract calls."""
        return astuple(self)

    @classmethod
    def from_event_field(cls, value: Sequence[Any] | Mapping[str, Any]) -> "DiagnosisRequest":
        """Builds the terms from the `request` field of a decoded DiagnosisRequested event."""
        if isinstance(value, Mapping):
            keys = ("requester", "node", "provider", "dataOwner", "recordId", "modelId", "modelFee",
                    "royalty", "nodeFee", "deadline")
            value = [value[k] for k in keys]
        requester, node, provider, data_owner, record_id, model_id, model_fee, royalty, node_fee, deadline = value
        return cls(str(requester), str(node), str(provider), str(data_owner), int(record_id), int(model_id),
                   int(model_fee), int(royalty), int(node_fee), int(deadline))
