"""`aidoc node ...`: compute nodes (register, run, list)."""

from __future__ import annotations

from typing import Optional

import typer

from aidoc.cli.params import (
    AccountOption,
    CommandGroup,
    JsonOption,
    NodeAccountOption,
    ask_password,
    console,
    emit,
    hex32,
    parse_aid,
    parse_data_type,
    reader_for,
    session_for,
    show_aid,
    table,
    wei,
)
from aidoc.config import OracleSettings, ServiceSettings
from aidoc.errors import ConfigError

app = CommandGroup("Compute nodes.")


@app.command("register")
def node_register(stake: str = typer.Option("1000"), fee: str = typer.Option("2", help="AID per diagnosis"),
                  types: list[str] = typer.Option(["panel", "ecg"], "--type"), gpu: bool = typer.Option(False),
                  account: Optional[str] = AccountOption) -> None:
    """Stake AID and register this node with its X25519 key (derived from its account key)."""
    from aidoc.flow.node import register_node

    stake_units, fee_units, data_types = parse_aid(stake), parse_aid(fee), [parse_data_type(t) for t in types]
    session = session_for(account)
    register_node(session, stake_units, fee_units, data_types, gpu)
    console.print(f"node {session.address} registered")


@app.command("run")
def node_run(account: Optional[str] = NodeAccountOption,
             concurrency: Optional[int] = typer.Option(
                 None, help="Celery worker processes (default: AIDOC_WORKER_CONCURRENCY, which is 2 unless set)")
             ) -> None:
    """Run this node's Celery worker, watcher and sender until Ctrl-C."""
    from aidoc.node.runtime import node_identity
    from aidoc.stack.local import run_node

    if concurrency is None:
        concurrency = OracleSettings().worker_concurrency
    elif concurrency < 1:
        raise ConfigError(f"--concurrency {concurrency} is not a number of processes; give 1 or more")
    services = ServiceSettings()
    run_node(services, node_identity(services, account, ask_password, users_key=True), concurrency, console.print)


@app.command("list")
def node_list(all_nodes: bool = typer.Option(False, "--all", help="also list nodes that withdrew their stake"),
              account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Registered nodes: stake, fee, the data types they read, GPU, status and reputation (no account
    needed)."""
    from aidoc.flow.node import list_nodes

    nodes = list_nodes(reader_for(account), include_withdrawn=all_nodes)

    def rows():
        shown = table("address", "stake", "fee", "types", "gpu", "status", "fulfilled", "failed", "timed out",
                      "slashed")
        for node in nodes:
            reputation = node.reputation
            shown.add_row(node.address, show_aid(node.stake), show_aid(node.fee),
                          ", ".join(t.name.lower() for t in node.data_types), "yes" if node.gpu else "no",
                          node.status.value, str(reputation.fulfilled), str(reputation.failed),
                          str(reputation.timed_out), str(reputation.slashed))
        return shown

    emit(as_json, lambda: [{
        "address": node.address, "stake": wei(node.stake), "fee": wei(node.fee),
        "data_types": [t.name.lower() for t in node.data_types], "gpu": node.gpu, "status": node.status.value,
        "unbonding_end": node.unbonding_end, "encryption_key": hex32(node.encryption_key),
        "reputation": {"fulfilled": node.reputation.fulfilled, "failed": node.reputation.failed,
                       "timed_out": node.reputation.timed_out, "slashed": node.reputation.slashed},
    } for node in nodes], rows)
