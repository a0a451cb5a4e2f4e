"""`aidoc record ...`: encrypted health records (add, list)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aidoc.cli.params import (
    AccountOption,
    CommandGroup,
    JsonOption,
    checked_address,
    console,
    emit,
    parse_aid,
    session_for,
    show_aid,
    table,
    wei,
)

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


@app.command("list")
def record_list(account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Your records: id, data type, royalty, whether retired."""
    from aidoc.flow.record import my_records

    found = my_records(session_for(account))

    def rows():
        shown = table("record", "type", "royalty", "retired", "block")
        for entry in found:
            shown.add_row(str(entry.record_id), entry.data_type.name.lower(), show_aid(entry.royalty),
                          "yes" if entry.retired else "no", str(entry.block))
        return shown

    emit(as_json, lambda: [{"record_id": e.record_id, "data_type": e.data_type.name.lower(), "royalty": wei(e.royalty),
                            "retired": e.retired, "block": e.block} for e in found], rows)


shortcuts = CommandGroup("Records (top-level names).")


@shortcuts.command("records")
def records_shortcut(account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Your records (the same as `aidoc record list`)."""
    record_list(account, as_json)
