"""The certificate authority: the only code that asks a CA key to sign.

Issuance cycle (ARCHITECTURE.md):
  1. The RA checks the approved application against the profile and the policies.
  2. The CA reserves a random serial (≥ 64 bits of entropy, positive, ≤ 20 octets) and
     stores the TBS it is about to sign, in one transaction, before signing; an audit
     event says "signing".
  3. The CA signs; an audit event says "signed" with the certificate's digest.
  4. The store records the certificate; the RA marks the application issued.
A crash between 2 and 4 leaves a record of what may have been signed (status
"reserved"): `check()` lists it so it can be revoked; a serial is never reused.

The CA never decides policy: hold, release and revoke are state changes with
their own rules, and CRLs/OCSP responses come from `pki.status`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa
from asn1crypto import x509 as asn1_x509

from . import audit
from .algorithms import ALGORITHMS, PrivateKey, PublicKey, generate_key, public_key_from_spki
from .errors import Conflict, NotFound, PolicyError, StateError, UnknownAlgorithm
from .home import Home
from .keyfiles import open_key_file, write_file_atomic
from .profiles import Profile
from .ra import (Application, RegistrationAuthority, active_key, check_san, check_subject,
                 ensure_slot_free)
from .records import CaInfo, CertificateRecord
from .records import ca_info as _ca_info
from .records import certificate_record as _record
from .sm2 import DEFAULT_DISTID
from .store import applications, cas, certificates
from .x509 import (CertificateSpec, build_tbs_certificate, certificate_public_key, certificate_to_pem,
                   load_certificate, load_csr, name_to_text, parse_name, sign_certificate, verify_csr)

if TYPE_CHECKING:
    from .accounts.actor import Actor


def _require(home: Home, actor: "Actor", *roles: str, service_ok: bool = False) -> str:
    """The acting account's id, once `actor` is checked (genuine, this home, live, holding a role)."""
    from .accounts.accounts import Accounts
    Accounts.of(home).require(actor, any_of=roles, service_ok=service_ok)
    return actor.account_id

#: RFC 5280 reasons a revocation may give (certificateHold is `hold`, removeFromCRL is `release`)
REVOCATION_REASONS = ("unspecified", "key_compromise", "ca_compromise", "affiliation_changed",
                      "superseded", "cessation_of_operation", "privilege_withdrawn", "aa_compromise")
_REASON_ALIASES = {r.replace("_", ""): r for r in REVOCATION_REASONS} | {
    "keycompromise": "key_compromise", "cacompromise": "ca_compromise",
    "affiliationchanged": "affiliation_changed", "cessationofoperation": "cessation_of_operation",
    "privilegewithdrawn": "privilege_withdrawn", "aacompromise": "aa_compromise"}


#: notBefore is set this far before the moment of issuance, so that a relying party whose clock is
#: a little behind the CA's does not reject a certificate fresh from the CA as "not yet valid"
#: (CAs commonly backdate; Let's Encrypt by an hour).  notAfter still counts from issuance.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)


def normalise_reason(reason: str) -> str:
    """Accept RFC 5280 spellings (keyCompromise, key_compromise, key-compromise)."""
    key = reason.replace("-", "").replace("_", "").replace(" ", "").lower()
    if key not in _REASON_ALIASES:
        raise PolicyError(f"unknown revocation reason {reason!r} (one of: {', '.join(REVOCATION_REASONS)})",
                          field="reason", reason=reason)
    return _REASON_ALIASES[key]


def format_serial(serial: int) -> str:
    return f"{serial:X}"


def parse_serial(text: str) -> str:
    """A serial as people type it (hex, with or without colons or 0x) → the stored form."""
    cleaned = text.strip().lower().replace(":", "")
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise PolicyError(f"{text!r} is not a hexadecimal serial number", field="serial") from None
    if value <= 0:
        raise PolicyError("a serial number is positive", field="serial")
    return f"{value:x}"


@dataclass(frozen=True)
class Issued:
    record: CertificateRecord
    certificate: asn1_x509.Certificate
    chain: tuple[asn1_x509.Certificate, ...]      # issuing CA first, root last

    def pem(self) -> bytes:
        return certificate_to_pem(self.certificate)

    def chain_pem(self) -> bytes:
        return b"".join(certificate_to_pem(c) for c in self.chain)


#: statements every seal and verification runs, built once (building one costs SQLAlchemy more than
#: running it on SQLite)
_CA_BY_NAME = sa.select(cas).where(cas.c.name == sa.bindparam("name"))
_CA_NAME_BY_ID = sa.select(cas.c.name).where(cas.c.id == sa.bindparam("id"))
_CA_LIST = sa.select(cas).order_by(cas.c.id)
_CERTIFICATE_BY_SERIAL = (sa.select(certificates, cas.c.name.label("ca_name"))
                          .join(cas, cas.c.id == certificates.c.ca_id)
                          .where(certificates.c.serial == sa.bindparam("serial")))
_CERTIFICATE_BY_SERIAL_IN_CA = _CERTIFICATE_BY_SERIAL.where(cas.c.name == sa.bindparam("ca"))


def ca_named(cas: Sequence[CaInfo], name: str | None) -> CaInfo | None:
    """The CA named `name` among `cas` (the home's CAs, read once), if it is there."""
    return next((info for info in cas if info.name == name), None)


def get_ca_row(conn: Any, home: Home, name: str | None) -> dict[str, Any]:
    """The CA row by name; with no name, the configured default or the only CA."""
    if name is None:
        name = home.default_ca
    if name is None:
        rows = conn.execute(sa.select(cas).limit(2)).mappings().all()
        if len(rows) == 1:
            return dict(rows[0])
        if not rows:
            raise NotFound("this home has no CA yet: run `yinxin ca init` first")
        raise PolicyError("this home has several CAs: name one with --ca", field="ca")
    row = conn.execute(_CA_BY_NAME, {"name": name}).mappings().first()
    if row is None:
        raise NotFound(f"no CA named {name!r}", ca=name)
    return dict(row)


def ensure_still_issuable(conn: Any, ca_id: int, app: Application) -> None:
    """Inside the reservation's transaction: the application is still approved and has no live
    certificate, and a renewal's predecessor is still valid and not renewed by someone else.
    (A reservation left by a crash blocks re-issuing until it is revoked: it may have been signed.)"""
    state = conn.execute(sa.select(applications.c.state).where(applications.c.id == app.id)).scalar()
    if state != "approved":
        raise StateError(f"application {app.id} is no longer approved ({state})", application=app.id,
                         state=state)
    live = ("reserved", "issued", "held")
    row = conn.execute(sa.select(certificates.c.serial, certificates.c.status).where(
        certificates.c.application_id == app.id, certificates.c.status.in_(live))).first()
    if row is not None:
        if row.status == "reserved":
            raise StateError(f"application {app.id} has serial {row.serial.upper()} reserved by an "
                             f"interrupted issuance (it may have been signed): revoke it first "
                             f"(yinxin ca revoke {row.serial.upper()} --reason unspecified)",
                             application=app.id, serial=row.serial.upper())
        raise StateError(f"application {app.id} was issued meanwhile: serial {row.serial.upper()}",
                         application=app.id, serial=row.serial.upper())
    if app.kind != "new" and app.predecessor_serial:
        status = conn.execute(sa.select(certificates.c.status).where(
            certificates.c.ca_id == ca_id, certificates.c.serial == app.predecessor_serial)).scalar()
        if status != "issued":
            raise StateError(f"certificate {app.predecessor_serial.upper()} is {status} now: not renewed",
                             serial=app.predecessor_serial.upper(), status=status)
        successor = conn.execute(sa.select(certificates.c.serial).where(
            certificates.c.ca_id == ca_id, certificates.c.predecessor_serial == app.predecessor_serial,
            certificates.c.application_id != app.id, certificates.c.status.in_(live))).scalar()
        if successor is not None:
            raise Conflict(f"certificate {app.predecessor_serial.upper()} was renewed meanwhile: serial "
                           f"{successor.upper()}", serial=app.predecessor_serial.upper(),
                           successor=successor.upper())


def _serial(octets: bytes) -> int | None:
    """16 octets from the CSPRNG as a serial: 127 bits, top bit clear so the DER INTEGER is positive
    and 16 octets at most; None below 2⁶⁴ (draw again)."""
    value = int.from_bytes(octets, "big") >> 1
    return value if value >= 1 << 64 else None


def _new_serial(home: Home) -> int:
    while (value := _serial(home.rand.token_bytes(16))) is None:
        pass
    return value


def _new_serials(home: Home, count: int) -> list[int]:
    """`count` serials drawn in one call (bulk issuance draws a batch's); one below 2⁶⁴ is drawn
    again on its own."""
    drawn = home.rand.token_bytes(16 * count)
    return [_serial(drawn[i:i + 16]) or _new_serial(home) for i in range(0, 16 * count, 16)]


class CertificateAuthority:
    """CA operations on a home.  Methods that sign take the CA key's password."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.ra = RegistrationAuthority(home)

    # ---------------------------------------------------------------- CAs

    def get(self, name: str | None = None) -> CaInfo:
        with self.home.store.read() as conn:
            row = get_ca_row(conn, self.home, name)
            parent = None
            if row["parent_id"] is not None:
                parent = conn.execute(_CA_NAME_BY_ID, {"id": row["parent_id"]}).scalar()
        return _ca_info(row, parent)

    def cas(self) -> list[CaInfo]:
        with self.home.store.read() as conn:
            rows = conn.execute(_CA_LIST).mappings().all()
            names = {r["id"]: r["name"] for r in rows}
        return [_ca_info(r, names.get(r["parent_id"])) for r in rows]

    def chain(self, ca: CaInfo, cas: Sequence[CaInfo] = ()) -> tuple[asn1_x509.Certificate, ...]:
        """The CA's certificate and its ancestors, issuing CA first, root last; the ancestors taken
        from `cas` (the home's CAs, when the caller read them already), else read one by one."""
        out, current = [], ca
        while True:
            out.append(current.certificate)
            if current.parent is None:
                return tuple(out)
            current = ca_named(cas, current.parent) or self.get(current.parent)

    def load_key(self, ca: CaInfo, password: bytes | None) -> PrivateKey:
        return open_key_file(ca.key_file, password, ca.public_key(), owner=f"CA {ca.name}", ca=ca.name)

    def init_ca(self, *, name: str, subject: str, algorithm: str, password: bytes, days: int = 3650,
                parent: str | None = None, parent_password: bytes | None = None,
                base_url: str | None = None, sm2_id: bytes | None = None, actor: "Actor") -> CaInfo:
        """A self-signed root, or a subordinate CA signed by `parent` (profile `subca`); a CA operator's act
        — or, for the first root of a home with no account and no CA yet, `Accounts.bootstrap_actor()`'s."""
        from .accounts.accounts import Accounts
        if getattr(actor, "account_id", None) == Accounts.BOOTSTRAP and actor.is_service:
            accounts = Accounts.of(self.home)
            accounts.require(actor, service_ok=True)            # genuine, of this home
            if parent is not None or not accounts.bootstrap_open():
                raise PolicyError("only a new home's first root CA is set up without a session: log in as a CA "
                                  "operator", field="actor")
            operator = actor.account_id
        else:
            operator = _require(self.home, actor, "ca_operator")
        if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
            raise PolicyError("a CA name is letters, digits, - and _ (at most 64)", field="name")
        if algorithm not in ALGORITHMS:
            raise UnknownAlgorithm(f"unknown algorithm {algorithm!r} (one of: {', '.join(ALGORITHMS)})",
                                   algorithm=algorithm)
        if not password:
            raise PolicyError("a CA key is always encrypted: a password is needed", field="password")
        if days < 1:
            raise PolicyError("--days must be at least 1", field="days")
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise PolicyError("--base-url must be an http:// or https:// URL", field="base_url")
        distid = DEFAULT_DISTID if sm2_id is None else sm2_id
        with self.home.store.read() as conn:
            if conn.execute(sa.select(cas.c.id).where(cas.c.name == name)).first() is not None:
                raise Conflict(f"a CA named {name!r} exists already", ca=name)
        subject_name = parse_name(subject)
        now = self.home.clock.now()
        not_before = now - CLOCK_SKEW_ALLOWANCE
        not_after = now + timedelta(days=days)
        key = generate_key(algorithm, rand=self.home.rand)
        serial = _new_serial(self.home)
        if parent is None:
            issuer_info, issuer_key, issuer_name, aki = None, key, subject_name, None
            path_length = None
        else:
            issuer_info = self.get(parent)
            issuer_key = self.load_key(issuer_info, parent_password)
            issuer_cert = issuer_info.certificate
            issuer_name = issuer_cert.subject
            aki = issuer_cert.key_identifier or issuer_info.public_key().key_identifier()
            profile = self.home.profiles.get("subca")
            if algorithm not in profile.algorithms:
                raise PolicyError(f"profile subca does not allow {algorithm}", field="algorithm")
            check_subject(profile, subject_name)
            path_length = profile.path_length
            not_after = min(not_after, issuer_cert["tbs_certificate"]["validity"]["not_after"].native)
        urls = issuer_info.urls() if issuer_info is not None else {}
        spec = CertificateSpec(
            subject=subject_name, issuer=issuer_name, serial=serial, not_before=not_before, not_after=not_after,
            public_key=key.public_key(), issuer_key_identifier=aki,
            key_usage=frozenset({"key_cert_sign", "crl_sign", "digital_signature"}), ca=True,
            path_length=path_length,
            crl_urls=(urls["crl"],) if urls else (), ocsp_urls=(urls["ocsp"],) if urls else (),
            ca_issuers_urls=(urls["ca_issuers"],) if urls else ())
        signing_distid = (issuer_info.distid if issuer_info else distid)
        tbs = build_tbs_certificate(spec, issuer_key.public_key().signature_algorithm())
        cert = sign_certificate(tbs, issuer_key, distid=signing_distid if issuer_key.algorithm == "sm2" else None)
        key_file = self.home.ca_dir(name) / "ca.key.pem"
        if key_file.exists():
            raise Conflict(f"{key_file} exists: refusing to overwrite a CA key", ca=name)
        write_file_atomic(key_file, key.to_pem(password, rand=self.home.rand))
        write_file_atomic(self.home.ca_dir(name) / "ca.pem", certificate_to_pem(cert), mode=0o644)
        cert_digest = hashlib.sha256(cert.dump()).hexdigest()
        with self.home.store.transaction() as conn:
            parent_id = issuer_info.id if issuer_info else None
            self.home.store.insert(
                conn, cas, name=name, algorithm=algorithm, subject=name_to_text(subject_name),
                parent_id=parent_id, serial=f"{serial:x}", cert_der=cert.dump(), key_file=str(key_file),
                base_url=base_url.rstrip("/") if base_url else None, distid=distid, created_at=now)
            if issuer_info is not None:
                # the sub-CA's certificate is one the parent issued: it is revocable like any other
                profile = self.home.profiles.get("subca")
                self.home.store.insert(
                    conn, certificates, ca_id=issuer_info.id, serial=f"{serial:x}", profile="subca",
                    subject=name_to_text(subject_name), public_key_fp=key.public_key().fingerprint(),
                    not_before=not_before, not_after=not_after, status="issued", tbs_der=tbs.dump(),
                    cert_der=cert.dump(), status_changed_at=now, retention_years=profile.retention_years,
                    created_at=now)
            audit.append(conn, at=now, actor=operator, action="ca.init", target=f"ca:{name}",
                         details={"subject": name_to_text(subject_name), "algorithm": algorithm,
                                  "parent": parent, "serial": format_serial(serial), "base_url": base_url},
                         result_digest=cert_digest)
            audit.maybe_checkpoint(conn, at=now, ca_name=name, key=key, distid=distid, force=True)
        return self.get(name)

    # ---------------------------------------------------------------- issuance

    def issue(self, app_id: int, *, password: bytes | None = None, ca_key: PrivateKey | None = None,
              actor: "Actor") -> Issued:
        """Issue the certificate of an approved application (the numbered cycle above); a CA
        operator's act.  A `person` certificate whose key is an account's personal key is bound to
        that account.

        The CA key is opened with `password`, or given already loaded as `ca_key` (a caller
        that issues several certificates, or signs something else too, opens it once)."""
        if (password is None) == (ca_key is None):
            raise ValueError("give the CA key's password or the loaded CA key")
        operator = _require(self.home, actor, "ca_operator")
        app = self.ra.get(app_id)
        # 1. the RA's checks, again, at the moment of issuance
        if app.state != "approved":
            raise StateError(f"application {app_id} is {app.state}; only an approved application is issued",
                             application=app_id, state=app.state)
        profile = self.home.profiles.get(app.profile)
        ca = self.get(app.ca)
        if ca_key is None:
            key = self.load_key(ca, password)
        else:
            if ca_key.public_key() != ca.public_key():
                raise PolicyError(f"the key given is not the key of CA {ca.name}", ca=ca.name)
            key = ca_key
        return self._issue(ca, key, app, profile, operator)

    def _check_issuable(self, ca: CaInfo, profile: Profile, subject: str,
                        subject_alt_names: Sequence[tuple[str, str]], public_key: PublicKey) -> datetime:
        """Step 1's checks, which need no database change; returns the CA certificate's notAfter."""
        if profile.ca:
            raise PolicyError(f"profile {profile.name} is for CA certificates: create a CA with "
                              "`ca init --parent` instead", profile=profile.name)
        check_subject(profile, parse_name(subject))
        check_san(profile, subject_alt_names)
        if public_key.algorithm not in profile.algorithms:
            raise PolicyError(f"profile {profile.name} does not allow {public_key.algorithm} keys",
                              profile=profile.name)
        ca_not_after = ca.certificate["tbs_certificate"]["validity"]["not_after"].native
        if ca_not_after <= self.home.clock.now():
            raise StateError(f"CA {ca.name}'s certificate has expired", ca=ca.name)
        return ca_not_after

    def _issue(self, ca: CaInfo, ca_key: PrivateKey, app: Application, profile: Profile,
               operator: str) -> Issued:
        subject = parse_name(app.subject)
        public_key = public_key_from_spki(app.public_key_der)
        ca_not_after = self._check_issuable(ca, profile, app.subject, app.subject_alt_names, public_key)
        now = self.home.clock.now()
        not_before = now - CLOCK_SKEW_ALLOWANCE
        ca_cert = ca.certificate
        not_after = min(now + timedelta(days=profile.validity_days), ca_not_after)
        urls = ca.urls()
        slot = active_key(profile, app.id_number)
        # 2. reserve a serial and store the TBS before signing
        for _attempt in range(5):
            serial = _new_serial(self.home)
            spec = CertificateSpec(
                subject=subject, issuer=ca_cert.subject, serial=serial, not_before=not_before, not_after=not_after,
                public_key=public_key,
                issuer_key_identifier=ca_cert.key_identifier or ca.public_key().key_identifier(),
                key_usage=profile.key_usage, extended_key_usage=profile.extended_key_usage,
                subject_alt_names=app.subject_alt_names,
                crl_urls=(urls["crl"],) if urls else (), ocsp_urls=(urls["ocsp"],) if urls else (),
                ca_issuers_urls=(urls["ca_issuers"],) if urls else (), ocsp_no_check=profile.ocsp_no_check,
                extended_key_usage_critical=profile.extended_key_usage_critical)
            tbs = build_tbs_certificate(spec, ca_key.public_key().signature_algorithm())
            try:
                with self.home.store.transaction() as conn:
                    # re-checked under the store's write lock: another process may have issued
                    # (or renewed) meanwhile, and a crash may have left a reservation behind
                    ensure_still_issuable(conn, ca.id, app)
                    if app.kind == "new":
                        ensure_slot_free(conn, slot, now)
                    self.home.store.insert(
                        conn, certificates, ca_id=ca.id, serial=f"{serial:x}", application_id=app.id,
                        profile=profile.name, subject=app.subject, id_number=app.id_number,
                        active_key=slot if app.kind == "new" else None,
                        public_key_fp=public_key.fingerprint(), not_before=not_before, not_after=not_after,
                        status="reserved", tbs_der=tbs.dump(), status_changed_at=now,
                        predecessor_serial=app.predecessor_serial,
                        retention_years=profile.retention_years, created_at=now)
                    audit.append(conn, at=now, actor=operator, action="certificate.signing",
                                 target=f"{ca.name}:{serial:x}",
                                 details={"application": app.id, "profile": profile.name,
                                          "tbs_sha256": hashlib.sha256(tbs.dump()).hexdigest()})
                break
            except Conflict as exc:
                if "uq_certificates_ca_serial" in str(exc.data.get("detail", "")) or \
                        "certificates.ca_id, certificates.serial" in str(exc.data.get("detail", "")):
                    continue  # a serial collision: draw again, never reuse
                raise
        else:  # pragma: no cover - five 127-bit collisions in a row
            raise Conflict("could not reserve a unique serial", ca=ca.name)
        # 3. sign
        cert = sign_certificate(tbs, ca_key, distid=ca.sign_distid)
        cert_der = cert.dump()
        digest = hashlib.sha256(cert_der).hexdigest()
        with self.home.store.transaction() as conn:
            audit.append(conn, at=now, actor=operator, action="certificate.signed",
                         target=f"{ca.name}:{serial:x}", result_digest=digest)
        # 4. record the certificate; mark the application issued
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(certificates).where(certificates.c.ca_id == ca.id,
                                                       certificates.c.serial == f"{serial:x}")
                         .values(cert_der=cert_der, status="issued", status_changed_at=self.home.clock.now()))
            if app.kind != "new" and app.predecessor_serial:
                # renewal/re-key supersedes the predecessor: one active certificate stays; the
                # revocation's time is read under the write lock, like every status change's
                changed_at = self.home.clock.now()
                conn.execute(sa.update(certificates).where(
                    certificates.c.ca_id == ca.id, certificates.c.serial == app.predecessor_serial,
                    certificates.c.status.in_(("issued", "held"))).values(
                    status="revoked", revoked_at=changed_at, revocation_reason="superseded", active_key=None,
                    status_changed_at=changed_at))
                if slot is not None:
                    conn.execute(sa.update(certificates).where(
                        certificates.c.ca_id == ca.id, certificates.c.serial == f"{serial:x}")
                        .values(active_key=slot))
            conn.execute(sa.update(applications).where(applications.c.id == app.id)
                         .values(state="issued", issued_serial=f"{serial:x}"))
            audit.append(conn, at=now, actor=operator, action="certificate.issued",
                         target=f"{ca.name}:{serial:x}",
                         details={"application": app.id, "subject": app.subject, "kind": app.kind,
                                  "predecessor": app.predecessor_serial},
                         result_digest=digest)
            if profile.name == "person":
                from .accounts.keys import bind_issued
                bind_issued(conn, public_key_fp=public_key.fingerprint(), ca_name=ca.name, serial=f"{serial:x}",
                            actor_id=operator, at=now)
            audit.maybe_checkpoint(conn, at=now, ca_name=ca.name, key=ca_key, distid=ca.distid)
        return Issued(self.show(f"{serial:x}", ca=ca.name), cert, self.chain(ca))

    def renew(self, serial: str, *, password: bytes | None, csr: bytes | None = None,
              actor: "Actor", ca: str | None = None) -> Issued:
        """Renew with the same key inside the profile's renewal window, or re-key with a new CSR."""
        operator = _require(self.home, actor, "ca_operator")
        record = self.show(serial, ca=ca)
        if record.status != "issued":
            raise StateError(f"certificate {record.serial.upper()} is {record.status}; only a valid "
                             "certificate is renewed", serial=record.serial.upper(), status=record.status)
        profile = self.home.profiles.get(record.profile)
        ca_info = self.get(record.ca)
        now = self.home.clock.now()
        if record.not_after <= now:
            raise StateError(f"certificate {record.serial.upper()} expired on {record.not_after:%Y-%m-%d}; "
                             "apply for a new one", serial=record.serial.upper())
        old_cert = load_certificate(record.cert_der or b"")
        old_key = certificate_public_key(old_cert)
        if csr is None:
            window_opens = record.not_after - timedelta(days=profile.renewal_window_days)
            if now < window_opens:
                raise StateError(f"certificate {record.serial.upper()} can be renewed from "
                                 f"{window_opens:%Y-%m-%d} (renewal window {profile.renewal_window_days} days "
                                 "before expiry)", serial=record.serial.upper(),
                                 window_opens=window_opens.isoformat())
            kind, new_key, csr_der = "renew", old_key, None
        else:
            request = load_csr(csr)
            new_key = verify_csr(request, distid=ca_info.distid)
            if new_key == old_key:
                raise PolicyError("the CSR has the certificate's current key: re-key needs a new key "
                                  "(renew without --csr keeps the key)", field="csr")
            kind, csr_der = "rekey", request.dump()
        old_app = self.ra.get(record.application_id) if record.application_id else None
        # refuse before the renewal application is recorded: a refusal changes nothing
        self._check_issuable(ca_info, profile, record.subject, old_app.subject_alt_names if old_app else (),
                             new_key)
        key = self.load_key(ca_info, password)
        with self.home.store.transaction() as conn:
            app_id = self.home.store.insert(
                conn, applications, ca_id=ca_info.id, kind=kind, profile=record.profile,
                subject=record.subject, applicant=old_app.applicant if old_app else operator,
                id_number=record.id_number, public_key_der=new_key.to_der(), csr_der=csr_der,
                key_generated=False,
                subject_alt_names=json.dumps([list(s) for s in (old_app.subject_alt_names if old_app else ())]),
                predecessor_serial=record.serial, state="approved", created_at=now, decided_by=operator,
                decided_at=now, decision_comment=f"{kind} of {record.serial.upper()}")
            audit.append(conn, at=now, actor=operator, action=f"certificate.{kind}",
                         target=f"{ca_info.name}:{record.serial}", details={"application": app_id})
        return self._issue(ca_info, key, self.ra.get(app_id), profile, operator)

    # ---------------------------------------------------------------- status changes

    def _change(self, serial: str, ca: str | None, actor: "Actor", action: str, allowed: Sequence[str],
                values: dict[str, Any], details: dict[str, Any]) -> CertificateRecord:
        """A status change: an RA decision (RA officer or CA operator), signed in the certificate's chain."""
        from .accounts import decisions
        operator = _require(self.home, actor, "ra_officer", "ca_operator")
        record = self.show(serial, ca=ca)
        if record.status not in allowed:
            verb = action.split(".")[1]
            raise StateError(f"certificate {record.serial.upper()} is {record.status}: cannot {verb} it",
                             serial=record.serial.upper(), status=record.status)
        ca_info = self.get(record.ca)
        signer = decisions.ra_signer(self.home, actor)
        with self.home.store.transaction() as conn:
            # the time of the change is read under the store's write lock, so status times follow
            # commit order: a CRL generated before this commit has an earlier (or equal) thisUpdate,
            # and the next delta CRL lists this change
            now = self.home.clock.now()
            result = conn.execute(sa.update(certificates).where(
                certificates.c.ca_id == ca_info.id, certificates.c.serial == record.serial,
                certificates.c.status == record.status).values(status_changed_at=now, **{
                    k: (now if v is _NOW else v) for k, v in values.items()}))
            if result.rowcount != 1:
                raise StateError(f"certificate {record.serial.upper()} changed meanwhile; try again",
                                 serial=record.serial.upper())
            decision = decisions.append(
                conn, self.home, chain=f"certificate:{ca_info.name}:{record.serial}", actor=actor, signer=signer,
                at=now, bootstrap=signer is None,
                fields={"action": action.split(".")[1], "ca": ca_info.name,
                        "serial": decisions.openssl_serial(record.serial), "subject": record.subject,
                        "was": record.status, **details})
            audit.append(conn, at=now, actor=operator, action=action,
                         target=f"{ca_info.name}:{record.serial}",
                         details={**details, "decision": decision.seq, "signed": decision.signature is not None},
                         result_digest=decision.sha256)
        return self.show(record.serial, ca=ca_info.name)

    def hold(self, serial: str, *, actor: "Actor", ca: str | None = None) -> CertificateRecord:
        """Suspend (certificateHold): e.g. the medium was reported lost (补办: hold first)."""
        return self._change(serial, ca, actor, "certificate.hold", ("issued",),
                            {"status": "held", "revoked_at": _NOW, "revocation_reason": "certificate_hold",
                             "released_at": None}, {})

    def release(self, serial: str, *, actor: "Actor", ca: str | None = None) -> CertificateRecord:
        """Resume a held certificate (恢复); delta CRLs then list it with removeFromCRL."""
        return self._change(serial, ca, actor, "certificate.release", ("held",),
                            {"status": "issued", "revoked_at": None, "revocation_reason": None,
                             "released_at": _NOW}, {})

    def revoke(self, serial: str, *, reason: str, actor: "Actor", ca: str | None = None) -> CertificateRecord:
        """Revoke for an RFC 5280 reason; a held certificate can be revoked, a revoked one cannot change.
        A reserved serial (a crash between signing and recording, see `check()`) may have been
        signed, so it can be revoked too."""
        reason = normalise_reason(reason)
        return self._change(serial, ca, actor, "certificate.revoke", ("issued", "held", "reserved"),
                            {"status": "revoked", "revoked_at": _NOW, "revocation_reason": reason,
                             "active_key": None}, {"reason": reason})

    # ---------------------------------------------------------------- queries

    def show(self, serial: str, *, ca: str | None = None) -> CertificateRecord:
        stored = parse_serial(serial)
        with self.home.store.read() as conn:
            rows = conn.execute(_CERTIFICATE_BY_SERIAL, {"serial": stored}).mappings().all() if ca is None else \
                conn.execute(_CERTIFICATE_BY_SERIAL_IN_CA, {"serial": stored, "ca": ca}).mappings().all()
        if not rows:
            raise NotFound(f"no certificate with serial {stored.upper()}" + (f" in CA {ca}" if ca else ""),
                           serial=stored.upper())
        if len(rows) > 1:
            raise PolicyError(f"serial {stored.upper()} exists in several CAs: name one with --ca",
                              serial=stored.upper())
        return _record(rows[0])

    def certificate_der(self, serial: str, *, ca: str | None = None) -> bytes:
        record = self.show(serial, ca=ca)
        if record.cert_der is None:
            raise StateError(f"certificate {record.serial.upper()} was reserved but never recorded as issued",
                             serial=record.serial.upper())
        return record.cert_der

    def list(self, *, status: str | None = None, subject: str | None = None, ca: str | None = None,
             limit: int | None = None) -> list[CertificateRecord]:
        query = sa.select(certificates, cas.c.name.label("ca_name")).join(cas, cas.c.id == certificates.c.ca_id)
        if status is not None:
            if status not in ("reserved", "issued", "held", "revoked", "expired"):
                raise PolicyError(f"unknown status {status!r} (reserved, issued, held, revoked, expired)",
                                  field="status")
            if status == "expired":
                query = query.where(certificates.c.not_after <= self.home.clock.now())
            else:
                query = query.where(certificates.c.status == status)
        if subject:
            query = query.where(certificates.c.subject.contains(subject, autoescape=True))
        if ca is not None:
            query = query.where(cas.c.name == self.get(ca).name)
        query = query.order_by(certificates.c.id)
        if limit:
            query = query.limit(limit)
        with self.home.store.read() as conn:
            return [_record(r) for r in conn.execute(query).mappings()]

    def stats(self) -> dict[str, Any]:
        now = self.home.clock.now()
        with self.home.store.read() as conn:
            by_status = conn.execute(sa.select(cas.c.name, certificates.c.status, sa.func.count())
                                     .join(cas, cas.c.id == certificates.c.ca_id)
                                     .group_by(cas.c.name, certificates.c.status)).all()
            expired = dict(conn.execute(sa.select(cas.c.name, sa.func.count())
                                        .join(cas, cas.c.id == certificates.c.ca_id)
                                        .where(certificates.c.not_after <= now,
                                               certificates.c.status == "issued")
                                        .group_by(cas.c.name)).all())
            apps = conn.execute(sa.select(applications.c.state, sa.func.count())
                                .group_by(applications.c.state)).all()
        out: dict[str, Any] = {"cas": {}, "applications": {state: n for state, n in apps}}
        for ca_name, status, n in by_status:
            out["cas"].setdefault(ca_name, {})[status] = n
        for ca_name, n in expired.items():
            out["cas"].setdefault(ca_name, {})["expired"] = n
        for ca_info in self.cas():
            out["cas"].setdefault(ca_info.name, {})
        return out

    def check(self, *, ca: str | None = None) -> list[CertificateRecord]:
        """Serials reserved but never recorded as issued: possibly signed, so revocable."""
        return self.list(status="reserved", ca=ca)


class _Now:
    """Marker: 'the time of this change' inside `_change` values."""


_NOW = _Now()


def _years_before(at: datetime, years: int) -> datetime:
    try:
        return at.replace(year=at.year - years)
    except ValueError:  # 29 February
        return at.replace(year=at.year - years, day=28)


@dataclass(frozen=True)
class PurgedRecord:
    ca: str
    serial: str
    subject: str
    ended: datetime
    retention_years: int


def purge(authority: CertificateAuthority, *, actor: "Actor", dry_run: bool = False) -> list[PurgedRecord]:
    """Remove the records of certificates whose retention period (5 or 10 years after the
    certificate stopped being valid: expiry, or revocation if earlier) has passed; nothing younger.
    Applications and evidence go with their last certificate.  The audit log and the signed
    decisions are kept whole.  A CA operator's act."""
    home = authority.home
    operator = _require(home, actor, "ca_operator")
    now = home.clock.now()
    from .store import evidence as evidence_table
    with home.store.transaction() as conn:
        rows = conn.execute(sa.select(certificates.c.id, certificates.c.serial, certificates.c.subject,
                                      certificates.c.not_after, certificates.c.revoked_at,
                                      certificates.c.status, certificates.c.retention_years,
                                      certificates.c.application_id, cas.c.name.label("ca_name"))
                            .join(cas, cas.c.id == certificates.c.ca_id)).all()
        ca_serials = {r.serial for r in conn.execute(sa.select(cas.c.serial))}
        doomed: list[tuple[Any, PurgedRecord]] = []
        for r in rows:
            if r.status == "reserved" or r.serial in ca_serials:
                continue  # possibly-signed reservations and live CA certificates are never purged
            ended = r.not_after
            if r.status == "revoked" and r.revoked_at is not None and r.revoked_at < ended:
                ended = r.revoked_at
            if ended <= _years_before(now, r.retention_years):
                doomed.append((r, PurgedRecord(r.ca_name, r.serial, r.subject, ended, r.retention_years)))
        if dry_run or not doomed:
            return [p for _, p in doomed]
        ids = [r.id for r, _ in doomed]
        app_ids = {r.application_id for r, _ in doomed if r.application_id is not None}
        conn.execute(sa.delete(certificates).where(certificates.c.id.in_(ids)))
        still_used = {a for (a,) in conn.execute(sa.select(certificates.c.application_id)
                                                  .where(certificates.c.application_id.in_(app_ids)))}
        gone_apps = app_ids - still_used
        files: list[str] = []
        if gone_apps:
            files = [f for (f,) in conn.execute(sa.select(evidence_table.c.stored_path)
                                                .where(evidence_table.c.application_id.in_(gone_apps)))]
            conn.execute(sa.delete(evidence_table).where(evidence_table.c.application_id.in_(gone_apps)))
            conn.execute(sa.update(applications).where(applications.c.predecessor_serial.is_not(None),
                                                       applications.c.id.in_(gone_apps))
                         .values(predecessor_serial=None))
            conn.execute(sa.delete(applications).where(applications.c.id.in_(gone_apps)))
        still_referenced = {f for (f,) in conn.execute(sa.select(evidence_table.c.stored_path))}
        audit.append(conn, at=now, actor=operator, action="records.purge", target="certificates",
                     details={"serials": [f"{p.ca}:{p.serial.upper()}" for _, p in doomed],
                              "applications": sorted(gone_apps)})
    for f in set(files) - still_referenced:
        Path(f).unlink(missing_ok=True)
    return [p for _, p in doomed]
