"""Entry point of the `yinxin` command."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from pki.errors import YinxinError

from .common import Context, error_exit, json_option, usage_error_exit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


def _register() -> None:
    # each module adds its commands to `cli`; a module not built yet is simply absent
    for name in ("key_cmds", "ca_cmds", "seal_cmds", "doc_cmds", "serve_cmds", "demo_cmds"):
        try:
            __import__(f"cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"cli.{name}":
                raise


def main(argv: list[str] | None = None) -> None:
    _register()
    ctx_obj = Context(home=Path(os.environ.get("YINXIN_HOME", Path.home() / ".yinxin")), json=False)
    try:
        status = cli.main(args=argv, obj=ctx_obj, standalone_mode=False)
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
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
