"""scripts/deploy.py: deploys, wires the roles and records the addresses per chain."""

import json

import pytest
from brownie import DiagnosisMarket, FederatedRounds, TrainingMarket, chain

from aidoc.chain.deployments import load_deployment
from aidoc.config import AID, DeploySettings
from aidoc.errors import DeploymentNotFound
from scripts import deploy


def test_deploy_script_records_addresses_and_wires_roles(tmp_path, monkeypatch, admin):
    monkeypatch.setenv("AIDOC_DEPLOYMENTS_DIR", str(tmp_path))
    monkeypatch.setenv("AIDOC_REQUEST_TIMEOUT", "900")
    monkeypatch.setenv("AIDOC_MIN_STAKE", "250")
    monkeypatch.setenv("AIDOC_DEFAULT_EPSILON_LIMIT", "2500")
    marketplace = deploy.main()

    record = json.loads((tmp_path / f"{chain.id}.json").read_text())
    assert set(record["contracts"]) == {"AIDToken", "ConsentRegistry", "ModelRegistry", "NodeRegistry",
                                        "DiagnosisMarket", "TrainingMarket", "FederatedRounds"}
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

    training = TrainingMarket.at(deployment.address("TrainingMarket"))
    rounds = FederatedRounds.at(deployment.address("FederatedRounds"))
    assert training.defaultEpsilonLimitMilli() == 2500
    assert (training.token(), training.consents(), training.models(), training.nodes()) == (
        marketplace.token.address, marketplace.consents.address, marketplace.models.address,
        marketplace.nodes.address)
    assert (rounds.token(), rounds.models()) == (marketplace.token.address, marketplace.models.address)
    assert marketplace.consents.hasRole(marketplace.consents.ACCESS_LOGGER_ROLE(), training)
    assert marketplace.models.hasRole(marketplace.models.PUBLISHER_ROLE(), training)
    assert marketplace.models.hasRole(marketplace.models.PUBLISHER_ROLE(), rounds)
    assert not marketplace.consents.hasRole(marketplace.consents.ACCESS_LOGGER_ROLE(), rounds)
    assert not marketplace.models.hasRole(marketplace.models.PUBLISHER_ROLE(), admin)
    assert training.hasRole(training.DEFAULT_ADMIN_ROLE(), admin) and rounds.hasRole(rounds.DEFAULT_ADMIN_ROLE(), admin)


def test_a_deployment_record_from_before_the_training_markets_is_redeployed(tmp_path, monkeypatch):
    """load_deployment refuses a record without the training markets, with what to run; the deploy
    script's current_marketplace then deploys a fresh marketplace instead of binding half of one."""
    monkeypatch.setenv("AIDOC_DEPLOYMENTS_DIR", str(tmp_path))
    old = deploy.main()
    path = tmp_path / f"{chain.id}.json"
    record = json.loads(path.read_text())
    for name in ("TrainingMarket", "FederatedRounds"):
        del record["contracts"][name]
    path.write_text(json.dumps(record))
    with pytest.raises(DeploymentNotFound, match="predates TrainingMarket, FederatedRounds; run `aidoc deploy`"):
        load_deployment(tmp_path, chain.id)
    fresh = deploy.current_marketplace(DeploySettings())
    assert fresh.market.address != old.market.address
    assert set(json.loads(path.read_text())["contracts"]) >= {"TrainingMarket", "FederatedRounds"}
    again = deploy.current_marketplace(DeploySettings())
    assert again.training.address == fresh.training.address and again.rounds.address == fresh.rounds.address
