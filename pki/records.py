"""What the store's SQLAlchemy path (`pki.store`, `pki.ca`) and the light read path of the
listings (`pki.listing`, standard library `sqlite3`) share, importable without SQLAlchemy,
cryptography or YAML: the schema version, the CA and certificate records and how a row becomes
one, and how times are kept in the database (naive UTC in, aware UTC out).

`pki.ca` re-exports `CaInfo` and `CertificateRecord`; `pki.store` re-exports `SCHEMA_VERSION`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509

    from .algorithms import PublicKey

#: the newest schema version this code knows: the largest migration number of all packages (a
#: test checks it against what every package registers).  A database whose schema is newer was
#: written by a newer yinxin and is refused, never written to.
SCHEMA_VERSION = 800


# --------------------------------------------------------------------------- times in the database

def to_stored_time(value: datetime | None) -> datetime | None:
    """An aware datetime as the database keeps it: naive UTC (`UtcDateTime`'s bind side)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def from_stored_time(value: datetime | None) -> datetime | None:
    """A naive UTC datetime read from the database, made aware (`UtcDateTime`'s result side)."""
    return None if value is None else value.replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------- records

@dataclass(frozen=True)
class CaInfo:
    id: int
    name: str
    algorithm: str
    subject: str
    serial: str
    parent: str | None
    base_url: str | None
    distid: bytes
    cert_der: bytes
    key_file: str

    @property
    def certificate(self) -> "asn1_x509.Certificate":
        from .x509 import load_certificate
        return load_certificate(self.cert_der)

    def public_key(self) -> "PublicKey":
        from .x509 import certificate_public_key
        return certificate_public_key(self.certificate)

    @property
    def sign_distid(self) -> bytes | None:
        return self.distid if self.algorithm == "sm2" else None

    def urls(self) -> dict[str, str]:
        if not self.base_url:
            return {}
        base = self.base_url.rstrip("/")
        return {"ocsp": f"{base}/ocsp/{self.name}", "crl": f"{base}/crl/{self.name}.crl",
                "delta_crl": f"{base}/crl/{self.name}-delta.crl", "ca_issuers": f"{base}/ca/{self.name}.crt"}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "algorithm": self.algorithm, "subject": self.subject,
                "serial": self.serial.upper(), "parent": self.parent, "base_url": self.base_url,
                "sm2_id": self.distid.decode("latin-1") if self.algorithm == "sm2" else None,
                **({"urls": self.urls()} if self.base_url else {})}


@dataclass(frozen=True)
class CertificateRecord:
    ca: str
    serial: str
    profile: str
    subject: str
    id_number: str | None
    status: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    released_at: datetime | None
    application_id: int | None
    predecessor_serial: str | None
    cert_der: bytes | None
    public_key_fp: str

    def to_dict(self) -> dict[str, Any]:
        return {"ca": self.ca, "serial": self.serial.upper(), "profile": self.profile, "subject": self.subject,
                "id_number": self.id_number, "status": self.status,
                "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
                "revocation_reason": self.revocation_reason,
                "released_at": self.released_at.isoformat() if self.released_at else None,
                "application": self.application_id,
                "predecessor": self.predecessor_serial.upper() if self.predecessor_serial else None,
                "public_key_sha256": self.public_key_fp}


#: the columns of `cas` a `CaInfo` is made of (besides its parent's name)
CA_COLUMNS = ("id", "name", "algorithm", "subject", "parent_id", "serial", "cert_der", "key_file", "base_url",
              "distid")
#: the columns of `certificates` a `CertificateRecord` is made of (besides its CA's name, `ca_name`)
CERTIFICATE_COLUMNS = ("serial", "profile", "subject", "id_number", "status", "not_before", "not_after",
                       "revoked_at", "revocation_reason", "released_at", "application_id", "predecessor_serial",
                       "cert_der", "public_key_fp")
#: the columns of `certificates` that hold times
CERTIFICATE_TIMES = ("not_before", "not_after", "revoked_at", "released_at")


def ca_info(row: Mapping[str, Any], parent: str | None) -> CaInfo:
    """A `cas` row (its `CA_COLUMNS`) as a `CaInfo`."""
    return CaInfo(id=row["id"], name=row["name"], algorithm=row["algorithm"], subject=row["subject"],
                  serial=row["serial"], parent=parent, base_url=row["base_url"], distid=row["distid"],
                  cert_der=row["cert_der"], key_file=row["key_file"])


def certificate_record(row: Mapping[str, Any]) -> CertificateRecord:
    """A `certificates` row (its `CERTIFICATE_COLUMNS`, times already aware UTC) with its CA's name
    (`ca_name`) as a `CertificateRecord`."""
    return CertificateRecord(
        ca=row["ca_name"], serial=row["serial"], profile=row["profile"], subject=row["subject"],
        id_number=row["id_number"], status=row["status"], not_before=row["not_before"],
        not_after=row["not_after"], revoked_at=row["revoked_at"], revocation_reason=row["revocation_reason"],
        released_at=row["released_at"], application_id=row["application_id"],
        predecessor_serial=row["predecessor_serial"], cert_der=row["cert_der"],
        public_key_fp=row["public_key_fp"])
