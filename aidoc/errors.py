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
