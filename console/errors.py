"""How the console answers a refused request: one HTTP status and one stable code per kind of error.

Library errors carry their data; this table turns them into ``{"error": CODE, "message": TEXT}``
(the API) or a page with the message (the console), with the statuses the HTTP API documents:
400 a malformed request, 401 no valid session or token, 403 not allowed (also a wrong seal password
or PIN, counted where the library counts them), 404 no such object *for this actor*, 409 the state
does not allow it now (or it changed meanwhile), 413 an upload too large, 422 well-formed but not
acceptable, 429 too many tries.  Anything else is a bug: 500 with a fixed text, never a trace.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pki.errors import YinxinError


class ConsoleError(YinxinError):
    """A request the console itself refuses before any library call (bad form, CSRF, size)."""

    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        super().__init__(message, **data)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Answer:
    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def _by_name(exc: BaseException) -> tuple[int, str] | None:
    """The status of a library error, found by class name along its MRO (so the console needs no
    import of every package's errors, and a subclass inherits its parent's answer)."""
    for cls in type(exc).__mro__:
        found = _TABLE.get(cls.__name__)
        if found is not None:
            return found
    return None


_TABLE: dict[str, tuple[int, str]] = {
    # authentication
    "SessionInvalid": (401, "unauthenticated"),
    "AuthenticationFailed": (401, "unauthenticated"),
    "PasswordChangeRequired": (403, "password_change_required"),
    "AccountLocked": (403, "account_locked"),
    "AccountDisabled": (403, "account_disabled"),
    "LoginThrottled": (429, "throttled"),
    # permission
    "NotPermitted": (403, "forbidden"),
    "NotAllowed": (403, "forbidden"),
    "PinError": (403, "wrong_pin"),
    "SigningKeyError": (403, "signing_key"),
    "SealPasswordError": (403, "wrong_seal_password"),
    "SealLocked": (403, "seal_locked"),
    # existence
    "DocumentNotFound": (404, "not_found"),
    "SealNotFound": (404, "not_found"),
    "AccountNotFound": (404, "not_found"),
    "NotFound": (404, "not_found"),
    # state
    "ChangedMeanwhile": (409, "conflict"),
    "FlowStateError": (409, "state"),
    "SealStateError": (409, "state"),
    "StateError": (409, "state"),
    "Conflict": (409, "conflict"),
    "IntegrityFailure": (409, "integrity"),
    "VerificationFailed": (409, "verification_failed"),
    # content
    "PasswordRejected": (422, "password_rejected"),
    "PasswordPolicyError": (422, "password_rejected"),
    "PlacementError": (422, "placement"),
    "NotAPdf": (422, "not_pdf"),
    "EncryptedPdf": (422, "not_pdf"),
    "ElementError": (422, "invalid"),
    "AttachmentError": (422, "invalid"),
    "DirectoryError": (422, "invalid"),
    "RouteError": (422, "invalid"),
    "PolicyError": (422, "invalid"),
    "YinxinError": (422, "invalid"),
}


def answer_for(exc: BaseException) -> Answer:
    """The status, code and one-line message for an error raised while serving a request."""
    if isinstance(exc, ConsoleError):
        headers = (("www-authenticate", 'Bearer realm="yinxin"'),) if exc.status == 401 else ()
        retry = exc.data.get("retry_after")
        if exc.status == 429 and isinstance(retry, int):
            headers = (("retry-after", str(retry)),)
        return Answer(exc.status, exc.code, _one_line(exc.message), headers)
    if isinstance(exc, YinxinError):
        status, code = _by_name(exc) or (422, "invalid")
        headers: tuple[tuple[str, str], ...] = ()
        if status == 429:
            retry = exc.data.get("retry_after")
            if isinstance(retry, int):
                headers = (("retry-after", str(retry)),)
        if status == 401:
            headers = (("www-authenticate", 'Bearer realm="yinxin"'),)
        return Answer(status, code, _one_line(exc.message), headers)
    return Answer(500, "internal", "internal error: the server logged it")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def bad_request(message: str, **data: Any) -> ConsoleError:
    return ConsoleError(400, "bad_request", message, **data)


def unprocessable(message: str, **data: Any) -> ConsoleError:
    return ConsoleError(422, "invalid", message, **data)


__all__ = ["ConsoleError", "Answer", "answer_for", "bad_request", "unprocessable"]
