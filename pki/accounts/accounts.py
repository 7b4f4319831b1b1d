"""Accounts: who may log in, with which roles; authentication, sessions, personal signing keys.

* **Accounts** are the people of every loaded organisation file (kept in step when the file is
  loaded again: a person removed is disabled at once) and the administrators and officers created
  with `create`.  The first `admin` can be created by nobody only while no admin exists; after that
  only an admin creates accounts, sets initial passwords, disables, enables and unlocks them.
* **Passwords** are hashed with argon2id (`policy.argon2id`); an initial or reset password must be
  changed at the next login.  Failed logins are throttled (`throttle_after`, doubling waits) and,
  at `max_failures`, lock the account until an admin unlocks it.  Every login, failure, lock,
  unlock, enable, disable, logout and password change is an audit event.
* **Sessions**: `authenticate` makes one (a 256-bit token, stored only as its SHA-256, idle and
  absolute timeouts); `resume` turns the token back into the `Actor`.  Ending a session deletes its
  row; disabling an account ends all of its sessions.
* **Personal signing keys**: `request_key` makes a key pair (SM2 by default), stores the private key
  only encrypted under the person's PIN, and files a `person` certificate application through the
  RA; when a CA operator issues it, the certificate is bound to the account.  A login with the PIN
  unlocks the key for that session only (see `sessions`).

Refused requests change nothing: a wrong password is counted (and audited) by design; a disabled or
locked account, a throttled try, a wrong PIN, a bad or ended session leave the database as it was.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .. import audit
from ..errors import NotFound, PolicyError, WrongPassword
from ..home import Home
from .actor import ROLES, Actor, _make, service_actor
from .errors import (AccountDisabled, AccountLocked, AccountNotFound, AuthenticationFailed, LoginThrottled,
                     NotPermitted, PasswordChangeRequired, PasswordRejected, PinError, SessionInvalid,
                     SigningKeyError)
from .policy import AccountPolicy, load_account_policy
from .sessions import (SESSION_KEY_BYTES, TOKEN_BYTES, Session, SessionFile, token_hash, unwrap_key,
                       wrap_key)
from .decisions import SIGNING_KEY_COLUMNS, signing_key_join
from .store import account_keys, account_sessions, accounts, home_identity

ACCOUNT_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Account:
    """An account as stored (no secret in it)."""

    id: str
    name: str
    roles: frozenset[str]
    organisation: str | None
    id_number: str | None
    source: str                    # admin | organisation
    has_password: bool
    must_change_password: bool
    failed_logins: int
    locked: bool
    disabled: bool
    created_at: datetime
    created_by: str
    key_state: str | None = None   # pending | active (the newest personal key), None: no key
    certificate: str | None = None  # "CA:SERIAL" of the active key

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "roles": sorted(self.roles), "organisation": self.organisation,
                "id_number": self.id_number, "source": self.source, "has_password": self.has_password,
                "must_change_password": self.must_change_password, "failed_logins": self.failed_logins,
                "locked": self.locked, "disabled": self.disabled, "created_at": self.created_at.isoformat(),
                "created_by": self.created_by, "key": self.key_state, "certificate": self.certificate}

    @property
    def state(self) -> str:
        if self.disabled:
            return "disabled"
        if self.locked:
            return "locked"
        if not self.has_password:
            return "no password"
        return "must change password" if self.must_change_password else "active"


@dataclass(frozen=True)
class KeyInfo:
    """A person's signing key as stored: its certificate once issued."""

    id: int
    account_id: str
    algorithm: str
    public_key_der: bytes
    application_id: int | None
    ca: str | None
    serial: str | None
    state: str


def _account(row: Any, key: Any = None) -> Account:
    return Account(id=row["id"], name=row["name"], roles=frozenset(json.loads(row["roles"])),
                   organisation=row["organisation"], id_number=row["id_number"], source=row["source"],
                   has_password=row["password_hash"] is not None,
                   must_change_password=bool(row["must_change_password"]), failed_logins=row["failed_logins"],
                   locked=bool(row["locked"]), disabled=bool(row["disabled"]), created_at=row["created_at"],
                   created_by=row["created_by"], key_state=key["state"] if key else None,
                   certificate=f"{key['ca_name']}:{key['cert_serial'].upper()}" if key and key["cert_serial"] else None)


def _key_info(row: Any) -> KeyInfo:
    return KeyInfo(id=row["id"], account_id=row["account_id"], algorithm=row["algorithm"],
                   public_key_der=row["public_key_der"], application_id=row["application_id"], ca=row["ca_name"],
                   serial=row["cert_serial"], state=row["state"])


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(r.strip() for r in roles if r and r.strip())
    unknown = chosen - set(ROLES)
    if unknown:
        raise PolicyError(f"unknown role(s) {', '.join(sorted(unknown))} (known: {', '.join(ROLES)})",
                          field="roles", roles=sorted(unknown))
    return chosen


#: every act reads its actor's account and session with this one statement, built once
_ACTOR_NOW = (sa.select(accounts.c.roles, accounts.c.disabled, accounts.c.locked,
                        account_sessions.c.id.label("session_id"), account_sessions.c.account_id,
                        account_sessions.c.expires_at, account_sessions.c.last_seen_at,
                        account_sessions.c.idle_seconds)
              .select_from(accounts.outerjoin(account_sessions, sa.and_(
                  account_sessions.c.account_id == accounts.c.id,
                  account_sessions.c.id == sa.bindparam("session_id"))))
              .where(accounts.c.id == sa.bindparam("account_id")))
#: … and the account's signing key as `decisions.signer_for` checks it, in the same statement
_ACTOR_NOW_AND_KEY = (sa.select(*_ACTOR_NOW.selected_columns, *SIGNING_KEY_COLUMNS)
                      .select_from(signing_key_join(accounts.outerjoin(account_sessions, sa.and_(
                          account_sessions.c.account_id == accounts.c.id,
                          account_sessions.c.id == sa.bindparam("session_id"))), accounts.c.id))
                      .where(accounts.c.id == sa.bindparam("account_id")))


#: `Accounts.require(…, read=ACTOR_UNREAD)`: the row is read there
ACTOR_UNREAD: Any = object()


def actor_now_and_key() -> Any:
    """The statement `Accounts.require(…, signing_key=True)` reads, as a subquery a caller may join into
    its own statement (bound by `actor_now_parameters`); it has no row when the account is gone."""
    return _ACTOR_NOW_AND_KEY.subquery("actor_now")


def actor_now_parameters(actor: Actor) -> dict[str, str]:
    return {"session_id": actor.session_id or "", "account_id": actor.account_id}


class Accounts:
    """The accounts of one home."""

    def __init__(self, home: Home, *, policy: AccountPolicy | None = None) -> None:
        self.home = home
        self.policy = policy or load_account_policy(home.profiles.directory)
        a = self.policy.argon2id
        self._hasher = PasswordHasher(time_cost=a.time_cost, memory_cost=a.memory_kib, parallelism=a.parallelism,
                                      hash_len=a.hash_length, salt_len=a.salt_length, type=Type.ID)
        self._home_id: str | None = None

    @classmethod
    def of(cls, home: Home) -> "Accounts":
        """The home's Accounts, made once per Home object."""
        found = home.__dict__.get("_yinxin_accounts")
        if found is None:
            found = home.__dict__["_yinxin_accounts"] = cls(home)
        return found

    # ---------------------------------------------------------------- the home's identity

    def home_id(self) -> str:
        """This home's random identity (made on first use): a session file names it."""
        if self._home_id is None:
            with self.home.store.read() as conn:
                found = conn.execute(sa.select(home_identity.c.home_id).where(home_identity.c.id == 1)).scalar()
            if found is None:
                with self.home.store.transaction() as conn:
                    found = conn.execute(sa.select(home_identity.c.home_id).where(home_identity.c.id == 1)).scalar()
                    if found is None:
                        found = self.home.rand.token_bytes(16).hex()
                        conn.execute(home_identity.insert().values(id=1, home_id=found,
                                                                   created_at=self.home.clock.now()))
            self._home_id = found
        return self._home_id

    def _known_home_id(self) -> str | None:
        """The home id if one exists (never made here: a read that must change nothing)."""
        if self._home_id is None:
            with self.home.store.read() as conn:
                self._home_id = conn.execute(sa.select(home_identity.c.home_id)
                                             .where(home_identity.c.id == 1)).scalar()
        return self._home_id

    def service_actor(self, name: str) -> Actor:
        return service_actor(name, home_id=self.home_id())

    #: who sets up a home's first root CA before anybody can log in (see `bootstrap_actor`)
    BOOTSTRAP = "service:bootstrap"

    def bootstrap_open(self) -> bool:
        """True while the home has neither an account nor a CA: nobody can log in yet."""
        from ..store import cas
        with self.home.store.read() as conn:
            return (conn.execute(sa.select(accounts.c.id).limit(1)).first() is None
                    and conn.execute(sa.select(cas.c.id).limit(1)).first() is None)

    def bootstrap_actor(self) -> Actor:
        """The actor of a fresh home's first act, its root CA (`yinxin ca init` on a new install):
        only while the home has no account and no CA — the same window in which anybody may create the
        first admin.  Recorded in the audit log as `service:bootstrap`; once an account or a CA
        exists, every act needs a session.  NotPermitted outside that window."""
        if not self.bootstrap_open():
            raise NotPermitted("this home has accounts or a CA already: log in first (yinxin login ID "
                               "--session-out FILE) and give --session FILE or set YINXIN_SESSION")
        return service_actor("bootstrap", home_id=self.home_id())

    # ---------------------------------------------------------------- queries

    def get(self, account_id: str) -> Account:
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).mappings().first()
            if row is None:
                raise AccountNotFound(f"no account {account_id!r}", account=account_id)
            key = self._newest_key(conn, account_id)
        return _account(row, key)

    def exists(self, account_id: str) -> bool:
        with self.home.store.read() as conn:
            return conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account_id)).first() is not None

    def list(self, *, actor: Actor) -> list[Account]:
        self.require(actor, any_of=("admin",))
        with self.home.store.read() as conn:
            rows = conn.execute(sa.select(accounts).order_by(accounts.c.id)).mappings().all()
            keys = {r["account_id"]: r for r in conn.execute(
                sa.select(account_keys).where(account_keys.c.state.in_(("pending", "active")))
                .order_by(account_keys.c.id)).mappings()}
        return [_account(r, keys.get(r["id"])) for r in rows]

    def has_admin(self) -> bool:
        with self.home.store.read() as conn:
            return any("admin" in json.loads(r) for (r,) in conn.execute(
                sa.select(accounts.c.roles).where(accounts.c.disabled.is_(False))))

    @staticmethod
    def _newest_key(conn: Any, account_id: str) -> Any:
        return conn.execute(sa.select(account_keys).where(
            account_keys.c.account_id == account_id, account_keys.c.state.in_(("pending", "active")))
            .order_by(account_keys.c.id.desc()).limit(1)).mappings().first()

    # ---------------------------------------------------------------- checking an actor

    def require(self, actor: Actor, *, any_of: Sequence[str] = (), service_ok: bool = False,
                conn: Any = None, signing_key: bool = False, read: Any = ACTOR_UNREAD) -> Any:
        """The actor may act now: genuine, of this home, its session alive, its account enabled and
        unlocked, and (when `any_of` is given) holding one of those roles *now* — rights removed
        from an account take effect at once, also for sessions opened before.  `conn`: read in the
        caller's read transaction.  With `signing_key`, returns the account's signing key as
        `decisions.signer_for(…, key_row=…)` takes it, read in the same statement (None for a
        service, which holds none).  `read`: the row of `actor_now_and_key()` as the caller's own
        statement read it moments ago (None: no such account), instead of reading it here."""
        if not isinstance(actor, Actor):
            raise TypeError(f"acting needs an authenticated pki.accounts.Actor, not {type(actor).__name__}")
        if actor.home_id != self._known_home_id():
            raise NotPermitted(f"{actor.account_id} was authenticated by another yinxin home", account=actor.account_id)
        if actor.is_service:
            if any_of and not service_ok:
                raise NotPermitted(f"{actor.account_id} is a service and holds no role "
                                   f"({' or '.join(any_of)} needed)", account=actor.account_id)
            return None
        now = self.home.clock.now()
        if read is not ACTOR_UNREAD:
            found = read
        elif conn is None:
            with self.home.store.read() as c:
                return self.require(actor, any_of=any_of, service_ok=service_ok, conn=c, signing_key=signing_key)
        else:
            # one statement: the account, (if any) the actor's session and (if asked) the signing key
            found = conn.execute(_ACTOR_NOW_AND_KEY if signing_key else _ACTOR_NOW,
                                 actor_now_parameters(actor)).mappings().first()
        row = None if found is None else _Row(found)
        session = None
        if found is not None and found["session_id"] is not None:
            session = {"id": found["session_id"], "account_id": found["account_id"],
                       "expires_at": found["expires_at"], "last_seen_at": found["last_seen_at"],
                       "idle_seconds": found["idle_seconds"]}
        if row is None:
            raise NotPermitted(f"account {actor.account_id} no longer exists", account=actor.account_id)
        if row.disabled:
            raise AccountDisabled(f"account {actor.account_id} is disabled", account=actor.account_id)
        if row.locked:
            raise AccountLocked(f"account {actor.account_id} is locked: an administrator must unlock it",
                                account=actor.account_id)
        if actor.session_id is not None:
            if session is None or session["account_id"] != actor.account_id:
                raise SessionInvalid("the session has ended: log in again", session=actor.session_id)
            self._check_alive(session, now)
        if any_of:
            current = set(json.loads(row.roles))
            if not current & set(any_of):
                raise NotPermitted(f"{actor.account_id} does not hold the role {' or '.join(any_of)}",
                                   account=actor.account_id, roles=list(any_of))
        return found if signing_key else None

    def _check_alive(self, session: Any, now: datetime) -> None:
        if now >= session["expires_at"]:
            raise SessionInvalid(f"the session expired at {session['expires_at']:%Y-%m-%d %H:%M} UTC (absolute "
                                 "timeout): log in again", session=session["id"], reason="absolute")
        if now - session["last_seen_at"] > timedelta(seconds=session["idle_seconds"]):
            raise SessionInvalid(f"the session expired after {session['idle_seconds'] // 60} idle minutes: log "
                                 "in again", session=session["id"], reason="idle")

    # ---------------------------------------------------------------- creating and administering

    def create(self, account_id: str, *, name: str, roles: Iterable[str] = (), organisation: str | None = None,
               id_number: str | None = None, password: bytes | None = None, actor: Actor | None) -> Account:
        """A new account.  Without an actor only the first admin is created (while no admin exists),
        with their own password; otherwise an admin creates it and the password is an initial one."""
        roles_set = check_roles(roles)
        if not isinstance(account_id, str) or not ACCOUNT_ID.fullmatch(account_id):
            raise PolicyError("an account id is letters, digits, '.', '-' or '_' starting with a letter (at most 64)",
                              field="id")
        if not name or not name.strip():
            raise PolicyError("an account needs the person's name", field="name")
        id_number = _check_id_number(id_number)
        bootstrap = actor is None
        if bootstrap:
            if "admin" not in roles_set:
                raise NotPermitted("only an admin creates accounts: log in as one (the first admin is created "
                                   "with --roles admin while the home has none)")
            if self.has_admin():
                raise NotPermitted("this home has an admin already: only an admin creates accounts (log in as one)")
            if password is None:
                raise PolicyError("the first admin needs a password (--password-file)", field="password")
        else:
            self.require(actor, any_of=("admin",))
        if self.exists(account_id):
            raise PolicyError(f"an account {account_id!r} exists already", account=account_id)
        hashed = None
        if password is not None:
            self.policy.check_password(password, context=(account_id, name, organisation or ""))
            hashed = self._hasher.hash(password)
        now = self.home.clock.now()
        by = actor.account_id if actor else account_id
        self.home_id()
        with self.home.store.transaction() as conn:
            if bootstrap and self._admin_exists(conn):       # checked again under the write lock
                raise NotPermitted("this home has an admin already: only an admin creates accounts")
            conn.execute(accounts.insert().values(
                id=account_id, name=name.strip(), roles=json.dumps(sorted(roles_set)), organisation=organisation,
                id_number=id_number, source="admin", password_hash=hashed, password_set_at=now if hashed else None,
                must_change_password=bool(hashed) and not bootstrap and self.policy.change_initial,
                failed_logins=0, locked=False, disabled=False, created_at=now, created_by=by, updated_at=now))
            audit.append(conn, at=now, actor=by, action="account.create", target=f"account:{account_id}",
                         details={"roles": sorted(roles_set), "organisation": organisation, "bootstrap": bootstrap,
                                  "password": "set" if hashed else "none"})
        return self.get(account_id)

    @staticmethod
    def _admin_exists(conn: Any) -> bool:
        return any("admin" in json.loads(r) for (r,) in conn.execute(
            sa.select(accounts.c.roles).where(accounts.c.disabled.is_(False))))

    def _admin_row(self, account_id: str, actor: Actor) -> Any:
        self.require(actor, any_of=("admin",))
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).mappings().first()
        if row is None:
            raise AccountNotFound(f"no account {account_id!r}", account=account_id)
        return row

    def set_password(self, account_id: str, password: bytes, *, actor: Actor) -> Account:
        """An admin sets an initial (or reset) password; it must be changed at the next login.  The
        account's sessions end (a reset means the old password may be known to someone)."""
        row = self._admin_row(account_id, actor)
        self.policy.check_password(password, context=(account_id, row["name"], row["organisation"] or ""))
        hashed = self._hasher.hash(password)
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(
                password_hash=hashed, password_set_at=now, must_change_password=self.policy.change_initial,
                updated_at=now))
            ended = self._end_sessions(conn, account_id)
            audit.append(conn, at=now, actor=actor.account_id, action="account.password_set",
                         target=f"account:{account_id}", details={"initial": True, "sessions_ended": ended})
        return self.get(account_id)

    def disable(self, account_id: str, *, actor: Actor) -> Account:
        """The person moved or left: no login, every session ended at once."""
        row = self._admin_row(account_id, actor)
        if row["disabled"]:
            raise PolicyError(f"account {account_id} is disabled already", account=account_id)
        if "admin" in json.loads(row["roles"]):
            with self.home.store.read() as conn:
                others = [r for (i, r) in conn.execute(sa.select(accounts.c.id, accounts.c.roles).where(
                    accounts.c.disabled.is_(False), accounts.c.id != account_id)) if "admin" in json.loads(r)]
            if not others:
                raise PolicyError(f"{account_id} is the last enabled admin: enable or create another first",
                                  account=account_id)
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(disabled=True, updated_at=now))
            ended = self._end_sessions(conn, account_id)
            audit.append(conn, at=now, actor=actor.account_id, action="account.disable",
                         target=f"account:{account_id}", details={"sessions_ended": ended})
        return self.get(account_id)

    def enable(self, account_id: str, *, actor: Actor) -> Account:
        row = self._admin_row(account_id, actor)
        if not row["disabled"]:
            raise PolicyError(f"account {account_id} is not disabled", account=account_id)
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(disabled=False, updated_at=now))
            audit.append(conn, at=now, actor=actor.account_id, action="account.enable", target=f"account:{account_id}")
        return self.get(account_id)

    def unlock(self, account_id: str, *, actor: Actor) -> Account:
        row = self._admin_row(account_id, actor)
        if account_id == actor.account_id:
            raise NotPermitted("another admin unlocks your account", account=account_id)
        if not row["locked"] and not row["failed_logins"]:
            raise PolicyError(f"account {account_id} is not locked", account=account_id)
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(
                locked=False, failed_logins=0, last_failure_at=None, updated_at=now))
            audit.append(conn, at=now, actor=actor.account_id, action="account.unlock", target=f"account:{account_id}",
                         details={"was_locked": bool(row["locked"]), "failures": row["failed_logins"]})
        return self.get(account_id)

    def set_roles(self, account_id: str, roles: Iterable[str], *, actor: Actor) -> Account:
        """Rights changed when a person moves: effective at once, also for open sessions."""
        row = self._admin_row(account_id, actor)
        chosen = check_roles(roles)
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(
                roles=json.dumps(sorted(chosen)), updated_at=now))
            audit.append(conn, at=now, actor=actor.account_id, action="account.roles", target=f"account:{account_id}",
                         details={"was": json.loads(row["roles"]), "now": sorted(chosen)})
        return self.get(account_id)

    @staticmethod
    def _end_sessions(conn: Any, account_id: str) -> int:
        return conn.execute(sa.delete(account_sessions).where(account_sessions.c.account_id == account_id)).rowcount

    def sync_organisation(self, conn: Any, organisation: str, people: Sequence[tuple[str, str]], *,
                          actor: Actor, at: datetime) -> dict[str, list[str]]:
        """Inside the transaction that loads an organisation file: an account for every person (no
        password yet: an admin sets an initial one), names kept up to date, and the people no longer
        in the file disabled with their sessions ended.  Returns what changed."""
        self.home_id()
        ids = {pid for pid, _ in people}
        existing = {r["id"]: r for r in conn.execute(sa.select(accounts).where(
            sa.or_(accounts.c.id.in_(ids), accounts.c.organisation == organisation))).mappings()}
        created, disabled, updated = [], [], []
        for pid, pname in people:
            row = existing.get(pid)
            if row is None:
                conn.execute(accounts.insert().values(
                    id=pid, name=pname, roles="[]", organisation=organisation, source="organisation",
                    password_hash=None, must_change_password=False, failed_logins=0, locked=False,
                    disabled=False, created_at=at, created_by=actor.account_id, updated_at=at))
                created.append(pid)
            elif row["name"] != pname or row["organisation"] != organisation or \
                    (row["disabled"] and row["source"] == "organisation"):
                values: dict[str, Any] = {"name": pname, "organisation": organisation, "updated_at": at}
                if row["source"] == "organisation" and row["disabled"]:
                    values["disabled"] = False         # back in the file
                conn.execute(sa.update(accounts).where(accounts.c.id == pid).values(**values))
                updated.append(pid)
        for pid, row in existing.items():
            if pid not in ids and row["organisation"] == organisation and not row["disabled"]:
                values = {"organisation": None, "updated_at": at}
                if row["source"] == "organisation":
                    values["disabled"] = True
                conn.execute(sa.update(accounts).where(accounts.c.id == pid).values(**values))
                self._end_sessions(conn, pid)
                disabled.append(pid)
        for action, who in (("account.create", created), ("account.update", updated), ("account.disable", disabled)):
            for pid in who:
                audit.append(conn, at=at, actor=actor.account_id, action=action, target=f"account:{pid}",
                             details={"organisation": organisation, "by": "org.load"})
        return {"created": created, "updated": updated, "disabled": disabled}

    # ---------------------------------------------------------------- authentication

    def authenticate(self, account_id: str, password: bytes, *, new_password: bytes | None = None,
                     pin: bytes | None = None) -> Session:
        """Log in: the password (and, for an initial or expired one, the new password), optionally the
        PIN that unlocks the personal signing key for this session.  Returns the new `Session`."""
        now = self.home.clock.now()
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).mappings().first()
            key_row = conn.execute(sa.select(account_keys).where(
                account_keys.c.account_id == account_id, account_keys.c.state == "active")
                .order_by(account_keys.c.id.desc()).limit(1)).mappings().first() if row is not None else None
        if row is not None:
            if row["disabled"]:
                raise AccountDisabled(f"account {account_id} is disabled", account=account_id)
            if row["locked"]:
                raise AccountLocked(f"account {account_id} is locked after {row['failed_logins']} failed logins: "
                                    "an administrator must unlock it (yinxin account unlock)", account=account_id)
            wait = self.policy.throttle_wait(row["failed_logins"])
            if wait and row["last_failure_at"] is not None:
                ready = row["last_failure_at"] + timedelta(seconds=wait)
                if now < ready:
                    raise LoginThrottled(f"too many failed logins for {account_id}: try again in "
                                         f"{int((ready - now).total_seconds()) + 1} s", account=account_id,
                                         retry_after=int((ready - now).total_seconds()) + 1)
        ok = False
        if row is not None and row["password_hash"] is not None:
            try:
                ok = self._hasher.verify(row["password_hash"], password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
        else:
            self._hasher.hash(password)   # the same cost whether the account exists or not
        if not ok:
            self._failed(account_id, row, now)
        assert row is not None
        must_change = bool(row["must_change_password"]) or self._expired(row, now)
        new_hash = None
        if must_change and new_password is None:
            raise PasswordChangeRequired(
                f"the password of {account_id} is " + ("an initial one" if row["must_change_password"] else
                                                       "older than the policy allows")
                + ": log in again with a new password (--new-password-file)", account=account_id)
        if new_password is not None:
            same = self._same(row["password_hash"], new_password)
            self.policy.check_password(new_password, context=(account_id, row["name"], row["organisation"] or ""),
                                       old_hash_matches=same)
            new_hash = self._hasher.hash(new_password)
        signing_key = None
        if pin is not None:
            if key_row is None:
                raise SigningKeyError(f"{account_id} has no personal signing key with an issued certificate "
                                      "(yinxin account key-request, then an RA officer approves and a CA "
                                      "operator issues it)", account=account_id)
            from ..keyfiles import load_private_key
            try:
                signing_key = load_private_key(key_row["encrypted_key"], pin)
            except WrongPassword:
                raise PinError(f"wrong PIN for the signing key of {account_id}", account=account_id) from None
        token = self.home.rand.token_bytes(TOKEN_BYTES)
        session_id = self.home.rand.token_bytes(12).hex()
        session_key = wrapped = None
        if signing_key is not None:
            session_key = self.home.rand.token_bytes(SESSION_KEY_BYTES)
            wrapped = wrap_key(signing_key.to_pkcs8_der(), session_key, self.home.rand.token_bytes(12),
                               session_id=session_id, account_id=account_id, key_id=key_row["id"])
        idle = self.policy.session_idle_minutes * 60
        expires = now + timedelta(hours=self.policy.session_absolute_hours)
        rehash = new_hash is None and self._needs_rehash(row["password_hash"])
        home_id = self.home_id()
        with self.home.store.transaction() as conn:
            conn.execute(sa.delete(account_sessions).where(account_sessions.c.expires_at <= now))
            values: dict[str, Any] = {"failed_logins": 0, "last_failure_at": None, "updated_at": now}
            if new_hash is not None:
                values.update(password_hash=new_hash, password_set_at=now, must_change_password=False)
            elif rehash:
                values.update(password_hash=self._hasher.hash(password))
            changed = conn.execute(sa.update(accounts).where(
                accounts.c.id == account_id, accounts.c.disabled.is_(False), accounts.c.locked.is_(False))
                .values(**values)).rowcount
            if changed != 1:
                raise AccountDisabled(f"account {account_id} was disabled or locked meanwhile", account=account_id)
            conn.execute(account_sessions.insert().values(
                id=session_id, token_hash=token_hash(token), account_id=account_id, method="password",
                created_at=now, last_seen_at=now, idle_seconds=idle, expires_at=expires,
                key_id=key_row["id"] if signing_key is not None else None, wrapped_key=wrapped))
            if new_hash is not None:
                audit.append(conn, at=now, actor=account_id, action="account.password_change",
                             target=f"account:{account_id}", details={"was_initial": bool(row["must_change_password"])})
            audit.append(conn, at=now, actor=account_id, action="account.login", target=f"account:{account_id}",
                         details={"session": session_id, "key_unlocked": signing_key is not None,
                                  "expires": expires.isoformat()})
        actor = _make(account_id=account_id, name=row["name"], roles=json.loads(row["roles"]),
                      organisation=row["organisation"], session_id=session_id, method="password", home_id=home_id,
                      signing_key=signing_key)
        return Session(actor=actor, token=token, session_key=session_key, home_id=home_id, expires_at=expires,
                       idle_seconds=idle)

    def _failed(self, account_id: str, row: Any, now: datetime) -> None:
        """A wrong id or password: counted, audited, locked at the policy's limit; always raises."""
        with self.home.store.transaction() as conn:
            if row is None:
                audit.append(conn, at=now, actor=account_id, action="account.login_failure",
                             target=f"account:{account_id}", details={"reason": "unknown account"})
                raise AuthenticationFailed("wrong account or password", account=account_id)
            failures = conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(
                failed_logins=accounts.c.failed_logins + 1, last_failure_at=now)
                .returning(accounts.c.failed_logins)).scalar_one()
            locked = failures >= self.policy.max_failures
            if locked:
                conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(locked=True))
            audit.append(conn, at=now, actor=account_id, action="account.login_failure",
                         target=f"account:{account_id}", details={"failures": failures})
            if locked:
                audit.append(conn, at=now, actor=account_id, action="account.lock", target=f"account:{account_id}",
                             details={"failures": failures})
        if locked:
            raise AccountLocked(f"wrong password; account {account_id} is now locked after {failures} failed logins",
                                account=account_id, failures=failures)
        raise AuthenticationFailed("wrong account or password", account=account_id, failures=failures)

    def _same(self, hashed: str | None, password: bytes) -> bool:
        if hashed is None:
            return False
        try:
            return self._hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _needs_rehash(self, hashed: str | None) -> bool:
        return hashed is not None and self._hasher.check_needs_rehash(hashed)

    def _expired(self, row: Any, now: datetime) -> bool:
        days = self.policy.max_age_days
        return bool(days) and row["password_set_at"] is not None and now - row["password_set_at"] > timedelta(days=days)

    @staticmethod
    def hash_parameters(hashed: str) -> Any:
        """argon2's parameters of a stored hash (type, version, m, t, p)."""
        return extract_parameters(hashed)

    # ---------------------------------------------------------------- sessions

    def resume(self, token: bytes, *, session_key: bytes | None = None, account_id: str | None = None,
               touch: bool = True) -> Actor:
        """The actor of a live session.  With `session_key` the session's unlocked signing key comes
        with it.  SessionInvalid for an unknown, ended or expired token (nothing is written then).
        With `touch` the idle timer restarts now; an edge that wants a refused act to leave the
        database exactly as it was resumes without, and calls `touch` once the act succeeded."""
        now = self.home.clock.now()
        home_id = self._known_home_id()
        with self.home.store.read() as conn:
            session = conn.execute(sa.select(account_sessions).where(
                account_sessions.c.token_hash == token_hash(token))).mappings().first()
            row = None
            if session is not None:
                row = conn.execute(sa.select(accounts).where(
                    accounts.c.id == session["account_id"])).mappings().first()
        if session is None or row is None or home_id is None:
            raise SessionInvalid("the session has ended or was never valid here: log in again")
        if account_id is not None and account_id != session["account_id"]:
            raise SessionInvalid("the session file was edited (its account is not the session's)",
                                 session=session["id"])
        self._check_alive(session, now)
        if row["disabled"]:
            raise AccountDisabled(f"account {row['id']} is disabled", account=row["id"])
        if row["locked"]:
            raise AccountLocked(f"account {row['id']} is locked: an administrator must unlock it", account=row["id"])
        signing_key = None
        if session_key is not None:
            if session["wrapped_key"] is None:
                raise SessionInvalid("the session file was edited (this session unlocked no signing key)",
                                     session=session["id"])
            der = unwrap_key(session["wrapped_key"], session_key, session_id=session["id"],
                             account_id=row["id"], key_id=session["key_id"])
            from ..keyfiles import load_private_key
            signing_key = load_private_key(der)
        if touch:
            self._touch(session["id"], now)
        return _make(account_id=row["id"], name=row["name"], roles=json.loads(row["roles"]),
                     organisation=row["organisation"], session_id=session["id"], method="session", home_id=home_id,
                     signing_key=signing_key)

    def touch(self, actor: Actor) -> None:
        """Restart the idle timer of the actor's session (a session in use is not idle)."""
        if actor.session_id is not None:
            self._touch(actor.session_id, self.home.clock.now())

    def _touch(self, session_id: str, now: datetime) -> None:
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(account_sessions).where(account_sessions.c.id == session_id)
                         .values(last_seen_at=now))

    def resume_file(self, data: bytes, *, touch: bool = True) -> Actor:
        """The actor of a session file's bytes: damaged, edited, other-home, ended or expired
        sessions are refused with SessionInvalid (nothing is written)."""
        parsed = SessionFile.parse(data)
        home_id = self._known_home_id()
        if home_id is None or parsed.home != home_id:
            raise SessionInvalid("the session file belongs to another yinxin home", home=parsed.home)
        actor = self.resume(parsed.token, session_key=parsed.session_key, account_id=parsed.account, touch=False)
        if actor.session_id != parsed.session:
            raise SessionInvalid("the session file was edited (its session id is not the token's)",
                                 session=parsed.session)
        if touch:
            self.touch(actor)
        return actor

    def logout(self, actor: Actor) -> None:
        """End the actor's session on the server: its row (and the unlocked key in it) is deleted."""
        if not isinstance(actor, Actor) or actor.session_id is None:
            raise SessionInvalid("not a session's actor")
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            gone = conn.execute(sa.delete(account_sessions).where(
                account_sessions.c.id == actor.session_id,
                account_sessions.c.account_id == actor.account_id)).rowcount
            if not gone:
                raise SessionInvalid("the session has ended already", session=actor.session_id)
            audit.append(conn, at=now, actor=actor.account_id, action="account.logout",
                         target=f"account:{actor.account_id}", details={"session": actor.session_id})

    def sessions(self, account_id: str) -> int:
        with self.home.store.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(account_sessions)
                                .where(account_sessions.c.account_id == account_id)).scalar_one()

    # ---------------------------------------------------------------- personal signing keys

    def active_key(self, account_id: str) -> KeyInfo | None:
        with self.home.store.read() as conn:
            return self._active_key(conn, account_id)

    @staticmethod
    def _active_key(conn: Any, account_id: str) -> KeyInfo | None:
        row = conn.execute(sa.select(account_keys).where(
            account_keys.c.account_id == account_id, account_keys.c.state == "active")
            .order_by(account_keys.c.id.desc()).limit(1)).mappings().first()
        return _key_info(row) if row is not None else None

    def keys_of(self, account_id: str) -> list[KeyInfo]:
        with self.home.store.read() as conn:
            return [_key_info(r) for r in conn.execute(sa.select(account_keys).where(
                account_keys.c.account_id == account_id).order_by(account_keys.c.id)).mappings()]

    def request_key(self, account_id: str, *, ca: str | None, pin: bytes, actor: Actor,
                    id_number: str | None = None, algorithm: str | None = None) -> Any:
        """A personal signing key and its `person` certificate application (returned): under the
        person's own session or an RA officer's.  The private key is stored only encrypted under the
        PIN.  Another RA officer approves the application; a CA operator's issuance binds the
        certificate to the account."""
        from .keys import request_key
        return request_key(self, account_id, ca=ca, pin=pin, actor=actor, id_number=id_number,
                           algorithm=algorithm)


class _Row:
    """Attribute access to a mapping row."""

    def __init__(self, mapping: Any) -> None:
        self.roles, self.disabled, self.locked = mapping["roles"], mapping["disabled"], mapping["locked"]


def _check_id_number(id_number: str | None) -> str | None:
    id_number = (id_number or "").strip() or None
    if id_number is not None and (len(id_number) > 64 or not id_number.isalnum()):
        raise PolicyError("an identity number is letters and digits, at most 64", field="id_number")
    return id_number


__all__ = ["Accounts", "Account", "KeyInfo", "check_roles", "NotFound"]
