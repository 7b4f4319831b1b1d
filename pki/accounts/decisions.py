"""Signed decisions: canonical records signed with the actor's own certificate, chained per subject.

**The canonical form.**  A record is a JSON object encoded as UTF-8 with its keys sorted (by code
point, at every level), no insignificant whitespace (separators ``,`` and ``:``), non-ASCII
characters as themselves (not ``\\u`` escapes), and no floating-point numbers — exactly
``json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")``.
Those bytes are what is signed and what is stored (byte-exact, never re-encoded).

Every record has these fields (a subject — a document, an application, a certificate — adds its own,
e.g. a document's step, action, opinion and version digests)::

    kind         "yinxin-decision/1"
    home         the home's id
    chain, seq   the subject's chain ("doc:17", "application:5", "certificate:CA:SERIAL") and the
                 record's number in it (1, 2, …)
    prev         SHA-256 (hex) of the previous record's exact bytes in the chain, "" for the first
    time         UTC, seconds: "2026-05-08T02:15:00Z"
    actor        the account id; actor_name the person's name
    certificate  {"ca": CA name, "serial": the serial as `openssl x509 -serial` prints it}

The signature is the person's key's over the record bytes: SM2-with-SM3 with the distinguishing ID
of the CA that issued the person's certificate (`openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt
distid:…`), ECDSA/RSA with SHA-256/384 for other key types; DER.  Records are append-only (a
trigger refuses UPDATE and DELETE).

RA decisions (approve, reject, hold, release, revoke) are signed the same way.  Until two RA officers
hold person certificates — the RA's own bootstrap — an officer without one decides unsigned, and the
record says ``"bootstrap": true``; after that an unsigned RA decision is refused (policy
`ra_decisions_signed`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import sqlalchemy as sa

from ..algorithms import PrivateKey
from ..errors import YinxinError
from ..home import Home
from ..store import cas, certificates
from .actor import Actor, signing_key_of
from .errors import DecisionChainMoved, SigningKeyError
from .store import account_keys, accounts, decisions

KIND = "yinxin-decision/1"


def canonical(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a record (see the module docstring)."""
    _no_floats(record)
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def _no_floats(value: Any) -> None:
    if isinstance(value, float):
        raise ValueError("a decision record holds no floating-point numbers")
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("a decision record's keys are strings")
            _no_floats(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _no_floats(v)


def record_time(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def openssl_serial(serial: str) -> str:
    """A stored serial (lower-case hex) as `openssl x509 -serial` prints it: upper case, even length."""
    text = serial.upper().lstrip("0") or "0"
    return text if len(text) % 2 == 0 else "0" + text


@dataclass(frozen=True)
class Signer:
    """What signs for an actor now: the unlocked key and its bound, valid certificate."""

    account_id: str
    key: PrivateKey
    key_id: int
    ca_name: str
    serial: str                  # stored form (lower-case hex)
    distid: bytes | None

    def __repr__(self) -> str:
        return f"Signer({self.account_id!r}, {self.ca_name}:{self.serial.upper()})"


@dataclass(frozen=True)
class ChainHead:
    """Where a chain ended when a guard read it: its last record's number and digest (0 and "" for an
    empty chain).  `append(…, head=…)` writes the next record only if the chain still ends there."""

    seq: int
    sha256: str

    def __post_init__(self) -> None:
        if self.seq < 0 or (self.seq == 0) != (self.sha256 == ""):
            raise ValueError(f"not a chain head: {self.seq} {self.sha256!r}")


@dataclass(frozen=True)
class Decision:
    chain: str
    seq: int
    record: bytes
    sha256: str
    signature: bytes | None
    signer: str
    ca_name: str | None
    cert_serial: str | None
    at: datetime

    @property
    def fields(self) -> dict[str, Any]:
        return json.loads(self.record)

    def to_dict(self) -> dict[str, Any]:
        return {"chain": self.chain, "seq": self.seq, "sha256": self.sha256, "signed": self.signature is not None,
                "signer": self.signer, "certificate": f"{self.ca_name}:{self.cert_serial.upper()}"
                if self.cert_serial else None, "at": self.at.isoformat(), "record": self.fields}


def _bytes(value: Any) -> bytes:
    """A stored byte string — also when someone rewrote it with SQL that turned it into text."""
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


def _decision(row: Any) -> Decision:
    return Decision(chain=row["chain"], seq=row["seq"], record=_bytes(row["record"]), sha256=row["sha256"],
                    signature=_bytes(row["signature"]) if row["signature"] is not None else None,
                    signer=row["signer"], ca_name=row["ca_name"], cert_serial=row["cert_serial"], at=row["at"])


# --------------------------------------------------------------------------- who signs

def certificate_problem(conn: Any, ca_name: str, serial: str, at: datetime) -> str | None:
    """Why the certificate (ca, serial) cannot sign at `at`, or None if it can."""
    row = conn.execute(sa.select(certificates.c.status, certificates.c.not_before, certificates.c.not_after,
                                 certificates.c.revoked_at, certificates.c.revocation_reason)
                       .join(cas, cas.c.id == certificates.c.ca_id)
                       .where(cas.c.name == ca_name, certificates.c.serial == serial)).first()
    if row is None:
        return f"certificate {ca_name}:{serial.upper()} is unknown to this home"
    return _status_problem(row._mapping, serial, at)


def _status_problem(row: Mapping[str, Any], serial: str, at: datetime) -> str | None:
    if row["status"] is None:
        return f"certificate {serial.upper()} is unknown to this home"
    if row["status"] in ("held", "revoked") and row["revoked_at"] is not None and row["revoked_at"] <= at:
        return (f"certificate {serial.upper()} was {row['status']} ({row['revocation_reason']}) on "
                f"{row['revoked_at']:%Y-%m-%d %H:%M} UTC")
    if row["status"] == "reserved":
        return f"certificate {serial.upper()} was never recorded as issued"
    if not row["not_before"] <= at <= row["not_after"]:
        return (f"certificate {serial.upper()} was not valid at {at:%Y-%m-%d %H:%M} UTC (valid "
                f"{row['not_before']:%Y-%m-%d} to {row['not_after']:%Y-%m-%d})")
    return None


def _active_certificate(conn: Any, account_id: str) -> Any:
    return conn.execute(sa.select(account_keys).where(
        account_keys.c.account_id == account_id, account_keys.c.state == "active")
        .order_by(account_keys.c.id.desc()).limit(1)).mappings().first()


#: the statements of every signed act, built once (building one costs more than running it on SQLite).
#: The signer's in one statement: the active key, its certificate's status and validity, its CA's
#: distinguishing ID
SIGNING_KEY_COLUMNS = (account_keys.c.id.label("key_id"), account_keys.c.public_key_der, account_keys.c.ca_name,
                       account_keys.c.cert_serial, cas.c.distid, certificates.c.status, certificates.c.not_before,
                       certificates.c.not_after, certificates.c.revoked_at, certificates.c.revocation_reason)


def signing_key_join(left: Any, account_id: Any) -> Any:
    """`left` outer-joined with the account's active signing key (its newest), the key's CA and its
    certificate: SIGNING_KEY_COLUMNS are NULL when the account holds none.  `Accounts.require(…,
    signing_key=True)` reads them in its own statement."""
    active = account_keys.alias("active_keys")
    newest = (sa.select(sa.func.max(active.c.id))
              .where(active.c.account_id == account_id, active.c.state == "active").scalar_subquery())
    return (left.outerjoin(account_keys, account_keys.c.id == newest)
            .outerjoin(cas, cas.c.name == account_keys.c.ca_name)
            .outerjoin(certificates, sa.and_(certificates.c.ca_id == cas.c.id,
                                             certificates.c.serial == account_keys.c.cert_serial)))


_SIGNING_KEY = (sa.select(*SIGNING_KEY_COLUMNS).select_from(signing_key_join(accounts, accounts.c.id))
                .where(accounts.c.id == sa.bindparam("account_id")))
_CHAIN_HEAD = (sa.select(decisions.c.seq, decisions.c.sha256).where(decisions.c.chain == sa.bindparam("chain"))
               .order_by(decisions.c.seq.desc()).limit(1))
_DECISION_INSERT = decisions.insert()
_INSERTED = ("chain", "seq", "record", "sha256", "signature", "signer", "key_id", "ca_name", "cert_serial", "at")


def _insert_if_chain_ends_at() -> sa.Insert:
    """The next record, inserted only while no record follows `head_seq` in its chain: the check and
    the write in one statement (a guard read the head before the write transaction began)."""
    params = {name: sa.bindparam(name, type_=decisions.c[name].type) for name in _INSERTED}
    later = (sa.select(decisions.c.seq).where(decisions.c.chain == params["chain"],
                                             decisions.c.seq > sa.bindparam("head_seq", type_=sa.Integer)))
    # the binary columns cast: PostgreSQL takes an untyped NULL in a SELECT list for text (the others
    # carry their type already; a CAST AS DATETIME would make SQLite store a number)
    values = [sa.cast(param, sa.LargeBinary) if isinstance(decisions.c[name].type, sa.LargeBinary) else param
              for name, param in params.items()]
    return (decisions.insert().from_select(list(_INSERTED), sa.select(*values).where(~later.exists()))
            .returning(decisions.c.seq))          # no row: not inserted (rowcount is not kept for an INSERT)


_DECISION_INSERT_AFTER_HEAD = _insert_if_chain_ends_at()


def chain_head_columns(chain: Any) -> tuple[Any, Any]:
    """Two scalar subqueries a reader adds to its own statement: the seq and the SHA-256 of the last
    record of `chain` (a column or a bound parameter); NULL for an empty chain (`ChainHead.of_row`)."""
    def last(column: Any) -> Any:
        return (sa.select(column).where(decisions.c.chain == chain).order_by(decisions.c.seq.desc()).limit(1)
                .scalar_subquery())
    return last(decisions.c.seq).label("chain_head_seq"), last(decisions.c.sha256).label("chain_head_sha256")


def chain_head_of(seq: int | None, sha256: str | None) -> ChainHead:
    """The `ChainHead` of the two values `chain_head_columns` read."""
    return ChainHead(0, "") if seq is None else ChainHead(seq, sha256 or "")


#: `signer_for(…, key_row=KEY_UNREAD)`: the key is read there
KEY_UNREAD: Any = object()


def signer_for(home: Home, actor: Actor, *, conn: Any = None, what: str = "this act",
               key_row: Any = KEY_UNREAD) -> Signer:
    """The actor's signer, checked now: a key unlocked in the session, bound to the account, whose
    certificate is issued, not held or revoked, and valid.  SigningKeyError says what is missing.
    `key_row`: SIGNING_KEY_COLUMNS as the caller read them moments ago (`Accounts.require(…,
    signing_key=True)`); otherwise they are read here."""
    if key_row is KEY_UNREAD:
        if conn is None:
            with home.store.read() as c:
                return signer_for(home, actor, conn=c, what=what)
        key_row = conn.execute(_SIGNING_KEY, {"account_id": actor.account_id}).mappings().first()
    row = key_row
    if row is None or row["cert_serial"] is None:
        raise SigningKeyError(f"{what} is signed with the actor's own certificate, and {actor.account_id} holds no "
                              "person certificate (yinxin account key-request; an RA officer approves, a CA "
                              "operator issues)", account=actor.account_id)
    key = signing_key_of(actor)
    if key is None:
        raise SigningKeyError(f"{what} is signed with {actor.account_id}'s personal key, which this session has "
                              "not unlocked: log in with the PIN (yinxin login … --pin-file)",
                              account=actor.account_id)
    if key.public_key().to_der() != bytes(row["public_key_der"]):
        raise SigningKeyError(f"the key unlocked in this session is not {actor.account_id}'s current signing key: "
                              "log in again", account=actor.account_id)
    problem = _status_problem(row, row["cert_serial"], home.clock.now())
    if problem is not None:
        raise SigningKeyError(f"{actor.account_id} cannot sign: {problem}", account=actor.account_id)
    distid = bytes(row["distid"]) if key.algorithm == "sm2" else None
    return Signer(account_id=actor.account_id, key=key, key_id=row["key_id"], ca_name=row["ca_name"],
                  serial=row["cert_serial"], distid=distid)


def holds_certificate(conn: Any, account_id: str, at: datetime) -> bool:
    row = _active_certificate(conn, account_id)
    return row is not None and row["cert_serial"] is not None and \
        certificate_problem(conn, row["ca_name"], row["cert_serial"], at) is None


def ra_signer(home: Home, actor: Actor, *, conn: Any = None) -> Signer | None:
    """The signer of an RA decision, or None for an unsigned bootstrap decision (see the module
    docstring).  Raises SigningKeyError when the decision must be signed and cannot be."""
    if conn is None:
        with home.store.read() as c:
            return ra_signer(home, actor, conn=c)
    from .accounts import Accounts
    policy = Accounts.of(home).policy
    now = home.clock.now()
    if holds_certificate(conn, actor.account_id, now):
        return signer_for(home, actor, conn=conn, what="an RA decision")
    if not policy.ra_decisions_signed:
        return None
    certified = 0
    for account_id, roles in conn.execute(sa.select(accounts.c.id, accounts.c.roles)
                                          .where(accounts.c.disabled.is_(False))):
        if "ra_officer" in json.loads(roles) and holds_certificate(conn, account_id, now):
            certified += 1
    if certified >= 2:
        raise SigningKeyError(f"RA decisions are signed with the officer's own certificate, and {actor.account_id} "
                              "holds none (yinxin account key-request)", account=actor.account_id)
    return None


# --------------------------------------------------------------------------- writing

def append(conn: Any, home: Home, *, chain: str, actor: Actor, signer: Signer | None, at: datetime,
           fields: Mapping[str, Any], bootstrap: bool = False, head: ChainHead | None = None) -> Decision:
    """Inside the caller's write transaction: the chain's next record, signed by `signer` (None only
    for an RA bootstrap decision).  `head`: where the caller's guard saw the chain end (read with
    `chain_head_columns`); the record follows it, and DecisionChainMoved (nothing written) if another
    act appended since.  Without it the head is read here."""
    from .accounts import Accounts
    if signer is None and not bootstrap:
        raise ValueError("an unsigned decision is only an RA bootstrap decision")
    if signer is not None and signer.account_id != actor.account_id:
        raise ValueError("the signer is not the actor")
    if head is None:
        last = conn.execute(_CHAIN_HEAD, {"chain": chain}).first()
        prev = ChainHead(0, "") if last is None else ChainHead(last.seq, last.sha256)
    else:
        prev = head
    seq = prev.seq + 1
    record = dict(fields)
    record.update(kind=KIND, home=Accounts.of(home).home_id(), chain=chain, seq=seq,
                  prev=prev.sha256, time=record_time(at), actor=actor.account_id,
                  actor_name=actor.name,
                  certificate={"ca": signer.ca_name, "serial": openssl_serial(signer.serial)} if signer else None)
    if bootstrap:
        record["bootstrap"] = True
    data = canonical(record)
    signature = signer.key.sign(data, distid=signer.distid) if signer is not None else None
    digest = hashlib.sha256(data).hexdigest()
    values = {"chain": chain, "seq": seq, "record": data, "sha256": digest, "signature": signature,
              "signer": actor.account_id, "key_id": signer.key_id if signer else None,
              "ca_name": signer.ca_name if signer else None, "cert_serial": signer.serial if signer else None,
              "at": at}
    if head is None:
        conn.execute(_DECISION_INSERT, values)
    elif conn.execute(_DECISION_INSERT_AFTER_HEAD, {**values, "head_seq": head.seq}).first() is None:
        raise DecisionChainMoved(f"another act was recorded in {chain} while this one was checked: nothing was "
                                 "written; look again and retry", chain=chain, seq=seq)
    return Decision(chain, seq, data, digest, signature, actor.account_id, signer.ca_name if signer else None,
                    signer.serial if signer else None, at)


def chain_records(home: Home, chain: str) -> list[Decision]:
    with home.store.read() as conn:
        return [_decision(r) for r in conn.execute(sa.select(decisions).where(decisions.c.chain == chain)
                                                   .order_by(decisions.c.seq)).mappings()]


def chains(home: Home, prefix: str | None = None) -> list[str]:
    query = sa.select(decisions.c.chain).distinct().order_by(decisions.c.chain)
    if prefix:
        query = query.where(decisions.c.chain.startswith(prefix, autoescape=True))
    with home.store.read() as conn:
        return [c for (c,) in conn.execute(query)]


# --------------------------------------------------------------------------- verifying

@dataclass(frozen=True)
class RecordCheck:
    seq: int
    action: str | None
    actor: str | None
    at: str | None
    signed: bool
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "action": self.action, "actor": self.actor, "time": self.at, "signed": self.signed,
                "ok": self.ok, "problem": self.problem}

    def describe(self) -> str:
        what = " ".join(x for x in (self.action, f"by {self.actor}" if self.actor else None,
                                    f"at {self.at}" if self.at else None) if x)
        return f"record {self.seq}" + (f" ({what})" if what else "")


@dataclass(frozen=True)
class ChainReport:
    chain: str
    records: tuple[RecordCheck, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.records)

    @property
    def first_problem(self) -> RecordCheck | None:
        return next((r for r in self.records if not r.ok), None)

    def to_dict(self) -> dict[str, Any]:
        bad = self.first_problem
        return {"chain": self.chain, "ok": self.ok, "records": [r.to_dict() for r in self.records],
                "first_bad": bad.to_dict() if bad else None}


class _CaKeys:
    """The home's CAs: public keys, distinguishing IDs, and whether each CA's certificate chain holds."""

    def __init__(self, home: Home) -> None:
        from ..ca import CertificateAuthority
        self.authority = CertificateAuthority(home)
        self.infos = {i.name: i for i in self.authority.cas()}
        self._chain_ok: dict[str, str | None] = {}

    def chain_problem(self, name: str) -> str | None:
        if name not in self._chain_ok:
            from ..x509 import verify_certificate_signature
            info = self.infos.get(name)
            problem = None
            if info is None:
                problem = f"CA {name} is unknown to this home"
            else:
                parent = self.infos.get(info.parent) if info.parent else info
                try:
                    verify_certificate_signature(info.certificate, parent.public_key(), distid=parent.sign_distid)
                except YinxinError:
                    problem = f"the certificate of CA {name} does not verify"
                if problem is None and info.parent:
                    problem = self.chain_problem(info.parent)
            self._chain_ok[name] = problem
        return self._chain_ok[name]


def verify_records(home: Home, chain: str, rows: Iterable[Decision], *,
                   check_fields: Any = None) -> ChainReport:
    """Check a chain's records: numbering, canonical bytes, links, signatures, each signer's
    certificate (issued by this home's CA, the CA chain, bound to the signer's account, not revoked
    or held at the time of the act, valid then).  `check_fields(decision, fields)` may add the
    subject's own checks and returns a problem or None."""
    from .accounts import Accounts
    cas_ = _CaKeys(home)
    home_id = Accounts.of(home).home_id()
    checks: list[RecordCheck] = []
    prev_sha = ""
    expected = 1
    with home.store.read() as conn:
        for d in rows:
            problem: str | None = None
            fields: dict[str, Any] = {}
            try:
                fields = json.loads(d.record.decode("utf-8"))
                if not isinstance(fields, dict):
                    raise ValueError
            except (UnicodeDecodeError, ValueError):
                problem = "the record is not a JSON object (edited)"
            action = fields.get("action") if isinstance(fields.get("action"), str) else None
            actor = fields.get("actor") if isinstance(fields.get("actor"), str) else d.signer
            at_text = fields.get("time") if isinstance(fields.get("time"), str) else None
            if problem is None and d.seq != expected:
                problem = (f"record {expected} is missing (deleted)" if d.seq > expected else "records out of order")
            if problem is None:
                try:
                    if canonical(fields) != d.record:
                        problem = "the record is not in canonical form (edited)"
                except ValueError:
                    problem = "the record is not in canonical form (edited)"
            if problem is None and hashlib.sha256(d.record).hexdigest() != d.sha256:
                problem = "the record's bytes do not match their stored digest (edited)"
            if problem is None and (fields.get("kind") != KIND or fields.get("chain") != chain
                                    or fields.get("seq") != d.seq or fields.get("home") != home_id):
                problem = "the record names another chain, number or home"
            if problem is None and fields.get("prev") != prev_sha:
                problem = "the record does not follow the previous record (its prev digest differs)"
            if problem is None and (fields.get("actor") != d.signer or at_text != record_time(d.at)):
                problem = "the record's actor or time differs from the stored decision"
            if problem is None:
                problem = _signature_problem(conn, cas_, d, fields)
            if problem is None and check_fields is not None:
                problem = check_fields(d, fields)
            checks.append(RecordCheck(d.seq, action, actor, at_text, d.signature is not None, problem))
            prev_sha = hashlib.sha256(d.record).hexdigest()
            expected = d.seq + 1
    return ChainReport(chain, tuple(checks))


def _signature_problem(conn: Any, cas_: _CaKeys, d: Decision, fields: Mapping[str, Any]) -> str | None:
    from ..errors import InvalidSignature
    from ..x509 import certificate_public_key, load_certificate, verify_certificate_signature
    if d.signature is None:
        if fields.get("bootstrap") is True and fields.get("certificate") is None and d.chain.split(":")[0] in (
                "application", "certificate", "bulk"):
            return None          # an RA bootstrap decision: unsigned by design, reported as such
        return "the record is not signed"
    cert_field = fields.get("certificate")
    if not isinstance(cert_field, Mapping) or cert_field.get("ca") != d.ca_name or d.cert_serial is None \
            or cert_field.get("serial") != openssl_serial(d.cert_serial):
        return "the record names another certificate than the one it is stored with"
    row = conn.execute(sa.select(certificates.c.cert_der).join(cas, cas.c.id == certificates.c.ca_id)
                       .where(cas.c.name == d.ca_name, certificates.c.serial == d.cert_serial)).first()
    if row is None or row.cert_der is None:
        return f"the signer's certificate {d.ca_name}:{d.cert_serial.upper()} is unknown to this home"
    info = cas_.infos.get(d.ca_name)
    if info is None:
        return f"CA {d.ca_name} is unknown to this home"
    cert = load_certificate(bytes(row.cert_der))
    try:
        verify_certificate_signature(cert, info.public_key(), distid=info.sign_distid)
    except YinxinError:
        return f"the signer's certificate {d.cert_serial.upper()} was not issued by CA {d.ca_name}"
    chain_problem = cas_.chain_problem(d.ca_name)
    if chain_problem is not None:
        return chain_problem
    bound = conn.execute(sa.select(account_keys.c.account_id).where(
        account_keys.c.ca_name == d.ca_name, account_keys.c.cert_serial == d.cert_serial)).scalar()
    if bound != d.signer:
        return f"certificate {d.cert_serial.upper()} is not bound to {d.signer}'s account"
    status = certificate_problem(conn, d.ca_name, d.cert_serial, d.at)
    if status is not None:
        return status
    public = certificate_public_key(cert)
    try:
        public.verify(d.signature, d.record, distid=info.distid if public.algorithm == "sm2" else None)
    except (InvalidSignature, ValueError):
        return "the signature does not verify over the record's bytes"
    return None
