"""Runs a Brownie script of the project in the project directory, as `brownie run` does:
`python -m aidoc.chain.brownie_runner scripts/deploy.py --network development`, or `run_script()`
from Python (the CLI's `aidoc deploy`, the demos, the tests). With AIDOC_RPC_URL set, the
development network attaches to the chain at that URL instead of 127.0.0.1:8545.

`brownie run` imports a script under a module name made of every folder of its absolute path
(/tmp/ci.x1/aidoc/scripts/deploy.py becomes 'tmp.ci.x1.aidoc.scripts.deploy'), so it fails when a
folder name holds a dot or matches an installed package. This runner loads the project the same way
and imports the script as scripts.<name> from the project directory."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from aidoc.chain.brownie_patches import disable_deployment_persistence
from aidoc.config import ENV_PREFIX, ServiceSettings, is_set, project_dir
from aidoc.errors import ConfigError


def check_script(project: Path, script: str) -> Path:
    """The script's path in the project's scripts/ folder, or a ConfigError saying what is missing."""
    path = Path(script)
    if path.suffix != ".py" or not (project / "scripts" / path.name).is_file():
        raise ConfigError(f"{script} is not a script in {project / 'scripts'}; run this from the project directory "
                          f"(brownie-config.yaml, contracts/, scripts/) or set {ENV_PREFIX}PROJECT_DIR")
    return path


def run_script(script: str, env: dict[str, str], *, network: str = "development",
               capture: bool = False) -> subprocess.CompletedProcess:
    """Runs `script` (e.g. "scripts/deploy.py") of the project directory in a child process with
    environment `env`; returns the finished process (its output captured when `capture`)."""
    project = project_dir()
    check_script(project, script)
    return subprocess.run([sys.executable, "-m", "aidoc.chain.brownie_runner", script, "--network", network],
                          cwd=project, env={**env, ENV_PREFIX + "PROJECT_DIR": str(project)}, text=True,
                          capture_output=capture)


# How long a lookup of a transaction (or its receipt) that is not found is asked again.
INDEX_LAG_S = 2.0


def tolerate_transaction_index_lag(wait: float = INDEX_LAG_S) -> None:
    """Makes Brownie's transaction lookups ask again for up to `wait` s before they believe a
    transaction unknown. anvil can report a sender's nonce as advanced a few milliseconds before
    eth_getTransactionByHash and eth_getTransactionReceipt find the transaction that advanced it
    (measured: 5 of 300 deployments on a loaded machine, each found 10 ms later), and Brownie
    takes that moment for a dropped transaction ("Tx dropped without known replacement"). Brownie
    asks for a transaction only once the sender's nonce has passed it, so a lookup that fails is
    the lag, and this costs nothing on the normal path."""
    from brownie.network.web3 import web3

    eth = web3.eth
    if getattr(eth, "_aidoc_patient", False):
        return
    eth.get_transaction = patient_lookup(eth.get_transaction, wait)
    eth.get_transaction_receipt = patient_lookup(eth.get_transaction_receipt, wait)
    eth._aidoc_patient = True


def patient_lookup(lookup: Callable[..., Any], wait: float) -> Callable[..., Any]:
    """`lookup`, asked again every 20 ms for up to `wait` s while it raises TransactionNotFound."""
    from web3.exceptions import TransactionNotFound

    def ask(*args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + wait
        while True:
            try:
                return lookup(*args, **kwargs)
            except TransactionNotFound:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    return ask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="a script under scripts/, e.g. scripts/deploy.py; or `console`")
    parser.add_argument("--network", default="development", help="a Brownie network id")
    args = parser.parse_args()
    project = project_dir()
    script = Path("console")
    try:
        if args.script != "console":
            script = check_script(project, args.script)
    except ConfigError as error:
        parser.error(str(error))

    sys.path.insert(0, str(project))
    from brownie import network
    from brownie import project as brownie_project

    loaded = brownie_project.load(project)
    loaded.load_config()  # brownie-config.yaml's network settings (Ganache's port and EVM)
    loaded._add_to_main_namespace()  # what `brownie run` does so that `from brownie import AIDToken` works
    tolerate_transaction_index_lag()
    disable_deployment_persistence()
    from brownie._config import CONFIG

    if is_set("RPC_URL") and args.network == "development":
        # Attach Brownie's development network to the chain the rest of the stack uses (anvil, Ganache).
        CONFIG.networks["development"]["host"] = ServiceSettings().rpc_url
    elif args.network == "live" and "live" not in CONFIG.networks:
        # A live network at AIDOC_RPC_URL (a testnet, or a chain with no unlocked accounts): Brownie
        # estimates gas and signs with the deployer's keystore. The chain id is kept as a string, as
        # Brownie's own deployment map writes it.
        from aidoc.chain.contracts import chain_id, connect_web3

        url = ServiceSettings().rpc_url
        CONFIG.networks["live"] = {"id": "live", "name": f"AIDOC_RPC_URL ({url})", "host": url,
                                   "chainid": str(chain_id(connect_web3(url)))}
    network.connect(args.network)
    try:
        if args.script == "console":
            from brownie._cli.console import Console

            Console(loaded).interact(banner=f"Brownie console on {args.network} (with the project's patches).",
                                     exitmsg="")
        else:
            importlib.import_module(f"scripts.{script.stem}").main()
    finally:
        network.disconnect()


if __name__ == "__main__":
    main()
