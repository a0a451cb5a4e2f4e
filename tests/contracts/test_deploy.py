"""scripts/deploy.py: deploys, wires the roles and records the addresses per chain."""

import json

from brownie import DiagnosisMarket, chain

from aidoc.chain.deployments import load_deployment
from aidoc.config import AID
from scripts import deploy


def test_deploy_script_records_addresses_and_wires_roles(tmp_path, monkeypatch, admin):
    monkeypatch.setenv("AIDOC_DEPLOYMENTS_DIR", str(tmp_path))
    monkeypatch.setenv("AIDOC_REQUEST_TIMEOUT", "900")
    monkeypatch.setenv("AIDOC_MIN_STAKE", "250")
    marketplace = deploy.main()

    record = json.loads((tmp_path / f"{chain.id}.json").read_text())
    assert set(record["contracts"]) == {"AIDToken", "ConsentRegistry", "ModelRegistry", "NodeRegistry",
                                        "DiagnosisMarket"}
    deployment = load_deployment(tmp_path, chain.id)
    assert deployment.deployer == admin.address
    market = DiagnosisMarket.at(deployment.address("DiagnosisMarket"))
    assert market.token() == marketplace.token.address
    assert market.consents() == marketplace.consents.address
    assert market.requestTimeout() == 900
    assert marketplace.nodes.minStake() == 250 * AID
    assert marketplace.consents.hasRole(marketplace.consents.ACCESS_LOGGER_ROLE(), market)
    assert marketplace.models.hasRole(marketplace.models.RATER_ROLE(), market)
    assert marketplace.nodes.hasRole(marketplace.nodes.REPORTER_ROLE(), market)
    assert marketplace.models.hasRole(marketplace.models.AUDITOR_ROLE(), admin)
    assert not marketplace.consents.hasRole(marketplace.consents.ACCESS_LOGGER_ROLE(), admin)
