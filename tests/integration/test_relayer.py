"""Gasless consent: a patient without ETH signs a grant or a revocation (`aidoc consent grant
--gasless`) and the relayer (`aidoc relayer run`, a real uvicorn server) submits it and pays the
gas; the relayer refuses, with one line each, what the registry would refuse or what would cost it
gas for nothing: a signature not from the owner, a replay, a lapsed deadline, a garbage body, a
signer over its hourly limit, and says so when it is out of ETH."""

from __future__ import annotations

import shutil

import pytest
import requests
from typer.testing import CliRunner

from aidoc.chain.contracts import chain_time_in, rpc_request
from aidoc.cli.main import app
from aidoc.constants import DataType, Purpose
from aidoc.flow.gasless import sign_change
from aidoc.identity import Identity
from aidoc.stack.process import ManagedProcess, free_port
from conftest import consented_record, samples_of

SIGNER_LIMIT = 3
runner = CliRunner()


@pytest.fixture(scope="module")
def relayer(stack, funded, tmp_path_factory):
    session = funded(0)
    port = free_port()
    process = ManagedProcess(
        "relayer", [shutil.which("aidoc") or "aidoc", "relayer", "run", "--port", str(port)],
        tmp_path_factory.mktemp("relayer"), port=port, inherit_aidoc=True,
        env={"AIDOC_PRIVATE_KEY": session.identity.account.key.hex(), "AIDOC_RELAYER_SIGNER_LIMIT": str(SIGNER_LIMIT)},
    ).start()
    yield session, f"http://127.0.0.1:{port}"
    process.stop()


def penniless(patient, doctor, node, models_dir) -> int:
    """A record of `patient` consented to `doctor`, after which the patient holds no ETH at all."""
    record = consented_record(patient, doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    rpc_request(patient.marketplace.w3, "anvil_setBalance", [patient.address, "0x0"])
    return record


def cli(patient, relayer_url: str, *args: str):
    return runner.invoke(app, list(args), env={"AIDOC_PRIVATE_KEY": patient.identity.account.key.hex(),
                                               "AIDOC_RELAYER_URL": relayer_url, "AIDOC_ACCOUNT": ""})


def test_a_patient_without_eth_grants_and_revokes_consent_through_the_relayer(relayer, patient, doctor, node,
                                                                               models_dir, funded):
    relayer_session, url = relayer
    consents = patient.marketplace.consents
    record = penniless(patient, doctor, node, models_dir)
    researcher = funded(0).address
    relayer_eth = patient.marketplace.w3.eth.get_balance(relayer_session.address)

    granted = cli(patient, url, "consent", "grant", str(record), researcher, "--purpose", "research", "--gasless")
    assert granted.exit_code == 0, granted.output
    assert "sent by the relayer" in granted.output and "added research" in granted.output, granted.output
    assert consents.functions.hasConsent(record, researcher, int(Purpose.RESEARCH)).call()
    tx = patient.marketplace.w3.eth.get_transaction(granted.output.split("relayer in ")[1].split()[0])
    assert tx["from"] == relayer_session.address and tx["to"] == consents.address
    assert patient.marketplace.w3.eth.get_balance(patient.address) == 0
    assert patient.marketplace.w3.eth.get_balance(relayer_session.address) < relayer_eth

    revoked = cli(patient, url, "consent", "revoke", str(record), researcher, "--purpose", "research", "--gasless")
    assert revoked.exit_code == 0, revoked.output
    assert not consents.functions.hasConsent(record, researcher, int(Purpose.RESEARCH)).call()
    assert consents.functions.hasConsent(record, doctor.address, int(Purpose.DIAGNOSIS)).call()  # untouched


def post(url: str, path: str, body) -> tuple[int, dict]:
    response = requests.post(f"{url}/v1/consent/{path}", json=body, timeout=60)
    return response.status_code, response.json()


def test_the_relayer_refuses_what_it_should_not_pay_for_with_one_line(relayer, funded, doctor, node, models_dir):
    relayer_session, url = relayer
    patient = funded(0)
    record = penniless(patient, doctor, node, models_dir)
    w3 = patient.marketplace.w3
    grantee = Identity.generate().address
    expiry = chain_time_in(w3, 10)

    status, answer = post(url, "grant", {"recordId": record})
    assert status == 400 and answer == {"error": "missing field grantee"}
    status, answer = post(url, "grant", "not an object")
    assert status == 400 and "JSON object" in answer["error"]

    forged = sign_change(funded(0), record, grantee, Purpose.DIAGNOSIS, expiry)  # signed by someone else
    status, answer = post(url, "grant", forged.to_json())
    assert status == 400 and f"not from record {record}'s owner" in answer["error"]

    signed = sign_change(patient, record, grantee, Purpose.DIAGNOSIS, expiry)
    status, answer = post(url, "grant", signed.to_json())
    assert status == 200 and answer["signer"] == patient.address, answer
    status, answer = post(url, "grant", signed.to_json())  # a replay: the owner's nonce has moved on
    assert status == 400 and "current nonce" in answer["error"]

    lapsed = sign_change(patient, record, grantee, Purpose.RESEARCH, expiry)
    rpc_request(w3, "evm_increaseTime", [7200])  # past its one-hour deadline
    rpc_request(w3, "evm_mine", [])
    status, answer = post(url, "grant", lapsed.to_json())
    assert status == 400 and "SignatureExpired" in answer["error"], answer

    for _ in range(SIGNER_LIMIT - 2):  # the hourly limit counts what it relayed or tried to: 2 so far
        status, answer = post(url, "revoke", sign_change(patient, record, grantee, Purpose.DIAGNOSIS, None).to_json())
        assert status == 200, answer
    refused = cli(patient, url, "consent", "revoke", str(record), grantee, "--gasless")
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1, refused.output
    assert refused.output.startswith("error: the relayer refused the consent revocation") and "last hour" in refused.output

    other = funded(0)
    other_record = penniless(other, doctor, node, models_dir)
    held = w3.eth.get_balance(relayer_session.address)
    rpc_request(w3, "anvil_setBalance", [relayer_session.address, "0x0"])
    try:
        status, answer = post(url, "grant", sign_change(other, other_record, grantee, Purpose.DIAGNOSIS,
                                                        chain_time_in(w3, 10)).to_json())
    finally:
        rpc_request(w3, "anvil_setBalance", [relayer_session.address, hex(held)])
    assert status == 503 and "its operator must fund it" in answer["error"], answer
    assert "\n" not in answer["error"]
    assert requests.get(f"{url}/v1/status", timeout=30).json()["relayer"] == relayer_session.address
