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
from .directory import SIGNABLE_ACTIONS, Organisation, Person, load_organisation_file, parse_organisation
from .elements import CHINA_TIME, URGENCIES, Digests, Elements
from .errors import (AttachmentError, ChangedMeanwhile, DirectoryError, DocflowError, DocumentNotFound,
                     ElementError, FlowStateError, IntegrityFailure, NotAllowed, RouteError,
                     VerificationFailed)
from .flow import ACTIONS, DocumentFlow
from .model import (ArchiveRecord, Attachment, AttachmentInfo, Delivery, Document, LoadResult, LogEntry,
                    Receipt, TodoItem, Version)
from .routes import KINDS, OUTGOING_KINDS, ROLES, Route, Step, load_default_routes, load_route_file, parse_route
from .verification import SealCheck, check_sealed

__all__ = [
    "DocumentFlow", "ACTIONS", "SIGNABLE_ACTIONS", "Organisation", "Person", "load_organisation_file",
    "parse_organisation",
    "CHINA_TIME", "URGENCIES", "Digests", "Elements",
    "DocflowError", "DirectoryError", "RouteError", "DocumentNotFound", "ElementError", "AttachmentError",
    "NotAllowed", "FlowStateError", "IntegrityFailure", "VerificationFailed", "ChangedMeanwhile",
    "ArchiveRecord", "Attachment", "AttachmentInfo", "Delivery", "Document", "LoadResult", "LogEntry", "Receipt",
    "TodoItem", "Version", "KINDS", "OUTGOING_KINDS", "ROLES", "Route", "Step", "load_default_routes",
    "load_route_file", "parse_route", "SealCheck", "check_sealed",
]
