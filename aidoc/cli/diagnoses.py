"""`aidoc diagnose`, `result` and `audit`: a doctor's request, its result, and a record's history."""

from __future__ import annotations

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
    positive,
    purpose_names,
    session_for,
    show_aid,
    show_purposes,
    show_time,
    table,
)

app = CommandGroup("Diagnoses.")


@app.command()
def diagnose(record: int, model: int, node: str, max_total: Optional[str] = typer.Option(None),
             wait: bool = typer.Option(True, help="wait for the node to settle it"),
             account: Optional[str] = AccountOption) -> None:
    """Request a diagnosis of RECORD with MODEL by NODE, escrowing the fees."""
    from aidoc.flow.request import request_diagnosis
    from aidoc.flow.result import wait_for_settlements

    record, model, node = positive(record, "record"), positive(model, "model"), checked_address(node, "node")
    limit = parse_aid(max_total) if max_total is not None else None
    session = session_for(account)
    request_id, terms = request_diagnosis(session, record, model, node, limit)
    console.print(f"request {request_id}: {show_aid(terms.total)} escrowed")
    if wait:
        with console.status("waiting for the node"):
            settled = wait_for_settlements(session, [request_id], timeout=120)[request_id]
        console.print(f"request {request_id}: {settled.status.name.lower()}"
                      + (f" ({settled.failure.name})" if settled.failure else ""))


@app.command()
def result(request: int, account: Optional[str] = AccountOption) -> None:
    """Fetch, decrypt and verify the result of REQUEST."""
    from aidoc.flow.result import fetch_result

    request = positive(request, "request")
    opened = fetch_result(session_for(account), request)
    console.print(f"request {request}: {opened.result['label']} "
                  + ", ".join(f"{k} {v:.3f}" for k, v in opened.result["probabilities"].items())
                  + " (matches the on-chain commitment)")


@app.command()
def audit(record: int, account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Who was granted RECORD, who used it, when and why."""
    from aidoc.flow.audit import audit_trail

    record = positive(record, "record")
    trail = audit_trail(session_for(account), record)

    def rows():
        shown = table("time", "action", "who", "purposes", "detail")
        for entry in trail:
            shown.add_row(show_time(entry.timestamp, seconds=True), entry.action, entry.party,
                          show_purposes(entry.purposes), entry.detail)
        return shown

    emit(as_json, lambda: [{"block": e.block, "timestamp": e.timestamp, "action": e.action, "who": e.party,
                            "purposes": purpose_names(e.purposes), "detail": e.detail} for e in trail], rows)
