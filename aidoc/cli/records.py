"""`aidoc record ...`: encrypted health records."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aidoc.cli.params import AccountOption, CommandGroup, checked_address, console, parse_aid, session_for

app = CommandGroup("Encrypted health records.")


@app.command("add")
def record_add(file: Path, node: list[str] = typer.Option(..., "--node", help="node address that may decrypt it"),
               royalty: str = typer.Option("1", help="AID you earn per diagnosis"),
               account: Optional[str] = AccountOption) -> None:
    """Encrypt a record (CSV/JSON panel, DICOM/CSV ECG), store it on IPFS and register it."""
    from aidoc.flow.record import add_record

    nodes, amount = [checked_address(n, "node") for n in node], parse_aid(royalty)
    record_id = add_record(session_for(account), file, nodes, amount)
    console.print(f"record {record_id} registered")
