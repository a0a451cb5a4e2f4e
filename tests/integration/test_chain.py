"""The chain bindings: batched view calls agree with single ones and decode reverts."""

from __future__ import annotations

import pytest

from aidoc.chain.contracts import TransactionReverted, call_batch, call_struct
from aidoc.constants import Purpose


def test_a_batch_of_calls_reads_what_single_calls_read(models, doctor):
    contracts = doctor.marketplace
    calls = [(contracts.models, "getModel", (1,)), (contracts.market, "getRequestState", (1,)),
             (contracts.consents, "hasConsent", (1, doctor.address, int(Purpose.DIAGNOSIS))),
             (contracts.models, "modelCount", ())]
    batched = call_batch(contracts.w3, calls)
    single = [call_struct(contract, function, *args) for contract, function, args in calls]
    assert batched == single
    assert batched[0]["name"] == "panel" and batched[3]["out0"] >= 2


def test_a_reverting_call_in_a_batch_names_the_contract_error(doctor):
    contracts = doctor.marketplace
    with pytest.raises(TransactionReverted, match=r"UnknownRecord\(recordId=999999\)"):
        call_batch(contracts.w3, [(contracts.models, "modelCount", ()),
                                  (contracts.consents, "getRecord", (999_999,))])
