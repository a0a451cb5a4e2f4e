"""`aidoc consent ...`: who may use a record, for what, until when."""

from __future__ import annotations

import time
from typing import Optional

import typer

from aidoc.cli.params import (
    AccountOption,
    CommandGroup,
    JsonOption,
    checked_address,
    console,
    emit,
    parse_purposes,
    positive,
    purpose_names,
    session_for,
    table,
)
from aidoc.errors import ConfigError

app = CommandGroup("Who may use a record, for what, until when.")


@app.command("grant")
def consent_grant(record: int, grantee: str, purpose: list[str] = typer.Option(["diagnosis"], "--purpose"),
                  days: float = typer.Option(30, help="how long the consent lasts"),
                  account: Optional[str] = AccountOption) -> None:
    """Let GRANTEE use RECORD for --purpose until --days from now."""
    from aidoc.chain.contracts import chain_time_in
    from aidoc.flow.consent import grant_consent

    record, grantee, purposes = positive(record, "record"), checked_address(grantee, "grantee"), parse_purposes(purpose)
    if not 0 < days < 36_500:
        raise ConfigError(f"--days {days:g} is out of range; consent lasts more than 0 and under 36,500 days")
    session = session_for(account)
    expiry = chain_time_in(session.marketplace.w3, days)
    grant_consent(session, record, grantee, purposes, expiry)
    console.print(f"record {record}: {grantee} may use it for {', '.join(purpose)} for {days:g} days")


@app.command("revoke")
def consent_revoke(record: int, grantee: str, purpose: list[str] = typer.Option(["diagnosis"], "--purpose"),
                   account: Optional[str] = AccountOption) -> None:
    """Take back GRANTEE's access to RECORD (pending requests are refunded)."""
    from aidoc.flow.consent import revoke_consent

    record, grantee, purposes = positive(record, "record"), checked_address(grantee, "grantee"), parse_purposes(purpose)
    revoke_consent(session_for(account), record, grantee, purposes)
    console.print(f"record {record}: consent of {grantee} revoked")


@app.command("list")
def consent_list(record: int, account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Everyone granted access to RECORD and what they hold now."""
    from aidoc.flow.consent import list_consents

    record = positive(record, "record")
    states = list_consents(session_for(account), record)

    def rows():
        shown = table("grantee", "purposes", "expiry", "active")
        for state in states:
            shown.add_row(state.grantee, str(state.purposes.name or "-"),
                          time.strftime("%Y-%m-%d %H:%M", time.gmtime(state.expiry)), "yes" if state.active else "no")
        return shown

    emit(as_json, lambda: [{"grantee": s.grantee, "purposes": purpose_names(s.purposes), "expiry": s.expiry,
                            "active": s.active} for s in states], rows)

