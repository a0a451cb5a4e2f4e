"""The web app's server (`aidoc web`, a real uvicorn process) and its indexer on the real stack: a
diagnosis made through the node shows up in the patient's records, consents, audit trail and
royalties, in the doctor's request list, in the model market, the node list and the explorer;
bad queries and uploads get one-line errors; nothing the server stored or logged holds the
record's plaintext values."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest

from aidoc.constants import DataType
from aidoc.crypto import encrypt_record
from aidoc.flow.request import request_diagnosis
from aidoc.stack.process import ManagedProcess, free_port
from conftest import ROYALTY, consented_record, samples_of, settle


@pytest.fixture(scope="module")
def web(stack, tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    port = free_port()
    process = ManagedProcess(
        "web", [shutil.which("aidoc") or "aidoc", "web", "--port", str(port)], folder, port=port, inherit_aidoc=True,
        env={"AIDOC_DB_URL": f"sqlite:///{folder / 'web.sqlite'}", "AIDOC_POLL_INTERVAL": "0.2"},
    ).start()
    yield httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10), folder, process
    process.stop()


def until(client: httpx.Client, path: str, accept, timeout: float = 30.0):
    """The API's answer at `path` once `accept` holds for it (the indexer follows the chain)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        if accept(answer.json()) or time.monotonic() > deadline:
            return answer.json()
        time.sleep(0.2)


def test_a_diagnosis_appears_on_every_page_of_the_api(web, node, doctor, patient, provider, models, models_dir):
    client, folder, process = web
    sample = samples_of(models_dir, DataType.LAB_PANEL)[0]
    record = consented_record(patient, doctor, node, sample)
    request_id, terms = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
    settle(doctor, [request_id])

    requests = until(client, f"/api/requesters/{doctor.address}/requests",
                     lambda a: any(i["requestId"] == request_id and i["status"] == "fulfilled" for i in a["items"]))
    mine = next(item for item in requests["items"] if item["requestId"] == request_id)
    assert mine["status"] == "fulfilled" and mine["recordId"] == record and mine["node"] == node.address
    assert int(mine["royalty"]) == ROYALTY and mine["outcome"]["resultCid"]
    assert mine["outcome"]["resultCommitment"].startswith("0x") and len(mine["outcome"]["resultCommitment"]) == 66

    records = until(client, f"/api/patients/{patient.address}/records", lambda a: a["total"] == 1)["items"]
    assert [r["recordId"] for r in records] == [record] and records[0]["accesses"] == 1
    assert [c["grantee"] for c in records[0]["consents"]] == [doctor.address]
    consents = client.get(f"/api/patients/{patient.address}/consents").json()["items"]
    assert [(c["recordId"], c["grantee"], c["purposes"] & 1) for c in consents] == [(record, doctor.address, 1)]

    trail = client.get(f"/api/patients/{patient.address}/audit").json()["items"]
    names = [event["name"] for event in reversed(trail)]
    assert names[:2] == ["RecordRegistered", "ConsentGranted"] and "RecordAccessed" in names
    access = next(event for event in trail if event["name"] == "RecordAccessed")
    assert access["args"]["grantee"] == doctor.address and access["args"]["node"] == node.address
    assert access["args"]["requestId"] == request_id and access["time"] > 0
    assert client.get(f"/api/patients/{patient.address}/royalties").json()["earned"] == str(ROYALTY)

    granted = client.get(f"/api/grantees/{doctor.address}/records").json()["items"]
    assert record in [item["recordId"] for item in granted]
    model = next(m for m in client.get("/api/models?limit=200").json()["items"]
                 if m["modelId"] == models[DataType.LAB_PANEL])
    assert model["provider"] == provider.address and model["usage"] >= 1 and model["suspended"] is False
    listed = next(n for n in client.get("/api/nodes?limit=200").json()["items"] if n["node"] == node.address)
    assert listed["requests"] >= 1 and int(listed["stake"]) > 0

    detail = client.get(f"/api/requests/{request_id}").json()
    assert [e["name"] for e in detail["events"]][0] == "DiagnosisRequested" and detail["status"] == "fulfilled"
    tx = detail["events"][0]["tx"]
    by_tx = client.get(f"/api/search?q={tx}").json()
    assert by_tx["kind"] == "transaction" and "DiagnosisRequested" in [e["name"] for e in by_tx["events"]["items"]]
    by_address = client.get(f"/api/search?q={patient.address}").json()
    assert by_address["roles"] == ["patient"]
    assert client.get(f"/api/search?q={request_id}").json()["request"]["requestId"] == request_id

    # Privacy: the record's values appear nowhere the server wrote (its database and its log).
    values = [str(v) for v in json.loads(sample.read_text()).values() if isinstance(v, float) and len(str(v)) >= 5]
    assert len(values) >= 10
    written = b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())
    assert written and not [v for v in values if v.encode() in written]


def test_bad_queries_and_uploads_get_one_line_and_nothing_is_stored(web):
    client, _, process = web
    for path in ("/api/patients/0x123/records", "/api/requesters/nobody/requests", "/api/models?limit=1000",
                 "/api/models?offset=-1", "/api/events?tx=0x12", "/api/search?q=hello", "/api/requests/12x"):
        answer = client.get(path)
        assert answer.status_code == 400, path
        assert "\n" not in answer.json()["error"] and answer.json()["error"]
    assert client.get("/api/requests/999999").status_code == 404

    plaintext = b'{"format": "aidoc.lab-panel", "mean_radius": 17.08}'
    refused = client.post("/api/ipfs?kind=record", content=plaintext)
    assert refused.status_code == 400 and "encrypt it in the page first" in refused.json()["error"]
    assert client.post("/api/ipfs?kind=weights", content=plaintext).status_code == 400
    assert client.post("/api/ipfs?kind=envelope", content=b'{"version": 1, "recipients": {"a": 1}}').status_code == 400
    assert client.post("/api/ipfs?kind=anything", content=b"x").status_code == 400
    assert client.post("/api/ipfs?kind=record", content=b"AIDR\x02" + b"\0" * (17 * 1024 * 1024)).status_code == 413

    from nacl.public import PrivateKey

    sealed = encrypt_record(plaintext, [PrivateKey.generate().public_key.encode()], data_type=1)
    for kind, body in (("record", sealed.ciphertext), ("envelope", sealed.key_envelope)):
        stored = client.post(f"/api/ipfs?kind={kind}", content=body)
        assert stored.status_code == 200, stored.text
        assert client.get(f"/api/ipfs/{stored.json()['cid']}").content == body
    assert client.get("/api/ipfs/not-a-cid").status_code == 400
    assert client.get("/relay/v1/status").status_code == 503  # no relayer configured: the page says so
    assert process.process.poll() is None


def test_the_page_is_served_with_a_strict_content_security_policy(web):
    client, _, _ = web
    for path in ("/", "/patient", "/app.js"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:200])
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "https:" not in policy
    assert b"<script" in client.get("/").content and b"src=\"/app.js\"" in client.get("/").content
