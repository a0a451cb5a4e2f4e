"""Who is acting: an Ethereum key (from an encrypted keystore or an environment variable) and the
X25519 encryption key derived from its signature.

Keystores are Web3 Secret Storage files (scrypt + AES-128-CTR, what geth, Brownie and eth-account
write) under AIDOC_KEYSTORE_DIR, named <name>.json. Their password comes from AIDOC_PASSWORD or a
prompt. A key in the environment (AIDOC_PRIVATE_KEY, AIDOC_NODE_PRIVATE_KEY for a node's processes)
is the alternative for servers that have a secret store."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from nacl.public import PrivateKey
from web3 import Web3

from aidoc.config import ENV_PREFIX
from aidoc.crypto.keys import derive_encryption_key
from aidoc.errors import AidocError, ConfigError

KEYSTORE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class KeystoreError(AidocError):
    """A keystore is missing, exists already, or does not open with the password given."""


@dataclass(frozen=True)
class Identity:
    account: LocalAccount

    @property
    def address(self) -> str:
        return self.account.address

    @cached_property
    def encryption_key(self) -> PrivateKey:
        """Derived from the account's signature of a fixed EIP-712 message (aidoc.crypto.keys), as
        the web app derives it from the user's wallet; computed once."""
        return derive_encryption_key(bytes(self.account.key))

    @property
    def encryption_public_key(self) -> bytes:
        return self.encryption_key.public_key.encode()

    @classmethod
    def from_private_key(cls, key: str | bytes) -> "Identity":
        try:
            return cls(Account.from_key(key))
        except (ValueError, TypeError):
            raise ConfigError("the private key is not 32 bytes of hex; check the variable that holds it") from None

    @classmethod
    def generate(cls) -> "Identity":
        return cls(Account.create())


def keystore_path(keystore_dir: Path, name: str) -> Path:
    if not KEYSTORE_NAME.match(name):
        raise KeystoreError(f"{name!r} is not a keystore name: use letters, digits, '.', '_' or '-'")
    return Path(keystore_dir) / f"{name}.json"


def save_keystore(keystore_dir: Path, name: str, identity: Identity, password: str) -> Path:
    """Writes `identity` encrypted under `password`; refuses to overwrite an existing keystore."""
    path = keystore_path(keystore_dir, name)
    if path.exists():
        raise KeystoreError(f"keystore {name!r} exists already at {path}; pick another name")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    encrypted = Account.encrypt(identity.account.key, password)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(encrypted, handle)
    return path


def keystore_address(keystore_dir: Path, name: str) -> str | None:
    """The checksummed address the keystore `name` declares (readable without its password), or
    None when there is no such keystore or it declares none."""
    try:
        path = keystore_path(keystore_dir, name)
        declared = json.loads(path.read_text()).get("address")
    except (KeystoreError, FileNotFoundError, ValueError, AttributeError):
        return None
    if not isinstance(declared, str) or not Web3.is_address("0x" + declared.removeprefix("0x")):
        return None
    return Web3.to_checksum_address("0x" + declared.removeprefix("0x"))


def load_keystore(keystore_dir: Path, name: str, password: str) -> Identity:
    path = keystore_path(keystore_dir, name)
    if not path.exists():
        raise KeystoreError(f"no keystore {name!r} in {keystore_dir}; create it with `aidoc account new {name}`")
    try:
        key = Account.decrypt(json.loads(path.read_text()), password)
    except ValueError:
        raise KeystoreError(f"the password does not open keystore {name!r}; check {ENV_PREFIX}PASSWORD") from None
    return Identity(Account.from_key(key))


def identity_from_key(key: str) -> Identity | None:
    """The identity of a private key given as hex (from KeySettings), or None when it is empty."""
    return Identity.from_private_key(key) if key else None
