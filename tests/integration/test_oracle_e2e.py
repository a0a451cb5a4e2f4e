"""The oracle pipeline end to end on the real stack: anvil, Redis, js-ipfs, and a node whose Celery
worker, watcher and sender run as their own processes. A request on-chain becomes a decrypted,
model-run, sealed, committed and paid diagnosis; every bad input ends Failed with its reason code
and a refund, and the node stays up."""

from __future__ import annotations

import hashlib
import os
import pickle
import time

import pytest
from nacl.public import PrivateKey

from aidoc.constants import DataType, FailureReason, Purpose, RequestStatus
from aidoc.crypto import encrypt_record
from aidoc.flow.audit import audit_trail
from aidoc.flow.consent import grant_consent
from aidoc.flow.request import request_diagnosis
from aidoc.flow.result import fetch_result, settlement
from conftest import MODEL_PRICE, NODE_FEE, NODE_MAX_RECORD_BYTES, ROYALTY, consented_record, samples_of, settle


def balance(session, address=None) -> int:
    return session.marketplace.token.functions.balanceOf(address or session.address).call()


def node_earnings(node) -> int:
    return node.session.marketplace.market.functions.nodeAccount(node.address).call()[0]


def test_panel_and_ecg_diagnoses_are_fulfilled_paid_and_verifiable(node, doctor, provider, models, models_dir,
                                                                   funded):
    patients = [funded(0), funded(0)]
    panel = consented_record(patients[0], doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    ecg = consented_record(patients[1], doctor, node, samples_of(models_dir, DataType.ECG)[0])
    before = {"doctor": balance(doctor), "provider": balance(provider), "node": node_earnings(node),
              "p0": balance(patients[0]), "p1": balance(patients[1])}

    ids = [request_diagnosis(doctor, panel, models[DataType.LAB_PANEL], node.address)[0],
           request_diagnosis(doctor, ecg, models[DataType.ECG], node.address)[0]]
    settled = settle(doctor, ids)
    assert [settled[i].status for i in ids] == [RequestStatus.FULFILLED] * 2

    panel_result, ecg_result = (fetch_result(doctor, i).result for i in ids)
    assert panel_result["label"] in {"malignant", "benign"}
    assert ecg_result["label"] in {"normal", "bradycardia", "tachycardia", "irregular"}
    for opened in (panel_result, ecg_result):
        assert abs(sum(opened["probabilities"].values()) - 1) < 1e-3

    cost = MODEL_PRICE + ROYALTY + NODE_FEE
    assert balance(doctor) == before["doctor"] - 2 * cost
    assert balance(provider) == before["provider"] + 2 * MODEL_PRICE
    assert node_earnings(node) == before["node"] + 2 * NODE_FEE
    assert balance(patients[0]) == before["p0"] + ROYALTY and balance(patients[1]) == before["p1"] + ROYALTY

    trail = audit_trail(patients[0], panel)
    assert [e.action for e in trail] == ["granted", "accessed"]
    assert trail[1].party == doctor.address and f"request {ids[0]}" in trail[1].detail


def test_the_result_on_ipfs_opens_only_for_the_requester(node, doctor, models, models_dir, funded):
    from aidoc.crypto import open_result
    from aidoc.errors import WrongKey

    patient = funded(0)
    record = consented_record(patient, doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[1])
    request_id, _ = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
    settle(doctor, [request_id])
    fetch_result(doctor, request_id)  # published and verified
    ciphertext = doctor.store.cat(settlement(doctor, request_id).result_cid)
    with pytest.raises(WrongKey):
        open_result(ciphertext, patient.identity.encryption_key)


# ---------------------------------------------------------------- bad inputs


def register_raw(patient, doctor, ciphertext: bytes, envelope: bytes, data_type: DataType,
                 registered_hash: bytes | None = None) -> int:
    """Registers arbitrary bytes as a record and grants the doctor diagnosis consent."""
    contracts = patient.marketplace
    receipt = patient.send(contracts.consents.functions.registerRecord(
        patient.store.add(ciphertext), registered_hash or hashlib.sha256(ciphertext).digest(), int(data_type),
        patient.store.add(envelope), ROYALTY), "registerRecord")
    record_id = patient.event(receipt, contracts.consents, "RecordRegistered")["recordId"]
    expiry = contracts.w3.eth.get_block("latest")["timestamp"] + 86400
    grant_consent(patient, record_id, doctor.address, Purpose.DIAGNOSIS, expiry)
    return record_id


def valid_panel_bytes(models_dir) -> bytes:
    from aidoc.records import encode_record, load_record_file

    return encode_record(load_record_file(samples_of(models_dir, DataType.LAB_PANEL)[0]))


def corrupt_ciphertext(node, models_dir):
    sealed = encrypt_record(valid_panel_bytes(models_dir), [node.identity.encryption_public_key], data_type=1)
    tampered = bytearray(sealed.ciphertext)
    tampered[-5] ^= 0x40
    return bytes(tampered), sealed.key_envelope, None


def hash_mismatch(node, models_dir):
    sealed = encrypt_record(valid_panel_bytes(models_dir), [node.identity.encryption_public_key], data_type=1)
    return sealed.ciphertext, sealed.key_envelope, hashlib.sha256(b"something else").digest()


def wrong_key(node, models_dir):
    sealed = encrypt_record(valid_panel_bytes(models_dir), [PrivateKey.generate().public_key.encode()], data_type=1)
    return sealed.ciphertext, sealed.key_envelope, None


def not_a_record(node, models_dir):
    sealed = encrypt_record(b"\x00not a health record\xff", [node.identity.encryption_public_key], data_type=1)
    return sealed.ciphertext, sealed.key_envelope, None


def oversized(node, models_dir):
    sealed = encrypt_record(b"\0" * (NODE_MAX_RECORD_BYTES + 1), [node.identity.encryption_public_key], data_type=1)
    return sealed.ciphertext, sealed.key_envelope, None


@pytest.mark.parametrize("make, reason", [
    (corrupt_ciphertext, FailureReason.CORRUPT_RECORD),
    (hash_mismatch, FailureReason.CORRUPT_RECORD),
    (wrong_key, FailureReason.WRONG_KEY),
    (not_a_record, FailureReason.CORRUPT_RECORD),
    (oversized, FailureReason.RECORD_TOO_LARGE),
], ids=lambda v: getattr(v, "__name__", getattr(v, "name", str(v))))
def test_a_bad_record_fails_with_its_reason_and_refunds(node, doctor, models, models_dir, funded, make, reason):
    ciphertext, envelope, registered_hash = make(node, models_dir)
    record = register_raw(funded(0), doctor, ciphertext, envelope, DataType.LAB_PANEL, registered_hash)
    before = balance(doctor)
    request_id, terms = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
    assert balance(doctor) == before - terms.total
    settled = settle(doctor, [request_id])[request_id]
    assert (settled.status, settled.failure) == (RequestStatus.FAILED, reason)
    assert balance(doctor) == before
    assert node.alive()


def register_weights(provider, weights: bytes, registered_hash: bytes) -> int:
    contracts = provider.marketplace
    receipt = provider.send(contracts.models.functions.registerModel(
        "hostile", provider.store.add(weights), registered_hash, int(DataType.LAB_PANEL), MODEL_PRICE), "registerModel")
    return provider.event(receipt, contracts.models, "ModelRegistered")["modelId"]


class LeavesAMark:
    def __reduce__(self):
        return (open, ("/tmp/aidoc-pickle-was-loaded", "w"))


@pytest.mark.parametrize("weights_kind, reason", [
    ("hash-mismatch", FailureReason.WEIGHTS_MISMATCH),
    ("pickle", FailureReason.MODEL_ERROR),
])
def test_bad_weights_fail_with_their_reason_and_refund(node, doctor, provider, models, models_dir, funded, tmp_path,
                                                         weights_kind, reason):
    genuine = (models_dir / "panel-mlp.safetensors").read_bytes()
    if weights_kind == "hash-mismatch":
        model = register_weights(provider, genuine, hashlib.sha256(genuine + b"tampered").digest())
    else:
        disguised = pickle.dumps({"weights": LeavesAMark()})
        model = register_weights(provider, disguised, hashlib.sha256(disguised).digest())
    record = consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    before = balance(doctor)
    request_id, _ = request_diagnosis(doctor, record, model, node.address)
    settled = settle(doctor, [request_id])[request_id]
    assert (settled.status, settled.failure) == (RequestStatus.FAILED, reason)
    assert balance(doctor) == before
    assert not os.path.exists("/tmp/aidoc-pickle-was-loaded"), "the node unpickled fetched weights"
    assert node.alive()


def test_consent_revoked_in_the_request_block_fails_as_revoked_and_refunds(node, doctor, models, models_dir,
                                                                            funded):
    from aidoc.flow.request import quote

    patient = funded(0)
    record = consented_record(patient, doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    contracts, w3 = doctor.marketplace, doctor.marketplace.w3
    total = quote(doctor, record, models[DataType.LAB_PANEL], node.address)
    doctor.send(contracts.token.functions.approve(contracts.market.address, total), "approve")
    before = balance(doctor)
    request_call = contracts.market.functions.requestDiagnosis(
        record, models[DataType.LAB_PANEL], node.address, doctor.identity.encryption_public_key, total)
    revoke_call = contracts.consents.functions.revokeConsent(record, doctor.address, int(Purpose.DIAGNOSIS))
    request_gas = request_call.estimate_gas({"from": doctor.address})
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        hashes = [_send_unmined(doctor, request_call, request_gas * 2), _send_unmined(patient, revoke_call, 200_000)]
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    receipts = [w3.eth.wait_for_transaction_receipt(h) for h in hashes]
    assert [r["status"] for r in receipts] == [1, 1] and receipts[0]["blockNumber"] == receipts[1]["blockNumber"]
    request_id = doctor.event(receipts[0], contracts.market, "DiagnosisRequested")["requestId"]
    settled = settle(doctor, [request_id])[request_id]
    assert (settled.status, settled.failure) == (RequestStatus.FAILED, FailureReason.CONSENT_REVOKED)
    assert balance(doctor) == before
    assert node.alive()


def test_a_result_key_nothing_can_be_sealed_to_is_refused_before_any_escrow(node, doctor, models, models_dir,
                                                                           funded):
    from aidoc.chain.contracts import TransactionReverted
    from aidoc.crypto import usable_result_key

    record = consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    contracts = doctor.marketplace
    low_order_point = b"\x01" + b"\0" * 31
    assert not usable_result_key(low_order_point)
    doctor.send(contracts.token.functions.approve(contracts.market.address, 10**21), "approve")
    before = balance(doctor)
    with pytest.raises(TransactionReverted, match="InvalidResultKey"):
        doctor.send(contracts.market.functions.requestDiagnosis(
            record, models[DataType.LAB_PANEL], node.address, low_order_point, 10**21), "request")
    assert balance(doctor) == before


def _send_unmined(session, call, gas: int):
    w3 = session.marketplace.w3
    tx = call.build_transaction({"from": session.address, "gas": gas, "nonce": w3.eth.get_transaction_count(
        session.address, "pending"), "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9})
    return w3.eth.send_raw_transaction(session.identity.account.sign_transaction(tx).raw_transaction)


# ---------------------------------------------------------------- duplicates and idempotence


def test_the_same_event_delivered_twice_is_fulfilled_once(stack, node, doctor, models, models_dir, funded,
                                                          redis_client):
    from aidoc.node.messages import Diagnose, DiagnosisJob, dispatch

    record = consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    request_id, terms = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
    job = DiagnosisJob(request_id, terms, doctor.identity.encryption_public_key, "0x" + "11" * 32, "0x" + "22" * 32, 0)
    for _ in range(2):  # two more deliveries next to the watcher's own
        dispatch(Diagnose((job,)), node.address, stack.services.redis_url)
    settle(doctor, [request_id])
    market = doctor.marketplace.market
    start = doctor.marketplace.deployment.block_number
    fulfilled = market.events.DiagnosisFulfilled().get_logs(from_block=start, argument_filters={"requestId": request_id})
    assert len(fulfilled) == 1
    fetch_result(doctor, request_id)
    assert node.alive()


def test_a_fulfilled_request_redelivered_later_is_skipped(stack, node, doctor, models, models_dir, funded):
    from aidoc.node.messages import Diagnose, DiagnosisJob, dispatch

    record = consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    request_id, terms = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
    settle(doctor, [request_id])
    nonce = doctor.marketplace.w3.eth.get_transaction_count(node.address)
    job = DiagnosisJob(request_id, terms, doctor.identity.encryption_public_key, "0x" + "33" * 32, "0x" + "44" * 32, 0)
    dispatch(Diagnose((job,)), node.address, stack.services.redis_url)
    skipped = (f"request {request_id}: not pending", f"request {request_id}: already handled",
               f"request {request_id}: another delivery holds it")
    log_path = node.processes[0].log_path
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(line in log_path.read_text() for line in skipped):
        time.sleep(0.2)
    assert any(line in log_path.read_text() for line in skipped)
    assert doctor.marketplace.w3.eth.get_transaction_count(node.address) == nonce  # no transaction for it
