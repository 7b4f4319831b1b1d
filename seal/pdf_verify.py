"""Verifying sealed PDFs: every signature, its chain, its revocation, and what followed it.

pyHanko does the PDF work (byte ranges, CMS, difference analysis between
revisions); `SM2SignatureValidator` plugs SM2 into it, so RSA, ECDSA and SM2
seals go through the same code.  Nothing is fetched from the network: trust
roots and revocation data come from the caller, plus whatever the document
carries in its DSS.

A document is `valid` only if it has at least one signature, every signature
is valid, and nothing but validation data (a DSS update, which pyHanko's
difference analysis recognises) follows the last signature.  A signature is
valid if its bytes are intact, its cryptographic signature verifies, its
certificate chains to a trusted root and is not revoked, the caller's seal
check (if any) accepts the certificate, and whatever was appended after it is
at most further signature fields with their appearances ("form filling" in
pyHanko's terms) — so a joint document with several seals in turn verifies,
while an annotation or content change appended after a seal does not.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pki
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError
from pyhanko.sign.validation.status import SignatureCoverageLevel

from . import pdf_hex  # noqa: F401  (pyHanko reads the signatures' hex strings in blocks)
from .pdf_errors import EncryptedPdf, NotAPdf
from .pdf_validation import (RevocationData, covered_by, declares_ocsp, ocsp_covers,
                             validation_context)

__all__ = ["SealCheck", "ChainStatus", "RevocationStatus", "SignatureReport",
           "VerificationReport", "verify_pdf"]


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


@dataclass(frozen=True)
class RevocationStatus:
    status: str                               # "good", "revoked" or "unknown" (no data)
    revoked_at: datetime | None = None
    reason: str | None = None
    before_signing: bool | None = None        # revoked at or before the signing time?


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
    timestamp: datetime | None                # from a trusted RFC 3161 timestamp, if any
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


@dataclass(frozen=True)
class VerificationReport:
    signatures: tuple[SignatureReport, ...]
    revisions: int
    modified_after_last_signature: bool
    problems: tuple[str, ...]
    valid: bool


# --------------------------------------------------------------------------- helpers

class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        text = getattr(exc, "failure_msg", None) or (str(exc) if exc else record.getMessage())
        self.messages.append(" ".join(str(text).split()))


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
        reader.embedded_signatures  # noqa: B018 - parse the signature fields now
    except (NotAPdf, EncryptedPdf):
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
        asyncio.run(verify_ocsp_response(cert, path, vc))
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

def verify_pdf(data: bytes | str | os.PathLike[str], *, trust_roots: Sequence[x509.Certificate],
               revocation: RevocationData | None = None, seal_check: SealChecker | None = None,
               clock: pki.Clock = pki.SYSTEM_CLOCK, distid: bytes | None = None
               ) -> VerificationReport:
    """Verify every signature in a PDF; see the module docstring for what "valid" means.

    `trust_roots` are the only trusted certificates (never the system's list).
    `revocation` supplies CRLs/OCSP responses (DER) and how missing data
    counts; the document's DSS adds its own.  `seal_check(cert)` is asked,
    per signature, whether the certificate belongs to a known seal.
    `distid` is the SM2 distinguishing ID (default 1234567812345678).
    """
    roots = [x509.Certificate.load(c) if isinstance(c, (bytes, bytearray)) else c
             for c in trust_roots]
    if not all(isinstance(c, x509.Certificate) for c in roots):
        raise TypeError("trust_roots must be asn1crypto Certificates (or DER bytes)")
    stream, reader = _open(data)
    try:
        return _verify(reader, roots, revocation, seal_check, clock.now(), distid)
    finally:
        stream.close()


def _verify(reader: PdfFileReader, trust_roots, revocation, seal_check, now: datetime,
            distid) -> VerificationReport:
    signatures = [s for s in reader.embedded_signatures if s.sig_object_type == "/Sig"]
    total = reader.xrefs.total_revisions
    if not signatures:
        return VerificationReport((), total, False, ("the document has no signatures",), False)
    dss_certs, dss_crls, dss_ocsps = _dss_material(reader)
    supplied_crls = revocation.parsed_crls() if revocation else []
    supplied_ocsps = revocation.parsed_ocsps() if revocation else []
    all_crls, all_ocsps = [*supplied_crls, *dss_crls], [*supplied_ocsps, *dss_ocsps]
    signed_revs = {s.signed_revision: s.field_name for s in signatures}
    last_rev = max(signed_revs)
    reports = []
    for index, sig in enumerate(signatures):
        with _pyhanko_warnings() as warnings:
            try:
                vc = validation_context(trust_roots, moment=now, revocation=revocation,
                                        other_certs=[*dss_certs, *sig.other_embedded_certs],
                                        extra_crls=dss_crls, extra_ocsps=dss_ocsps,
                                        signer=sig.signer_cert, distid=distid)
                status = asyncio.run(async_validate_pdf_signature(sig, vc))
            except Exception as exc:  # a malformed or tampered CMS: report it, don't crash
                reports.append(_broken_report(reader, sig, exc, signed_revs))
                continue
        reports.append(_report(reader, sig, status, warnings.messages, seal_check,
                               all_crls, all_ocsps, signed_revs, vc,
                               is_last=sig.signed_revision == last_rev))
    problems = []
    after_last = total - 1 > last_rev
    last_report = next(r for r, s in zip(reports, signatures) if s.signed_revision == last_rev)
    if after_last and last_report.modification_level not in ("NONE", "LTA_UPDATES"):
        problems.append("the document was modified after the last seal")
    for r in reports:
        if not r.valid:
            problems.append(f"seal {r.field_name}: " + "; ".join(r.problems))
    valid = all(r.valid for r in reports) and not problems
    return VerificationReport(tuple(reports), total, after_last and
                              last_report.modification_level not in ("NONE", "LTA_UPDATES"),
                              tuple(problems), valid)


def _report(reader, sig, status, warnings: list[str], seal_check, crls, ocsps,
            signed_revs: dict[int, str], vc, *, is_last: bool) -> SignatureReport:
    cert = status.signing_cert
    problems: list[str] = []
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
    if not (status.intact and status.valid):
        chain = ChainStatus(False, "not checked: the signature itself fails")
    elif status.trusted:
        path = status.validation_path
        subjects = tuple(c.subject.human_friendly for c in path.iter_certs(include_root=True)) \
            if path is not None else ()
        chain = ChainStatus(True, None, tuple(reversed(subjects)))
    else:
        indic = status.trust_problem_indic
        reason = _SUBINDICATION_TEXT.get(getattr(indic, "name", ""), str(indic) if indic else
                                         "not trusted")
        detail = next((m for m in warnings if m), None)
        chain = ChainStatus(False, f"{reason}: {detail}" if detail else reason)
        problems.append(f"certificate not trusted: {chain.reason}")

    # revocation
    signing_time = status.signer_reported_dt
    ts = status.timestamp_validity
    timestamp = ts.timestamp if ts is not None and ts.valid and ts.trusted else None
    when = timestamp or signing_time
    details = status.revocation_details
    revoked_at = reason_text = None
    if details is not None:
        revoked_at = details.revocation_date
        reason_text = _reason(details.revocation_reason)
    elif status.trusted and not declares_ocsp(cert) and ocsp_covers(cert, ocsps):
        revoked_at, reason_text, checked = _undeclared_ocsp(cert, status.validation_path, vc)
        if checked and revoked_at is None:
            details = "good"
    if revoked_at is not None:
        revocation = RevocationStatus("revoked", revoked_at, reason_text,
                                      (revoked_at <= when) if when is not None else None)
        if not any(p.startswith("certificate not trusted") for p in problems):
            problems.append("the signer's certificate is revoked")
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
        chain=chain, revocation=revocation, seal_check=check, problems=tuple(problems),
        valid=not problems)


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
        seal_check=None, problems=(f"the signature cannot be validated: {message}",), valid=False)
