"""yinxin's official-document flow: organisations, approval routes from policy, documents with their
GB/T 9704 elements and versions, sealing bound to sign-off, signing before sending, receipt, archive.

Public API — everything else in the package is internal::

    from docflow import DocumentFlow, Attachment
    flow = DocumentFlow(home)                       # home: pki.home.Home
    flow.load_organisation("org.yaml", actor=admin) # actors: pki.accounts.Accounts(home).resume_file(…)
    doc = flow.new_document(kind="upward", title="关于…的请示", pdf=pdf_bytes, actor=sun)
    flow.act(doc.id, actor=chen, action="approve", opinion="同意")   # a decision signed by chen
    ...
    flow.verify_log(doc.id).ok; flow.evidence(doc.id, "evidence-dir")
"""
from __future__ import annotations

from pki.lazy import lazy_exports

# imported on first use (PEP 562): `import docflow.store` (the tables, for migrations) stays light
_LAZY = {
    "Organisation": "directory", "Person": "directory", "load_organisation_file": "directory",
    "SIGNABLE_ACTIONS": "directory",
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


__getattr__ = lazy_exports(__name__, _LAZY)
