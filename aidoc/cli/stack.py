"""`aidoc up`, `down`, `deploy` and `faucet`: the local stack and a deployment on it."""

from __future__ import annotations

import typer

from aidoc.cli.params import CommandGroup, checked_address, console, parse_aid
from aidoc.config import ServiceSettings

app = CommandGroup("The local stack.")


@app.command()
def up(chain: bool = typer.Option(True, help="start anvil unless AIDOC_RPC_URL answers already")) -> None:
    """Start the local stack in the background: anvil and Redis (IPFS: the embedded store)."""
    from aidoc.stack.local import start_stack

    for line in start_stack(ServiceSettings(), start_chain=chain):
        console.print(line)


@app.command()
def down() -> None:
    """Stop the servers `aidoc up` and `aidoc node run` started (their pid files in AIDOC_RUN_DIR)."""
    from aidoc.stack.local import stop_stack

    for line in stop_stack(ServiceSettings()):
        console.print(line)


@app.command()
def deploy(fresh: bool = typer.Option(False, "--fresh", help="deploy anew even if the recorded deployment is "
                                                                "live and matches the build")) -> None:
    """Deploy the marketplace with Brownie to AIDOC_RPC_URL's chain; writes deployments/<chainId>.json.

    Reuses the recorded deployment while it is live and matches the build. On a chain without
    unlocked accounts the deployer is AIDOC_DEPLOYER_KEYSTORE; gas is estimated and
    AIDOC_MAX_FEE_GWEI caps the fee. Brownie runs from the project directory: the working directory
    or AIDOC_PROJECT_DIR."""
    from aidoc.chain.deployments import deploy_marketplace

    deploy_marketplace(ServiceSettings(), quiet=False, fresh=fresh)


@app.command()
def faucet(address: str, eth: str = typer.Option("10", help="ETH to send"),
           aid: str = typer.Option("1000", help="AID to send")) -> None:
    """Fund ADDRESS (or a keystore name) on a development chain from its unlocked deployer account."""
    from aidoc.chain.contracts import open_marketplace
    from aidoc.flow.faucet import fund

    fund(open_marketplace(ServiceSettings()), checked_address(address, "account to fund"), eth=parse_aid(eth),
         aid=parse_aid(aid))
    console.print(f"sent {eth} ETH and {aid} AID to {address}")
