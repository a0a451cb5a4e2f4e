"""The root of `aidoc` (the entry point `aidoc.cli.main:app`): it registers the command groups, one
module of aidoc.cli each (params.py holds what they share), and holds the one place where a usage
mistake (a bad or missing argument, an unknown command or option) becomes one `error:` line and
exit status 1, like every other user error."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Optional

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # typer 0.29 vendors click
from typer.core import TyperGroup

from aidoc.cli import accounts, consent, diagnoses, models, nodes, records, relayer, stack, training, wallet, web
from aidoc.errors import one_line


class OneLineErrors(TyperGroup):
    """The root command, run so that a usage mistake prints one line (and where to get help) instead
    of typer's box, and exits 1; `aidoc` or a group given nothing still prints its help."""

    def main(self, args: Any = None, prog_name: Optional[str] = None, complete_var: Optional[str] = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name or "aidoc", complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as asked:
            asked.show()
            sys.exit(asked.exit_code)
        except UsageError as mistake:
            where = f" (see `{mistake.ctx.command_path} --help`)" if mistake.ctx is not None else ""
            print(f"error: {one_line(ValueError(mistake.format_message()))}{where}", file=sys.stderr)
            sys.exit(1)
        except ClickException as failure:
            print(f"error: {one_line(ValueError(failure.format_message()))}", file=sys.stderr)
            sys.exit(1)
        except typer.Abort:
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def installed_version() -> str:
    try:
        return version("aidoc-chain")
    except PackageNotFoundError:
        return "unknown (not installed)"


app = typer.Typer(cls=OneLineErrors, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="AIDoc chain: consented health records, diagnostic models and paid oracle diagnoses.")


def print_version(asked: bool) -> None:
    if asked:
        print(f"aidoc {installed_version()}")
        raise typer.Exit()


@app.callback()
def root(_: bool = typer.Option(False, "--version", is_eager=True, expose_value=True, callback=print_version,
                                help="print the version and exit")) -> None:
    pass


app.add_typer(stack.app)  # up, down, deploy, faucet (no group name: top-level commands)
app.add_typer(web.app)  # web
app.add_typer(accounts.app, name="account")
app.add_typer(wallet.app)  # balance, transfer
app.add_typer(records.app, name="record")
app.add_typer(records.shortcuts)  # records
app.add_typer(consent.app, name="consent")
app.add_typer(models.app, name="model")
app.add_typer(nodes.app, name="node")
app.add_typer(diagnoses.app)  # diagnose, requests, cancel, result, audit
app.add_typer(training.app, name="train")
app.add_typer(relayer.app, name="relayer")

if __name__ == "__main__":
    app()
