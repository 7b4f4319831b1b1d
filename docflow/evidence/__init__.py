"""Signed decisions of documents as evidence: `doc log --verify` and `doc evidence`.

`verify_log` checks a document's chain of signed decisions and its log against each other;
`write_evidence` writes the bundle (exact signed bytes, signatures, certificates, CRLs, the
document's versions and a `verify.sh`) a third party checks with OpenSSL alone.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"verify_log": "check", "LogVerification": "check", "LogCheck": "check",
         "write_evidence": "bundle", "EvidenceBundle": "bundle", "crl_offsets": "bundle"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'docflow.evidence' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
