"""The command line without servers: one error policy for every command of every group, the shared
parsers, `--json` documents, and `aidoc node run` taking its concurrency from the settings."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner
from web3 import Web3
from web3.exceptions import Web3Exception

from aidoc.cli.main import app
from aidoc.cli.params import CommandGroup, checked_address, parse_aid, parse_purposes, positive, purpose_names
from aidoc.config import AID
from aidoc.constants import DataType, Purpose, input_types_mask
from aidoc.errors import AidocError, ConfigError
from aidoc.flow.node import data_types_of

runner = CliRunner()
KEY = "0x" + "11" * 32


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def leaf_commands(group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (Typer's own copy of click's Group)
            yield from leaf_commands(command, prefix + (name,))
        else:
            yield prefix + (name,)


def test_every_command_of_every_group_is_registered_under_the_error_policy():
    def registered(typer_app: typer.Typer):
        for info in typer_app.registered_commands:
            yield typer_app, info
        for group in typer_app.registered_groups:
            yield from registered(group.typer_instance)

    commands = list(registered(app))
    assert len(commands) == len(list(leaf_commands(get_command(app)))) >= 25
    for owner, info in commands:
        assert isinstance(owner, CommandGroup), f"{info.callback.__name__} is not in a CommandGroup"
        assert getattr(info.callback, "__wrapped__", None) is not None, f"{info.callback.__name__} is unwrapped"


@pytest.mark.parametrize("raised", [ConfigError("set AIDOC_X"), OSError(2, "No such file", "x.csv"),
                                    Web3Exception("the node refused\nit"), AidocError("")])
def test_the_policy_prints_one_error_line_and_exits_1(raised):
    group = CommandGroup("test")

    @group.command("fail")
    def fail() -> None:
        raise raised

    @group.command("other")
    def other() -> None:
        pass

    result = runner.invoke(group, ["fail"], catch_exceptions=False)
    assert "Traceback" not in result.output
    one_line_error(result)


def test_a_bug_keeps_its_traceback():
    group = CommandGroup("test")

    @group.command("fail")
    def fail() -> None:
        raise RuntimeError("a bug")

    @group.command("other")
    def other() -> None:
        pass

    with pytest.raises(RuntimeError):
        runner.invoke(group, ["fail"], catch_exceptions=False)


@pytest.mark.parametrize("args", [
    ["model", "list"], ["node", "list"], ["node", "list", "--json"], ["consent", "list", "1"], ["audit", "1"],
    ["result", "1"], ["train", "job", "show", "1"], ["train", "job", "provenance", "1", "--json"],
    ["train", "federated", "show", "1"], ["train", "job", "run", "1"], ["train", "federated", "run", "1"],
    ["diagnose", "1", "1", "0x" + "00" * 20], ["faucet", "0x" + "00" * 20],
])
def test_an_unreachable_chain_is_one_line_for_every_group(monkeypatch, args):
    monkeypatch.setenv("AIDOC_PRIVATE_KEY", KEY)
    monkeypatch.setenv("AIDOC_RPC_URL", "http://127.0.0.1:1")
    assert "no Ethereum node answers" in one_line_error(runner.invoke(app, args, catch_exceptions=False))


@pytest.mark.parametrize("args, expected", [
    (["train", "job", "show", "0"], "ids count from 1"),
    (["train", "federated", "show", "0", "--json"], "ids count from 1"),
    (["train", "job", "provenance", "0"], "ids count from 1"),
    (["consent", "list", "0"], "ids count from 1"),
    (["train", "job", "open", "--model", "1", "--node", "0x12", "--epsilon", "1", "--royalty", "1", "--fee", "1",
      "--max-records", "5"], "neither an Ethereum address nor a keystore name"),
    (["train", "job", "open", "--model", "1", "--node", "0x" + "00" * 20, "--epsilon", "nan", "--royalty", "1",
      "--fee", "1", "--max-records", "5"], "--epsilon nan is out of range"),
    (["train", "job", "open", "--model", "1", "--node", "0x" + "00" * 20, "--epsilon", "1", "--delta", "1",
      "--royalty", "1", "--fee", "1", "--max-records", "5"], "--delta 1 is out of range"),
    (["train", "job", "open", "--model", "1", "--node", "0x" + "00" * 20, "--epsilon", "1", "--royalty", "lots",
      "--fee", "1", "--max-records", "5"], "not an amount"),
    (["train", "federated", "open", "--model", "1", "--participant", "0x" + "01" * 20, "--aggregator",
      "0x" + "02" * 20, "--reward", "1", "--aggregator-fee", "1", "--rounds", "0"], "--rounds 0 is out of range"),
    (["train", "federated", "open", "--model", "1", "--participant", "0x" + "01" * 20, "--aggregator",
      "0x" + "02" * 20, "--reward", "1", "--aggregator-fee", "1", "--rounds", "2", "--target", "95"],
     "--target 95 is out of range"),
    (["node", "run", "--concurrency", "0"], "--concurrency 0"),
])
def test_mistakes_in_the_new_commands_get_one_line_before_any_server(monkeypatch, args, expected):
    monkeypatch.setenv("AIDOC_PRIVATE_KEY", KEY)
    monkeypatch.setenv("AIDOC_RPC_URL", "http://127.0.0.1:1")
    assert expected in one_line_error(runner.invoke(app, args, catch_exceptions=False))


def test_node_run_takes_its_concurrency_from_the_setting_unless_given(monkeypatch):
    import aidoc.stack.local

    started = []
    monkeypatch.setattr(aidoc.stack.local, "run_node",
                        lambda services, identity, concurrency, say: started.append((identity.address, concurrency)))
    monkeypatch.setenv("AIDOC_PRIVATE_KEY", KEY)
    monkeypatch.setenv("AIDOC_WORKER_CONCURRENCY", "5")
    assert runner.invoke(app, ["node", "run"], catch_exceptions=False).exit_code == 0
    assert runner.invoke(app, ["node", "run", "--concurrency", "3"], catch_exceptions=False).exit_code == 0
    assert [concurrency for _, concurrency in started] == [5, 3]
    monkeypatch.setenv("AIDOC_WORKER_CONCURRENCY", "0")
    assert "AIDOC_WORKER_CONCURRENCY" in one_line_error(runner.invoke(app, ["node", "run"], catch_exceptions=False))


def test_node_run_falls_back_to_the_node_key(monkeypatch):
    import aidoc.stack.local
    from aidoc.identity import Identity

    started = []
    monkeypatch.setattr(aidoc.stack.local, "run_node",
                        lambda services, identity, concurrency, say: started.append(identity.address))
    monkeypatch.delenv("AIDOC_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("AIDOC_NODE_ACCOUNT", raising=False)
    monkeypatch.delenv("AIDOC_ACCOUNT", raising=False)
    monkeypatch.setenv("AIDOC_NODE_PRIVATE_KEY", "0x" + "22" * 32)
    assert runner.invoke(app, ["node", "run"], catch_exceptions=False).exit_code == 0
    assert started == [Identity.from_private_key("0x" + "22" * 32).address]
    monkeypatch.delenv("AIDOC_NODE_PRIVATE_KEY")
    assert "AIDOC_NODE_ACCOUNT" in one_line_error(runner.invoke(app, ["node", "run"], catch_exceptions=False))


def test_node_run_help_names_the_setting_it_defaults_to():
    out = " ".join(runner.invoke(app, ["node", "run", "--help"]).output.split())
    assert "AIDOC_WORKER_CONCURRENCY" in out


def test_account_list_json_is_one_document_with_checksummed_addresses(monkeypatch, tmp_path):
    monkeypatch.setenv("AIDOC_KEYSTORE_DIR", str(tmp_path))
    monkeypatch.setenv("AIDOC_PASSWORD", "pw")
    made = {}
    for name in ("erin", "frank"):
        out = runner.invoke(app, ["account", "new", name], catch_exceptions=False).output
        made[name] = re.search(r"0x[0-9a-fA-F]{40}", out).group(0)
    listed = json.loads(runner.invoke(app, ["account", "list", "--json"], catch_exceptions=False).output)
    assert listed == [{"name": name, "address": address} for name, address in sorted(made.items())]
    text = runner.invoke(app, ["account", "list"], catch_exceptions=False).output
    assert f"erin: {made['erin'].lower()}" in text.lower()


def test_parsers():
    assert parse_aid("1.5") == 3 * AID // 2 and parse_aid("0") == 0
    for bad in ("lots", "-1", "nan", "Infinity"):
        with pytest.raises(ConfigError):
            parse_aid(bad)
    assert checked_address("0x" + "ab" * 20, "node") == Web3.to_checksum_address("0x" + "ab" * 20)
    with pytest.raises(ConfigError, match="ids count from 1"):
        positive(0, "record")
    assert parse_purposes(["diagnosis", "TRAINING"]) == Purpose.DIAGNOSIS | Purpose.TRAINING
    assert purpose_names(Purpose.DIAGNOSIS | Purpose.TRAINING) == ["diagnosis", "training"]
    assert data_types_of(input_types_mask(DataType.LAB_PANEL, DataType.ECG)) == (DataType.LAB_PANEL, DataType.ECG)


def test_aidoc_account_names_the_keystore_when_no_account_option_is_given(monkeypatch, tmp_path):
    from dataclasses import replace

    from aidoc.cli.params import identity_for
    from aidoc.config import ServiceSettings
    from aidoc.identity import Identity, save_keystore

    alice = Identity.generate()
    save_keystore(tmp_path, "alice", alice, "pw")
    monkeypatch.setenv("AIDOC_ACCOUNT", "alice")
    monkeypatch.setenv("AIDOC_PASSWORD", "pw")
    monkeypatch.delenv("AIDOC_PRIVATE_KEY", raising=False)
    assert identity_for(None, replace(ServiceSettings(), keystore_dir=tmp_path)).address == alice.address


GRANTEE = "0x" + "00" * 19 + "01"


@pytest.mark.parametrize("args, says", [
    (["consent", "grant", "abc", GRANTEE, "-a", "alice"], "Invalid value for 'record'"),
    (["consent", "grant", "1", GRANTEE, "--days", "soon"], "Invalid value for '--days'"),
    (["consent", "grant", "1"], "Missing argument 'grantee'"),
    (["consent", "grant", "1", GRANTEE, "--bogus"], "No such option: --bogus"),
    (["nope"], "No such command 'nope'"),
])
def test_a_usage_mistake_is_one_line_with_where_to_look_and_status_1(args, says):
    line = one_line_error(runner.invoke(app, args))
    assert says in line and "--help`" in line


def test_help_version_and_completion_answer_without_a_server():
    assert runner.invoke(app, ["-h"]).exit_code == 0
    assert "--install-completion" in runner.invoke(app, ["--help"]).output
    assert runner.invoke(app, ["consent", "grant", "-h"]).exit_code == 0
    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0 and re.fullmatch(r"aidoc \S+\n", shown.output)


def test_the_installed_entry_point_keeps_usage_mistakes_to_one_line():
    import subprocess
    import sys

    ran = subprocess.run([sys.executable, "-m", "aidoc.cli.main", "consent", "grant", "abc", GRANTEE],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1 and ran.stdout == ""
    assert ran.stderr.count("\n") == 1 and ran.stderr.startswith("error: Invalid value for 'record'")
