"""Pre-signed OCSP responses (RFC 5019 style) and the delegated OCSP responder.

Large CAs sign every certificate's OCSP response ahead of time, so that
answering a request costs a lookup, not a signature.  Here:

* `ocsp_responses` holds, per CA and serial, the latest pre-signed response
  for a SHA-1 CertID (what RFC 5019 clients send), together with the
  certificate status it states (status and ``status_changed_at``).  A stored
  response is *current* while both still equal the certificate's row and it
  is not near its nextUpdate; anything else is signed again.
* `ocsp_responders` holds at most one delegated responder per CA: a
  certificate the CA issued with OCSPSigning (profile ``ocsp``; with
  id-pkix-ocsp-nocheck) and the path of its key, encrypted in the home.
  The responder's key then signs OCSP responses instead of the CA key, so a
  status server never needs the CA key for OCSP.

`Presigner.refresh` signs what is missing, outdated or expiring, in batches
of short transactions; `Presigner.resign` re-signs named serials at once
(the status service calls it for every status change it sees).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import sqlalchemy as sa
from asn1crypto import x509 as asn1_x509

from . import audit
from .algorithms import PrivateKey
from .ca import CaInfo, CertificateAuthority
from .errors import CertificateError, NotFound, PolicyError, WrongPassword
from .keyfiles import load_private_key, write_file_atomic
from .ocsp import (OcspCertId, SingleStatus, assemble_ocsp_response, build_ocsp_response, issuer_hashes,
                   ocsp_response_tbs)
from .store import UtcDateTime, certificates, metadata, register_migration
from .x509 import certificate_public_key, load_certificate, name_to_text, verify_certificate_signature

__all__ = ["OcspPolicy", "OcspSigner", "Presigner", "ResponderRecord", "certificate_status",
           "configure_responder", "finish_response", "load_signer", "ocsp_responders", "ocsp_responses",
           "remove_responder", "responder_record", "response_tbs", "sign_response"]

ocsp_responses = sa.Table(
    "ocsp_responses", metadata,
    sa.Column("ca_id", sa.Integer, sa.ForeignKey("cas.id"), primary_key=True, autoincrement=False),
    sa.Column("serial", sa.String(40), primary_key=True),
    sa.Column("cert_status", sa.String(10), nullable=False),      # the certificate status it states
    sa.Column("cert_changed_at", UtcDateTime, nullable=False),    # that certificate's status_changed_at
    sa.Column("signer", sa.String(64), nullable=False),           # SHA-256 of the signing certificate
    sa.Column("this_update", UtcDateTime, nullable=False),
    sa.Column("next_update", UtcDateTime, nullable=False),
    sa.Column("der", sa.LargeBinary, nullable=False),
)

ocsp_responders = sa.Table(
    "ocsp_responders", metadata,
    sa.Column("ca_id", sa.Integer, sa.ForeignKey("cas.id"), primary_key=True, autoincrement=False),
    sa.Column("serial", sa.String(40), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("not_after", UtcDateTime, nullable=False),
    sa.Column("cert_der", sa.LargeBinary, nullable=False),
    sa.Column("key_file", sa.Text, nullable=False),
    sa.Column("configured_at", UtcDateTime, nullable=False),
    sa.Column("configured_by", sa.String(128), nullable=False),
)

register_migration(301, "status service: pre-signed OCSP responses, delegated responders",
                   (ocsp_responses, ocsp_responders))

if TYPE_CHECKING:
    from .accounts.actor import Actor


@dataclass(frozen=True)
class OcspPolicy:
    """How long responses are valid and when they are signed again."""

    validity: timedelta = timedelta(hours=24)          # nextUpdate - thisUpdate
    refresh_before: timedelta = timedelta(hours=12)    # re-sign when nextUpdate is this close
    serve_margin: timedelta = timedelta(hours=1)       # never hand out a response closer to its end

    def __post_init__(self) -> None:
        if self.validity <= timedelta(0):
            raise ValueError("validity must be positive")
        if not timedelta(0) <= self.serve_margin < self.refresh_before < self.validity:
            raise ValueError("need 0 <= serve_margin < refresh_before < validity")


@dataclass(frozen=True)
class OcspSigner:
    """Who signs a CA's OCSP responses: the CA itself or its delegated responder."""

    ca_name: str
    cert: asn1_x509.Certificate
    key: PrivateKey = field(repr=False)
    distid: bytes | None              # SM2 signatures only
    delegated: bool

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.cert.dump()).hexdigest()


@dataclass(frozen=True)
class ResponderRecord:
    ca: str
    serial: str
    subject: str
    not_after: datetime
    key_file: str
    configured_at: datetime
    configured_by: str
    cert_der: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"ca": self.ca, "serial": self.serial.upper(), "subject": self.subject,
                "not_after": self.not_after.isoformat(), "key_file": self.key_file,
                "configured_at": self.configured_at.isoformat(), "configured_by": self.configured_by}


# --------------------------------------------------------------------------- responder configuration

def _has_ocsp_signing(cert: asn1_x509.Certificate) -> bool:
    usage = cert.extended_key_usage_value
    return usage is not None and "ocsp_signing" in usage.native


def _has_ocsp_nocheck(cert: asn1_x509.Certificate) -> bool:
    return any(ext["extn_id"].native == "ocsp_no_check"
               for ext in cert["tbs_certificate"]["extensions"])


def configure_responder(authority: CertificateAuthority, ca_name: str | None, *, cert_data: bytes,
                        key_data: bytes, key_password: bytes | None, store_password: bytes,
                        actor: "Actor") -> ResponderRecord:
    """Make a delegated responder sign `ca_name`'s OCSP responses (replacing any earlier one).

    The certificate must be issued by the CA (its signature checks with the CA key), carry
    OCSPSigning and id-pkix-ocsp-nocheck (profile ``ocsp``), be valid now, and match the key.
    The key is stored in the home encrypted with `store_password` (the password the status
    server is then given: ``YINXIN_OCSP_PASSWORD`` or ``--responder-password-file``).  A CA
    operator's act.
    """
    from .ca import _require
    home = authority.home
    operator = _require(home, actor, "ca_operator")
    ca = authority.get(ca_name)
    cert = load_certificate(cert_data)
    try:
        verify_certificate_signature(cert, ca.public_key(), distid=ca.sign_distid)
    except Exception:
        raise CertificateError(f"the responder certificate was not issued by CA {ca.name}", ca=ca.name) from None
    if cert.issuer.dump() != ca.certificate.subject.dump():
        raise CertificateError(f"the responder certificate's issuer is not CA {ca.name}", ca=ca.name)
    if not _has_ocsp_signing(cert):
        raise CertificateError("the responder certificate lacks the OCSPSigning extended key usage "
                               "(issue it with profile ocsp)", field="cert")
    if not _has_ocsp_nocheck(cert):
        raise CertificateError("the responder certificate lacks id-pkix-ocsp-nocheck "
                               "(issue it with profile ocsp)", field="cert")
    now = home.clock.now()
    validity = cert["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    if not not_before <= now < not_after:
        raise CertificateError(f"the responder certificate is not valid now (valid {not_before:%Y-%m-%d} "
                               f"to {not_after:%Y-%m-%d})", field="cert")
    try:
        key = load_private_key(key_data, key_password)
    except WrongPassword:
        raise WrongPassword("wrong password for the responder key", field="key") from None
    if key.public_key() != certificate_public_key(cert):
        raise PolicyError("the responder key does not belong to the responder certificate", field="key")
    if not store_password:
        raise PolicyError("the responder key is stored encrypted: a password is needed", field="password")
    serial = f"{cert.serial_number:x}"
    with home.store.read() as conn:
        row = conn.execute(sa.select(certificates.c.status).where(
            certificates.c.ca_id == ca.id, certificates.c.serial == serial)).first()
    if row is not None and row.status != "issued":
        raise PolicyError(f"the responder certificate {serial.upper()} is {row.status}", serial=serial.upper())
    key_file = home.ca_dir(ca.name) / f"ocsp-responder-{serial}.key.pem"
    write_file_atomic(key_file, key.to_pem(store_password, rand=home.rand))
    subject = name_to_text(cert.subject)
    with home.store.transaction() as conn:
        conn.execute(sa.delete(ocsp_responders).where(ocsp_responders.c.ca_id == ca.id))
        conn.execute(ocsp_responders.insert().values(
            ca_id=ca.id, serial=serial, subject=subject, not_after=not_after, cert_der=cert.dump(),
            key_file=str(key_file), configured_at=now, configured_by=operator))
        audit.append(conn, at=now, actor=operator, action="ocsp.responder", target=f"{ca.name}:{serial}",
                     details={"subject": subject, "not_after": not_after.isoformat()},
                     result_digest=hashlib.sha256(cert.dump()).hexdigest())
    record = responder_record(authority, ca)
    assert record is not None
    return record


def remove_responder(authority: CertificateAuthority, ca_name: str | None, *,
                     actor: "Actor") -> ResponderRecord:
    """Stop using the delegated responder: the CA key signs OCSP responses again."""
    from .ca import _require
    operator = _require(authority.home, actor, "ca_operator")
    ca = authority.get(ca_name)
    record = responder_record(authority, ca)
    if record is None:
        raise NotFound(f"CA {ca.name} has no delegated OCSP responder", ca=ca.name)
    now = authority.home.clock.now()
    with authority.home.store.transaction() as conn:
        conn.execute(sa.delete(ocsp_responders).where(ocsp_responders.c.ca_id == ca.id))
        audit.append(conn, at=now, actor=operator, action="ocsp.responder.remove",
                     target=f"{ca.name}:{record.serial}", details={})
    Path(record.key_file).unlink(missing_ok=True)
    return record


def responder_record(authority: CertificateAuthority, ca: CaInfo) -> ResponderRecord | None:
    with authority.home.store.read() as conn:
        row = conn.execute(sa.select(ocsp_responders).where(ocsp_responders.c.ca_id == ca.id)).mappings().first()
    if row is None:
        return None
    return ResponderRecord(ca=ca.name, serial=row["serial"], subject=row["subject"], not_after=row["not_after"],
                           key_file=row["key_file"], configured_at=row["configured_at"],
                           configured_by=row["configured_by"], cert_der=row["cert_der"])


def load_signer(authority: CertificateAuthority, ca: CaInfo, *, ca_password: bytes | None = None,
                responder_password: bytes | None = None) -> OcspSigner:
    """The delegated responder when one is configured and its password given, else the CA key."""
    record = responder_record(authority, ca)
    if record is not None and responder_password is not None:
        if record.not_after <= authority.home.clock.now():
            raise CertificateError(f"the OCSP responder certificate of CA {ca.name} expired on "
                                   f"{record.not_after:%Y-%m-%d}: configure a new one", ca=ca.name)
        try:
            data = Path(record.key_file).read_bytes()
        except OSError as exc:
            raise NotFound(f"the OCSP responder key of CA {ca.name} is missing ({record.key_file}: "
                           f"{exc.strerror})", ca=ca.name) from None
        try:
            key = load_private_key(data, responder_password)
        except WrongPassword:
            raise WrongPassword(f"wrong password for the OCSP responder key of CA {ca.name}", ca=ca.name) from None
        cert = load_certificate(record.cert_der)
        return OcspSigner(ca.name, cert, key, key.public_key().algorithm == "sm2" and ca.distid or None, True)
    if ca_password is None:
        raise PolicyError(f"no key to sign OCSP responses of CA {ca.name}: give the CA key's password"
                          + (" or the OCSP responder's" if record is not None else
                             " or configure a delegated responder (yinxin ca responder)"), ca=ca.name)
    key = authority.load_key(ca, ca_password)
    return OcspSigner(ca.name, ca.certificate, key, ca.sign_distid, False)


# --------------------------------------------------------------------------- signing

def certificate_status(status: str | None, revoked_at: datetime | None,
                       reason: str | None) -> tuple[str, datetime | None, str | None]:
    """(OCSP status, revocation time, reason) of a certificate row; None/reserved → unknown."""
    if status in ("revoked", "held"):
        return "revoked", revoked_at, reason
    if status == "issued":
        return "good", None, None
    return "unknown", None, None


Answers = Sequence[tuple[OcspCertId, str, "datetime | None", "str | None"]]


def _statuses(answers: Answers, now: datetime, policy: OcspPolicy) -> list[SingleStatus]:
    return [SingleStatus(cert_id, status, now, now + policy.validity, revoked_at=revoked_at, reason=reason)
            for cert_id, status, revoked_at, reason in answers]


def sign_response(signer: OcspSigner, answers: Answers, *, now: datetime, policy: OcspPolicy,
                  nonce: bytes | None = None) -> bytes:
    """One signed OCSPResponse stating (CertID, status, revoked_at, reason) for each answer."""
    return build_ocsp_response(statuses=_statuses(answers, now, policy), responder_cert=signer.cert,
                               responder_key=signer.key, produced_at=now, nonce=nonce, distid=signer.distid)


def response_tbs(signer: OcspSigner, answers: Answers, *, now: datetime, policy: OcspPolicy,
                 nonce: bytes | None = None) -> bytes:
    """What `sign_response` signs (for the status service's signing pool); `finish_response` puts
    the signature in."""
    return ocsp_response_tbs(statuses=_statuses(answers, now, policy), responder_cert=signer.cert,
                             produced_at=now, nonce=nonce)


def finish_response(signer: OcspSigner, tbs_der: bytes, signature: bytes) -> bytes:
    return assemble_ocsp_response(tbs_der, signature, responder_cert=signer.cert,
                                  algorithm=signer.key.public_key().signature_algorithm())


@dataclass
class Presigner:
    """Signs and stores every certificate's response of one CA ahead of requests."""

    authority: CertificateAuthority
    ca: CaInfo
    signer: OcspSigner
    policy: OcspPolicy = field(default_factory=OcspPolicy)
    batch: int = 200

    def __post_init__(self) -> None:
        name_hash, key_hash = issuer_hashes(self.ca.certificate, "sha1")
        self._name_hash, self._key_hash = name_hash, key_hash

    def cert_id(self, serial: str) -> OcspCertId:
        return OcspCertId("sha1", self._name_hash, self._key_hash, int(serial, 16))

    def _sign_rows(self, rows: Iterable[Any]) -> list[dict[str, Any]]:
        now = self.authority.home.clock.now()
        out = []
        for row in rows:
            status, revoked_at, reason = certificate_status(row.status, row.revoked_at, row.revocation_reason)
            der = sign_response(self.signer, [(self.cert_id(row.serial), status, revoked_at, reason)],
                                now=now, policy=self.policy)
            out.append(dict(ca_id=self.ca.id, serial=row.serial, cert_status=row.status,
                            cert_changed_at=row.status_changed_at, signer=self.signer.fingerprint,
                            this_update=now, next_update=now + self.policy.validity, der=der))
        return out

    def _store(self, signed: list[dict[str, Any]]) -> None:
        if not signed:
            return
        with self.authority.home.store.transaction() as conn:
            conn.execute(sa.delete(ocsp_responses).where(
                ocsp_responses.c.ca_id == self.ca.id,
                ocsp_responses.c.serial.in_([s["serial"] for s in signed])))
            conn.execute(ocsp_responses.insert(), signed)

    def resign(self, serials: Iterable[str]) -> int:
        """Sign the current status of these serials now (those not in the store are skipped)."""
        wanted = sorted(set(serials))
        done = 0
        c = certificates.c
        for start in range(0, len(wanted), self.batch):
            chunk = wanted[start:start + self.batch]
            with self.authority.home.store.read() as conn:
                rows = conn.execute(sa.select(c.serial, c.status, c.status_changed_at, c.revoked_at,
                                              c.revocation_reason)
                                    .where(c.ca_id == self.ca.id, c.serial.in_(chunk),
                                           c.status != "reserved")).all()
            signed = self._sign_rows(rows)
            self._store(signed)
            done += len(signed)
        return done

    def pending(self, *, limit: int | None = None, after_id: int = 0) -> list[Any]:
        """Certificates whose stored response is missing, states another status, was signed by
        another signer, or comes within `refresh_before` of its nextUpdate — in id order, after
        `after_id` (a sweep walks the table once, however many chunks it takes).  Certificates
        that expired before the CRL grace are left to on-demand answers."""
        now = self.authority.home.clock.now()
        c, r = certificates.c, ocsp_responses.c
        query = (sa.select(c.id, c.serial, c.status, c.status_changed_at, c.revoked_at, c.revocation_reason)
                 .select_from(certificates.outerjoin(
                     ocsp_responses, sa.and_(r.ca_id == c.ca_id, r.serial == c.serial)))
                 .where(c.id > after_id, c.ca_id == self.ca.id, c.status != "reserved",
                        c.not_after > now - timedelta(days=7),
                        sa.or_(r.serial.is_(None), r.cert_status != c.status,
                               r.cert_changed_at != c.status_changed_at, r.signer != self.signer.fingerprint,
                               r.next_update <= now + self.policy.refresh_before))
                 .order_by(c.id))
        if limit is not None:
            query = query.limit(limit)
        with self.authority.home.store.read() as conn:
            return conn.execute(query).all()

    def refresh(self, *, limit: int | None = None, after_id: int = 0) -> tuple[int, int | None]:
        """Sign and store what `pending` lists (at most `limit`, after `after_id`).  Returns how
        many were signed and the id to continue after, or None when the sweep reached the end."""
        rows = self.pending(limit=limit, after_id=after_id)
        for start in range(0, len(rows), self.batch):
            self._store(self._sign_rows(rows[start:start + self.batch]))
        finished = limit is None or len(rows) < limit
        return len(rows), None if finished else rows[-1].id

