"""Hostile actors: every attack the issue lists fails, and no AID moves to the attacker.

One test (or one group of variants) per attack:

1. a node that is not the assigned one fulfils:
   test_attack1_other_node_cannot_fulfil,
   test_attack1_other_node_cannot_fulfil_in_a_batch,
   test_attack1_other_node_cannot_rewrite_the_terms_to_name_itself
2. an unregistered address fulfils:
   test_attack2_unregistered_address_cannot_fulfil,
   test_attack2_unregistered_address_cannot_be_assigned_a_request,
   test_attack2_node_that_left_the_registry_cannot_fulfil (XFAIL, a real bug: see its docstring)
3. a fulfilment is made twice:
   test_attack3_second_fulfil_reverts,
   test_attack3_batch_after_fulfil_is_skipped,
   test_attack3_same_request_twice_in_one_batch_pays_once
4. a fulfilment comes after a cancel:
   test_attack4_fulfil_after_cancel_on_timeout_reverts,
   test_attack4_fulfil_after_cancel_on_revocation_reverts_even_if_consent_returns,
   test_attack4_batch_after_cancel_is_skipped
5. a signed consent is replayed:
   test_attack5_signed_grant_replayed_after_use,
   test_attack5_unused_signed_grant_dies_with_revocation,
   test_attack5_unused_signed_grant_dies_with_nonce_advance,
   test_attack5_signed_revocation_replayed_after_regrant,
   test_attack5_signed_grant_moved_to_other_terms
6. a request is made under an expired or revoked consent:
   test_attack6_request_under_expired_consent,
   test_attack6_request_under_revoked_consent (on-chain and signed revocation),
   test_attack6_request_under_retired_record,
   test_attack6_request_under_consent_lapsing_before_the_deadline,
   test_attack6_fulfil_after_consent_lapses_mid_request,
   test_attack6_fulfil_after_consent_revoked_mid_request
7. a rating comes from someone without a fulfilled request:
   test_attack7_stranger_cannot_rate_another_requesters_fulfilment,
   test_attack7_requester_cannot_rate_an_unfulfilled_request,
   test_attack7_nobody_rates_at_the_registry_directly,
   test_attack7_second_rating_is_refused
8. a non-auditor suspends a model:
   test_attack8_non_auditors_cannot_suspend,
   test_attack8_non_auditors_cannot_reinstate
9. a front-running race between cancel and fulfil (both in one block, both orders):
   test_attack9_race_cancel_vs_fulfil_after_revocation,
   test_attack9_race_cancel_vs_fulfil_at_the_deadline,
   test_attack9_race_cancel_vs_fulfil_batch_after_revocation,
   test_attack9_race_revocation_cancel_and_fulfil_in_one_block

Every test checks the exact custom error (or, where fulfilBatch skips instead of reverting, the
FulfilmentSkipped event), that the attacker got no AID and no node earnings, and that the books
balance: AID is conserved among the parties, the market holds exactly the open escrow plus the
nodes' unwithdrawn fees, and a request is either refunded once or paid once, never both.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import pytest
from brownie import chain, web3

from aidoc.constants import FailureReason, ModelStatus, Purpose, RequestStatus
from aidoc.signing import sign_consent_grant, sign_consent_revocation
from conftest import (
    COMMITMENT,
    DAY,
    REQUEST_TIMEOUT,
    RESULT_CID,
    RESULT_KEY,
    TOTAL,
    UNBONDING_DELAY,
    _as_revert_argument,
    event_args,
    grant,
    make_request,
    now,
    plain,
    register_node,
    register_record,
    reverts_with,
)

# What the books may show for one request after an attack, relative to just before it.
NOTHING_MOVED = "nothing moved"
REFUNDED = "refunded"
PAID = "paid"

GWEI = 10**9
RACE_GAS = 500_000  # each race transaction's gas limit: no estimate against a mempool in flux


class Books:
    """AID balances of a request's parties, of the market and of the would-be attackers, and the
    node earnings the market holds for each of them, read when made. assert_outcome() checks what
    moved since, to the wei."""

    def __init__(self, token, market, request_id, request, *attackers):
        self.token, self.market, self.request_id, self.request = token, market, request_id, request
        self.attackers = [str(a) for a in attackers]
        self.holders = list(dict.fromkeys([request.requester, request.provider, request.data_owner, request.node,
                                           market.address, *self.attackers]))
        self.balances, self.earnings = self._read()

    def _read(self):
        balances = {h: self.token.balanceOf(h) for h in self.holders}
        earnings = {h: self.market.nodeAccount(h)[0] for h in self.holders}
        return balances, earnings

    def status(self, request_id=None) -> int:
        return self.market.getRequestState(self.request_id if request_id is None else request_id)[1]

    def assert_outcome(self, outcome: str, other_escrow: int = 0):
        """`outcome` happened to the request since the books were read, and nothing else moved.
        other_escrow: what the market holds for other open requests."""
        r = self.request
        moved, earned = defaultdict(int), defaultdict(int)
        if outcome == REFUNDED:
            moved[r.requester] += r.total
            moved[self.market.address] -= r.total
        elif outcome == PAID:
            moved[r.provider] += r.model_fee
            moved[r.data_owner] += r.royalty
            moved[self.market.address] -= r.model_fee + r.royalty
            earned[r.node] += r.node_fee
        else:
            assert outcome == NOTHING_MOVED, outcome
        balances, earnings = self._read()
        assert {h: balances[h] - self.balances[h] for h in self.holders} == {h: moved[h] for h in self.holders}
        assert {h: earnings[h] - self.earnings[h] for h in self.holders} == {h: earned[h] for h in self.holders}
        # No AID created or lost among the parties.
        assert sum(balances.values()) == sum(self.balances.values())
        # The attackers got nothing: no AID, and no node fees to withdraw later.
        for attacker in self.attackers:
            assert balances[attacker] == self.balances[attacker] and earnings[attacker] == self.earnings[attacker]
        # The market holds exactly the open escrows plus the unwithdrawn node fees.
        open_escrow = r.total if self.status() == RequestStatus.PENDING else 0
        assert balances[self.market.address] == open_escrow + other_escrow + sum(earnings.values())


def books_for(token, market, pending, *attackers) -> Books:
    """Books of a (request id, terms, transaction) triple as make_request returns it."""
    request_id, request, _ = pending
    return Books(token, market, request_id, request, *attackers)


def item(request_id, request):
    """One fulfilBatch entry."""
    return (request_id, request.as_tuple(), COMMITMENT, RESULT_CID)


def assert_no_escrow(token, market, requester, requester_before):
    assert token.balanceOf(requester) == requester_before
    assert token.balanceOf(market) == 0 and market.requestCount() == 0


# ---------------------------------------------------------------- 1. not the assigned node


def test_attack1_other_node_cannot_fulfil(token, market, nodes, pending, node2):
    request_id, request, _ = pending
    register_node(token, nodes, node2)  # a real, staked, active node, just not this request's
    books = books_for(token, market, pending, node2)
    with reverts_with("NotAssignedNode", request_id, node2.address):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node2})
    # Nor can it end the request some other way (a refund by a rival node is griefing).
    with reverts_with("NotAssignedNode", request_id, node2.address):
        market.reportFailure(request_id, request.as_tuple(), FailureReason.MODEL_ERROR, {"from": node2})
    assert books.status(request_id) == RequestStatus.PENDING
    books.assert_outcome(NOTHING_MOVED)


def test_attack1_other_node_cannot_fulfil_in_a_batch(token, market, nodes, consented, model_id, active_node, doctor,
                                                     node2):
    register_node(token, nodes, node2)
    victim = make_request(token, market, doctor, consented, model_id, active_node)
    own_id, own, _ = make_request(token, market, doctor, consented, model_id, node2)
    books = books_for(token, market, victim, node2)
    # Alone or hidden among its own requests, the whole batch reverts: no skip, no partial payment.
    for batch in ([item(*victim[:2])], [item(own_id, own), item(*victim[:2])]):
        with reverts_with("NotAssignedNode", victim[0], node2.address):
            market.fulfilBatch(batch, {"from": node2})
    assert books.status(victim[0]) == books.status(own_id) == RequestStatus.PENDING
    books.assert_outcome(NOTHING_MOVED, other_escrow=own.total)


def test_attack1_other_node_cannot_rewrite_the_terms_to_name_itself(token, market, nodes, pending, node2):
    request_id, request, _ = pending
    register_node(token, nodes, node2)
    forged = request.as_tuple()[:1] + (node2.address,) + request.as_tuple()[2:]
    books = books_for(token, market, pending, node2)
    with reverts_with("RequestMismatch", request_id):
        market.fulfil(request_id, forged, COMMITMENT, RESULT_CID, {"from": node2})
    with reverts_with("RequestMismatch", request_id):
        market.fulfilBatch([(request_id, forged, COMMITMENT, RESULT_CID)], {"from": node2})
    books.assert_outcome(NOTHING_MOVED)


# ---------------------------------------------------------------- 2. unregistered address


def test_attack2_unregistered_address_cannot_fulfil(token, market, nodes, pending, stranger):
    request_id, request, _ = pending
    assert plain(nodes.getNode(stranger))[5] is False  # never registered
    forged = request.as_tuple()[:1] + (stranger.address,) + request.as_tuple()[2:]
    books = books_for(token, market, pending, stranger)
    with reverts_with("NotAssignedNode", request_id, stranger.address):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": stranger})
    with reverts_with("NotAssignedNode", request_id, stranger.address):
        market.fulfilBatch([item(request_id, request)], {"from": stranger})
    with reverts_with("RequestMismatch", request_id):
        market.fulfil(request_id, forged, COMMITMENT, RESULT_CID, {"from": stranger})
    with reverts_with("RequestMismatch", request_id):
        market.fulfilBatch([(request_id, forged, COMMITMENT, RESULT_CID)], {"from": stranger})
    assert books.status(request_id) == RequestStatus.PENDING
    books.assert_outcome(NOTHING_MOVED)


def test_attack2_unregistered_address_cannot_be_assigned_a_request(token, market, doctor, consented, model_id,
                                                                   stranger):
    """The other way in: a requester (or a colluding one) names an unregistered address as node."""
    token.approve(market, TOTAL, {"from": doctor})
    before, stranger_before = token.balanceOf(doctor), token.balanceOf(stranger)
    with reverts_with("NodeNotActive", stranger.address):
        market.requestDiagnosis(consented, model_id, stranger, RESULT_KEY, TOTAL, {"from": doctor})
    assert_no_escrow(token, market, doctor, before)
    assert token.balanceOf(stranger) == stranger_before and market.nodeAccount(stranger)[0] == 0


@pytest.mark.parametrize("entry", ["fulfil", "fulfilBatch"])
def test_attack2_node_that_left_the_registry_cannot_fulfil(token, market, nodes, consents, admin, patient, doctor,
                                                           record_id, model_id, active_node, entry):
    """An unregistered address fulfils: the node that was assigned has since left the NodeRegistry
    (beginUnbonding, withdrawStake), so nothing it does can be slashed any more. Every setting here is
    within the contracts' own bounds. The market refuses to pay a node with no stake left to slash
    (NodeRegistry's NodeNotBonded); the requester cancels after the deadline for a full refund."""
    market.setRequestTimeout(30 * DAY, {"from": admin})
    grant(consents, patient, record_id, doctor, days=40)
    pending = make_request(token, market, doctor, record_id, model_id, active_node)
    request_id, request, _ = pending
    nodes.beginUnbonding({"from": active_node})
    chain.sleep(UNBONDING_DELAY + 1)
    nodes.withdrawStake({"from": active_node})
    assert plain(nodes.getNode(active_node))[5] is False and not nodes.isActive(active_node)
    assert now() < request.deadline  # the request is still open to fulfilment

    books = books_for(token, market, pending)
    with reverts_with("NodeNotBonded", active_node.address):
        if entry == "fulfil":
            market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": active_node})
        else:
            market.fulfilBatch([item(request_id, request)], {"from": active_node})
    books.assert_outcome(NOTHING_MOVED)


@pytest.mark.parametrize("entry", ["fulfil", "fulfilBatch"])
def test_attack2_node_slashed_to_nothing_cannot_fulfil(token, market, nodes, admin, pending, active_node, entry):
    """A node whose whole stake was slashed is still registered, but answers for nothing it delivers."""
    request_id, request, _ = pending
    stake = plain(nodes.getNode(active_node))[0]
    nodes.slash(active_node, stake, admin, "fraud", {"from": admin})
    books = books_for(token, market, pending)
    with reverts_with("NodeNotBonded", active_node.address):
        if entry == "fulfil":
            market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": active_node})
        else:
            market.fulfilBatch([item(request_id, request)], {"from": active_node})
    books.assert_outcome(NOTHING_MOVED)


def test_a_node_still_unbonding_finishes_its_open_requests(token, market, nodes, pending, active_node):
    """Unbonding stops new requests, not the work already taken: the stake is still there to slash."""
    request_id, request, _ = pending
    nodes.beginUnbonding({"from": active_node})
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": active_node})
    assert market.getRequestState(request_id)[1] == RequestStatus.FULFILLED


# ---------------------------------------------------------------- 3. fulfilled twice


def test_attack3_second_fulfil_reverts(token, market, pending, node, doctor):
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    with reverts_with("RequestNotPending", request_id, RequestStatus.FULFILLED):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    # Nor can the request be settled a second time the other way, refunding what was paid.
    with reverts_with("RequestNotPending", request_id, RequestStatus.FULFILLED):
        market.reportFailure(request_id, request.as_tuple(), FailureReason.MODEL_ERROR, {"from": node})
    chain.sleep(REQUEST_TIMEOUT + 1)
    with reverts_with("RequestNotPending", request_id, RequestStatus.FULFILLED):
        market.cancel(request_id, request.as_tuple(), {"from": doctor})
    books.assert_outcome(PAID)


def test_attack3_batch_after_fulfil_is_skipped(token, market, nodes, pending, node):
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    tx = market.fulfilBatch([item(request_id, request)], {"from": node})
    assert event_args(tx, "FulfilmentSkipped") == {"requestId": request_id, "status": RequestStatus.FULFILLED}
    assert "DiagnosisFulfilled" not in tx.events and "Transfer" not in tx.events
    books.assert_outcome(PAID)
    assert nodes.reputationOf(node)[0] == 1  # counted once too


def test_attack3_same_request_twice_in_one_batch_pays_once(token, market, nodes, pending, node):
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    tx = market.fulfilBatch([item(request_id, request), item(request_id, request)], {"from": node})
    assert len(tx.events["DiagnosisFulfilled"]) == 1
    assert event_args(tx, "FulfilmentSkipped") == {"requestId": request_id, "status": RequestStatus.FULFILLED}
    books.assert_outcome(PAID)
    assert nodes.reputationOf(node)[0] == 1


# ---------------------------------------------------------------- 4. fulfilled after a cancel


def test_attack4_fulfil_after_cancel_on_timeout_reverts(token, market, pending, doctor, node):
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    chain.sleep(REQUEST_TIMEOUT + 1)
    market.cancel(request_id, request.as_tuple(), {"from": doctor})
    with reverts_with("RequestNotPending", request_id, RequestStatus.CANCELLED):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    # No second refund either, by the node or by the requester.
    with reverts_with("RequestNotPending", request_id, RequestStatus.CANCELLED):
        market.reportFailure(request_id, request.as_tuple(), FailureReason.MODEL_ERROR, {"from": node})
    with reverts_with("RequestNotPending", request_id, RequestStatus.CANCELLED):
        market.cancel(request_id, request.as_tuple(), {"from": doctor})
    books.assert_outcome(REFUNDED)


def test_attack4_fulfil_after_cancel_on_revocation_reverts_even_if_consent_returns(token, market, consents, pending,
                                                                                  patient, doctor, node):
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    consents.revokeConsent(request.record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    market.cancel(request_id, request.as_tuple(), {"from": doctor})
    grant(consents, patient, request.record_id, doctor)  # consent back, before the deadline
    with reverts_with("RequestNotPending", request_id, RequestStatus.CANCELLED):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    books.assert_outcome(REFUNDED)


def test_attack4_batch_after_cancel_is_skipped(token, market, consents, pending, patient, doctor, node):
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    consents.revokeConsent(request.record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    market.cancel(request_id, request.as_tuple(), {"from": doctor})
    grant(consents, patient, request.record_id, doctor)
    tx = market.fulfilBatch([item(request_id, request)], {"from": node})
    assert event_args(tx, "FulfilmentSkipped") == {"requestId": request_id, "status": RequestStatus.CANCELLED}
    assert "DiagnosisFulfilled" not in tx.events and "DiagnosisFailed" not in tx.events
    assert "Transfer" not in tx.events
    books.assert_outcome(REFUNDED)


# ---------------------------------------------------------------- 5. signed consent replayed


def _grant_signature(consents, owner, record_id, grantee, expiry, deadline, purposes=Purpose.DIAGNOSIS):
    """The owner's EIP-712 grant at its current nonce."""
    return sign_consent_grant(
        owner.private_key, chain_id=chain.id, registry=consents.address, record_id=record_id, grantee=grantee.address,
        purposes=purposes, expiry=expiry, nonce=consents.nonces(owner), deadline=deadline,
    ).signature


def _assert_cannot_request(token, market, doctor, record_id, model_id, node):
    """The point of a replayed consent: a request. It is refused and escrows nothing."""
    token.approve(market, TOTAL, {"from": doctor})
    before = token.balanceOf(doctor)
    with reverts_with("ConsentMissing", record_id, doctor.address, Purpose.DIAGNOSIS):
        market.requestDiagnosis(record_id, model_id, node, RESULT_KEY, TOTAL, {"from": doctor})
    assert_no_escrow(token, market, doctor, before)


def test_attack5_signed_grant_replayed_after_use(token, market, consents, patient, record_id, doctor, stranger,
                                                 model_id, active_node):
    expiry, deadline = now() + 30 * DAY, now() + 30 * DAY
    signature = _grant_signature(consents, patient, record_id, doctor, expiry, deadline)
    consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, signature, {"from": stranger})
    # Replayed while the grant stands: refused (it would let a relayer re-impose it at will).
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, signature,
                                   {"from": stranger})
    # Replayed after the patient revoked: refused, and the revocation stands.
    consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, signature,
                                   {"from": doctor})
    assert not consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    _assert_cannot_request(token, market, doctor, record_id, model_id, active_node)


def test_attack5_unused_signed_grant_dies_with_revocation(token, market, consents, patient, record_id, doctor,
                                                          model_id, active_node):
    """A grant signed but never relayed, then an on-chain grant and revocation: the stale signature
    must not bring the consent back."""
    expiry, deadline = now() + 30 * DAY, now() + 30 * DAY
    signature = _grant_signature(consents, patient, record_id, doctor, expiry, deadline)
    grant(consents, patient, record_id, doctor)
    consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, signature,
                                   {"from": doctor})
    _assert_cannot_request(token, market, doctor, record_id, model_id, active_node)


def test_attack5_unused_signed_grant_dies_with_nonce_advance(token, market, consents, patient, record_id, doctor,
                                                             model_id, active_node):
    expiry, deadline = now() + 30 * DAY, now() + 30 * DAY
    signature = _grant_signature(consents, patient, record_id, doctor, expiry, deadline)
    consents.invalidateSignatures({"from": patient})
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, signature,
                                   {"from": doctor})
    _assert_cannot_request(token, market, doctor, record_id, model_id, active_node)


def test_attack5_signed_revocation_replayed_after_regrant(token, market, consents, patient, record_id, doctor,
                                                          stranger, model_id, active_node):
    """Griefing: a third party replays the patient's old signed revocation to kill a newer grant."""
    grant(consents, patient, record_id, doctor)
    deadline = now() + 30 * DAY
    signature = sign_consent_revocation(
        patient.private_key, chain_id=chain.id, registry=consents.address, record_id=record_id,
        grantee=doctor.address, purposes=Purpose.DIAGNOSIS, nonce=consents.nonces(patient), deadline=deadline,
    ).signature
    consents.revokeConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, deadline, signature, {"from": stranger})
    grant(consents, patient, record_id, doctor)
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.revokeConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, deadline, signature, {"from": stranger})
    assert consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    # The newer grant still works: a request goes through and escrows exactly its total.
    make_request(token, market, doctor, record_id, model_id, active_node)
    assert token.balanceOf(market) == TOTAL and token.balanceOf(stranger) == 0


def test_attack5_signed_grant_moved_to_other_terms(token, market, consents, patient, record_id, doctor, stranger,
                                                   model_id, active_node):
    """One signature, replayed for another record of the same owner, another grantee, or a wider
    purpose: refused each time (the nonce is still unused, only the terms differ)."""
    other_record = register_record(consents, patient)
    expiry, deadline = now() + 30 * DAY, now() + 30 * DAY
    signature = _grant_signature(consents, patient, record_id, doctor, expiry, deadline)
    for wrong_record, grantee, purposes in ((other_record, doctor, Purpose.DIAGNOSIS),
                                            (record_id, stranger, Purpose.DIAGNOSIS),
                                            (record_id, doctor, Purpose.DIAGNOSIS | Purpose.RESEARCH)):
        with reverts_with("InvalidConsentSignature", wrong_record, patient.address):
            consents.grantConsentBySig(wrong_record, grantee, purposes, expiry, deadline, signature,
                                       {"from": stranger})
    assert consents.nonces(patient) == 0
    for rec in (record_id, other_record):
        _assert_cannot_request(token, market, doctor, rec, model_id, active_node)


# ---------------------------------------------------------------- 6. expired or revoked consent


def test_attack6_request_under_expired_consent(token, market, consents, patient, record_id, doctor, model_id,
                                               active_node):
    tx = grant(consents, patient, record_id, doctor, days=1)
    expiry = event_args(tx, "ConsentGranted")["expiry"]
    chain.sleep(DAY + 1)
    token.approve(market, TOTAL, {"from": doctor})
    before = token.balanceOf(doctor)
    with reverts_with("ConsentExpired", record_id, doctor.address, expiry):
        market.requestDiagnosis(record_id, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    assert_no_escrow(token, market, doctor, before)


@pytest.mark.parametrize("how", ["on-chain", "by-signature"])
def test_attack6_request_under_revoked_consent(token, market, consents, patient, record_id, doctor, stranger,
                                               model_id, active_node, how):
    # Diagnosis revoked, research kept: the remaining purpose does not let a diagnosis through.
    grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS | Purpose.RESEARCH)
    if how == "on-chain":
        consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    else:
        deadline = now() + 600
        signature = sign_consent_revocation(
            patient.private_key, chain_id=chain.id, registry=consents.address, record_id=record_id,
            grantee=doctor.address, purposes=Purpose.DIAGNOSIS, nonce=consents.nonces(patient), deadline=deadline,
        ).signature
        consents.revokeConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, deadline, signature, {"from": stranger})
    assert consents.hasConsent(record_id, doctor, Purpose.RESEARCH)
    _assert_cannot_request(token, market, doctor, record_id, model_id, active_node)


def test_attack6_request_under_retired_record(token, market, consents, patient, consented, doctor, model_id,
                                              active_node):
    consents.retireRecord(consented, {"from": patient})
    token.approve(market, TOTAL, {"from": doctor})
    before = token.balanceOf(doctor)
    with reverts_with("RecordIsRetired", consented):
        market.requestDiagnosis(consented, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    assert_no_escrow(token, market, doctor, before)


def test_attack6_request_under_consent_lapsing_before_the_deadline(token, market, consents, patient, record_id,
                                                                   doctor, model_id, active_node):
    expiry = now() + REQUEST_TIMEOUT // 2
    consents.grantConsent(record_id, doctor, Purpose.DIAGNOSIS, expiry, {"from": patient})
    token.approve(market, TOTAL, {"from": doctor})
    before = token.balanceOf(doctor)
    with reverts_with("ConsentExpiresBeforeDeadline"):
        market.requestDiagnosis(record_id, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    assert_no_escrow(token, market, doctor, before)


def test_attack6_fulfil_after_consent_lapses_mid_request(token, market, consents, pending, patient, doctor, node):
    """The patient shortens the consent (a re-grant replaces the old one); once it lapses, the
    pending request can no longer be fulfilled, only refunded."""
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    consents.grantConsent(request.record_id, doctor, Purpose.DIAGNOSIS, now() + 600, {"from": patient})
    chain.sleep(601)
    assert now() < request.deadline
    with reverts_with("ConsentMissing", request.record_id, doctor.address, Purpose.DIAGNOSIS):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    market.cancel(request_id, request.as_tuple(), {"from": doctor})
    books.assert_outcome(REFUNDED)


@pytest.mark.parametrize("entry", ["fulfil", "fulfilBatch"])
def test_attack6_fulfil_after_consent_revoked_mid_request(token, market, consents, pending, patient, doctor, node,
                                                          entry):
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    consents.revokeConsent(request.record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    if entry == "fulfil":
        with reverts_with("ConsentMissing", request.record_id, doctor.address, Purpose.DIAGNOSIS):
            market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
        market.cancel(request_id, request.as_tuple(), {"from": doctor})
    else:
        # fulfilBatch neither reverts nor pays: it fails the request and refunds it.
        tx = market.fulfilBatch([item(request_id, request)], {"from": node})
        assert event_args(tx, "DiagnosisFailed") == {"requestId": request_id, "node": node.address,
                                                    "reason": FailureReason.CONSENT_REVOKED}
        assert "DiagnosisFulfilled" not in tx.events and "RecordAccessed" not in tx.events
    books.assert_outcome(REFUNDED)


# ---------------------------------------------------------------- 7. rating without a fulfilled request


def test_attack7_stranger_cannot_rate_another_requesters_fulfilment(token, market, models, pending, node, stranger):
    request_id, request, _ = pending
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    books = books_for(token, market, pending, stranger)
    with reverts_with("NotRequester", request_id, stranger.address):
        market.rateModel(request_id, request.as_tuple(), 1, {"from": stranger})
    # Terms rewritten to name the stranger as requester do not match the stored digest.
    forged = (stranger.address,) + request.as_tuple()[1:]
    with reverts_with("RequestMismatch", request_id):
        market.rateModel(request_id, forged, 1, {"from": stranger})
    assert plain(models.ratingOf(request.model_id)) == (0, 0)
    assert market.getRequestState(request_id)[2] is False  # the requester can still rate
    books.assert_outcome(NOTHING_MOVED)


def test_attack7_requester_cannot_rate_an_unfulfilled_request(token, market, models, consented, model_id,
                                                              active_node, doctor):
    pending_id, pending_req, _ = make_request(token, market, doctor, consented, model_id, active_node)
    failed_id, failed_req, _ = make_request(token, market, doctor, consented, model_id, active_node)
    cancelled_id, cancelled_req, _ = make_request(token, market, doctor, consented, model_id, active_node)
    market.reportFailure(failed_id, failed_req.as_tuple(), FailureReason.MODEL_ERROR, {"from": active_node})
    chain.sleep(REQUEST_TIMEOUT + 1)
    market.cancel(cancelled_id, cancelled_req.as_tuple(), {"from": doctor})
    books = Books(token, market, pending_id, pending_req)
    for request_id, request, state in ((pending_id, pending_req, RequestStatus.PENDING),
                                       (failed_id, failed_req, RequestStatus.FAILED),
                                       (cancelled_id, cancelled_req, RequestStatus.CANCELLED),
                                       (999, pending_req, RequestStatus.NONE)):
        with reverts_with("RequestNotFulfilled", request_id, state):
            market.rateModel(request_id, request.as_tuple(), 5, {"from": doctor})
    assert plain(models.ratingOf(model_id)) == (0, 0)
    books.assert_outcome(NOTHING_MOVED)


def test_attack7_nobody_rates_at_the_registry_directly(token, market, models, pending, doctor, provider, stranger):
    request_id, request, _ = pending
    books = books_for(token, market, pending, stranger)
    for rater in (stranger, doctor, provider):
        with reverts_with("AccessControlUnauthorizedAccount", rater.address, models.RATER_ROLE()):
            models.recordRating(request.model_id, rater, 5, {"from": rater})
    assert plain(models.ratingOf(request.model_id)) == (0, 0)
    books.assert_outcome(NOTHING_MOVED)


def test_attack7_second_rating_is_refused(token, market, models, pending, doctor, node):
    request_id, request, _ = pending
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    market.rateModel(request_id, request.as_tuple(), 5, {"from": doctor})
    books = books_for(token, market, pending)
    with reverts_with("AlreadyRated", request_id):
        market.rateModel(request_id, request.as_tuple(), 5, {"from": doctor})
    assert plain(models.ratingOf(request.model_id)) == (5, 1)
    books.assert_outcome(NOTHING_MOVED)


# ---------------------------------------------------------------- 8. non-auditor suspends


def test_attack8_non_auditors_cannot_suspend(token, market, models, model_id, admin, provider, doctor, node,
                                             stranger, consented, active_node):
    # A rival provider (stranger), the model's own provider, a doctor, a node, and the admin, who
    # can grant the auditor role but does not hold it.
    rival = stranger
    for caller in (rival, provider, doctor, node, admin):
        with reverts_with("AccessControlUnauthorizedAccount", caller.address, models.AUDITOR_ROLE()):
            models.suspend(model_id, "unsafe", {"from": caller})
    assert models.getModel(model_id)[3] == ModelStatus.ACTIVE
    # Business as usual: the model still takes requests, and the rival got nothing.
    before = token.balanceOf(rival)
    make_request(token, market, doctor, consented, model_id, active_node)
    assert token.balanceOf(market) == TOTAL and token.balanceOf(rival) == before


def test_attack8_non_auditors_cannot_reinstate(token, market, models, model_id, auditor, admin, provider, doctor,
                                               consented, active_node):
    models.suspend(model_id, "miscalibrated", {"from": auditor})
    for caller in (provider, doctor, admin):
        with reverts_with("AccessControlUnauthorizedAccount", caller.address, models.AUDITOR_ROLE()):
            models.reinstate(model_id, "fine now", {"from": caller})
    assert models.getModel(model_id)[3] == ModelStatus.SUSPENDED
    token.approve(market, TOTAL, {"from": doctor})
    before = token.balanceOf(doctor)
    with reverts_with("ModelNotActive", model_id, ModelStatus.SUSPENDED):
        market.requestDiagnosis(consented, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    assert_no_escrow(token, market, doctor, before)


# ---------------------------------------------------------------- 9. cancel and fulfil in one block


def _rpc(method, params=()):
    response = web3.provider.make_request(method, list(params))
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response.get("result")


@contextmanager
def _manual_mining():
    """Automine off; on the way out, whatever happened, the mempool is mined empty (nothing is
    left to land in a later test) and automine is back on."""
    _rpc("evm_setAutomine", [False])
    try:
        yield
    finally:
        try:
            pending = _rpc("txpool_status")["pending"]
            if (int(pending, 16) if isinstance(pending, str) else pending) > 0:
                _rpc("evm_mine")
        finally:
            _rpc("evm_setAutomine", [True])


def _send(contract, function, args, sender, gas_price) -> bytes:
    """Sends contract.function(*args) from `sender` without waiting for it to be mined. Plain
    web3, not Brownie: a Brownie receipt made for a pending transaction keeps a thread polling
    for it, which outlives the test once the snapshot is reverted."""
    tx = {
        "from": sender.address, "to": contract.address, "value": 0, "gas": RACE_GAS, "gasPrice": gas_price,
        "data": getattr(contract, function).encode_input(*args),
        "nonce": web3.eth.get_transaction_count(sender.address), "chainId": chain.id,
    }
    if getattr(sender, "private_key", None):  # a local key (the patients): sign here
        signed = web3.eth.account.sign_transaction({k: v for k, v in tx.items() if k != "from"}, sender.private_key)
        return bytes(web3.eth.send_raw_transaction(signed.raw_transaction))
    return bytes(web3.eth.send_transaction(tx))


def _same_block(sends, timestamp=None):
    """Sends each (contract, function name, args, sender) without waiting for it, then mines them
    all into one block (at `timestamp`, if given), in the order given: anvil orders its mempool by
    fees, so the earlier a transaction in the list, the higher its gas price. Returns the receipts."""
    base_fee = chain[-1].get("baseFeePerGas", 0) or 0
    with _manual_mining():
        hashes = [_send(contract, function, args, sender, 2 * base_fee + (len(sends) - position) * GWEI)
                  for position, (contract, function, args, sender) in enumerate(sends)]
        if timestamp is not None:
            _rpc("evm_setNextBlockTimestamp", [timestamp])
        _rpc("evm_mine")
    txs = [chain.get_transaction(h) for h in hashes]
    assert len({tx.block_number for tx in txs}) == 1, "the transactions did not share a block"
    assert [tx.txindex for tx in txs] == list(range(len(txs))), "the block did not keep the intended order"
    return txs


def _assert_reverted_with(tx, error, *args):
    """A mined receipt reverted with exactly this custom error and arguments (conftest.reverts_with,
    for a receipt that was sent without waiting)."""
    assert tx.status == 0, f"{tx.fn_name} succeeded; expected {error}"
    name, _, rest = (tx.revert_msg or "").partition(":")
    assert name == error, f"expected {error}, got revert {tx.revert_msg!r}"
    assert rest.strip() == ", ".join(_as_revert_argument(a) for a in args)


def _settlements(txs, request_id) -> list[str]:
    """The events that ended the request, across the successful transactions."""
    ended = []
    for tx in txs:
        for name in ("DiagnosisFulfilled", "DiagnosisFailed", "DiagnosisCancelled"):
            if tx.status == 1 and name in tx.events:
                ended += [name for event in tx.events[name] if event["requestId"] == request_id]
    return ended


@pytest.mark.parametrize("cancel_first", [True, False], ids=["cancel-first", "fulfil-first"])
def test_attack9_race_cancel_vs_fulfil_after_revocation(token, market, consents, pending, patient, doctor, node,
                                                        cancel_first):
    """The patient has revoked; the requester cancels while the node's fulfilment is in flight.
    Whatever the order in the block, the requester is refunded once and nobody is paid."""
    request_id, request, _ = pending
    consents.revokeConsent(request.record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    books = books_for(token, market, pending)
    cancel = (market, "cancel", (request_id, request.as_tuple()), doctor)
    fulfil = (market, "fulfil", (request_id, request.as_tuple(), COMMITMENT, RESULT_CID), node)
    txs = _same_block([cancel, fulfil] if cancel_first else [fulfil, cancel])
    cancel_tx, fulfil_tx = txs if cancel_first else txs[::-1]

    assert [tx.status for tx in txs].count(1) == 1
    assert cancel_tx.status == 1
    if cancel_first:
        _assert_reverted_with(fulfil_tx, "RequestNotPending", request_id, RequestStatus.CANCELLED)
    else:
        _assert_reverted_with(fulfil_tx, "ConsentMissing", request.record_id, doctor.address, Purpose.DIAGNOSIS)
    assert _settlements(txs, request_id) == ["DiagnosisCancelled"]
    assert books.status(request_id) == RequestStatus.CANCELLED
    books.assert_outcome(REFUNDED)


@pytest.mark.parametrize("cancel_first", [True, False], ids=["cancel-first", "fulfil-first"])
@pytest.mark.parametrize("late", [0, 1], ids=["at-deadline", "second-after-deadline"])
def test_attack9_race_cancel_vs_fulfil_at_the_deadline(token, market, nodes, pending, doctor, node, cancel_first,
                                                       late):
    """Cancel (for the timeout) and fulfil in the block at the deadline or one second after: the
    block's timestamp alone decides, never the order, and exactly one of them goes through."""
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    cancel = (market, "cancel", (request_id, request.as_tuple()), doctor)
    fulfil = (market, "fulfil", (request_id, request.as_tuple(), COMMITMENT, RESULT_CID), node)
    txs = _same_block([cancel, fulfil] if cancel_first else [fulfil, cancel], timestamp=request.deadline + late)
    cancel_tx, fulfil_tx = txs if cancel_first else txs[::-1]
    assert chain[-1].timestamp == request.deadline + late

    assert [tx.status for tx in txs].count(1) == 1
    if late:
        assert cancel_tx.status == 1
        if cancel_first:
            _assert_reverted_with(fulfil_tx, "RequestNotPending", request_id, RequestStatus.CANCELLED)
        else:
            _assert_reverted_with(fulfil_tx, "DeadlinePassed", request_id, request.deadline)
        assert _settlements(txs, request_id) == ["DiagnosisCancelled"]
        books.assert_outcome(REFUNDED)
        assert nodes.reputationOf(node)[2] == 1  # the timeout counts against the node
    else:
        assert fulfil_tx.status == 1
        if cancel_first:
            _assert_reverted_with(cancel_tx, "NotCancellable", request_id, request.deadline)
        else:
            _assert_reverted_with(cancel_tx, "RequestNotPending", request_id, RequestStatus.FULFILLED)
        assert _settlements(txs, request_id) == ["DiagnosisFulfilled"]
        books.assert_outcome(PAID)
        assert nodes.reputationOf(node)[2] == 0


@pytest.mark.parametrize("cancel_first", [True, False], ids=["cancel-first", "batch-first"])
def test_attack9_race_cancel_vs_fulfil_batch_after_revocation(token, market, consents, pending, patient, doctor,
                                                              node, cancel_first):
    """As above with the node's fulfilBatch, which skips a lost race instead of reverting."""
    request_id, request, _ = pending
    consents.revokeConsent(request.record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    books = books_for(token, market, pending)
    cancel = (market, "cancel", (request_id, request.as_tuple()), doctor)
    batch = (market, "fulfilBatch", ([item(request_id, request)],), node)
    txs = _same_block([cancel, batch] if cancel_first else [batch, cancel])
    cancel_tx, batch_tx = txs if cancel_first else txs[::-1]

    assert batch_tx.status == 1  # a batch never reverts for a lost race
    if cancel_first:
        assert cancel_tx.status == 1
        assert event_args(batch_tx, "FulfilmentSkipped") == {"requestId": request_id,
                                                             "status": RequestStatus.CANCELLED}
        assert _settlements(txs, request_id) == ["DiagnosisCancelled"]
        assert books.status(request_id) == RequestStatus.CANCELLED
    else:
        # The batch got there first and, consent being gone, refunded the request itself.
        _assert_reverted_with(cancel_tx, "RequestNotPending", request_id, RequestStatus.FAILED)
        assert event_args(batch_tx, "DiagnosisFailed") == {"requestId": request_id, "node": node.address,
                                                          "reason": FailureReason.CONSENT_REVOKED}
        assert _settlements(txs, request_id) == ["DiagnosisFailed"]
        assert books.status(request_id) == RequestStatus.FAILED
    assert "DiagnosisFulfilled" not in batch_tx.events
    books.assert_outcome(REFUNDED)


@pytest.mark.parametrize("order", [("fulfil", "revoke", "cancel"), ("revoke", "cancel", "fulfil"),
                                   ("revoke", "fulfil", "cancel")], ids="-".join)
def test_attack9_race_revocation_cancel_and_fulfil_in_one_block(token, market, consents, pending, patient, doctor,
                                                                node, order):
    """The front-run the interface warns about: the patient's revocation and the requester's cancel
    race the node's fulfilment into the same block. Whoever is first, one settlement only."""
    request_id, request, _ = pending
    books = books_for(token, market, pending)
    sends = {
        "revoke": (consents, "revokeConsent", (request.record_id, doctor, Purpose.DIAGNOSIS), patient),
        "cancel": (market, "cancel", (request_id, request.as_tuple()), doctor),
        "fulfil": (market, "fulfil", (request_id, request.as_tuple(), COMMITMENT, RESULT_CID), node),
    }
    txs = dict(zip(order, _same_block([sends[name] for name in order])))

    assert txs["revoke"].status == 1
    assert [txs["cancel"].status, txs["fulfil"].status].count(1) == 1
    if order[0] == "fulfil":
        _assert_reverted_with(txs["cancel"], "RequestNotPending", request_id, RequestStatus.FULFILLED)
        assert _settlements(txs.values(), request_id) == ["DiagnosisFulfilled"]
        books.assert_outcome(PAID)
    else:
        if order[1] == "cancel":
            _assert_reverted_with(txs["fulfil"], "RequestNotPending", request_id, RequestStatus.CANCELLED)
        else:
            _assert_reverted_with(txs["fulfil"], "ConsentMissing", request.record_id, doctor.address,
                                  Purpose.DIAGNOSIS)
        assert _settlements(txs.values(), request_id) == ["DiagnosisCancelled"]
        books.assert_outcome(REFUNDED)
