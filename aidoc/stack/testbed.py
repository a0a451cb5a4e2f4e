"""A throwaway marketplace for tests and benchmarks: anvil, Redis and (optionally) a js-ipfs daemon
on free ports, the contracts deployed by Brownie, funded sessions for fresh identities, and the scene
most of them need, built in one place: a provider with a model, a staked node, consented records."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from aidoc.chain.contracts import chain_time_in
from aidoc.chain.deployments import deploy_marketplace
from aidoc.config import AID, ENV_PREFIX, ServiceSettings, models_dir, project_dir
from aidoc.constants import DataType, Purpose
from aidoc.identity import Identity
from aidoc.stack.process import ManagedProcess, free_port


@dataclass(frozen=True)
class Terms:
    """The prices a scene is built with, shared by the demo, the tests, the fault soak and the benchmarks."""

    model_price: int = 5 * AID
    royalty: int = AID  # to the record's owner, per diagnosis
    node_fee: int = 2 * AID
    stake: int = 1_000 * AID

    @property
    def per_request(self) -> int:
        """What a requester escrows for one diagnosis."""
        return self.model_price + self.royalty + self.node_fee


TERMS = Terms()


def consent_record(patient, source, nodes: list[str], grantee: str, royalty: int = TERMS.royalty,
                   purpose: Purpose = Purpose.DIAGNOSIS, days: float = 30) -> int:
    """A record of `source` (a file or a HealthRecord) by `patient`, readable by `nodes`, with
    `purpose` consent to `grantee` for `days`; returns its id."""
    from aidoc.flow.consent import grant_consent
    from aidoc.flow.record import add_record

    record_id = add_record(patient, source, nodes, royalty)
    expiry = chain_time_in(patient.marketplace.w3, days)
    grant_consent(patient, record_id, grantee, purpose, expiry)
    return record_id


@dataclass
class Testbed:
    services: ServiceSettings
    run_dir: Path
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def session(self, identity: Identity, marketplace=None):
        from aidoc.flow.session import Session

        return Session(identity, self.services, marketplace)

    def funded(self, aid: int = 1_000 * AID, marketplace=None, identity: Identity | None = None):
        """A Session for `identity` (default: a fresh one) with 10 ETH and `aid` AID units from the deployer."""
        from aidoc.chain.contracts import open_marketplace
        from aidoc.flow.faucet import fund

        marketplace = marketplace or open_marketplace(self.services)
        identity = identity or Identity.generate()
        fund(marketplace, identity.address, eth=10 * AID, aid=aid)
        return self.session(identity, marketplace)

    def provider_with_model(self, weights: Path, data_type: DataType, name: str = "panel",
                            price: int = TERMS.model_price, marketplace=None):
        """A funded provider (Session) and the id of the model it registered from `weights`."""
        from aidoc.flow.model import register_model

        provider = self.funded(0, marketplace)
        return provider, register_model(provider, weights, name, data_type, price)

    def staked_node(self, data_types: list[DataType], stake: int = TERMS.stake, fee: int = TERMS.node_fee,
                    marketplace=None, identity: Identity | None = None):
        """A funded node (Session; `identity`, default a fresh one) that staked `stake` and registered
        for `data_types` (its processes are the caller's to start: aidoc.stack.local.start_node)."""
        from aidoc.flow.node import register_node

        node = self.funded(stake, marketplace, identity)
        register_node(node, stake, fee, data_types, gpu=False)
        return node

    def consented_records(self, sources: list, node: str, grantee: str, count: int, royalty: int = TERMS.royalty,
                          marketplace=None) -> list[tuple[int, object]]:
        """`count` records of fresh patients, cycling over `sources`, readable by `node`, with
        diagnosis consent to `grantee`: (record id, owner Session) each."""
        owners = [self.funded(0, marketplace) for _ in range(count)]
        return [(consent_record(owner, sources[index % len(sources)], [node], grantee, royalty), owner)
                for index, owner in enumerate(owners)]


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
