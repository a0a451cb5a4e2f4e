"""`aidoc web`: serve the web app and follow the chain into its database (aidoc.web)."""

from __future__ import annotations

from typing import Optional

import typer

from aidoc.cli.params import CommandGroup, console

app = CommandGroup("The web app.")


@app.command("web")
def web(host: Optional[str] = typer.Option(None, help="address to listen on (default AIDOC_WEB_HOST, 127.0.0.1)"),
        port: Optional[int] = typer.Option(None, help="port (default AIDOC_WEB_PORT, 8700)")) -> None:
    """Serve the web app and its API at http://HOST:PORT/ until interrupted, indexing the
    marketplace's events into AIDOC_DB_URL (SQLite under AIDOC_HOME by default). The server holds
    no user key: users sign in their own wallet."""
    import uvicorn

    from aidoc.chain.contracts import open_marketplace
    from aidoc.config import OracleSettings, RelayerSettings, ServiceSettings, WebSettings, project_dir
    from aidoc.storage import open_store
    from aidoc.web.app import web_app
    from aidoc.web.database import open_database
    from aidoc.web.indexer import Indexer

    services, settings = ServiceSettings(), WebSettings()
    marketplace = open_marketplace(services)
    engine = open_database(settings.db_url)
    store = open_store(services.ipfs_api or None, services.store_dir)
    indexer = Indexer(marketplace, engine, OracleSettings())
    host, port = host or settings.host, port or settings.port
    app_ = web_app(marketplace, engine, store, indexer=indexer,
                   static_dirs=(services.build_dir / "web", project_dir() / "web" / "static"),
                   relayer_url=RelayerSettings().url, max_upload=settings.max_upload)
    console.print(f"AIDoc chain web app for chain {marketplace.chain_id} at http://{host}:{port}/ "
                  f"(indexing into {engine.url.render_as_string(hide_password=True)})")
    uvicorn.run(app_, host=host, port=port, log_level="warning")
