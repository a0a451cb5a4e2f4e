"""Runs a Brownie script's main() on a network, as `brownie run` does:
`python tools/run_script.py scripts/deploy.py --network development`. With AIDOC_RPC_URL set, the
development network attaches to the chain at that URL instead of 127.0.0.1:8545.

`brownie run` imports a script under a module name made of every folder of its absolute path
(/tmp/ci.x1/aidoc/scripts/deploy.py becomes 'tmp.ci.x1.aidoc.scripts.deploy'), so it fails when a
folder name holds a dot or matches an installed package. The Makefile uses this runner instead:
it loads the project the same way and imports the script as scripts.<name> from the project root."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="a script under scripts/, e.g. scripts/deploy.py")
    parser.add_argument("--network", default="development", help="a Brownie network id")
    args = parser.parse_args()
    script = Path(args.script)
    if script.suffix != ".py" or not (ROOT / "scripts" / script.name).is_file():
        parser.error(f"{args.script} is not a script in {ROOT / 'scripts'}")

    sys.path.insert(0, str(ROOT))
    from brownie import network, project

    loaded = project.load(ROOT)
    loaded.load_config()  # brownie-config.yaml's network settings (Ganache's port and EVM)
    loaded._add_to_main_namespace()  # what `brownie run` does so that `from brownie import AIDToken` works
    rpc_url = os.environ.get("AIDOC_RPC_URL", "")
    if rpc_url and args.network == "development":
        # Attach Brownie's development network to the chain the rest of the stack uses (anvil, Ganache).
        from brownie._config import CONFIG

        CONFIG.networks["development"]["host"] = rpc_url
    network.connect(args.network)
    try:
        importlib.import_module(f"scripts.{script.stem}").main()
    finally:
        network.disconnect()


if __name__ == "__main__":
    main()
