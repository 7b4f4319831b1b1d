"""The timestamp authority's errors: a branch of `pki.PkiError`."""
from __future__ import annotations

from ..errors import PkiError

#: RFC 3161 PKIFailureInfo names (asn1crypto's spelling) and the RFC's
FAILURE_NAMES = {"bad_alg": "badAlg", "bad_request": "badRequest", "bad_data_format": "badDataFormat",
                 "time_not_available": "timeNotAvailable", "unaccepted_policy": "unacceptedPolicy",
                 "unaccepted_extension": "unacceptedExtension",
                 "unaccepted_extensions": "unacceptedExtension", "add_info_not_available": "addInfoNotAvailable",
                 "system_failure": "systemFailure"}


class TsaError(PkiError):
    """Errors of the timestamp authority and of timestamp tokens."""


class RequestRefused(TsaError):
    """A timestamp request the TSA answers with status rejection and `failure` (PKIFailureInfo)."""

    def __init__(self, failure: str, reason: str) -> None:
        if failure not in FAILURE_NAMES:
            raise ValueError(f"unknown PKIFailureInfo {failure!r}")
        super().__init__(f"timestamp request refused ({FAILURE_NAMES[failure]}): {reason}",
                         failure=FAILURE_NAMES[failure], reason=reason)
        self.failure = failure
        self.reason = reason


class ClockBehind(TsaError):
    """The clock reads earlier than a token this TSA already issued: issuance stops until it is right."""

    def __init__(self, tsa: str, now: str, last: str) -> None:
        super().__init__(f"TSA {tsa}: the clock reads {now}, earlier than the last token issued ({last}); "
                         "no token is issued until the clock is right again", tsa=tsa, now=now, last=last)


class TimestampUnavailable(TsaError):
    """A timestamp could not be obtained (network, refusal, a reply that does not fit the request)."""


class MalformedToken(TsaError):
    """Bytes that are not an RFC 3161 TimeStampToken."""
