"""Seal records: creation (key, certificate, picture, the maker's SES_Seal), password protection,
lockout and unlock, export.  Only the seal custodian's password opens a seal's key.

Who acts is an authenticated `pki.accounts.Actor`: a seal administrator who is also a CA operator
creates a seal (an RA officer, another person, approves its certificate); only the custodian — an
account — changes the seal's password and stamps; another seal administrator unlocks it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa
from asn1crypto import x509 as asn1_x509

from pki import audit
from pki.algorithms import PrivateKey
from pki.ca import CaInfo, CertificateAuthority
from pki.errors import PolicyError, WrongPassword, YinxinError
from pki.home import Home
from pki.keyfiles import load_private_key
from pki.x509 import build_csr, load_certificate, parse_name

from .appearance import SEAL_TYPES, SealSpec, draw_seal, drawing_from_png
from .errors import (SealError, SealLocked, SealNotFound, SealPasswordError, SealStateError)
from .passwords import PasswordPolicy, load_password_policy
from .ses import (ORGANISATION_SEAL, PERSONAL_SEAL, RULE_GBT38540, RULE_GMT0031, SealData, build_seal_info,
                  parse_seal, sign_seal, verify_seal)
from .store import seals

if TYPE_CHECKING:
    from pki.accounts.actor import Actor

#: Chinese labels of the seal types (the seal's name on the picture when none is given)
TYPE_LABELS = {"official": "", "contract": "合同专用章", "finance": "财务专用章", "special": "专用章",
               "personal": ""}
VENDOR = "yinxin"


@dataclass(frozen=True)
class SealRecord:
    name: str
    es_id: str
    organisation: str
    seal_type: str
    label: str
    custodian: str
    ca: str
    cert_serial: str
    cert_der: bytes
    algorithm: str
    valid_from: datetime
    valid_to: datetime
    picture_kind: str
    picture_png: bytes | None
    width_mm: float
    height_mm: float
    ses_der: bytes
    key_pem: bytes          # encrypted under the seal password; never shown
    must_change_password: bool
    failed_attempts: int
    locked: bool
    created_at: datetime
    created_by: str
    drawing_data: bytes | None = field(default=None, repr=False)   # SealDrawing.to_bytes(), made at creation
    maker_rule: str = RULE_GBT38540   # gmt0031: made before migration 600, to be re-signed by its maker

    @property
    def needs_resign(self) -> bool:
        return self.maker_rule != RULE_GBT38540

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return load_certificate(self.cert_der)

    def spec(self) -> SealSpec:
        return SealSpec(seal_type=self.seal_type, organisation=self.organisation,
                        seal_name=self.label if self.seal_type != "personal" else self.label)

    def drawing(self) -> Any:
        """The seal's picture: the administrator's PNG, or the vector seal as drawn when the seal was
        made (seals made before 0.2 are drawn again, with the fonts this machine has)."""
        if self.picture_kind == "png" and self.picture_png is not None:
            return drawing_from_png(self.picture_png, self.width_mm)
        if self.drawing_data is not None:
            from .appearance.drawing import SealDrawing
            return SealDrawing.from_bytes(self.drawing_data)
        return draw_seal(self.spec())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "es_id": self.es_id, "organisation": self.organisation,
                "type": self.seal_type, "label": self.label, "custodian": self.custodian, "ca": self.ca,
                "certificate_serial": self.cert_serial.upper(), "algorithm": self.algorithm,
                "valid_from": self.valid_from.isoformat(), "valid_to": self.valid_to.isoformat(),
                "picture": self.picture_kind, "size_mm": [self.width_mm, self.height_mm],
                "must_change_password": self.must_change_password, "failed_attempts": self.failed_attempts,
                "locked": self.locked, "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "maker_rule": self.maker_rule, "needs_resign": self.needs_resign}


def _record(row: Any) -> SealRecord:
    return SealRecord(**{k: row[k] for k in (
        "name", "es_id", "organisation", "seal_type", "label", "custodian", "cert_serial", "cert_der",
        "algorithm", "valid_from", "valid_to", "picture_kind", "picture_png", "width_mm", "height_mm",
        "ses_der", "key_pem", "must_change_password", "failed_attempts", "locked", "created_at", "created_by",
        "maker_rule")}, ca=row["ca_name"], drawing_data=row["drawing"])


#: looked up by every stamp and every verification: built once
_SEAL_BY_NAME = sa.select(seals).where(seals.c.name == sa.bindparam("name"))
_SEAL_BY_CERTIFICATE = sa.select(seals).where(seals.c.cert_der == sa.bindparam("cert_der"))


class SealRegistry:
    """Seal records of one home."""

    def __init__(self, home: Home, *, password_policy: PasswordPolicy | None = None,
                 key_cache: Any = None) -> None:
        self.home = home
        self.authority = CertificateAuthority(home)
        self.policy = password_policy or load_password_policy(home.profiles.directory)
        self.key_cache = key_cache       # seal.keycache.KeyCache in a long-running server, else None

    # ---------------------------------------------------------------- queries

    def get(self, name: str) -> SealRecord:
        with self.home.store.read() as conn:
            row = conn.execute(_SEAL_BY_NAME, {"name": name}).mappings().first()
        if row is None:
            raise SealNotFound(f"no seal named {name!r}", seal=name)
        return _record(row)

    def list(self) -> list[SealRecord]:
        with self.home.store.read() as conn:
            return [_record(r) for r in conn.execute(sa.select(seals).order_by(seals.c.id)).mappings()]

    def find_by_certificate(self, cert_der: bytes) -> SealRecord | None:
        with self.home.store.read() as conn:
            row = conn.execute(_SEAL_BY_CERTIFICATE, {"cert_der": cert_der}).mappings().first()
        return _record(row) if row is not None else None

    # ---------------------------------------------------------------- creation

    def create(self, *, name: str, organisation: str, seal_type: str, custodian: str, ca: str | None,
               password: bytes, ca_password: bytes, actor: "Actor", approver: "Actor",
               label: str | None = None, subject: str | None = None, algorithm: str | None = None,
               valid_days: int = 1095, picture_png: bytes | None = None,
               diameter_mm: float | None = None) -> SealRecord:
        """Make a seal: key pair, a `seal`-profile certificate (applied for and issued by `actor`, a
        seal administrator and CA operator; approved by `approver`, an RA officer — a signed decision),
        the picture, and the CA's signature over the SES_Seal.  `custodian` is the account of the
        seal's custodian (印章管理员).

        The password is the custodian's initial password: the policy applies, and the
        custodian must change it before the first stamp."""
        from pki.accounts.accounts import Accounts
        accounts = Accounts.of(self.home)
        if approver.account_id == actor.account_id:
            # the RA refuses it too, but only after storing the application: say it before anything is stored
            raise PolicyError(f"{actor.account_id} creates the seal and cannot also approve its certificate "
                              "(separation of duties)", field="approver")
        accounts.require(actor, any_of=("seal_admin",))
        accounts.require(actor, any_of=("ca_operator",))
        accounts.require(approver, any_of=("ra_officer",))
        operator = actor.account_id
        if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
            raise PolicyError("a seal name is letters, digits, - and _ (at most 64)", field="name")
        if seal_type not in SEAL_TYPES:
            raise PolicyError(f"unknown seal type {seal_type!r} (one of: {', '.join(SEAL_TYPES)})",
                              field="type")
        if not custodian.strip():
            raise PolicyError("a seal needs a custodian (印章管理员)", field="custodian")
        custodian = custodian.strip()
        if not accounts.exists(custodian) or accounts.get(custodian).disabled:
            raise PolicyError(f"the custodian {custodian!r} is no enabled account of this home (the custodian logs "
                              "in as themselves to change the password and to stamp)", field="custodian")
        if valid_days < 1:
            raise PolicyError("a seal's validity is at least one day", field="valid_days")
        with self.home.store.read() as conn:
            if conn.execute(sa.select(seals.c.id).where(seals.c.name == name)).first() is not None:
                raise SealError(f"a seal named {name!r} exists already", seal=name)
        self.policy.check(password, seal_name=name)
        label = TYPE_LABELS[seal_type] if label is None else label
        if seal_type == "personal" and not label:
            raise PolicyError("a personal seal needs --label with the person's name", field="label")
        spec = SealSpec(seal_type=seal_type, organisation=organisation, seal_name=label)
        drawing = drawing_from_png(picture_png, diameter_mm or 40.0) if picture_png is not None \
            else draw_seal(spec)
        width_mm, height_mm = drawing.width_pt * 25.4 / 72, drawing.height_pt * 25.4 / 72
        ca_info = self.authority.get(ca)
        ca_key = self.authority.load_key(ca_info, ca_password)
        algorithm = algorithm or ca_info.algorithm
        subject = subject or f"/C=CN/O={organisation}/CN={organisation}{label or '公章'}"
        key = _generate(algorithm, self.home)
        csr = build_csr(parse_name(subject), key, distid=ca_info.distid)
        app = self.authority.ra.apply(ca=ca_info.name, profile="seal", subject=subject, actor=actor, csr=csr.dump())
        self.authority.ra.approve(app.id, actor=approver, comment=f"seal {name}")
        issued = self.authority.issue(app.id, ca_key=ca_key, actor=actor)
        now = self.home.clock.now()
        valid_to = min(now + timedelta(days=valid_days), issued.record.not_after)
        es_id = f"{VENDOR}-{hashlib.sha256(issued.certificate.dump()).hexdigest()[:24]}"
        info = build_seal_info(
            es_id=es_id, vendor=VENDOR,
            seal_type=PERSONAL_SEAL if seal_type == "personal" else ORGANISATION_SEAL,
            name=f"{organisation}{label}" if seal_type != "personal" else label,
            certificates=(issued.certificate.dump(),), created=now, valid_start=now, valid_end=valid_to,
            picture_type="png", picture=picture_png if picture_png is not None else ses_picture(drawing),
            width_mm=round(width_mm), height_mm=round(height_mm))
        ses_der = sign_seal(info, maker_key=ca_key, maker_cert_der=ca_info.cert_der, distid=ca_info.distid)
        scheme = "sm4" if key.algorithm == "sm2" else "aes256"
        try:
            with self.home.store.transaction() as conn:
                self.home.store.insert(
                    conn, seals, name=name, es_id=es_id, organisation=organisation, seal_type=seal_type,
                    label=label, custodian=custodian.strip(), ca_name=ca_info.name,
                    cert_serial=issued.record.serial, cert_der=issued.certificate.dump(), algorithm=key.algorithm,
                    key_pem=key.to_pem(password, scheme=scheme, rand=self.home.rand), valid_from=now,
                    valid_to=valid_to, picture_kind="png" if picture_png is not None else "vector",
                    picture_png=picture_png, width_mm=width_mm, height_mm=height_mm, ses_der=ses_der,
                    drawing=drawing.to_bytes() if picture_png is None else None,
                    must_change_password=self.policy.change_on_first_use, failed_attempts=0, locked=False,
                    created_at=now, created_by=operator, maker_rule=RULE_GBT38540)
                audit.append(conn, at=now, actor=operator, action="seal.create", target=f"seal:{name}",
                             details={"organisation": organisation, "type": seal_type, "custodian": custodian,
                                      "certificate": issued.record.serial.upper(), "ca": ca_info.name},
                             result_digest=hashlib.sha256(ses_der).hexdigest())
        except BaseException:
            # the certificate exists but no seal holds its key (e.g. the name was taken meanwhile):
            # revoke it, so no usable seal certificate is left without a seal record
            self.authority.revoke(issued.record.serial, reason="cessation_of_operation", actor=actor,
                                  ca=ca_info.name)
            raise
        return self.get(name)

    # ---------------------------------------------------------------- passwords

    def require_custodian(self, record: SealRecord, actor: "Actor") -> None:
        """Only the seal's custodian, logged in as themselves, uses the seal's key."""
        from pki.accounts.accounts import Accounts
        from pki.accounts.errors import NotPermitted
        Accounts.of(self.home).require(actor)
        if actor.account_id != record.custodian:
            raise NotPermitted(f"{actor.account_id} is not the custodian of seal {record.name} (its custodian is "
                               f"{record.custodian}): only the custodian uses it", seal=record.name,
                               account=actor.account_id)

    def open_key(self, name: str, password: bytes, *, actor: "Actor", purpose: str = "stamp") -> PrivateKey:
        """The seal's private key, for its custodian, if the password is right and the seal is not
        locked.

        A wrong password is counted and audited in its own transaction (it must
        stick even though the caller's operation fails); the N-th failure locks."""
        record = self.get(name)
        self.require_custodian(record, actor)
        if record.locked:
            raise SealLocked(f"seal {name} is locked after {record.failed_attempts} wrong passwords; "
                             "an administrator must unlock it (yinxin seal unlock)", seal=name)
        key = self.key_cache.get(name, record.key_pem, password) if self.key_cache is not None else None
        try:
            if key is None:
                key = load_private_key(record.key_pem, password)
                if self.key_cache is not None:
                    self.key_cache.put(name, record.key_pem, password, key)
        except WrongPassword:
            now = self.home.clock.now()
            with self.home.store.transaction() as conn:
                failures = conn.execute(sa.update(seals).where(seals.c.name == name)
                                        .values(failed_attempts=seals.c.failed_attempts + 1)
                                        .returning(seals.c.failed_attempts)).scalar_one()
                locked = failures >= self.policy.max_failures
                if locked:
                    conn.execute(sa.update(seals).where(seals.c.name == name).values(locked=True))
                audit.append(conn, at=now, actor=actor.account_id, action="seal.password_failure",
                             target=f"seal:{name}",
                             details={"purpose": purpose, "failures": failures, "locked": locked})
            if locked:
                raise SealLocked(f"wrong password for seal {name}; the seal is now locked after "
                                 f"{failures} failures", seal=name, failures=failures) from None
            raise SealPasswordError(f"wrong password for seal {name} (failure {failures} of "
                                    f"{self.policy.max_failures})", seal=name, failures=failures) from None
        if record.failed_attempts:
            with self.home.store.transaction() as conn:
                conn.execute(sa.update(seals).where(seals.c.name == name).values(failed_attempts=0))
        return key

    def change_password(self, name: str, old: bytes, new: bytes, *, actor: "Actor") -> SealRecord:
        record = self.get(name)
        key = self.open_key(name, old, actor=actor, purpose="passwd")
        self.policy.check(new, seal_name=name, old=old)
        now = self.home.clock.now()
        scheme = "sm4" if key.algorithm == "sm2" else "aes256"
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(seals).where(seals.c.name == name).values(
                key_pem=key.to_pem(new, scheme=scheme, rand=self.home.rand), must_change_password=False,
                failed_attempts=0))
            audit.append(conn, at=now, actor=actor.account_id, action="seal.passwd", target=f"seal:{record.name}")
        return self.get(name)

    def unlock(self, name: str, *, actor: "Actor") -> SealRecord:
        """A seal administrator's audited unlock; the custodian cannot unlock their own seal."""
        from pki.accounts.accounts import Accounts
        Accounts.of(self.home).require(actor, any_of=("seal_admin",))
        operator = actor.account_id
        record = self.get(name)
        if operator == record.custodian:
            raise PolicyError(f"{operator} is the custodian of seal {name}: another administrator unlocks it",
                              seal=name)
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            conn.execute(sa.update(seals).where(seals.c.name == name).values(locked=False, failed_attempts=0))
            audit.append(conn, at=now, actor=operator, action="seal.unlock", target=f"seal:{name}",
                         details={"was_locked": record.locked, "failures": record.failed_attempts})
        return self.get(name)

    # ---------------------------------------------------------------- usability

    def check_usable(self, record: SealRecord, at: datetime) -> None:
        """The seal may sign at `at`: inside its validity window, certificate issued (not held,
        revoked or expired), password already changed from the initial one."""
        if record.must_change_password:
            raise SealStateError(f"seal {record.name} still has its initial password: the custodian must "
                                 "change it first (yinxin seal passwd)", seal=record.name)
        if not record.valid_from <= at <= record.valid_to:
            raise SealStateError(f"seal {record.name} is valid from {record.valid_from:%Y-%m-%d} to "
                                 f"{record.valid_to:%Y-%m-%d}, not at {at:%Y-%m-%d %H:%M}", seal=record.name)
        cert = self.authority.show(record.cert_serial, ca=record.ca)
        if cert.status != "issued":
            raise SealStateError(f"the certificate of seal {record.name} ({cert.serial.upper()}) is "
                                 f"{cert.status}" + (f" ({cert.revocation_reason})" if cert.revocation_reason else ""),
                                 seal=record.name, status=cert.status)
        if cert.not_after <= at:
            raise SealStateError(f"the certificate of seal {record.name} expired on {cert.not_after:%Y-%m-%d}",
                                 seal=record.name)

    def chain(self, record: SealRecord) -> tuple[asn1_x509.Certificate, ...]:
        return self.authority.chain(self.authority.get(record.ca))

    # ---------------------------------------------------------------- GB/T 38540

    def export(self, name: str) -> bytes:
        """The seal's GB/T 38540 SES_Seal (DER); a seal still signed by the GM/T 0031 rule is
        refused: v4 verifiers reject it, its maker must re-sign it first."""
        record = self.get(name)
        if record.needs_resign:
            raise SealStateError(_resign_message(record), seal=name, maker_rule=record.maker_rule)
        return record.ses_der

    def resign(self, names: Sequence[str] | None, *, ca_password: bytes, actor: "Actor") -> list[ResignResult]:
        """Migration 600's second half: the maker (the CA that issued each seal's certificate)
        re-signs seals still signed by the GM/T 0031 rule, over SES_SealInfo as GB/T 38540 wants,
        with the picture as PNG (what OFD readers draw).  `names` None means every such seal.

        Each seal is checked first — its stored SES_Seal must verify under the old rule with the
        maker's key, so a tampered record is refused, not re-signed — then re-signed and stored
        with a `seal.resign` audit event (old and new digests) in one transaction per seal.
        Seals already under GB/T 38540 are reported unchanged.  `actor` is a CA operator: the
        maker's key signs (the seal itself — its certificate, custodian, picture — is unchanged)."""
        from pki.accounts.accounts import Accounts
        Accounts.of(self.home).require(actor, any_of=("ca_operator",))
        records = self.list() if names is None else [self.get(n) for n in names]
        results: list[ResignResult] = []
        keys: dict[str, PrivateKey] = {}
        for record in records:
            if not record.needs_resign:
                results.append(ResignResult(record.name, False, record.maker_rule))
                continue
            ca = self.authority.get(record.ca)
            try:
                old = verify_seal(record.ses_der, ca.public_key(), distid=ca.distid, accept_legacy=True)
            except YinxinError as exc:
                raise SealStateError(f"seal {record.name}: its stored SES_Seal does not verify with the key of "
                                     f"CA {ca.name} ({exc.message}); it is not re-signed", seal=record.name) from None
            if old.maker_cert != ca.cert_der:
                raise SealStateError(f"seal {record.name} names another maker than CA {ca.name}; it is not "
                                     "re-signed", seal=record.name)
            if ca.name not in keys:
                keys[ca.name] = self.authority.load_key(ca, ca_password)
            picture = old.picture if old.picture_type.lower() == "png" else ses_picture(record.drawing())
            info = build_seal_info(
                es_id=old.es_id, vendor=old.vendor, seal_type=old.seal_type, name=old.name,
                certificates=old.certificates, created=old.created, valid_start=old.valid_start,
                valid_end=old.valid_end, picture_type="png", picture=picture, width_mm=old.width_mm,
                height_mm=old.height_mm)
            new_der = sign_seal(info, maker_key=keys[ca.name], maker_cert_der=ca.cert_der, distid=ca.distid)
            now = self.home.clock.now()
            with self.home.store.transaction() as conn:
                updated = conn.execute(sa.update(seals).where(seals.c.name == record.name)
                                       .where(seals.c.ses_der == record.ses_der)
                                       .values(ses_der=new_der, maker_rule=RULE_GBT38540)).rowcount
                if updated != 1:
                    raise SealStateError(f"seal {record.name} changed while being re-signed; try again",
                                         seal=record.name)
                audit.append(conn, at=now, actor=actor.account_id, action="seal.resign", target=f"seal:{record.name}",
                             details={"ca": ca.name, "from_rule": RULE_GMT0031, "to_rule": RULE_GBT38540,
                                      "old_sha256": hashlib.sha256(record.ses_der).hexdigest(),
                                      "old_picture": old.picture_type, "new_picture": "png",
                                      "migration": 600},
                             result_digest=hashlib.sha256(new_der).hexdigest())
            results.append(ResignResult(record.name, True, RULE_GBT38540))
        return results

    def verify_ses(self, der: bytes) -> SealData:
        """Parse an SES_Seal and check the maker's signature: with the key of this home's CA when
        the maker is one of them, else with the maker certificate the seal carries (which shows the
        seal is intact, not who made it: `maker_ca` says whether the maker is one of ours)."""
        data = parse_seal(der)
        info = self.maker_ca(data)
        if info is not None:
            return verify_seal(der, info.public_key(), distid=info.distid)
        from .ses import signer_public_key
        try:
            maker_key = signer_public_key(data.maker_cert)
        except YinxinError:
            raise SealError("the SES_Seal's maker certificate cannot be read", es_id=data.es_id) from None
        return verify_seal(der, maker_key, distid=None)

    def maker_ca(self, data: SealData) -> CaInfo | None:
        """This home's CA that made the seal (its certificate is the SES_Seal's maker certificate)."""
        return next((info for info in self.authority.cas() if info.cert_der == data.maker_cert), None)

@dataclass(frozen=True)
class ResignResult:
    seal: str
    resigned: bool          # False: already signed by the GB/T 38540 rule, left as it was
    maker_rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"seal": self.seal, "resigned": self.resigned, "maker_rule": self.maker_rule}


#: the seal picture inside SES_Seal: PNG (OFD readers draw png or ofd, not svg), 300 dpi, palette
SES_PICTURE_DPI = 300


def ses_picture(drawing: Any) -> bytes:
    """The seal's picture as the PNG that goes into its SES_Seal: an administrator's PNG as it
    is, a vector seal rasterised at `SES_PICTURE_DPI` and reduced to a palette with alpha
    (a 42 mm seal is about 9 KB: ofd.js decodes the picture through a string of char codes)."""
    import io

    from PIL import Image
    if not hasattr(drawing, "pdf_content"):
        return drawing.png()
    image = Image.open(io.BytesIO(drawing.png(SES_PICTURE_DPI)))
    out = io.BytesIO()
    image.quantize(colors=64, method=Image.Quantize.FASTOCTREE).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _resign_message(record: SealRecord) -> str:
    return (f"seal {record.name} is still signed by the GM/T 0031 rule (made before yinxin 0.2), which "
            "GB/T 38540 verifiers reject: its maker must re-sign it first (yinxin seal resign "
            f"{record.name})")


def _generate(algorithm: str, home: Home) -> PrivateKey:
    from pki.algorithms import generate_key
    return generate_key(algorithm, rand=home.rand)
