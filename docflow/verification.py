"""The seal checks of the document flow: on the exact bytes, the seal's organisation included.

`SealService.verify` judges the signatures cryptographically (integrity, chain to a
CA of this home, revocation data, the seal's validity window, what was appended
after a signature).  On top of that the flow checks what only it knows, reading
the PDF's signatures itself with pyHanko:

* every signature on the document was made with the *expected organisation's own
  seal* — looked up in this home's seal records by the signer's certificate, not by
  a name the document claims;
* that seal's certificate is still *issued* in this home's CA (not held, not
  revoked — even before a new CRL is published) and the seal inside its validity
  window;
* the last seal covers the *whole file*: not one byte was appended after it;
* for the sender, the sealed file is the signed-off file plus the seal's
  incremental update, so not one byte the signer approved changed.

`check_sealed` never raises for a bad document: it reports every problem.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

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


def _embedded_signatures(pdf: bytes, problems: list[str]) -> list[dict[str, Any]]:
    """(field, signer certificate DER, byte range, signing time) of each signature, oldest first."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    try:
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
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"the document's signatures cannot be read ({exc})")
        return []


def check_sealed(verifier: SealVerifier, pdf: bytes, *, organisation: str, seal_name: str | None,
                 registry: Any, now: datetime, signed_off: bytes | None = None) -> SealCheck:
    """Every check of a sealed document (see the module docstring); reports, never raises for a bad one.

    `registry` is the home's `seal.records.SealRegistry`."""
    problems: list[str] = []
    if signed_off is not None and not pdf.startswith(signed_off):
        problems.append("the sealed file is not the signed-off file plus a seal: bytes the signer "
                        "approved were changed")
    embedded = _embedded_signatures(pdf, problems)
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
        record = registry.find_by_certificate(sig["certificate"]) if sig["certificate"] else None
        if record is None:
            problems.append(f"seal {n} ({sig['field']}) was made with a certificate that is no seal of this home")
            seals_found.append({"field": sig["field"], "seal": None, "organisation": None})
            continue
        seals_found.append({"field": sig["field"], "seal": record.name, "organisation": record.organisation})
        if record.organisation != organisation or (seal_name is not None and record.name != seal_name):
            expected = f"{organisation}'s seal {seal_name}" if seal_name else f"a seal of {organisation}"
            problems.append(f"seal {n} is seal {record.name} of {record.organisation}, not {expected}")
        try:
            cert = registry.authority.show(record.cert_serial, ca=record.ca)
        except Exception as exc:  # the CA lost the record: report, never crash a verification
            problems.append(f"the certificate of seal {record.name} is unknown to its CA ({exc})")
        else:
            if cert.status != "issued":
                detail = f" ({cert.revocation_reason})" if getattr(cert, "revocation_reason", None) else ""
                problems.append(f"the certificate of seal {record.name} ({cert.serial.upper()}) is "
                                f"{cert.status}{detail}")
        signed_at = sig["signing_time"]
        if not record.valid_from <= now <= record.valid_to or (
                signed_at is not None and not record.valid_from <= signed_at <= record.valid_to):
            problems.append(f"seal {record.name} is valid from {record.valid_from:%Y-%m-%d} to "
                            f"{record.valid_to:%Y-%m-%d} only")
    report = verifier.verify(pdf)
    if not report.valid:
        seal_problems = list(report.problems)
        for sig in getattr(report, "signatures", ()):
            seal_problems += [p for p in sig.problems if p not in seal_problems]
        problems.extend(p for p in (seal_problems or ["the seal does not verify"]) if p not in problems)
    digests = Digests.of(pdf)
    data = {"valid": not problems, "problems": problems, "organisation": organisation, "seal": seal_name,
            "sha256": digests.sha256, "sm3": digests.sm3, "size": digests.size, "checked_at": now.isoformat(),
            "seals": seals_found,
            "extends_signed_off": None if signed_off is None else pdf.startswith(signed_off),
            "seal_report": report.to_dict()}
    return SealCheck(valid=not problems, problems=tuple(problems), report=data)
