"""`yinxin login`, `yinxin logout`, `yinxin account …`: thin calls of pki.accounts."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .common import Context, acting, json_option, open_home, pass_ctx, read_password, session_option
from .main import cli


def _accounts(ctx: Context) -> Any:
    from pki.accounts.accounts import Accounts
    return Accounts.of(open_home(ctx))


def _secret(file: str | None, *, env: str, prompt: str, confirm: bool = False, required: bool = True) -> bytes | None:
    return read_password(file, env=env, prompt=prompt, confirm=confirm, required=required)


# ============================================================================ login / logout

@cli.command("login")
@click.argument("account_id")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="The account's password (else $YINXIN_LOGIN_PASSWORD or a prompt).")
@click.option("--new-password-file", type=click.Path(dir_okay=False),
              help="A new password: required when the current one is initial (or expired by the policy).")
@click.option("--pin-file", type=click.Path(dir_okay=False),
              help="The PIN of your signing key: unlocks it for this session only (else $YINXIN_PIN, or a "
                   "prompt on a terminal when you hold a key).")
@click.option("--session-out", envvar="YINXIN_SESSION", type=click.Path(dir_okay=False),
              help="Where the session file is written (mode 0600; default $YINXIN_SESSION).")
@json_option
@pass_ctx
def login(ctx: Context, account_id: str, password_file: str | None, new_password_file: str | None,
          pin_file: str | None, session_out: str | None) -> None:
    """Log in and write a session file for the commands that act for a person."""
    from pki.accounts.errors import PasswordChangeRequired
    from pki.keyfiles import write_file_atomic
    if not session_out:
        raise click.UsageError("give --session-out FILE (or set YINXIN_SESSION)")
    accounts = _accounts(ctx)
    terminal = sys.stdin.isatty()
    password = _secret(password_file, env="YINXIN_LOGIN_PASSWORD", prompt=f"Password for {account_id}")
    new_password = _secret(new_password_file, env="YINXIN_NEW_LOGIN_PASSWORD", prompt="New password",
                           confirm=True) if new_password_file else None
    pin = _secret(pin_file, env="YINXIN_PIN", prompt="PIN",
                  required=False) if pin_file or os.environ.get("YINXIN_PIN") \
        else None
    if pin is None and terminal and accounts.exists(account_id) and accounts.get(account_id).key_state == "active":
        typed = click.prompt("PIN of your signing key (empty: log in without signing)", hide_input=True,
                             default="", show_default=False)
        pin = typed.encode() if typed else None
    try:
        session = accounts.authenticate(account_id, password, new_password=new_password, pin=pin)
    except PasswordChangeRequired:
        if not terminal or new_password is not None:
            raise
        click.echo("Your password is an initial one (or expired): choose a new one.", err=True)
        new_password = click.prompt("New password", hide_input=True, confirmation_prompt=True).encode()
        session = accounts.authenticate(account_id, password, new_password=new_password, pin=pin)
    write_file_atomic(session_out, session.to_file(), mode=0o600)
    actor = session.actor
    data = {"account": actor.account_id, "name": actor.name, "roles": sorted(actor.roles),
            "organisation": actor.organisation, "session": actor.session_id, "session_file": session_out,
            "expires": session.expires_at.isoformat(), "idle_minutes": session.idle_seconds // 60,
            "can_sign": actor.can_sign}
    ctx.emit(data, f"logged in as {actor.name} ({actor.account_id}"
                   + (f", {', '.join(sorted(actor.roles))}" if actor.roles else "") + f") → {session_out}\n"
                   f"session ends after {session.idle_seconds // 60} idle minutes, at the latest "
                   f"{session.expires_at:%Y-%m-%d %H:%M} UTC" + ("; signing key unlocked" if actor.can_sign else ""))


@cli.command("logout")
@session_option
@json_option
@pass_ctx
def logout(ctx: Context, session_file: str | None) -> None:
    """End the session on the server (a stolen session file is worthless after) and remove the file."""
    from pki.accounts.accounts import Accounts
    home = open_home(ctx)
    actor = acting(ctx, home, session_file)
    ctx.on_success.clear()                      # nothing to touch: the session ends
    Accounts.of(home).logout(actor)
    assert session_file is not None
    Path(session_file).unlink(missing_ok=True)
    ctx.emit({"account": actor.account_id, "session": actor.session_id, "ended": True},
             f"session of {actor.account_id} ended")


# ============================================================================ account

@cli.group("account")
def account_group() -> None:
    """Accounts: create, set passwords, disable, enable, unlock, list, personal signing keys."""


def _roles(text: str | None) -> list[str]:
    return [r.strip() for r in (text or "").split(",") if r.strip()]


@account_group.command("create")
@click.argument("account_id")
@click.option("--name", required=True, help="The person's name.")
@click.option("--roles", help="Comma-separated: admin, ca_operator, ra_officer, seal_admin.")
@click.option("--org", "organisation", help="The organisation the person belongs to.")
@click.option("--id-number", help="Identity number (for the person certificate: one person, one certificate).")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="Initial password (the first admin's own), else $YINXIN_NEW_ACCOUNT_PASSWORD or a prompt.")
@session_option
@json_option
@pass_ctx
def account_create(ctx: Context, account_id: str, name: str, roles: str | None, organisation: str | None,
                   id_number: str | None, password_file: str | None, session_file: str | None) -> None:
    """Create an account (an admin's act; the first admin is created without a session while the home
    has none).  The password an admin sets is an initial one, changed at the first login."""
    accounts = _accounts(ctx)
    actor = acting(ctx, accounts.home, session_file) if session_file else None
    password = _secret(password_file, env="YINXIN_NEW_ACCOUNT_PASSWORD", prompt=f"Password for {account_id}",
                       confirm=True, required=actor is None)
    account = accounts.create(account_id, name=name, roles=_roles(roles), organisation=organisation,
                              id_number=id_number, password=password, actor=actor)
    ctx.emit(account.to_dict(), f"account {account.id} created ({', '.join(sorted(account.roles)) or 'no role'}; "
                                f"{account.state})")


@account_group.command("set-password")
@click.argument("account_id")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="The initial password (else $YINXIN_NEW_ACCOUNT_PASSWORD or a prompt).")
@session_option
@json_option
@pass_ctx
def account_set_password(ctx: Context, account_id: str, password_file: str | None, session_file: str | None) -> None:
    """Set an initial (or reset) password; it must be changed at the next login, and open sessions end."""
    accounts = _accounts(ctx)
    actor = acting(ctx, accounts.home, session_file)
    password = _secret(password_file, env="YINXIN_NEW_ACCOUNT_PASSWORD", prompt=f"Password for {account_id}",
                       confirm=True)
    assert password is not None
    account = accounts.set_password(account_id, password, actor=actor)
    ctx.emit(account.to_dict(), f"initial password of {account.id} set: it is changed at the next login")


def _admin_command(name: str, method: str, done: str, doc: str) -> Any:
    @account_group.command(name, help=doc)
    @click.argument("account_id")
    @session_option
    @json_option
    @pass_ctx
    def command(ctx: Context, account_id: str, session_file: str | None) -> None:
        accounts = _accounts(ctx)
        actor = acting(ctx, accounts.home, session_file)
        account = getattr(accounts, method)(account_id, actor=actor)
        ctx.emit(account.to_dict(), f"account {account.id} {done}")
    return command


_admin_command("disable", "disable", "disabled; its sessions ended",
               "Disable an account: no login, sessions end at once.")
_admin_command("enable", "enable", "enabled", "Enable a disabled account.")
_admin_command("unlock", "unlock", "unlocked", "Unlock an account locked after failed logins.")


@account_group.command("roles")
@click.argument("account_id")
@click.option("--roles", required=True, help="The account's roles from now on (comma-separated; '' for none).")
@session_option
@json_option
@pass_ctx
def account_roles(ctx: Context, account_id: str, roles: str, session_file: str | None) -> None:
    """Change an account's roles (a person moved): effective at once, open sessions included."""
    accounts = _accounts(ctx)
    actor = acting(ctx, accounts.home, session_file)
    account = accounts.set_roles(account_id, _roles(roles), actor=actor)
    ctx.emit(account.to_dict(), f"account {account.id}: {', '.join(sorted(account.roles)) or 'no role'}")


@account_group.command("list")
@session_option
@json_option
@pass_ctx
def account_list(ctx: Context, session_file: str | None) -> None:
    """List the accounts (an admin's view)."""
    accounts = _accounts(ctx)
    actor = acting(ctx, accounts.home, session_file)
    items = accounts.list(actor=actor)
    if ctx.json:
        ctx.emit({"accounts": [a.to_dict() for a in items]})
        return
    for a in items:
        click.echo(f"{a.id:<16} {a.name:<12} {','.join(sorted(a.roles)) or '-':<30} {a.state:<20} "
                   f"{a.organisation or '-'}" + (f"  key {a.key_state} {a.certificate or ''}" if a.key_state else ""))


@account_group.command("show")
@click.argument("account_id", required=False)
@session_option
@json_option
@pass_ctx
def account_show(ctx: Context, account_id: str | None, session_file: str | None) -> None:
    """Show your own account (or, for an admin, anyone's)."""
    accounts = _accounts(ctx)
    actor = acting(ctx, accounts.home, session_file)
    target = account_id or actor.account_id
    if target != actor.account_id:
        accounts.require(actor, any_of=("admin",))
    account = accounts.get(target)
    ctx.emit(account.to_dict() | {"sessions": accounts.sessions(target)})


@account_group.command("key-request")
@click.argument("account_id")
@click.option("--ca", "ca_name", help="The CA that issues the person certificate (default: the only/default CA).")
@click.option("--pin-file", type=click.Path(dir_okay=False),
              help="The PIN that will protect the key (else $YINXIN_PIN or a prompt).")
@click.option("--id-number", help="The person's identity number, when the account has none yet.")
@click.option("--algorithm", help="Key algorithm (default from the policy: sm2).")
@session_option
@json_option
@pass_ctx
def account_key_request(ctx: Context, account_id: str, ca_name: str | None, pin_file: str | None,
                        id_number: str | None, algorithm: str | None, session_file: str | None) -> None:
    """Make a personal signing key (stored only encrypted under the PIN) and its `person` certificate
    application; prints the application id.  Another RA officer approves it (yinxin ca approve), a CA
    operator issues it (yinxin ca issue), and the certificate is bound to the account."""
    accounts = _accounts(ctx)
    actor = acting(ctx, accounts.home, session_file)
    pin = _secret(pin_file, env="YINXIN_PIN", prompt="PIN for the new signing key", confirm=True)
    assert pin is not None
    app = accounts.request_key(account_id, ca=ca_name, pin=pin, actor=actor, id_number=id_number,
                               algorithm=algorithm)
    if not ctx.json:
        click.echo(f"application {app.id} ({app.profile}, {app.subject}) waits for an RA officer's approval", err=True)
    ctx.emit(app.to_dict(), str(app.id))


# ============================================================================ API tokens

@account_group.command("token")
@click.argument("account_id")
@click.option("--name", required=True, help="What the token is for (e.g. the calling system), unique per account.")
@click.option("--expires-days", type=int, help="Lifetime in days (default 365, at most 1825).")
@session_option
@json_option
@pass_ctx
def account_token(ctx: Context, account_id: str, name: str, expires_days: int | None, session_file: str | None) -> None:
    """Make an API token for ACCOUNT_ID (yourself, or anyone for an admin) and print it once: another
    system sends it as `Authorization: Bearer …` and acts as that account, no more.  Only its hash
    is stored."""
    from pki.accounts.tokens import ApiTokens
    home = open_home(ctx)
    actor = acting(ctx, home, session_file)
    issued = ApiTokens.of(home).issue(account_id, name=name, actor=actor, expires_days=expires_days)
    if not ctx.json:
        click.echo(f"token {issued.info.id} ({issued.info.name}) of {account_id}, valid until "
                   f"{issued.info.expires_at:%Y-%m-%d %H:%M} UTC; it is shown only now:", err=True)
    ctx.emit(issued.info.to_dict() | {"token": issued.text}, issued.text)


@account_group.command("token-revoke")
@click.argument("account_id")
@click.option("--name", help="The token's name.")
@click.option("--id", "token_id", help="The token's id (from `yinxin account tokens`).")
@session_option
@json_option
@pass_ctx
def account_token_revoke(ctx: Context, account_id: str, name: str | None, token_id: str | None,
                         session_file: str | None) -> None:
    """Revoke an API token: refused from the next request on."""
    from pki.accounts.tokens import ApiTokens
    home = open_home(ctx)
    actor = acting(ctx, home, session_file)
    info = ApiTokens.of(home).revoke(account_id, actor=actor, name=name, token_id=token_id)
    ctx.emit(info.to_dict(), f"token {info.id} ({info.name}) of {account_id} revoked")


@account_group.command("tokens")
@click.argument("account_id")
@session_option
@json_option
@pass_ctx
def account_tokens(ctx: Context, account_id: str, session_file: str | None) -> None:
    """List the API tokens of an account (never their secrets)."""
    from pki.accounts.tokens import ApiTokens
    home = open_home(ctx)
    actor = acting(ctx, home, session_file)
    items = ApiTokens.of(home).list(account_id, actor=actor)
    now = home.clock.now()
    ctx.emit({"tokens": [t.to_dict(now) for t in items]},
             "\n".join(f"{t.id}  {t.name:<20} {t.state(now):<8} until {t.expires_at:%Y-%m-%d}" for t in items)
             or f"{account_id} has no API token")


__all__ = ["login", "logout", "account_group"]
