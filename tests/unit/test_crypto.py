"""Record and result envelopes: round trips, and every way a ciphertext or key can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from aidoc.crypto import decrypt_record, encrypt_record, open_record, open_result, result_commitment, seal_result
from aidoc.crypto.envelope import NONCE_BYTES, RECORD_MAGIC, UNPADDED_MAGIC, record_bucket
from aidoc.crypto.keys import derive_encryption_key, encryption_public_key
from aidoc.crypto.result import canonical_result
from aidoc.errors import CorruptCiphertext, WrongKey
from aidoc.identity import Identity


def test_record_round_trip_for_every_recipient():
    nodes = [PrivateKey.generate() for _ in range(3)]
    sealed = encrypt_record(b"panel bytes", [k.public_key.encode() for k in nodes], data_type=1)
    for key in nodes:
        assert open_record(sealed.ciphertext, sealed.key_envelope, key) == (1, b"panel bytes")
    assert b"panel bytes" not in sealed.ciphertext and b"panel bytes" not in sealed.key_envelope


def test_record_is_sealed_under_a_fresh_key_each_time():
    key = PrivateKey.generate()
    one = encrypt_record(b"same", [key.public_key.encode()], data_type=1)
    two = encrypt_record(b"same", [key.public_key.encode()], data_type=1)
    assert one.ciphertext != two.ciphertext and one.key_envelope != two.key_envelope


def test_a_node_outside_the_envelope_gets_wrong_key():
    sealed = encrypt_record(b"x", [PrivateKey.generate().public_key.encode()], data_type=2)
    with pytest.raises(WrongKey, match="not addressed"):
        open_record(sealed.ciphertext, sealed.key_envelope, PrivateKey.generate())


def test_an_entry_sealed_to_another_key_gets_wrong_key():
    mine, other = PrivateKey.generate(), PrivateKey.generate()
    sealed = encrypt_record(b"x", [other.public_key.encode()], data_type=1)
    envelope = json.loads(sealed.key_envelope)
    envelope["recipients"] = {mine.public_key.encode().hex(): envelope["recipients"][other.public_key.encode().hex()]}
    with pytest.raises(WrongKey, match="does not open"):
        open_record(sealed.ciphertext, json.dumps(envelope).encode(), mine)


@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
@settings(max_examples=60)
def test_any_flipped_byte_is_detected(position, flip):
    key = PrivateKey.generate()
    sealed = encrypt_record(b"a record of some length", [key.public_key.encode()], data_type=1)
    tampered = bytearray(sealed.ciphertext)
    tampered[position % len(tampered)] ^= flip
    with pytest.raises(CorruptCiphertext):
        open_record(bytes(tampered), sealed.key_envelope, key)


@given(cut=st.integers(min_value=0, max_value=1057))  # the ciphertext is 1,058 bytes: a 1 KiB bucket
@settings(max_examples=40)
def test_truncation_is_detected(cut):
    key = PrivateKey.generate()
    sealed = encrypt_record(b"x" * 40, [key.public_key.encode()], data_type=1)
    with pytest.raises(CorruptCiphertext):
        open_record(sealed.ciphertext[:cut], sealed.key_envelope, key)


def test_records_of_one_data_type_seal_to_one_length_whatever_they_hold():
    """A panel with an outcome recorded is longer than one without, an ECG's length is its duration:
    padded to their data type's bucket, none of that shows in the ciphertext's length."""
    key = PrivateKey.generate().public_key.encode()
    for data_type, sizes in ((1, [200, 276, 301, 700]), (2, [4071, 12_000, 40_073])):
        lengths = {len(encrypt_record(bytes(size), [key], data_type=data_type).ciphertext) for size in sizes}
        assert len(lengths) == 1, (data_type, lengths)


def test_size_buckets_double_then_grow_by_a_mebibyte():
    assert [record_bucket(1, n) for n in (0, 1020, 1021, 5000)] == [1024, 1024, 2048, 8192]
    assert record_bucket(2, 40_073) == 64 * 1024 and record_bucket(3, 10) == 256 * 1024
    assert record_bucket(2, 1024 * 1024) == 2 * 1024 * 1024  # 4 bytes over 1 MiB: the next MiB
    assert record_bucket(2, 5 * 1024 * 1024 + 1) == 6 * 1024 * 1024


def _sealed_by_hand(magic: bytes, body: bytes) -> tuple[bytes, bytes]:
    """A record ciphertext built without encrypt_record (format 1, or a doctored format 2)."""
    import secrets

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data_key, nonce = AESGCM.generate_key(bit_length=256), secrets.token_bytes(NONCE_BYTES)
    header = magic + b"\x01" + nonce
    return header + AESGCM(data_key).encrypt(nonce, body, header), data_key


def test_an_unpadded_record_of_the_first_format_still_opens():
    ciphertext, data_key = _sealed_by_hand(UNPADDED_MAGIC, b"panel bytes")
    assert decrypt_record(ciphertext, data_key) == (1, b"panel bytes")


@pytest.mark.parametrize("body", [b"\0\0\4\1" + b"x" * 20, b"\0\0\0\2ab" + b"\0" * 5 + b"\1", b"\0\0"])
def test_a_padding_that_does_not_add_up_is_corrupt(body):
    ciphertext, data_key = _sealed_by_hand(RECORD_MAGIC, body)
    with pytest.raises(CorruptCiphertext, match="padding"):
        decrypt_record(ciphertext, data_key)


@given(garbage=st.binary(max_size=300))
@settings(max_examples=60)
def test_garbage_envelopes_give_wrong_key_only(garbage):
    with pytest.raises(WrongKey):
        open_record(b"AIDR\x01" + b"\0" * 40, garbage, PrivateKey.generate())


def test_result_opens_for_the_requester_and_matches_its_commitment():
    doctor = PrivateKey.generate()
    sealed = seal_result(7, {"label": "benign", "probabilities": {"benign": 0.9, "malignant": 0.1}},
                         doctor.public_key.encode())
    opened = open_result(sealed.ciphertext, doctor)
    assert opened.request_id == 7 and opened.result["label"] == "benign"
    assert opened.commitment == sealed.commitment


def test_result_does_not_open_for_anyone_else():
    sealed = seal_result(1, {"label": "benign"}, PrivateKey.generate().public_key.encode())
    with pytest.raises(WrongKey):
        open_result(sealed.ciphertext, PrivateKey.generate())


def test_commitment_is_salted_so_a_guess_cannot_be_tested():
    key = PrivateKey.generate().public_key.encode()
    result = {"label": "malignant"}
    one, two = seal_result(3, result, key), seal_result(3, result, key)
    assert one.commitment != two.commitment
    unsalted_guesses = {result_commitment(3, b"\0" * 32, json.dumps(result).encode()),
                        result_commitment(3, b"", b'{"label":"malignant"}')}
    assert one.commitment not in unsalted_guesses


def test_encryption_key_is_derived_from_the_account_key_and_differs_per_account():
    a, b = Identity.generate(), Identity.generate()
    assert a.encryption_public_key == encryption_public_key(bytes(a.account.key))
    assert derive_encryption_key(bytes(a.account.key)).encode() != bytes(a.account.key)
    assert a.encryption_public_key != b.encryption_public_key


def test_encryption_key_is_the_hkdf_of_the_wallet_signature_in_the_checked_in_vectors():
    """The vectors the JavaScript side checks too (tests/unit/test_web_crypto.py): a wallet's
    eth_signTypedData_v4 of the message gives the signature, and the signature alone gives the key."""
    from eth_account.messages import encode_typed_data

    from aidoc.crypto.keys import encryption_key_from_signature, encryption_key_signature, encryption_key_typed_data

    vectors = json.loads((Path(__file__).parents[1] / "vectors" / "crypto.json").read_text())
    for vector in vectors["identity"]:
        key = bytes.fromhex(vector["privateKey"][2:])
        assert encryption_key_typed_data(vector["address"]) == vector["typedData"]
        signature = encryption_key_signature(key)
        assert "0x" + signature.hex() == vector["signature"]
        recovered = Account.recover_message(encode_typed_data(full_message=vector["typedData"]), signature=signature)
        assert recovered == vector["address"]
        private = encryption_key_from_signature(signature)
        assert bytes(private).hex() == vector["x25519PrivateKey"]
        assert Identity.from_private_key(key).encryption_public_key.hex() == vector["x25519PublicKey"]
        # v is not part of the seed: a signer that writes v as 0/1 derives the same key.
        assert bytes(encryption_key_from_signature(signature[:64] + bytes([signature[64] - 27]))) == bytes(private)
    commitment = vectors["commitment"]
    assert canonical_result(commitment["result"]).decode() == commitment["canonical"]
    assert "0x" + result_commitment(commitment["requestId"], bytes.fromhex(commitment["salt"]),
                                    canonical_result(commitment["result"])).hex() == commitment["commitment"]
    record = vectors["record"]
    assert decrypt_record(bytes.fromhex(record["ciphertext"]), bytes.fromhex(record["dataKey"])) == (
        record["dataType"], bytes.fromhex(record["plaintext"]))


def test_small_order_result_keys_are_recognised_as_unusable():
    from aidoc.crypto import usable_result_key

    assert usable_result_key(PrivateKey.generate().public_key.encode())
    for key in (b"\0" * 32, b"\1" + b"\0" * 31, bytes.fromhex("ec" + "ff" * 30 + "7f"), b"short"):
        assert not usable_result_key(key)


def test_a_key_envelope_nested_too_deep_is_malformed_not_a_crash():
    from nacl.public import PrivateKey

    from aidoc.crypto.envelope import unwrap_data_key
    from aidoc.errors import WrongKey

    with pytest.raises(WrongKey, match="malformed"):
        unwrap_data_key(b"[" * 5000, PrivateKey.generate())
