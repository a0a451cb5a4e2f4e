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


def user_error_types() -> tuple[type[BaseException], ...]:
    """What counts as the user's or the environment's doing, not a bug: an AidocError, a file or
    network failure (OSError), or an error web3 raises (a node that refused a call, a bad RPC URL)."""
    from web3.exceptions import Web3Exception

    return AidocError, OSError, Web3Exception


def one_line(error: BaseException) -> str:
    """An error's message on one line (an OSError without one still says what failed)."""
    text = str(error) or type(error).__name__
    return " ".join(text.split())


def exit_on_user_error(entry_point: Callable[..., T]) -> Callable[..., T]:
    """The one error policy of every entry point (the CLI's commands apply it through
    aidoc.cli.params.user_errors, the demos, the Brownie scripts and the node's processes directly):
    a user error (`user_error_types`) ends it with one `error: ...` line on stderr and exit status
    1; anything else is a bug and keeps its traceback."""

    @functools.wraps(entry_point)
    def wrapper(*args, **kwargs):
        try:
            return entry_point(*args, **kwargs)
        except user_error_types() as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper
