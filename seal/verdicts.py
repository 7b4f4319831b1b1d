"""Verdicts of seal verification, the same for PDF and OFD.

* valid — every check passed;
* invalid — an integrity or seal check failed (bytes changed, a signature does not verify, the
  seal's maker signature, certificate list or validity window, a revoked certificate);
* indeterminate — every cryptographic check passed, but the chain does not reach a trusted root
  (or a certificate on it is expired with no timestamp to prove the signing time), or revocation
  cannot be decided.

The CLI exits 0, 1 and 3 for them (2 is bad input).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

__all__ = ["VALID", "INVALID", "INDETERMINATE", "SKIPPED", "CheckResult", "combine", "EXIT_CODES"]

VALID, INVALID, INDETERMINATE = "valid", "invalid", "indeterminate"
SKIPPED = "skipped"          # not applicable here (no timestamp, no Seal.esl …): counts for nothing
EXIT_CODES = {VALID: 0, INVALID: 1, INDETERMINATE: 3}


@dataclass(frozen=True)
class CheckResult:
    """One check of one signature, in GB/T 38540's order."""
    name: str
    verdict: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in (VALID, INVALID, INDETERMINATE, SKIPPED):
            raise ValueError(f"unknown verdict {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "verdict": self.verdict, "detail": self.detail}


def combine(verdicts: Iterable[str]) -> str:
    """invalid if any is invalid, else indeterminate if any is, else valid."""
    seen = set(verdicts)
    if INVALID in seen:
        return INVALID
    if INDETERMINATE in seen:
        return INDETERMINATE
    return VALID
