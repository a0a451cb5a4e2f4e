"""`aidoc diagnose`, `requests`, `cancel`, `result` and `audit`: a doctor's requests, their
results, and a record's history."""

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
from aidoc.constants import RequestStatus
from aidoc.errors import AidocError

app = CommandGroup("Diagnoses.")


@app.command()
def diagnose(record: int, model: int, node: str, max_total: Optional[str] = typer.Option(None),
             wait: bool = typer.Option(True, help="wait for the node to settle it"),
             wait_s: float = typer.Option(120.0, "--timeout", help="how long to wait (s); on timeout: exit 1"),
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
            settled = wait_for_settlements(session, [request_id], timeout=wait_s)[request_id]
        if settled.status == RequestStatus.PENDING:
            raise AidocError(f"no answer from node {node} in {wait_s:g} s: request {request_id} is still pending; "
                             f"`aidoc result {request_id}` once it is fulfilled, or `aidoc cancel {request_id}` for a "
                             f"full refund after its deadline ({show_time(terms.deadline)})")
        console.print(f"request {request_id}: {settled.status.name.lower()}"
                      + (f" ({settled.failure.name})" if settled.failure else ""))


@app.command("requests")
def my_requests_command(account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Your diagnosis requests: status, escrow, deadline, and which you can cancel for a refund now."""
    from aidoc.flow.request import my_requests

    found = my_requests(session_for(account))

    def rows():
        shown = table("request", "record", "model", "node", "escrow", "status", "deadline", "refundable")
        for entry in found:
            shown.add_row(str(entry.request_id), str(entry.terms.record_id), str(entry.terms.model_id),
                          entry.terms.node, show_aid(entry.terms.total), entry.status.name.lower(),
                          show_time(entry.terms.deadline), "yes (aidoc cancel)" if entry.refundable else "no")
        return shown

    emit(as_json, lambda: [{"request_id": e.request_id, "record_id": e.terms.record_id, "model_id": e.terms.model_id,
                            "node": e.terms.node, "escrow": str(e.terms.total), "status": e.status.name.lower(),
                            "deadline": e.terms.deadline, "refundable": e.refundable} for e in found], rows)


@app.command()
def cancel(request: int, account: Optional[str] = AccountOption) -> None:
    """Cancel your pending REQUEST once its deadline passed or its consent is gone: a full refund."""
    from aidoc.flow.request import cancel_request

    request = positive(request, "request")
    session = session_for(account)
    refund = cancel_request(session, request)
    console.print(f"request {request} cancelled: {show_aid(refund)} refunded to {session.address}")


@app.command()
def result(request: int, wait: bool = typer.Option(False, "--wait", help="wait for the request to settle first"),
           wait_s: float = typer.Option(120.0, "--timeout", help="how long --wait waits (s)"),
           account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Fetch, decrypt and verify the result of REQUEST against its on-chain commitment."""
    from aidoc.flow.result import fetch_result, wait_for_settlements

    request = positive(request, "request")
    session = session_for(account)
    if wait:
        with console.status(f"waiting for request {request} to settle"):
            settled = wait_for_settlements(session, [request], timeout=wait_s)[request]
        if settled.status == RequestStatus.PENDING:
            raise AidocError(f"request {request} is still pending after {wait_s:g} s; `aidoc requests` says when it "
                             "can be cancelled")
    opened = fetch_result(session, request)
    found, model = opened.result, opened.result.get("model", {})
    ranked = sorted(found["probabilities"].items(), key=lambda item: -item[1])
    emit(as_json, lambda: {"request_id": request, "label": found["label"], "probabilities": found["probabilities"],
                           "model": model, "verified": True}, lambda: [
        f"request {request}: {found['label']} (probability {found['probabilities'].get(found['label'], 0):.2f}; "
        + ", ".join(f"{label} {p:.2f}" for label, p in ranked) + ")",
        f"by model {model.get('id', '?')} ({model.get('name', '?')} v{model.get('version', '?')}); matches the "
        "on-chain commitment",
        "decision support from a model, not a diagnosis by a clinician",
    ])


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
