"""`aidoc`: the command line of AIDoc chain. Every command reads AIDOC_* settings (README); one that
acts as someone takes --account NAME (a keystore in AIDOC_KEYSTORE_DIR, opened with AIDOC_PASSWORD or
a prompt) or AIDOC_PRIVATE_KEY. A mistake ends with one line on stderr and exit status 1."""

from __future__ import annotations

import functools
import os
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from web3 import Web3
from web3.exceptions import Web3Exception

from aidoc.config import AID, ENV_PREFIX, ServiceSettings
from aidoc.constants import DataType, Purpose
from aidoc.errors import AidocError, ConfigError
from aidoc.identity import Identity, identity_from_env, load_keystore, save_keystore

app = typer.Typer(help="AIDoc chain: consented health records, diagnostic models and paid oracle diagnoses.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
account_app = typer.Typer(help="Keystores: one per patient, doctor, provider or node.", no_args_is_help=True)
record_app = typer.Typer(help="Encrypted health records.", no_args_is_help=True)
consent_app = typer.Typer(help="Who may use a record, for what, until when.", no_args_is_help=True)
model_app = typer.Typer(help="Diagnostic models.", no_args_is_help=True)
node_app = typer.Typer(help="Compute nodes.", no_args_is_help=True)
for sub, name in ((account_app, "account"), (record_app, "record"), (consent_app, "consent"), (model_app, "model"),
                  (node_app, "node")):
    app.add_typer(sub, name=name)

# Piped output (scripts, logs) gets wide tables instead of cut-off addresses.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, soft_wrap=True)  # one line per error, however long

AccountOption = typer.Option(None, "--account", "-a", envvar=ENV_PREFIX + "ACCOUNT",
                             help="keystore name (or set AIDOC_PRIVATE_KEY)")


def user_errors(command):
    """One clear line for a user's mistake or an unreachable service, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except AidocError as error:
            errors.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
            raise typer.Exit(1) from None
        except (OSError, Web3Exception) as error:
            errors.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def table(*columns: str) -> Table:
    """A table whose address columns (named 'grantee', 'provider', 'who') are never cut short."""
    made = Table()
    for column in columns:
        if column in ("grantee", "provider", "who"):
            made.add_column(column, no_wrap=True, min_width=42)
        else:
            made.add_column(column)
    return made


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
    """A checksummed Ethereum address, or one line saying what is wrong with `value`."""
    if not Web3.is_address(value):
        raise ConfigError(f"{value!r} is not an Ethereum address (the {what}); write it as 0x and 40 hex digits")
    return Web3.to_checksum_address(value)


def positive(value: int, what: str) -> int:
    if value < 1:
        raise ConfigError(f"{value} is not a {what} id; ids count from 1")
    return value


def show_aid(units: int) -> str:
    return f"{Decimal(units) / AID:,.4f} AID"


def identity_for(account: Optional[str], services: ServiceSettings) -> Identity:
    from_env = identity_from_env("PRIVATE_KEY")
    if account is None:
        if from_env is not None:
            return from_env
        raise ConfigError("say who acts: --account NAME (see `aidoc account list`) or set AIDOC_PRIVATE_KEY")
    password = os.environ.get(ENV_PREFIX + "PASSWORD")
    if password is None:
        password = typer.prompt(f"password for keystore {account}", hide_input=True)
    return load_keystore(services.keystore_dir, account, password)


def session_for(account: Optional[str]):
    from aidoc.flow.session import Session

    services = ServiceSettings()
    return Session(identity=identity_for(account, services), services=services)


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


# ---------------------------------------------------------------- local stack


@app.command()
@user_errors
def up(chain: bool = typer.Option(True, help="start anvil unless AIDOC_RPC_URL answers already")) -> None:
    """Start the local stack in the background: anvil and Redis (IPFS: the embedded store)."""
    from aidoc.stack.local import start_stack

    for line in start_stack(ServiceSettings(), start_chain=chain):
        console.print(line)


@app.command()
@user_errors
def down() -> None:
    """Stop what `aidoc up` and `aidoc node run --detach` started."""
    from aidoc.stack.local import stop_stack

    for line in stop_stack(ServiceSettings()):
        console.print(line)


@app.command()
@user_errors
def deploy() -> None:
    """Deploy the marketplace with Brownie to AIDOC_RPC_URL's chain, from the project directory (the
    working directory or AIDOC_PROJECT_DIR); writes deployments/<chainId>.json."""
    from aidoc.chain.deployments import deploy_marketplace

    deploy_marketplace(ServiceSettings(), quiet=False)


@app.command()
@user_errors
def faucet(address: str, eth: str = typer.Option("10", help="ETH to send"),
           aid: str = typer.Option("1000", help="AID to send")) -> None:
    """Fund an account on a development chain from its unlocked deployer account."""
    from aidoc.chain.contracts import open_marketplace
    from aidoc.flow.faucet import fund

    fund(open_marketplace(ServiceSettings()), checked_address(address, "account to fund"), eth=parse_aid(eth),
         aid=parse_aid(aid))
    console.print(f"sent {eth} ETH and {aid} AID to {address}")


# ---------------------------------------------------------------- accounts


@account_app.command("new")
@user_errors
def account_new(name: str) -> None:
    """Create a keystore NAME with a fresh key (password from AIDOC_PASSWORD or a prompt)."""
    services = ServiceSettings()
    password = os.environ.get(ENV_PREFIX + "PASSWORD") or typer.prompt("new password", hide_input=True,
                                                                        confirmation_prompt=True)
    identity = Identity.generate()
    path = save_keystore(services.keystore_dir, name, identity, password)
    console.print(f"{name}: {identity.address} (keystore {path})")


@account_app.command("list")
@user_errors
def account_list() -> None:
    """List keystores and their addresses."""
    import json

    directory = ServiceSettings().keystore_dir
    for path in sorted(directory.glob("*.json")):
        console.print(f"{path.stem}: 0x{json.loads(path.read_text()).get('address', '?')}")


# ---------------------------------------------------------------- records and consent


@record_app.command("add")
@user_errors
def record_add(file: Path, node: list[str] = typer.Option(..., "--node", help="node address that may decrypt it"),
               royalty: str = typer.Option("1", help="AID you earn per diagnosis"),
               account: Optional[str] = AccountOption) -> None:
    """Encrypt a record (CSV/JSON panel, DICOM/CSV ECG), store it on IPFS and register it."""
    from aidoc.flow.record import add_record

    nodes, amount = [checked_address(n, "node") for n in node], parse_aid(royalty)
    record_id = add_record(session_for(account), file, nodes, amount)
    console.print(f"record {record_id} registered")


@consent_app.command("grant")
@user_errors
def consent_grant(record: int, grantee: str, purpose: list[str] = typer.Option(["diagnosis"], "--purpose"),
                  days: float = typer.Option(30, help="how long the consent lasts"),
                  account: Optional[str] = AccountOption) -> None:
    """Let GRANTEE use RECORD for --purpose until --days from now."""
    from aidoc.flow.consent import grant_consent

    record, grantee, purposes = positive(record, "record"), checked_address(grantee, "grantee"), parse_purposes(purpose)
    if not 0 < days < 36_500:
        raise ConfigError(f"--days {days:g} is out of range; consent lasts more than 0 and under 36,500 days")
    session = session_for(account)
    expiry = session.marketplace.w3.eth.get_block("latest")["timestamp"] + int(days * 86400)
    grant_consent(session, record, grantee, purposes, expiry)
    console.print(f"record {record}: {grantee} may use it for {', '.join(purpose)} for {days:g} days")


@consent_app.command("revoke")
@user_errors
def consent_revoke(record: int, grantee: str, purpose: list[str] = typer.Option(["diagnosis"], "--purpose"),
                   account: Optional[str] = AccountOption) -> None:
    """Take back GRANTEE's access to RECORD (pending requests are refunded)."""
    from aidoc.flow.consent import revoke_consent

    record, grantee, purposes = positive(record, "record"), checked_address(grantee, "grantee"), parse_purposes(purpose)
    revoke_consent(session_for(account), record, grantee, purposes)
    console.print(f"record {record}: consent of {grantee} revoked")


@consent_app.command("list")
@user_errors
def consent_list(record: int, account: Optional[str] = AccountOption) -> None:
    """Everyone granted access to RECORD and what they hold now."""
    from aidoc.flow.consent import list_consents

    rows = table("grantee", "purposes", "expiry", "active")
    for state in list_consents(session_for(account), positive(record, "record")):
        rows.add_row(state.grantee, str(state.purposes.name or "-"), time.strftime("%Y-%m-%d %H:%M", time.gmtime(
            state.expiry)), "yes" if state.active else "no")
    console.print(rows)


# ---------------------------------------------------------------- models and nodes


@model_app.command("register")
@user_errors
def model_register(weights: Path, name: str = typer.Option(...), input_type: str = typer.Option(..., help="panel|ecg"),
                   price: str = typer.Option("5", help="AID per diagnosis"),
                   account: Optional[str] = AccountOption) -> None:
    """Publish safetensors WEIGHTS on IPFS and register them with their sha256."""
    from aidoc.flow.model import register_model

    data_type, price_units = parse_data_type(input_type), parse_aid(price)
    model_id = register_model(session_for(account), weights, name, data_type, price_units)
    console.print(f"model {model_id} registered")


@model_app.command("list")
@user_errors
def model_list(account: Optional[str] = AccountOption) -> None:
    """Registered models."""
    from aidoc.flow.model import list_models

    rows = table("id", "name", "version", "input", "price", "status", "provider")
    for info in list_models(session_for(account)):
        rows.add_row(str(info.model_id), info.name, str(info.version), info.input_type.name, show_aid(info.price),
                      info.status.name, info.provider)
    console.print(rows)


@node_app.command("register")
@user_errors
def node_register(stake: str = typer.Option("1000"), fee: str = typer.Option("2", help="AID per diagnosis"),
                  types: list[str] = typer.Option(["panel", "ecg"], "--type"), gpu: bool = typer.Option(False),
                  account: Optional[str] = AccountOption) -> None:
    """Stake AID and register this node with its X25519 key (derived from its account key)."""
    from aidoc.flow.node import register_node

    stake_units, fee_units, data_types = parse_aid(stake), parse_aid(fee), [parse_data_type(t) for t in types]
    session = session_for(account)
    register_node(session, stake_units, fee_units, data_types, gpu)
    console.print(f"node {session.address} registered")


@node_app.command("run")
@user_errors
def node_run(account: Optional[str] = AccountOption,
             concurrency: int = typer.Option(2, help="Celery worker processes")) -> None:
    """Run this node's Celery worker, watcher and sender until Ctrl-C."""
    from aidoc.stack.local import run_node

    services = ServiceSettings()
    run_node(services, identity_for(account, services), concurrency, console.print)


# ---------------------------------------------------------------- diagnoses


@app.command()
@user_errors
def diagnose(record: int, model: int, node: str, max_total: Optional[str] = typer.Option(None),
             wait: bool = typer.Option(True, help="wait for the node to settle it"),
             account: Optional[str] = AccountOption) -> None:
    """Request a diagnosis of RECORD with MODEL by NODE, escrowing the fees."""
    from aidoc.flow.request import request_diagnosis
    from aidoc.flow.result import wait_for_settlements

    record, model, node = positive(record, "record"), positive(model, "model"), checked_address(node, "node")
    limit = parse_aid(max_total) if max_total is not None else None
    session = session_for(account)
    request_id, terms = request_diagnosis(session, record, model, node, limit)
    console.print(f"request {request_id}: {show_aid(terms.total)} escrowed")
    if wait:
        with console.status("waiting for the node"):
            settled = wait_for_settlements(session, [request_id], timeout=120)[request_id]
        console.print(f"request {request_id}: {settled.status.name.lower()}"
                      + (f" ({settled.failure.name})" if settled.failure else ""))


@app.command()
@user_errors
def result(request: int, account: Optional[str] = AccountOption) -> None:
    """Fetch, decrypt and verify the result of REQUEST."""
    from aidoc.flow.result import fetch_result

    opened = fetch_result(session_for(account), positive(request, "request"))
    console.print(f"request {request}: {opened.result['label']} "
                  + ", ".join(f"{k} {v:.3f}" for k, v in opened.result["probabilities"].items())
                  + " (matches the on-chain commitment)")


@app.command()
@user_errors
def audit(record: int, account: Optional[str] = AccountOption) -> None:
    """Who was granted RECORD, who used it, when and why."""
    from aidoc.flow.audit import audit_trail

    rows = table("time (UTC)", "action", "who", "purposes", "detail")
    for entry in audit_trail(session_for(account), positive(record, "record")):
        rows.add_row(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.timestamp)), entry.action, entry.party,
                      str(entry.purposes.name or "-"), entry.detail)
    console.print(rows)


if __name__ == "__main__":
    app()
