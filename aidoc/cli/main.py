"""The root of `aidoc` (the entry point `aidoc.cli.main:app`): it only registers the command groups,
one module of aidoc.cli each (params.py holds what they share)."""

from __future__ import annotations

import typer

from aidoc.cli import accounts, consent, diagnoses, models, nodes, records, stack, training

app = typer.Typer(help="AIDoc chain: consented health records, diagnostic models and paid oracle diagnoses.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(stack.app)  # up, down, deploy, faucet (no group name: top-level commands)
app.add_typer(accounts.app, name="account")
app.add_typer(records.app, name="record")
app.add_typer(consent.app, name="consent")
app.add_typer(models.app, name="model")
app.add_typer(nodes.app, name="node")
app.add_typer(diagnoses.app)  # diagnose, result, audit
app.add_typer(training.app, name="train")

if __name__ == "__main__":
    app()
