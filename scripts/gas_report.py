"""Gas per marketplace operation in a steady state, against the targets:
`brownie run scripts/gas_report.py` (or `make gas`). Writes reports/gas.json and prints a markdown
table for BENCHMARKS.md.

Steady state means what a live market looks like after its first days: every payee already holds
AID (no first-time storage slot), the market already holds other escrows, the node has an earnings
account. Batches are the hard case: every request of a batch comes from a different patient, so no
royalty payment can be summed with another; only the provider's fees are (one model per batch)."""

from __future__ import annotations

import json
import secrets

from brownie import accounts, chain, web3

from aidoc.chain.request import DiagnosisRequest
from aidoc.cid import cid_v1_raw
from aidoc.config import AID, DeploySettings, project_dir
from aidoc.constants import DataType, FailureReason, Purpose, input_types_mask
from aidoc.signing import sign_consent_grant, sign_permit
from scripts.accounts import fresh_local_account
from scripts.deploy import deploy_contracts
from scripts.stand_ins import stand_in_ciphertext

TARGETS = {"grantConsent": 50_000, "requestDiagnosis": 120_000, "fulfil": 90_000, "fulfilBatch per request @32": 45_000}
BATCH_SIZES = (1, 8, 32, 128)
PRICE, ROYALTY, FEE = 10 * AID, 2 * AID, 3 * AID
TOTAL = PRICE + ROYALTY + FEE


class Bench:
    def __init__(self):
        self.admin, self.provider, self.node = accounts[0], accounts[1], accounts[2]
        self.doctor = fresh_local_account(self.admin)
        self.settings = DeploySettings(min_stake=1_000 * AID)
        self.m = deploy_contracts(self.admin, self.settings)
        self.gas: dict[str, int] = {}
        m, admin = self.m, self.admin
        m.token.transfer(self.doctor, 1_000_000 * AID, {"from": admin})
        m.token.transfer(self.node, 10_000 * AID, {"from": admin})
        m.token.approve(m.market, 2**255, {"from": self.doctor})
        m.token.approve(m.nodes, 2**255, {"from": self.node})
        m.nodes.register(1_000 * AID, FEE, "0x" + "11" * 32, input_types_mask(DataType.LAB_PANEL), False,
                         {"from": self.node})
        self.model_id = m.models.registerModel("panel-mlp", stand_in_ciphertext(512)[0], "0x" + "22" * 32, DataType.LAB_PANEL,
                                               PRICE, {"from": self.provider}).return_value
        # A standing open request keeps the market's balance non-zero, as it is in a live market.
        self.standing = self.patient_record()

    def patient_record(self):
        """A new patient with a record consented to the doctor, paid one royalty already."""
        patient = fresh_local_account(self.admin)
        cid, digest = stand_in_ciphertext(512)
        record = self.m.consents.registerRecord(cid, digest, DataType.LAB_PANEL, cid, ROYALTY,
                                                {"from": patient}).return_value
        self.m.consents.grantConsent(record, self.doctor, Purpose.DIAGNOSIS, chain.time() + 86400 * 365,
                                     {"from": patient})
        self.m.token.transfer(patient, 1, {"from": self.admin})
        return patient, record

    def request(self, record) -> tuple[int, DiagnosisRequest, int]:
        tx = self.m.market.requestDiagnosis(record, self.model_id, self.node, "0x" + "33" * 32, TOTAL,
                                            {"from": self.doctor})
        event = tx.events["DiagnosisRequested"]
        return event["requestId"], DiagnosisRequest.from_event_field(event["request"]), tx.gas_used

    @staticmethod
    def item(request_id, request):
        return (request_id, request.as_tuple(), web3.keccak(secrets.token_bytes(32)), cid_v1_raw(secrets.token_bytes(64)))

    def run(self) -> dict:
        m, gas = self.m, self.gas
        # Warm-up: one full round so provider, node account and market balance exist.
        request_id, request, _ = self.request(self.standing[1])
        m.market.fulfil(*self.item(request_id, request), {"from": self.node})
        self.request(self.standing[1])  # stays open

        patient, record = self.patient_record()
        cid, digest = stand_in_ciphertext(512)
        gas["registerRecord"] = m.consents.registerRecord(cid, digest, DataType.LAB_PANEL, cid, ROYALTY,
                                                          {"from": patient}).gas_used
        grantee = fresh_local_account(self.admin)
        gas["grantConsent"] = m.consents.grantConsent(record, grantee, Purpose.DIAGNOSIS, chain.time() + 86400,
                                                      {"from": patient}).gas_used
        gas["revokeConsent"] = m.consents.revokeConsent(record, grantee, Purpose.DIAGNOSIS, {"from": patient}).gas_used
        gas["grantConsentBySig"] = self._grant_by_sig(patient, record, grantee)
        others = [fresh_local_account(self.admin) for _ in range(8)]
        batch = [(record, g, Purpose.RESEARCH, chain.time() + 86400) for g in others]
        gas["grantConsentBatch per grant @8"] = m.consents.grantConsentBatch(batch, {"from": patient}).gas_used // 8

        gas["registerModel"] = m.models.registerModel("panel-mlp", cid, "0x" + "44" * 32, DataType.LAB_PANEL,
                                                      PRICE, {"from": self.provider}).gas_used
        staker = fresh_local_account(self.admin)
        m.token.transfer(staker, 1_000 * AID, {"from": self.admin})
        m.token.approve(m.nodes, 1_000 * AID, {"from": staker})
        gas["registerNode (stake)"] = m.nodes.register(1_000 * AID, FEE, "0x" + "55" * 32,
                                                       input_types_mask(DataType.LAB_PANEL), True,
                                                       {"from": staker}).gas_used

        _, record = self.patient_record()
        request_id, request, gas["requestDiagnosis"] = self.request(record)
        gas["fulfil"] = m.market.fulfil(*self.item(request_id, request), {"from": self.node}).gas_used
        gas["requestDiagnosisWithPermit"] = self._request_with_permit(record)

        request_id, request, _ = self.request(record)
        gas["reportFailure"] = m.market.reportFailure(request_id, request.as_tuple(), FailureReason.CORRUPT_RECORD,
                                                      {"from": self.node}).gas_used
        request_id, request, _ = self.request(record)
        chain.sleep(self.settings.request_timeout + 1)
        gas["cancel (timed out)"] = m.market.cancel(request_id, request.as_tuple(), {"from": self.doctor}).gas_used

        for size in BATCH_SIZES:
            items = []
            for _ in range(size):
                _, record = self.patient_record()
                items.append(self.item(*self.request(record)[:2]))
            used = m.market.fulfilBatch(items, {"from": self.node}).gas_used
            gas[f"fulfilBatch @{size}"] = used
            gas[f"fulfilBatch per request @{size}"] = used // size
        gas["withdrawNodeEarnings"] = m.market.withdrawNodeEarnings(self.node, {"from": self.node}).gas_used
        gas["AID transfer (OpenZeppelin ERC-20)"] = m.token.transfer(self.provider, AID, {"from": self.doctor}).gas_used
        return gas

    def _grant_by_sig(self, patient, record, grantee) -> int:
        m = self.m
        expiry, deadline = chain.time() + 86400, chain.time() + 3600
        sig = sign_consent_grant(patient.private_key, chain_id=chain.id, registry=m.consents.address,
                                 record_id=record, grantee=grantee.address, purposes=Purpose.DIAGNOSIS,
                                 expiry=expiry, nonce=m.consents.nonces(patient), deadline=deadline)
        return m.consents.grantConsentBySig(record, grantee, Purpose.DIAGNOSIS, expiry, deadline, sig.signature,
                                            {"from": grantee}).gas_used

    def _request_with_permit(self, record) -> int:
        m, doctor = self.m, self.doctor
        m.token.approve(m.market, 0, {"from": doctor})
        deadline = chain.time() + 3600
        permit = sign_permit(doctor.private_key, chain_id=chain.id, token=m.token.address, owner=doctor.address,
                             spender=m.market.address, value=TOTAL, nonce=m.token.nonces(doctor), deadline=deadline)
        used = m.market.requestDiagnosisWithPermit(record, self.model_id, self.node, "0x" + "33" * 32, TOTAL, TOTAL,
                                                   deadline, permit.v, permit.r, permit.s, {"from": doctor}).gas_used
        m.token.approve(m.market, 2**255, {"from": doctor})
        return used


def markdown(gas: dict) -> str:
    lines = ["| operation | gas | target | |", "|---|---:|---:|---|"]
    for name, used in gas.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("meets" if used <= target else "MISSES")
        lines.append(f"| {name} | {used:,} | {f'{target:,}' if target else ''} | {verdict} |")
    return "\n".join(lines)


def main() -> dict:
    gas = Bench().run()
    report = {"chain_id": chain.id, "gas": gas, "targets": TARGETS,
              "meets_targets": {name: gas[name] <= limit for name, limit in TARGETS.items()}}
    path = project_dir() / "reports" / "gas.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + markdown(gas))
    print(f"\nWritten to {path}")
    return report
