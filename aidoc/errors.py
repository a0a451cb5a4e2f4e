"""The package's exception root. Every error a user can cause is an AidocError whose message
says what to do about it, so entry points print one line instead of a traceback."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class AidocError(Exception):
    """Root of every error raised by the aidoc package."""


class ConfigError(AidocError):
    """A setting is missing or malformed."""


class DeploymentNotFound(AidocError):
    """No deployment record exists for the connected chain."""


class TransientError(AidocError):
    """A service (IPFS, the RPC endpoint, Redis) is unreachable or busy: retrying later may work."""


class StorageError(AidocError):
    """Content storage failed."""


class StorageUnavailable(StorageError, TransientError):
    """The IPFS daemon or the embedded store cannot be reached right now."""


class ContentNotFound(StorageError):
    """No content is stored under a CID (the store answered, and it does not have it)."""


class ContentUnreachable(StorageUnavailable):
    """The store found no copy of a CID within its lookup timeout: it may yet turn up, so retry."""


class ContentMismatch(StorageError):
    """Bytes returned for a CID do not hash to that CID, or the CID is malformed."""


class ContentTooLarge(StorageError):
    """Content is larger than the caller allows."""


class CryptoError(AidocError):
    """Decryption or key unwrapping failed."""


class WrongKey(CryptoError):
    """The key envelope holds no data key for this node's key, or it does not open with it."""


class CorruptCiphertext(CryptoError):
    """A ciphertext is truncated or was tampered with (its authentication tag does not verify)."""


class RecordFormatError(AidocError):
    """A health record file or decoded record is not in a supported format."""


class ModelArtifactError(AidocError):
    """Model weights are not a loadable model of a known kind."""


class WeightsHashMismatch(ModelArtifactError):
    """Model weights do not match the sha256 registered on-chain."""


def exit_on_user_error(entry_point: Callable[..., T]) -> Callable[..., T]:
    """Wraps a command or script entry point: an AidocError ends it with one line on stderr and
    exit status 1; anything else is a bug and keeps its traceback."""

    @functools.wraps(entry_point)
    def wrapper(*args, **kwargs):
        try:
            return entry_point(*args, **kwargs)
        except AidocError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper
