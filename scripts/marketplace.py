"""Scripts one round of the marketplace on the connected chain and prints who was paid what:
`brownie run scripts/marketplace.py --network development`.

Patients register encrypted records and grant consent (by signature, directly and in a batch), a
provider registers a model, a node stakes, a doctor requests diagnoses (one with a permit), the node
fulfils them (one alone, the rest in a batch) and withdraws its fees, a patient revokes consent and
reads the access log of their record.

Record and result payloads here are random ciphertext stand-ins: no health data is involved. The
oracle workers add real encryption, IPFS storage and model inference on top of these transactions.

On a development chain the actors are the node's unlocked accounts plus fresh in-memory keys. On a
testnet set AIDOC_<ROLE>_KEYSTORE (ROLE: ADMIN, PATIENT, DOCTOR, PROVIDER, NODE) to Brownie keystore
ids; the script deploys first unless deployments/<chainId>.json points at live contracts.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from brownie import (
    accounts,
    chain,
    network,
    web3,
)
from brownie.exceptions import VirtualMachineError

from aidoc.chain.request import DiagnosisRequest
from aidoc.config import AID, DeploySettings
from aidoc.constants import DataType, Purpose, input_types_mask
from aidoc.errors import AidocError, ConfigError, exit_on_user_error
from aidoc.signing import sign_consent_grant, sign_consent_revocation, sign_permit
from scripts.accounts import fresh_local_account
from scripts.deploy import current_marketplace
from scripts.stand_ins import stand_in_ciphertext

DEV_NETWORKS = ("development", "anvil", "ganache-cli")
MODEL_PRICE = 10 * AID
ROYALTY = 2 * AID
NODE_FEE = 3 * AID
REQUEST_TOTAL = MODEL_PRICE + ROYALTY + NODE_FEE  # what the doctor escrows per request


@dataclass
class Actors:
    admin: object
    doctor: object
    provider: object
    node: object
    patients: list


def _actors() -> Actors:
    if network.show_active() in DEV_NETWORKS:
        admin = accounts[0]
        return Actors(admin=admin, doctor=fresh_local_account(admin), provider=accounts[1], node=accounts[2],
                      patients=[fresh_local_account(admin) for _ in range(3)])
    keystores = {role: os.environ.get(f"AIDOC_{role}_KEYSTORE", "") for role in
                 ("ADMIN", "PATIENT", "DOCTOR", "PROVIDER", "NODE")}
    missing = [f"AIDOC_{role}_KEYSTORE" for role, ident in keystores.items() if not ident]
    if missing:
        raise ConfigError(f"set {', '.join(missing)} to Brownie keystore ids (brownie accounts new ID)")
    loaded = {role: accounts.load(ident) for role, ident in keystores.items()}
    return Actors(admin=loaded["ADMIN"], doctor=loaded["DOCTOR"], provider=loaded["PROVIDER"], node=loaded["NODE"],
                  patients=[loaded["PATIENT"]])


def _aid(amount: int) -> str:
    return f"{amount / AID:,.2f} AID"


@exit_on_user_error
def main() -> None:
    settings = DeploySettings()
    actors = _actors()
    m = current_marketplace(settings)
    start_block = chain.height
    admin, doctor, provider, node, patients = actors.admin, actors.doctor, actors.provider, actors.node, actors.patients
    tx = {"from": admin}

    print("\n== Funding the participants from the treasury")
    m.token.transfer(doctor, 1_000 * AID, tx)
    m.token.transfer(node, settings.min_stake, tx)

    print("\n== Patients register encrypted lab panels (ciphertext CID + ciphertext hash only)")
    record_ids = []
    for patient in patients:
        cid, digest = stand_in_ciphertext(2048)
        envelope_cid, _ = stand_in_ciphertext(96)
        receipt = m.consents.registerRecord(cid, digest, DataType.LAB_PANEL, envelope_cid, ROYALTY, {"from": patient})
        record_ids.append(receipt.return_value)
        print(f"  record {receipt.return_value} of {patient.address[:10]}: {cid}")

    print("\n== Consent")
    expiry = chain.time() + 30 * 24 * 3600
    deadline = chain.time() + 3600
    signature = sign_consent_grant(
        patients[0].private_key, chain_id=chain.id, registry=m.consents.address, record_id=record_ids[0],
        grantee=doctor.address, purposes=Purpose.DIAGNOSIS, expiry=expiry, nonce=m.consents.nonces(patients[0]),
        deadline=deadline,
    )
    m.consents.grantConsentBySig(record_ids[0], doctor, Purpose.DIAGNOSIS, expiry, deadline, signature.signature,
                                 {"from": doctor})
    print(f"  record {record_ids[0]}: signed off-chain by its patient, relayed by the doctor (patient paid no gas)")
    for record_id, patient in zip(record_ids[1:], patients[1:]):
        if record_id == record_ids[-1] and len(record_ids) > 2:
            m.consents.grantConsentBatch(
                [(record_id, doctor, Purpose.DIAGNOSIS, expiry), (record_id, provider, Purpose.TRAINING, expiry)],
                {"from": patient},
            )
            print(f"  record {record_id}: batch grant (diagnosis to the doctor, training to the provider)")
        else:
            m.consents.grantConsent(record_id, doctor, Purpose.DIAGNOSIS, expiry, {"from": patient})
            print(f"  record {record_id}: granted directly")

    print("\n== A provider registers a model, a node stakes")
    weights_cid, weights_sha = stand_in_ciphertext(4096)
    model_id = m.models.registerModel("breast-cancer-mlp", weights_cid, weights_sha, DataType.LAB_PANEL,
                                      MODEL_PRICE, {"from": provider}).return_value
    print(f"  model {model_id}: breast-cancer-mlp v{m.models.getModel(model_id)[5]}, {_aid(MODEL_PRICE)} per call")
    if not m.nodes.isActive(node):
        m.token.approve(m.nodes, settings.min_stake, {"from": node})
        m.nodes.register(settings.min_stake, NODE_FEE, "0x" + secrets.token_hex(32),
                         input_types_mask(DataType.LAB_PANEL, DataType.ECG), False, {"from": node})
    print(f"  node {node.address[:10]}: staked {_aid(m.nodes.getNode(node)[0])}, fee {_aid(m.nodes.getNode(node)[1])}")

    watched = {"doctor": doctor, "provider": provider, "node": node, "market": m.market}
    watched.update({f"patient {i + 1}": p for i, p in enumerate(patients)})
    before = {name: m.token.balanceOf(a) for name, a in watched.items()}

    print("\n== The doctor requests diagnoses")
    result_key = "0x" + secrets.token_hex(32)  # the doctor's X25519 public key (stand-in)
    requests = []
    for index, record_id in enumerate(record_ids):
        if index == 0 and hasattr(doctor, "private_key"):
            permit_deadline = chain.time() + 600
            permit = sign_permit(doctor.private_key, chain_id=chain.id, token=m.token.address, owner=doctor.address,
                                 spender=m.market.address, value=REQUEST_TOTAL, nonce=m.token.nonces(doctor),
                                 deadline=permit_deadline)
            receipt = m.market.requestDiagnosisWithPermit(record_id, model_id, node, result_key, REQUEST_TOTAL, REQUEST_TOTAL,
                                                          permit_deadline, permit.v, permit.r, permit.s,
                                                          {"from": doctor})
            how = "with an ERC-2612 permit in the same transaction"
        else:
            m.token.approve(m.market, REQUEST_TOTAL, {"from": doctor})
            receipt = m.market.requestDiagnosis(record_id, model_id, node, result_key, REQUEST_TOTAL,
                                                 {"from": doctor})
            how = "after an approve"
        event = receipt.events["DiagnosisRequested"]
        requests.append((event["requestId"], DiagnosisRequest.from_event_field(event["request"])))
        print(f"  request {event['requestId']} on record {record_id} ({how}), {receipt.gas_used:,} gas")

    print("\n== The node fulfils: one alone, the rest in one batch")

    def fulfilment(request_id, request):
        result_cid, _ = stand_in_ciphertext(256)
        commitment = web3.keccak(secrets.token_bytes(32) + result_cid.encode())  # salted: reveals nothing
        return (request_id, request.as_tuple(), commitment, result_cid)

    first = fulfilment(*requests[0])
    receipt = m.market.fulfil(first[0], first[1], first[2], first[3], {"from": node})
    print(f"  fulfil({first[0]}): {receipt.gas_used:,} gas")
    if len(requests) > 1:
        batch = [fulfilment(*r) for r in requests[1:]]
        receipt = m.market.fulfilBatch(batch, {"from": node})
        print(f"  fulfilBatch of {len(batch)}: {receipt.gas_used:,} gas ({receipt.gas_used // len(batch):,} per request)")
    m.market.withdrawNodeEarnings(node, {"from": node})

    print("\n== Who was paid what")
    after = {name: m.token.balanceOf(a) for name, a in watched.items()}
    for name in watched:
        delta = after[name] - before[name]
        print(f"  {name:<10} {'+' if delta >= 0 else '-'}{_aid(abs(delta))}")
    expected = {"doctor": -len(requests) * REQUEST_TOTAL,
                "provider": len(requests) * MODEL_PRICE, "node": len(requests) * NODE_FEE, "market": 0}
    expected.update({f"patient {i + 1}": ROYALTY for i in range(len(patients))})
    wrong = [name for name in watched if after[name] - before[name] != expected[name]]
    if wrong:
        raise AidocError(f"payment split is off for {', '.join(wrong)}")
    print(f"  reputation of the node: {m.nodes.reputationOf(node)[0]} fulfilled")

    print("\n== Patient 1 revokes consent by signature, and a new request is refused")
    revocation = sign_consent_revocation(
        patients[0].private_key, chain_id=chain.id, registry=m.consents.address, record_id=record_ids[0],
        grantee=doctor.address, purposes=Purpose.DIAGNOSIS, nonce=m.consents.nonces(patients[0]),
        deadline=chain.time() + 3600,
    )
    m.consents.revokeConsentBySig(record_ids[0], doctor, Purpose.DIAGNOSIS, chain.time() + 3600,
                                  revocation.signature, {"from": doctor})
    m.token.approve(m.market, REQUEST_TOTAL, {"from": doctor})
    try:
        m.market.requestDiagnosis(record_ids[0], model_id, node, result_key, REQUEST_TOTAL,
                                  {"from": doctor})
        raise AidocError("a request without consent was accepted")
    except VirtualMachineError as error:
        print(f"  refused: {error.revert_msg}")

    print(f"\n== Audit trail of record {record_ids[0]} (what patient 1 sees)")
    for name in ("ConsentGranted", "RecordAccessed", "ConsentRevoked"):
        for log in m.consents.events.get_sequence(start_block, chain.height, event_type=name):
            if log.args.recordId != record_ids[0]:
                continue
            block = web3.eth.get_block(log.blockNumber)
            who = log.args.grantee
            detail = f"by node {log.args.node[:10]} for request {log.args.requestId}" if name == "RecordAccessed" else ""
            print(f"  block {log.blockNumber} t={block.timestamp}: {name} grantee {who[:10]} {detail}".rstrip())
    print("\nMarketplace round complete.")
