"""Errors of accounts, sessions and signed decisions: a branch of `pki.errors.PkiError`.

Every error carries its data (account, session, record) so that callers — the CLI, the console —
never parse messages.  They are user errors (exit code 2) except `DecisionVerificationFailed`
(exit 1: checked, and wrong).
"""
from __future__ import annotations

from ..errors import PkiError


class AccountError(PkiError):
    """Errors of the accounts module."""


class AccountNotFound(AccountError):
    """No account with that id."""


class AuthenticationFailed(AccountError):
    """Wrong account id or password (the failure was counted and audited)."""


class AccountLocked(AccountError):
    """Too many failed logins: an administrator must unlock the account."""


class AccountDisabled(AccountError):
    """The account is disabled (the person moved or left)."""


class LoginThrottled(AccountError):
    """Failed logins came too fast: wait before the next try (nothing was checked)."""


class PasswordChangeRequired(AccountError):
    """The password is an initial (or expired) one: the login must set a new password."""


class PasswordRejected(AccountError):
    """A new password breaks the account password policy."""


class SessionInvalid(AccountError):
    """A session file that is wrong, damaged, edited, of another home, ended or expired."""


class NotPermitted(AccountError):
    """The actor may not do this: a role it lacks, acting for another person, another home."""


class PinError(AccountError):
    """The PIN does not open the personal signing key (nothing was changed)."""


class SigningKeyError(AccountError):
    """A personal signing key is missing, not yet certified, or not unlocked in this session."""


class DecisionChainMoved(AccountError):
    """Another act appended to the decision chain after this act was checked (nothing was written):
    look again and retry."""


class DecisionVerificationFailed(AccountError):
    """A signed decision record does not verify.  Exit code 1."""

    exit_code = 1
