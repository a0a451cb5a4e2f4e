"""`aidoc model ...`: diagnostic models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aidoc.cli.params import (
    AccountOption,
    CommandGroup,
    JsonOption,
    console,
    emit,
    parse_aid,
    parse_data_type,
    reader_for,
    session_for,
    show_aid,
    table,
    wei,
)

app = CommandGroup("Diagnostic models.")


@app.command("register")
def model_register(weights: Path, name: str = typer.Option(...), input_type: str = typer.Option(..., help="panel|ecg"),
                   price: str = typer.Option("5", help="AID per diagnosis"),
                   account: Optional[str] = AccountOption) -> None:
    """Publish safetensors WEIGHTS on IPFS and register them with their sha256."""
    from aidoc.flow.model import register_model

    data_type, price_units = parse_data_type(input_type), parse_aid(price)
    model_id = register_model(session_for(account), weights, name, data_type, price_units)
    console.print(f"model {model_id} registered")


@app.command("list")
def model_list(account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Registered models (anyone may list them: no account needed)."""
    from aidoc.flow.model import list_models

    models = list_models(reader_for(account))

    def rows():
        shown = table("id", "name", "version", "input", "price", "status", "provider")
        for info in models:
            shown.add_row(str(info.model_id), info.name, str(info.version), info.input_type.name,
                          show_aid(info.price), info.status.name, info.provider)
        return shown

    emit(as_json, lambda: [{"id": m.model_id, "name": m.name, "version": m.version,
                            "input_type": m.input_type.name.lower(), "price": wei(m.price),
                            "status": m.status.name.lower(), "provider": m.provider, "weights_cid": m.weights_cid}
                           for m in models], rows)
