"""Patches around bugs of the pinned Brownie (1.22) that break its documented commands on live
networks, applied by aidoc.chain.brownie_runner before it connects (scripts and the console alike).

- After each deployment on a live network, Brownie records it in ~/.brownie/deployments.db from a
  background thread, which fails (`TypeError: dict object expected; got ...Sources`) and prints a
  traceback per contract; `Container.at()` records the same way.
- Connecting to a live network whose deployments Brownie kept in build/deployments fails
  (`TypeError: '<' not supported between instances of 'int' and 'str'`): the map it saves has the
  chain id as a string key, and it adds the configured chain id as an int next to it.

The project keeps its own record of a deployment (deployments/<chainId>.json), so both of Brownie's
persistence paths are switched off: nothing else in Brownie depends on them. `tolerate_transaction_index_lag`
(brownie_runner) is the third patch, for development chains under load."""

from __future__ import annotations

PATCHED = "_aidoc_live_patched"


def disable_deployment_persistence() -> None:
    """Makes Brownie keep no record of deployments of its own (on any network; on development
    networks it keeps none anyway unless dev_deployment_artifacts is set)."""
    import brownie.network.contract as contract
    from brownie.project.main import Project

    if getattr(contract, PATCHED, False):
        return

    def nothing(*_args: object, **_kwargs: object) -> None:
        return None

    contract._add_deployment = nothing
    contract.ProjectContract._save_deployment = nothing
    Project._load_deployments = nothing
    Project._add_to_deployment_map = nothing
    Project._remove_from_deployment_map = nothing
    setattr(contract, PATCHED, True)
