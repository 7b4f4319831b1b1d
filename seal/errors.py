"""Errors of the seal package: one branch under yinxin's common root."""
from __future__ import annotations

from pki.errors import YinxinError


class SealError(YinxinError):
    """Errors raised by the seal package."""


class SealNotFound(SealError):
    """No seal of that name."""


class SealPasswordError(SealError):
    """Wrong seal password (the failure was counted and audited)."""


class SealLocked(SealError):
    """Too many wrong passwords: an administrator must unlock the seal."""


class PasswordPolicyError(SealError):
    """A new password does not meet the password policy."""


class SealStateError(SealError):
    """The seal cannot be used now: outside its validity window, certificate revoked/held/expired,
    or its password must be changed first."""


class ValidationDataMissing(SealError):
    """Long-term validation (B-LT, B-LTA, extend) needs revocation data that this home does not
    have (a CA on a path has published no CRL)."""
