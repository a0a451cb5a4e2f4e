"""Deploys and wires the marketplace: `brownie run scripts/deploy.py --network <id>`.

On a development network (anvil, Ganache) the first unlocked account deploys. On a testnet, set
AIDOC_DEPLOYER_KEYSTORE to a Brownie keystore id (`brownie accounts new <id>`); Brownie asks for
its password. The addresses are written to deployments/<chainId>.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from brownie import (
    AIDToken,
    ConsentRegistry,
    DiagnosisMarket,
    FederatedRounds,
    ModelRegistry,
    NodeRegistry,
    TrainingMarket,
    accounts,
    chain,
    web3,
)

from aidoc.chain.deployments import CONTRACT_NAMES, Deployment, load_deployment, save_deployment
from aidoc.config import DeploySettings
from aidoc.errors import ConfigError, DeploymentNotFound, exit_on_user_error


@dataclass
class Marketplace:
    """The deployed contracts, as Brownie ProjectContract objects."""

    token: object
    consents: object
    models: object
    nodes: object
    market: object
    training: object
    rounds: object


def deploy_contracts(deployer, settings: DeploySettings) -> Marketplace:
    """Deploys the seven contracts from `deployer` and grants the markets their roles."""
    tx = {"from": deployer}
    token = AIDToken.deploy(deployer, settings.token_cap, settings.initial_supply, tx)
    consents = ConsentRegistry.deploy(deployer, tx)
    models = ModelRegistry.deploy(deployer, tx)
    nodes = NodeRegistry.deploy(deployer, token, settings.min_stake, settings.unbonding_delay, tx)
    market = DiagnosisMarket.deploy(deployer, token, consents, models, nodes, settings.request_timeout, tx)
    training = TrainingMarket.deploy(deployer, token, consents, models, nodes, settings.default_epsilon_limit_milli,
                                     tx)
    rounds = FederatedRounds.deploy(deployer, token, models, tx)

    consents.grantRole(consents.ACCESS_LOGGER_ROLE(), market, tx)
    models.grantRole(models.RATER_ROLE(), market, tx)
    nodes.grantRole(nodes.REPORTER_ROLE(), market, tx)
    # The training markets log their cohorts' use and publish the models they train.
    consents.grantRole(consents.ACCESS_LOGGER_ROLE(), training, tx)
    models.grantRole(models.PUBLISHER_ROLE(), training, tx)
    models.grantRole(models.PUBLISHER_ROLE(), rounds, tx)
    for auditor in settings.auditors or [deployer.address]:
        models.grantRole(models.AUDITOR_ROLE(), auditor, tx)
    return Marketplace(token, consents, models, nodes, market, training, rounds)


def deployer_account(settings: DeploySettings):
    """The deploying account: a keystore on live networks, the first dev account otherwise."""
    if settings.deployer_keystore:
        return accounts.load(settings.deployer_keystore)
    if len(accounts) > 0:  # a development chain's unlocked accounts
        return accounts[0]
    raise ConfigError("no deployer: set AIDOC_DEPLOYER_KEYSTORE to a Brownie keystore id (brownie accounts new ID)")


def attach_marketplace(deployment: Deployment) -> Marketplace:
    """The contracts a deployment record points at."""
    return Marketplace(
        token=AIDToken.at(deployment.address("AIDToken")),
        consents=ConsentRegistry.at(deployment.address("ConsentRegistry")),
        models=ModelRegistry.at(deployment.address("ModelRegistry")),
        nodes=NodeRegistry.at(deployment.address("NodeRegistry")),
        market=DiagnosisMarket.at(deployment.address("DiagnosisMarket")),
        training=TrainingMarket.at(deployment.address("TrainingMarket")),
        rounds=FederatedRounds.at(deployment.address("FederatedRounds")),
    )


def current_marketplace(settings: DeploySettings) -> Marketplace:
    """This chain's marketplace: the recorded deployment if its contracts are live, else a new one."""
    try:
        deployment = load_deployment(settings.deployments_dir, chain.id)
    except DeploymentNotFound:
        deployment = None
    if deployment is not None and all(len(web3.eth.get_code(deployment.address(name))) > 0
                                      for name in CONTRACT_NAMES):
        return attach_marketplace(deployment)
    print(f"No live marketplace recorded for chain {chain.id}: deploying one.")
    return deploy_and_record(settings)


def deploy_and_record(settings: DeploySettings) -> Marketplace:
    """Deploys from the configured account and writes deployments/<chainId>.json."""
    deployer = deployer_account(settings)
    marketplace = deploy_contracts(deployer, settings)
    deployment = Deployment(
        chain_id=chain.id,
        deployer=deployer.address,
        block_number=chain.height,
        contracts={
            "AIDToken": marketplace.token.address,
            "ConsentRegistry": marketplace.consents.address,
            "ModelRegistry": marketplace.models.address,
            "NodeRegistry": marketplace.nodes.address,
            "DiagnosisMarket": marketplace.market.address,
            "TrainingMarket": marketplace.training.address,
            "FederatedRounds": marketplace.rounds.address,
        },
    )
    path = save_deployment(settings.deployments_dir, deployment)
    print(f"Deployed the AIDoc marketplace on chain {chain.id}; addresses in {path}")
    return marketplace


@exit_on_user_error
def main() -> Marketplace:
    return deploy_and_record(DeploySettings())
