"""A throwaway marketplace for tests and benchmarks: anvil, Redis and (optionally) a js-ipfs daemon
on free ports, the contracts deployed by Brownie, and funded sessions for fresh identities."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from aidoc.chain.deployments import deploy_marketplace
from aidoc.config import AID, ENV_PREFIX, ServiceSettings, models_dir, project_dir
from aidoc.identity import Identity
from aidoc.stack.process import ManagedProcess, free_port


@dataclass
class Testbed:
    services: ServiceSettings
    run_dir: Path
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def session(self, identity: Identity, marketplace=None):
        from aidoc.flow.session import Session

        return Session(identity, self.services, marketplace)

    def funded(self, aid: int = 1_000 * AID, marketplace=None):
        """A Session for a fresh identity with 10 ETH and `aid` AID units from the deployer."""
        from aidoc.chain.contracts import open_marketplace
        from aidoc.flow.faucet import fund

        marketplace = marketplace or open_marketplace(self.services)
        identity = Identity.generate()
        fund(marketplace, identity.address, eth=10 * AID, aid=aid)
        return self.session(identity, marketplace)


def ensure_trained_models(directory: Path | None = None) -> Path:
    """The trained models and sample records (default: the project's build/models):
    scripts/train_models.py runs once per checkout (`make models` does it too)."""
    directory = directory or models_dir()
    if not (directory / "metrics.json").exists():
        subprocess.run([sys.executable, str(project_dir() / "scripts" / "train_models.py"), "--out", str(directory)],
                       check=True, cwd=project_dir(), stdout=subprocess.DEVNULL)
    return directory


@contextlib.contextmanager
def testbed(run_dir: Path, *, ipfs_daemon: bool = True, settings: dict[str, str] | None = None) -> Iterator[Testbed]:
    """Starts the servers, points the AIDOC_ settings of this process at them, deploys, and undoes
    all of it on exit. `settings` adds AIDOC_ variables (the node processes inherit them)."""
    from aidoc.stack.services import anvil, redis_server

    ports = {"anvil": free_port(), "redis": free_port(), "ipfs": free_port()}
    env = {
        ENV_PREFIX + "RPC_URL": f"http://127.0.0.1:{ports['anvil']}",
        ENV_PREFIX + "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        ENV_PREFIX + "IPFS_API": f"http://127.0.0.1:{ports['ipfs']}" if ipfs_daemon else "",
        ENV_PREFIX + "STORE_DIR": str(run_dir / "embedded"),
        ENV_PREFIX + "DEPLOYMENTS_DIR": str(run_dir / "deployments"),
        ENV_PREFIX + "RUN_DIR": str(run_dir),
        **(settings or {}),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    bed = Testbed(ServiceSettings(), run_dir, env=env)
    try:
        bed.processes["anvil"] = anvil(run_dir, ports["anvil"]).start()
        bed.processes["redis"] = redis_server(run_dir, ports["redis"]).start()
        if ipfs_daemon:
            from aidoc.stack.ipfs import ipfs_daemon as js_ipfs

            bed.processes["ipfs"] = js_ipfs(run_dir, run_dir / "ipfs-repo", ports["ipfs"]).start()
        deploy_marketplace(bed.services)
        yield bed
    finally:
        for process in reversed(list(bed.processes.values())):
            process.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
