"""Signed decisions of documents as evidence: `doc log --verify` and `doc evidence`.

`verify_log` checks a document's chain of signed decisions and its log against each other;
`write_evidence` writes the bundle (exact signed bytes, signatures, certificates, CRLs, the
document's versions and a `verify.sh`) a third party checks with OpenSSL alone.
"""
from __future__ import annotations

from pki.lazy import lazy_exports

_LAZY = {"verify_log": "check", "LogVerification": "check", "LogCheck": "check",
         "write_evidence": "bundle", "EvidenceBundle": "bundle", "crl_offsets": "bundle"}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
