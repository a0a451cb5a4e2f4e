"""Stateful property tests (Hypothesis via Brownie): random sequences of grants, revocations,
requests, fulfilments, batches, failures, cancellations, withdrawals and time passing.

Invariants checked after every step:
- escrow: the market's AID equals the open requests' escrows plus the nodes' unwithdrawn earnings;
- conservation: AID is neither created nor lost among the participants;
- every request is in the state the model predicts (each ends exactly once);
- consent: hasConsent agrees with the model of grants, revocations and expiries.
`make fuzz` runs many more steps than `make test` (AIDOC_STATEFUL_STEPS, AIDOC_STATEFUL_EXAMPLES)."""

import os

from brownie import chain
from brownie.exceptions import VirtualMachineError
from brownie.test import strategy
from hypothesis import HealthCheck

from aidoc.chain.request import DiagnosisRequest
from aidoc.constants import Purpose, RequestStatus
from conftest import COMMITMENT, DAY, RESULT_CID, RESULT_KEY, now, register_record

STEPS = int(os.environ.get("AIDOC_STATEFUL_STEPS", "30"))
EXAMPLES = int(os.environ.get("AIDOC_STATEFUL_EXAMPLES", "20"))


class MarketMachine:
    st_index = strategy("uint8")
    st_days = strategy("uint8", min_value=0, max_value=4)
    st_batch = strategy("uint8", min_value=1, max_value=6)
    st_reason = strategy("uint8", min_value=1, max_value=8)

    def __init__(cls, token, consents, market, node, doctors, patients, model_id, watched):
        cls.token, cls.consents, cls.market, cls.node = token, consents, market, node
        cls.doctors, cls.patients, cls.model_id, cls.watched = doctors, patients, model_id, watched

    def setup(self):
        self.day = 0
        self.records = [register_record(self.consents, p) for p in self.patients]
        self.owner = dict(zip(self.records, self.patients))
        self.expiry_day = {}  # (record, doctor) -> day the diagnosis consent expires
        self.requests = {}  # request id -> (DiagnosisRequest, day made)
        self.status = {}  # request id -> RequestStatus
        self.supply = sum(self.token.balanceOf(a) for a in self.watched)
        for doctor in self.doctors:
            self.token.approve(self.market, 2**255, {"from": doctor})
            for record in self.records:
                self._grant(record, doctor, days=2)

    # ------------------------------------------------------------ model helpers

    def _consented(self, record, doctor) -> bool:
        return self.day < self.expiry_day.get((record, doctor.address), -1)

    def _pick(self, items, index):
        return items[index % len(items)] if items else None

    def _pending(self):
        return sorted(r for r, s in self.status.items() if s == RequestStatus.PENDING)

    # ------------------------------------------------------------ rules

    def _grant(self, record, doctor, days):
        # Expiries fall half a day off the day grid, so no check runs near an expiry instant.
        expiry = now() + days * DAY + DAY // 2
        self.consents.grantConsent(record, doctor, Purpose.DIAGNOSIS, expiry, {"from": self.owner[record]})
        self.expiry_day[(record, doctor.address)] = self.day + days + 0.5

    def rule_grant(self, st_index, st_days):
        self._grant(self._pick(self.records, st_index), self._pick(self.doctors, st_index // 2), st_days)

    def rule_revoke(self, st_index):
        record = self._pick(self.records, st_index)
        doctor = self._pick(self.doctors, st_index // 2)
        key = (record, doctor.address)
        if key in self.expiry_day:
            self.consents.revokeConsent(record, doctor, Purpose.DIAGNOSIS, {"from": self.owner[record]})
            del self.expiry_day[key]
        else:
            try:
                self.consents.revokeConsent(record, doctor, Purpose.DIAGNOSIS, {"from": self.owner[record]})
                raise AssertionError("revoking a consent that was never granted succeeded")
            except VirtualMachineError as error:
                assert error.revert_msg.startswith("NoConsentToRevoke")

    def rule_request(self, st_index, st_batch):
        for offset in range(st_batch):
            self._request(self._pick(self.records, st_index + offset), self._pick(self.doctors, st_index // 2 + offset))

    def _request(self, record, doctor):
        try:
            tx = self.market.requestDiagnosis(record, self.model_id, self.node, RESULT_KEY, 2**256 - 1,
                                              {"from": doctor})
        except VirtualMachineError as error:
            assert not self._consented(record, doctor), f"request refused despite consent: {error.revert_msg}"
            assert error.revert_msg.split(":")[0] in ("ConsentMissing", "ConsentExpired")
            return
        assert self._consented(record, doctor), "request accepted without valid consent"
        event = tx.events["DiagnosisRequested"]
        self.requests[event["requestId"]] = (DiagnosisRequest.from_event_field(event["request"]), self.day)
        self.status[event["requestId"]] = RequestStatus.PENDING

    def _fulfillable(self, request_id) -> bool:
        request, made = self.requests[request_id]
        doctor = next(d for d in self.doctors if d.address == request.requester)
        return self.day == made and self._consented(request.record_id, doctor)

    def rule_fulfil(self, st_index):
        request_id = self._pick(self._pending(), st_index)
        if request_id is None:
            return
        request, _ = self.requests[request_id]
        try:
            self.market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": self.node})
        except VirtualMachineError as error:
            assert not self._fulfillable(request_id), f"fulfil refused: {error.revert_msg}"
            return
        assert self._fulfillable(request_id), "fulfilled after the deadline or without consent"
        self.status[request_id] = RequestStatus.FULFILLED

    def rule_fulfil_batch(self, st_batch):
        chosen = self._pending()[:st_batch]
        if not chosen:
            return
        items = [(rid, self.requests[rid][0].as_tuple(), COMMITMENT, RESULT_CID) for rid in chosen]
        self.market.fulfilBatch(items, {"from": self.node})
        for request_id in chosen:
            request, made = self.requests[request_id]
            if self.day != made:
                continue  # skipped: past its deadline
            if self._fulfillable(request_id):
                self.status[request_id] = RequestStatus.FULFILLED
            else:
                self.status[request_id] = RequestStatus.FAILED

    def rule_report_failure(self, st_index, st_reason):
        request_id = self._pick(self._pending(), st_index)
        if request_id is None:
            return
        request, _ = self.requests[request_id]
        self.market.reportFailure(request_id, request.as_tuple(), st_reason, {"from": self.node})
        self.status[request_id] = RequestStatus.FAILED

    def rule_cancel(self, st_index):
        request_id = self._pick(self._pending(), st_index)
        if request_id is None:
            return
        request, made = self.requests[request_id]
        doctor = next(d for d in self.doctors if d.address == request.requester)
        allowed = self.day > made or not self._consented(request.record_id, doctor)
        try:
            self.market.cancel(request_id, request.as_tuple(), {"from": doctor})
        except VirtualMachineError as error:
            assert not allowed, f"cancel refused: {error.revert_msg}"
            assert error.revert_msg.startswith("NotCancellable")
            return
        assert allowed, "cancelled before the deadline while consent held"
        self.status[request_id] = RequestStatus.CANCELLED

    def rule_withdraw_earnings(self):
        if self.market.nodeAccount(self.node)[0] > 0:
            self.market.withdrawNodeEarnings(self.node, {"from": self.node})

    def rule_next_day(self):
        chain.sleep(DAY)
        chain.mine()
        self.day += 1

    # ------------------------------------------------------------ invariants

    def invariant_escrow_covers_open_requests_and_earnings(self):
        open_escrow = sum(self.requests[r][0].total for r in self._pending())
        earnings = self.market.nodeAccount(self.node)[0]
        assert self.token.balanceOf(self.market) == open_escrow + earnings

    def invariant_no_token_created_or_lost(self):
        assert sum(self.token.balanceOf(a) for a in self.watched) == self.supply

    def invariant_request_states_match(self):
        for request_id, expected in self.status.items():
            assert self.market.getRequestState(request_id)[1] == expected, f"request {request_id}"

    def invariant_consent_matches(self):
        for record in self.records:
            for doctor in self.doctors:
                assert self.consents.hasConsent(record, doctor, Purpose.DIAGNOSIS) == self._consented(record, doctor)


def test_market_state_machine(state_machine, token, consents, market, nodes, models, provider, active_node, doctor,
                              doctor2, patient, patient2, model_id):
    watched = [doctor, doctor2, patient, patient2, provider, active_node, market, nodes]
    state_machine(
        MarketMachine, token, consents, market, active_node, [doctor, doctor2], [patient, patient2], model_id,
        watched,
        settings={
            "stateful_step_count": STEPS,
            "max_examples": EXAMPLES,
            # Health checks about generation speed and size, not about the contracts: a run of 30
            # chain transactions per example is slow and large by Hypothesis' standards.
            "suppress_health_check": [HealthCheck.data_too_large, HealthCheck.too_slow],
        },
    )
