"""Verifying sealed PDFs: every signature, its chain, its revocation, and what followed it —
judged at the time the document proves.

pyHanko does the PDF work (byte ranges, CMS, difference analysis between
revisions); `SM2SignatureValidator` plugs SM2 into it, so RSA, ECDSA and SM2
seals go through the same code.  Nothing is fetched from the network: trust
roots and revocation data come from the caller, plus whatever the document
carries (its DSS, and the certificates in each CMS).

**Verification in the past.**  A signature is judged at the earliest time a
valid timestamp proves it existed (its *proven time*), else at `at` (default:
now):

1. document timestamps (PAdES B-LTA) are checked newest first: the newest at
   `at`, each older one at the time the next newer one proves; a valid one
   proves everything in the revisions it covers (signatures, signature
   timestamps, the DSS) existed at its genTime;
2. a signature timestamp (B-T: a token over the signature value; SM3 for SM2
   seals) is checked at the earliest time a document timestamp proves for it,
   else at `at`;
3. the signature is then judged at its proven time: the chain must be valid
   then (expiry afterwards does not matter), a revocation dated before it makes
   the signature invalid, one dated after it does not (the report says so).

Revocation data is used when it exists; with ``RevocationData(mode="require")``
missing data makes the verdict *indeterminate* — except for the timestamp
checked at `at` itself (no verifier holds revocation data from its own future:
the newest proof is taken on its chain and validity then).

Verdicts: **valid**; **invalid** — the bytes were changed, the signature does
not verify, something other than validation data and timestamps follows the
last seal, the chain violates its constraints, the certificate was revoked
before the proven time, the caller's seal check fails, a document timestamp
does not match what it covers; **indeterminate** — nothing is wrong but it
cannot be decided: the chain reaches no trusted root, no proof of existence
before the certificate expired (or before it became valid), required
revocation data missing or stale (the meanings of seal.verdicts).

A document is `valid` only if it has at least one signature, every signature
is valid, every document timestamp holds, and nothing but validation data and
document timestamps follows the last signature.  A signature is valid if
whatever was appended after it is at most further signature fields with their
appearances ("form filling" in pyHanko's terms), DSS updates and timestamps —
so a joint document with several seals in turn verifies, while an annotation
or content change appended after a seal does not.
"""
from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pki
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError
from pyhanko.sign.validation.status import SignatureCoverageLevel

from .aio import run as run_coroutine
from . import pdf_hex  # noqa: F401  (pyHanko reads the signatures' hex strings in blocks)
from pki import name_match  # noqa: F401  (pyHanko's certificate lookups compare names through a memo)
from .pdf_errors import EncryptedPdf, NotAPdf, PdfSealError
from .verdicts import EXIT_CODES, INVALID, VALID, CheckResult, combine
from .pdf_validation import (RevocationData, covered_by, declares_ocsp, ocsp_covers,
                             validation_context)

__all__ = ["SealCheck", "ChainStatus", "RevocationStatus", "SignatureReport", "DocumentTimestampReport",
           "Proof", "VerificationReport", "verify_pdf", "VERDICTS"]

#: the three verdicts, with the exit codes of `yinxin seal verify` (2 is bad input)
VERDICTS = EXIT_CODES


@dataclass(frozen=True)
class SealCheck:
    """The caller's verdict on "this certificate belongs to this seal"."""

    ok: bool
    seal: str | None = None       # the seal's name or id, for the report
    reason: str | None = None     # why not, when not ok


SealChecker = Callable[[x509.Certificate], SealCheck]


@dataclass(frozen=True)
class ChainStatus:
    trusted: bool
    reason: str | None = None                 # why not trusted
    path: tuple[str, ...] = ()                # subjects, leaf first, when trusted
    indeterminate: bool = False               # not trusted for want of proof or data, not for a fault


@dataclass(frozen=True)
class RevocationStatus:
    status: str                               # "good", "revoked" or "unknown" (no data)
    revoked_at: datetime | None = None
    reason: str | None = None
    before_signing: bool | None = None        # revoked at or before the signing time?
    after_proven_time: bool | None = None     # revoked only after the proven time (does not invalidate)


@dataclass(frozen=True)
class Proof:
    """What proves a signature existed at `time`."""

    time: datetime
    kind: str                                 # "signature timestamp" | "document timestamp"
    tsa: str                                  # the TSA certificate's subject
    serial: int                               # the token's serial number
    revision: int | None = None               # 1-based revision of a document timestamp

    def describe(self) -> str:
        where = f" (revision {self.revision})" if self.revision is not None else ""
        return f"{self.kind}{where} by {self.tsa}, token {self.serial:X}"

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "kind": self.kind, "tsa": self.tsa, "serial": f"{self.serial:X}",
                "revision": self.revision}


@dataclass(frozen=True)
class DocumentTimestampReport:
    """One document timestamp (PAdES B-LTA archive timestamp)."""

    field_name: str
    revision: int                             # 1-based revision it signs
    gen_time: datetime | None
    serial: int | None
    tsa: str
    digest_algorithm: str
    intact: bool
    judged_at: datetime                       # when its TSA certificate was judged
    verdict: str
    problems: tuple[str, ...] = ()
    tsa_not_after: datetime | None = None

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field_name, "revision": self.revision,
                "time": self.gen_time.isoformat() if self.gen_time else None,
                "serial": f"{self.serial:X}" if self.serial is not None else None, "tsa": self.tsa,
                "tsa_certificate_not_after": self.tsa_not_after.isoformat() if self.tsa_not_after else None,
                "digest": self.digest_algorithm, "intact": self.intact, "judged_at": self.judged_at.isoformat(),
                "verdict": self.verdict, "problems": list(self.problems)}


@dataclass(frozen=True)
class SignatureReport:
    """What one signature (one seal) proves."""

    field_name: str
    page: int | None                          # 1-based page of the seal widget
    signer_subject: str
    signer_serial: int
    signer_certificate: x509.Certificate = field(repr=False, compare=False)
    algorithm: str                            # sha256_rsa, sha256_ecdsa, sm3_sm2, ...
    digest_algorithm: str
    signing_time: datetime | None             # as the signer claims it (/M)
    timestamp: datetime | None                # from a valid RFC 3161 signature timestamp, if any
    intact: bool                              # the covered bytes hash to the signed digest
    signature_valid: bool                     # the cryptographic signature verifies
    coverage: str                             # ENTIRE_FILE, ENTIRE_REVISION, or UNCLEAR
    modification_level: str                   # pyHanko's level of what followed (NONE, ...)
    modified_after: tuple[str, ...]           # the revisions appended after this signature
    chain: ChainStatus
    revocation: RevocationStatus
    seal_check: SealCheck | None
    problems: tuple[str, ...]
    valid: bool
    checks: tuple[CheckResult, ...] = ()      # per check, in GB/T 38540 order (OFD)
    verdict: str = ""                         # valid | invalid | indeterminate ("" → from `valid`)
    proven_time: datetime | None = None       # the earliest time a valid timestamp proves
    proof: Proof | None = None                # … and what proves it
    judged_at: datetime | None = None         # the time the chain and revocation were judged at
    revision: int | None = None               # 1-based revision the signature signs
    notes: tuple[str, ...] = ()               # worth knowing, not changing the verdict
    byte_range: tuple[int, ...] = ()          # the /ByteRange the signature covers, as the file gives it

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", VALID if self.valid else INVALID)
        if self.verdict not in VERDICTS or self.valid != (self.verdict == VALID):
            raise ValueError("verdict is valid, invalid or indeterminate, and valid only when it is 'valid'")


@dataclass(frozen=True)
class VerificationReport:
    signatures: tuple[SignatureReport, ...]
    revisions: int
    modified_after_last_signature: bool
    problems: tuple[str, ...]
    valid: bool
    verdict: str = ""                         # valid | invalid | indeterminate ("" → from `valid`)
    format: str = "pdf"                       # pdf | ofd
    notes: tuple[str, ...] = ()               # what is worth knowing but changes no verdict
    document_timestamps: tuple[DocumentTimestampReport, ...] = ()
    at: datetime | None = None                # "now" of this verification

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", VALID if self.valid else INVALID)
        if self.verdict not in VERDICTS or self.valid != (self.verdict == VALID):
            raise ValueError("verdict is valid, invalid or indeterminate, and valid only when it is 'valid'")


# --------------------------------------------------------------------------- helpers

class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            self.errors.append(exc)
        text = getattr(exc, "failure_msg", None) or (str(exc) if exc else record.getMessage())
        self.messages.append(" ".join(str(text).split()))

    def undecided(self) -> bool:
        """Did path validation fail for want of proof or data (expired or not yet valid, revocation
        data missing or stale) rather than for a fault?  pyHanko reports some of these as a
        general chain failure; the exceptions it logged tell them apart."""
        from pyhanko_certvalidator.errors import ExpiredError, InsufficientRevinfoError, NotYetValidError
        return any(isinstance(e, (ExpiredError, InsufficientRevinfoError, NotYetValidError)) for e in self.errors)


@contextmanager
def _pyhanko_warnings() -> Iterator[_Collector]:
    """pyHanko logs why a chain failed (with a traceback); keep the message for the
    report and keep the traceback off the user's terminal."""
    log = logging.getLogger("pyhanko")
    collector = _Collector()
    propagate = log.propagate
    log.addHandler(collector)
    log.propagate = False
    try:
        yield collector
    finally:
        log.removeHandler(collector)
        log.propagate = propagate


def _open(data: bytes | str | os.PathLike[str]) -> tuple[io.IOBase, PdfFileReader]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        stream: io.IOBase = io.BytesIO(bytes(data))
    else:
        path = Path(data)
        if not path.is_file():
            raise NotAPdf(f"no such file: {str(path)!r}", path=str(path))
        stream = open(path, "rb")  # noqa: SIM115 - closed by verify_pdf
    stream.seek(0)
    if b"%PDF-" not in stream.read(1024):
        stream.close()
        raise NotAPdf("the input is not a PDF file (no %PDF- header)")
    stream.seek(0)
    try:
        reader = PdfFileReader(stream, strict=False)
        if reader.encrypted:
            raise EncryptedPdf("the PDF is encrypted; yinxin verifies unencrypted documents")
        from .pdf_bounds import check_pdf_bounds
        check_pdf_bounds(reader)          # object streams: bounded before any object in one is read
        reader.embedded_signatures  # noqa: B018 - parse the signature fields now
    except (NotAPdf, EncryptedPdf, PdfSealError):
        stream.close()
        raise
    except Exception as exc:  # pyHanko raises many kinds on broken files
        stream.close()
        raise NotAPdf(f"the PDF is damaged: {exc}") from None
    return stream, reader


def _dss_material(reader: PdfFileReader):
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return [], [], []
    certs = list(dss.load_certs())
    ocsps = [asn1_ocsp.OCSPResponse.load(ref.get_object().data) for ref in dss.ocsps]
    crls = [asn1_crl.CertificateList.load(ref.get_object().data) for ref in dss.crls]
    return certs, crls, ocsps


def _widget_page(reader: PdfFileReader, sig_field) -> int | None:
    widget = sig_field
    if "/Kids" in sig_field:
        widget = sig_field["/Kids"][0]
    p = widget.raw_get("/P") if "/P" in widget else None
    if p is None:
        return None
    for i in range(int(reader.root["/Pages"]["/Count"])):
        page_ref = reader.find_page_for_modification(i)[0]
        if page_ref.reference == p.reference:
            return i + 1
    return None


_SUBINDICATION_TEXT = {
    "NO_CERTIFICATE_CHAIN_FOUND": "no chain to a trusted root",
    "REVOKED_NO_POE": "the signer's certificate is revoked",
    "REVOKED_CA_NO_POE": "a CA certificate on the path is revoked",
    "OUT_OF_BOUNDS_NO_POE": "a certificate on the path is expired or not yet valid",
    "OUT_OF_BOUNDS_NOT_REVOKED": "a certificate on the path is expired or not yet valid",
    "CHAIN_CONSTRAINTS_FAILURE": "the chain violates its constraints (key usage, basic constraints)",
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": "the chain could not be validated",
    "CRYPTO_CONSTRAINTS_FAILURE": "an algorithm on the path is not allowed",
    "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": "an algorithm on the path is no longer allowed",
    "TRY_LATER": "revocation information is missing or stale",
    "NO_POE": "no proof of existence for the needed revocation information",
}


def _reason(reason) -> str | None:
    if reason is None:
        return None
    try:
        return reason.human_friendly
    except (AttributeError, ValueError):
        return str(reason.native)


def _undeclared_ocsp(cert: x509.Certificate, path, vc) -> tuple[datetime | None, str | None, bool]:
    """Check an OCSP response about a certificate that names no OCSP responder
    (path validation skips those).  Returns (revoked_at, reason, checked)."""
    from pyhanko_certvalidator.errors import RevokedError
    from pyhanko_certvalidator.revinfo.validate_ocsp import verify_ocsp_response

    if path is None:
        return None, None, False
    try:
        run_coroutine(verify_ocsp_response(cert, path, vc))
    except RevokedError as exc:
        return exc.revocation_dt, _reason(exc.reason), True
    except Exception:  # unusable response: as if there were none
        return None, None, False
    return None, None, True


def _revision_labels(reader: PdfFileReader, after: int, signed: dict[int, str]) -> tuple[str, ...]:
    total = reader.xrefs.total_revisions
    labels = []
    for rev in range(after + 1, total):
        if rev in signed:
            labels.append(f"revision {rev + 1}: seal {signed[rev]}")
        else:
            labels.append(f"revision {rev + 1}: unsigned update")
    return tuple(labels)


# --------------------------------------------------------------------------- verify

#: AdES sub-indications that mean "cannot be decided" rather than "wrong"
_INDETERMINATE = {"NO_CERTIFICATE_CHAIN_FOUND", "OUT_OF_BOUNDS_NO_POE", "OUT_OF_BOUNDS_NOT_REVOKED", "TRY_LATER", "NO_POE", "NOT_YET_VALID",
                  "REVOCATION_OUT_OF_BOUNDS_NO_POE"}


def verify_pdf(data: bytes | str | os.PathLike[str], *, trust_roots: Sequence[x509.Certificate],
               revocation: RevocationData | None = None, seal_check: SealChecker | None = None,
               clock: pki.Clock = pki.SYSTEM_CLOCK, distid: bytes | None = None,
               at: datetime | None = None) -> VerificationReport:
    """Verify every signature and document timestamp in a PDF; see the module docstring for
    what is judged when, and what the verdicts mean.

    `trust_roots` are the only trusted certificates (never the system's list).
    `revocation` supplies CRLs/OCSP responses (DER) and how missing data counts; the
    document's DSS adds its own.  `seal_check(cert)` is asked, per signature, whether the
    certificate belongs to a known seal.  `distid` is the SM2 distinguishing ID (default
    1234567812345678).  `at` is "now" for this verification (default: the clock's now):
    what no timestamp proves earlier is judged then.
    """
    roots = [x509.Certificate.load(c) if isinstance(c, (bytes, bytearray)) else c
             for c in trust_roots]
    if not all(isinstance(c, x509.Certificate) for c in roots):
        raise TypeError("trust_roots must be asn1crypto Certificates (or DER bytes)")
    if at is not None and at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    stream, reader = _open(data)
    try:
        return _Verification(reader, roots, revocation, seal_check, at or clock.now(), distid).run()
    finally:
        stream.close()


def _subindication(indic: Any) -> str:
    return getattr(indic, "name", "") or ""


def _tsa_name(cert: x509.Certificate | None) -> str:
    return cert.subject.human_friendly if cert is not None else "(unknown TSA)"


def _tst_info(signed_data: Any) -> Any:
    content = signed_data["encap_content_info"]["content"]
    return content.parsed


class _Verification:
    """One run of `verify_pdf` over an opened reader."""

    def __init__(self, reader: PdfFileReader, roots: list[x509.Certificate], revocation: RevocationData | None,
                 seal_check: SealChecker | None, at: datetime, distid: bytes | None) -> None:
        self.reader, self.roots, self.revocation = reader, roots, revocation
        self.seal_check, self.at, self.distid = seal_check, at, distid
        self.require = revocation is not None and revocation.mode == "require"
        self.dss_certs, self.dss_crls, self.dss_ocsps = _dss_material(reader)
        self.crls = [*(revocation.parsed_crls() if revocation else ()), *self.dss_crls]
        self.ocsps = [*(revocation.parsed_ocsps() if revocation else ()), *self.dss_ocsps]

    def _vc(self, moment: datetime, *, extra_certs: Sequence[x509.Certificate] = (),
            signer: x509.Certificate | None = None, newest: bool = False):  # type: ignore[no-untyped-def]
        """A validation context at `moment`.  The newest proof, judged at `at` itself, is checked
        without revocation data (no file holds data from its own future, and stale data cannot
        speak for `at`; `_revoked_tsa` looks for a recorded revocation instead); everything judged
        at a proven time in the past uses the data, required in "require" mode."""
        mode = "none" if newest else ("require" if self.require else "available")
        return validation_context(self.roots, moment=moment, revocation=self.revocation,
                                  other_certs=[*self.dss_certs, *extra_certs], extra_crls=self.dss_crls,
                                  extra_ocsps=self.dss_ocsps, signer=signer, distid=self.distid, mode=mode)

    def run(self) -> VerificationReport:
        reader = self.reader
        embedded = list(reader.embedded_signatures)
        signatures = [s for s in embedded if s.sig_object_type == "/Sig"]
        stamps = sorted((s for s in embedded if s.sig_object_type == "/DocTimeStamp"),
                        key=lambda s: s.signed_revision)
        total = reader.xrefs.total_revisions
        if not signatures:
            return VerificationReport((), total, False, ("the document has no signatures",), False, "invalid",
                                      at=self.at)
        stamp_reports = self._document_timestamps(stamps)
        signed_revs = {s.signed_revision: s.field_name for s in signatures}
        last_rev = max(signed_revs)
        reports = [self._signature(sig, signed_revs, stamps, stamp_reports, is_last=sig.signed_revision == last_rev)
                   for sig in signatures]
        problems = []
        last_report = next(r for r, s in zip(reports, signatures) if s.signed_revision == last_rev)
        modified = total - 1 > last_rev and last_report.modification_level not in ("NONE", "LTA_UPDATES")
        if modified:
            problems.append("the document was modified after the last seal")
        for r in reports:
            if r.verdict != "valid":
                problems.append(f"seal {r.field_name} ({r.verdict}): " + "; ".join(r.problems))
        for t in stamp_reports:
            if t.verdict == "invalid":
                problems.append(f"document timestamp {t.field_name}: " + "; ".join(t.problems))
        verdicts = [r.verdict for r in reports] + [t.verdict for t in stamp_reports if t.verdict == "invalid"]
        if modified:
            verdicts.append("invalid")
        verdict = combine(verdicts)
        return VerificationReport(tuple(reports), total, modified, tuple(problems), verdict == "valid", verdict,
                                  document_timestamps=tuple(stamp_reports), at=self.at)

    # ---------------------------------------------------------------- document timestamps

    def _document_timestamps(self, stamps: list[Any]) -> list[DocumentTimestampReport]:
        """Newest first: the newest judged at `at`, each older one at the time the newer valid one proves."""
        reports: dict[int, DocumentTimestampReport] = {}
        control, newest = self.at, True
        for ts in reversed(stamps):
            report = self._document_timestamp(ts, control, newest)
            reports[ts.signed_revision] = report
            if report.verdict == "valid" and report.gen_time is not None:
                control, newest = report.gen_time, False
        return [reports[ts.signed_revision] for ts in stamps]

    def _document_timestamp(self, ts: Any, control: datetime, newest: bool) -> DocumentTimestampReport:
        cert = serial = gen_time = not_after = None
        problems: list[str] = []
        digest = ""
        try:
            cert = ts.signer_cert
            not_after = cert["tbs_certificate"]["validity"]["not_after"].native
            tst = _tst_info(ts.signed_data)
            serial, gen_time = tst["serial_number"].native, tst["gen_time"].native
            digest = tst["message_imprint"]["hash_algorithm"]["algorithm"].native
            with _pyhanko_warnings() as warnings:
                vc = self._vc(control, newest=newest, extra_certs=ts.other_embedded_certs)
                status = run_coroutine(async_validate_pdf_timestamp(ts, vc))
        except Exception as exc:   # a malformed token: it proves nothing
            message = " ".join(str(getattr(exc, "failure_message", None) or exc).split())
            return DocumentTimestampReport(ts.field_name, ts.signed_revision + 1, gen_time, serial, _tsa_name(cert),
                                           digest, False, control, "invalid",
                                           (f"the document timestamp cannot be validated: {message}",), not_after)
        verdict = "valid"
        if not status.intact:
            problems.append("the document was changed after it was timestamped (the imprint does not match)")
            verdict = "invalid"
        elif not status.valid:
            problems.append("the TSA's signature does not verify")
            verdict = "invalid"
        elif status.coverage != SignatureCoverageLevel.ENTIRE_REVISION and \
                status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
            problems.append("the document timestamp does not cover a whole revision")
            verdict = "invalid"
        elif status.coverage == SignatureCoverageLevel.ENTIRE_REVISION and (
                status.modification_level is None or status.modification_level > ModificationLevel.LTA_UPDATES):
            problems.append("more than validation data and timestamps follows the document timestamp")
            verdict = "invalid"
        elif not status.trusted:
            indic = _subindication(status.trust_problem_indic)
            reason = _SUBINDICATION_TEXT.get(indic, "not trusted")
            detail = next((m for m in warnings.messages if m), None)
            problems.append(f"the TSA certificate at {control:%Y-%m-%d %H:%M}: {reason}"
                            + (f" ({detail})" if detail else ""))
            verdict = "indeterminate" if indic in _INDETERMINATE or warnings.undecided() else "invalid"
        if verdict == "valid" and newest and cert is not None and gen_time is not None:
            verdict, why = self._revoked_tsa(cert, gen_time)
            if why:
                problems.append(why)
        return DocumentTimestampReport(ts.field_name, ts.signed_revision + 1, gen_time, serial, _tsa_name(cert),
                                       digest, bool(status.intact), control, verdict, tuple(problems), not_after)

    def _revoked_tsa(self, cert: x509.Certificate, gen_time: datetime) -> tuple[str, str | None]:
        """The newest proof's TSA certificate, checked against the revocation data at hand: revoked
        before the token → invalid; revoked after it (up to `at`) → indeterminate (a newer
        timestamp should have renewed the proof)."""
        entry = _revocation_entry(cert, self.crls)
        if entry is None or entry[0] > self.at:
            return "valid", None
        when, reason = entry
        text = f"the TSA certificate was revoked on {when:%Y-%m-%d %H:%M}" + (f" ({reason})" if reason else "")
        if when <= gen_time:
            return "invalid", text + ", before it issued this token"
        return "indeterminate", text + ", after this token: no newer timestamp renews the proof"

    # ---------------------------------------------------------------- signatures

    def _signature_timestamp(self, sig: Any, control: datetime, newest: bool) -> tuple[Proof | None, list[str]]:
        """The signature timestamp's proof, judged at `control`; (None, why) when it does not hold."""
        from pyhanko.sign.validation.generic_cms import (extract_tst_data_iter, message_imprint_checker,
                                                         validate_tst_signed_data)
        notes: list[str] = []
        for tst_signed_data in extract_tst_data_iter(sig.signer_info, signed=False):
            try:
                with _pyhanko_warnings() as warnings:
                    vc = self._vc(control, newest=newest)
                    status = run_coroutine(validate_tst_signed_data(tst_signed_data, vc,
                                                                  message_imprint_checker(sig.signer_info)))
                tst = _tst_info(tst_signed_data)
                cert = status.get("signing_cert")
            except Exception as exc:
                notes.append(f"the signature timestamp cannot be validated: "
                             f"{' '.join(str(getattr(exc, 'failure_message', None) or exc).split())}")
                continue
            if not status.get("intact") or not status.get("valid"):
                notes.append("the signature timestamp does not match the signature or its TSA signature fails")
                continue
            indic = status.get("trust_problem_indic")
            if indic is not None:
                reason = _SUBINDICATION_TEXT.get(_subindication(indic), "not trusted")
                detail = next((m for m in warnings.messages if m), None)
                notes.append(f"the signature timestamp's TSA certificate at {control:%Y-%m-%d %H:%M}: {reason}"
                             + (f" ({detail})" if detail else ""))
                continue
            if newest and cert is not None:
                verdict, why = self._revoked_tsa(cert, tst["gen_time"].native)
                if verdict != "valid":
                    notes.append(f"the signature timestamp: {why}")
                    continue
            return Proof(tst["gen_time"].native, "signature timestamp", _tsa_name(cert), tst["serial_number"].native), \
                notes
        return None, notes

    def _signature(self, sig: Any, signed_revs: dict[int, str], stamps: list[Any],
                   stamp_reports: list[DocumentTimestampReport], *, is_last: bool) -> SignatureReport:
        # proof from document timestamps: the oldest valid one that covers this signature's revision
        covering = [(ts, r) for ts, r in zip(stamps, stamp_reports)
                    if ts.signed_revision > sig.signed_revision and r.verdict == "valid" and r.gen_time is not None]
        doc_proof = None
        if covering:
            ts, r = min(covering, key=lambda pair: pair[1].gen_time)
            doc_proof = Proof(r.gen_time, "document timestamp", r.tsa, r.serial or 0, r.revision)
        control = doc_proof.time if doc_proof else self.at
        try:
            sig_proof, ts_notes = self._signature_timestamp(sig, control, newest=doc_proof is None)
        except Exception as exc:   # a CMS too broken to read its unsigned attributes: judged below
            sig_proof, ts_notes = None, [f"the signature timestamp cannot be read: {' '.join(str(exc).split())}"]
        proofs = [p for p in (sig_proof, doc_proof) if p is not None]
        proof = min(proofs, key=lambda p: p.time) if proofs else None
        judged_at = proof.time if proof else self.at
        with _pyhanko_warnings() as warnings:
            try:
                vc = self._vc(judged_at, signer=sig.signer_cert, extra_certs=sig.other_embedded_certs)
                # pyHanko judges timestamp tokens in the signature with this context; without any it
                # is never asked (making one registers the roots and the file's certificates again)
                ts_vc = self._vc(control, newest=doc_proof is None) if _timestamp_tokens(sig) else None
                status = run_coroutine(async_validate_pdf_signature(sig, vc, ts_validation_context=ts_vc))
            except Exception as exc:  # a malformed or tampered CMS: report it, don't crash
                return _broken_report(self.reader, sig, exc, signed_revs)
        report = _report(self.reader, sig, status, warnings, self.seal_check, self.crls, self.ocsps,
                         signed_revs, vc, is_last=is_last, proof=proof, judged_at=judged_at,
                         timestamp=sig_proof.time if sig_proof else None)
        if ts_notes:
            from dataclasses import replace
            report = replace(report, notes=report.notes + tuple(ts_notes))
        return report


def _revocation_entry(cert: x509.Certificate,
                      crls: Sequence[asn1_crl.CertificateList]) -> tuple[datetime, str | None] | None:
    """The revocation of `cert` listed in a CRL of its issuer, if any (read, not judged: the
    verdict on a revocation before the judged time comes from path validation, which checks
    the CRL's signature)."""
    for c in crls:
        try:
            if c.issuer != cert.issuer:
                continue
            for entry in c["tbs_cert_list"]["revoked_certificates"]:
                if entry["user_certificate"].native == cert.serial_number:
                    return entry["revocation_date"].native, _reason(entry.crl_reason_value)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return None


def _later_revocation(cert: x509.Certificate, crls: Sequence[asn1_crl.CertificateList],
                      after: datetime) -> tuple[datetime, str | None] | None:
    """A revocation of `cert` dated after `after` (for the report only: it does not change the verdict)."""
    entry = _revocation_entry(cert, crls)
    return entry if entry is not None and entry[0] > after else None


def _report(reader, sig, status, warnings: _Collector, seal_check, crls, ocsps,
            signed_revs: dict[int, str], vc, *, is_last: bool, proof: Proof | None = None,
            judged_at: datetime | None = None, timestamp: datetime | None = None) -> SignatureReport:
    cert = status.signing_cert
    problems: list[str] = []
    indeterminate: list[str] = []
    if not status.intact:
        problems.append("the document bytes do not match the signed digest (modified)")
    if not status.valid:
        problems.append("the cryptographic signature does not verify")

    # what came after this signature
    diff = status.diff_result
    level = status.modification_level
    level_name = level.name if level is not None else ("NONE" if status.coverage ==
                                                      SignatureCoverageLevel.ENTIRE_FILE else "OTHER")
    allowed = (ModificationLevel.LTA_UPDATES if is_last else ModificationLevel.FORM_FILLING)
    if status.coverage not in (SignatureCoverageLevel.ENTIRE_FILE,
                               SignatureCoverageLevel.ENTIRE_REVISION):
        problems.append("the signature does not cover a whole revision")
    elif status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        if level is None or level > allowed or status.docmdp_ok is False:
            what = "" if level is None else f" ({level.name.lower().replace('_', ' ')})"
            detail = f": {diff}" if diff is not None and not hasattr(diff, "modification_level") \
                else ""
            problems.append(f"modified after signing{what}{detail}")

    # chain (pyHanko checks it only for a signature that is intact and verifies)
    when_text = f" at {judged_at:%Y-%m-%d %H:%M}" if judged_at is not None else ""
    if not (status.intact and status.valid):
        chain = ChainStatus(False, "not checked: the signature itself fails")
    elif status.trusted:
        path = status.validation_path
        subjects = tuple(c.subject.human_friendly for c in path.iter_certs(include_root=True)) \
            if path is not None else ()
        chain = ChainStatus(True, None, tuple(reversed(subjects)))
    else:
        indic = _subindication(status.trust_problem_indic)
        reason = _SUBINDICATION_TEXT.get(indic, str(status.trust_problem_indic) if status.trust_problem_indic
                                         else "not trusted")
        detail = next((m for m in warnings.messages if m), None)
        undecided = indic in _INDETERMINATE or warnings.undecided()
        chain = ChainStatus(False, f"{reason}: {detail}" if detail else reason, indeterminate=undecided)
        if undecided:
            why = f"certificate not trusted{when_text}: {chain.reason}"
            if indic in ("OUT_OF_BOUNDS_NO_POE", "OUT_OF_BOUNDS_NOT_REVOKED") and proof is None:
                why += " — and no timestamp proves the seal existed while it was valid"
            indeterminate.append(why)
        else:
            problems.append(f"certificate not trusted{when_text}: {chain.reason}")

    # revocation
    signing_time = status.signer_reported_dt
    when = judged_at or timestamp or signing_time
    details = status.revocation_details
    revoked_at = reason_text = None
    if details is not None:
        revoked_at = details.revocation_date
        reason_text = _reason(details.revocation_reason)
    elif status.trusted and not declares_ocsp(cert) and ocsp_covers(cert, ocsps):
        revoked_at, reason_text, checked = _undeclared_ocsp(cert, status.validation_path, vc)
        if checked and revoked_at is None:
            details = "good"
        elif revoked_at is not None and when is not None and revoked_at > when:
            revoked_at = None            # a revocation after the judged time does not count
            details = "good"
    later = _later_revocation(cert, crls, when) if when is not None and revoked_at is None else None
    if revoked_at is not None:
        revocation = RevocationStatus("revoked", revoked_at, reason_text,
                                      (revoked_at <= signing_time) if signing_time is not None else None, False)
        if not any(p.startswith("certificate not trusted") for p in problems):
            problems.append("the signer's certificate is revoked"
                            + (f" (since {revoked_at:%Y-%m-%d %H:%M}, before {when:%Y-%m-%d %H:%M})"
                               if when is not None else ""))
    elif later is not None:
        revocation = RevocationStatus("revoked", later[0], later[1], False, True)
    elif status.trusted and (details == "good" or covered_by(cert, crls, ocsps)):
        revocation = RevocationStatus("good")
    else:
        revocation = RevocationStatus("unknown")

    check = None
    if seal_check is not None:
        check = seal_check(cert)
        if not isinstance(check, SealCheck):
            raise TypeError("seal_check must return a SealCheck")
        if not check.ok:
            problems.append(f"the certificate does not belong to the seal: "
                            f"{check.reason or 'no matching seal'}")
    notes = []
    if later is not None:
        notes.append(f"the certificate was revoked on {later[0]:%Y-%m-%d %H:%M}"
                     + (f" ({later[1]})" if later[1] else "")
                     + f", after the proven time {when:%Y-%m-%d %H:%M}: this does not invalidate the seal")
    verdict = "invalid" if problems else ("indeterminate" if indeterminate else "valid")
    mech = sig.signer_info["signature_algorithm"]
    return SignatureReport(
        field_name=sig.field_name, page=_widget_page(reader, sig.sig_field),
        signer_subject=cert.subject.human_friendly, signer_serial=cert.serial_number,
        signer_certificate=cert, algorithm=mech["algorithm"].native,
        digest_algorithm=status.md_algorithm, signing_time=signing_time, timestamp=timestamp,
        intact=bool(status.intact), signature_valid=bool(status.valid),
        coverage=status.coverage.name if status.coverage is not None else "UNCLEAR",
        modification_level=level_name,
        modified_after=_revision_labels(reader, sig.signed_revision, signed_revs),
        chain=chain, revocation=revocation, seal_check=check,
        problems=tuple(problems + indeterminate), valid=verdict == "valid", verdict=verdict,
        proven_time=proof.time if proof else None, proof=proof, judged_at=judged_at,
        revision=sig.signed_revision + 1, notes=tuple(notes), byte_range=_byte_range(sig))


def _timestamp_tokens(sig: Any) -> bool:
    """The signature carries a signature or a content timestamp token (what pyHanko's
    `collect_timing_info` validates with the timestamp validation context)."""
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
    return any(True for signed in (False, True) for _ in extract_tst_data_iter(sig.signer_info, signed=signed))


def _byte_range(sig: Any) -> tuple[int, ...]:
    """The signature's /ByteRange as the file gives it; () when it is not a list of integers."""
    try:
        return tuple(int(v) for v in sig.sig_object["/ByteRange"])
    except (KeyError, TypeError, ValueError):
        return ()


def _broken_report(reader, sig, exc: Exception, signed_revs) -> SignatureReport:
    try:
        cert = sig.signer_cert
        subject, serial = cert.subject.human_friendly, cert.serial_number
    except Exception:  # no usable certificate at all
        cert, subject, serial = None, "", 0
    message = " ".join(str(getattr(exc, "failure_message", None) or exc).split())
    return SignatureReport(
        field_name=sig.field_name, page=_widget_page(reader, sig.sig_field),
        signer_subject=subject, signer_serial=serial, signer_certificate=cert,  # type: ignore[arg-type]
        algorithm="", digest_algorithm="", signing_time=sig.self_reported_timestamp,
        timestamp=None, intact=False, signature_valid=False, coverage="UNCLEAR",
        modification_level="OTHER",
        modified_after=_revision_labels(reader, sig.signed_revision, signed_revs),
        chain=ChainStatus(False, "not checked"), revocation=RevocationStatus("unknown"),
        seal_check=None, problems=(f"the signature cannot be validated: {message}",), valid=False,
        verdict="invalid", revision=sig.signed_revision + 1, byte_range=_byte_range(sig))
