"""Entry point of the `yinxin` command.

Start-up is kept light: the command groups are imported only when one of them is run (the table
`COMMANDS` carries their one-line help for `yinxin --help`), and the commands import pyHanko,
SQLAlchemy, fonts or uvicorn only inside their bodies.  A test (`tests/test_cli_startup.py`) fails
when a light command imports a heavy module.
"""
from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from pki.errors import YinxinError
from pki.version import __version__

from .common import Context, error_exit, json_option, usage_error_exit

#: command name -> (modules that define it and its sub-commands, one-line help for `yinxin --help`)
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "login": (("cli.account_cmds",), "Log in: a session file for the commands that act for a person."),
    "logout": (("cli.account_cmds",), "End a session on the server."),
    "account": (("cli.account_cmds",), "Accounts: create, passwords, disable, unlock, list, signing keys, API tokens."),
    "key": (("cli.key_cmds",), "Keys: generate, inspect, sign, verify, import PKCS#12."),
    "ca": (("cli.ca_cmds", "cli.serve_cmds"), "Certificate authorities: applications, issuance, status."),
    "audit": (("cli.ca_cmds",), "The hash-chained audit log."),
    "seal": (("cli.seal_cmds",), "Electronic seals: create, protect, stamp PDFs and OFDs, verify."),
    "org": (("cli.doc_cmds",), "Organisations of the document flow: load, show, list, template."),
    "doc": (("cli.doc_cmds",), "Official documents (公文): draft, route, seal, send, receive, archive."),
    "serve": (("cli.serve_cmds",), "The status service: OCSP, CRLs and timestamps over HTTP."),
    "tsa": (("cli.tsa_cmds",), "Timestamp authorities (RFC 3161): set up, answer queries, statistics."),
    "console": (("cli.console_cmds",), "The web console and the HTTP API (/api/v1) for people and other systems."),
    "demo": (("cli.demo_cmds",), "The main job end to end in a fresh home."),
    "policies": (("cli.policy_cmds",), "The default policies: export them to edit."),
    "doctor": (("cli.doctor_cmds",), "What this installation has, lacks, and what that costs."),
}

#: warnings of dependencies that say nothing to a yinxin user, silenced at this edge only (the
#: library and the tests still see them): pyHanko imports cryptography's DSA types, which
#: cryptography ≥ 47 deprecates on import
_QUIET = ((r"DSA is deprecated", r"pyhanko(\..*)?$"),)


def quiet_dependency_warnings() -> None:
    for message, module in _QUIET:
        warnings.filterwarnings("ignore", message=message, module=module)


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (see `COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            for module in COMMANDS[cmd_name][0]:
                importlib.import_module(module)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1] if name in COMMANDS else (self.commands[name].get_short_help_str()))
                for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="yinxin", message="%(prog)s %(version)s")
@click.option("--home", type=click.Path(file_okay=False), envvar="YINXIN_HOME",
              default=lambda: str(Path.home() / ".yinxin"), show_default="~/.yinxin",
              help="yinxin home directory (env YINXIN_HOME).")
@click.option("--database", envvar="YINXIN_DATABASE", default=None,
              help="Database URL (default: SQLite in the home directory).")
@json_option
@click.pass_context
def cli(ctx: click.Context, home: str, database: str | None) -> None:
    """印信 yinxin — PKI, electronic seals and official-document flow."""
    existing = ctx.find_object(Context)
    if existing is None:  # invoked without main(), e.g. by click's test runner
        ctx.obj = Context(home=Path(home), json=False, database=database)
    else:
        existing.home, existing.database = Path(home), database


def main(argv: list[str] | None = None) -> None:
    quiet_dependency_warnings()
    ctx_obj = Context(home=Path(os.environ.get("YINXIN_HOME", Path.home() / ".yinxin")), json=False)
    try:
        status: Any = cli.main(args=argv, obj=ctx_obj, standalone_mode=False)
    except YinxinError as exc:
        error_exit(ctx_obj, exc)
    except click.exceptions.Abort:
        click.echo("yinxin: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        usage_error_exit(ctx_obj, exc)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug, not a user error: one line unless asked for the trace
        if os.environ.get("YINXIN_DEBUG"):
            raise
        click.echo(f"yinxin: internal error: {type(exc).__name__}: {exc} "
                   "(set YINXIN_DEBUG=1 for the traceback)", err=True)
        sys.exit(70)
    # with standalone_mode=False click returns the code a command gave to ctx.exit(n)
    code = status if isinstance(status, int) else 0
    if code == 0:
        try:
            for hook in ctx_obj.on_success:
                hook()
        except YinxinError as exc:
            error_exit(ctx_obj, exc)
    sys.exit(code)


if __name__ == "__main__":
    main()
