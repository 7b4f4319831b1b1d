"""The seal checks of the document flow: on the exact bytes, the seal's organisation included.

`SealService.verify` judges the signatures (integrity, nothing appended after
the last one, chain to a CA of this home, revocation, the seal's validity
window).  On top of that the flow asks what only it knows: that every seal on
the document is the *sending organisation's* seal, and — for the sender — that
the sealed file is the signed-off file plus the seal's incremental update, so
not one byte of what the signer approved changed.
"""
from __future__ import annotations

from dataclasses import dataclass
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


def check_sealed(verifier: SealVerifier, pdf: bytes, *, organisation: str, seal_name: str | None,
                 signed_off: bytes | None = None) -> SealCheck:
    """Every check of a sealed document; never raises for a bad document, reports instead."""
    problems: list[str] = []
    if signed_off is not None and not pdf.startswith(signed_off):
        problems.append("the sealed file is not the signed-off file plus a seal: bytes the signer "
                        "approved were changed")
    report = verifier.verify(pdf)
    signatures = tuple(getattr(report, "signatures", ()))
    if not signatures:
        problems.append("the document carries no seal signature (unsealed)")
    if not report.valid:
        seal_problems = list(report.problems)
        for sig in signatures:
            seal_problems += [p for p in sig.problems if p not in seal_problems]
        problems.extend(seal_problems or ["the seal does not verify"])
    for n, sig in enumerate(signatures, 1):
        if sig.organisation != organisation or (seal_name is not None and sig.seal_name != seal_name):
            who = sig.seal_name or "an unknown seal"
            owner = sig.organisation or "an unknown organisation"
            expected = f"{organisation}'s seal {seal_name}" if seal_name else f"a seal of {organisation}"
            problems.append(f"seal {n} is {who} of {owner}, not {expected}")
    digests = Digests.of(pdf)
    data = {"valid": not problems, "problems": problems, "organisation": organisation, "seal": seal_name,
            "sha256": digests.sha256, "sm3": digests.sm3, "size": digests.size,
            "extends_signed_off": None if signed_off is None else pdf.startswith(signed_off),
            "seal_report": report.to_dict()}
    return SealCheck(valid=not problems, problems=tuple(problems), report=data)
