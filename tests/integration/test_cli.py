"""The `aidoc` command line against the real stack: a patient, a doctor and the node's results, and
one clear line (never a traceback) for each user mistake."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from aidoc.cli.main import app
from aidoc.config import AID
from aidoc.constants import DataType
from aidoc.flow.faucet import fund
from conftest import samples_of

runner = CliRunner()
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def keystores(stack, tmp_path_factory):
    directory = tmp_path_factory.mktemp("keystores")
    os.environ["AIDOC_KEYSTORE_DIR"] = str(directory)
    os.environ["AIDOC_PASSWORD"] = PASSWORD
    yield directory
    os.environ.pop("AIDOC_KEYSTORE_DIR")
    os.environ.pop("AIDOC_PASSWORD")


def aidoc(*args: str, ok: bool = True):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def one_line_error(result) -> str:
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


def new_account(name: str, marketplace, aid: int = 0) -> str:
    out = aidoc("account", "new", name).output
    address = re.search(r"0x[0-9a-fA-F]{40}", out).group(0)
    fund(marketplace, address, eth=10 * AID, aid=aid)
    return address


def test_a_patient_and_a_doctor_drive_a_diagnosis_from_the_command_line(keystores, node, models, models_dir, doctor):
    marketplace = doctor.marketplace
    new_account("alice", marketplace)
    bob = new_account("bob", marketplace, aid=100 * AID)
    out = aidoc("record", "add", str(samples_of(models_dir, DataType.LAB_PANEL)[0]), "--node", node.address,
                "--royalty", "1.5", "--account", "alice").output
    record = int(re.search(r"record (\d+) registered", out).group(1))
    aidoc("consent", "grant", str(record), bob, "--days", "7", "--account", "alice")
    assert bob in aidoc("consent", "list", str(record), "--account", "alice").output
    assert "panel" in aidoc("model", "list", "--account", "bob").output
    out = aidoc("diagnose", str(record), str(models[DataType.LAB_PANEL]), node.address, "--account", "bob").output
    request = int(re.search(r"request (\d+): .* escrowed", out).group(1))
    assert f"request {request}: fulfilled" in out
    out = aidoc("result", str(request), "--account", "bob").output
    assert re.search(r"(malignant|benign) .*matches the on-chain commitment", out)
    trail = aidoc("audit", str(record), "--account", "alice").output
    assert "granted" in trail and "accessed" in trail
    aidoc("consent", "revoke", str(record), bob, "--account", "alice")
    error = one_line_error(aidoc("diagnose", str(record), str(models[DataType.LAB_PANEL]), node.address,
                                 "--account", "bob", ok=False))
    assert "ConsentMissing" in error or "ConsentExpired" in error


@pytest.mark.parametrize("args, expected", [
    (["record", "add", "/nonexistent/panel.csv", "--node", "0x" + "00" * 20, "--account", "nobody"], "no keystore"),
    (["diagnose", "1", "1", "0x" + "00" * 20, "--max-total", "lots", "--account", "carol"], "not an amount"),
    (["model", "register", "missing.safetensors", "--name", "m", "--input-type", "xray", "--account", "carol"],
     "unknown data type"),
    (["consent", "grant", "1", "0x" + "00" * 20, "--purpose", "marketing", "--account", "carol"], "unknown purpose"),
    (["result", "999999", "--account", "carol"], "there is no result"),
    (["result", "0", "--account", "carol"], "ids count from 1"),
    (["diagnose", "1", "1", "xyz", "--account", "carol"], "not an Ethereum address"),
    (["consent", "grant", "1", "0x12", "--account", "carol"], "not an Ethereum address"),
    (["node", "register", "--stake", "nan", "--account", "carol"], "not an amount"),
    (["diagnose", "1", "1", "0x" + "00" * 20, "--max-total", "Infinity", "--account", "carol"], "not an amount"),
    (["consent", "grant", "1", "0x" + "00" * 20, "--days", "-3", "--account", "carol"], "out of range"),
    (["record", "add", "/nonexistent/panel.csv", "--node", "0x" + "00" * 20, "--account", "carol"], "panel.csv"),
])
def test_user_mistakes_get_one_line(keystores, stack, doctor, args, expected):
    if not (keystores / "carol.json").exists():
        new_account("carol", doctor.marketplace)
    assert expected in one_line_error(aidoc(*args, ok=False))


def test_a_wrong_password_gets_one_line(keystores, doctor):
    new_account("dave", doctor.marketplace)
    os.environ["AIDOC_PASSWORD"] = "wrong"
    try:
        assert "password does not open" in one_line_error(aidoc("model", "list", "--account", "dave", ok=False))
    finally:
        os.environ["AIDOC_PASSWORD"] = PASSWORD


def test_an_unreachable_chain_gets_one_line(keystores, monkeypatch):
    monkeypatch.setenv("AIDOC_PRIVATE_KEY", "0x" + "11" * 32)
    monkeypatch.setenv("AIDOC_RPC_URL", "http://127.0.0.1:1")
    assert "no Ethereum node answers" in one_line_error(aidoc("model", "list", ok=False))


def test_the_installed_entry_point_runs():
    result = subprocess.run([shutil.which("aidoc") or "aidoc", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "diagnose" in result.stdout
