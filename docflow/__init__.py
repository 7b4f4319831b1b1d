"""yinxin's official-document flow: organisations, approval routes from policy, documents with their
GB/T 9704 elements and versions, sealing bound to sign-off, signing before sending, receipt, archive.

Public API — everything else in the package is internal::

    from docflow import DocumentFlow, Attachment
    flow = DocumentFlow(home)                       # home: pki.home.Home
    flow.load_organisation("org.yaml", actor="admin")
    doc = flow.new_document(kind="upward", title="关于…的请示", pdf=pdf_bytes, drafter="sun")
    flow.act(doc.id, user="chen", action="approve", opinion="同意")
    ...
"""
from __future__ import annotations

import importlib
from typing import Any

# imported on first use (PEP 562): `import docflow.store` (the tables, for migrations) stays light
_LAZY = {
    "Organisation": "directory", "Person": "directory", "load_organisation_file": "directory",
    "parse_organisation": "directory",
    "CHINA_TIME": "elements", "URGENCIES": "elements", "Digests": "elements", "Elements": "elements",
    "AttachmentError": "errors", "ChangedMeanwhile": "errors", "DirectoryError": "errors", "DocflowError": "errors",
    "DocumentNotFound": "errors", "ElementError": "errors", "FlowStateError": "errors", "IntegrityFailure": "errors",
    "NotAllowed": "errors", "RouteError": "errors", "VerificationFailed": "errors",
    "ACTIONS": "flow", "DocumentFlow": "flow",
    "ArchiveRecord": "model", "Attachment": "model", "AttachmentInfo": "model", "Delivery": "model",
    "Document": "model", "LoadResult": "model", "LogEntry": "model", "Receipt": "model", "TodoItem": "model",
    "Version": "model",
    "KINDS": "routes", "OUTGOING_KINDS": "routes", "ROLES": "routes", "Route": "routes", "Step": "routes",
    "load_default_routes": "routes", "load_route_file": "routes", "parse_route": "routes",
    "SealCheck": "verification", "check_sealed": "verification",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'docflow' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
