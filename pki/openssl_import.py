"""Migration from OpenSSL: import an ``openssl ca`` database (index.txt) into a yinxin CA.

index.txt has one certificate per line, six tab-separated fields::

    status  expiry  revocation  serial  filename  subject
    V       261231235959Z               1A2B      unknown   /C=CN/O=…/CN=…
    R       261231235959Z  250102030405Z,keyCompromise  1A2C  unknown  /CN=…

status is V (valid), R (revoked) or E (expired, as ``openssl ca -updatedb``
marks it); times are UTCTime ``YYMMDDHHMMSSZ`` or GeneralizedTime
``YYYYMMDDHHMMSSZ``.  The revocation field is ``time[,reason[,extra]]`` with
OpenSSL's reason names (case-insensitive): unspecified, keyCompromise,
CACompromise, affiliationChanged, superseded, cessationOfOperation,
certificateHold, removeFromCRL, and the pseudo-reasons holdInstruction
(certificateHold with a hold-instruction OID), keyTime and CAkeyTime
(keyCompromise / CACompromise with the compromise time in GeneralizedTime).

Decisions:

* **All or nothing.**  Every line is checked first; if any is bad, the error
  lists the bad lines by number and nothing is written.  A good import runs in
  one transaction with one audit event.
* **Idempotent.**  A certificate already in the CA with the same state is left
  alone; importing the same file twice changes nothing (no write, no event).
  A later index may move a certificate forward — valid → revoked or held,
  held → revoked or released (removeFromCRL) — which is applied as a status
  change; a contradiction (yinxin has it revoked, the index valid; another
  expiry; another revocation time or reason) is a bad line.
* **The issuer must be the CA.**  With ``certs_dir`` (openssl's
  ``new_certs_dir``: files named ``<SERIAL>.pem``, or any ``*.pem``/``*.crt``/
  ``*.cer``/``*.der`` holding one certificate) every line needs its
  certificate, whose issuer name and authority key identifier must be the
  CA's, whose signature must verify with the CA's key, and whose serial and
  notAfter must match the line.  Without it the index alone is imported (the
  issuer cannot be checked; notBefore is then unknown and recorded as
  1970-01-01, the public-key fingerprint as empty).
* Imported records have profile ``imported``, no application, no identity
  number (they take no 一人一证 slot), and the default 5-year retention.
  State: V/E → issued (expiry is read from notAfter); R → revoked;
  certificateHold/holdInstruction → held; removeFromCRL → issued, released at
  that time.  Compromise times (keyTime/CAkeyTime) and hold-instruction OIDs
  have no place in the store: they are counted in the result, not kept.
* ``status_changed_at`` of what is written is the import time, so the next
  delta CRL lists the imported revocations (they were never in one of ours).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import sqlalchemy as sa
from asn1crypto import x509 as asn1_x509

from . import audit
from .ca import CaInfo, CertificateAuthority
from .errors import CertificateError, PolicyError
from .store import certificates
from .x509 import (certificate_public_key, load_certificate, name_to_text, parse_name,
                   verify_certificate_signature)

__all__ = ["BadLine", "ImportProblems", "ImportResult", "IndexEntry", "import_openssl_index", "parse_index"]

UTC = timezone.utc
UNKNOWN_NOT_BEFORE = datetime(1970, 1, 1, tzinfo=UTC)
IMPORTED_PROFILE = "imported"
RETENTION_YEARS = 5
_CHUNK = 500
_REPORTED = 20

#: OpenSSL's reason names (lower-cased) → asn1crypto CRLReason names; None: no reason
_REASONS = {"unspecified": "unspecified", "keycompromise": "key_compromise", "cacompromise": "ca_compromise",
            "affiliationchanged": "affiliation_changed", "superseded": "superseded",
            "cessationofoperation": "cessation_of_operation", "certificatehold": "certificate_hold",
            "removefromcrl": "remove_from_crl", "holdinstruction": "certificate_hold",
            "keytime": "key_compromise", "cakeytime": "ca_compromise"}
_HEX_ESCAPE = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+")
_TIME = re.compile(r"(\d{12}|\d{14})Z\Z")

if TYPE_CHECKING:
    from .accounts.actor import Actor


@dataclass(frozen=True)
class IndexEntry:
    line: int
    status: str                       # V | R | E as written
    not_after: datetime
    serial: str                       # the store's form: lowercase hex, no leading zeros
    subject: str
    revoked_at: datetime | None = None
    reason: str | None = None         # asn1crypto name, None when the line gives none
    compromised_at: datetime | None = None
    hold_instruction: str | None = None

    @property
    def target(self) -> dict[str, Any]:
        """The record's status columns this line asks for."""
        if self.status in ("V", "E"):
            return {"status": "issued", "revoked_at": None, "revocation_reason": None}
        if self.reason == "remove_from_crl":
            return {"status": "issued", "revoked_at": None, "revocation_reason": None,
                    "released_at": self.revoked_at}
        if self.reason == "certificate_hold":
            return {"status": "held", "revoked_at": self.revoked_at, "revocation_reason": "certificate_hold"}
        return {"status": "revoked", "revoked_at": self.revoked_at, "revocation_reason": self.reason}


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


class ImportProblems(PolicyError):
    """Bad lines in an index: nothing was imported."""

    def __init__(self, source: str, bad: list[BadLine]) -> None:
        shown = "; ".join(str(b) for b in bad[:_REPORTED])
        more = f" (and {len(bad) - _REPORTED} more)" if len(bad) > _REPORTED else ""
        super().__init__(f"{source}: {len(bad)} bad line(s), nothing imported: {shown}{more}",
                         bad_lines=[{"line": b.line, "problem": b.problem} for b in bad])
        self.bad = bad


@dataclass(frozen=True)
class ImportResult:
    ca: str
    lines: int
    added: int
    updated: int
    unchanged: int
    by_status: dict[str, int]
    certificates_checked: int
    compromise_times_not_kept: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ca": self.ca, "lines": self.lines, "added": self.added, "updated": self.updated,
                "unchanged": self.unchanged, "by_status": self.by_status,
                "certificates_checked": self.certificates_checked,
                "compromise_times_not_kept": self.compromise_times_not_kept, "dry_run": self.dry_run}


Progress = Callable[[str, int, int], None]   # (phase, done, total)


# --------------------------------------------------------------------------- parsing

def _time(text: str, what: str) -> datetime:
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f"{what} {text!r} is not YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ")
    digits = match.group(1)
    if len(digits) == 12:
        year = int(digits[:2])
        digits = f"{year + (1900 if year >= 50 else 2000)}{digits[2:]}"   # RFC 5280 4.1.2.5.1
    try:
        return datetime(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]), int(digits[8:10]),
                        int(digits[10:12]), int(digits[12:14]), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a valid date") from None


#: labels `name_to_text` writes, as OpenSSL's one-line form spells them
_PLAIN_LABELS = frozenset({"C", "ST", "L", "street", "O", "OU", "CN", "serialNumber", "emailAddress", "UID",
                           "DC", "title", "GN", "SN"})
_RFC4514_SPECIAL = re.compile(r'[,+"\\<>;=#\x00-\x1f\x7f]|^ | $')


def _subject_text(raw: str) -> str:
    """OpenSSL's one-line DN with \\xHH escapes of UTF-8 → our RFC 4514 text (as-is if unparseable).

    The common case — single-valued RDNs of known attributes, values with no character
    RFC 4514 escapes — is rewritten directly (most significant RDN last); anything else goes
    through `parse_name`/`name_to_text` (a tenth of a millisecond a line, too slow for a
    million lines as the only path)."""
    text = _HEX_ESCAPE.sub(_unescape_utf8, raw) if "\\x" in raw else raw
    if text.startswith("/") and "\\" not in text:
        pairs = [part.partition("=") for part in text[1:].split("/")]
        if all(sep and label in _PLAIN_LABELS and value and not _RFC4514_SPECIAL.search(value)
               for label, sep, value in pairs):
            return ",".join(f"{label}={value}" for label, _, value in reversed(pairs))
    try:
        return name_to_text(parse_name(text))
    except Exception:
        return text


def _unescape_utf8(match: re.Match[str]) -> str:
    data = bytes.fromhex(match.group(0).replace("\\x", ""))
    return data.decode("utf-8", errors="backslashreplace")


def _parse_line(number: int, line: str) -> IndexEntry:
    fields = line.split("\t")
    if len(fields) != 6:
        raise ValueError(f"{len(fields)} tab-separated fields, expected 6")
    status, expiry, revocation, serial_text, _filename, subject = fields
    if status not in ("V", "R", "E"):
        raise ValueError(f"status {status!r} is not V, R or E")
    not_after = _time(expiry, "expiry")
    try:
        serial = int(serial_text, 16)
    except ValueError:
        raise ValueError(f"serial {serial_text!r} is not hexadecimal") from None
    if serial <= 0 or serial.bit_length() > 160:
        raise ValueError(f"serial {serial_text} is not a positive number of at most 20 octets")
    entry: dict[str, Any] = {"line": number, "status": status, "not_after": not_after,
                             "serial": f"{serial:x}", "subject": _subject_text(subject)}
    if status == "R":
        if not revocation:
            raise ValueError("a revoked (R) line needs a revocation date")
        parts = revocation.split(",")
        if len(parts) > 3:
            raise ValueError(f"revocation field {revocation!r} has too many parts")
        entry["revoked_at"] = _time(parts[0], "revocation date")
        if len(parts) >= 2:
            name = parts[1].lower()
            if name not in _REASONS:
                raise ValueError(f"unknown revocation reason {parts[1]!r}")
            entry["reason"] = _REASONS[name]
            if name in ("keytime", "cakeytime", "holdinstruction"):
                if len(parts) != 3 or not parts[2]:
                    raise ValueError(f"reason {parts[1]} needs a third part")
                if name == "holdinstruction":
                    if not re.fullmatch(r"\d+(\.\d+)+", parts[2]):
                        raise ValueError(f"hold instruction {parts[2]!r} is not an OID")
                    entry["hold_instruction"] = parts[2]
                else:
                    entry["compromised_at"] = _time(parts[2], "compromise time")
            elif len(parts) == 3:
                raise ValueError(f"reason {parts[1]} takes no third part")
    elif revocation:
        raise ValueError(f"a {status} line has a revocation field ({revocation!r})")
    return IndexEntry(**entry)


def parse_index(text: str, *, progress: Progress | None = None) -> tuple[list[IndexEntry], list[BadLine]]:
    """Every entry and every bad line (1-based numbers) of index.txt's text."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    entries, bad = [], []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            entry = _parse_line(number, line)
        except ValueError as exc:
            bad.append(BadLine(number, str(exc)))
        else:
            if entry.serial in seen:
                bad.append(BadLine(number, f"serial {entry.serial.upper()} is also on line {seen[entry.serial]}"))
            else:
                seen[entry.serial] = number
                entries.append(entry)
        if progress is not None and number % 1000 == 0:
            progress("read", number, len(lines))
    if progress is not None:
        progress("read", len(lines), len(lines))
    return entries, bad


# --------------------------------------------------------------------------- certificates

class _CertificateFiles:
    """Certificate files of a directory by serial: openssl's own name (``<SERIAL>.pem``, upper-case
    hex of even length) is tried first; any other ``*.pem``/``*.crt``/``*.cer``/``*.der`` file is
    read (once, on the first serial not found by name) and matched by the serial inside.  Only
    paths are kept, so a directory of a million certificates does not sit in memory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._scanned: dict[str, Path] | None = None

    def _by_name(self, serial: str) -> Path | None:
        upper = serial.upper()
        upper = "0" * (len(upper) % 2) + upper
        for name in (f"{upper}.pem", f"{serial}.pem"):
            path = self.directory / name
            if path.is_file():
                return path
        return None

    def _scan(self) -> dict[str, Path]:
        if self._scanned is None:
            self._scanned = {}
            for path in sorted(self.directory.iterdir()):
                if path.is_file() and path.suffix.lower() in (".pem", ".crt", ".cer", ".der"):
                    try:
                        cert = load_certificate(path.read_bytes())
                    except (CertificateError, OSError):
                        continue  # not a certificate file: nothing to match
                    self._scanned.setdefault(f"{cert.serial_number:x}", path)
        return self._scanned

    def find(self, serial: str) -> tuple[asn1_x509.Certificate, Path] | None:
        path = self._by_name(serial)
        if path is not None:
            try:
                cert = load_certificate(path.read_bytes())
            except (CertificateError, OSError):
                cert = None
            if cert is not None and f"{cert.serial_number:x}" == serial:
                return cert, path
        path = self._scan().get(serial)
        if path is None:
            return None
        return load_certificate(path.read_bytes()), path


def _check_certificate(entry: IndexEntry, cert: asn1_x509.Certificate, ca: CaInfo, ca_key_id: bytes) -> str | None:
    """Why this certificate does not belong to this line of this CA's index (None: it does)."""
    if cert.issuer.dump() != ca.certificate.subject.dump():
        return f"certificate {entry.serial.upper()} was issued by {name_to_text(cert.issuer)}, not CA {ca.name}"
    aki = cert.authority_key_identifier
    if aki is not None and aki != ca_key_id:
        return f"certificate {entry.serial.upper()}'s authority key identifier is not CA {ca.name}'s key"
    try:
        verify_certificate_signature(cert, ca.public_key(), distid=ca.sign_distid)
    except Exception:  # InvalidSignature, or an algorithm that cannot be the CA's
        return f"certificate {entry.serial.upper()}'s signature does not verify with CA {ca.name}'s key"
    not_after = cert["tbs_certificate"]["validity"]["not_after"].native
    if not_after != entry.not_after:
        return (f"certificate {entry.serial.upper()} expires {not_after:%Y-%m-%d %H:%M:%S}, "
                f"the index says {entry.not_after:%Y-%m-%d %H:%M:%S}")
    return None


# --------------------------------------------------------------------------- import

_FORWARD = {("issued", "revoked"), ("issued", "held"), ("held", "revoked"), ("held", "issued")}


def _compare(entry: IndexEntry, row: Any) -> str | None:
    """'same', 'update', or why the line contradicts the record."""
    target = entry.target
    if row.not_after != entry.not_after:
        return f"serial {entry.serial.upper()} expires {row.not_after:%Y-%m-%d %H:%M:%S} in the CA, " \
               f"{entry.not_after:%Y-%m-%d %H:%M:%S} in the index"
    same = (row.status == target["status"] and row.revoked_at == target["revoked_at"]
            and row.revocation_reason == target["revocation_reason"]
            and ("released_at" not in target or row.released_at == target["released_at"]))
    if same:
        return "same"
    if (row.status, target["status"]) in _FORWARD:
        return "update"
    return (f"serial {entry.serial.upper()} is {row.status}"
            + (f" ({row.revocation_reason} at {row.revoked_at:%Y-%m-%d %H:%M:%S})" if row.revoked_at else "")
            + f" in the CA, the index says {target['status']}"
            + (f" ({target['revocation_reason']} at {target['revoked_at']:%Y-%m-%d %H:%M:%S})"
               if target.get("revoked_at") else ""))


def import_openssl_index(authority: CertificateAuthority, ca_name: str | None, index_data: bytes, *,
                         certs_dir: str | Path | None = None, source: str = "index.txt",
                         actor: "Actor", dry_run: bool = False,
                         progress: Progress | None = None) -> ImportResult:
    """Import an `openssl ca` index into CA `ca_name`: all lines or none (see the module docstring);
    a CA operator's act."""
    from .ca import _require
    home = authority.home
    operator = _require(home, actor, "ca_operator")
    ca = authority.get(ca_name)
    try:
        text = index_data.decode("utf-8")
    except UnicodeDecodeError:
        text = index_data.decode("latin-1")   # OpenSSL escapes non-ASCII; anything else is odd but legible
    entries, bad = parse_index(text, progress=progress)
    lines = sum(1 for line in text.split("\n") if line.strip())

    checked = 0
    files: _CertificateFiles | None = None
    if certs_dir is not None:
        directory = Path(certs_dir)
        if not directory.is_dir():
            raise PolicyError(f"{directory} is not a directory", field="certs")
        files = _CertificateFiles(directory)
        ca_key_id = ca.certificate.key_identifier or ca.public_key().key_identifier()
        for i, entry in enumerate(entries, 1):
            match = files.find(entry.serial)
            if match is None:
                bad.append(BadLine(entry.line, f"no certificate with serial {entry.serial.upper()} in {directory}"))
            else:
                problem = _check_certificate(entry, match[0], ca, ca_key_id)
                if problem:
                    bad.append(BadLine(entry.line, f"{problem} ({match[1].name})"))
                checked += 1
            if progress is not None and (i % 1000 == 0 or i == len(entries)):
                progress("check", i, len(entries))

    now = home.clock.now()
    inserts: list[IndexEntry] = []
    updates: list[tuple[IndexEntry, str]] = []
    unchanged = 0
    c = certificates.c
    with home.store.read() as conn:
        for start in range(0, len(entries), _CHUNK):
            chunk = entries[start:start + _CHUNK]
            rows = {r.serial: r for r in conn.execute(
                sa.select(c.serial, c.status, c.not_after, c.revoked_at, c.revocation_reason, c.released_at)
                .where(c.ca_id == ca.id, c.serial.in_([e.serial for e in chunk])))}
            for entry in chunk:
                row = rows.get(entry.serial)
                if row is None:
                    inserts.append(entry)
                    continue
                verdict = _compare(entry, row)
                if verdict == "same":
                    unchanged += 1
                elif verdict == "update":
                    updates.append((entry, row.status))
                else:
                    bad.append(BadLine(entry.line, verdict or "conflict"))
            if progress is not None:
                progress("compare", min(start + _CHUNK, len(entries)), len(entries))
    if bad:
        raise ImportProblems(source, sorted(bad, key=lambda b: b.line))

    by_status: dict[str, int] = {}
    for entry in entries:
        status = entry.target["status"]
        by_status[status] = by_status.get(status, 0) + 1
    result = ImportResult(ca=ca.name, lines=lines, added=len(inserts), updated=len(updates), unchanged=unchanged,
                          by_status=by_status, certificates_checked=checked,
                          compromise_times_not_kept=sum(1 for e in entries if e.compromised_at is not None
                                                        or e.hold_instruction is not None),
                          dry_run=dry_run)
    if dry_run or not (inserts or updates):
        return result
    with home.store.transaction() as conn:
        done = 0
        for start in range(0, len(inserts), 5000):
            # records are made chunk by chunk (certificate files read again) to keep memory flat
            chunk = [_new_record(ca, entry, _certificate_again(files, entry), now)
                     for entry in inserts[start:start + 5000]]
            conn.execute(certificates.insert(), chunk)
            done += len(chunk)
            if progress is not None:
                progress("write", done, len(inserts) + len(updates))
        for entry, old_status in updates:
            values = dict(entry.target, status_changed_at=now)
            if values["status"] != "issued":
                values["active_key"] = None
            changed = conn.execute(sa.update(certificates).where(
                c.ca_id == ca.id, c.serial == entry.serial, c.status == old_status).values(**values)).rowcount
            if changed != 1:
                raise PolicyError(f"certificate {entry.serial.upper()} changed during the import; "
                                  "nothing imported, try again", serial=entry.serial.upper())
            done += 1
        if progress is not None:
            progress("write", done, len(inserts) + len(updates))
        audit.append(conn, at=now, actor=operator, action="certificate.import", target=f"ca:{ca.name}",
                     details={"source": source, "lines": lines, "added": len(inserts), "updated": len(updates),
                              "unchanged": unchanged, "certificates_checked": checked},
                     result_digest=hashlib.sha256(index_data).hexdigest())
    return result


def _certificate_again(files: _CertificateFiles | None,
                       entry: IndexEntry) -> tuple[asn1_x509.Certificate, Path] | None:
    if files is None:
        return None
    match = files.find(entry.serial)
    if match is None:  # checked a moment ago: the directory changed under the import
        raise PolicyError(f"the certificate file of serial {entry.serial.upper()} disappeared during the import; "
                          "nothing imported", serial=entry.serial.upper())
    return match


def _new_record(ca: CaInfo, entry: IndexEntry, match: tuple[asn1_x509.Certificate, Path] | None,
                now: datetime) -> dict[str, Any]:
    target = entry.target
    record: dict[str, Any] = dict(
        ca_id=ca.id, serial=entry.serial, application_id=None, profile=IMPORTED_PROFILE,
        subject=entry.subject, id_number=None, active_key=None, public_key_fp="",
        not_before=UNKNOWN_NOT_BEFORE, not_after=entry.not_after, status=target["status"], tbs_der=b"",
        cert_der=None, revoked_at=target["revoked_at"], revocation_reason=target["revocation_reason"],
        released_at=target.get("released_at"), status_changed_at=now, predecessor_serial=None,
        retention_years=RETENTION_YEARS, created_at=now)
    if match is not None:
        cert = match[0]
        record.update(subject=name_to_text(cert.subject), public_key_fp=certificate_public_key(cert).fingerprint(),
                      not_before=cert["tbs_certificate"]["validity"]["not_before"].native,
                      tbs_der=cert["tbs_certificate"].dump(), cert_der=cert.dump())
    return record
