"""The seal checks of the document flow: on the exact bytes, the seal's organisation included.

`SealService.verify` judges the signatures (integrity, chain to a CA of this home,
revocation — the home's CA records count at once, before any CRL is published —,
the seal's validity window, what was appended after a signature).  On top of that
the flow checks what only it knows, from the signatures as that verification read them (or,
when it could not, as pyHanko lists them here):

* every signature on the document was made with the *expected organisation's own
  seal* — looked up in this home's seal records by the signer's certificate, not by
  a name the document claims;
* the last seal covers the *whole file*: not one byte was appended after it, not
  even an update the seal engine would judge harmless;
* for the sender, the sealed file is the signed-off file plus the seal's
  incremental update, so not one byte the signer approved changed.

`check_sealed` never raises for a bad document: it reports every problem.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from pki.errors import YinxinError

from .elements import Digests


class SealVerifier(Protocol):  # what docflow needs of seal.service.SealService
    def verify(self, pdf: bytes, *, trust: Sequence[Any] = ()) -> Any: ...


@dataclass(frozen=True)
class SealCheck:
    valid: bool
    problems: tuple[str, ...]
    report: Mapping[str, Any]     # JSON-able: the seal report and the flow's own checks

    def to_dict(self) -> dict[str, Any]:
        return dict(self.report)

    @property
    def digests(self) -> Digests:
        """The SHA-256, SM3 and size of the bytes checked."""
        return Digests(self.report["sha256"], self.report["sm3"], self.report["size"])


def _embedded_signatures(pdf: bytes, problems: list[str]) -> list[dict[str, Any]]:
    """(field, signer certificate DER, byte range, signing time) of each signature, oldest first."""
    from pyhanko.pdf_utils.misc import PdfError
    try:
        return _list_signatures(pdf)
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"the document's signatures cannot be read ({exc})")
        return []


def _list_signatures(pdf: bytes) -> list[dict[str, Any]]:
    from pyhanko.pdf_utils.reader import PdfFileReader
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    found = []
    for sig in reader.embedded_signatures:
        if sig.sig_object_type != "/Sig":
            continue
        cert = sig.signer_cert
        found.append({"field": sig.field_name, "revision": sig.signed_revision,
                      "certificate": cert.dump() if cert is not None else None,
                      "byte_range": [int(v) for v in sig.sig_object["/ByteRange"]],
                      "signing_time": sig.self_reported_timestamp})
    return sorted(found, key=lambda s: s["revision"])


def _reported_signatures(report: Any) -> list[dict[str, Any]] | None:
    """The signatures of a `seal.service.SealVerification`, oldest first, as `_embedded_signatures`
    lists them plus the seal of this home each certificate belongs to (the verification looked it up
    in the seal records); None when the report cannot say (no report, a byte range it did not read)."""
    checks = getattr(report, "signatures", None)
    if report is None or checks is None or any(not c.report.byte_range or c.report.revision is None
                                                for c in checks):
        return None
    listed = [{"field": c.report.field_name, "revision": c.report.revision,
               "certificate": c.report.signer_certificate.dump() if c.report.signer_certificate is not None else None,
               "byte_range": list(c.report.byte_range), "signing_time": c.report.signing_time,
               "seal": c.seal_name, "organisation": c.organisation} for c in checks]
    return sorted(listed, key=lambda s: s["revision"])


def check_sealed(verifier: SealVerifier, pdf: bytes, *, organisation: str, seal_name: str | None,
                 registry: Any, now: datetime, signed_off: bytes | None = None,
                 digests: Digests | None = None) -> SealCheck:
    """Every check of a sealed document (see the module docstring); reports, never raises for a bad one.

    `registry` is the home's `seal.records.SealRegistry`.  `digests`: those of `pdf`, when the
    caller has just computed them (a stored version found intact), else computed here.  An OFD
    body (a zip) is checked the same way by `_check_sealed_ofd`."""
    if bytes(pdf[:4]) == b"PK\x03\x04":
        return _check_sealed_ofd(verifier, bytes(pdf), organisation=organisation, seal_name=seal_name,
                                 registry=registry, now=now, signed_off=signed_off)
    problems: list[str] = []
    if signed_off is not None and not pdf.startswith(signed_off):
        problems.append("the sealed file is not the signed-off file plus a seal: bytes the signer "
                        "approved were changed")
    try:
        report, unverifiable = verifier.verify(pdf), None
    except YinxinError as exc:            # not a PDF, encrypted, unreadable: a verdict, not a crash
        report, unverifiable = None, exc.message
    # the signatures as the verification read them (with the seal it found for each certificate),
    # else read here
    embedded = _reported_signatures(report)
    if embedded is None:
        embedded = _embedded_signatures(pdf, problems)
        for sig in embedded:
            record = registry.find_by_certificate(sig["certificate"]) if sig["certificate"] else None
            sig["seal"], sig["organisation"] = (record.name, record.organisation) if record else (None, None)
    if not embedded:
        problems.append("the document carries no seal signature (unsealed)")
    else:
        last = embedded[-1]["byte_range"]
        end = last[2] + last[3] if len(last) == 4 else -1
        if len(last) != 4 or last[0] != 0:
            problems.append("the last seal's byte range is malformed")
        elif end < len(pdf):
            problems.append(f"{len(pdf) - end} bytes were appended after the last seal (an update after sealing)")
    seals_found = []
    for n, sig in enumerate(embedded, 1):
        seals_found.append({"field": sig["field"], "seal": sig["seal"], "organisation": sig["organisation"]})
        if sig["seal"] is None:
            problems.append(f"seal {n} ({sig['field']}) was made with a certificate that is no seal of this home")
        elif sig["organisation"] != organisation or (seal_name is not None and sig["seal"] != seal_name):
            expected = f"{organisation}'s seal {seal_name}" if seal_name else f"a seal of {organisation}"
            problems.append(f"seal {n} is seal {sig['seal']} of {sig['organisation']}, not {expected}")
    if unverifiable is not None:
        problems.append(f"the document cannot be verified: {unverifiable}")
    if report is not None and not report.valid and embedded:
        found = list(report.problems) + [p for sig in getattr(report, "signatures", ()) for p in sig.problems]
        for problem in found:
            line = problem.splitlines()[0].strip()       # the full text stays in the report
            if line and not any(line in known or known in line for known in problems):
                problems.append(line)
        if not found:
            problems.append("the seal does not verify")
    if digests is None or digests.size != len(pdf):
        digests = Digests.of(pdf)
    data = {"valid": not problems, "problems": problems, "organisation": organisation, "seal": seal_name,
            "sha256": digests.sha256, "sm3": digests.sm3, "size": digests.size, "checked_at": now.isoformat(),
            "seals": seals_found,
            "extends_signed_off": None if signed_off is None else pdf.startswith(signed_off),
            "seal_report": report.to_dict() if report is not None else None}
    return SealCheck(valid=not problems, problems=tuple(problems), report=data)


# --------------------------------------------------------------------------- OFD bodies

def _ofd_extends(sealed: bytes, signed_off: bytes, problems: list[str]) -> bool:
    from seal.ofd import sealing_changes
    found = sealing_changes(signed_off, sealed)
    problems.extend(found)
    return not found


def _check_sealed_ofd(verifier: SealVerifier, data: bytes, *, organisation: str, seal_name: str | None,
                      registry: Any, now: datetime, signed_off: bytes | None) -> SealCheck:
    from seal.errors import SealError
    from seal.ofd.verify import list_signatures
    problems: list[str] = []
    extends = None if signed_off is None else _ofd_extends(data, signed_off, problems)
    try:
        listed = list_signatures(data)
    except SealError as exc:
        problems.append(f"the document's seals cannot be read ({exc.message})")
        listed = []
    if not listed:
        problems.append("the document carries no seal signature (unsealed)")
    seals_found = []
    for n, sig in enumerate(listed, 1):
        record = registry.find_by_certificate(sig.certificate) if sig.certificate else None
        if record is None:
            problems.append(f"seal {n} ({sig.id}) was made with a certificate that is no seal of this home")
            seals_found.append({"field": sig.id, "seal": None, "organisation": None})
            continue
        seals_found.append({"field": sig.id, "seal": record.name, "organisation": record.organisation})
        if record.organisation != organisation or (seal_name is not None and record.name != seal_name):
            expected = f"{organisation}'s seal {seal_name}" if seal_name else f"a seal of {organisation}"
            problems.append(f"seal {n} is seal {record.name} of {record.organisation}, not {expected}")
    try:
        report = verifier.verify(data)
    except YinxinError as exc:
        problems.append(f"the document cannot be verified: {exc.message}")
        report = None
    if report is not None and listed:
        last = report.signatures[-1].report if report.signatures else None
        if last is not None and last.modified_after:
            problems.append("the document was changed after the last seal: " + "; ".join(last.modified_after))
        if not report.valid:
            found = list(report.problems) or ["the seal does not verify"]
            for problem in found:
                line = problem.splitlines()[0].strip()
                if line and not any(line in known or known in line for known in problems):
                    problems.append(line)
    digests = Digests.of(data)
    out = {"valid": not problems, "problems": problems, "organisation": organisation, "seal": seal_name,
           "format": "ofd", "sha256": digests.sha256, "sm3": digests.sm3, "size": digests.size,
           "checked_at": now.isoformat(), "seals": seals_found, "extends_signed_off": extends,
           "seal_report": report.to_dict() if report is not None else None}
    return SealCheck(valid=not problems, problems=tuple(problems), report=out)
