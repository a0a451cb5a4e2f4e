"""Deployment records: deployments/<chainId>.json holds the addresses of one chain's contracts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aidoc.config import ENV_PREFIX, KeySettings, ServiceSettings, child_environment
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
    # sha256 of each contract's runtime bytecode in the build it was deployed from (`build_hashes`):
    # a later `aidoc deploy` reuses the deployment only while the build still matches.
    build_hashes: dict[str, str] = field(default_factory=dict)

    def address(self, name: str) -> str:
        return self.contracts[name]


def build_hashes(build_dir: Path) -> dict[str, str]:
    """sha256 of each marketplace contract's runtime bytecode in the build (build/contracts)."""
    found = {}
    for name in CONTRACT_NAMES:
        path = Path(build_dir) / "contracts" / f"{name}.json"
        if not path.exists():
            raise DeploymentFailed(f"{path} is missing: compile the contracts first (make compile)")
        found[name] = hashlib.sha256(json.loads(path.read_text())["deployedBytecode"].encode()).hexdigest()
    return found


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
        build_hashes=dict(data.get("build_hashes", {})),
    )


def deploy_marketplace(services: ServiceSettings, *, quiet: bool = True, fresh: bool = False) -> None:
    """Deploys the marketplace with Brownie (the project's scripts/deploy.py, run in the project
    directory) to the settings' chain, and records it in their deployments/<chainId>.json; reuses
    the recorded deployment while it is live and matches the build, unless `fresh`. A chain with
    unlocked accounts is a development chain (Brownie's development network); any other is live
    (Brownie's `live` network of the runner: gas estimated, the deployer from AIDOC_DEPLOYER_KEYSTORE)."""
    from aidoc.chain.brownie_runner import check_script, run_script
    from aidoc.chain.contracts import connect_web3
    from aidoc.config import project_dir

    check_script(project_dir(), "scripts/deploy.py")  # a project to deploy from, before any chain
    network = "development" if connect_web3(services.rpc_url).eth.accounts else "live"
    password = KeySettings().password
    env = child_environment({ENV_PREFIX + "RPC_URL": services.rpc_url,
                             ENV_PREFIX + "DEPLOYMENTS_DIR": str(services.deployments_dir),
                             ENV_PREFIX + "DEPLOY_FRESH": "1" if fresh else "",
                             # the one secret the deploy script gets: it opens the deployer's keystore
                             **({ENV_PREFIX + "PASSWORD": password} if password and network == "live" else {})},
                            inherit_aidoc=True)
    deployed = run_script("scripts/deploy.py", env, capture=quiet, network=network)
    if deployed.returncode != 0:
        detail = (deployed.stdout or "")[-3000:] + (deployed.stderr or "")[-3000:] if quiet else ""
        raise DeploymentFailed(f"deployment to {services.rpc_url} failed (exit status {deployed.returncode})"
                               + (":\n" + detail if detail else ""))
