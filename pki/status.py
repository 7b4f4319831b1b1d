"""Certificate status: numbered full and delta CRLs, and OCSP responses (RFC 5280, RFC 6960).

Status comes from the store; the CA key (or a delegated OCSP responder key)
signs.  Full and delta CRLs of one CA share one CRL-number sequence
(RFC 5280 5.2.3), taken from the CA row inside the transaction that stores
the CRL, so numbers strictly increase even with several writers.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa

from . import audit, crl_source
from .algorithms import PrivateKey
from .ca import CaInfo, CertificateAuthority
from .crl import encode_tbs_crl_der, sign_crl_der
from .errors import StateError
from .ocsp import (OcspRequestInfo, SingleStatus, build_ocsp_response, issuer_hashes,
                   ocsp_error_response, parse_ocsp_request, MalformedOcspRequest)
from .store import cas, certificates, crls

if TYPE_CHECKING:
    from .accounts.actor import Actor

#: how long a full / delta CRL is valid (nextUpdate - thisUpdate)
FULL_CRL_VALIDITY = timedelta(days=7)
DELTA_CRL_VALIDITY = timedelta(days=1)
#: a revoked certificate stays listed this long after it expires (RFC 5280 3.3: at least once past expiry)
EXPIRED_ENTRY_GRACE = timedelta(days=7)
OCSP_VALIDITY = timedelta(hours=24)


@dataclass(frozen=True)
class CrlResult:
    ca: str
    number: int
    delta_base: int | None
    this_update: datetime
    next_update: datetime
    entries: int
    der: bytes


def _entries(conn: Any, ca: CaInfo, now: datetime) -> Any:
    # read and DER-encoded row by row, fast enough for a million entries (pki.crl_source)
    return crl_source.full_entries(conn, ca.id, min_not_after=now - EXPIRED_ENTRY_GRACE)


def _delta_entries(conn: Any, ca: CaInfo, since: datetime, now: datetime) -> Any:
    """What changed since the base CRL: new revocations/holds, and released holds (removeFromCRL)."""
    return crl_source.delta_entries(conn, ca.id, since=since, min_not_after=now - EXPIRED_ENTRY_GRACE)


def generate_crl(authority: CertificateAuthority, ca: CaInfo, key: PrivateKey, *, delta: bool = False,
                 actor: "Actor") -> CrlResult:
    """Build, sign and store the next full (or delta) CRL of `ca`: a CA operator's act, or the status
    service's own (a service actor: the CA key is its authority)."""
    from .ca import _require
    home = authority.home
    operator = _require(home, actor, "ca_operator", service_ok=True)
    ca_cert = ca.certificate
    aki = ca_cert.key_identifier or ca.public_key().key_identifier()
    with home.store.transaction() as conn:
        # the time is read under the store's write lock, as status changes read theirs: a change
        # committed after this CRL carries a later (or the same) time, so the next delta lists it
        now = home.clock.now()
        base = None
        if delta:
            base = conn.execute(sa.select(crls.c.number, crls.c.this_update).where(
                crls.c.ca_id == ca.id, crls.c.delta_base.is_(None)).order_by(crls.c.number.desc())).first()
            if base is None:
                raise StateError(f"CA {ca.name} has no full CRL yet: a delta CRL needs a base",
                                 ca=ca.name)
            entries = _delta_entries(conn, ca, base.this_update, now)
            next_update = now + DELTA_CRL_VALIDITY
        else:
            entries = _entries(conn, ca, now)
            next_update = now + FULL_CRL_VALIDITY
        number = conn.execute(sa.update(cas).where(cas.c.id == ca.id)
                              .values(next_crl_number=cas.c.next_crl_number + 1)
                              .returning(cas.c.next_crl_number)).scalar_one() - 1
        # a full CRL names where its deltas are published (Freshest CRL, RFC 5280 5.2.6)
        freshest = (ca.urls()["delta_crl"],) if ca.base_url and not delta else ()
        tbs = encode_tbs_crl_der(issuer=ca_cert.subject, this_update=now, next_update=next_update,
                                 crl_number=number, entries=entries, authority_key_identifier=aki,
                                 signature_algorithm=key.public_key().signature_algorithm(),
                                 delta_base=base.number if base is not None else None,
                                 freshest_crl_urls=freshest)
        der = sign_crl_der(tbs, key, distid=ca.sign_distid)
        conn.execute(crls.insert().values(ca_id=ca.id, number=number,
                                          delta_base=base.number if base is not None else None,
                                          this_update=now, next_update=next_update, der=der))
        audit.append(conn, at=now, actor=operator, action="crl.delta" if delta else "crl.full",
                     target=f"{ca.name}:crl:{number}", details={"entries": len(entries)},
                     result_digest=hashlib.sha256(der).hexdigest())
        audit.maybe_checkpoint(conn, at=now, ca_name=ca.name, key=key, distid=ca.distid)
    return CrlResult(ca.name, number, base.number if base is not None else None, now, next_update,
                     len(entries), der)


#: the newest full CRL / delta CRL of a CA (read by every verification), built once
_LATEST_FULL_CRL = (sa.select(crls.c.der).where(crls.c.ca_id == sa.bindparam("ca_id"), crls.c.delta_base.is_(None))
                    .order_by(crls.c.number.desc()).limit(1))
_LATEST_DELTA_CRL = (sa.select(crls.c.der).where(crls.c.ca_id == sa.bindparam("ca_id"),
                                                 crls.c.delta_base.is_not(None))
                     .order_by(crls.c.number.desc()).limit(1))


_FULL, _DELTA = crls.alias("full_crls"), crls.alias("delta_crls")
#: every CA's latest full CRL and latest delta CRL, in one statement
_LATEST_CRLS = sa.select(crls.c.ca_id, crls.c.delta_base, crls.c.der).where(
    crls.c.ca_id.in_(sa.bindparam("ca_ids", expanding=True)),
    sa.or_(sa.and_(crls.c.delta_base.is_(None), crls.c.number == sa.select(sa.func.max(_FULL.c.number)).where(
               _FULL.c.ca_id == crls.c.ca_id, _FULL.c.delta_base.is_(None)).scalar_subquery()),
           sa.and_(crls.c.delta_base.is_not(None), crls.c.number == sa.select(sa.func.max(_DELTA.c.number)).where(
               _DELTA.c.ca_id == crls.c.ca_id, _DELTA.c.delta_base.is_not(None)).scalar_subquery())))


def latest_crls(authority: CertificateAuthority, cas: Sequence[CaInfo]) -> list[bytes]:
    """For each CA in turn, its latest full CRL and, when it has one, its latest delta CRL (a full CRL
    of a CA with a base URL names its deltas as the freshest CRL: a verifier then needs both) — what
    `latest_crl` gives CA by CA, read in one statement."""
    if not cas:
        return []
    with authority.home.store.read() as conn:
        rows = conn.execute(_LATEST_CRLS, {"ca_ids": sorted({ca.id for ca in cas})}).all()
    full = {r.ca_id: bytes(r.der) for r in rows if r.delta_base is None}
    delta = {r.ca_id: bytes(r.der) for r in rows if r.delta_base is not None}
    return [der for ca in cas if ca.id in full for der in (full[ca.id], *((delta[ca.id],) if ca.id in delta else ()))]


def latest_crl(authority: CertificateAuthority, ca: CaInfo, *, delta: bool = False) -> bytes | None:
    with authority.home.store.read() as conn:
        return conn.execute(_LATEST_DELTA_CRL if delta else _LATEST_FULL_CRL, {"ca_id": ca.id}).scalar()


def certificate_statuses(authority: CertificateAuthority, ca: CaInfo, request: OcspRequestInfo,
                         now: datetime) -> list[SingleStatus] | None:
    """One SingleStatus per CertID; None when no CertID names this CA (→ unauthorized)."""
    ca_cert = ca.certificate
    hashes_by_algo: dict[str, tuple[bytes, bytes]] = {}
    statuses = []
    mine = False
    with authority.home.store.read() as conn:
        for cert_id in request.cert_ids:
            algo = cert_id.hash_algorithm
            if algo not in hashes_by_algo:
                try:
                    hashes_by_algo[algo] = issuer_hashes(ca_cert, algo)
                except (ValueError, KeyError):
                    hashes_by_algo[algo] = (b"", b"")
            if hashes_by_algo[algo] != (cert_id.issuer_name_hash, cert_id.issuer_key_hash):
                statuses.append(SingleStatus(cert_id, "unknown", now, now + OCSP_VALIDITY))
                continue
            mine = True
            row = conn.execute(sa.select(certificates.c.status, certificates.c.revoked_at,
                                         certificates.c.revocation_reason)
                               .where(certificates.c.ca_id == ca.id,
                                      certificates.c.serial == f"{cert_id.serial:x}")).first()
            if row is None or row.status == "reserved":
                statuses.append(SingleStatus(cert_id, "unknown", now, now + OCSP_VALIDITY))
            elif row.status in ("revoked", "held"):
                statuses.append(SingleStatus(cert_id, "revoked", now, now + OCSP_VALIDITY,
                                             revoked_at=row.revoked_at, reason=row.revocation_reason))
            else:
                statuses.append(SingleStatus(cert_id, "good", now, now + OCSP_VALIDITY))
    return statuses if mine else None


def respond_ocsp(authority: CertificateAuthority, ca: CaInfo, key: PrivateKey, request_der: bytes,
                 *, responder_cert: Any = None, responder_distid: bytes | None = None) -> bytes:
    """A DER OCSPResponse to one DER request: malformedRequest / unauthorized / a signed answer."""
    try:
        request = parse_ocsp_request(request_der)
    except MalformedOcspRequest:
        return ocsp_error_response("malformed_request")
    now = authority.home.clock.now()
    statuses = certificate_statuses(authority, ca, request, now)
    if statuses is None:
        return ocsp_error_response("unauthorized")
    cert = responder_cert if responder_cert is not None else ca.certificate
    distid = responder_distid if responder_cert is not None else ca.sign_distid
    return build_ocsp_response(statuses=statuses, responder_cert=cert, responder_key=key, produced_at=now,
                               nonce=request.nonce, distid=distid)


__all__ = ["CrlResult", "generate_crl", "latest_crl", "respond_ocsp", "certificate_statuses"]
