"""DiagnosisMarket settlement: fulfil, fulfilBatch, reportFailure, cancel, ratings, node earnings.
Every request ends exactly once, and every ending either pays out or refunds the escrow."""

from brownie import chain

from aidoc.constants import FailureReason, Purpose, RequestStatus
from conftest import (
    COMMITMENT,
    MODEL_PRICE,
    NODE_FEE,
    REQUEST_TIMEOUT,
    RESULT_CID,
    ROYALTY,
    TOTAL,
    event_args,
    grant,
    make_request,
    plain,
    register_node,
    register_record,
    reverts_with,
)


def status(market, request_id) -> int:
    return market.getRequestState(request_id)[1]


# ---------------------------------------------------------------- fulfil


def test_fulfil_pays_provider_and_owner_credits_node_and_logs_access(token, market, nodes, pending, provider, patient,
                                                                     doctor, node):
    request_id, request, _ = pending
    provider_before, patient_before = token.balanceOf(provider), token.balanceOf(patient)
    tx = market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})

    assert status(market, request_id) == RequestStatus.FULFILLED
    assert token.balanceOf(provider) == provider_before + MODEL_PRICE
    assert token.balanceOf(patient) == patient_before + ROYALTY
    assert plain(market.nodeAccount(node)) == (NODE_FEE, 1)
    assert token.balanceOf(market) == NODE_FEE
    assert event_args(tx, "DiagnosisFulfilled") == {
        "requestId": request_id, "resultCommitment": COMMITMENT, "resultCid": RESULT_CID,
    }
    assert event_args(tx, "RecordAccessed") == {
        "recordId": request.record_id, "grantee": doctor.address, "node": node.address,
        "purpose": Purpose.DIAGNOSIS, "requestId": request_id,
    }
    # The single fulfilment reaches the node's reputation with its next sync.
    assert nodes.reputationOf(node)[0] == 0
    sync = market.syncReputation(node, {"from": doctor})
    assert event_args(sync, "ReputationSynced") == {"node": node.address, "fulfilments": 1}
    assert nodes.reputationOf(node)[0] == 1
    assert plain(market.nodeAccount(node)) == (NODE_FEE, 0)


def test_fulfil_only_by_the_assigned_node(token, market, nodes, pending, node2, doctor, stranger):
    request_id, request, _ = pending
    register_node(token, nodes, node2)
    for intruder in (node2, doctor, stranger):
        with reverts_with("NotAssignedNode", request_id, intruder.address):
            market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": intruder})
    assert status(market, request_id) == RequestStatus.PENDING


def test_fulfil_rejects_tampered_terms(market, pending, node):
    request_id, request, _ = pending
    greedy = request.as_tuple()[:8] + (request.node_fee * 100, request.deadline)
    with reverts_with("RequestMismatch", request_id):
        market.fulfil(request_id, greedy, COMMITMENT, RESULT_CID, {"from": node})
    with reverts_with("UnknownRequest", 99):
        market.fulfil(99, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})


def test_fulfil_once_only(market, pending, node):
    request_id, request, _ = pending
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    with reverts_with("RequestNotPending", request_id, RequestStatus.FULFILLED):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})


def test_fulfil_needs_commitment_and_result_cid(market, pending, node):
    request_id, request, _ = pending
    with reverts_with("ZeroResultCommitment", request_id):
        market.fulfil(request_id, request.as_tuple(), "0x" + "00" * 32, RESULT_CID, {"from": node})
    with reverts_with("EmptyResultCid", request_id):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, "", {"from": node})


def test_fulfil_after_deadline_is_refused(market, pending, node):
    request_id, request, _ = pending
    chain.sleep(REQUEST_TIMEOUT + 1)
    with reverts_with("DeadlinePassed", request_id, request.deadline):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})


def test_revoked_consent_blocks_fulfilment_and_refunds_at_once(token, market, consents, pending, patient, doctor,
                                                                node, nodes):
    request_id, request, _ = pending
    consents.revokeConsent(request.record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    with reverts_with("ConsentMissing", request.record_id, doctor.address, Purpose.DIAGNOSIS):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    before = token.balanceOf(doctor)
    tx = market.cancel(request_id, request.as_tuple(), {"from": doctor})
    assert event_args(tx, "DiagnosisCancelled") == {"requestId": request_id, "requester": doctor.address,
                                                   "timedOut": False}
    assert token.balanceOf(doctor) == before + TOTAL
    assert status(market, request_id) == RequestStatus.CANCELLED
    assert plain(nodes.reputationOf(node)) == (0, 0, 0, 0)


# ---------------------------------------------------------------- fulfilBatch


def _batch(token, market, doctor, record_id, model_id, node, count):
    requests = [make_request(token, market, doctor, record_id, model_id, node) for _ in range(count)]
    return [(rid, req) for rid, req, _ in requests]


def _items(requests):
    return [(rid, req.as_tuple(), COMMITMENT, RESULT_CID) for rid, req in requests]


def test_fulfil_batch_settles_every_request(token, market, nodes, consented, model_id, active_node, doctor, provider,
                                            patient):
    requests = _batch(token, market, doctor, consented, model_id, active_node, 5)
    provider_before, patient_before = token.balanceOf(provider), token.balanceOf(patient)
    tx = market.fulfilBatch(_items(requests), {"from": active_node})
    assert [status(market, rid) for rid, _ in requests] == [RequestStatus.FULFILLED] * 5
    assert token.balanceOf(provider) == provider_before + 5 * MODEL_PRICE
    assert token.balanceOf(patient) == patient_before + 5 * ROYALTY
    assert plain(market.nodeAccount(active_node)) == (5 * NODE_FEE, 0)
    assert nodes.reputationOf(active_node)[0] == 5
    assert len(tx.events["DiagnosisFulfilled"]) == 5 and len(tx.events["RecordAccessed"]) == 5
    # Payments to the same payee in a row are summed into one transfer each.
    assert len(tx.events["Transfer"]) == 2
    assert token.balanceOf(market) == 5 * NODE_FEE


def test_fulfil_batch_pays_each_owner_of_mixed_records(token, market, consents, patient, patient2, doctor, model_id,
                                                       active_node):
    second = register_record(consents, patient2)
    grant(consents, patient2, second, doctor)
    first = register_record(consents, patient)
    grant(consents, patient, first, doctor)
    requests = []
    for record in (first, second, first):
        rid, req, _ = make_request(token, market, doctor, record, model_id, active_node)
        requests.append((rid, req))
    before = token.balanceOf(patient), token.balanceOf(patient2)
    market.fulfilBatch(_items(requests), {"from": active_node})
    assert token.balanceOf(patient) == before[0] + 2 * ROYALTY
    assert token.balanceOf(patient2) == before[1] + ROYALTY


def test_fulfil_batch_skips_lost_races_and_refunds_revoked_consent(token, market, consents, patient, doctor, doctor2,
                                                                   model_id, active_node, nodes):
    record = register_record(consents, patient)
    grant(consents, patient, record, doctor)
    grant(consents, patient, record, doctor2)
    fulfilled_elsewhere, cancelled, revoked, fine = [
        make_request(token, market, requester, record, model_id, active_node)[:2]
        for requester in (doctor, doctor, doctor2, doctor)
    ]
    market.fulfil(fulfilled_elsewhere[0], fulfilled_elsewhere[1].as_tuple(), COMMITMENT, RESULT_CID,
                  {"from": active_node})
    consents.revokeConsent(record, doctor2, Purpose.DIAGNOSIS, {"from": patient})
    doctor2_before = token.balanceOf(doctor2)

    tx = market.fulfilBatch(_items([fulfilled_elsewhere, revoked, fine]), {"from": active_node})
    assert len(tx.events["FulfilmentSkipped"]) == 1
    assert event_args(tx, "FulfilmentSkipped") == {"requestId": fulfilled_elsewhere[0],
                                                  "status": RequestStatus.FULFILLED}
    assert event_args(tx, "DiagnosisFailed") == {"requestId": revoked[0], "node": active_node.address,
                                                "reason": FailureReason.CONSENT_REVOKED}
    assert token.balanceOf(doctor2) == doctor2_before + TOTAL
    assert status(market, revoked[0]) == RequestStatus.FAILED
    assert status(market, fine[0]) == RequestStatus.FULFILLED
    assert status(market, cancelled[0]) == RequestStatus.PENDING
    # Both fulfilments (the single one and the batched one) reach the reputation counter.
    assert nodes.reputationOf(active_node)[0] == 2
    # The revoked request is not the node's fault.
    assert nodes.reputationOf(active_node)[1] == 0


def test_fulfil_batch_skips_requests_past_their_deadline(token, market, consented, model_id, active_node, doctor):
    (late_id, late), = _batch(token, market, doctor, consented, model_id, active_node, 1)
    chain.sleep(REQUEST_TIMEOUT + 1)
    (fresh_id, fresh), = _batch(token, market, doctor, consented, model_id, active_node, 1)
    tx = market.fulfilBatch(_items([(late_id, late), (fresh_id, fresh)]), {"from": active_node})
    assert event_args(tx, "FulfilmentSkipped") == {"requestId": late_id, "status": RequestStatus.PENDING}
    assert status(market, late_id) == RequestStatus.PENDING
    assert status(market, fresh_id) == RequestStatus.FULFILLED


def test_fulfil_batch_rejects_foreign_or_tampered_items(token, market, nodes, consents, patient, doctor, model_id,
                                                        active_node, node2):
    register_node(token, nodes, node2)
    record = register_record(consents, patient)
    grant(consents, patient, record, doctor)
    mine = _batch(token, market, doctor, record, model_id, active_node, 1)
    theirs = _batch(token, market, doctor, record, model_id, node2, 1)
    with reverts_with("NotAssignedNode", theirs[0][0], active_node.address):
        market.fulfilBatch(_items(mine + theirs), {"from": active_node})
    rid, req = mine[0]
    tampered = [(rid, req.as_tuple()[:6] + (1,) + req.as_tuple()[7:], COMMITMENT, RESULT_CID)]
    with reverts_with("RequestMismatch", rid):
        market.fulfilBatch(tampered, {"from": active_node})
    with reverts_with("EmptyBatch"):
        market.fulfilBatch([], {"from": active_node})
    with reverts_with("ZeroResultCommitment", rid):
        market.fulfilBatch([(rid, req.as_tuple(), "0x" + "00" * 32, RESULT_CID)], {"from": active_node})
    assert status(market, rid) == RequestStatus.PENDING


# ---------------------------------------------------------------- failures and cancellation


def test_report_failure_refunds_and_counts_against_the_node(token, market, nodes, pending, node, doctor):
    request_id, request, _ = pending
    before = token.balanceOf(doctor)
    tx = market.reportFailure(request_id, request.as_tuple(), FailureReason.WEIGHTS_MISMATCH, {"from": node})
    assert event_args(tx, "DiagnosisFailed") == {"requestId": request_id, "node": node.address,
                                                "reason": FailureReason.WEIGHTS_MISMATCH}
    assert token.balanceOf(doctor) == before + TOTAL
    assert token.balanceOf(market) == 0
    assert status(market, request_id) == RequestStatus.FAILED
    assert nodes.reputationOf(node)[1] == 1
    with reverts_with("RequestNotPending", request_id, RequestStatus.FAILED):
        market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})


def test_report_failure_rejections(market, pending, node, doctor):
    request_id, request, _ = pending
    with reverts_with("NotAssignedNode", request_id, doctor.address):
        market.reportFailure(request_id, request.as_tuple(), FailureReason.CORRUPT_RECORD, {"from": doctor})
    with reverts_with("InvalidReason", 0):
        market.reportFailure(request_id, request.as_tuple(), 0, {"from": node})


def test_consent_failure_counts_only_when_consent_is_really_gone(token, market, consents, nodes, patient, doctor,
                                                                 consented, model_id, active_node):
    honest_id, honest, _ = make_request(token, market, doctor, consented, model_id, active_node)
    lying_id, lying, _ = make_request(token, market, doctor, consented, model_id, active_node)
    market.reportFailure(lying_id, lying.as_tuple(), FailureReason.CONSENT_MISSING, {"from": active_node})
    assert nodes.reputationOf(active_node)[1] == 1
    consents.revokeConsent(consented, doctor, Purpose.DIAGNOSIS, {"from": patient})
    market.reportFailure(honest_id, honest.as_tuple(), FailureReason.CONSENT_REVOKED, {"from": active_node})
    assert nodes.reputationOf(active_node)[1] == 1


def test_cancel_after_deadline_refunds_and_counts_a_timeout(token, market, nodes, pending, doctor, node, stranger):
    request_id, request, _ = pending
    with reverts_with("NotCancellable", request_id, request.deadline):
        market.cancel(request_id, request.as_tuple(), {"from": doctor})
    chain.sleep(REQUEST_TIMEOUT + 1)
    with reverts_with("NotRequester", request_id, stranger.address):
        market.cancel(request_id, request.as_tuple(), {"from": stranger})
    before = token.balanceOf(doctor)
    tx = market.cancel(request_id, request.as_tuple(), {"from": doctor})
    assert event_args(tx, "DiagnosisCancelled") == {"requestId": request_id, "requester": doctor.address,
                                                   "timedOut": True}
    assert token.balanceOf(doctor) == before + TOTAL
    assert nodes.reputationOf(node)[2] == 1
    with reverts_with("RequestNotPending", request_id, RequestStatus.CANCELLED):
        market.cancel(request_id, request.as_tuple(), {"from": doctor})


def test_cancel_and_fulfil_cannot_both_win(token, market, pending, doctor, node):
    # Whatever the transaction order, the deadline decides: before it only fulfil is possible,
    # after it only cancel.
    request_id, request, _ = pending
    chain.sleep(REQUEST_TIMEOUT - 60)
    with reverts_with("NotCancellable", request_id, request.deadline):
        market.cancel(request_id, request.as_tuple(), {"from": doctor})
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    chain.sleep(120)
    with reverts_with("RequestNotPending", request_id, RequestStatus.FULFILLED):
        market.cancel(request_id, request.as_tuple(), {"from": doctor})


# ---------------------------------------------------------------- ratings


def test_only_requesters_with_a_fulfilled_request_rate(models, market, pending, doctor, node, stranger):
    request_id, request, _ = pending
    with reverts_with("RequestNotFulfilled", request_id, RequestStatus.PENDING):
        market.rateModel(request_id, request.as_tuple(), 5, {"from": doctor})
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    with reverts_with("NotRequester", request_id, stranger.address):
        market.rateModel(request_id, request.as_tuple(), 1, {"from": stranger})
    with reverts_with("RequestMismatch", request_id):
        market.rateModel(request_id, request.as_tuple()[:5] + (2,) + request.as_tuple()[6:], 1, {"from": doctor})
    with reverts_with("InvalidScore", 6):
        market.rateModel(request_id, request.as_tuple(), 6, {"from": doctor})
    tx = market.rateModel(request_id, request.as_tuple(), 4, {"from": doctor})
    assert event_args(tx, "ModelRated") == {"modelId": request.model_id, "rater": doctor.address, "score": 4}
    assert plain(models.ratingOf(request.model_id)) == (4, 1)
    assert market.getRequestState(request_id)[2] is True
    with reverts_with("AlreadyRated", request_id):
        market.rateModel(request_id, request.as_tuple(), 5, {"from": doctor})


# ---------------------------------------------------------------- node earnings


def test_node_withdraws_earnings(token, market, nodes, pending, node, stranger):
    request_id, request, _ = pending
    with reverts_with("NothingToWithdraw", node.address):
        market.withdrawNodeEarnings(node, {"from": node})
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    with reverts_with("InvalidRecipient", "0x" + "00" * 20):
        market.withdrawNodeEarnings("0x" + "00" * 20, {"from": node})
    with reverts_with("InvalidRecipient", market.address):
        market.withdrawNodeEarnings(market, {"from": node})
    before = token.balanceOf(stranger)
    tx = market.withdrawNodeEarnings(stranger, {"from": node})
    assert event_args(tx, "NodeEarningsWithdrawn") == {"node": node.address, "to": stranger.address,
                                                      "amount": NODE_FEE}
    assert token.balanceOf(stranger) == before + NODE_FEE
    assert token.balanceOf(market) == 0
    # Withdrawing does not depend on the NodeRegistry; the fulfilment waits for a sync.
    assert plain(market.nodeAccount(node)) == (0, 1)


def test_sync_without_pending_fulfilments_changes_nothing(market, nodes, node, stranger):
    tx = market.syncReputation(node, {"from": stranger})
    assert "ReputationSynced" not in tx.events
    assert nodes.reputationOf(node)[0] == 0


def test_timeout_after_revocation_is_not_the_nodes_fault(token, market, consents, nodes, pending, patient, doctor,
                                                         node):
    request_id, request, _ = pending
    consents.revokeConsent(request.record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    chain.sleep(REQUEST_TIMEOUT + 1)
    tx = market.cancel(request_id, request.as_tuple(), {"from": doctor})
    assert event_args(tx, "DiagnosisCancelled")["timedOut"] is True
    assert nodes.reputationOf(node)[2] == 0


def test_only_the_assigned_node_can_touch_its_requests_in_a_batch(market, pending, node, stranger):
    request_id, request, _ = pending
    market.fulfil(request_id, request.as_tuple(), COMMITMENT, RESULT_CID, {"from": node})
    # No FulfilmentSkipped noise from strangers replaying settled requests.
    with reverts_with("NotAssignedNode", request_id, stranger.address):
        market.fulfilBatch([(request_id, request.as_tuple(), COMMITMENT, RESULT_CID)], {"from": stranger})
    with reverts_with("UnknownRequest", 999):
        market.fulfilBatch([(999, request.as_tuple(), COMMITMENT, RESULT_CID)], {"from": node})


def test_refunds_and_withdrawals_survive_a_misconfigured_registry(token, market, nodes, consented, model_id,
                                                                  active_node, doctor, admin):
    """Governance revokes the market's reporter role by mistake: reputation bookkeeping stops, but
    no escrow is stuck and the node keeps its unreported fulfilments for a later sync."""
    timed_out = make_request(token, market, doctor, consented, model_id, active_node)
    failing = make_request(token, market, doctor, consented, model_id, active_node)
    batched = make_request(token, market, doctor, consented, model_id, active_node)
    nodes.revokeRole(nodes.REPORTER_ROLE(), market, {"from": admin})

    tx = market.fulfilBatch([(batched[0], batched[1].as_tuple(), COMMITMENT, RESULT_CID)], {"from": active_node})
    assert event_args(tx, "ReputationNotRecorded") == {"node": active_node.address}
    assert plain(market.nodeAccount(active_node)) == (NODE_FEE, 1)

    before = token.balanceOf(doctor)
    tx = market.reportFailure(failing[0], failing[1].as_tuple(), FailureReason.MODEL_ERROR, {"from": active_node})
    assert "ReputationNotRecorded" in tx.events
    chain.sleep(REQUEST_TIMEOUT + 1)
    tx = market.cancel(timed_out[0], timed_out[1].as_tuple(), {"from": doctor})
    assert "ReputationNotRecorded" in tx.events
    assert token.balanceOf(doctor) == before + 2 * TOTAL
    market.withdrawNodeEarnings(active_node, {"from": active_node})
    assert token.balanceOf(market) == 0

    nodes.grantRole(nodes.REPORTER_ROLE(), market, {"from": admin})
    market.syncReputation(active_node, {"from": doctor})
    assert nodes.reputationOf(active_node)[0] == 1


def test_a_node_cannot_starve_its_failure_record_of_gas(market, nodes, pending, node):
    """With too little gas left for the reputation counter, reportFailure reverts instead of
    refunding while quietly skipping the node's failure count."""
    request_id, request, _ = pending
    with reverts_with("InsufficientGasForReport"):
        market.reportFailure(request_id, request.as_tuple(), FailureReason.MODEL_ERROR,
                             {"from": node, "gas_limit": 95_000})
    assert status(market, request_id) == RequestStatus.PENDING
    market.reportFailure(request_id, request.as_tuple(), FailureReason.MODEL_ERROR, {"from": node})
    assert nodes.reputationOf(node)[1] == 1
