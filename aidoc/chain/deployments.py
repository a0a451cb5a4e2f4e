"""Deployment records: deployments/<chainId>.json holds the addresses of one chain's contracts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from aidoc.config import ENV_PREFIX, ServiceSettings, child_environment
from aidoc.errors import AidocError, DeploymentNotFound


class DeploymentFailed(AidocError):
    """Brownie could not deploy the marketplace (the chain refused, or the project is not built)."""

CONTRACT_NAMES = (
    "AIDToken", "ConsentRegistry", "ModelRegistry", "NodeRegistry", "DiagnosisMarket", "TrainingMarket",
    "FederatedRounds",
)


@dataclass(frozen=True)
class Deployment:
    """Where the marketplace lives on one chain."""

    chain_id: int
    deployer: str
    block_number: int
    contracts: dict[str, str]

    def address(self, name: str) -> str:
        return self.contracts[name]


def deployment_path(directory: Path, chain_id: int) -> Path:
    return Path(directory) / f"{chain_id}.json"


def save_deployment(directory: Path, deployment: Deployment) -> Path:
    path = deployment_path(directory, deployment.chain_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(deployment), indent=2, sort_keys=True) + "\n")
    return path


def load_deployment(directory: Path, chain_id: int) -> Deployment:
    path = deployment_path(directory, chain_id)
    if not path.exists():
        raise DeploymentNotFound(
            f"no deployment for chain {chain_id} at {path}; run `aidoc deploy` (or `make demo`) against this chain first"
        )
    data = json.loads(path.read_text())
    missing = [name for name in CONTRACT_NAMES if name not in data["contracts"]]
    if missing:
        raise DeploymentNotFound(
            f"the deployment for chain {chain_id} at {path} predates {', '.join(missing)}; run `aidoc deploy` again"
        )
    return Deployment(
        chain_id=int(data["chain_id"]),
        deployer=data["deployer"],
        block_number=int(data["block_number"]),
        contracts=dict(data["contracts"]),
    )


def deploy_marketplace(services: ServiceSettings, *, quiet: bool = True) -> None:
    """Deploys the marketplace with Brownie (the project's scripts/deploy.py, run in the project
    directory) to the settings' chain, and records it in their deployments/<chainId>.json."""
    from aidoc.chain.brownie_runner import run_script

    env = child_environment({ENV_PREFIX + "RPC_URL": services.rpc_url,
                             ENV_PREFIX + "DEPLOYMENTS_DIR": str(services.deployments_dir)}, inherit_aidoc=True)
    deployed = run_script("scripts/deploy.py", env, capture=quiet)
    if deployed.returncode != 0:
        detail = (deployed.stdout or "")[-3000:] + (deployed.stderr or "")[-3000:] if quiet else ""
        raise DeploymentFailed(f"deployment to {services.rpc_url} failed (exit status {deployed.returncode})"
                               + (":\n" + detail if detail else ""))
