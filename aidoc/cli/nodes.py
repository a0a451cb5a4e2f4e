"""`aidoc node ...`: compute nodes (register, run, list, status, withdraw, unbond)."""

from __future__ import annotations

from typing import Optional

import typer

from aidoc.cli.params import (
    AccountOption,
    CommandGroup,
    JsonOption,
    NodeAccountOption,
    ask_password,
    checked_address,
    console,
    emit,
    hex32,
    parse_aid,
    parse_data_type,
    reader_for,
    session_for,
    show_aid,
    show_time,
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


@app.command("status")
def node_status(node: Optional[str] = typer.Argument(None, help="address or keystore name (default: "
                                                                "AIDOC_NODE_ACCOUNT or AIDOC_NODE_PRIVATE_KEY)"),
                as_json: bool = JsonOption) -> None:
    """A node's stake, status, earnings and reputation; and, where its Redis (AIDOC_REDIS_URL)
    answers, how far its watcher is synced, its backlog and its last fulfilment. Reads only."""
    from aidoc.flow.node import node_report

    address = checked_address(node, "node") if node else _configured_node()
    services = ServiceSettings()
    report = node_report(reader_for(None), address, services.redis_url)
    info, local = report.info, report.local

    def lines():
        shown = [f"node {info.address}: {info.status.value}, stake {show_aid(info.stake)}, fee {show_aid(info.fee)}, "
                 f"types {', '.join(t.name.lower() for t in info.data_types)}",
                 f"earnings to withdraw: {show_aid(report.earnings)} (aidoc node withdraw)",
                 f"reputation: {info.reputation.fulfilled} fulfilled, {info.reputation.failed} failed, "
                 f"{info.reputation.timed_out} timed out, {info.reputation.slashed} slashed"]
        if info.unbonding_end:
            shown.append(f"unbonding until {show_time(info.unbonding_end)}")
        if local is None:
            shown.append(f"its Redis at {services.redis_url} does not answer: no local state")
        else:
            synced = "never scanned" if local.synced_block is None else (
                f"block {local.synced_block} of {report.head} ({report.head - local.synced_block} behind)")
            last = "none yet" if local.last_fulfilment is None else (
                f"request {local.last_fulfilment[0]} at {show_time(int(local.last_fulfilment[1]), seconds=True)}")
            shown += [f"watcher synced to {synced}",
                      f"backlog: {local.queued_tasks} task(s) queued, {local.outbox['pending']} result(s) to send, "
                      f"{local.outbox['processing']} in a transaction, {local.outbox['publish']} to publish",
                      f"last fulfilment: {last}"]
        return shown

    emit(as_json, lambda: {
        "address": info.address, "status": info.status.value, "stake": wei(info.stake), "fee": wei(info.fee),
        "earnings": wei(report.earnings), "head": report.head, "unbonding_end": info.unbonding_end,
        "local": None if local is None else {
            "synced_block": local.synced_block, "queued_tasks": local.queued_tasks, "outbox": local.outbox,
            "last_fulfilment": None if local.last_fulfilment is None else
            {"request_id": local.last_fulfilment[0], "at": local.last_fulfilment[1]}}}, lines)


def _configured_node() -> str:
    from aidoc.config import KeySettings
    from aidoc.identity import identity_from_key, keystore_address

    keys = KeySettings()
    if keys.node_account:
        found = keystore_address(ServiceSettings().keystore_dir, keys.node_account)
        if found:
            return found
    identity = identity_from_key(keys.node_private_key)
    if identity is not None:
        return identity.address
    raise ConfigError("say which node: give its address or keystore name, or set AIDOC_NODE_ACCOUNT")


@app.command("withdraw")
def node_withdraw(to: Optional[str] = typer.Option(None, help="where to send them (default: the node)"),
                  account: Optional[str] = AccountOption) -> None:
    """Withdraw the node's earnings from the market."""
    from aidoc.flow.node import withdraw_earnings

    recipient = checked_address(to, "recipient") if to else None
    session = session_for(account)
    amount = withdraw_earnings(session, recipient)
    console.print(f"withdrew {show_aid(amount)} of earnings to {recipient or session.address}")


@app.command("unbond")
def node_unbond(account: Optional[str] = AccountOption) -> None:
    """Leave: the first call begins unbonding (no new requests; the stake stays slashable until the
    delay ends); run it again after the delay to withdraw the stake."""
    from aidoc.flow.node import unbond

    session = session_for(account)
    step, value = unbond(session)
    if step == "unbonding":
        console.print(f"node {session.address} is unbonding: it takes no new requests; run `aidoc node unbond` "
                      f"again after {show_time(value)} to withdraw its stake")
    else:
        console.print(f"node {session.address} withdrew its stake of {show_aid(value)}")
