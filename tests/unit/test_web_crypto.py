"""The browser's crypto (web/src/crypto.js) against the Python side, byte for byte: the checked-in
vectors (tests/vectors/crypto.json), and records and results sealed on one side and opened on the
other. Node runs web/src/crypto.js through tests/vectors/crypto_cli.mjs, one command per process."""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from nacl.public import PrivateKey, SealedBox

from aidoc.crypto import decrypt_record, encrypt_record, open_record, open_result, seal_result
from aidoc.crypto.envelope import NONCE_BYTES, RECORD_MAGIC, UNPADDED_MAGIC, record_bucket
from aidoc.crypto.result import canonical_result

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "tests" / "vectors" / "crypto_cli.mjs"
VECTORS = json.loads((REPO / "tests" / "vectors" / "crypto.json").read_text())


@pytest.fixture(scope="module")
def js():
    """Runs one crypto_cli.mjs command and returns its answer. Fails (never skips) without Node 20+
    and the npm packages: the browser's crypto is part of what this project ships."""
    node = shutil.which("node")
    missing = ["node (Node.js 20+ on PATH)"] if node is None else []
    missing += [f"node_modules/{name}" for name in ("viem", "libsodium-wrappers")
                if not (REPO / "node_modules" / name / "package.json").is_file()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: run `make install` (and `eval \"$(make -s env)\"`)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"web/src/crypto.js needs Node.js 20 or newer (WebCrypto, libsodium's ESM build), found {version}")

    def call(op: str, **args) -> dict:
        proc = subprocess.run([node, str(CLI)], input=json.dumps({"op": op, **args}), capture_output=True,
                              text=True, cwd=REPO, timeout=120)
        assert proc.returncode == 0, f"crypto_cli.mjs {op} exited {proc.returncode}: {proc.stderr}"
        return json.loads(proc.stdout)

    return call


def ok(answer: dict) -> dict:
    assert "error" not in answer, answer
    return answer


def python_error(function, *args, **kwargs) -> dict:
    """{name, message} of the error a Python function raises, to compare with the JavaScript one."""
    with pytest.raises(Exception) as raised:
        function(*args, **kwargs)
    return {"name": type(raised.value).__name__, "message": str(raised.value)}


def js_error(answer: dict) -> dict:
    assert "error" in answer, f"expected an error, got {answer}"
    return {"name": answer["error"]["name"], "message": answer["error"]["message"]}


def pub(key: PrivateKey) -> str:
    return key.public_key.encode().hex()


# --- 1: keys ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS["identity"], ids=lambda v: v["address"][:10])
def test_js_derives_the_vector_keys_and_viem_signs_the_vector_signature(js, vector):
    answer = ok(js("derive", signature=vector["signature"], address=vector["address"], ethPrivateKey=vector["privateKey"]))
    assert answer["privateKey"] == vector["x25519PrivateKey"]
    assert answer["publicKey"] == vector["x25519PublicKey"]
    assert answer["typedData"] == vector["typedData"]
    # A wallet-style signer (viem, RFC 6979 + low s) signs the same bytes as eth-account.
    assert answer["viemAddress"] == vector["address"]
    assert answer["viemSignature"] == vector["signature"]
    # v is not part of the seed: a signer that writes v as 0/1 derives the same key.
    v01 = vector["signature"][:-2] + format(int(vector["signature"][-2:], 16) - 27, "02x")
    assert ok(js("derive", signature=v01, address=vector["address"]))["privateKey"] == vector["x25519PrivateKey"]


# --- 2: record and commitment vectors ---------------------------------------------------------------

def test_js_reads_the_record_vector_and_computes_the_commitment_vector(js):
    record = VECTORS["record"]
    opened = ok(js("openRecord", ciphertext=record["ciphertext"], dataKey=record["dataKey"]))
    assert opened == {"dataType": record["dataType"], "plaintext": record["plaintext"]}
    vector = VECTORS["commitment"]
    answer = ok(js("commitment", requestId=str(vector["requestId"]), salt=vector["salt"],
                   resultJson=json.dumps(vector["result"])))
    assert answer["canonical"] == vector["canonical"]
    assert answer["commitment"] == vector["commitment"]


def test_js_canonical_form_of_numbers_and_strings_is_pythons(js):
    """JavaScript writes 1e-05 as 0.00001 and 1e-07 as 1e-7; canonicalResult must write Python's
    repr for every non-integral float, and escape strings as ensure_ascii does."""
    rng = random.Random(1234)
    floats = [0.1, 1e-05, 0.9288, 1e-07, 1.5e-300, 5e-324, 123456789.125, -2.5e-05, 0.0001, 0.00012,
              9007199254740.99, 1 / 3]
    while len(floats) < 400:
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if x == x and abs(x) != float("inf") and not x.is_integer():
            floats.append(x)
    floats += [rng.uniform(-1, 1) * 10 ** rng.randint(-12, 15) for _ in range(400)]
    floats = [x for x in floats if not x.is_integer()]  # JavaScript cannot tell 1.0 from 1 (see openResult)
    result = {"floats": floats, "ints": [0, -7, 2**53 - 1, 10**16], "text": "é ü \n \"q\" \\ \x7f \x01 😀 \ue000",
              "\ue000": 1, "😀": 2, "z": 3, "A": {"b": [True, False, None]}}
    answer = ok(js("commitment", requestId="1", salt="00" * 32, resultJson=json.dumps(result)))
    assert answer["canonical"] == canonical_result(result).decode()


# --- 3: records sealed in JavaScript open in Python ---------------------------------------------------

@pytest.mark.parametrize(("data_type", "size"), [(1, 10), (1, 2000), (2, 10), (2, 70_000), (9, 10)])
def test_js_records_open_in_python_for_every_recipient_and_pad_like_python(js, data_type, size):
    nodes = [PrivateKey.generate() for _ in range(2)]
    plaintext = random.Random(size).randbytes(size)
    answer = ok(js("encryptRecord", plaintext=plaintext.hex(), recipients=[pub(k) for k in nodes], dataType=data_type))
    ciphertext, envelope = bytes.fromhex(answer["ciphertext"]), bytes.fromhex(answer["keyEnvelope"])
    for key in nodes:
        assert open_record(ciphertext, envelope, key) == (data_type, plaintext)
    python = encrypt_record(plaintext, [k.public_key.encode() for k in nodes], data_type=data_type)
    assert len(ciphertext) == len(python.ciphertext)
    assert ciphertext[:len(RECORD_MAGIC) + 1] == RECORD_MAGIC + bytes([data_type])
    # The envelope is written exactly as Python writes one.
    parsed = json.loads(envelope)
    assert envelope == json.dumps(parsed, sort_keys=True).encode()
    assert parsed["version"] == 1 and sorted(parsed["recipients"]) == sorted(pub(k) for k in nodes)
    assert len(envelope) == len(python.key_envelope)


def test_js_size_buckets_are_pythons(js):
    mib = 1024 * 1024
    sizes = [0, 1, 1019, 1020, 1021, 2044, 2045, 5000, 65531, 65532, 65533, 262140, 262141, mib - 4, mib - 3,
             mib, 3 * mib, 5 * mib + 1, 17 * mib - 5]
    cases = [[data_type, size] for data_type in (0, 1, 2, 3, 255) for size in sizes]
    assert ok(js("bucket", cases=cases))["buckets"] == [record_bucket(t, n) for t, n in cases]


def test_js_refuses_a_record_without_recipients_as_python_does(js):
    answer = js("encryptRecord", plaintext="00", recipients=[], dataType=1)
    assert js_error(answer)["message"] == python_error(encrypt_record, b"\0", [], data_type=1)["message"]


# --- 4: records sealed in Python open in JavaScript, and every way one can be wrong ------------------

def test_python_records_open_in_js(js):
    key = PrivateKey.generate()
    sealed = encrypt_record(b"a panel from python", [key.public_key.encode()], data_type=2)
    answer = ok(js("openRecord", ciphertext=sealed.ciphertext.hex(), keyEnvelope=sealed.key_envelope.hex(),
                   privateKey=bytes(key).hex()))
    assert answer == {"dataType": 2, "plaintext": b"a panel from python".hex()}


@pytest.mark.parametrize("position", [0, 5, 10, 17, 18, 200, -1])  # magic, data type, nonce, body, tag
def test_a_flipped_byte_gives_pythons_error_in_js(js, position):
    key = PrivateKey.generate()
    sealed = encrypt_record(b"a record of some length", [key.public_key.encode()], data_type=1)
    tampered = bytearray(sealed.ciphertext)
    tampered[position] ^= 0x40
    answer = js("openRecord", ciphertext=tampered.hex(), keyEnvelope=sealed.key_envelope.hex(), privateKey=bytes(key).hex())
    error = js_error(answer)
    assert error == python_error(open_record, bytes(tampered), sealed.key_envelope, key)
    assert error["name"] == "CorruptCiphertext"
    assert ("not an AIDoc record" if 0 <= position < len(RECORD_MAGIC) else "altered") in error["message"]


def test_truncated_and_unpadded_and_badly_padded_records_in_js(js):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    def by_hand(magic: bytes, body: bytes) -> tuple[bytes, bytes]:
        data_key, nonce = AESGCM.generate_key(bit_length=256), bytes(range(NONCE_BYTES))
        header = magic + b"\x01" + nonce
        return header + AESGCM(data_key).encrypt(nonce, body, header), data_key

    ciphertext, data_key = by_hand(UNPADDED_MAGIC, b"first format")
    assert ok(js("openRecord", ciphertext=ciphertext.hex(), dataKey=data_key.hex()))["plaintext"] == b"first format".hex()
    for body in (b"\0\0\4\1" + b"x" * 20, b"\0\0\0\2ab" + b"\0" * 5 + b"\1", b"\0\0"):
        ciphertext, data_key = by_hand(RECORD_MAGIC, body)
        error = js_error(js("openRecord", ciphertext=ciphertext.hex(), dataKey=data_key.hex()))
        assert error == python_error(decrypt_record, ciphertext, data_key) and "padding" in error["message"]
    ciphertext, data_key = by_hand(RECORD_MAGIC, b"\0\0\0\0")
    for cut in (0, 20, 33):
        error = js_error(js("openRecord", ciphertext=ciphertext[:cut].hex(), dataKey=data_key.hex()))
        assert error == python_error(decrypt_record, ciphertext[:cut], data_key)


def test_wrong_keys_and_malformed_envelopes_give_pythons_wrong_key_errors_in_js(js):
    mine, other = PrivateKey.generate(), PrivateKey.generate()
    sealed = encrypt_record(b"x", [other.public_key.encode()], data_type=1)
    swapped = json.loads(sealed.key_envelope)
    swapped["recipients"] = {pub(mine): swapped["recipients"][pub(other)]}
    envelopes = {
        "not addressed": sealed.key_envelope,
        "does not open": json.dumps(swapped).encode(),
        "malformed": b"[1, 2",
        "malformed ": json.dumps({"recipients": {pub(mine): "not base64!"}}).encode(),
        "not addressed ": b'{"version": 1}',
        "malformed  ": b'{"recipients": [1]}',
    }
    for expected, envelope in envelopes.items():
        error = js_error(js("openRecord", ciphertext=sealed.ciphertext.hex(), keyEnvelope=envelope.hex(),
                            privateKey=bytes(mine).hex()))
        assert error == python_error(open_record, sealed.ciphertext, envelope, mine)
        assert error["name"] == "WrongKey" and expected.strip() in error["message"]


# --- 5: results, both ways --------------------------------------------------------------------------

RESULT = {"label": "malignant", "model": 3, "score": 1.0, "tiny": 1e-05, "big": 2**70,
          "probabilities": {"benign": 0.0712, "malignant": 0.9288, "other": 0.1},
          "detail": {"z": [1, 2.5, {"b": 1e16, "a": -0.0, "c": 1e22}], "é": "ü\n\"x\"", "😀": True, "\ue000": None}}


def test_python_results_open_in_js_with_pythons_commitment(js):
    doctor = PrivateKey.generate()
    sealed = seal_result(2**200 + 7, RESULT, doctor.public_key.encode())
    answer = ok(js("openResult", ciphertext=sealed.ciphertext.hex(), privateKey=bytes(doctor).hex()))
    assert answer["commitment"] == "0x" + sealed.commitment.hex()
    assert answer["resultBytes"] == canonical_result(RESULT).hex()
    opened = open_result(sealed.ciphertext, doctor)
    assert answer["requestId"] == str(2**200 + 7) and answer["salt"] == opened.salt.hex()
    assert answer["result"]["label"] == "malignant" and answer["result"]["probabilities"] == RESULT["probabilities"]
    assert answer["result"]["big"] == str(2**70) and answer["result"]["tiny"] == 1e-05


def test_random_floats_in_a_python_result_keep_pythons_commitment_in_js(js):
    rng = random.Random(99)
    values = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(600)]
    values = [x for x in values if x == x and abs(x) != float("inf")]
    values += [float(rng.randint(-10**6, 10**6)) for _ in range(50)] + [rng.randint(-10**30, 10**30) for _ in range(20)]
    doctor = PrivateKey.generate()
    sealed = seal_result(1, {"values": values}, doctor.public_key.encode())
    answer = ok(js("openResult", ciphertext=sealed.ciphertext.hex(), privateKey=bytes(doctor).hex()))
    assert answer["commitment"] == "0x" + sealed.commitment.hex()


def test_a_result_body_not_in_canonical_form_gets_the_commitment_python_computes(js):
    """Another sealer may write spaces, unsorted or repeated keys, 1.0E2 or escapes: Python's
    open_result re-serializes the parsed result, and so must openResult."""
    doctor = PrivateKey.generate()
    body = ('{ "version": 1, "salt": "' + "ab" * 32 + '", "result": {"b": 1.0E2, "a": "\\u00e9\\/", "a": [ 1 , -0 ,'
            ' 0.50, 1E400, NaN ], "c": {"y": 1, "x": 2}}, "requestId": 5 }  \n').encode()
    ciphertext = SealedBox(doctor.public_key).encrypt(body)
    answer = ok(js("openResult", ciphertext=ciphertext.hex(), privateKey=bytes(doctor).hex()))
    opened = open_result(ciphertext, doctor)
    assert answer["commitment"] == "0x" + opened.commitment.hex()
    assert bytes.fromhex(answer["resultBytes"]) == canonical_result(opened.result)


def test_js_results_open_in_python_with_the_js_commitment(js):
    doctor = PrivateKey.generate()
    result = {"label": "benign", "model": 3, "probabilities": {"benign": 0.9288, "malignant": 0.0712},
              "tiny": 1e-05, "small": 2.5e-07, "other": 0.1, "nested": {"é": ["ü", 1.5, {"b": None, "a": False}]}}
    answer = ok(js("sealResult", requestId=str(2**200 + 7), resultJson=json.dumps(result), publicKey=pub(doctor)))
    ciphertext = bytes.fromhex(answer["ciphertext"])
    opened = open_result(ciphertext, doctor)
    assert opened.request_id == 2**200 + 7 and opened.result == result
    assert "0x" + opened.commitment.hex() == answer["commitment"]
    assert len(ciphertext) == len(seal_result(2**200 + 7, result, doctor.public_key.encode()).ciphertext)
    assert SealedBox(doctor).decrypt(ciphertext).endswith(b" ") and len(ciphertext) % 1024 == 48


# --- 6: results that do not open ---------------------------------------------------------------------

def test_results_that_do_not_open_give_pythons_one_line_errors_in_js(js):
    doctor, other = PrivateKey.generate(), PrivateKey.generate()
    sealed = seal_result(1, {"label": "benign"}, doctor.public_key.encode())
    error = js_error(js("openResult", ciphertext=sealed.ciphertext.hex(), privateKey=bytes(other).hex()))
    assert error == python_error(open_result, sealed.ciphertext, other)
    assert error["name"] == "WrongKey" and "\n" not in error["message"]
    for body, name in ((b"not json", "CorruptCiphertext"), (b'{"result": {}}', "CorruptCiphertext"),
                       (b'[1, 2]', "CorruptCiphertext"), (b'{"requestId": 1, "salt": "zz", "result": {}}', "CorruptCiphertext")):
        ciphertext = SealedBox(doctor.public_key).encrypt(body)
        error = js_error(js("openResult", ciphertext=ciphertext.hex(), privateKey=bytes(doctor).hex()))
        assert error == python_error(open_result, ciphertext, doctor) and error["name"] == name
