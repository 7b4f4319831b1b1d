"""What a logged-in person does for themselves: change their password, unlock their signing key
into the session they already have (the console asks for the PIN at the first signed act when it
was not given at login).

Both check the person again — the current password, the PIN — and change nothing when the check
fails (a wrong current password counts towards the account's lockout, as a failed login does).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from .. import audit
from ..errors import WrongPassword
from .actor import Actor, _make
from .errors import PinError, SessionInvalid, SigningKeyError
from .sessions import SESSION_KEY_BYTES, wrap_key
from .store import account_keys, account_sessions, accounts

if TYPE_CHECKING:
    from .accounts import Accounts


def change_password(registry: "Accounts", actor: Actor, current: bytes, new: bytes) -> int:
    """The person's own password change: the current password again (a wrong one is counted as a
    failed login), the policy, a password different from the current one.  The account's *other*
    sessions end (whoever knew the old password is out); this one goes on.  Returns how many
    sessions ended."""
    registry.require(actor)
    if actor.session_id is None:
        raise SessionInvalid("a password is changed from a session (log in first)")
    now = registry.home.clock.now()
    with registry.home.store.read() as conn:
        row = conn.execute(sa.select(accounts).where(accounts.c.id == actor.account_id)).mappings().first()
    assert row is not None                      # require() found it
    if not registry._same(row["password_hash"], current):
        registry._failed(actor.account_id, row, now)     # raises AuthenticationFailed / AccountLocked
    registry.policy.check_password(new, context=(actor.account_id, row["name"], row["organisation"] or ""),
                                   old_hash_matches=registry._same(row["password_hash"], new))
    hashed = registry._hasher.hash(new)
    with registry.home.store.transaction() as conn:
        conn.execute(sa.update(accounts).where(accounts.c.id == actor.account_id).values(
            password_hash=hashed, password_set_at=now, must_change_password=False, failed_logins=0,
            last_failure_at=None, updated_at=now))
        ended = conn.execute(sa.delete(account_sessions).where(
            account_sessions.c.account_id == actor.account_id, account_sessions.c.id != actor.session_id)).rowcount
        audit.append(conn, at=now, actor=actor.account_id, action="account.password_change",
                     target=f"account:{actor.account_id}",
                     details={"was_initial": bool(row["must_change_password"]), "other_sessions_ended": ended})
    return ended


def unlock_key(registry: "Accounts", actor: Actor, pin: bytes) -> tuple[bytes, Actor]:
    """Unlock the person's active signing key with the PIN into the actor's live session: the key is
    stored in the session's row under a new random session key, which is returned (the client keeps
    it, as it keeps the session token) with the actor now able to sign.  PinError for a wrong PIN,
    SigningKeyError when the person holds no certified key; nothing is written then."""
    registry.require(actor)
    if actor.session_id is None:
        raise SessionInvalid("a signing key is unlocked into a session (log in first)")
    home = registry.home
    with home.store.read() as conn:
        key_row = conn.execute(sa.select(account_keys).where(
            account_keys.c.account_id == actor.account_id, account_keys.c.state == "active")
            .order_by(account_keys.c.id.desc()).limit(1)).mappings().first()
    if key_row is None:
        raise SigningKeyError(f"{actor.account_id} has no personal signing key with an issued certificate",
                              account=actor.account_id)
    from ..keyfiles import load_private_key
    try:
        key = load_private_key(bytes(key_row["encrypted_key"]), pin)
    except WrongPassword:
        raise PinError(f"wrong PIN for the signing key of {actor.account_id}", account=actor.account_id) from None
    session_key = home.rand.token_bytes(SESSION_KEY_BYTES)
    wrapped = wrap_key(key.to_pkcs8_der(), session_key, home.rand.token_bytes(12), session_id=actor.session_id,
                       account_id=actor.account_id, key_id=key_row["id"])
    now = home.clock.now()
    with home.store.transaction() as conn:
        changed = conn.execute(sa.update(account_sessions).where(
            account_sessions.c.id == actor.session_id, account_sessions.c.account_id == actor.account_id)
            .values(key_id=key_row["id"], wrapped_key=wrapped, last_seen_at=now)).rowcount
        if changed != 1:
            raise SessionInvalid("the session has ended: log in again", session=actor.session_id)
        audit.append(conn, at=now, actor=actor.account_id, action="account.key_unlock",
                     target=f"account:{actor.account_id}", details={"session": actor.session_id,
                                                                    "key": key_row["id"]})
    return session_key, _make(account_id=actor.account_id, name=actor.name, roles=actor.roles,
                              organisation=actor.organisation, session_id=actor.session_id, method=actor.method,
                              home_id=actor.home_id, signing_key=key)


__all__ = ["change_password", "unlock_key"]
