"""The authenticated actor: who acts, as a value that only this package makes.

`Actor` is frozen and its constructor is guarded: outside `pki.accounts` nobody can make one by
hand (nor copy, pickle or rebuild one), so an acting API that receives an `Actor` knows that a
password, a session or — in tests — `pki.accounts.testing` stood behind it.  An actor is bound to
one home (its home id): another home's actor is refused.  The CLI and the console obtain one from a
session (`Accounts.resume`); automated parts of yinxin that act on their own (the status service
publishing CRLs) use `service_actor`, which holds no role.

A session that unlocked the person's signing key carries it privately (`_signing_key`): it never
appears in `repr`, comparisons or `to_dict`, and ends with the session.
"""
from __future__ import annotations

from typing import Any, Iterable

#: the roles an account may hold (besides being a person of an organisation file)
ROLES = ("admin", "ca_operator", "ra_officer", "seal_admin")
#: how an actor was authenticated
METHODS = ("password", "session", "token", "service", "test")

_GUARD = object()


class Actor:
    """An authenticated account acting now.  Immutable; made only by `pki.accounts`."""

    __slots__ = ("account_id", "name", "roles", "organisation", "session_id", "method", "home_id",
                 "_signing_key")

    account_id: str
    name: str
    roles: frozenset[str]
    organisation: str | None
    session_id: str | None
    method: str
    home_id: str

    def __new__(cls, *args: Any, **kwargs: Any) -> "Actor":
        if kwargs.pop("_guard", None) is not _GUARD:
            raise TypeError("an Actor cannot be made by hand: it comes from Accounts.authenticate or "
                            "Accounts.resume (tests: pki.accounts.testing)")
        return super().__new__(cls)

    def __init__(self, *, account_id: str, name: str, roles: Iterable[str], organisation: str | None,
                 session_id: str | None, method: str, home_id: str, signing_key: Any = None,
                 _guard: object = None) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown authentication method {method!r}")
        for attr, value in (("account_id", account_id), ("name", name), ("roles", frozenset(roles)),
                            ("organisation", organisation), ("session_id", session_id), ("method", method),
                            ("home_id", home_id), ("_signing_key", signing_key)):
            object.__setattr__(self, attr, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an Actor is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("an Actor is immutable")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("an Actor cannot be copied or pickled: resume the session instead")

    def __copy__(self) -> "Actor":
        return self

    def __deepcopy__(self, memo: Any) -> "Actor":
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Actor):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        return (self.account_id, self.name, self.roles, self.organisation, self.session_id, self.method,
                self.home_id)

    def __repr__(self) -> str:
        return (f"Actor({self.account_id!r}, roles={sorted(self.roles)}, organisation={self.organisation!r}, "
                f"method={self.method!r}, session={self.session_id!r}"
                + (", signing key unlocked" if self._signing_key is not None else "") + ")")

    # ---------------------------------------------------------------- questions

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def can_sign(self) -> bool:
        """Whether this actor's session unlocked the person's signing key."""
        return self._signing_key is not None

    @property
    def is_service(self) -> bool:
        return self.method == "service"

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account_id, "name": self.name, "roles": sorted(self.roles),
                "organisation": self.organisation, "session": self.session_id, "method": self.method,
                "can_sign": self.can_sign}


def _make(*, account_id: str, name: str, roles: Iterable[str], organisation: str | None,
          session_id: str | None, method: str, home_id: str, signing_key: Any = None) -> Actor:
    """The one way to make an Actor (inside pki.accounts only)."""
    return Actor(account_id=account_id, name=name, roles=roles, organisation=organisation, session_id=session_id,
                 method=method, home_id=home_id, signing_key=signing_key, _guard=_GUARD)


def signing_key_of(actor: Actor) -> Any:
    """The unlocked signing key of an actor (pki.accounts' signing code only)."""
    return actor._signing_key


def service_actor(name: str, *, home_id: str) -> Actor:
    """yinxin acting on its own (e.g. the status service publishing CRLs as `service:yinxin-serve`): no
    role, no signing key; recorded in the audit log under its name.  What it may do is what needs no
    role but a key it already holds (a CA key for CRLs)."""
    if not name or not name.replace("-", "").isalnum():
        raise ValueError("a service name is letters, digits and -")
    return _make(account_id=f"service:{name}", name=name, roles=(), organisation=None, session_id=None,
                 method="service", home_id=home_id)
