"""RFC 3161's ASN.1 as asn1crypto declares it (`asn1crypto.tsp`), with one correction.

RFC 3161 §2.4.2: ``TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken
TimeStampToken OPTIONAL }`` — a rejection carries no token.  asn1crypto 1.5 declares the
token required, so no refusal could be read (nor by pyHanko, which uses the same class).
The declaration is corrected once, at import, on asn1crypto's own class (as `pki.oids`
registers the SM2 OIDs), so every reader in the process sees the RFC's structure.
"""
from __future__ import annotations

from asn1crypto import cms, core, tsp

__all__ = ["TimeStampResp", "TimeStampReq", "TSTInfo"]


def _correct_timestamp_resp() -> None:
    status, token = tsp.TimeStampResp._fields[:2]
    if len(token) > 2 and token[2].get("optional"):
        return
    tsp.TimeStampResp._fields = [status, ("time_stamp_token", cms.ContentInfo, {"optional": True})]
    # asn1crypto computes a class's field maps once, on first use: let it compute them again
    core._SETUP_CLASSES.pop(tsp.TimeStampResp, None)


_correct_timestamp_resp()

TimeStampResp = tsp.TimeStampResp
TimeStampReq = tsp.TimeStampReq
TSTInfo = tsp.TSTInfo
