"""API tokens: bearer credentials with which another system acts as one account (migration 800).

A token is ``yx1_<id>_<secret>``: `id` is public (audit events and lists name it), `secret` is 256
random bits.  The server keeps only the SHA-256 of the whole text, shown once when the token is
made.  A token acts as its account and no more: the account's roles *now*, refused at once when the
account is disabled or locked, the token revoked or expired.  It never unlocks the person's signing
key by itself: an act that is a signed decision takes the PIN in the same request
(`ApiTokens.resume(text, pin=…)`), which opens the key for that request only.

Who makes and revokes tokens: the account itself (from a session), or an admin for anyone.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .. import audit
from ..errors import PolicyError, WrongPassword
from ..home import Home
from ..store import UtcDateTime, metadata, register_migration
from .actor import Actor, _make
from .errors import AccountDisabled, AccountLocked, AccountNotFound, PinError, SessionInvalid, SigningKeyError
from .store import account_keys, accounts

PREFIX = "yx1"
SECRET_BYTES = 32
#: a token's lifetime when none is asked for, and the longest one may ask for
DEFAULT_DAYS = 365
MAX_DAYS = 1825
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TOKEN = re.compile(rf"^{PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.String(16), primary_key=True),            # public, in the token text
    sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),   # SHA-256 of the whole text
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
    sa.Column("revoked_by", sa.String(64)),
)
sa.Index("ix_api_tokens_account", api_tokens.c.account_id)

register_migration(800, "API tokens", (api_tokens,))


@dataclass(frozen=True)
class TokenInfo:
    """A token as stored (never its secret)."""

    id: str
    account_id: str
    name: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        out = {"id": self.id, "account": self.account_id, "name": self.name, "created_at": self.created_at.isoformat(),
               "created_by": self.created_by, "expires_at": self.expires_at.isoformat(),
               "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}
        if now is not None:
            out["state"] = self.state(now)
        return out


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `text` is shown once and never stored."""

    info: TokenInfo
    text: str

    def __repr__(self) -> str:
        return f"IssuedToken({self.info.id!r}, account={self.info.account_id!r})"


def _info(row: Any) -> TokenInfo:
    return TokenInfo(id=row["id"], account_id=row["account_id"], name=row["name"], created_at=row["created_at"],
                     created_by=row["created_by"], expires_at=row["expires_at"], revoked_at=row["revoked_at"])


#: a bearer token's row and its account's, built once (the statement's compiled form is cached by
#: SQLAlchemy; building it per request cost as much as running it)
_RESUME = (sa.select(api_tokens, accounts.c.name.label("account_name"), accounts.c.roles, accounts.c.organisation,
                     accounts.c.disabled, accounts.c.locked)
           .join(accounts, accounts.c.id == api_tokens.c.account_id)
           .where(api_tokens.c.id == sa.bindparam("token_id")))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class ApiTokens:
    """The API tokens of one home."""

    def __init__(self, home: Home) -> None:
        from .accounts import Accounts      # argon2 and the rest: not needed to declare the table
        self.home = home
        self.accounts = Accounts.of(home)

    @classmethod
    def of(cls, home: Home) -> "ApiTokens":
        found = home.__dict__.get("_yinxin_api_tokens")
        if found is None:
            found = home.__dict__["_yinxin_api_tokens"] = cls(home)
        return found

    def _may_manage(self, actor: Actor, account_id: str) -> None:
        if actor.account_id == account_id:
            self.accounts.require(actor)
        else:
            self.accounts.require(actor, any_of=("admin",))

    def issue(self, account_id: str, *, name: str, actor: Actor, expires_days: int | None = None) -> IssuedToken:
        """A new token for `account_id` (the account itself or an admin)."""
        self._may_manage(actor, account_id)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise PolicyError("a token name is letters, digits, '.', '-' or '_' (at most 64)", field="name")
        days = DEFAULT_DAYS if expires_days is None else expires_days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise PolicyError(f"a token lives 1 to {MAX_DAYS} days", field="expires_days")
        account = self.accounts.get(account_id)
        if account.disabled:
            raise AccountDisabled(f"account {account_id} is disabled", account=account_id)
        now = self.home.clock.now()
        with self.home.store.read() as conn:
            clash = conn.execute(sa.select(api_tokens.c.id).where(
                api_tokens.c.account_id == account_id, api_tokens.c.name == name,
                api_tokens.c.revoked_at.is_(None), api_tokens.c.expires_at > now)).first()
        if clash is not None:
            raise PolicyError(f"{account_id} has a live token named {name!r} already (revoke it first)",
                              field="name", account=account_id)
        from .sessions import b64
        token_id = self.home.rand.token_bytes(8).hex()
        text = f"{PREFIX}_{token_id}_{b64(self.home.rand.token_bytes(SECRET_BYTES))}"
        expires = now + timedelta(days=days)
        with self.home.store.transaction() as conn:
            conn.execute(api_tokens.insert().values(
                id=token_id, account_id=account_id, name=name, token_hash=_hash(text), created_at=now,
                created_by=actor.account_id, expires_at=expires))
            audit.append(conn, at=now, actor=actor.account_id, action="account.token_issue",
                         target=f"account:{account_id}", details={"token": token_id, "name": name,
                                                                  "expires": expires.isoformat()})
        return IssuedToken(TokenInfo(token_id, account_id, name, now, actor.account_id, expires, None), text)

    def list(self, account_id: str, *, actor: Actor) -> list[TokenInfo]:
        self._may_manage(actor, account_id)
        with self.home.store.read() as conn:
            return [_info(r) for r in conn.execute(sa.select(api_tokens).where(
                api_tokens.c.account_id == account_id).order_by(api_tokens.c.created_at, api_tokens.c.id))
                .mappings()]

    def revoke(self, account_id: str, *, actor: Actor, name: str | None = None, token_id: str | None = None) -> TokenInfo:
        """Revoke a live token of `account_id`, named by its name or its id: refused at once."""
        self._may_manage(actor, account_id)
        if (name is None) == (token_id is None):
            raise PolicyError("name the token to revoke by its name or by its id", field="name")
        now = self.home.clock.now()
        where = [api_tokens.c.account_id == account_id, api_tokens.c.revoked_at.is_(None)]
        where.append(api_tokens.c.name == name if name is not None else api_tokens.c.id == token_id)
        with self.home.store.transaction() as conn:
            row = conn.execute(sa.select(api_tokens).where(*where).order_by(api_tokens.c.created_at.desc())
                               .limit(1)).mappings().first()
            if row is None:
                raise AccountNotFound(f"{account_id} has no live token {name or token_id!r}", account=account_id,
                                      token=name or token_id)
            conn.execute(sa.update(api_tokens).where(api_tokens.c.id == row["id"]).values(
                revoked_at=now, revoked_by=actor.account_id))
            audit.append(conn, at=now, actor=actor.account_id, action="account.token_revoke",
                         target=f"account:{account_id}", details={"token": row["id"], "name": row["name"]})
        return _info({**row, "revoked_at": now})

    def resume(self, text: str, *, pin: bytes | None = None) -> tuple[Actor, TokenInfo]:
        """The actor of a bearer token (method "token", no session).  With `pin` the account's
        signing key is unlocked for this actor only.  SessionInvalid for a malformed, unknown,
        revoked or expired token; nothing is written."""
        match = _TOKEN.fullmatch(text or "")
        if match is None:
            raise SessionInvalid("not a yinxin API token")
        from .sessions import unb64
        unb64(match.group(2), SECRET_BYTES, "token")
        now = self.home.clock.now()
        home_id = self.accounts._known_home_id()
        with self.home.store.read() as conn:
            # one statement: the token and its account (the API asks for it on every request)
            row = conn.execute(_RESUME, {"token_id": match.group(1)}).mappings().first()
            key_row = conn.execute(sa.select(account_keys).where(
                account_keys.c.account_id == row["account_id"], account_keys.c.state == "active")
                .order_by(account_keys.c.id.desc()).limit(1)).mappings().first() \
                if row is not None and pin is not None else None
        if row is None or home_id is None or not hmac.compare_digest(row["token_hash"], _hash(text)):
            raise SessionInvalid("the API token is unknown here")
        if row["revoked_at"] is not None:
            raise SessionInvalid(f"the API token {row['id']} was revoked", token=row["id"], reason="revoked")
        if now >= row["expires_at"]:
            raise SessionInvalid(f"the API token {row['id']} expired at {row['expires_at']:%Y-%m-%d %H:%M} UTC",
                                 token=row["id"], reason="expired")
        if row["disabled"]:
            raise AccountDisabled(f"account {row['account_id']} is disabled", account=row["account_id"])
        if row["locked"]:
            raise AccountLocked(f"account {row['account_id']} is locked: an administrator must unlock it",
                                account=row["account_id"])
        signing_key = None
        if pin is not None:
            if key_row is None:
                raise SigningKeyError(f"{row['account_id']} has no personal signing key with an issued certificate",
                                      account=row["account_id"])
            from ..keyfiles import load_private_key
            try:
                signing_key = load_private_key(bytes(key_row["encrypted_key"]), pin)
            except WrongPassword:
                raise PinError(f"wrong PIN for the signing key of {row['account_id']}", account=row["account_id"]) \
                    from None
        actor = _make(account_id=row["account_id"], name=row["account_name"], roles=json.loads(row["roles"]),
                      organisation=row["organisation"], session_id=None, method="token", home_id=home_id,
                      signing_key=signing_key)
        return actor, _info(row)


__all__ = ["ApiTokens", "IssuedToken", "TokenInfo", "api_tokens", "DEFAULT_DAYS", "MAX_DAYS"]
