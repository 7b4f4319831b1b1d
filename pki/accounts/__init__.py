"""Accounts, authentication, sessions, personal signing keys and signed decisions.

Public API (imported on first use, PEP 562)::

    from pki.accounts import Accounts, Actor
    accounts = Accounts(home)
    session = accounts.authenticate("sun", password, pin=pin)   # Session: .actor, .to_file()
    actor = accounts.resume_file(session_file_bytes)             # a session file → its Actor
    flow.act(doc_id, actor=actor, action="approve", opinion="同意")

Acting APIs (`CertificateAuthority`, its RA, `SealRegistry`, `SealService`, `DocumentFlow`) take an
`Actor`, which nobody outside this package can make by hand; tests use `pki.accounts.testing`.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "Accounts": "accounts", "Account": "accounts", "KeyInfo": "accounts", "check_roles": "accounts",
    "Actor": "actor", "ROLES": "actor", "METHODS": "actor", "service_actor": "actor",
    "Session": "sessions", "SessionFile": "sessions",
    "AccountPolicy": "policy", "Argon2Parameters": "policy", "load_account_policy": "policy",
    "canonical": "decisions", "Decision": "decisions", "ChainReport": "decisions", "RecordCheck": "decisions",
    "verify_records": "decisions", "chain_records": "decisions", "chains": "decisions",
    "AccountError": "errors", "AccountNotFound": "errors", "AuthenticationFailed": "errors",
    "AccountLocked": "errors", "AccountDisabled": "errors", "LoginThrottled": "errors",
    "PasswordChangeRequired": "errors", "PasswordRejected": "errors", "SessionInvalid": "errors",
    "NotPermitted": "errors", "PinError": "errors", "SigningKeyError": "errors",
    "DecisionVerificationFailed": "errors",
    "ApiTokens": "tokens", "TokenInfo": "tokens", "IssuedToken": "tokens",
    "change_password": "selfservice", "unlock_key": "selfservice",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
