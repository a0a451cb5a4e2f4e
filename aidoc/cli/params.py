"""What every command group shares: the options (--account, --json), the parsers of amounts, ids,
addresses, data types and purposes, who a command acts as, how listings print, and the one error
policy every command runs under (`CommandGroup` applies it, so no command can forget it)."""

from __future__ import annotations

import functools
import json
import sys
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from web3 import Web3

from aidoc.config import AID, KeySettings, ServiceSettings
from aidoc.constants import DataType, Purpose
from aidoc.errors import ConfigError, one_line, user_error_types
from aidoc.identity import Identity, identity_from_key, keystore_address, load_keystore

if TYPE_CHECKING:
    from aidoc.flow.session import Session

# Piped output (scripts, logs) gets wide tables instead of cut-off addresses.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, soft_wrap=True)  # one line per error, however long

AccountOption = typer.Option(None, "--account", "-a",
                             help="keystore name (default: AIDOC_ACCOUNT; or set AIDOC_PRIVATE_KEY)")
NodeAccountOption = typer.Option(None, "--account", "-a",
                                 help="the node's keystore name (else, first set of: AIDOC_NODE_PRIVATE_KEY, "
                                      "AIDOC_NODE_ACCOUNT, AIDOC_ACCOUNT, AIDOC_PRIVATE_KEY)")
JsonOption = typer.Option(False, "--json",
                          help="print one JSON document instead of a table: amounts of AID as strings of wei units "
                               "(18 decimals), addresses checksummed, times as Unix seconds")


# ---------------------------------------------------------------- the error policy


def user_errors(command: Callable) -> Callable:
    """The project's one error policy (aidoc.errors.exit_on_user_error) for a command: a user error
    (`user_error_types`: AidocError, OSError, web3's errors) ends the command with exactly one
    `error: ...` line on stderr and exit status 1, never a traceback; anything else is a bug and
    keeps its traceback. Only the presentation is the CLI's own (rich, in red on a terminal)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except user_error_types() as error:
            errors.print(f"[red]error:[/red] {escape(one_line(error))}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


class CommandGroup(typer.Typer):
    """A group of commands (one module of aidoc.cli each) whose every command runs under
    `user_errors`."""

    def __init__(self, help: str, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(help=help, pretty_exceptions_enable=False, add_completion=False, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable], Callable]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable) -> Callable:
            register(user_errors(function))
            return function

        return decorator


# ---------------------------------------------------------------- parsers


def parse_aid(amount: str) -> int:
    """'1.5' AID -> wei units."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise ConfigError(f"{amount!r} is not an amount of AID; write it like 1.5") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{amount} is not an amount of AID; write a number of 0 or more, like 1.5")
    return int(value * AID)


def checked_address(value: str, what: str) -> str:
    """A checksummed Ethereum address, given as one or as the name of a keystore (`aidoc faucet
    alice`: its declared address, no password needed), or one line saying what is wrong with `value`."""
    if Web3.is_address(value):
        return Web3.to_checksum_address(value)
    named = keystore_address(ServiceSettings().keystore_dir, value)
    if named is None:
        raise ConfigError(f"{value!r} is neither an Ethereum address nor a keystore name (the {what}); write 0x and "
                          "40 hex digits, or a name from `aidoc account list`")
    return named


def positive(value: int, what: str) -> int:
    """An id of `what`, which counts from 1."""
    if value < 1:
        raise ConfigError(f"{value} is not a {what} id; ids count from 1")
    return value


def parse_data_type(name: str) -> DataType:
    aliases = {"panel": DataType.LAB_PANEL, "lab_panel": DataType.LAB_PANEL, "ecg": DataType.ECG,
               "image": DataType.IMAGE}
    try:
        return aliases[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown data type {name!r}; use panel or ecg") from None


def parse_purposes(names: list[str]) -> Purpose:
    purposes = Purpose(0)
    for name in names:
        try:
            purposes |= Purpose[name.upper()]
        except KeyError:
            raise ConfigError(f"unknown purpose {name!r}; use {', '.join(p.name.lower() for p in Purpose)}") from None
    return purposes


def show_aid(units: int) -> str:
    return f"{Decimal(units) / AID:,.4f} AID"


# ---------------------------------------------------------------- who acts


def identity_for(account: Optional[str], services: ServiceSettings) -> Identity:
    """The keystore `account` (or AIDOC_ACCOUNT; password from AIDOC_PASSWORD or a prompt), else
    AIDOC_PRIVATE_KEY."""
    keys = KeySettings()
    account = account or keys.account or None
    if account is None:
        identity = identity_from_key(keys.private_key)
        if identity is not None:
            return identity
        raise ConfigError("say who acts: --account NAME (see `aidoc account list`) or set AIDOC_PRIVATE_KEY")
    return open_keystore(services, account, keys)


def ask_password(name: str) -> str:
    return typer.prompt(f"password for keystore {name}", hide_input=True)


def open_keystore(services: ServiceSettings, name: str, keys: KeySettings) -> Identity:
    return load_keystore(services.keystore_dir, name, keys.password if keys.password is not None else ask_password(name))


def new_password(keys: KeySettings | None = None) -> str:
    """A new keystore's password: AIDOC_PASSWORD, or asked twice."""
    keys = keys or KeySettings()
    return keys.password or typer.prompt("new password", hide_input=True, confirmation_prompt=True)


def session_for(account: Optional[str]) -> "Session":
    """A session acting as `account` (identity_for)."""
    from aidoc.flow.session import Session

    services = ServiceSettings()
    return Session(identity=identity_for(account, services), services=services)


def reader_for(account: Optional[str]) -> "Session":
    """A session for a command that only reads the chain: as `account` or AIDOC_PRIVATE_KEY when
    given, else as a throwaway identity (a read signs nothing and pays nothing)."""
    from aidoc.flow.session import Session

    services = ServiceSettings()
    if account is None and not KeySettings().private_key:
        return Session(identity=Identity.generate(), services=services)
    return Session(identity=identity_for(account, services), services=services)


# ---------------------------------------------------------------- output


def table(*columns: str) -> Table:
    """A table whose address columns (named 'grantee', 'provider', 'who', 'address', 'node',
    'buyer') are never cut short."""
    made = Table()
    for column in columns:
        if column in ("grantee", "provider", "who", "address", "node", "buyer"):
            made.add_column(column, no_wrap=True, min_width=42)
        else:
            made.add_column(column)
    return made


def wei(units: int) -> str:
    """An amount of AID in a JSON document: wei units as a decimal string (JSON numbers lose
    precision above 2**53 in most readers)."""
    return str(int(units))


def purpose_names(purposes: Purpose) -> list[str]:
    """A set of purposes in a JSON document: their lowercase names."""
    return [purpose.name.lower() for purpose in Purpose if purpose in purposes]


def show_purposes(purposes: Purpose) -> str:
    """A set of purposes for people: 'diagnosis, research', or 'none'."""
    return ", ".join(purpose_names(purposes)) or "none"


def show_time(timestamp: int, seconds: bool = False) -> str:
    """A chain timestamp in UTC ('-' for none)."""
    return time.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "") + " UTC", time.gmtime(timestamp)) if timestamp \
        else "-"


def show_duration(seconds: float) -> str:
    """'1 hour', '14.4 minutes', '30 days'."""
    unit, size = next(((u, s) for u, s in (("day", 86400), ("hour", 3600), ("minute", 60)) if seconds >= s),
                      ("second", 1))
    count = round(seconds / size, 1)
    return f"{count:g} {unit}{'' if count == 1 else 's'}"


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def print_json(document: Any) -> None:
    """One JSON document on stdout, whatever the terminal's width."""
    typer.echo(json.dumps(document, indent=2))


def emit(as_json: bool, document: Callable[[], Any], render: Callable[[], Any]) -> None:
    """A listing's output: `document()` as JSON with --json, else `render()` (a table or lines)."""
    if as_json:
        print_json(document())
        return
    shown = render()
    for item in shown if isinstance(shown, list) else [shown]:
        console.print(item)
