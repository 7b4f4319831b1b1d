"""Who acts in the benchmarks: real accounts with real logins, as `yinxin account create` and
`yinxin login` make them (argon2id; an initial password changed at the first login).  The
benchmarks never use the tests' helper (pki.accounts.testing); the logins happen during set-up,
outside what is timed.

    from bench_accounts import logged_in
    actors = logged_in(home, ("ca-op", ["ca_operator", "seal_admin"]), ("ra", ["ra_officer"]), ("wang", []))
"""
from __future__ import annotations

from typing import Any, Sequence

#: everybody's password after the first login (12+ characters, no account id in it)
PASSWORD = b"a bench of quiet maples"
INITIAL = b"an initial bench phrase"


def sessions(home: Any, *people: tuple[str, Sequence[str]]) -> dict[str, Any]:
    """Fresh logins of the first admin ("admin", created while the home has no admin) and of each
    (account id, roles), created by the admin when missing: each one's `Session`, keyed by id
    (`.actor`; `.to_file()` is what `yinxin login` writes, for the CLI or another process)."""
    from pki.accounts import Accounts
    accounts = Accounts.of(home)
    if not accounts.exists("admin"):
        accounts.create("admin", name="Bench admin", roles=["admin"], password=PASSWORD, actor=None)
    admin = accounts.authenticate("admin", PASSWORD)
    made = {"admin": admin}
    for account_id, roles in people:
        if not accounts.exists(account_id):
            accounts.create(account_id, name=account_id, roles=list(roles), password=INITIAL, actor=admin.actor)
            accounts.authenticate(account_id, INITIAL, new_password=PASSWORD)
        made[account_id] = accounts.authenticate(account_id, PASSWORD)
    return made


def logged_in(home: Any, *people: tuple[str, Sequence[str]]) -> dict[str, Any]:
    """`sessions(…)`'s actors."""
    return {account_id: session.actor for account_id, session in sessions(home, *people).items()}
