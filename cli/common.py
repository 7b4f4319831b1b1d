"""What every command shares: the home directory, --json output, passwords, sessions, error mapping.

The CLI maps library errors to messages in exactly one place (`run_command`),
so no command prints a traceback for a user error.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click

from pki.errors import YinxinError


@dataclass
class Context:
    home: Path
    json: bool
    database: str | None = None
    quiet: bool = False       # only the result (and errors): no progress, no step lines
    verbose: bool = False     # every detail the command knows
    #: run by `main` once the command has succeeded (e.g. the session's idle timer restarts): a
    #: refused command leaves the database exactly as it was
    on_success: list[Callable[[], None]] = field(default_factory=list)

    def say(self, text: str) -> None:
        """A line of progress or detail: on stderr, never with --json or --quiet."""
        if not (self.json or self.quiet):
            click.echo(text, err=True)

    def progress(self, total: int, label: str, unit: str = " item") -> Any:
        """A progress bar on stderr — only on a terminal, and never with --json or --quiet; else a
        bar that shows nothing.  Use as a context manager; `.update(n)`."""
        from tqdm import tqdm
        show = sys.stderr.isatty() and not (self.json or self.quiet)
        return tqdm(total=total, desc=label, unit=unit, file=sys.stderr, disable=not show, leave=True,
                    dynamic_ncols=True)

    def emit(self, data: dict[str, Any], text: str | None = None) -> None:
        """Print a result: JSON when --json was given, else `text` (or key: value lines)."""
        if self.json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        elif text is not None:
            click.echo(text)
        else:
            for key, value in data.items():
                click.echo(f"{key}: {value}")


pass_ctx = click.make_pass_decorator(Context)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--json, --quiet and --verbose on every command (also accepted before the command name)."""
    def setter(attribute: str) -> Callable[[click.Context, click.Parameter, bool], None]:
        def set_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
            if value:
                setattr(ctx.find_object(Context), attribute, True)
        return set_flag
    f = click.option("--verbose", "verbose_", is_flag=True, expose_value=False, callback=setter("verbose"),
                     help="More detail where the output is long.")(f)
    f = click.option("--quiet", "quiet_", is_flag=True, expose_value=False, callback=setter("quiet"),
                     help="Only the result and errors: no progress or step lines.")(f)
    return click.option("--json", "json_", is_flag=True, expose_value=False, callback=setter("json"),
                        help="Print the result as JSON.")(f)


def read_password(file: str | None, *, env: str = "YINXIN_PASSWORD", prompt: str = "Password",
                  confirm: bool = False, required: bool = True) -> bytes | None:
    """A password from a file (first line), else from `env`, else a prompt on a terminal.

    Never from argv: command lines are visible to every user of the machine.
    """
    if file is not None:
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise click.UsageError(f"cannot read password file {file}: {exc.strerror}") from None
        line = data.splitlines()[0] if data.strip() else b""
        if not line:
            raise click.UsageError(f"password file {file} is empty")
        return line
    value = os.environ.get(env)
    if value:
        return value.encode()
    if not required:
        return None
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm).encode()
    raise click.UsageError(f"a password is needed: give a password file or set {env}")


def read_input(path: str, what: str = "file") -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise click.UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def error_exit(ctx: Context | None, exc: YinxinError) -> None:
    """The error as JSON on stdout when --json was given, and always one line on stderr."""
    if ctx is not None and ctx.json:
        click.echo(json.dumps(exc.to_dict(), ensure_ascii=False, default=str))
    click.echo(f"yinxin: error: {' '.join(exc.message.split())}", err=True)
    sys.exit(exc.exit_code)


def usage_error_exit(ctx: Context | None, exc: click.ClickException) -> None:
    """A command-line mistake (click's errors and ours): one line, with where to find help."""
    message = " ".join(exc.format_message().split())
    command = getattr(exc, "ctx", None)
    hint = f" (see '{command.command_path} --help')" if isinstance(exc, click.UsageError) and command else ""
    if ctx is not None and ctx.json:
        click.echo(json.dumps({"error": "UsageError", "message": message}, ensure_ascii=False))
    click.echo(f"yinxin: error: {message}{hint}", err=True)
    sys.exit(exc.exit_code)


def open_home(ctx: Context) -> "Any":
    """The library's Home for this invocation (database from --database/config).

    The seal and docflow tables are registered first, so every command brings a home's
    schema to the same version: which command runs first never changes the schema."""
    import docflow.store  # noqa: F401  (registers migration 200)
    import seal.store  # noqa: F401  (registers migration 100)
    from pki.home import Home
    return Home.open(ctx.home, database=ctx.database)


def session_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--session FILE (env YINXIN_SESSION): whose act this is, from `yinxin login`."""
    return click.option("--session", "session_file", envvar="YINXIN_SESSION", type=click.Path(dir_okay=False),
                        help="Session file written by `yinxin login` (env YINXIN_SESSION): who acts.")(f)


def operator_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--operator: optional; when given it must be the session's account (never a free string)."""
    return click.option("--operator", help="The session's account (checked; the actor comes from --session).")(f)


def acting(ctx: Context, home: Any, session_file: str | None, *, claimed: str | None = None,
           claim: str = "--operator") -> Any:
    """The actor of the session file: refused (one line, exit 2, nothing written) when there is none,
    it is damaged, edited, of another home, ended or expired, or `claimed` names someone else.  The
    session's idle timer restarts only once the command has succeeded."""
    from pki.accounts.accounts import Accounts
    from pki.accounts.errors import NotPermitted, SessionInvalid
    if session_file is None:
        raise click.UsageError("this command acts for a person: log in first (yinxin login ID --session-out "
                               "FILE) and give --session FILE or set YINXIN_SESSION")
    try:
        data = Path(session_file).read_bytes()
    except OSError as exc:
        raise SessionInvalid(f"cannot read session file {session_file}: {exc.strerror}") from None
    accounts = Accounts.of(home)
    actor = accounts.resume_file(data, touch=False)
    if claimed is not None and claimed.strip() != actor.account_id:
        raise NotPermitted(f"{claim} {claimed} is not the session's account {actor.account_id}: a person acts only "
                           "for themselves", account=actor.account_id, claimed=claimed)
    ctx.on_success.append(lambda: accounts.touch(actor))
    return actor


def ca_password_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--ca-password-file", type=click.Path(dir_okay=False),
                        help="File holding the CA key's password (else $YINXIN_CA_PASSWORD or a prompt).")(f)


def ca_password(file: str | None) -> bytes:
    pw = read_password(file, env="YINXIN_CA_PASSWORD", prompt="CA key password")
    assert pw is not None
    return pw


def parse_time(text: str, option: str = "--at") -> "Any":
    """A time on the command line: ISO 8601, a date or a date and time, UTC unless a zone is given."""
    from datetime import datetime, timezone
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.UsageError(f"{option} {text!r} is not an ISO 8601 time (e.g. 2035-06-01T08:00:00Z)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
