"""The exception hierarchy shared by every yinxin package.

`YinxinError` is the common root; each package derives its own branch
(`PkiError` here, `SealError` in seal, `DocflowError` in docflow).  Every
error carries the data that identifies what went wrong (a serial, an
application id, a field) so that callers and the CLI never parse messages.
Misuse of the API (wrong types, impossible arguments) raises the built-in
TypeError/ValueError instead.
"""
from __future__ import annotations

from typing import Any


class YinxinError(Exception):
    """Root of all errors a user can cause and a caller can handle."""

    #: process exit status the CLI uses for this kind of error
    exit_code: int = 2

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def __str__(self) -> str:  # the message only; data stays structured
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message,
                **{k: _jsonable(v) for k, v in self.data.items()}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class PkiError(YinxinError):
    """Errors raised by the pki package."""


class UnknownAlgorithm(PkiError):
    """An algorithm name or OID yinxin does not support."""


class InvalidSignature(PkiError):
    """A signature does not verify.  Exit code 1: 'checked, and invalid'."""

    exit_code = 1


class KeyFileError(PkiError):
    """A key file (PEM/DER/PKCS#8/PKCS#12) is malformed or unsupported."""


class WrongPassword(KeyFileError):
    """The password does not decrypt the key file."""


class CertificateError(PkiError):
    """A certificate or CSR is malformed or does not fit what is asked."""


class PolicyError(PkiError):
    """A policy file is invalid, or a request violates a policy."""


class NotFound(PkiError):
    """A named object (CA, application, certificate, profile) does not exist."""


class StateError(PkiError):
    """An operation is not allowed in the object's current state."""


class Conflict(PkiError):
    """An operation would violate a uniqueness rule (one person, one certificate)."""


class StoreError(PkiError):
    """The database could not do what was asked (schema, locking, integrity)."""


class AuditError(PkiError):
    """The audit log does not verify."""
