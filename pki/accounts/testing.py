"""FOR TESTS ONLY: actors without a password or a session.

The library's tests act through `actor_for_tests`, which makes (or updates) the account row and returns an
`Actor` whose method is "test"; `certified_actor` also gives it a personal signing key and a `person`
certificate through the real RA flow.  Production code never imports this module (a test checks
that no module of yinxin does): the CLI and the console get actors only from sessions.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterable

import sqlalchemy as sa

from ..home import Home
from .accounts import Accounts, check_roles
from .actor import Actor, _make
from .store import accounts

if TYPE_CHECKING:
    from .sessions import Session

TEST_PIN = b"test-pin-2468"


def actor_for_tests(home: Home, account_id: str, *, roles: Iterable[str] = (), organisation: str | None = None,
               name: str | None = None, id_number: str | None = None, signing_key: object = None) -> Actor:
    """An actor for `account_id` in `home` (its account made if missing, `roles` added to it)."""
    chosen = check_roles(roles)
    registry = Accounts.of(home)
    home_id = registry.home_id()
    now = home.clock.now()
    with home.store.read() as conn:
        row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).mappings().first()
    if row is not None and frozenset(json.loads(row["roles"])) >= chosen and organisation in (None,
                                                                                              row["organisation"]) \
            and (id_number is None or row["id_number"]):
        return _make(account_id=account_id, name=name or row["name"], roles=json.loads(row["roles"]),
                     organisation=row["organisation"], session_id=None, method="test", home_id=home_id,
                     signing_key=signing_key)
    with home.store.transaction() as conn:
        row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).mappings().first()
        if row is None:
            conn.execute(accounts.insert().values(
                id=account_id, name=name or account_id, roles=json.dumps(sorted(chosen)), organisation=organisation,
                id_number=id_number, source="admin", password_hash=None, must_change_password=False,
                failed_logins=0, locked=False, disabled=False, created_at=now, created_by="tests", updated_at=now))
            current = chosen
        else:
            current = frozenset(json.loads(row["roles"])) | chosen
            values = {"roles": json.dumps(sorted(current))}
            if organisation is not None:
                values["organisation"] = organisation
            if id_number is not None and not row["id_number"]:
                values["id_number"] = id_number
            if values != {"roles": row["roles"]}:     # nothing to change: nothing written
                conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(**values))
            name = name or row["name"]
            organisation = organisation if organisation is not None else row["organisation"]
    return _make(account_id=account_id, name=name or account_id, roles=current, organisation=organisation,
                 session_id=None, method="test", home_id=home_id, signing_key=signing_key)


def certified_actor(home: Home, account_id: str, *, ca: str, ca_password: bytes, approver: Actor | None = None,
                    issuer: Actor | None = None, id_number: str | None = None, pin: bytes = TEST_PIN,
                    roles: Iterable[str] = ()) -> Actor:
    """`actor_for_tests` with a personal signing key whose `person` certificate went through the RA flow
    (key request, another officer's approval, a CA operator's issuance); the key is unlocked."""
    from ..ca import CertificateAuthority
    from ..keyfiles import load_private_key
    from .store import account_keys
    plain = actor_for_tests(home, account_id, roles=roles, id_number=id_number)
    number = id_number or Accounts.of(home).get(account_id).id_number or \
        "T" + "".join(c for c in account_id if c.isalnum()).upper()[:40]
    app = Accounts.of(home).request_key(account_id, ca=ca, pin=pin, actor=plain, id_number=number)
    authority = CertificateAuthority(home)
    authority.ra.approve(app.id, actor=approver or actor_for_tests(home, "test-ra", roles=("ra_officer",)))
    authority.issue(app.id, password=ca_password, actor=issuer or actor_for_tests(home, "test-ca",
                                                                                  roles=("ca_operator",)))
    with home.store.read() as conn:
        encrypted = conn.execute(sa.select(account_keys.c.encrypted_key).where(
            account_keys.c.account_id == account_id, account_keys.c.state == "active")
            .order_by(account_keys.c.id.desc()).limit(1)).scalar_one()
    return actor_for_tests(home, account_id, signing_key=load_private_key(bytes(encrypted), pin))


def with_key(home: Home, actor: Actor, pin: bytes = TEST_PIN) -> Actor:
    """The same test actor with its active personal key unlocked."""
    from ..keyfiles import load_private_key
    from .store import account_keys
    with home.store.read() as conn:
        encrypted = conn.execute(sa.select(account_keys.c.encrypted_key).where(
            account_keys.c.account_id == actor.account_id, account_keys.c.state == "active")
            .order_by(account_keys.c.id.desc()).limit(1)).scalar_one()
    return actor_for_tests(home, actor.account_id, signing_key=load_private_key(bytes(encrypted), pin))


def session_for_tests(home: Home, account_id: str, *, roles: Iterable[str] = (), organisation: str | None = None,
                      pin: bytes | None = None) -> "Session":
    """A real session (its row in the database, its file's bytes from `.to_file()`) for `account_id`,
    made without a password: the CLI tests log people in this way and keep argon2's cost for the tests
    of login itself.  With `pin` the account's active signing key is unlocked for the session."""
    from datetime import timedelta

    from ..keyfiles import load_private_key
    from .sessions import SESSION_KEY_BYTES, TOKEN_BYTES, Session, token_hash, wrap_key
    from .store import account_keys, account_sessions
    plain = actor_for_tests(home, account_id, roles=roles, organisation=organisation)
    registry = Accounts.of(home)
    now = home.clock.now()
    token = home.rand.token_bytes(TOKEN_BYTES)
    session_id = home.rand.token_bytes(12).hex()
    key = session_key = wrapped = key_id = None
    if pin is not None:
        with home.store.read() as conn:
            row = conn.execute(sa.select(account_keys).where(
                account_keys.c.account_id == account_id, account_keys.c.state == "active")
                .order_by(account_keys.c.id.desc()).limit(1)).mappings().one()
        key, key_id = load_private_key(bytes(row["encrypted_key"]), pin), row["id"]
        session_key = home.rand.token_bytes(SESSION_KEY_BYTES)
        wrapped = wrap_key(key.to_pkcs8_der(), session_key, home.rand.token_bytes(12), session_id=session_id,
                           account_id=account_id, key_id=key_id)
    idle = registry.policy.session_idle_minutes * 60
    expires = now + timedelta(hours=registry.policy.session_absolute_hours)
    with home.store.transaction() as conn:
        conn.execute(account_sessions.insert().values(
            id=session_id, token_hash=token_hash(token), account_id=account_id, method="password", created_at=now,
            last_seen_at=now, idle_seconds=idle, expires_at=expires, key_id=key_id, wrapped_key=wrapped))
    actor = _make(account_id=account_id, name=plain.name, roles=plain.roles, organisation=plain.organisation,
                  session_id=session_id, method="password", home_id=plain.home_id, signing_key=key)
    return Session(actor=actor, token=token, session_key=session_key, home_id=plain.home_id, expires_at=expires,
                   idle_seconds=idle)


__all__ = ["TEST_PIN", "actor_for_tests", "certified_actor", "with_key", "session_for_tests"]
