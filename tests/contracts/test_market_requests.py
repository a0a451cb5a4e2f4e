"""DiagnosisMarket requests: escrow, the checks a request must pass, permits, governance."""

import pytest
from brownie import chain, web3
from eth_abi import encode

from aidoc.chain.request import DiagnosisRequest
from aidoc.constants import DataType, ModelStatus, Purpose, RequestStatus, input_types_mask
from aidoc.crypto.result import SMALL_ORDER_POINTS, with_top_bit
from aidoc.signing import sign_permit
from conftest import (
    DAY,
    MODEL_PRICE,
    NODE_FEE,
    NODE_KEY,
    REQUEST_TIMEOUT,
    RESULT_KEY,
    ROYALTY,
    TOTAL,
    event_args,
    grant,
    make_request,
    now,
    plain,
    register_model,
    register_node,
    register_record,
    reverts_with,
)

REQUEST_TYPES = "(address,address,address,address,uint256,uint256,uint80,uint80,uint80,uint64)"


def test_request_escrows_fees_and_records_terms(token, market, doctor, patient, provider, consented, model_id,
                                                 active_node):
    doctor_before = token.balanceOf(doctor)
    request_id, request, tx = make_request(token, market, doctor, consented, model_id, active_node)
    assert request_id == 1 and market.requestCount() == 1
    assert token.balanceOf(doctor) == doctor_before - TOTAL
    assert token.balanceOf(market) == TOTAL
    assert request == DiagnosisRequest(
        requester=doctor.address, node=active_node.address, provider=provider.address, data_owner=patient.address,
        record_id=consented, model_id=model_id, model_fee=MODEL_PRICE, royalty=ROYALTY, node_fee=NODE_FEE,
        deadline=tx.timestamp + REQUEST_TIMEOUT,
    )
    logged = event_args(tx, "DiagnosisRequested")
    assert logged["requester"] == doctor.address and logged["node"] == active_node.address
    assert logged["resultKey"] == RESULT_KEY

    state = market.getRequestState(request_id)
    digest = web3.keccak(encode([REQUEST_TYPES], [request.as_tuple()]))[:30]
    assert plain(state) == ("0x" + digest.hex(), RequestStatus.PENDING, False)
    assert bytes(market.requestDigest(request.as_tuple())) == digest


def test_request_requires_diagnosis_consent(token, market, consents, doctor, patient, record_id, model_id, active_node):
    token.approve(market, TOTAL, {"from": doctor})
    with reverts_with("ConsentMissing", record_id, doctor.address, Purpose.DIAGNOSIS):
        market.requestDiagnosis(record_id, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    # Research and training consent is not diagnosis consent.
    grant(consents, patient, record_id, doctor, Purpose.RESEARCH | Purpose.TRAINING)
    with reverts_with("ConsentMissing", record_id, doctor.address, Purpose.DIAGNOSIS):
        market.requestDiagnosis(record_id, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})


def test_request_rejects_expired_revoked_and_retired_consent(token, market, consents, doctor, patient, record_id,
                                                              model_id, active_node):
    token.approve(market, 10 * TOTAL, {"from": doctor})
    tx = grant(consents, patient, record_id, doctor, days=1)
    expiry = event_args(tx, "ConsentGranted")["expiry"]
    chain.sleep(DAY + 1)
    with reverts_with("ConsentExpired", record_id, doctor.address, expiry):
        market.requestDiagnosis(record_id, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    grant(consents, patient, record_id, doctor)
    consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    with reverts_with("ConsentMissing", record_id, doctor.address, Purpose.DIAGNOSIS):
        market.requestDiagnosis(record_id, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    grant(consents, patient, record_id, doctor)
    consents.retireRecord(record_id, {"from": patient})
    with reverts_with("RecordIsRetired", record_id):
        market.requestDiagnosis(record_id, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    with reverts_with("UnknownRecord", 404):
        market.requestDiagnosis(404, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})


def test_request_requires_an_active_matching_model(token, market, models, doctor, provider, auditor, consented,
                                                   model_id, active_node):
    token.approve(market, TOTAL, {"from": doctor})
    with reverts_with("UnknownModel", 77):
        market.requestDiagnosis(consented, 77, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    ecg_model = register_model(models, provider, data_type=DataType.ECG, name="ecg-cnn")
    with reverts_with("InputTypeMismatch", ecg_model, DataType.ECG, DataType.LAB_PANEL):
        market.requestDiagnosis(consented, ecg_model, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    models.suspend(model_id, "under review", {"from": auditor})
    with reverts_with("ModelNotActive", model_id, ModelStatus.SUSPENDED):
        market.requestDiagnosis(consented, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})


def test_request_requires_an_active_capable_node(token, market, nodes, doctor, node2, consented, model_id, active_node):
    token.approve(market, TOTAL, {"from": doctor})
    with reverts_with("NodeNotActive", node2.address):
        market.requestDiagnosis(consented, model_id, node2, RESULT_KEY, TOTAL, {"from": doctor})
    register_node(token, nodes, node2, data_types=(DataType.ECG,))
    with reverts_with("NodeUnsupportedInput", node2.address, DataType.LAB_PANEL):
        market.requestDiagnosis(consented, model_id, node2, RESULT_KEY, TOTAL, {"from": doctor})
    nodes.beginUnbonding({"from": active_node})
    with reverts_with("NodeNotActive", active_node.address):
        market.requestDiagnosis(consented, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})


# Every small-order point libsodium refuses, with and without the top bit, as hex.
SMALL_ORDER_KEYS = [key.hex() for point in SMALL_ORDER_POINTS for key in (point, with_top_bit(point))]


def test_small_order_result_keys_are_exactly_those_nothing_can_be_sealed_to():
    from nacl.public import PrivateKey, PublicKey, SealedBox

    for key in SMALL_ORDER_KEYS:
        with pytest.raises(Exception):
            SealedBox(PublicKey(bytes.fromhex(key))).encrypt(b"result")
    SealedBox(PublicKey(PrivateKey.generate().public_key.encode())).encrypt(b"result")


def test_request_requires_a_usable_result_key_and_allowance(token, market, doctor, consented, model_id, active_node):
    token.approve(market, TOTAL - 1, {"from": doctor})
    for key in SMALL_ORDER_KEYS:
        with reverts_with("InvalidResultKey", "0x" + key):
            market.requestDiagnosis(consented, model_id, active_node, "0x" + key, TOTAL, {"from": doctor})
    with reverts_with("ERC20InsufficientAllowance", market.address, TOTAL - 1, TOTAL):
        market.requestDiagnosis(consented, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    assert market.requestCount() == 0 and token.balanceOf(market) == 0


def test_price_changes_do_not_touch_open_requests(token, market, models, provider, pending):
    request_id, request, _ = pending
    models.updatePrice(request.model_id, 1, {"from": provider})
    assert market.getRequestState(request_id)[1] == RequestStatus.PENDING
    assert token.balanceOf(market) == request.total == TOTAL


def _permit_for(token, market, owner_key, owner, value, deadline):
    return sign_permit(owner_key, chain_id=chain.id, token=token.address, owner=owner, spender=market.address,
                       value=value, nonce=token.nonces(owner), deadline=deadline)


def test_request_with_permit_needs_no_prior_approval(token, market, consents, admin, patient, patient2, model_id,
                                                     active_node):
    # patient2, a local key, is the requester here (a doctor signing with a wallet key).
    requester = patient2
    record_id = register_record(consents, patient)
    grant(consents, patient, record_id, requester)
    assert token.allowance(requester, market) == 0
    deadline = now() + 600
    sig = _permit_for(token, market, requester.private_key, requester.address, TOTAL, deadline)
    tx = market.requestDiagnosisWithPermit(record_id, model_id, active_node, RESULT_KEY, TOTAL, TOTAL, deadline, sig.v,
                                           sig.r, sig.s, {"from": requester})
    assert "DiagnosisRequested" in tx.events
    assert token.balanceOf(market) == TOTAL
    assert token.allowance(requester, market) == 0


def test_request_with_front_run_permit_still_succeeds(token, market, consents, patient, patient2, stranger, model_id,
                                                      active_node):
    requester = patient2
    record_id = register_record(consents, patient)
    grant(consents, patient, record_id, requester)
    deadline = now() + 600
    sig = _permit_for(token, market, requester.private_key, requester.address, TOTAL, deadline)
    # Someone copies the permit from the mempool and submits it first.
    token.permit(requester, market, TOTAL, deadline, sig.v, sig.r, sig.s, {"from": stranger})
    tx = market.requestDiagnosisWithPermit(record_id, model_id, active_node, RESULT_KEY, TOTAL, TOTAL, deadline, sig.v,
                                           sig.r, sig.s, {"from": requester})
    assert "DiagnosisRequested" in tx.events


def test_request_with_invalid_permit_and_no_allowance_fails_cleanly(token, market, consents, patient, patient2,
                                                                    model_id, active_node):
    requester = patient2
    record_id = register_record(consents, patient)
    grant(consents, patient, record_id, requester)
    deadline = now() + 600
    forged = _permit_for(token, market, patient.private_key, requester.address, TOTAL, deadline)
    with reverts_with("ERC20InsufficientAllowance", market.address, 0, TOTAL):
        market.requestDiagnosisWithPermit(record_id, model_id, active_node, RESULT_KEY, TOTAL, TOTAL, deadline, forged.v,
                                          forged.r, forged.s, {"from": requester})


def test_request_timeout_governance(market, admin, stranger):
    with reverts_with("AccessControlUnauthorizedAccount", stranger.address, market.DEFAULT_ADMIN_ROLE()):
        market.setRequestTimeout(600, {"from": stranger})
    for bad in (59, 30 * DAY + 1):
        with reverts_with("InvalidTimeout", bad):
            market.setRequestTimeout(bad, {"from": admin})
    tx = market.setRequestTimeout(600, {"from": admin})
    assert event_args(tx, "RequestTimeoutUpdated") == {"requestTimeout": 600}
    assert market.requestTimeout() == 600


def test_market_holds_no_eth(market, doctor):
    with pytest.raises(Exception):
        doctor.transfer(market, "1 ether")
    assert market.balance() == 0


def test_requests_get_distinct_ids(token, market, doctor, consented, model_id, active_node):
    ids = [make_request(token, market, doctor, consented, model_id, active_node)[0] for _ in range(3)]
    assert ids == [1, 2, 3]
    assert token.balanceOf(market) == 3 * TOTAL


def test_fee_raised_in_front_of_a_request_is_refused(token, market, nodes, doctor, consented, model_id, active_node):
    """The node sees a request coming and raises its fee first: maxTotal stops the overcharge."""
    token.approve(market, 10**6 * TOTAL, {"from": doctor})
    nodes.update(50_000 * 10**18, NODE_KEY, input_types_mask(DataType.LAB_PANEL), False, {"from": active_node})
    raised = MODEL_PRICE + ROYALTY + 50_000 * 10**18
    with reverts_with("PriceAboveLimit", raised, TOTAL):
        market.requestDiagnosis(consented, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
    assert token.balanceOf(market) == 0


def test_consent_must_outlast_the_deadline(token, market, consents, patient, doctor, record_id, model_id, active_node):
    token.approve(market, TOTAL, {"from": doctor})
    expiry = now() + REQUEST_TIMEOUT // 2
    consents.grantConsent(record_id, doctor, Purpose.DIAGNOSIS, expiry, {"from": patient})
    with reverts_with("ConsentExpiresBeforeDeadline"):
        market.requestDiagnosis(record_id, model_id, active_node, RESULT_KEY, TOTAL, {"from": doctor})
