"""Bulk issuance: a department's certificates from one CSV file, each row applied for, approved
and issued, a bad row reported by its line number without stopping or spoiling the others.

CSV columns (a header line names them; UTF-8, a BOM is fine):

* ``subject``   — the DN (``/C=CN/O=…/CN=…`` or RFC 4514), required;
* ``id_number`` — the identity number (may be empty; some profiles require it);
* ``csr``       — a PKCS#10 file (relative paths are relative to the CSV file); empty: a key is
                  generated here and written encrypted into the output directory;
* ``applicant`` — optional: who applies (default: the subject's CN);
* ``san``       — optional: subjectAltNames, ``dns:a.example;ip:10.0.0.1``;
* ``algorithm`` — optional: the algorithm of a generated key (default: the run's, else the CA's).

Who is who: each row's applicant applies (the operator files the applications for them), the
approver (`approver`, an RA officer; default the operator, who then must be one too) approves, and
the operator (a CA operator) issues; an approver who is also the row's applicant is refused for
that row (separation of duties).  The approver's approval is one signed decision over the whole
input (chain ``bulk:CA:DIGEST``: the rows' digest, their number, the CA and the profile), made
before any row is recorded.

Rows go in batches through the issuance cycle of `pki.ca` (ARCHITECTURE.md "Issuance cycle"),
with the same records and audit events as one-by-one issuance, in fewer transactions:

1. each row is checked (subject, identity number, SANs, CSR and its proof of possession, profile
   algorithms, one person one certificate — also against the other rows of the file); keys are
   generated and their encrypted files written (made durable with one file-system sync);
2. one transaction, under the store's write lock: one-person-one-certificate checked again, the
   applications recorded as submitted and approved, serials reserved with the TBS about to be
   signed; audit events "application.submit", "application.approve", "certificate.signing";
3. the certificates are signed (the CA key is loaded once) and each signature is verified
   before it leaves (for SM2 and ECDSA OpenSSL does not check its own result; for RSA it does,
   and the check costs 20 µs);
4. one transaction: the certificates recorded as issued, the applications as issued; audit
   events "certificate.signed" (with the certificate's digest) and "certificate.issued";
5. the certificate files are written (temporary files, one sync, renames).

A crash between 2 and 4 leaves reserved serials, which `CertificateAuthority.check()` lists and
which can be revoked, as with single issuance.  If the batch transaction fails as a whole (a
constraint no check foresaw), its rows are retried one by one, so only the bad row fails.

Processes and threads (`pki.bulk_crypto`): for runs of PROCESS_MIN_ROWS rows or more, worker
processes forked for the run check the rows (step 1, proofs of possession included), sign and
verify; the calling process keeps the database, the audit chain and the files.  Otherwise threads
sign and verify beside the calling thread, which checks the rows.  Either way the certificate
files are written by one more thread, and the work overlaps: while batch k is signed, batch k+1 is
reserved and batch k+2 checked; while batch k's files are written, batch k+1 is recorded.  The
order of the cycle within a batch does not change (a certificate is signed only after its
reservation is committed, and recorded only after it is signed), a row is reported only once its
files are durable, and nothing runs on after `issue_bulk` returns or raises.

Plain CSRs (version 1, no attributes, the key's usual signature algorithm, the row's own subject)
are split by a small DER walk instead of a full asn1crypto parse, their proof of possession is
verified by a worker or a crypto thread; anything else takes `pki.x509.load_csr`/`verify_csr`.

TBSCertificates come from `TbsTemplate`: the parts that are the same for every certificate of a
batch (signature algorithm, issuer, validity, extensions but the key identifier and SANs) are
encoded once by `pki.x509.build_tbs_certificate`; per row only the serial, subject, public key,
subject key identifier and SANs are put in.  Batches starting within TEMPLATE_LIFETIME (a minute)
of a template share it, and with it one validity period: a department's certificates of one run
expire together.  The first row of every batch is built both ways and
compared, so a template that went wrong stops the run instead of issuing a wrong certificate
(tests compare the two builders on many more).
"""
from __future__ import annotations

import base64
import collections
import contextlib
import csv
import ctypes
import ctypes.util
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
import threading
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import sqlalchemy as sa
from asn1crypto import csr as asn1_csr, x509 as asn1_x509

from . import audit
from .algorithms import ALGORITHMS, PrivateKey, PublicKey, generate_key, public_key_from_spki
from .bulk_crypto import CaSigning, CryptoPool, fork_available, proof_failures, switching
from .ca import CLOCK_SKEW_ALLOWANCE, CaInfo, CertificateAuthority, _new_serials, format_serial
from .errors import (CertificateError, Conflict, InvalidSignature, KeyFileError, PkiError, PolicyError,
                     StateError, StoreError, YinxinError)
from .profiles import Profile
from .ra import PENDING, active_key, check_id_number, check_san, check_subject
from .sm2 import DEFAULT_DISTID

if TYPE_CHECKING:
    from .accounts.actor import Actor
from .store import applications, cas, certificates, insert_many, insert_many_returning_ids, update_many
from .x509 import (CertificateSpec, _san_extension, build_tbs_certificate, csr_subject,
                   csr_subject_alt_names, load_csr, name_to_text, parse_name, verify_csr)

__all__ = ["BulkRow", "RowResult", "BulkReport", "TbsTemplate", "Subject", "SubjectCache", "read_rows",
           "issue_bulk", "batch_bounds", "spki_key_identifier",
           "write_files_durably", "remove_stale_temp_files", "COLUMNS"]

COLUMNS = ("subject", "id_number", "csr", "applicant", "san", "algorithm")
SAN_KINDS = ("dns", "ip", "email", "uri")
#: batches start small (the first results come quickly) and grow to this
MAX_BATCH = 1024
#: runs of this many rows or more fork worker processes for the public-key work by default
PROCESS_MIN_ROWS = 256
#: batches that start within this time of each other share one validity period (and TBS template):
#: a certificate's notBefore is then at most this much earlier than its issuance, beyond the
#: clock-skew allowance, and its notAfter at most this much earlier than the profile's validity
TEMPLATE_LIFETIME = timedelta(minutes=1)


# --------------------------------------------------------------------------- rows and results

@dataclass(frozen=True)
class BulkRow:
    """One CSV row as written (validated later, so that a bad row fails alone)."""
    line: int
    subject: str
    id_number: str | None = None
    csr: str | None = None                  # path as written in the file
    applicant: str | None = None
    san: str | None = None
    algorithm: str | None = None
    problem: str | None = None              # what made the line unreadable, if anything


@dataclass(frozen=True)
class RowResult:
    line: int
    subject: str
    ok: bool
    serial: str | None = None               # upper-case hex
    application: int | None = None
    certificate_file: str | None = None
    key_file: str | None = None
    error: str | None = None
    error_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "subject": self.subject,
                               "status": "issued" if self.ok else "failed"}
        if self.ok:
            out.update(serial=self.serial, application=self.application,
                       certificate_file=self.certificate_file, key_file=self.key_file)
        else:
            out.update(error=self.error, error_type=self.error_type)
        return out


@dataclass(frozen=True)
class BulkReport:
    ca: str
    profile: str
    results: tuple[RowResult, ...]
    removed_temp_files: tuple[str, ...] = ()

    @property
    def issued(self) -> tuple[RowResult, ...]:
        return tuple(r for r in self.results if r.ok)

    @property
    def failed(self) -> tuple[RowResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"ca": self.ca, "profile": self.profile, "rows": len(self.results),
                "issued": len(self.issued), "failed": len(self.failed),
                "results": [r.to_dict() for r in self.results],
                "removed_temp_files": list(self.removed_temp_files)}


def read_rows(data: bytes | str | os.PathLike[str]) -> list[BulkRow]:
    """Rows of a bulk CSV (bytes, or a path).  A bad header fails the whole file (PolicyError);
    a row with the wrong number of fields still comes back, and fails alone later."""
    if isinstance(data, (str, os.PathLike)):
        try:
            data = Path(data).read_bytes()
        except OSError as exc:
            raise PolicyError(f"cannot read {data}: {exc.strerror}", field="from") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"the CSV file is not UTF-8 (byte {exc.start})", field="from") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[BulkRow] = []
    for fields in reader:
        line = reader.line_num
        if header is None:
            if not any(f.strip() for f in fields):
                continue
            header = [f.strip().lower() for f in fields]
            unknown = [h for h in header if h not in COLUMNS]
            if unknown:
                raise PolicyError(f"line {line}: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})",
                                  field="from", line=line)
            if "subject" not in header:
                raise PolicyError(f"line {line}: the header has no 'subject' column", field="from", line=line)
            if len(set(header)) != len(header):
                raise PolicyError(f"line {line}: a column is named twice", field="from", line=line)
            continue
        if not any(f.strip() for f in fields):
            continue                                    # blank lines are allowed
        if len(fields) != len(header):
            rows.append(BulkRow(line=line, subject=fields[header.index("subject")].strip()
                                if len(fields) > header.index("subject") else "",
                                problem=f"{len(fields)} fields, but the header names {len(header)}"))
            continue
        values = {h: (f.strip() or None) for h, f in zip(header, fields)}
        rows.append(BulkRow(line=line, subject=values.get("subject") or "", id_number=values.get("id_number"),
                            csr=values.get("csr"), applicant=values.get("applicant"), san=values.get("san"),
                            algorithm=values.get("algorithm")))
    if header is None:
        raise PolicyError("the CSV file is empty (a header line naming the columns is needed)", field="from")
    return rows


# --------------------------------------------------------------------------- the TBS template

def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _der_length(len(content)) + content


def _der_integer(value: int) -> bytes:
    # one spare bit keeps a positive INTEGER positive (a leading 00 when the top bit is set)
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


_VERSION_V3 = b"\xa0\x03\x02\x01\x02"
_SKI_OID = "key_identifier"
_AKI_OID = "authority_key_identifier"


@dataclass(frozen=True)
class TbsTemplate:
    """TBSCertificates of one CA, profile and validity period (see the module docstring)."""

    signature_algorithm: bytes
    issuer: bytes
    validity: bytes
    before_ski: bytes           # extensions before the subject key identifier
    ski_head: bytes             # the SKI extension without its 20-octet value
    after_ski: bytes            # the authority key identifier (SANs follow it)
    after_san: bytes            # CRL DP, AIA, ocsp-nocheck, policies
    spec_values: Mapping[str, Any] = field(repr=False)

    @classmethod
    def make(cls, *, ca: CaInfo, ca_key_public: PublicKey, profile: Profile, not_before: datetime,
             not_after: datetime, sample_subject: asn1_x509.Name, sample_key: PublicKey) -> "TbsTemplate":
        ca_cert = ca.certificate
        urls = ca.urls()
        values = dict(
            issuer=ca_cert.subject, not_before=not_before, not_after=not_after,
            issuer_key_identifier=ca_cert.key_identifier or ca.public_key().key_identifier(),
            key_usage=profile.key_usage, extended_key_usage=profile.extended_key_usage,
            crl_urls=(urls["crl"],) if urls else (), ocsp_urls=(urls["ocsp"],) if urls else (),
            ca_issuers_urls=(urls["ca_issuers"],) if urls else (), ocsp_no_check=profile.ocsp_no_check,
            extended_key_usage_critical=profile.extended_key_usage_critical)
        sigalg = ca_key_public.signature_algorithm()
        proto = build_tbs_certificate(CertificateSpec(subject=sample_subject, serial=1 << 64,
                                                      public_key=sample_key, **values), sigalg)
        exts = list(proto["extensions"])
        ids = [e["extn_id"].native for e in exts]
        if ids.count(_SKI_OID) != 1 or ids.count(_AKI_OID) != 1 or ids.index(_AKI_OID) != ids.index(_SKI_OID) + 1 \
                or "subject_alt_name" in ids:
            raise CertificateError("unexpected extension layout for a bulk template", field="profile")
        ski_at = ids.index(_SKI_OID)
        ski = exts[ski_at].dump()
        if len(sample_key.key_identifier()) != 20 or not ski.endswith(sample_key.key_identifier()):
            raise CertificateError("unexpected subject key identifier encoding", field="profile")
        return cls(signature_algorithm=proto["signature"].dump(), issuer=proto["issuer"].dump(),
                   validity=proto["validity"].dump(),
                   before_ski=b"".join(e.dump() for e in exts[:ski_at]), ski_head=ski[:-20],
                   after_ski=exts[ski_at + 1].dump(),
                   after_san=b"".join(e.dump() for e in exts[ski_at + 2:]), spec_values=values)

    def spec(self, serial: int, subject: asn1_x509.Name, public_key: PublicKey,
             sans: Sequence[tuple[str, str]]) -> CertificateSpec:
        """The CertificateSpec the reference builder takes for the same certificate (validates it)."""
        return CertificateSpec(subject=subject, serial=serial, public_key=public_key,
                               subject_alt_names=tuple(sans), **self.spec_values)

    def tbs(self, serial: int, subject_der: bytes, spki_der: bytes, key_identifier: bytes,
            san_extension: bytes = b"") -> bytes:
        """The DER TBSCertificate, as build_tbs_certificate(...).dump() would give it."""
        if len(key_identifier) != 20:
            raise CertificateError("subject key identifier must be 20 octets", field="public_key")
        extensions = _tlv(0x30, self.before_ski + self.ski_head + key_identifier + self.after_ski
                          + san_extension + self.after_san)
        return _tlv(0x30, _VERSION_V3 + _der_integer(serial) + self.signature_algorithm + self.issuer
                    + self.validity + subject_der + spki_der + _tlv(0xA3, extensions))

    def certificate(self, tbs_der: bytes, signature: bytes) -> bytes:
        return _tlv(0x30, tbs_der + self.signature_algorithm + _tlv(0x03, b"\x00" + signature))


def san_extension_der(sans: Sequence[tuple[str, str]], subject_empty: bool = False) -> bytes:
    if not sans:
        return b""
    return asn1_x509.Extension(_san_extension(sans, critical=subject_empty)).dump()


def _element(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at `offset`, which must end
    by `end`; ValueError for anything but a minimal definite length (what DER allows)."""
    if offset + 2 > end:
        raise ValueError("truncated")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag number")
    if first < 0x80:
        start, length = offset + 2, first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or data[offset + 2] == 0:
            raise ValueError("length encoding")
        length = int.from_bytes(data[offset + 2:offset + 2 + count], "big")
        if length < 0x80:
            raise ValueError("length not minimal")
        start = offset + 2 + count
    if start + length > end:
        raise ValueError("truncated")
    return tag, start, start + length


def spki_key_identifier(spki_der: bytes) -> bytes:
    """RFC 5280 method 1 from SubjectPublicKeyInfo DER, without asn1crypto: SHA-1 of the
    subjectPublicKey bits (what `PublicKey.key_identifier()` gives)."""
    try:
        _tag, start, end = _element(spki_der, 0, len(spki_der))
        _tag, _s, algorithm_end = _element(spki_der, start, end)
        tag, bits_start, bits_end = _element(spki_der, algorithm_end, end)
        if tag != 0x03 or spki_der[bits_start] != 0:
            raise ValueError("not a bit string")
    except (ValueError, IndexError):
        raise CertificateError("malformed SubjectPublicKeyInfo", field="public_key") from None
    return hashlib.sha1(spki_der[bits_start + 1:bits_end]).digest()


@dataclass(frozen=True)
class Subject:
    """A subject DN as bulk issuance uses it: DER, RFC 4514 text, attribute labels, CN."""
    written: str                # as in the file
    der: bytes                  # == parse_name(written).dump()
    text: str                   # == name_to_text(parse_name(written))
    labels: frozenset[str]      # == ra.subject_attributes(parse_name(written))
    common_name: str | None

    def name(self) -> asn1_x509.Name:
        """The asn1crypto Name, through pki.x509.parse_name itself."""
        return parse_name(self.written)


_NAME_TYPES: dict[str, bytes] = {}


def _name_type_der(asn1_name: str) -> bytes:
    der = _NAME_TYPES.get(asn1_name)
    if der is None:
        der = _NAME_TYPES[asn1_name] = asn1_x509.NameType(asn1_name).dump()
    return der


class SubjectCache:
    """`pki.x509.parse_name` for many DNs that share most attributes (a department's C, O, OU):
    each attribute value is encoded by pki.x509 once and reused.  Multi-valued RDNs, e-mail and
    DC attributes and anything parse_name refuses take parse_name itself; tests compare both."""

    def __init__(self, limit: int = 50_000) -> None:
        # (type, value) -> (RDN DER, RFC 4514 text, attribute label, the value if it is a CN)
        self._avas: dict[tuple[str, str], tuple[bytes, str, str, str | None]] = {}
        # '/C=CN/O=x/OU=y' -> its RDNs: the part a department's rows share before their own CN
        self._heads: dict[str, list[tuple[bytes, str, str, str | None]]] = {}
        self._limit = limit

    def subject(self, written: str) -> Subject:
        from . import x509 as _x509
        stripped = written.lstrip()
        if not stripped.strip():
            return self._slow(written)
        plain = stripped.startswith("/") and "\\" not in stripped
        cut = stripped.rfind("/") if plain else -1
        if cut > 0:
            head = self._heads.get(stripped[:cut])
            if head is not None:
                tail = self._rdns(self._split_plain(stripped[cut:]), written)
                if tail is not None:
                    return self._subject(written, head + tail)
        try:
            if plain:
                rdns = self._split_plain(stripped)
            else:
                rdns = _x509._split_openssl(stripped) if stripped.startswith("/") \
                    else list(reversed(_x509._split_rfc4514(stripped)))
        except YinxinError:
            return self._slow(written)
        avas = self._rdns(rdns, written)
        if avas is None:
            return self._slow(written)
        if cut > 0 and len(avas) == stripped.count("/") and len(self._heads) < self._limit:
            self._heads[stripped[:cut]] = avas[:-1]
        return self._subject(written, avas)

    @staticmethod
    def _split_plain(text: str) -> list[list[tuple[str, str]]] | None:
        """'/T=v/T=v' without escapes, split on '/' and '=' as _split_openssl does; None if a
        component has no '=' (parse_name then says what is wrong)."""
        rdns = [[(attr_type.strip(), value)] for attr_type, sep, value in
                (component.partition("=") for component in text[1:].split("/")) if sep]
        return rdns if len(rdns) == text.count("/") else None

    def _rdns(self, rdns: list[list[tuple[str, str]]] | None,
              written: str) -> list[tuple[bytes, str, str, str | None]] | None:
        from . import x509 as _x509
        from .ra import _SHORT
        if rdns is None:
            return None
        out = []
        for rdn in rdns:
            if len(rdn) != 1:
                return None
            attr_type, value = rdn[0]
            attr = _x509._BY_LABEL.get(attr_type.lower())
            if attr is None or attr.encoding == "ia5":
                return None
            key = (attr.asn1_name, value)
            cached = self._avas.get(key)
            if cached is None:
                ava = self._encode(attr, value, written)        # validates, as parse_name
                if ava is None:
                    return None
                cached = (_tlv(0x31, ava), f"{attr.label}={_x509._escape_value(value)}",
                          _SHORT.get(attr.asn1_name, attr.asn1_name),
                          value if attr.asn1_name == "common_name" else None)
                if len(self._avas) < self._limit:
                    self._avas[key] = cached
            out.append(cached)
        return out

    @staticmethod
    def _subject(written: str, avas: list[tuple[bytes, str, str, str | None]]) -> Subject:
        return Subject(written, _tlv(0x30, b"".join(a[0] for a in avas)), ",".join(reversed([a[1] for a in avas])),
                       frozenset(a[2] for a in avas), next((a[3] for a in avas if a[3] is not None), None))

    @staticmethod
    def _encode(attr: Any, value: str, written: str) -> bytes | None:
        """The AttributeTypeAndValue DER: UTF8String values put together here after pki.x509's
        checks (most of a department's CNs are new), others by pki.x509; None: let parse_name say."""
        from . import x509 as _x509
        if attr.encoding != "utf8":
            return _x509._attribute_value(attr, value, written).dump()
        _x509._check_attribute_value(attr, value, written)
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return _tlv(0x30, _name_type_der(attr.asn1_name) + _tlv(0x0C, encoded))

    @staticmethod
    def _slow(written: str) -> Subject:
        from .ra import subject_attributes
        name = parse_name(written)
        return Subject(written, name.dump(), name_to_text(name), frozenset(subject_attributes(name)),
                       _common_name(name))


# --------------------------------------------------------------------------- files

_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")


def _syncfs(directory: str | Path) -> bool:
    """Flush the file system holding `directory` (Linux syncfs(2)); False where not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(directory, os.O_RDONLY)
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


def _fsync_dir(directory: str | Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_files_durably(files: Mapping[str | os.PathLike[str], bytes], *, mode: int = 0o600) -> None:
    """`keyfiles.write_file_atomic` for many files at once: each goes to a temporary file beside
    its target (`.NAME.XXXXXXXX.tmp`, created with `mode`), all are made durable together (one
    syncfs, or an fsync each where syncfs is missing), then renamed, then the directories synced.
    Never a half-written file under a final name; a crash leaves at most temporary files, which
    `remove_stale_temp_files` clears."""
    if not files:
        return
    temps: list[tuple[str, str]] = []
    targets = {os.fspath(target): data for target, data in files.items()}
    directories = {os.path.dirname(target) or "." for target in targets}
    try:
        for directory in directories:
            os.makedirs(directory, exist_ok=True)
        for target, data in targets.items():
            head, name = os.path.split(target)
            temp = os.path.join(head, f".{name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            temps.append((temp, target))
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        if not all(_syncfs(d) for d in directories):
            for temp, _ in temps:
                fd = os.open(temp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        for temp, target in temps:
            os.replace(temp, target)
        for directory in directories:
            _fsync_dir(directory)
    except BaseException:
        for temp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        raise


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Remove temporary files (`.NAME.XXXX.tmp`) a killed writer left in `directory`.  Only call
    this while no other writer can use the directory (`issue_bulk` holds a lock on it)."""
    removed = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if _TEMP_NAME.match(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


class _DirectoryLock:
    """An exclusive lock on an output directory (released by the kernel if the process dies)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / ".yinxin-bulk.lock"
        self.fd: int | None = None

    def __enter__(self) -> "_DirectoryLock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise Conflict(f"another bulk run is writing into {self.path.parent}", out_dir=str(self.path.parent)) \
                from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _stem(line: int, common_name: str | None) -> str:
    """The file name of a row's certificate and key: line number and CN (`00012-张三`)."""
    slug = re.sub(r"[^\w.-]+", "_", common_name or "row", flags=re.UNICODE).strip("._")[:48] or "row"
    return f"{line:05d}-{slug}"


# --------------------------------------------------------------------------- the run

@dataclass
class _Work:
    """A row on its way through the cycle."""
    row: BulkRow
    subject: Subject
    id_number: str | None
    applicant: str
    sans: tuple[tuple[str, str], ...]
    slot: str | None
    stem: str
    public_key: PublicKey | None = None     # None in a work a worker process checked: `spki` has it
    spki: bytes = b""                       # the public key's SubjectPublicKeyInfo DER
    csr_der: bytes | None = None
    generate: str | None = None             # algorithm of a key generated here
    key_file: str | None = None
    key_written: bool = False
    serial: int = 0
    tbs_der: bytes = b""
    app_id: int = 0
    cert_der: bytes = b""
    proof: tuple[bytes, bytes] | None = None    # (signature, signed octets) of a CSR still to verify
    cert_file: str = ""                     # paths as text: a Path costs more to pickle than the rest

    def __reduce__(self) -> tuple[Any, ...]:
        """A work crosses from a worker process after step 1 only, without its key object: what
        later steps read, as one tuple (a pickled dataclass would cost more than the check)."""
        if self.public_key is not None or self.proof is not None or self.key_written or self.serial:
            raise TypeError("only a checked work crosses a process boundary")
        return (_checked_work, (self.row, self.subject, self.id_number, self.applicant, self.sans, self.slot,
                                self.stem, self.spki, self.csr_der, self.generate, self.key_file, self.cert_file))


def _checked_work(row: BulkRow, subject: Subject, id_number: str | None, applicant: str,
                  sans: tuple[tuple[str, str], ...], slot: str | None, stem: str, spki: bytes,
                  csr_der: bytes | None, generate: str | None, key_file: str | None, cert_file: str) -> _Work:
    """`_Work.__reduce__`'s other half, by field name (the rest starts at its defaults)."""
    return _Work(row=row, subject=subject, id_number=id_number, applicant=applicant, sans=sans, slot=slot,
                 stem=stem, spki=spki, csr_der=csr_der, generate=generate, key_file=key_file, cert_file=cert_file)


@dataclass
class _Checked:
    """A batch after step 1: checked in the calling thread, its CSR proofs being verified by the
    crypto pool; or being checked, proofs and all, by the worker processes (`pending`)."""
    works: list[_Work] = field(default_factory=list)
    failed: list[RowResult] = field(default_factory=list)
    failed_later: list[RowResult] = field(default_factory=list)
    proofs: list["Future[list[tuple[int, str]]]"] = field(default_factory=list)
    pending: list["Future[list[_Work | RowResult]]"] = field(default_factory=list)


@dataclass
class _Signing:
    """A reserved batch whose certificates the crypto pool is signing."""
    works: list[_Work]
    now: datetime
    template: "TbsTemplate"
    signatures: list["Future[list[bytes | None]]"]     # chunk by chunk, in the order of works


@dataclass
class _Writing:
    """A recorded batch whose certificate files the file thread is writing."""
    future: "Future[None]"
    results: list[RowResult]

    def wait(self) -> list[RowResult]:
        self.future.result()
        return self.results


def _proof_error(why: str) -> CertificateError:
    return CertificateError("CSR signature does not verify", field="csr", detail=why)


class _RowFailed(Exception):
    def __init__(self, error: YinxinError | str, error_type: str = "PolicyError") -> None:
        super().__init__(str(error))
        if isinstance(error, YinxinError):
            self.message, self.error_type = error.message, type(error).__name__
        else:
            self.message, self.error_type = error, error_type


def _load_csr(data: bytes) -> asn1_csr.CertificationRequest:
    """`pki.x509.load_csr`, without its forced full parse when every part gets parsed anyway.

    A request without attributes is version, subject, key, algorithm and signature: bulk
    issuance parses each of them (the subject by comparison with its own encoding or as text, the
    key and signature when verifying them), so junk still fails.  A request with attributes, or
    anything unusual, goes through load_csr itself."""
    from . import x509 as _x509
    try:
        blocks = _x509._der_blocks(data, ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"), "CSR", "csr")
        if len(blocks) == 1:
            request = asn1_csr.CertificationRequest.load(blocks[0], strict=True)
            info = request["certification_request_info"]
            if info["version"].native == "v1" and len(info["attributes"]) == 0:
                request["signature"].native     # noqa: B018 - the signature's encoding checked here
                return request
    except Exception:  # noqa: BLE001 - asn1crypto raises ValueError, TypeError …: load_csr tells
        pass
    return load_csr(data)


@dataclass(frozen=True)
class _PlainCsr:
    """The parts of a plain PKCS#10 request: version 1, no attributes."""
    info: bytes             # certificationRequestInfo, DER: what the signature covers
    subject: bytes          # Name, DER (not yet parsed)
    spki: bytes             # SubjectPublicKeyInfo, DER (parsed when the key is loaded)
    algorithm: bytes        # AlgorithmIdentifier, DER (compared with known encodings)
    signature: bytes        # the signature octets


def _plain_csr(der: bytes) -> _PlainCsr | None:
    """Split a DER request by walking its elements, without asn1crypto; None for a request with
    attributes or of an unexpected shape (load_csr then parses it in full, and tells what is wrong).
    Every part is still checked: the subject by comparison with the row's own encoding (or a full
    parse), the key by loading it, the algorithm by comparison, the signature by verifying it."""
    try:
        tag, start, end = _element(der, 0, len(der))
        if tag != 0x30 or end != len(der):
            return None
        tag, info_start, info_end = _element(der, start, end)
        if tag != 0x30:
            return None
        tag, algorithm_start, algorithm_end = _element(der, info_end, end)
        if tag != 0x30:
            return None
        tag, bits_start, bits_end = _element(der, algorithm_end, end)
        if tag != 0x03 or bits_end != end or bits_end == bits_start or der[bits_start] != 0:
            return None
        if der[info_start:info_start + 3] != b"\x02\x01\x00":     # version v1 (0)
            return None
        tag, subject_start, subject_end = _element(der, info_start + 3, info_end)
        if tag != 0x30:
            return None
        tag, spki_start, spki_end = _element(der, subject_end, info_end)
        if tag != 0x30:
            return None
        if der[spki_end:info_end] != b"\xa0\x00":                    # attributes [0]: none
            return None
    except (ValueError, IndexError):
        return None
    return _PlainCsr(info=der[start:info_end], subject=der[info_start + 3:subject_end],
                     spki=der[subject_end:spki_end], algorithm=der[info_end:algorithm_end],
                     signature=der[bits_start + 1:bits_end])


def _parse_sans(text: str | None) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    out = []
    for item in re.split(r"[;\s]+", text.strip()):
        if not item:
            continue
        kind, sep, value = item.partition(":")
        if not sep or kind.lower() not in SAN_KINDS or not value:
            raise _RowFailed(f"san {item!r}: use dns:NAME, ip:ADDRESS, email:ADDRESS or uri:URI, separated by ';'")
        out.append((kind.lower(), value))
    return tuple(out)


def _common_name(name: asn1_x509.Name) -> str | None:
    for rdn in name.chosen:
        for ava in rdn:
            if ava["type"].native == "common_name":
                return str(ava["value"].native)
    return None


def batch_bounds(count: int, batch_size: int, smallest: int = 16) -> list[tuple[int, int]]:
    """(start, end) of each batch of `count` rows: small batches first, so the pipeline fills at
    once, doubling up to `batch_size`; and small ones last, each at most half of what is left, so
    the pipeline drains quickly (the last batch's recording and files are all that is left to do
    then, with the workers idle)."""
    largest = max(1, batch_size)
    smallest = min(smallest, largest)
    bounds: list[tuple[int, int]] = []
    start, ramp = 0, smallest
    while start < count:
        left = count - start
        size = left if left <= smallest else min(largest, ramp, max(smallest, left // 2))
        bounds.append((start, start + size))
        start += size
        ramp = min(largest, ramp * 2)
    return bounds


def issue_bulk(authority: CertificateAuthority, rows: Iterable[BulkRow], *, ca: str | None, profile: str,
               out_dir: str | os.PathLike[str], actor: "Actor", ca_password: bytes | None,
               approver: "Actor | None" = None, key_password: bytes | None = None,
               key_algorithm: str | None = None, key_scheme: str = "aes256",
               csv_dir: str | os.PathLike[str] | None = None, batch_size: int = MAX_BATCH,
               progress: Callable[[RowResult], None] | None = None,
               crypto_threads: int | None = None, crypto_processes: int | None = None) -> BulkReport:
    """Apply for, approve and issue a certificate for every row; see the module docstring.

    `csv_dir` is where relative CSR paths start.  `progress(result)` is called once per row, as
    its result is final.  The public-key work runs in `crypto_processes` forked worker processes
    (default: one per CPU, at most 4, for runs of PROCESS_MIN_ROWS rows or more, where fork exists
    and the calling process runs no other Python thread; 0: none), else in `crypto_threads`
    threads (default: one per CPU, at most 4; 0 does it in the calling thread).  Raises only for
    what stops the whole run (unknown CA or profile, wrong CA password, an unusable output
    directory, a database error); row problems are results."""
    from .accounts.accounts import Accounts
    home = authority.home
    registry = Accounts.of(home)
    registry.require(actor, any_of=("ca_operator",))
    approving = approver if approver is not None else actor
    registry.require(approving, any_of=("ra_officer",))
    operator, approver_id = actor.account_id, approving.account_id
    prof = home.profiles.get(profile)
    if prof.ca:
        raise PolicyError(f"profile {profile} is for CAs: use `ca init --parent`", profile=profile)
    ca_info = authority.get(ca)
    if key_algorithm is not None and key_algorithm not in ALGORITHMS:
        raise PolicyError(f"unknown algorithm {key_algorithm!r} (one of: {', '.join(ALGORITHMS)})",
                          field="key_algorithm")
    rows = list(rows)
    if crypto_threads is None:
        crypto_threads = min(4, os.cpu_count() or 1)
    if crypto_processes is None:
        # a fork copies only the calling thread: where other threads run (a server calling the
        # library), one of them may hold a lock the workers would need, so threads are used there
        forkable = fork_available() and threading.active_count() == 1
        crypto_processes = min(4, os.cpu_count() or 1) if len(rows) >= PROCESS_MIN_ROWS and forkable else 0
    for name, value in (("crypto_threads", crypto_threads), ("crypto_processes", crypto_processes)):
        if value < 0:
            raise PolicyError(f"{name} cannot be negative", field=name)
    if crypto_processes and not fork_available():
        raise PolicyError("worker processes need fork(), which this system does not have", field="crypto_processes")
    ca_key = authority.load_key(ca_info, ca_password)          # once for the whole run
    approval = _Approval.prepare(home, approving, ca_info, prof, rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = Path(csv_dir) if csv_dir is not None else Path.cwd()
    results: dict[int, RowResult] = {}

    def finish(done: Iterable[RowResult]) -> None:
        for result in done:
            results[result.line] = result
            if progress is not None:
                progress(result)

    run = _Run(authority, ca_info, ca_key, prof, out, base, operator, approver_id, key_password,
               key_algorithm, key_scheme)
    run.approval = approval
    # each signature is checked with the public key of the CA's certificate
    ca_signing = CaSigning(ca_key, ca_info.public_key(), ca_info.sign_distid, run.proof_distid)
    batches = collections.deque(rows[start:end] for start, end in batch_bounds(len(rows), batch_size))
    try:
        with _DirectoryLock(out), CryptoPool(ca_signing, threads=crypto_threads, processes=crypto_processes,
                                             checker=run.check_rows) as pool, switching(pool):
            run.pool = pool
            removed = tuple(str(p) for p in remove_stale_temp_files(out))
            checks: collections.deque[_Checked] = collections.deque()
            signing: _Signing | None = None     # the batch whose certificates are being signed
            writing: _Writing | None = None     # the batch whose certificate files are being written

            def recorded(signing: _Signing) -> None:
                nonlocal writing
                written = run.record(signing)
                if writing is not None:
                    finish(writing.wait())
                writing = written

            def check_next() -> None:
                if batches:
                    checks.append(run.check(batches.popleft()))
                    finish(checks[-1].failed)

            # batch k+2 is being checked and batch k+1 reserved while batch k is signed, so the crypto
            # pool always has the next batches queued; then batch k is recorded
            check_next()
            check_next()
            while checks:
                checked = checks.popleft()
                following = run.reserve_and_sign(checked)
                finish(checked.failed_later)
                check_next()
                if signing is not None:
                    recorded(signing)
                signing = following
            if signing is not None:
                recorded(signing)
            if writing is not None:
                finish(writing.wait())
    except BrokenExecutor as exc:      # a worker was killed (or the system ran out of memory)
        raise PkiError("a worker process of this run ended unexpectedly; the batches it was working on "
                       "may be reserved (and maybe signed) without being recorded: see `yinxin ca check`",
                       ca=ca_info.name) from exc
    ordered = tuple(results[r.line] for r in rows)
    return BulkReport(ca=ca_info.name, profile=prof.name, results=ordered, removed_temp_files=removed)


@dataclass
class _Approval:
    """The approver's one signed decision over the whole input (rows in order: line, subject, identity
    number, applicant, CSR path, SANs, algorithm): checked before the run (who signs), recorded in the
    transaction of the first batch that records applications — a run that records none leaves none."""

    approver: "Actor"
    signer: Any
    chain: str
    fields: dict[str, Any]
    recorded: bool = False

    @classmethod
    def prepare(cls, home: Any, approver: "Actor", ca: CaInfo, profile: Profile,
                rows: Sequence[BulkRow]) -> "_Approval":
        from .accounts import decisions
        listed = [[r.line, r.subject, r.id_number, r.applicant, r.csr, r.san, r.algorithm] for r in rows]
        digest = hashlib.sha256(decisions.canonical({"rows": listed})).hexdigest()
        return cls(approver, decisions.ra_signer(home, approver), f"bulk:{ca.name}:{digest[:16]}",
                   {"action": "approve", "ca": ca.name, "profile": profile.name, "rows": len(listed),
                    "rows_sha256": digest})

    def record(self, conn: Any, home: Any, now: datetime) -> None:
        """Inside a batch's transaction, the first time; `recorded` is set once that commits."""
        if self.recorded:
            return
        from .accounts import decisions
        decision = decisions.append(conn, home, chain=self.chain, actor=self.approver, signer=self.signer, at=now,
                                    bootstrap=self.signer is None, fields=self.fields)
        audit.append(conn, at=now, actor=self.approver.account_id, action="bulk.approve",
                     target=f"bulk:{self.fields['ca']}",
                     details={"rows": self.fields["rows"], "rows_sha256": self.fields["rows_sha256"],
                              "decision": decision.chain, "signed": decision.signature is not None},
                     result_digest=decision.sha256)


class _Run:
    def __init__(self, authority: CertificateAuthority, ca: CaInfo, ca_key: PrivateKey, profile: Profile,
                 out: Path, base: Path, operator: str, approver: str, key_password: bytes | None,
                 key_algorithm: str | None, key_scheme: str) -> None:
        self.authority, self.home = authority, authority.home
        self.pool: CryptoPool
        self.proof_algorithms: dict[str, frozenset[bytes]] = {}
        self.ca, self.ca_key, self.profile = ca, ca_key, profile
        self.proof_distid = DEFAULT_DISTID if ca.distid is None else ca.distid
        self.ca_public = ca_key.public_key()
        self.out, self.base = out, base
        self.out_text, self.base_text = str(out), str(base)
        self.operator, self.approver = operator, approver
        self.approval: _Approval
        self.key_password, self.key_algorithm, self.key_scheme = key_password, key_algorithm, key_scheme
        self.ca_not_after = ca.certificate["tbs_certificate"]["validity"]["not_after"].native
        self.seen_slots: dict[str, int] = {}            # slot -> line, across the whole file
        self.ca_subject = ca.certificate.subject
        self.names = SubjectCache()
        self.template: tuple[datetime, TbsTemplate] | None = None     # (made at, template)

    # ------------------------------------------------------------ one batch

    def check(self, rows: Sequence[BulkRow]) -> "_Checked":
        """Step 1 for a batch: handed to the worker processes, or done here with the CSRs' proofs
        of possession then verified by the crypto pool.  (Handing proofs to threads as the rows
        are checked was measured slower: the verifying threads then take the interpreter lock from
        this one once per CSR.)"""
        if self.pool.processes:
            return _Checked(pending=self.pool.check(rows))
        checked = self._check_rows(rows)
        checked.proofs = self.pool.verify_proofs([(w.row.line, w.public_key, *w.proof)
                                                  for w in checked.works if w.proof is not None])
        return checked

    def _check_rows(self, rows: Sequence[BulkRow]) -> "_Checked":
        checked = _Checked()
        for row in rows:
            try:
                checked.works.append(self._check_row(row))
            except _RowFailed as exc:
                checked.failed.append(RowResult(row.line, row.subject, False, error=exc.message,
                                                error_type=exc.error_type))
        return checked

    def check_rows(self, rows: Sequence[BulkRow]) -> list["_Work | RowResult"]:
        """Step 1 for rows, proofs of possession included (in a worker process, which has its own
        copy of this run: the slots claimed by earlier rows are checked again by `reserve_and_sign`).
        Works come back without their key object, which does not cross a process boundary."""
        checked = self._check_rows(rows)
        proofs = [(w.row.line, w.public_key, *w.proof) for w in checked.works if w.proof is not None]
        bad = dict(proof_failures(self.proof_distid, proofs)) if proofs else {}
        out: list[_Work | RowResult] = list(checked.failed)
        for work in checked.works:
            if work.row.line in bad:
                out.append(self._fail(work, _proof_error(bad[work.row.line])))
                continue
            work.public_key, work.proof = None, None
            out.append(work)
        return out

    def reserve_and_sign(self, checked: "_Checked") -> "_Signing | None":
        """Steps 1 (the rest) and 2, and step 3 handed to the crypto pool."""
        results = checked.failed_later
        for pending in checked.pending:
            for item in pending.result():
                if isinstance(item, RowResult):
                    results.append(item)
                else:
                    checked.works.append(item)
        bad: dict[int, YinxinError] = {}
        for proof in checked.proofs:
            for line, why in proof.result():
                bad[line] = _proof_error(why)
        for work in checked.works:      # 一人一证 within the file, in line order, among the good rows
            if work.row.line in bad or work.slot is None:
                continue
            earlier = self.seen_slots.get(work.slot)
            if earlier is not None:
                bad[work.row.line] = Conflict(f"identity number {work.id_number} is on line {earlier} too: one "
                                              f"active {self.profile.usage} certificate per person")
            else:
                self.seen_slots[work.slot] = work.row.line
        works, failed = self._drop(checked.works, bad)
        results += failed
        if not works:
            return None
        works, failed = self._precheck_slots(works)
        results += failed
        if not works:
            return None
        works, failed = self._generate_keys(works)
        results += failed
        if not works:
            return None
        now = self.home.clock.now()
        try:
            template = self._prepare(works, now)
            reserved = self._reserve(works, now, template, results)
        except (Conflict, StoreError, CertificateError) as exc:
            if len(works) == 1:
                results.append(self._fail(works[0], exc))
                return None
            # something no check foresaw (nothing was recorded): one by one, so only the bad row fails
            for work in works:
                results += self.batch_of_one(work)
            return None
        if not reserved:
            return None
        # after the reservation a failure stops the run: `ca check` lists what was reserved
        return _Signing(reserved, now, template, self.pool.sign([w.tbs_der for w in reserved]))

    def batch_of_one(self, work: _Work) -> list[RowResult]:
        results: list[RowResult] = []
        now = self.home.clock.now()
        try:
            template = self._prepare([work], now)
            reserved = self._reserve([work], now, template, results)
        except (Conflict, StoreError, CertificateError, PolicyError) as exc:
            return [self._fail(work, exc)]
        if not reserved:
            return results
        return results + self.record(_Signing(reserved, now, template, self.pool.sign([reserved[0].tbs_der]))).wait()

    def _fail(self, work: _Work, exc: YinxinError | str) -> RowResult:
        if work.key_written and work.key_file is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(work.key_file)            # no key file for a row that was not recorded
        failed = _RowFailed(exc)
        return RowResult(work.row.line, work.row.subject, False, error=failed.message,
                         error_type=failed.error_type)

    # ------------------------------------------------------------ step 1: checks

    def _check_row(self, row: BulkRow) -> _Work:
        if row.problem is not None:
            raise _RowFailed(row.problem)
        if not row.subject:
            raise _RowFailed("the subject is empty")
        try:
            subject = self.names.subject(row.subject)
            missing = self.profile.required_subject - subject.labels
            extra = subject.labels - self.profile.allowed_subject
            if missing or extra:    # the RA's own check says it with its own words
                check_subject(self.profile, subject.name())
            id_number = check_id_number(self.profile, row.id_number)
            sans = _parse_sans(row.san)
        except YinxinError as exc:
            raise _RowFailed(exc) from None
        applicant = (row.applicant or subject.common_name or "").strip()
        if not applicant:
            raise _RowFailed("no applicant: give an 'applicant' column or a CN in the subject")
        if applicant == self.approver:
            raise _RowFailed(f"{applicant} applies in this row and cannot also approve it (separation of "
                             "duties): give another --approver", "PolicyError")
        slot = active_key(self.profile, id_number)
        if slot is not None:
            earlier = self.seen_slots.get(slot)
            if earlier is not None:
                raise _RowFailed(f"identity number {id_number} is on line {earlier} too: one active "
                                 f"{self.profile.usage} certificate per person", "Conflict")
        work = _Work(row=row, subject=subject, id_number=id_number, applicant=applicant, sans=sans, slot=slot,
                     stem=_stem(row.line, subject.common_name))
        if row.csr is not None:
            if row.algorithm:
                raise _RowFailed("'algorithm' is for keys generated here; this row has a CSR")
            self._check_csr(work)
        else:
            self._check_generation(work)
        try:
            check_san(self.profile, work.sans)
            if work.sans:   # everything CertificateSpec checks of SANs, before anything is recorded
                now = self.home.clock.now()
                CertificateSpec(subject=subject.name(), serial=1 << 64, public_key=work.public_key or self.ca_public,
                                subject_alt_names=work.sans, issuer=self.ca_subject, not_before=now,
                                not_after=now + timedelta(days=1), issuer_key_identifier=None)
        except YinxinError as exc:
            raise _RowFailed(exc) from None
        cert_file = work.cert_file = os.path.join(self.out_text, f"{work.stem}.pem")
        if os.path.lexists(cert_file):
            raise _RowFailed(f"{cert_file} exists; not overwriting a certificate file")
        return work     # the identity number is claimed once the CSR's signature is known good

    def _check_csr(self, work: _Work) -> None:
        path = os.path.join(self.base_text, work.row.csr or "")    # an absolute CSR path stays as it is
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise _RowFailed(f"cannot read CSR {work.row.csr}: {exc.strerror}") from None
        if self._check_plain_csr(work, data):
            return
        try:
            request = _load_csr(data)
            public_key = verify_csr(request, distid=self.ca.distid)
        except YinxinError as exc:
            raise _RowFailed(exc) from None
        csr_name = csr_subject(request)
        csr_name_der = csr_name.dump()
        # an empty CSR subject is fine (the row's counts); any other must be the row's (as the RA says)
        if csr_name_der not in (b"\x30\x00", work.subject.der) and csr_name.native \
                and name_to_text(csr_name) != work.subject.text:
            raise _RowFailed(f"the CSR's subject ({name_to_text(csr_name)}) differs from the row's subject "
                             f"({work.subject.text})", "CertificateError")
        if public_key.algorithm not in self.profile.algorithms:
            raise _RowFailed(f"profile {self.profile.name} does not allow {public_key.algorithm} keys "
                             f"(allowed: {', '.join(self.profile.algorithms)})")
        if not work.sans and len(request["certification_request_info"]["attributes"]):
            work.sans = csr_subject_alt_names(request)
        work.public_key, work.spki, work.csr_der = public_key, public_key.to_der(), request.dump()

    def _check_plain_csr(self, work: _Work, data: bytes) -> bool:
        """A plain CSR (see `_plain_csr`) whose subject is the row's (or empty) and whose signature
        algorithm is the usual one of its key: checked here, its signature left to the crypto pool.
        False for anything else, which the full path then checks."""
        from . import x509 as _x509
        try:
            blocks = _x509._der_blocks(data, ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"), "CSR", "csr")
        except YinxinError:
            return False
        plain = _plain_csr(blocks[0]) if len(blocks) == 1 else None
        if plain is None or plain.subject not in (work.subject.der, b"\x30\x00"):
            return False
        try:
            public_key = public_key_from_spki(plain.spki)
        except KeyFileError as exc:
            raise _RowFailed(CertificateError(f"CSR public key: {exc.message}", field="csr")) from None
        if plain.algorithm not in self._proof_algorithms(public_key):
            return False
        if public_key.algorithm not in self.profile.algorithms:
            raise _RowFailed(f"profile {self.profile.name} does not allow {public_key.algorithm} keys "
                             f"(allowed: {', '.join(self.profile.algorithms)})")
        work.public_key, work.spki, work.csr_der = public_key, public_key.to_der(), blocks[0]
        work.proof = (plain.signature, plain.info)
        return True

    def _proof_algorithms(self, public_key: PublicKey) -> frozenset[bytes]:
        """The AlgorithmIdentifier encodings of the signature the key makes by default (for RSA
        with and without the NULL parameters): the ones the plain path compares octet for octet."""
        known = self.proof_algorithms.get(public_key.algorithm)
        if known is None:
            identifier = public_key.signature_algorithm()
            variants = {identifier.dump()}
            if identifier["algorithm"].native == "sha256_rsa":      # RFC 4055: accept absent parameters too
                variants.add(_tlv(0x30, identifier["algorithm"].dump()))
            known = self.proof_algorithms[public_key.algorithm] = frozenset(variants)
        return known

    def _check_generation(self, work: _Work) -> None:
        if not self.key_password:
            raise _RowFailed("this row has no CSR: a key would be generated here, and a key password is "
                             "needed to write it encrypted")
        algorithm = work.row.algorithm or self.key_algorithm or self.ca.algorithm
        if algorithm not in ALGORITHMS:
            raise _RowFailed(f"unknown algorithm {algorithm!r} (one of: {', '.join(ALGORITHMS)})")
        if algorithm not in self.profile.algorithms:
            raise _RowFailed(f"profile {self.profile.name} does not allow {algorithm} keys "
                             f"(allowed: {', '.join(self.profile.algorithms)})")
        key_file = os.path.join(self.out_text, f"{work.stem}.key.pem")
        if os.path.exists(key_file):
            raise _RowFailed(f"{key_file} exists; not overwriting a key file")
        work.generate, work.key_file = algorithm, key_file

    def _precheck_slots(self, works: list[_Work]) -> tuple[list[_Work], list[RowResult]]:
        """一人一证 before keys are generated (checked again under the write lock, which is all
        that rows with a CSR need)."""
        if not any(w.slot is not None and w.generate is not None for w in works):
            return works, []
        with self.home.store.read() as conn:
            taken, pending = self._slot_conflicts(conn, works, self.home.clock.now(), release=False)
        return self._drop(works, taken | pending)

    def _drop(self, works: list[_Work], failed: Mapping[int, YinxinError] | dict) -> tuple[list[_Work], list[RowResult]]:
        keep, results = [], []
        for work in works:
            if work.row.line in failed:
                results.append(self._fail(work, failed[work.row.line]))
            else:
                keep.append(work)
        return keep, results

    def _slot_conflicts(self, conn: Any, works: Sequence[_Work], now: datetime,
                        release: bool) -> tuple[dict[int, YinxinError], dict[int, YinxinError]]:
        by_slot = {w.slot: w for w in works if w.slot is not None}
        if not by_slot:
            return {}, {}
        if release:     # expired certificates no longer hold their slot (as the RA does)
            conn.execute(sa.update(certificates).where(certificates.c.active_key.in_(list(by_slot)),
                                                       certificates.c.not_after <= now).values(active_key=None))
        taken: dict[int, YinxinError] = {}
        rows = conn.execute(sa.select(certificates.c.active_key, certificates.c.serial, certificates.c.not_after,
                                      cas.c.name).join(cas, cas.c.id == certificates.c.ca_id)
                            .where(certificates.c.active_key.in_(list(by_slot)))).all()
        for slot, serial, not_after, ca_name in rows:
            if not release and not_after <= now:
                continue
            work = by_slot[slot]
            id_number, usage = slot.split("|", 1)
            taken[work.row.line] = Conflict(
                f"identity number {id_number} already has an active {usage} certificate, serial "
                f"{serial.upper()} (CA {ca_name}); revoke it or renew it instead", serial=serial.upper())
        ids = [w.id_number for w in by_slot.values()]
        pending: dict[int, YinxinError] = {}
        for app_id, id_number in conn.execute(sa.select(applications.c.id, applications.c.id_number).where(
                applications.c.profile == self.profile.name, applications.c.state.in_(PENDING),
                applications.c.id_number.in_(ids))).all():
            work = by_slot.get(f"{id_number}|{self.profile.usage}")
            if work is not None and work.row.line not in taken:
                pending[work.row.line] = Conflict(f"identity number {id_number} already has a pending "
                                                  f"{self.profile.name} application {app_id}", application=app_id)
        return taken, pending

    def _generate_keys(self, works: list[_Work]) -> tuple[list[_Work], list[RowResult]]:
        files: dict[Path, bytes] = {}
        failed: list[RowResult] = []
        keep: list[_Work] = []
        for work in works:
            if work.generate is None:
                keep.append(work)
                continue
            try:
                key = generate_key(work.generate, rand=self.home.rand)
                assert work.key_file is not None and self.key_password
                files[work.key_file] = key.to_pem(self.key_password, scheme=self.key_scheme, rand=self.home.rand)
            except YinxinError as exc:
                failed.append(self._fail(work, exc))
                continue
            work.public_key = key.public_key()
            work.spki = work.public_key.to_der()
            keep.append(work)
        write_files_durably(files, mode=0o600)
        for work in keep:
            if work.generate is not None:
                work.key_written = True
        return keep, failed

    # ------------------------------------------------------------ steps 2-5

    def _prepare(self, works: list[_Work], now: datetime) -> TbsTemplate:
        """Serials drawn and TBSCertificates built (nothing recorded yet)."""
        home, ca, prof = self.home, self.ca, self.profile
        if self.ca_not_after <= now:
            raise PolicyError(f"CA {ca.name}'s certificate has expired", ca=ca.name)
        first = works[0]
        if first.public_key is None:
            first.public_key = public_key_from_spki(first.spki)
        made = self.template
        if made is None or not made[0] <= now < made[0] + TEMPLATE_LIFETIME:
            template = TbsTemplate.make(ca=ca, ca_key_public=self.ca_public, profile=prof,
                                        not_before=now - CLOCK_SKEW_ALLOWANCE,
                                        not_after=min(now + timedelta(days=prof.validity_days), self.ca_not_after),
                                        sample_subject=first.subject.name(), sample_key=first.public_key)
            self.template = (now, template)
        else:
            template = made[1]
        for work, serial in zip(works, _new_serials(home, len(works)), strict=True):
            work.serial = serial
            spki = work.spki
            work.tbs_der = template.tbs(work.serial, work.subject.der, spki, spki_key_identifier(spki),
                                        san_extension_der(work.sans, subject_empty=work.subject.der == b"\x30\x00"))
        # the first row built by pki.x509 from its own parse of the subject: the two must agree
        reference = build_tbs_certificate(template.spec(first.serial, first.subject.name(), first.public_key,
                                                        first.sans),
                                          self.ca_public.signature_algorithm()).dump()
        if reference != first.tbs_der:
            raise AssertionError("bulk TBS template differs from pki.x509.build_tbs_certificate")
        return template

    def record(self, signing: _Signing) -> "_Writing":
        """Step 4 for a batch the crypto pool has signed, and step 5 handed to the file thread."""
        works, now = signing.works, signing.now
        signatures = [signature for chunk in signing.signatures for signature in chunk.result()]
        for work, signature in zip(works, signatures, strict=True):
            if signature is None:           # a signature that failed its check stops the run here
                raise InvalidSignature(f"the CA's signature on serial {format_serial(work.serial)} does not verify "
                                       "with its own certificate; it was not recorded as issued (see `yinxin ca "
                                       "check`)", serial=format_serial(work.serial))
            work.cert_der = signing.template.certificate(work.tbs_der, signature)
        home, ca = self.home, self.ca
        results: list[RowResult] = []
        signed_events: list[audit.Event] = []
        # 4. record
        with home.store.transaction() as conn:
            # reserved → issued is a status change the status service watches for (as in pki.ca)
            changed_at = home.clock.now()
            updated = update_many(conn, certificates, [
                ({"ca_id": ca.id, "serial": f"{w.serial:x}", "status": "reserved"},
                 {"cert_der": w.cert_der, "status": "issued", "status_changed_at": changed_at}) for w in works])
            if updated != len(works):   # a reservation was revoked meanwhile: record nothing
                raise StateError(f"{len(works) - updated} reserved serial(s) of this batch changed "
                                 "before they were recorded; see `yinxin ca check`", ca=ca.name)
            update_many(conn, applications, [({"id": w.app_id}, {"state": "issued", "issued_serial": f"{w.serial:x}"})
                                             for w in works])
            for work in works:
                digest = hashlib.sha256(work.cert_der).hexdigest()
                target = f"{ca.name}:{work.serial:x}"
                signed_events.append(audit.Event(now, self.operator, "certificate.signed", target,
                                                 result_digest=digest))
                signed_events.append(audit.Event(now, self.operator, "certificate.issued", target, {
                    "application": work.app_id, "subject": work.subject.text, "kind": "new", "predecessor": None},
                    result_digest=digest))
            audit.append_many(conn, signed_events)
            audit.maybe_checkpoint(conn, at=now, ca_name=ca.name, key=self.ca_key, distid=ca.distid)
        # 5. the certificate files (the rows are reported once their files are durable)
        files = {w.cert_file: _pem(w.cert_der) for w in works}
        for work in works:
            results.append(RowResult(work.row.line, work.row.subject, True, serial=format_serial(work.serial),
                                     application=work.app_id, certificate_file=str(work.cert_file),
                                     key_file=str(work.key_file) if work.key_file else None))
        return _Writing(self.pool.write(files, write_files_durably), results)

    def _reserve(self, works: list[_Work], now: datetime, template: TbsTemplate,
                 results: list[RowResult]) -> list[_Work]:
        """Step 2: applications submitted + approved and serials reserved, in one transaction."""
        home, ca, prof = self.home, self.ca, self.profile
        not_before, not_after = template.spec_values["not_before"], template.spec_values["not_after"]
        with home.store.transaction() as conn:
            taken, pending = self._slot_conflicts(conn, works, now, release=True)
            works, failed = self._drop(works, taken | pending)
            results += failed
            if not works:
                return works
            self.approval.record(conn, home, now)
            app_ids = insert_many_returning_ids(conn, applications, [
                {"ca_id": ca.id, "kind": "new", "profile": prof.name, "subject": w.subject.text,
                 "applicant": w.applicant, "submitted_by": self.operator, "id_number": w.id_number,
                 "public_key_der": w.spki,
                 "csr_der": w.csr_der, "key_generated": w.generate is not None,
                 "subject_alt_names": json.dumps([list(s) for s in w.sans]), "state": "approved",
                 "created_at": now, "decided_by": self.approver, "decided_at": now,
                 "decision_comment": f"bulk issuance, line {w.row.line}"} for w in works])
            for work, app_id in zip(works, app_ids, strict=True):
                work.app_id = app_id
            fingerprints = [hashlib.sha256(w.spki).hexdigest() for w in works]     # PublicKey.fingerprint
            insert_many(conn, certificates, [
                {"ca_id": ca.id, "serial": f"{w.serial:x}", "application_id": w.app_id, "profile": prof.name,
                 "subject": w.subject.text, "id_number": w.id_number, "active_key": w.slot,
                 "public_key_fp": fingerprint, "not_before": not_before,
                 "not_after": not_after,
                 "status": "reserved", "tbs_der": w.tbs_der, "status_changed_at": now, "predecessor_serial": None,
                 "retention_years": prof.retention_years, "created_at": now} for w, fingerprint in zip(works, fingerprints)])
            events: list[audit.Event] = []
            for w, fingerprint in zip(works, fingerprints):
                app_target = f"application:{w.app_id}"
                events.append(audit.Event(now, self.operator, "application.submit", app_target, {
                    "ca": ca.name, "profile": prof.name, "subject": w.subject.text, "applicant": w.applicant,
                    "id_number": w.id_number,
                    "key_generated": w.generate is not None, "evidence": [], "bulk_line": w.row.line},
                    result_digest=fingerprint))
                events.append(audit.Event(now, self.approver, "application.approve", app_target,
                                          {"comment": f"bulk issuance, line {w.row.line}"}))
                events.append(audit.Event(now, self.operator, "certificate.signing", f"{ca.name}:{w.serial:x}", {
                    "application": w.app_id, "profile": prof.name,
                    "tbs_sha256": hashlib.sha256(w.tbs_der).hexdigest()}))
            audit.append_many(conn, events)
        self.approval.recorded = True
        return works


def _pem(der: bytes) -> bytes:
    """pem.armor("CERTIFICATE", der), without its per-line stream writes (a test compares them)."""
    text = base64.b64encode(der)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"".join(line + b"\n" for line in lines) + b"-----END CERTIFICATE-----\n"
