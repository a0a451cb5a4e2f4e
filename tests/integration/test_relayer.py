"""Gasless consent: a patient without ETH signs a grant or a revocation (`aidoc consent grant
--gasless`) and the relayer (`aidoc relayer run`, a real uvicorn server) submits it and pays the
gas; the relayer refuses, with one line each, what the registry would refuse or what would cost it
gas for nothing: a signature not from the owner, a replay, a lapsed deadline, a garbage body, a
signer over its hourly limit, and says so when it is out of ETH."""

from __future__ import annotations

import concurrent.futures
import shutil

import pytest
import requests
from typer.testing import CliRunner

from aidoc.chain.contracts import chain_now, chain_time_in, rpc_request
from aidoc.cli.main import app
from aidoc.constants import DataType, Purpose
from aidoc.flow.gasless import RelayerRefused, relay, sign_change
from aidoc.identity import Identity
from aidoc.stack.hosted_rpc import HostedRpc
from aidoc.stack.process import ManagedProcess, free_port
from conftest import consented_record, samples_of

SIGNER_LIMIT = 3
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
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

    lapsed = sign_change(patient, record, grantee, Purpose.RESEARCH, expiry, deadline=chain_now(w3) - 1)
    status, answer = post(url, "grant", lapsed.to_json())
    assert status == 400 and "deadline passed" in answer["error"], answer

    flipped = bytearray(signed.signature)  # the same signature with s mirrored: EIP-2 and OpenZeppelin refuse it
    flipped[32:64] = (SECP256K1_N - int.from_bytes(signed.signature[32:64], "big")).to_bytes(32, "big")
    flipped[64] = 55 - flipped[64]
    for signature in (bytes(flipped), signed.signature[:64] + b"\x00", signed.signature[:64] + b"\xff"):
        status, answer = post(url, "grant", {**signed.to_json(), "signature": "0x" + signature.hex()})
        assert status == 400 and "the signature is malformed" in answer["error"], answer

    # The limit counts only changes it sent: so far one. Revoke, grant again, and the next is one too many.
    for purpose, change_expiry in ((Purpose.DIAGNOSIS, None), (Purpose.DIAGNOSIS, expiry))[:SIGNER_LIMIT - 1]:
        change = sign_change(patient, record, grantee, purpose, change_expiry)
        status, answer = post(url, "revoke" if change_expiry is None else "grant", change.to_json())
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


def raw_post(url: str, path: str, data: bytes) -> tuple[int, dict]:
    response = requests.post(f"{url}/v1/consent/{path}", data=data, timeout=60,
                             headers={"Content-Type": "application/json"})
    return response.status_code, response.json()


def test_the_relayer_answers_hostile_bodies_with_one_line_and_stays_up(relayer):
    _, url = relayer
    status, answer = raw_post(url, "grant", b"[" * 2040 + b"]" * 2040)  # deeper than Python's recursion limit
    assert status == 400 and answer == {"error": "the body is not JSON"}
    status, answer = raw_post(url, "grant", b" " * 5000)
    assert status == 413 and "over 4096 bytes" in answer["error"]
    status, answer = raw_post(url, "grant", b"{}")
    assert status == 400 and answer == {"error": "missing field recordId"}


def test_copies_of_one_signature_sent_at_once_cost_the_relayer_one_transaction(relayer, funded, doctor, node,
                                                                              models_dir):
    """Before the fix every copy passed the checks, and all but one then reverted at the relayer's cost."""
    relayer_session, url = relayer
    patient = funded(0)
    record = penniless(patient, doctor, node, models_dir)
    w3 = patient.marketplace.w3
    change = sign_change(patient, record, Identity.generate().address, Purpose.DIAGNOSIS, chain_time_in(w3, 10))
    sent_before = w3.eth.get_transaction_count(relayer_session.address)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: post(url, "grant", change.to_json()), range(6)))
    assert sorted(status for status, _ in answers).count(200) == 1, answers
    assert all(status in (200, 400, 409) for status, _ in answers), answers
    assert w3.eth.get_transaction_count(relayer_session.address) == sent_before + 1


def test_a_relayer_whose_endpoint_fails_answers_502_without_its_rpc_url(stack, funded, tmp_path):
    """The relayer's RPC URL carries its provider's API key: it stays in the relayer's log."""
    session = funded(0)
    proxy = HostedRpc(stack.services.rpc_url).start()
    port = free_port()
    process = ManagedProcess(
        "relayer", [shutil.which("aidoc") or "aidoc", "relayer", "run", "--port", str(port)], tmp_path, port=port,
        inherit_aidoc=True, env={"AIDOC_PRIVATE_KEY": session.identity.account.key.hex(),
                                 "AIDOC_RPC_URL": proxy.url("secret-api-key")},
    ).start()
    try:
        proxy.stop()
        status, answer = post(f"http://127.0.0.1:{port}", "grant", sign_change(
            session, 1, Identity.generate().address, Purpose.DIAGNOSIS, 2**40, deadline=2**40).to_json())
        assert status == 502 and "try again shortly" in answer["error"], answer
        assert "secret-api-key" not in answer["error"] and "127.0.0.1" not in answer["error"]
        assert "secret-api-key" not in requests.get(f"http://127.0.0.1:{port}/v1/status", timeout=30).text
    finally:
        process.stop()
    assert "the relayer's RPC endpoint failed while checking the record" in process.log_path.read_text()


def test_a_url_that_is_no_relayer_gets_one_line_not_a_traceback(stack, funded):
    """AIDOC_RELAYER_URL set to a hosted RPC endpoint's URL: it answers 200, but not as a relayer."""
    patient = funded(0)
    change = sign_change(patient, 1, Identity.generate().address, Purpose.DIAGNOSIS, 2**40)
    with HostedRpc(stack.services.rpc_url) as endpoint, pytest.raises(RelayerRefused, match="not as an AIDoc relayer"):
        relay(endpoint.url("key"), change)
