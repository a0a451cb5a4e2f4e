"""ConsentRegistry: records, grants by owner, batch and signature, revocation, access log."""

import pytest
from brownie import chain

from aidoc.constants import DataType, Purpose
from aidoc.signing import sign_consent_grant, sign_consent_revocation
from conftest import (
    CID,
    CIPHERTEXT_HASH,
    DAY,
    ENVELOPE_CID,
    ROYALTY,
    event_args,
    grant,
    now,
    plain,
    register_record,
    reverts_with,
)

ZERO_ADDRESS = "0x" + "00" * 20


# ---------------------------------------------------------------- records


def test_register_record_stores_ciphertext_references_and_emits(consents, patient):
    tx = consents.registerRecord(CID, CIPHERTEXT_HASH, DataType.ECG, ENVELOPE_CID, ROYALTY, {"from": patient})
    record_id = tx.return_value
    assert record_id == 1 and consents.recordCount() == 1
    assert event_args(tx, "RecordRegistered") == {
        "recordId": 1, "owner": patient, "dataType": DataType.ECG, "ciphertextCid": CID,
        "ciphertextHash": CIPHERTEXT_HASH, "keyEnvelopeCid": ENVELOPE_CID, "royalty": ROYALTY,
    }
    record = consents.getRecord(record_id)
    assert plain(record) == (patient.address, ROYALTY, DataType.ECG, False, CIPHERTEXT_HASH, CID, ENVELOPE_CID)


@pytest.mark.parametrize("cid,envelope", [("", ENVELOPE_CID), (CID, "")])
def test_register_record_rejects_empty_cids(consents, patient, cid, envelope):
    with reverts_with("EmptyCid"):
        consents.registerRecord(cid, CIPHERTEXT_HASH, DataType.LAB_PANEL, envelope, 0, {"from": patient})


def test_register_record_rejects_zero_hash(consents, patient):
    with reverts_with("ZeroHash"):
        consents.registerRecord(CID, "0x" + "00" * 32, DataType.LAB_PANEL, ENVELOPE_CID, 0, {"from": patient})


def test_cytology_is_a_record_data_type(consents, patient):
    record_id = register_record(consents, patient, data_type=DataType.CYTOLOGY)
    assert consents.getRecord(record_id)[2] == DataType.CYTOLOGY == consents.MAX_DATA_TYPE() == 4


@pytest.mark.parametrize("data_type", [0, 5, 255])
def test_register_record_rejects_unknown_data_type(consents, patient, data_type):
    with reverts_with("InvalidDataType", data_type):
        consents.registerRecord(CID, CIPHERTEXT_HASH, data_type, ENVELOPE_CID, 0, {"from": patient})


def test_update_key_envelope(consents, patient, record_id, stranger):
    new_envelope = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    tx = consents.updateKeyEnvelope(record_id, new_envelope, {"from": patient})
    assert event_args(tx, "KeyEnvelopeUpdated") == {"recordId": record_id, "keyEnvelopeCid": new_envelope}
    assert consents.getRecord(record_id)[6] == new_envelope
    with reverts_with("NotRecordOwner", record_id, stranger.address):
        consents.updateKeyEnvelope(record_id, new_envelope, {"from": stranger})
    with reverts_with("EmptyCid"):
        consents.updateKeyEnvelope(record_id, "", {"from": patient})
    with reverts_with("UnknownRecord", 99):
        consents.updateKeyEnvelope(99, new_envelope, {"from": patient})


def test_set_royalty(consents, patient, record_id, stranger):
    tx = consents.setRoyalty(record_id, 5, {"from": patient})
    assert event_args(tx, "RoyaltyUpdated") == {"recordId": record_id, "royalty": 5}
    assert consents.getRecord(record_id)[1] == 5
    with reverts_with("NotRecordOwner", record_id, stranger.address):
        consents.setRoyalty(record_id, 1, {"from": stranger})


def test_retire_record_voids_every_grant(consents, patient, record_id, doctor, stranger):
    grant(consents, patient, record_id, doctor)
    with reverts_with("NotRecordOwner", record_id, stranger.address):
        consents.retireRecord(record_id, {"from": stranger})
    tx = consents.retireRecord(record_id, {"from": patient})
    assert event_args(tx, "RecordRetired") == {"recordId": record_id}
    assert consents.getRecord(record_id)[3] is True
    assert not consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    with reverts_with("RecordIsRetired", record_id):
        consents.checkAccess(record_id, doctor, Purpose.DIAGNOSIS)
    with reverts_with("RecordIsRetired", record_id):
        grant(consents, patient, record_id, doctor)
    with reverts_with("RecordIsRetired", record_id):
        consents.retireRecord(record_id, {"from": patient})
    with reverts_with("RecordIsRetired", record_id):
        consents.setRoyalty(record_id, 1, {"from": patient})


# ---------------------------------------------------------------- grants


def test_grant_consent_per_purpose_with_expiry(consents, patient, record_id, doctor):
    expiry = now() + 10 * DAY
    purposes = Purpose.DIAGNOSIS | Purpose.RESEARCH
    tx = consents.grantConsent(record_id, doctor, purposes, expiry, {"from": patient})
    assert event_args(tx, "ConsentGranted") == {
        "recordId": record_id, "grantee": doctor, "purposes": purposes, "expiry": expiry,
    }
    assert plain(consents.consentOf(record_id, doctor)) == (purposes, expiry)
    assert consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    assert consents.hasConsent(record_id, doctor, Purpose.RESEARCH)
    assert consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS | Purpose.RESEARCH)
    assert not consents.hasConsent(record_id, doctor, Purpose.TRAINING)
    assert not consents.hasConsent(record_id, doctor, Purpose.INSURANCE)
    assert not consents.hasConsent(record_id, doctor, 0)
    assert plain(consents.checkAccess(record_id, doctor, Purpose.DIAGNOSIS)) == (
        patient.address, ROYALTY, DataType.LAB_PANEL, expiry
    )

    chain.sleep(10 * DAY + 1)
    chain.mine()
    assert not consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    with reverts_with("ConsentExpired", record_id, doctor.address, expiry):
        consents.checkAccess(record_id, doctor, Purpose.DIAGNOSIS)


def test_regrant_replaces_previous_grant_and_records_what_it_removed(consents, patient, record_id, doctor):
    grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS | Purpose.TRAINING)
    tx = consents.grantConsent(record_id, doctor, Purpose.RESEARCH | Purpose.TRAINING, now() + DAY, {"from": patient})
    assert consents.consentOf(record_id, doctor)[0] == Purpose.RESEARCH | Purpose.TRAINING
    assert not consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    # The audit trail shows the removal: a revocation of what the new grant left out, before the grant.
    assert [e.name for e in tx.events if e.name in ("ConsentRevoked", "ConsentGranted")] == ["ConsentRevoked",
                                                                                            "ConsentGranted"]
    assert event_args(tx, "ConsentRevoked") == {"recordId": record_id, "grantee": doctor, "purposes": Purpose.DIAGNOSIS}
    # A grant that keeps every purpose (here: the union) revokes nothing.
    every = Purpose.DIAGNOSIS | Purpose.RESEARCH | Purpose.TRAINING | Purpose.INSURANCE
    tx = consents.grantConsent(record_id, doctor, every, now() + DAY, {"from": patient})
    assert "ConsentRevoked" not in tx.events


def test_regrant_after_expiry_revokes_nothing(consents, patient, record_id, doctor):
    consents.grantConsent(record_id, doctor, Purpose.DIAGNOSIS, now() + DAY, {"from": patient})
    chain.sleep(DAY + 1)
    chain.mine()
    tx = consents.grantConsent(record_id, doctor, Purpose.RESEARCH, now() + DAY, {"from": patient})
    assert "ConsentRevoked" not in tx.events  # the diagnosis grant had ended by itself


def test_grant_rejections(consents, patient, record_id, doctor, stranger):
    future = now() + DAY
    with reverts_with("NotRecordOwner", record_id, stranger.address):
        consents.grantConsent(record_id, doctor, Purpose.DIAGNOSIS, future, {"from": stranger})
    with reverts_with("UnknownRecord", 42):
        consents.grantConsent(42, doctor, Purpose.DIAGNOSIS, future, {"from": patient})
    with reverts_with("InvalidGrantee", ZERO_ADDRESS):
        consents.grantConsent(record_id, ZERO_ADDRESS, Purpose.DIAGNOSIS, future, {"from": patient})
    for bad in (0, 16, 0xFF):
        with reverts_with("InvalidPurposes", bad):
            consents.grantConsent(record_id, doctor, bad, future, {"from": patient})
    past = now() - 1
    with reverts_with("ConsentExpiryInPast", past):
        consents.grantConsent(record_id, doctor, Purpose.DIAGNOSIS, past, {"from": patient})


def test_missing_consent_is_reported_with_its_purpose(consents, patient, record_id, doctor):
    grant(consents, patient, record_id, doctor, Purpose.RESEARCH)
    with reverts_with("ConsentMissing", record_id, doctor.address, Purpose.DIAGNOSIS):
        consents.checkAccess(record_id, doctor, Purpose.DIAGNOSIS)
    with reverts_with("UnknownRecord", 77):
        consents.checkAccess(77, doctor, Purpose.DIAGNOSIS)


def test_batch_grant(consents, patient, doctor, doctor2):
    first = register_record(consents, patient)
    second = register_record(consents, patient)
    expiry = now() + DAY
    tx = consents.grantConsentBatch(
        [(first, doctor, Purpose.DIAGNOSIS, expiry), (second, doctor2, Purpose.TRAINING, expiry)], {"from": patient}
    )
    assert len(tx.events["ConsentGranted"]) == 2
    assert consents.hasConsent(first, doctor, Purpose.DIAGNOSIS)
    assert consents.hasConsent(second, doctor2, Purpose.TRAINING)


def test_batch_grant_is_all_or_nothing(consents, patient, patient2, doctor):
    mine = register_record(consents, patient)
    theirs = register_record(consents, patient2)
    expiry = now() + DAY
    with reverts_with("NotRecordOwner", theirs, patient.address):
        consents.grantConsentBatch(
            [(mine, doctor, Purpose.DIAGNOSIS, expiry), (theirs, doctor, Purpose.DIAGNOSIS, expiry)],
            {"from": patient},
        )
    assert not consents.hasConsent(mine, doctor, Purpose.DIAGNOSIS)


# ---------------------------------------------------------------- signed grants


def _signed_grant(consents, owner, record_id, grantee, purposes, expiry, deadline, nonce=None, key=None):
    return sign_consent_grant(
        key or owner.private_key, chain_id=chain.id, registry=consents.address, record_id=record_id,
        grantee=grantee.address, purposes=purposes, expiry=expiry,
        nonce=consents.nonces(owner) if nonce is None else nonce, deadline=deadline,
    )


def test_grant_by_signature_is_relayed_without_patient_gas(consents, patient, record_id, doctor):
    expiry, deadline = now() + DAY, now() + 600
    sig = _signed_grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline)
    patient_eth = patient.balance()
    tx = consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, sig.signature,
                                    {"from": doctor})
    assert patient.balance() == patient_eth
    assert event_args(tx, "ConsentGranted")["grantee"] == doctor
    assert consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    assert consents.nonces(patient) == 1


def test_signed_grant_cannot_be_replayed(consents, patient, record_id, doctor):
    expiry, deadline = now() + DAY, now() + 600
    sig = _signed_grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline)
    consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, sig.signature, {"from": doctor})
    consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, sig.signature,
                                   {"from": doctor})
    assert not consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)


def test_signed_grant_rejects_expired_deadline_and_foreign_signer(consents, patient, patient2, record_id, doctor):
    expiry = now() + DAY
    late = now() - 1
    sig = _signed_grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS, expiry, late)
    with reverts_with("SignatureExpired", late):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, late, sig.signature, {"from": doctor})
    deadline = now() + 600
    forged = _signed_grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline,
                           key=patient2.private_key)
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, forged.signature,
                                   {"from": doctor})
    # A signature over different terms does not grant the terms submitted.
    honest = _signed_grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline)
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS | Purpose.RESEARCH, expiry,
                                   deadline, honest.signature, {"from": doctor})
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, b"\x01" * 10,
                                   {"from": doctor})


def test_revoke_by_signature(consents, patient, record_id, doctor, stranger):
    grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS | Purpose.RESEARCH)
    deadline = now() + 600
    sig = sign_consent_revocation(
        patient.private_key, chain_id=chain.id, registry=consents.address, record_id=record_id,
        grantee=doctor.address, purposes=Purpose.DIAGNOSIS, nonce=consents.nonces(patient), deadline=deadline,
    )
    tx = consents.revokeConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, deadline, sig.signature, {"from": stranger})
    assert event_args(tx, "ConsentRevoked") == {"recordId": record_id, "grantee": doctor, "purposes": Purpose.DIAGNOSIS}
    assert not consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    assert consents.hasConsent(record_id, doctor, Purpose.RESEARCH)
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.revokeConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, deadline, sig.signature, {"from": stranger})
    past = now() - 5
    with reverts_with("SignatureExpired", past):
        consents.revokeConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, past, sig.signature,
                                    {"from": stranger})


# ---------------------------------------------------------------- revocation


def test_revoke_some_then_all_purposes(consents, patient, record_id, doctor):
    grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS | Purpose.TRAINING)
    tx = consents.revokeConsent(record_id, doctor, Purpose.TRAINING, {"from": patient})
    assert event_args(tx, "ConsentRevoked")["purposes"] == Purpose.TRAINING
    assert consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)
    assert not consents.hasConsent(record_id, doctor, Purpose.TRAINING)
    consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    assert plain(consents.consentOf(record_id, doctor)) == (0, 0)


def test_revoke_rejections(consents, patient, record_id, doctor, stranger):
    with reverts_with("NoConsentToRevoke", record_id, doctor.address):
        consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    grant(consents, patient, record_id, doctor, Purpose.RESEARCH)
    with reverts_with("NoConsentToRevoke", record_id, doctor.address):
        consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    with reverts_with("NotRecordOwner", record_id, stranger.address):
        consents.revokeConsent(record_id, doctor, Purpose.RESEARCH, {"from": stranger})
    with reverts_with("InvalidPurposes", 0):
        consents.revokeConsent(record_id, doctor, 0, {"from": patient})


# ---------------------------------------------------------------- access log


def test_access_log_is_written_only_by_the_logger_role(consents, patient, record_id, doctor, node, stranger, admin):
    grant(consents, patient, record_id, doctor)
    with reverts_with("AccessControlUnauthorizedAccount", stranger.address, consents.ACCESS_LOGGER_ROLE()):
        consents.logAccess(record_id, doctor, Purpose.DIAGNOSIS, node, 1, {"from": stranger})
    consents.grantRole(consents.ACCESS_LOGGER_ROLE(), stranger, {"from": admin})
    tx = consents.logAccess(record_id, doctor, Purpose.DIAGNOSIS, node, 7, {"from": stranger})
    assert event_args(tx, "RecordAccessed") == {
        "recordId": record_id, "grantee": doctor, "node": node, "purpose": Purpose.DIAGNOSIS, "requestId": 7,
    }
    with reverts_with("ConsentMissing", record_id, doctor.address, Purpose.TRAINING):
        consents.logAccess(record_id, doctor, Purpose.TRAINING, node, 8, {"from": stranger})


def test_domain_separator_is_exposed(consents):
    fields = consents.eip712Domain()
    assert fields[1] == "AIDoc ConsentRegistry" and fields[2] == "1"
    assert fields[3] == chain.id and fields[4] == consents.address
    assert int(consents.DOMAIN_SEPARATOR().hex(), 16) != 0


def test_revocation_voids_grants_signed_but_not_yet_submitted(consents, patient, record_id, doctor):
    """A patient signs a grant, grants and revokes on-chain; the old signature must not bring it back."""
    expiry, deadline = now() + DAY, now() + 30 * DAY
    pending = _signed_grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline)
    grant(consents, patient, record_id, doctor)
    tx = consents.revokeConsent(record_id, doctor, Purpose.DIAGNOSIS, {"from": patient})
    assert event_args(tx, "SignaturesInvalidated") == {"owner": patient.address, "nextNonce": 1}
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, pending.signature,
                                   {"from": doctor})
    assert not consents.hasConsent(record_id, doctor, Purpose.DIAGNOSIS)


def test_patient_can_void_outstanding_signatures(consents, patient, record_id, doctor):
    expiry, deadline = now() + DAY, now() + DAY
    pending = _signed_grant(consents, patient, record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline)
    tx = consents.invalidateSignatures({"from": patient})
    assert event_args(tx, "SignaturesInvalidated") == {"owner": patient.address, "nextNonce": 1}
    with reverts_with("InvalidConsentSignature", record_id, patient.address):
        consents.grantConsentBySig(record_id, doctor, Purpose.DIAGNOSIS, expiry, deadline, pending.signature,
                                   {"from": doctor})
