"""`aidoc relayer run`: submit patients' signed consent changes and pay their gas (aidoc.relayer)."""

from __future__ import annotations

from typing import Optional

import typer

from aidoc.cli.params import AccountOption, CommandGroup, console, session_for

app = CommandGroup("The gasless-consent relayer.")


@app.command("run")
def relayer_run(host: Optional[str] = typer.Option(None, help="address to listen on (default AIDOC_RELAYER_HOST, "
                                                              "127.0.0.1)"),
                port: Optional[int] = typer.Option(None, help="port (default AIDOC_RELAYER_PORT, 8600)"),
                account: Optional[str] = AccountOption) -> None:
    """Serve the relayer's API until interrupted; the account pays every relayed change's gas."""
    import uvicorn

    from aidoc.config import RelayerSettings
    from aidoc.relayer.app import relayer_app
    from aidoc.relayer.service import Relayer

    settings = RelayerSettings()
    session = session_for(account)
    relayer = Relayer(session, settings.signer_limit_per_hour)
    host, port = host or settings.host, port or settings.port
    balance = session.marketplace.w3.eth.get_balance(session.address)
    console.print(f"relaying consent signatures on chain {session.marketplace.chain_id} from {session.address} "
                  f"({balance / 10**18:.4f} ETH) at http://{host}:{port}/v1/ (at most "
                  f"{settings.signer_limit_per_hour} per signer per hour)")
    uvicorn.run(relayer_app(relayer), host=host, port=port, log_level="warning")
