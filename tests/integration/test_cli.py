"""The `aidoc` command line against the real stack: a patient, a doctor and the node's results, and
one clear line (never a traceback) for each user mistake."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest
from typer.testing import CliRunner

from aidoc.chain.contracts import open_marketplace
from aidoc.cli.main import app
from aidoc.cli.params import show_aid
from aidoc.config import AID
from aidoc.constants import DataType, Purpose
from aidoc.flow.faucet import fund
from aidoc.stack.process import stop_recorded
from aidoc.stack.testbed import consent_record
from conftest import NODE_FEE, STAKE, samples_of

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
    consents = json.loads(aidoc("consent", "list", str(record), "--account", "alice", "--json").output)
    assert consents == [{"grantee": bob, "purposes": ["diagnosis"], "expiry": consents[0]["expiry"], "active": True}]
    assert "panel" in aidoc("model", "list", "--account", "bob").output
    listed = {m["id"]: m for m in json.loads(aidoc("model", "list", "--json").output)}
    panel = listed[models[DataType.LAB_PANEL]]
    assert panel["name"] == "panel" and panel["input_type"] == "lab_panel" and int(panel["price"]) > 0
    out = aidoc("diagnose", str(record), str(models[DataType.LAB_PANEL]), node.address, "--account", "bob").output
    request = int(re.search(r"request (\d+): .* escrowed", out).group(1))
    assert f"request {request}: fulfilled" in out
    out = aidoc("result", str(request), "--wait", "--account", "bob").output
    assert re.search(r"request \d+: (malignant|benign) \(probability [01]\.\d\d; ", out), out
    assert "matches the on-chain commitment" in out and "not a diagnosis by a clinician" in out
    shown = json.loads(aidoc("result", str(request), "--json", "--account", "bob").output)
    assert shown["label"] in shown["probabilities"] and shown["model"]["id"] == models[DataType.LAB_PANEL]
    listed = json.loads(aidoc("records", "--json", "--account", "alice").output)
    assert [(r["record_id"], r["data_type"], r["retired"]) for r in listed] == [(record, "lab_panel", False)]
    trail = aidoc("audit", str(record), "--account", "alice").output
    assert "granted" in trail and "accessed" in trail
    entries = json.loads(aidoc("audit", str(record), "--account", "alice", "--json").output)
    assert [e["action"] for e in entries] == ["granted", "accessed"] and entries[1]["who"] == bob
    assert f"request {request}" in entries[1]["detail"]
    aidoc("consent", "revoke", str(record), bob, "--account", "alice")
    error = one_line_error(aidoc("diagnose", str(record), str(models[DataType.LAB_PANEL]), node.address,
                                 "--account", "bob", ok=False))
    assert "ConsentMissing" in error or "ConsentExpired" in error


def test_a_second_purpose_adds_to_the_grant_and_replace_says_what_it_revoked(keystores, node, models_dir):
    from aidoc.chain.contracts import open_marketplace

    marketplace = open_marketplace()
    new_account("dora", marketplace)
    eve = new_account("eve", marketplace)
    out = aidoc("record", "add", str(samples_of(models_dir, DataType.LAB_PANEL)[0]), "--node", node.address,
                "--account", "dora").output
    record = re.search(r"record (\d+) registered", out).group(1)
    aidoc("consent", "grant", record, eve, "--account", "dora")
    out = aidoc("consent", "grant", record, eve, "--purpose", "research", "--days", "7", "--account", "dora").output
    assert f"{eve} may use it for diagnosis, research until" in out and "added research" in out
    assert "diagnosis was until" in out and "revoked" not in out
    held = json.loads(aidoc("consent", "list", record, "--account", "dora", "--json").output)
    assert held[0]["purposes"] == ["diagnosis", "research"]
    out = aidoc("consent", "grant", record, eve, "--purpose", "research", "--replace", "--account", "dora").output
    assert "may use it for research until" in out and "revoked diagnosis (in the audit trail)" in out
    trail = json.loads(aidoc("audit", record, "--account", "dora", "--json").output)
    assert [(e["action"], e["purposes"]) for e in trail] == [
        ("granted", ["diagnosis"]), ("granted", ["diagnosis", "research"]), ("revoked", ["diagnosis"]),
        ("granted", ["research"])]
    assert trail[2]["detail"] == "left out of a new grant"
    warned = aidoc("consent", "grant", record, eve, "--days", "0.01", "--account", "dora")
    assert "warning: this consent ends in" in warned.output and "request timeout (1 hour)" in warned.output


@pytest.mark.parametrize("args, expected", [
    (["record", "add", "/nonexistent/panel.csv", "--node", "0x" + "00" * 20, "--account", "nobody"], "no keystore"),
    (["diagnose", "1", "1", "0x" + "00" * 20, "--max-total", "lots", "--account", "carol"], "not an amount"),
    (["model", "register", "missing.safetensors", "--name", "m", "--input-type", "xray", "--account", "carol"],
     "unknown data type"),
    (["consent", "grant", "1", "0x" + "00" * 20, "--purpose", "marketing", "--account", "carol"], "unknown purpose"),
    (["result", "999999", "--account", "carol"], "there is no result"),
    (["result", "0", "--account", "carol"], "ids count from 1"),
    (["diagnose", "1", "1", "xyz", "--account", "carol"], "neither an Ethereum address nor a keystore name"),
    (["consent", "grant", "1", "0x12", "--account", "carol"], "neither an Ethereum address nor a keystore name"),
    (["node", "register", "--stake", "nan", "--account", "carol"], "not an amount"),
    (["diagnose", "1", "1", "0x" + "00" * 20, "--max-total", "Infinity", "--account", "carol"], "not an amount"),
    (["consent", "grant", "1", "0x" + "00" * 20, "--days", "-3", "--account", "carol"], "out of range"),
    (["record", "add", "/nonexistent/panel.csv", "--node", "0x" + "00" * 20, "--account", "carol"], "panel.csv"),
    (["train", "job", "show", "999999"], "there is no training job 999999"),
    (["train", "job", "provenance", "999999", "--json"], "there is no training job 999999"),
    (["train", "federated", "show", "999999", "--json"], "there is no federated training 999999"),
    (["train", "job", "run", "0"], "ids count from 1"),
    (["node", "list", "--account", "nobody"], "no keystore"),
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


def test_node_list_shows_the_node_with_its_stake_fee_types_and_reputation(keystores, node):
    listed = json.loads(aidoc("node", "list", "--json").output)
    mine = [n for n in listed if n["address"] == node.address]
    assert len(mine) == 1, listed
    assert mine[0]["stake"] == str(STAKE) and mine[0]["fee"] == str(NODE_FEE)
    assert mine[0]["data_types"] == ["lab_panel", "ecg"] and mine[0]["gpu"] is False
    assert mine[0]["status"] == "active" and set(mine[0]["reputation"]) == {"fulfilled", "failed", "timed_out",
                                                                             "slashed"}
    table = aidoc("node", "list").output
    assert node.address in table and "1,000.0000 AID" in table and "active" in table


def test_node_run_help_says_concurrency_defaults_to_the_setting():
    assert "AIDOC_WORKER_CONCURRENCY" in " ".join(aidoc("node", "run", "--help").output.split())


def test_a_training_job_opened_run_and_traced_from_the_command_line(keystores, node, models, doctor, funded):
    """A buyer opens a DP job on the panel model by the node, the node trains on the records whose
    owners consented to training, and `train job provenance` names the cohort it used."""
    from aidoc.training.data import federated_split

    marketplace = doctor.marketplace
    buyer = new_account("trainer", marketplace, aid=100 * AID)
    records = []
    for source in federated_split(3, seed=5).institutions[0].records()[:6]:
        records.append(consent_record(funded(0), source, [node.address], buyer, royalty=0, purpose=Purpose.TRAINING))
    out = aidoc("train", "job", "open", "--model", str(models[DataType.LAB_PANEL]), "--node", node.address,
                "--epsilon", "2", "--delta", "1e-5", "--royalty", "0.5", "--fee", "2", "--max-records", "10",
                "--account", "trainer").output
    job = int(re.search(r"training job (\d+) opened: 7.0000 AID escrowed", out).group(1))
    shown = json.loads(aidoc("train", "job", "show", str(job), "--json").output)
    assert shown["status"] == "open" and shown["buyer"] == buyer and shown["node"] == node.address
    assert shown["royalty_per_record"] == str(AID // 2) and shown["max_records"] == 10 and shown["epsilon"] == 2
    assert "not completed" in one_line_error(aidoc("train", "job", "provenance", str(job), ok=False))
    assert re.search(r"status\s+.*open", aidoc("train", "job", "show", str(job)).output)

    out = aidoc("train", "job", "run", str(job), "--timeout", "180").output
    assert re.search(rf"training job {job}: completed: model \d+, 6 records", out), out
    provenance = json.loads(aidoc("train", "job", "provenance", str(job), "--json").output)
    assert provenance["record_ids"] == sorted(records) and provenance["records_used"] == 6
    assert provenance["model_id"] == json.loads(aidoc("train", "job", "show", str(job), "--json").output)["model_id"]
    assert re.fullmatch(r"0x[0-9a-f]{64}", provenance["cohort_commitment"])
    assert 0 < provenance["epsilon_spent"] <= 2 and 0 <= provenance["accuracy"] <= 1
    assert provenance["held_out_count"] >= 1
    assert provenance["cohort_commitment"] in aidoc("train", "job", "provenance", str(job)).output
    assert "nothing left to run" in one_line_error(aidoc("train", "job", "run", str(job), ok=False))


def test_a_federated_training_opened_and_shown(keystores, models, doctor):
    sponsor = new_account("sponsor", doctor.marketplace, aid=100 * AID)
    participants, aggregator = ["0x" + "a1" * 20, "0x" + "b2" * 20], "0x" + "c3" * 20
    args = [arg for p in participants for arg in ("--participant", p)]
    out = aidoc("train", "federated", "open", "--model", str(models[DataType.LAB_PANEL]), *args,
                "--aggregator", aggregator, "--reward", "1", "--aggregator-fee", "2", "--rounds", "3",
                "--target", "0.95", "--account", "sponsor").output
    training = int(re.search(r"federated training (\d+) opened: 12.0000 AID escrowed", out).group(1))
    shown = json.loads(aidoc("train", "federated", "show", str(training), "--json").output)
    assert shown["status"] == "running" and shown["current_round"] == 1 and shown["max_rounds"] == 3
    assert shown["sponsor"] == sponsor and shown["escrow"] == str(12 * AID) and shown["target_metric"] == 0.95
    assert [p.lower() for p in shown["participants"]] == participants and shown["aggregator"].lower() == aggregator
    assert len(shown["rounds"]) == 1 and shown["rounds"][0]["start_cid"] and shown["rounds"][0]["aggregate_cid"] is None
    assert "round" in aidoc("train", "federated", "show", str(training)).output


def test_the_installed_entry_point_runs():
    result = subprocess.run([shutil.which("aidoc") or "aidoc", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "diagnose" in result.stdout


def test_aidoc_down_stops_a_running_node_instead_of_having_it_restart_its_processes(stack, tmp_path):
    """`aidoc down` stops `aidoc node run` first (its pid file), which stops its own processes: no
    restart loop, and the command ends with "node stopped"."""
    node = stack.staked_node([DataType.LAB_PANEL])
    env = {**os.environ, "AIDOC_RUN_DIR": str(tmp_path), "AIDOC_NODE_PRIVATE_KEY": node.identity.account.key.hex()}
    command = shutil.which("aidoc") or "aidoc"
    output = tmp_path / "node-run.out"
    with open(output, "wb") as out:
        running = subprocess.Popen([command, "node", "run", "--concurrency", "1"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while "Ctrl-C stops" not in output.read_text() and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Ctrl-C stops" in output.read_text(), output.read_text()
        again = subprocess.run([command, "node", "run"], env=env, capture_output=True, text=True)
        assert again.returncode == 1 and again.stdout.count("\n") + again.stderr.count("\n") == 1
        assert "a node already runs from" in again.stdout + again.stderr

        down = subprocess.run([command, "down"], env=env, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0 and down.stdout.splitlines()[0] == "stopped node", down.stdout + down.stderr
        assert running.wait(timeout=60) == 0
    finally:
        if running.poll() is None:
            running.kill()
            for name in ("worker", "watcher", "sender"):
                stop_recorded(tmp_path / f"{name}.pid")
    said = output.read_text()
    assert said.rstrip().endswith("node stopped") and "starting it again" not in said, said
    assert not list(tmp_path.glob("*.pid"))


def test_a_doctor_whose_node_never_answers_sees_it_and_cancels_for_a_full_refund(keystores, stack, models,
                                                                                  models_dir, funded):
    """`diagnose` exits 1 naming what to do when no node answers; `requests` lists the request;
    `cancel` refuses while the node may still fulfil it, and refunds in full once consent is gone."""
    from aidoc.flow.consent import revoke_consent

    marketplace = funded(0).marketplace
    idle = stack.staked_node([DataType.LAB_PANEL], marketplace=marketplace)  # registered, never started
    doctor = new_account("waiting-doctor", marketplace, aid=100 * AID)
    patient = funded(0)
    record = consent_record(patient, samples_of(models_dir, DataType.LAB_PANEL)[0], [idle.address], doctor)
    before = marketplace.token.functions.balanceOf(doctor).call()

    waited = aidoc("diagnose", str(record), str(models[DataType.LAB_PANEL]), idle.address, "--timeout", "1",
                   "-a", "waiting-doctor", ok=False)
    assert waited.exit_code == 1 and "Traceback" not in waited.output
    said, line = waited.output.strip().splitlines()  # what it escrowed, then why it gave up
    assert said.endswith("AID escrowed") and line.startswith("error: no answer from node")
    request_id = int(re.search(r"request (\d+) is still pending", line).group(1))
    assert f"aidoc cancel {request_id}" in line and "UTC" in line
    listed = json.loads(aidoc("requests", "--json", "-a", "waiting-doctor").output)
    assert [(r["request_id"], r["status"], r["refundable"]) for r in listed] == [(request_id, "pending", False)]
    escrow = int(listed[0]["escrow"])
    assert before - marketplace.token.functions.balanceOf(doctor).call() == escrow

    assert "still within its deadline" in one_line_error(aidoc("cancel", str(request_id), "-a", "waiting-doctor",
                                                               ok=False))
    revoke_consent(patient, record, doctor, Purpose.DIAGNOSIS)
    assert "yes (aidoc cancel)" in aidoc("requests", "-a", "waiting-doctor").output
    out = aidoc("cancel", str(request_id), "-a", "waiting-doctor").output
    assert f"request {request_id} cancelled" in out and "refunded" in out
    assert marketplace.token.functions.balanceOf(doctor).call() == before  # to the wei
    assert "cancelled: there is nothing to cancel" in one_line_error(
        aidoc("cancel", str(request_id), "-a", "waiting-doctor", ok=False))
    assert "not one of" in one_line_error(aidoc("cancel", "999999", "-a", "waiting-doctor", ok=False))


def test_balances_and_transfers_by_keystore_name(keystores, stack, monkeypatch):
    """Names from the keystore wherever an address is asked; reading a balance needs no password;
    a transfer of more than is held, or without ETH for gas, is one line saying who needs what."""
    marketplace = open_marketplace(stack.services)
    payer = re.search(r"0x[0-9a-fA-F]{40}", aidoc("account", "new", "payer").output).group(0)
    payee = re.search(r"0x[0-9a-fA-F]{40}", aidoc("account", "new", "payee").output).group(0)
    assert "sent 1 ETH and 20 AID to payer" in aidoc("faucet", "payer", "--eth", "1", "--aid", "20").output
    monkeypatch.delenv("AIDOC_PASSWORD")
    assert json.loads(aidoc("balance", "payer", "--json").output) == {"address": payer, "eth": str(AID),
                                                                       "aid": str(20 * AID)}
    monkeypatch.setenv("AIDOC_PASSWORD", PASSWORD)
    assert f"to {payee}" in aidoc("transfer", "payee", "7.5", "-a", "payer").output
    assert marketplace.token.functions.balanceOf(payee).call() == 7_500_000_000_000_000_000
    assert "20.0000 AID" not in aidoc("balance", "-a", "payer").output and "12.5000 AID" in aidoc(
        "balance", "-a", "payer").output
    assert "holds 12.5 AID, less than the 13 AID" in one_line_error(aidoc("transfer", "payee", "13", "-a", "payer",
                                                                          ok=False))
    line = one_line_error(aidoc("transfer", "payer", "1", "-a", "payee", ok=False))  # AID but no ETH for gas
    assert payee in line and "has 0 ETH" in line and "send it at least" in line
    assert "neither an Ethereum address nor a keystore name" in one_line_error(
        aidoc("balance", "nobody-by-that-name", ok=False))


def test_a_node_operator_sees_its_node_withdraws_its_earnings_and_unbonds(keystores, stack, node, doctor, models,
                                                                          models_dir, funded, monkeypatch):
    from aidoc.flow.request import request_diagnosis
    from conftest import consented_record, settle

    record = consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    request_id, _ = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
    settle(doctor, [request_id])
    deadline = time.monotonic() + 30  # the sender notes the fulfilment when it settles the batch
    while time.monotonic() < deadline:
        status = json.loads(aidoc("node", "status", node.address, "--json").output)
        if status["local"]["last_fulfilment"] and status["local"]["last_fulfilment"]["request_id"] >= request_id:
            break
        time.sleep(0.2)
    assert status["status"] == "active" and int(status["earnings"]) >= NODE_FEE
    assert status["local"]["last_fulfilment"]["request_id"] == request_id
    assert status["head"] - 10 <= status["local"]["synced_block"] <= status["head"]
    assert set(status["local"]["outbox"]) == {"pending", "processing", "publish"}
    assert "watcher synced to block" in aidoc("node", "status", node.address).output

    monkeypatch.setenv("AIDOC_PRIVATE_KEY", node.identity.account.key.hex())
    token = doctor.marketplace.token.functions
    before = token.balanceOf(node.address).call()
    out = aidoc("node", "withdraw").output
    assert f"withdrew {show_aid(int(status['earnings']))} of earnings to {node.address}" in out
    assert token.balanceOf(node.address).call() - before == int(status["earnings"])
    monkeypatch.delenv("AIDOC_PRIVATE_KEY")

    new_account("leaving-node", doctor.marketplace, aid=STAKE)
    aidoc("node", "register", "--stake", "1000", "--type", "panel", "-a", "leaving-node")
    assert "no earnings to withdraw" in one_line_error(aidoc("node", "withdraw", "-a", "leaving-node", ok=False))
    assert "is unbonding: it takes no new requests" in aidoc("node", "unbond", "-a", "leaving-node").output
    assert json.loads(aidoc("node", "status", "leaving-node", "--json").output)["status"] == "unbonding"
    assert "its stake can be withdrawn after that" in one_line_error(aidoc("node", "unbond", "-a", "leaving-node",
                                                                          ok=False))


def test_a_record_the_registry_or_its_nodes_would_refuse_is_refused_before_any_upload(keystores, stack, models_dir):

    marketplace = open_marketplace(stack.services)
    panel_only = stack.staked_node([DataType.LAB_PANEL], marketplace=marketplace)
    new_account("ecg-patient", marketplace)
    ecg = samples_of(models_dir, DataType.ECG)[0]
    blocks = stack.run_dir / "ipfs-repo" / "blocks"  # what the IPFS daemon stores
    before = set(blocks.rglob("*"))
    assert before, f"no IPFS blocks in {blocks}"
    line = one_line_error(aidoc("record", "add", str(ecg), "--node", panel_only.address, "-a", "ecg-patient",
                                ok=False))
    assert f"node {panel_only.address} does not read ecg records" in line
    line = one_line_error(aidoc("record", "add", str(ecg), "--node", "0x" + "12" * 20, "-a", "ecg-patient", ok=False))
    assert "is not a registered node" in line
    assert set(blocks.rglob("*")) == before
