"""Record encryption: each record gets a fresh 256-bit data key and is sealed with AES-256-GCM; the
data key is wrapped to each chosen node's X25519 key with a libsodium sealed box (X25519 + XSalsa20-
Poly1305, an ephemeral sender key per box) in a key envelope, which is stored on IPFS next to the
ciphertext. Only the ciphertext, its sha256 and the two CIDs go on-chain.

A record's length would say what it is (a panel with an outcome recorded, an ECG's duration), so
the plaintext is padded inside the AES-GCM box to a size bucket of its data type: the length as 4
bytes big-endian, the record, zeros up to the bucket. Buckets start at the data type's
`MIN_BUCKET_BYTES` (every lab panel fits the first one; so does a 10 s ECG) and double up to 1 MiB,
then grow by 1 MiB. Ciphertexts of format 1 (no padding) still open."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from aidoc.errors import CorruptCiphertext, WrongKey

RECORD_MAGIC = b"AIDR\x02"  # format tag and version of a record ciphertext: padded to a size bucket
UNPADDED_MAGIC = b"AIDR\x01"  # the first format, read but no longer written
LENGTH_BYTES = 4
MIN_BUCKET_BYTES = {1: 1024, 2: 64 * 1024}  # per data type (lab panel, ECG); others start at DEFAULT_MIN_BUCKET
DEFAULT_MIN_BUCKET = 256 * 1024
BUCKET_STEP_ABOVE = 1024 * 1024  # past this, buckets grow by this much instead of doubling
NONCE_BYTES = 12
DATA_KEY_BYTES = 32
ENVELOPE_VERSION = 1


@dataclass(frozen=True)
class SealedRecord:
    """A record ready for storage: the ciphertext and the key envelope, both opaque bytes."""

    ciphertext: bytes
    key_envelope: bytes


def record_bucket(data_type: int, size: int) -> int:
    """The padded plaintext size for a record of `size` bytes (length prefix included)."""
    needed, bucket = size + LENGTH_BYTES, MIN_BUCKET_BYTES.get(data_type, DEFAULT_MIN_BUCKET)
    while bucket < needed and bucket < BUCKET_STEP_ABOVE:
        bucket *= 2
    if bucket < needed:
        bucket += -(-(needed - bucket) // BUCKET_STEP_ABOVE) * BUCKET_STEP_ABOVE
    return bucket


def encrypt_record(plaintext: bytes, recipients: list[bytes], *, data_type: int) -> SealedRecord:
    """Encrypts `plaintext`, padded to its data type's size bucket, under a fresh data key and wraps
    that key to every X25519 public key in `recipients` (32 bytes each). The data type is bound in
    as associated data."""
    if not recipients:
        raise ValueError("a record needs at least one recipient key, or nobody could ever read it")
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(NONCE_BYTES)
    header = RECORD_MAGIC + bytes([data_type]) + nonce
    padded = len(plaintext).to_bytes(LENGTH_BYTES, "big") + plaintext
    padded += bytes(record_bucket(data_type, len(plaintext)) - len(padded))
    ciphertext = header + AESGCM(data_key).encrypt(nonce, padded, header)
    return SealedRecord(ciphertext=ciphertext, key_envelope=wrap_data_key(data_key, recipients))


def wrap_data_key(data_key: bytes, recipients: list[bytes]) -> bytes:
    """A key envelope: the data key sealed to each recipient, keyed by the recipient's public key."""
    boxes = {
        PublicKey(key).encode().hex(): base64.b64encode(SealedBox(PublicKey(key)).encrypt(data_key)).decode()
        for key in recipients
    }
    return json.dumps({"version": ENVELOPE_VERSION, "recipients": boxes}, sort_keys=True).encode()


def unwrap_data_key(key_envelope: bytes, private_key: PrivateKey) -> bytes:
    """The data key in `key_envelope` for `private_key`; WrongKey when it holds none for it."""
    own = private_key.public_key.encode().hex()
    try:
        envelope = json.loads(key_envelope)
        sealed = base64.b64decode(envelope["recipients"][own], validate=True)
    except KeyError:
        raise WrongKey(f"the key envelope is not addressed to this node's key {own[:16]}…") from None
    except (ValueError, TypeError, AttributeError, RecursionError):  # RecursionError: JSON nested too deep
        raise WrongKey("the key envelope is malformed") from None
    try:
        data_key = SealedBox(private_key).decrypt(sealed)
    except (NaclCryptoError, ValueError, TypeError):
        raise WrongKey("the key envelope's entry for this node does not open with its key") from None
    if len(data_key) != DATA_KEY_BYTES:
        raise WrongKey("the key envelope holds a data key of the wrong length")
    return data_key


def decrypt_record(ciphertext: bytes, data_key: bytes) -> tuple[int, bytes]:
    """(data type, plaintext) of a record ciphertext; CorruptCiphertext when it was altered."""
    header_len = len(RECORD_MAGIC) + 1 + NONCE_BYTES
    magic = ciphertext[:len(RECORD_MAGIC)]
    if len(ciphertext) < header_len + 16 or magic not in (RECORD_MAGIC, UNPADDED_MAGIC):
        raise CorruptCiphertext("the record ciphertext is truncated or not an AIDoc record")
    header = ciphertext[:header_len]
    nonce = header[len(RECORD_MAGIC) + 1 :]
    try:
        plaintext = AESGCM(data_key).decrypt(nonce, ciphertext[header_len:], header)
    except InvalidTag:
        raise CorruptCiphertext("the record ciphertext fails authentication: it was altered or truncated") from None
    if magic == RECORD_MAGIC:
        length = int.from_bytes(plaintext[:LENGTH_BYTES], "big")
        padding = plaintext[LENGTH_BYTES + length:]
        if len(plaintext) < LENGTH_BYTES or LENGTH_BYTES + length > len(plaintext) or padding.count(0) != len(padding):
            raise CorruptCiphertext("the record's padding is malformed (its length prefix does not fit)")
        plaintext = plaintext[LENGTH_BYTES:LENGTH_BYTES + length]
    return header[len(RECORD_MAGIC)], plaintext


def open_record(ciphertext: bytes, key_envelope: bytes, private_key: PrivateKey) -> tuple[int, bytes]:
    """Unwraps the data key with `private_key` and decrypts the record."""
    return decrypt_record(ciphertext, unwrap_data_key(key_envelope, private_key))
