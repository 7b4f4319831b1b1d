"""The timestamp authorities of a home: set-up, keys, issuance, records.

Issuing one token (`TsaSigner.respond`, and the status service's batched path):

1. the request is parsed strictly (`protocol.parse_request`); a refusal is an RFC 3161
   rejection with its failure info, never an exception that stops the service;
2. a serial is drawn (127 random bits, ≥ 2⁶⁴, unique per TSA by a database constraint) and
   genTime taken from the TSA's `IssueClock` (never earlier than a token already issued);
3. the TSTInfo and the signed attributes are assembled, the TSA key signs;
4. the token's row (serial, genTime, imprint, nonce, token digest) is committed — durably, on
   SQLite synchronous=FULL — and only then does the token leave.  A crash before the commit
   loses a token nobody received; a serial is never given twice.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import sqlalchemy as sa
from asn1crypto import x509 as asn1_x509

from .. import audit
from ..algorithms import ALGORITHMS, PrivateKey, PublicKey
from ..ca import CertificateAuthority, _serial
from ..errors import Conflict, NotFound, PolicyError, StoreError, UnknownAlgorithm
from ..home import Home
from ..keyfiles import open_key_file, write_file_atomic
from ..sm2 import DEFAULT_DISTID
from ..store import insert_many
from ..x509 import build_csr, certificate_public_key, load_certificate, name_to_text, parse_name
from .errors import ClockBehind, RequestRefused
from .protocol import (HASHES, TimestampRequest, TokenBuilder, failure_response, granted_response,
                       parse_request)
from .tables import tsa_authorities, tsa_tokens
from .timing import IssueClock

if TYPE_CHECKING:
    from ..accounts.actor import Actor

__all__ = ["DEFAULT_POLICY", "TsaInfo", "TokenRecord", "TsaSigner", "TimestampAuthority", "Issued",
           "token_row"]

#: the default TSA policy: an OID under the UUID arc (ITU-T X.667, 2.25), so that no one's
#: registered arc is borrowed; an operator names the policy of their practice statement with --policy
DEFAULT_POLICY = "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "https://yinxin.invalid/tsa-policy/1").int)
#: hashes every TSA accepts; an SM2 TSA accepts SM3 too
COMMON_HASHES = frozenset({"sha256", "sha384", "sha512"})


@dataclass(frozen=True)
class TsaInfo:
    id: int
    name: str
    ca: str
    algorithm: str
    subject: str
    cert_serial: str
    cert_der: bytes = field(repr=False)
    key_file: str
    policy: str
    accuracy_ms: int
    distid: bytes | None
    created_at: datetime
    created_by: str

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return load_certificate(self.cert_der)

    @property
    def not_after(self) -> datetime:
        return self.certificate["tbs_certificate"]["validity"]["not_after"].native

    @property
    def hashes(self) -> frozenset[str]:
        return COMMON_HASHES | ({"sm3"} if self.algorithm == "sm2" else set())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ca": self.ca, "algorithm": self.algorithm, "subject": self.subject,
                "certificate_serial": self.cert_serial.upper(), "policy": self.policy,
                "accuracy_ms": self.accuracy_ms, "hashes": sorted(self.hashes),
                "sm2_id": self.distid.decode("latin-1") if self.distid is not None else None,
                "not_after": self.not_after.isoformat(), "created_at": self.created_at.isoformat(),
                "created_by": self.created_by}


@dataclass(frozen=True)
class TokenRecord:
    tsa: str
    serial: str
    gen_time: datetime
    hash_algorithm: str
    imprint: str
    nonce: str | None
    token_sha256: str
    client: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"tsa": self.tsa, "serial": self.serial.upper(), "gen_time": self.gen_time.isoformat(),
                "hash_algorithm": self.hash_algorithm, "imprint": self.imprint, "nonce": self.nonce,
                "token_sha256": self.token_sha256, "client": self.client}


@dataclass(frozen=True)
class Issued:
    """One token before it leaves: the reply, the token and its database row."""

    response: bytes
    token: bytes
    row: dict[str, Any]


def token_row(tsa_id: int, request: TimestampRequest, serial: int, gen_time: datetime, token: bytes,
              client: str | None) -> dict[str, Any]:
    return {"tsa_id": tsa_id, "serial": f"{serial:x}", "gen_time": gen_time,
            "hash_algorithm": request.hash_algorithm, "imprint": request.imprint.hex(),
            "nonce": f"{request.nonce:x}" if request.nonce is not None else None,
            "token_sha256": hashlib.sha256(token).hexdigest(), "client": client}


def _info(row: Any, ca_name: str) -> TsaInfo:
    return TsaInfo(id=row["id"], name=row["name"], ca=ca_name, algorithm=row["algorithm"], subject=row["subject"],
                   cert_serial=row["cert_serial"], cert_der=row["cert_der"], key_file=row["key_file"],
                   policy=row["policy"], accuracy_ms=row["accuracy_ms"], distid=row["distid"],
                   created_at=row["created_at"], created_by=row["created_by"])


class TsaSigner:
    """A TSA with its key loaded: builds, signs and (with `respond`) records tokens.

    The status service shares one `IssueClock` between its worker processes
    (`clock_shared=True`, made before they fork) and signs in its signing pool; the
    rest of the code calls `respond`, which signs here and records in one transaction."""

    def __init__(self, home: Home, info: TsaInfo, key: PrivateKey, *, clock_shared: bool = False) -> None:
        self.home = home
        self.info = info
        self.key = key
        self.public: PublicKey = key.public_key()
        self.certificate = info.certificate
        self.builder = TokenBuilder(self.certificate, self.public, policy=info.policy, accuracy_ms=info.accuracy_ms)
        self.hashes = info.hashes
        self.clock = IssueClock(info.name, home.clock, _last_gen_time(home, info.id), shared=clock_shared,
                                on_behind=self._audit_clock_behind)

    # the pieces, for callers that sign elsewhere (the status service's pool)

    def parse(self, query: bytes) -> TimestampRequest:
        return parse_request(query, hashes=self.hashes, policy=self.info.policy)

    def prepare(self, request: TimestampRequest) -> tuple[int, datetime, bytes, bytes]:
        """(serial, genTime, TSTInfo DER, the DER the key signs); raises ClockBehind."""
        gen_time = self.clock.next()
        while (serial := _serial(self.home.rand.token_bytes(16))) is None:
            pass
        tst_info = self.builder.tst_info(request, serial, gen_time)
        return serial, gen_time, tst_info, self.builder.signed_attributes(tst_info)

    def sign(self, data: bytes) -> bytes:
        if self.key.algorithm == "sm2":
            return self.key.sign(data, distid=self.info.distid or DEFAULT_DISTID)
        return self.key.sign(data)

    def finish(self, request: TimestampRequest, serial: int, gen_time: datetime, tst_info: bytes,
               attributes: bytes, signature: bytes, client: str | None) -> Issued:
        token = self.builder.token(tst_info, attributes, signature, with_certificate=request.cert_req)
        return Issued(granted_response(token), token,
                      token_row(self.info.id, request, serial, gen_time, token, client))

    # the whole act, in this process

    def respond(self, query: bytes, *, client: str | None = None) -> bytes:
        """The TimeStampResp (DER) to one query: a granted token, recorded before it is returned,
        or a rejection with its failure info (badAlg, badRequest, badDataFormat, unacceptedPolicy,
        unacceptedExtension, timeNotAvailable when the clock is behind)."""
        try:
            return self.issue(self.parse(query), client=client).response
        except RequestRefused as exc:
            return failure_response(exc.failure, exc.reason)
        except ClockBehind as exc:
            return failure_response("time_not_available", exc.message)

    def issue(self, request: TimestampRequest, *, client: str | None = None) -> Issued:
        """Sign and record one token for a parsed request (raises ClockBehind)."""
        for _attempt in range(3):
            serial, gen_time, tst_info, attributes = self.prepare(request)
            issued = self.finish(request, serial, gen_time, tst_info, attributes, self.sign(attributes), client)
            try:
                record_tokens(self.home, [issued.row])
            except Conflict:            # a serial drawn twice (2⁻¹²⁶): never reuse, draw again
                continue
            return issued
        raise StoreError("could not record a unique token serial")   # pragma: no cover

    def _audit_clock_behind(self, now: datetime, last: datetime) -> None:
        try:
            with self.home.store.transaction() as conn:
                audit.append(conn, at=self.home.clock.now(), actor="tsa", action="tsa.clock_behind",
                             target=f"tsa:{self.info.name}",
                             details={"clock": now.isoformat(), "last_issued": last.isoformat()})
        except Exception:    # the refusal stands whether or not the event could be written
            pass


def record_tokens(home: Home, rows: Sequence[dict[str, Any]]) -> None:
    """Commit token rows (one transaction, durable when it returns)."""
    with home.store.transaction() as conn:
        insert_many(conn, tsa_tokens, rows)


def _last_gen_time(home: Home, tsa_id: int) -> datetime | None:
    with home.store.read() as conn:
        return conn.execute(sa.select(sa.func.max(tsa_tokens.c.gen_time)).where(tsa_tokens.c.tsa_id == tsa_id)).scalar()


class TimestampAuthority:
    """The TSAs of a home."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.authority = CertificateAuthority(home)

    def tsa_dir(self, name: str) -> Path:
        return self.home.path / "tsas" / name

    # ---------------------------------------------------------------- set-up

    def init(self, name: str, *, ca: str | None, ca_password: bytes, password: bytes,
             algorithm: str | None = None, policy: str | None = None, accuracy_ms: int = 1000,
             subject: str | None = None, sm2_id: bytes | None = None, actor: "Actor",
             approver: "Actor") -> TsaInfo:
        """A TSA: a new key (stored encrypted under `password`) and a certificate of profile
        ``tsa`` (timeStamping only, critical) issued by `ca`: `actor` (a CA operator) applies and
        issues (the CA key opened with `ca_password`), `approver` (an RA officer, another person)
        approves — a signed decision, as for a seal's certificate."""
        from ..accounts.accounts import Accounts
        if approver.account_id == actor.account_id:
            raise PolicyError(f"{actor.account_id} sets up the TSA and cannot also approve its certificate "
                              "(separation of duties)", field="approver")
        accounts = Accounts.of(self.home)
        accounts.require(actor, any_of=("ca_operator",))
        accounts.require(approver, any_of=("ra_officer",))
        operator = actor.account_id
        if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
            raise PolicyError("a TSA name is letters, digits, - and _ (at most 64)", field="name")
        if not password:
            raise PolicyError("a TSA key is always encrypted: a password is needed", field="password")
        if not 1 <= accuracy_ms <= 60_000:
            raise PolicyError("--accuracy-ms is 1 to 60000", field="accuracy_ms")
        policy = policy or DEFAULT_POLICY
        try:
            from asn1crypto import core
            core.ObjectIdentifier(policy).dump()
            if not all(p.isdigit() for p in policy.split(".")) or policy.count(".") < 1:
                raise ValueError
        except ValueError:
            raise PolicyError(f"--policy {policy!r} is not an OID", field="policy") from None
        with self.home.store.read() as conn:
            if conn.execute(sa.select(tsa_authorities.c.id).where(tsa_authorities.c.name == name)).first():
                raise Conflict(f"a TSA named {name!r} exists already", tsa=name)
        ca_info = self.authority.get(ca)
        algorithm = algorithm or ca_info.algorithm
        if algorithm not in ALGORITHMS:
            raise UnknownAlgorithm(f"unknown algorithm {algorithm!r} (one of: {', '.join(ALGORITHMS)})",
                                   algorithm=algorithm)
        profile = self.home.profiles.get("tsa")
        if algorithm not in profile.algorithms:
            raise PolicyError(f"profile tsa does not allow {algorithm}", field="algorithm")
        if sm2_id is not None and algorithm != "sm2":
            raise PolicyError("--sm2-id applies to SM2 TSAs only", field="sm2_id")
        key_file = self.tsa_dir(name) / "tsa.key.pem"
        if key_file.exists():
            raise Conflict(f"{key_file} exists: refusing to overwrite a TSA key", tsa=name)
        subject = subject or _default_subject(ca_info.certificate, name)
        ca_key = self.authority.load_key(ca_info, ca_password)       # a wrong password changes nothing
        from ..algorithms import generate_key
        key = generate_key(algorithm, rand=self.home.rand)
        csr = build_csr(parse_name(subject), key, distid=ca_info.distid)
        app = self.authority.ra.apply(ca=ca_info.name, profile="tsa", subject=subject, actor=actor, csr=csr.dump())
        self.authority.ra.approve(app.id, actor=approver, comment=f"TSA {name}")
        issued = self.authority.issue(app.id, ca_key=ca_key, actor=actor)
        distid = (DEFAULT_DISTID if sm2_id is None else sm2_id) if algorithm == "sm2" else None
        now = self.home.clock.now()
        try:
            write_file_atomic(key_file, key.to_pem(password, rand=self.home.rand))
            write_file_atomic(self.tsa_dir(name) / "tsa.pem", issued.pem(), mode=0o644)
            with self.home.store.transaction() as conn:
                conn.execute(tsa_authorities.insert().values(
                    name=name, ca_id=ca_info.id, algorithm=algorithm, subject=name_to_text(issued.certificate.subject),
                    cert_serial=issued.record.serial, cert_der=issued.certificate.dump(), key_file=str(key_file),
                    policy=policy, accuracy_ms=accuracy_ms, distid=distid, created_at=now, created_by=operator))
                audit.append(conn, at=now, actor=operator, action="tsa.init", target=f"tsa:{name}",
                             details={"ca": ca_info.name, "algorithm": algorithm, "policy": policy,
                                      "accuracy_ms": accuracy_ms, "certificate": issued.record.serial.upper()},
                             result_digest=hashlib.sha256(issued.certificate.dump()).hexdigest())
        except BaseException:
            # no TSA holds this certificate's key: revoke it, remove the files
            self.authority.revoke(issued.record.serial, reason="cessation_of_operation", actor=actor,
                                  ca=ca_info.name)
            key_file.unlink(missing_ok=True)
            raise
        return self.get(name)

    # ---------------------------------------------------------------- queries

    def get(self, name: str | None = None) -> TsaInfo:
        """The TSA by name; with no name, the only one of the home."""
        from ..store import cas
        query = sa.select(tsa_authorities, cas.c.name.label("ca_name")).join(cas, cas.c.id == tsa_authorities.c.ca_id)
        with self.home.store.read() as conn:
            if name is None:
                rows = conn.execute(query.limit(2)).mappings().all()
                if len(rows) != 1:
                    raise (NotFound("this home has no TSA: run `yinxin tsa init` first") if not rows else
                           PolicyError("this home has several TSAs: name one", field="tsa"))
                row = rows[0]
            else:
                row = conn.execute(query.where(tsa_authorities.c.name == name)).mappings().first()
                if row is None:
                    raise NotFound(f"no TSA named {name!r}", tsa=name)
        return _info(row, row["ca_name"])

    def list(self) -> list[TsaInfo]:
        from ..store import cas
        with self.home.store.read() as conn:
            rows = conn.execute(sa.select(tsa_authorities, cas.c.name.label("ca_name"))
                                .join(cas, cas.c.id == tsa_authorities.c.ca_id)
                                .order_by(tsa_authorities.c.id)).mappings().all()
        return [_info(r, r["ca_name"]) for r in rows]

    def chain(self, info: TsaInfo) -> tuple[asn1_x509.Certificate, ...]:
        """The TSA certificate, then its CA's chain up to the root."""
        return (info.certificate, *self.authority.chain(self.authority.get(info.ca)))

    def load(self, name: str | None, password: bytes | None, *, clock_shared: bool = False) -> TsaSigner:
        info = self.get(name)
        key = open_key_file(info.key_file, password, certificate_public_key(info.certificate),
                            owner=f"TSA {info.name}", tsa=info.name)
        return TsaSigner(self.home, info, key, clock_shared=clock_shared)

    def find(self, serial: str, *, tsa: str | None = None) -> TokenRecord:
        """The record of one token, by serial (hex, as `openssl ts -reply -text` prints it)."""
        from ..ca import parse_serial
        stored = parse_serial(serial)
        query = sa.select(tsa_tokens, tsa_authorities.c.name.label("tsa_name")).join(
            tsa_authorities, tsa_authorities.c.id == tsa_tokens.c.tsa_id).where(tsa_tokens.c.serial == stored)
        if tsa is not None:
            query = query.where(tsa_authorities.c.name == self.get(tsa).name)
        with self.home.store.read() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            raise NotFound(f"no token with serial {stored.upper()}" + (f" from TSA {tsa}" if tsa else ""),
                           serial=stored.upper())
        r = rows[0]
        return TokenRecord(tsa=r["tsa_name"], serial=r["serial"], gen_time=r["gen_time"],
                           hash_algorithm=r["hash_algorithm"], imprint=r["imprint"], nonce=r["nonce"],
                           token_sha256=r["token_sha256"], client=r["client"])

    def stats(self, name: str | None = None) -> dict[str, Any]:
        """Per TSA: tokens issued, the first and last genTime, tokens per hash algorithm."""
        infos = [self.get(name)] if name else self.list()
        out: dict[str, Any] = {}
        t = tsa_tokens.c
        with self.home.store.read() as conn:
            for info in infos:
                count, first, last = conn.execute(sa.select(sa.func.count(), sa.func.min(t.gen_time),
                                                            sa.func.max(t.gen_time))
                                                  .where(t.tsa_id == info.id)).one()
                by_hash = dict(conn.execute(sa.select(t.hash_algorithm, sa.func.count()).where(t.tsa_id == info.id)
                                            .group_by(t.hash_algorithm)).all())
                out[info.name] = {"tokens": count, "first": first.isoformat() if first else None,
                                  "last": last.isoformat() if last else None, "by_hash": by_hash,
                                  "certificate_not_after": info.not_after.isoformat()}
        return out


def _default_subject(ca_cert: asn1_x509.Certificate, name: str) -> str:
    """`/C=…/O=…/CN=<name> 时间戳服务`, the country and organisation taken from the CA's subject."""
    native = ca_cert.subject.native
    parts = [f"/{short}={native[key]}" for key, short in (("country_name", "C"), ("organization_name", "O"))
             if isinstance(native.get(key), str) and "/" not in native[key]]
    return "".join(parts) + f"/CN={name} 时间戳服务"


def accepted(info: TsaInfo) -> Iterable[str]:
    return sorted(info.hashes & set(HASHES))
