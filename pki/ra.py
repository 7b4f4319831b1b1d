"""The registration authority: applications, evidence, approval, rejection, policy checks.

The RA never holds a CA key.  It decides *whether* a certificate may be
issued — profile, subject fields, one person one certificate (一人一证),
separation of duties (the approver is never the applicant) — and the CA
only signs what the RA approved.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa
from asn1crypto import x509 as asn1_x509

from . import audit
from .algorithms import PublicKey, generate_key, public_key_from_spki
from .errors import CertificateError, Conflict, NotFound, PolicyError, StateError
from .home import Home
from .keyfiles import write_file_atomic
from .profiles import Profile
from .store import applications, cas, certificates, evidence
from .x509 import (_check_san, csr_subject, csr_subject_alt_names, load_csr, name_to_text, parse_name,
                   verify_csr)

if TYPE_CHECKING:
    from .accounts.actor import Actor

# asn1crypto's attribute names → the short names profiles use
_SHORT = {"country_name": "C", "state_or_province_name": "ST", "locality_name": "L",
          "organization_name": "O", "organizational_unit_name": "OU", "common_name": "CN",
          "serial_number": "serialNumber", "email_address": "emailAddress", "user_id": "UID"}

PENDING = ("submitted", "approved")


@dataclass(frozen=True)
class Application:
    id: int
    ca: str
    kind: str
    profile: str
    subject: str
    applicant: str
    id_number: str | None
    state: str
    key_generated: bool
    subject_alt_names: tuple[tuple[str, str], ...]
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str | None
    issued_serial: str | None
    predecessor_serial: str | None
    evidence: tuple[tuple[str, str], ...]      # (file name, sha256)
    public_key_der: bytes
    submitted_by: str | None = None            # the RA officer who filed it for the applicant

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ca": self.ca, "kind": self.kind, "profile": self.profile,
                "subject": self.subject, "applicant": self.applicant, "id_number": self.id_number,
                "state": self.state, "key_generated": self.key_generated,
                "subject_alt_names": [f"{t}:{v}" for t, v in self.subject_alt_names],
                "submitted_by": self.submitted_by,
                "created_at": self.created_at.isoformat(), "decided_by": self.decided_by,
                "decided_at": self.decided_at.isoformat() if self.decided_at else None,
                "comment": self.decision_comment, "issued_serial": self.issued_serial,
                "evidence": [{"file": f, "sha256": d} for f, d in self.evidence]}


def subject_attributes(name: asn1_x509.Name) -> set[str]:
    names = set()
    for rdn in name.chosen:
        for ava in rdn:
            key = ava["type"].native
            names.add(_SHORT.get(key, key))
    return names


def check_subject(profile: Profile, name: asn1_x509.Name) -> None:
    present = subject_attributes(name)
    missing = profile.required_subject - present
    if missing:
        raise PolicyError(f"profile {profile.name} requires subject attribute(s) "
                          f"{', '.join(sorted(missing))}", field="subject", profile=profile.name)
    extra = present - profile.allowed_subject
    if extra:
        raise PolicyError(f"profile {profile.name} does not allow subject attribute(s) "
                          f"{', '.join(sorted(extra))}", field="subject", profile=profile.name)


def check_san(profile: Profile, sans: Sequence[tuple[str, str]]) -> None:
    if profile.subject_alt_names == "required" and not sans:
        raise PolicyError(f"profile {profile.name} requires a subjectAltName (e.g. --san dns:host.example)",
                          field="subject_alt_names", profile=profile.name)
    if profile.subject_alt_names == "forbidden" and sans:
        raise PolicyError(f"profile {profile.name} does not allow subjectAltNames",
                          field="subject_alt_names", profile=profile.name)


def check_id_number(profile: Profile, id_number: str | None) -> str | None:
    id_number = (id_number or "").strip() or None
    if profile.id_number == "required" and not id_number:
        raise PolicyError(f"profile {profile.name} requires an identity number (--id-number)",
                          field="id_number", profile=profile.name)
    if profile.id_number == "forbidden" and id_number:
        raise PolicyError(f"profile {profile.name} takes no identity number", field="id_number",
                          profile=profile.name)
    if id_number is not None and (len(id_number) > 64 or not id_number.isalnum()):
        raise PolicyError("an identity number is letters and digits, at most 64", field="id_number")
    return id_number


def active_key(profile: Profile, id_number: str | None) -> str | None:
    """The 一人一证 slot: one active certificate per identity number and usage."""
    if not profile.one_per_person or not id_number:
        return None
    return f"{id_number}|{profile.usage}"


def release_expired_slot(conn: Any, slot: str, now: datetime) -> None:
    """An expired certificate is no longer active: free its slot."""
    conn.execute(sa.update(certificates).where(certificates.c.active_key == slot,
                                               certificates.c.not_after <= now).values(active_key=None))


def ensure_slot_free(conn: Any, slot: str | None, now: datetime, *, except_serial: str | None = None) -> None:
    if slot is None:
        return
    release_expired_slot(conn, slot, now)
    row = conn.execute(sa.select(certificates.c.serial, cas.c.name).join(cas, cas.c.id == certificates.c.ca_id)
                       .where(certificates.c.active_key == slot)).first()
    if row is not None and row.serial != except_serial:
        id_number, usage = slot.split("|", 1)
        raise Conflict(f"identity number {id_number} already has an active {usage} certificate, "
                       f"serial {row.serial.upper()} (CA {row.name}); revoke it or renew it instead",
                       serial=row.serial.upper(), id_number=id_number, usage=usage)


def _ensure_no_active_or_pending(conn: Any, slot: str, id_number: str | None, profile: str,
                                 now: datetime) -> None:
    """一人一证: no active certificate and no pending application for this person and usage."""
    ensure_slot_free(conn, slot, now)
    pending = conn.execute(sa.select(applications.c.id).where(
        applications.c.id_number == id_number, applications.c.profile == profile,
        applications.c.state.in_(PENDING))).first()
    if pending is not None:
        raise Conflict(f"identity number {id_number} already has a pending {profile} "
                       f"application {pending.id}", application=pending.id, id_number=id_number)


class RegistrationAuthority:
    def __init__(self, home: Home) -> None:
        self.home = home

    # ---------------------------------------------------------------- queries

    def get(self, app_id: int) -> Application:
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(applications, cas.c.name.label("ca_name"))
                               .join(cas, cas.c.id == applications.c.ca_id)
                               .where(applications.c.id == app_id)).mappings().first()
            if row is None:
                raise NotFound(f"no application {app_id}", application=app_id)
            ev = conn.execute(sa.select(evidence.c.filename, evidence.c.sha256)
                              .where(evidence.c.application_id == app_id).order_by(evidence.c.id)).all()
        return _application(row, ev)

    # ---------------------------------------------------------------- apply

    def apply(self, *, ca: str | None, profile: str, subject: str, actor: "Actor", applicant: str | None = None,
              id_number: str | None = None, csr: bytes | None = None, generate_key_out: str | Path | None = None,
              key_password: bytes | None = None, key_algorithm: str | None = None,
              key_scheme: str = "aes256", evidence_files: Sequence[str | Path] = (),
              subject_alt_names: Sequence[tuple[str, str]] = ()) -> Application:
        """Record an application.  Exactly one of `csr` or `generate_key_out` is given.

        The applicant is the actor, or — filed by an RA officer for someone — `applicant`; neither
        may later decide it."""
        from .accounts.accounts import Accounts
        from .ca import get_ca_row  # the CA row, not the CA key
        if (csr is None) == (generate_key_out is None):
            raise ValueError("give either a CSR or a path for a key generated here")
        applicant = (applicant if applicant is not None else getattr(actor, "account_id", "")).strip()
        if not applicant:
            raise PolicyError("an application needs an applicant", field="applicant")
        if applicant != getattr(actor, "account_id", None):
            Accounts.of(self.home).require(actor, any_of=("ra_officer",))
            submitted_by: str | None = actor.account_id
        else:
            Accounts.of(self.home).require(actor)
            submitted_by = None
        prof = self.home.profiles.get(profile)
        if prof.ca:
            raise PolicyError(f"profile {profile} is for CAs: use `ca init --parent`", profile=profile)
        name = parse_name(subject)
        check_subject(prof, name)
        id_number = check_id_number(prof, id_number)
        now = self.home.clock.now()
        with self.home.store.read() as conn:
            ca_row = get_ca_row(conn, self.home, ca)
        distid = ca_row["distid"]
        sans = tuple(subject_alt_names)
        if csr is not None:
            request = load_csr(csr)
            public_key = verify_csr(request, distid=distid)
            csr_name = csr_subject(request)
            if csr_name.native and csr_name.dump() != name.dump() and \
                    name_to_text(csr_name) != name_to_text(name):
                raise CertificateError(f"the CSR's subject ({name_to_text(csr_name)}) differs from the "
                                       f"application's subject ({name_to_text(name)})", field="subject")
            sans = sans or csr_subject_alt_names(request)
            csr_der = request.dump()
        else:
            if not key_password:
                raise PolicyError("a key generated here is written encrypted: a key password is needed",
                                  field="key_password")
            algorithm = key_algorithm or ca_row["algorithm"]
            if Path(generate_key_out).exists():
                raise PolicyError(f"{generate_key_out} exists; not overwriting a key file",
                                  field="key_out")
            public_key = None
            csr_der = None
        algorithm_name = public_key.algorithm if public_key is not None else algorithm
        if algorithm_name not in prof.algorithms:
            raise PolicyError(f"profile {profile} does not allow {algorithm_name} keys "
                              f"(allowed: {', '.join(prof.algorithms)})", field="algorithm",
                              profile=profile)
        check_san(prof, sans)
        for kind, value in sans:   # refused now, not after approval when the certificate is built
            _check_san(kind, value)
        slot = active_key(prof, id_number)
        if slot is not None:
            # 一人一证 refuses before a key is generated or evidence stored (checked again below)
            with self.home.store.transaction() as conn:
                _ensure_no_active_or_pending(conn, slot, id_number, profile, now)
        stored = [self._store_evidence(Path(p)) for p in evidence_files]
        generated: Path | None = None
        if public_key is None:
            key = generate_key(algorithm, rand=self.home.rand)
            write_file_atomic(generate_key_out, key.to_pem(key_password, scheme=key_scheme, rand=self.home.rand))
            generated = Path(generate_key_out)
            public_key = key.public_key()
        try:
            app_id = self._record_application(
                ca_row, prof, name, applicant, id_number, public_key, csr_der, csr is None, sans, slot,
                stored, now, actor.account_id, submitted_by)
        except BaseException:
            if generated is not None:  # no key file for an application that was not recorded
                generated.unlink(missing_ok=True)
            raise
        return self.get(app_id)

    def _record_application(self, ca_row: Any, prof: Profile, name: asn1_x509.Name, applicant: str,
                            id_number: str | None, public_key: PublicKey, csr_der: bytes | None,
                            key_generated: bool, sans: tuple[tuple[str, str], ...], slot: str | None,
                            stored: Sequence[tuple[str, str, int, Path]], now: datetime, actor_id: str,
                            submitted_by: str | None) -> int:
        profile = prof.name
        with self.home.store.transaction() as conn:
            if slot is not None:
                _ensure_no_active_or_pending(conn, slot, id_number, profile, now)
            app_id = self.home.store.insert(
                conn, applications, ca_id=ca_row["id"], kind="new", profile=profile,
                subject=name_to_text(name), applicant=applicant.strip(), submitted_by=submitted_by,
                id_number=id_number,
                public_key_der=public_key.to_der(), csr_der=csr_der, key_generated=key_generated,
                subject_alt_names=json.dumps([list(s) for s in sans]), state="submitted",
                created_at=now)
            for filename, digest, size, path in stored:
                self.home.store.insert(conn, evidence, application_id=app_id, filename=filename,
                                       sha256=digest, size=size, stored_path=str(path))
            audit.append(conn, at=now, actor=actor_id, action="application.submit",
                         target=f"application:{app_id}",
                         details={"ca": ca_row["name"], "profile": profile, "subject": name_to_text(name),
                                  "applicant": applicant.strip(),
                                  "id_number": id_number, "key_generated": key_generated,
                                  "evidence": [{"file": f, "sha256": d} for f, d, _, _ in stored]},
                         result_digest=public_key.fingerprint())
        return app_id

    def _store_evidence(self, path: Path) -> tuple[str, str, int, Path]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"cannot read evidence file {path}: {exc.strerror}", field="evidence") from None
        digest = hashlib.sha256(data).hexdigest()
        target = self.home.evidence_dir() / digest
        if not target.exists():
            write_file_atomic(target, data, mode=0o600)
        return path.name, digest, len(data), target

    # ---------------------------------------------------------------- decisions

    def approve(self, app_id: int, *, actor: "Actor", comment: str | None = None) -> Application:
        """An RA officer's approval (never the applicant's, nor the submitting officer's): a signed
        decision in the application's chain."""
        return self._decide(app_id, actor, "approved", comment)

    def reject(self, app_id: int, *, actor: "Actor", reason: str) -> Application:
        if not reason or not reason.strip():
            raise PolicyError("a rejection needs a reason", field="reason")
        return self._decide(app_id, actor, "rejected", reason)

    def _decide(self, app_id: int, actor: "Actor", state: str, comment: str | None) -> Application:
        from .accounts import decisions
        from .accounts.accounts import Accounts
        Accounts.of(self.home).require(actor, any_of=("ra_officer",))
        operator = actor.account_id
        app = self.get(app_id)
        # an approved application that can no longer be issued may still be rejected (withdrawn);
        # issuance re-checks "still approved" under the write lock, so the two cannot both happen
        decidable = ("submitted",) if state == "approved" else ("submitted", "approved")
        if app.state not in decidable:
            raise StateError(f"application {app_id} is {app.state}; only a "
                             f"{' or '.join(decidable)} application can be {state}",
                             application=app_id, state=app.state)
        if operator in (app.applicant, app.submitted_by):
            role = "applied for" if operator == app.applicant else "filed"
            raise PolicyError(f"{operator} {role} application {app_id} and cannot also decide it "
                              "(separation of duties)", application=app_id, operator=operator)
        signer = decisions.ra_signer(self.home, actor)
        now = self.home.clock.now()
        action = {"approved": "approve", "rejected": "reject"}[state]
        with self.home.store.transaction() as conn:
            updated = conn.execute(sa.update(applications).where(
                applications.c.id == app_id, applications.c.state == app.state).values(
                state=state, decided_by=operator, decided_at=now, decision_comment=comment))
            if updated.rowcount != 1:
                raise StateError(f"application {app_id} was decided by someone else meanwhile",
                                 application=app_id)
            decision = decisions.append(
                conn, self.home, chain=f"application:{app_id}", actor=actor, signer=signer, at=now,
                bootstrap=signer is None,
                fields={"action": action, "application": app_id, "ca": app.ca, "profile": app.profile,
                        "subject": app.subject, "applicant": app.applicant, "id_number": app.id_number,
                        "public_key_sha256": public_key_from_spki(app.public_key_der).fingerprint(),
                        "comment": comment, "was": app.state})
            audit.append(conn, at=now, actor=operator, action=f"application.{action}", target=f"application:{app_id}",
                         details={"comment": comment, "was": app.state, "decision": decision.seq,
                                  "signed": decision.signature is not None}, result_digest=decision.sha256)
        return self.get(app_id)


def _application(row: Any, ev: Sequence[Any]) -> Application:
    return Application(
        id=row["id"], ca=row["ca_name"], kind=row["kind"], profile=row["profile"], subject=row["subject"],
        applicant=row["applicant"], id_number=row["id_number"], state=row["state"],
        key_generated=bool(row["key_generated"]),
        subject_alt_names=tuple(tuple(s) for s in json.loads(row["subject_alt_names"] or "[]")),
        created_at=row["created_at"], decided_by=row["decided_by"], decided_at=row["decided_at"],
        decision_comment=row["decision_comment"], issued_serial=row["issued_serial"],
        predecessor_serial=row["predecessor_serial"], evidence=tuple((e.filename, e.sha256) for e in ev),
        public_key_der=row["public_key_der"], submitted_by=row["submitted_by"])


def application_public_key(app: Application) -> PublicKey:
    return public_key_from_spki(app.public_key_der)
