"""`aidoc consent ...`: who may use a record, for what, until when."""

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
    errors,
    parse_purposes,
    positive,
    purpose_names,
    session_for,
    show_duration,
    show_purposes,
    show_time,
    table,
)
from aidoc.constants import Purpose
from aidoc.errors import ConfigError

app = CommandGroup("Who may use a record, for what, until when.")
GaslessOption = typer.Option(False, "--gasless", help="sign the change and have the relayer at AIDOC_RELAYER_URL "
                                                      "send it (you need no ETH)")


@app.command("grant")
def consent_grant(record: int, grantee: str, purpose: list[str] = typer.Option(["diagnosis"], "--purpose"),
                  days: float = typer.Option(30, help="how long the consent lasts"),
                  replace: bool = typer.Option(False, "--replace",
                                               help="grant exactly --purpose, revoking what else GRANTEE holds "
                                                    "(default: add to it)"),
                  gasless: bool = GaslessOption, account: Optional[str] = AccountOption) -> None:
    """Let GRANTEE use RECORD for --purpose (added to what it holds) until --days from now."""
    from aidoc.chain.contracts import chain_time_in
    from aidoc.flow.consent import grant_consent, plan_grant, request_timeout

    record, grantee, purposes = positive(record, "record"), checked_address(grantee, "grantee"), parse_purposes(purpose)
    if not 0 < days < 36_500:
        raise ConfigError(f"--days {days:g} is out of range; consent lasts more than 0 and under 36,500 days")
    session = session_for(account)
    change = plan_grant(session, record, grantee, purposes, chain_time_in(session.marketplace.w3, days), replace)
    if gasless:
        relayed = relay_signed(session, record, grantee, change.purposes, change.expiry)
    else:
        grant_consent(session, record, grantee, change.purposes, change.expiry)
    said = [f"record {record}: {grantee} may use it for {show_purposes(change.purposes)} until "
            f"{show_time(change.expiry)}"]
    if change.added:
        said.append(f"added {show_purposes(change.added)}")
    kept = change.previous.purposes & ~change.removed if change.previous is not None else Purpose(0)
    if kept and change.previous.expiry != change.expiry:
        said.append(f"{show_purposes(kept)} was until {show_time(change.previous.expiry)}")
    if change.removed:
        said.append(f"revoked {show_purposes(change.removed)} (in the audit trail)")
    if gasless:
        said.append(relayed)
    console.print("; ".join(said))
    timeout = request_timeout(session)
    if Purpose.DIAGNOSIS in change.purposes and days * 86400 < timeout:
        errors.print(f"warning: this consent ends in {show_duration(days * 86400)}, sooner than the market's request "
                     f"timeout ({show_duration(timeout)}): a request made under it may be refunded unfulfilled; "
                     f"grant at least --days {timeout / 86400:g}")


@app.command("revoke")
def consent_revoke(record: int, grantee: str, purpose: list[str] = typer.Option(["diagnosis"], "--purpose"),
                   gasless: bool = GaslessOption, account: Optional[str] = AccountOption) -> None:
    """Take back GRANTEE's access to RECORD (pending requests are refunded)."""
    from aidoc.flow.consent import revoke_consent

    record, grantee, purposes = positive(record, "record"), checked_address(grantee, "grantee"), parse_purposes(purpose)
    session = session_for(account)
    if gasless:
        relayed = relay_signed(session, record, grantee, purposes, None)
        console.print(f"record {record}: consent of {grantee} to {show_purposes(purposes)} revoked; {relayed}")
        return
    revoke_consent(session, record, grantee, purposes)
    console.print(f"record {record}: consent of {grantee} revoked")


def relay_signed(session, record: int, grantee: str, purposes: Purpose, expiry: Optional[int]) -> str:
    """Signs the change, has AIDOC_RELAYER_URL's relayer submit it; what to tell the user."""
    from aidoc.config import RelayerSettings
    from aidoc.flow.gasless import relay, sign_change

    relayed = relay(RelayerSettings().url, sign_change(session, record, grantee, purposes, expiry))
    return f"signed by you, sent by the relayer in {relayed.transaction_hash} (block {relayed.block_number}; it paid the gas)"



@app.command("list")
def consent_list(record: int, account: Optional[str] = AccountOption, as_json: bool = JsonOption) -> None:
    """Everyone granted access to RECORD and what they hold now."""
    from aidoc.flow.consent import list_consents

    record = positive(record, "record")
    states = list_consents(session_for(account), record)

    def rows():
        shown = table("grantee", "purposes", "expiry", "active")
        for state in states:
            shown.add_row(state.grantee, show_purposes(state.purposes), show_time(state.expiry),
                          "yes" if state.active else "no")
        return shown

    emit(as_json, lambda: [{"grantee": s.grantee, "purposes": purpose_names(s.purposes), "expiry": s.expiry,
                            "active": s.active} for s in states], rows)
