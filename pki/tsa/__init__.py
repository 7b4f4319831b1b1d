"""Trusted time: a timestamp authority (RFC 3161; GM/T 0033 for SM2) and timestamp tokens.

Public API (imported on first use, PEP 562)::

    from pki.tsa import (TimestampAuthority, Timestamper, LocalTimestamper, HttpTimestamper,
                         parse_token, verify_token)

    tsa = TimestampAuthority(home)                       # the TSAs of a home
    signer = tsa.load("tsa1", b"tsa-password")           # key loaded: a TsaSigner
    reply = signer.respond(query_der)                    # a TimeStampResp, recorded before it returns
    token = LocalTimestamper(signer).timestamp(data, "sm3")          # or HttpTimestamper(url)
    check = verify_token(token, data, trust=[root])      # check.verdict: valid | invalid | indeterminate

Tables register on import of `pki.tsa.tables` (migration 500).
"""
from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "TimestampAuthority": "authority", "TsaInfo": "authority", "TsaSigner": "authority",
    "TokenRecord": "authority", "DEFAULT_POLICY": "authority",
    "Timestamper": "timestamper", "TimestamperBase": "timestamper", "LocalTimestamper": "timestamper",
    "HttpTimestamper": "timestamper", "home_timestamper": "timestamper",
    "TimestampToken": "token", "TokenVerification": "token", "parse_token": "token", "verify_token": "token",
    "token_from_response": "token", "is_tsa_certificate": "token",
    "TimestampRequest": "protocol", "parse_request": "protocol", "build_request": "protocol",
    "failure_response": "protocol", "HASHES": "protocol",
    "IssueClock": "timing",
    "TsaError": "errors", "RequestRefused": "errors", "ClockBehind": "errors",
    "TimestampUnavailable": "errors", "MalformedToken": "errors",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
