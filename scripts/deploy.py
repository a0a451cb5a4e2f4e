"""Deploys and wires the marketplace: `brownie run scripts/deploy.py --network <id>`.

On a development network (anvil, Ganache) the first unlocked account deploys. On a testnet, set
AIDOC_DEPLOYER_KEYSTORE to a Brownie keystore id (`brownie accounts new <id>`) or an aidoc keystore
name (`aidoc account new <name>`); its password comes from AIDOC_PASSWORD, else Brownie asks. The
addresses are written to deployments/<chainId>.json, with the hashes of the build deployed.

Deploying is idempotent: a recorded deployment whose contracts are live and whose build hashes
match the current build is reused (AIDOC_DEPLOY_FRESH=1, `aidoc deploy --fresh`, redeploys).
Gas is estimated per transaction; AIDOC_MAX_FEE_GWEI caps what each may pay per gas.
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

from aidoc.chain.deployments import CONTRACT_NAMES, Deployment, build_hashes, load_deployment, save_deployment
from aidoc.config import DeploySettings, KeySettings, ServiceSettings
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
    tx = {"from": deployer, **fee_cap(settings)}
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


def fee_cap(settings: DeploySettings) -> dict:
    """Brownie's fee fields for AIDOC_MAX_FEE_GWEI (none without a cap: Brownie's defaults)."""
    if not settings.max_fee_gwei:
        return {}
    cap = int(settings.max_fee_gwei * 10**9)
    return {"max_fee": cap, "priority_fee": min(cap, web3.eth.max_priority_fee)}


def deployer_account(settings: DeploySettings):
    """The deploying account: a keystore on live networks, the first dev account otherwise."""
    if settings.deployer_keystore:
        own = ServiceSettings().keystore_dir / f"{settings.deployer_keystore}.json"  # an aidoc keystore
        return accounts.load(str(own) if own.exists() else settings.deployer_keystore, password=KeySettings().password)
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


def reusable_deployment(settings: DeploySettings) -> tuple[Deployment | None, str]:
    """The recorded deployment of this chain if it can be reused (its contracts live, its build
    hashes those of the current build), and otherwise why not."""
    try:
        deployment = load_deployment(settings.deployments_dir, chain.id)
    except DeploymentNotFound:
        return None, f"no marketplace recorded for chain {chain.id}"
    if not all(len(web3.eth.get_code(deployment.address(name))) > 0 for name in CONTRACT_NAMES):
        return None, f"the marketplace recorded for chain {chain.id} is not on this chain (was it restarted?)"
    if deployment.build_hashes != build_hashes(ServiceSettings().build_dir):
        return None, f"the marketplace recorded for chain {chain.id} was deployed from another build"
    return deployment, ""


def current_marketplace(settings: DeploySettings) -> Marketplace:
    """This chain's marketplace: the recorded deployment if it is live and matches the build (and
    no fresh deployment is asked for), else a new one."""
    deployment, why = (None, "a fresh deployment was asked for") if settings.fresh else reusable_deployment(settings)
    if deployment is not None:
        print(f"The marketplace recorded in {settings.deployments_dir / f'{chain.id}.json'} is live and matches the "
              "build: nothing to deploy (aidoc deploy --fresh deploys a new one).")
        return attach_marketplace(deployment)
    print(f"{why[0].upper()}{why[1:]}: deploying the marketplace.")
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
        build_hashes=build_hashes(ServiceSettings().build_dir),
    )
    path = save_deployment(settings.deployments_dir, deployment)
    print(f"Deployed the AIDoc marketplace on chain {chain.id}; addresses in {path}")
    return marketplace


@exit_on_user_error
def main() -> Marketplace:
    return current_marketplace(DeploySettings())
