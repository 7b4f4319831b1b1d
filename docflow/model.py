"""Value objects the document flow hands out (frozen), and the guard that collects problems.

A guard runs every check of an operation and only then raises, naming every
problem it found; the operation changes nothing unless the guard passed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from .elements import Digests, Elements
from .errors import DocflowError


@dataclass(frozen=True)
class Attachment:
    """An attachment given to `new_document`: its file name and bytes."""

    name: str
    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("an attachment needs a name")
        if not isinstance(self.data, (bytes, bytearray)):
            raise TypeError("attachment data must be bytes")


@dataclass(frozen=True)
class Version:
    number: int
    purpose: str            # draft | revision | sealed | received
    digests: Digests
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "purpose": self.purpose, **self.digests.to_dict(),
                "created_at": self.created_at.isoformat(), "created_by": self.created_by}


@dataclass(frozen=True)
class AttachmentInfo:
    position: int
    name: str
    digests: Digests

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "name": self.name, **self.digests.to_dict()}


@dataclass(frozen=True)
class Delivery:
    id: int
    doc_id: int
    organisation: str
    state: str              # delivered | opened | received | returned | recalled
    version: int
    sha256: str
    sent_at: datetime
    sent_by: str
    opened_at: datetime | None = None
    opened_by: str | None = None
    received_at: datetime | None = None
    received_by: str | None = None
    incoming_doc_id: int | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True)
class Document:
    id: int
    organisation: str
    kind: str
    drafter: str | None
    state: str              # draft | in_flow | sent | done | archived
    step: str | None
    step_title: str | None
    pending: tuple[str, ...]
    elements: Elements
    current_version: int
    versions: tuple[Version, ...]
    attachments: tuple[AttachmentInfo, ...]
    signed_off_version: int | None
    signed_off_by: str | None
    sealed_version: int | None
    deliveries: tuple[Delivery, ...]
    source_delivery_id: int | None
    route_name: str
    step_state: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def current(self) -> Version:
        return next(v for v in self.versions if v.number == self.current_version)

    @property
    def digests(self) -> Digests:
        return self.current.digests

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "organisation": self.organisation, "kind": self.kind, "drafter": self.drafter,
                "state": self.state, "step": self.step, "step_title": self.step_title,
                "pending": list(self.pending), "elements": self.elements.to_dict(),
                "current_version": self.current_version, "versions": [v.to_dict() for v in self.versions],
                "attachments": [a.to_dict() for a in self.attachments],
                "signed_off_version": self.signed_off_version, "signed_off_by": self.signed_off_by,
                "sealed_version": self.sealed_version, "deliveries": [d.to_dict() for d in self.deliveries],
                "source_delivery_id": self.source_delivery_id, "route": self.route_name,
                "step_state": dict(self.step_state), "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class LogEntry:
    seq: int
    at: datetime
    actor: str
    step: str | None
    action: str
    opinion: str | None
    version: int | None
    sha256: str | None
    sm3: str | None
    details: Mapping[str, Any]
    audit_seq: int
    decision_seq: int | None = None     # its signed decision in the document's chain, if signed

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor, "step": self.step,
                "action": self.action, "opinion": self.opinion, "version": self.version, "sha256": self.sha256,
                "sm3": self.sm3, "details": dict(self.details), "audit_seq": self.audit_seq,
                "decision": self.decision_seq}


@dataclass(frozen=True)
class TodoItem:
    """One thing waiting for a user: a step of a document, a delivery in the inbox, a returned delivery."""

    what: str               # step | inbox | returned
    doc_id: int
    title: str
    kind: str
    organisation: str       # the document's organisation (the sender, for inbox items)
    step: str | None
    step_title: str | None
    since: datetime
    delivery_id: int | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "doc_id": self.doc_id, "title": self.title, "kind": self.kind,
                "organisation": self.organisation, "step": self.step, "step_title": self.step_title,
                "since": self.since.isoformat(), "delivery_id": self.delivery_id, "detail": self.detail}


@dataclass(frozen=True)
class Receipt:
    """What `receive` found: accepted into the incoming route, or returned to the sender with the reason."""

    accepted: bool
    doc_id: int                     # the sender's document
    delivery_id: int
    organisation: str               # the receiving organisation
    at: datetime
    incoming_doc_id: int | None
    problems: tuple[str, ...]
    report: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "doc_id": self.doc_id, "delivery_id": self.delivery_id,
                "organisation": self.organisation, "at": self.at.isoformat(),
                "incoming_doc_id": self.incoming_doc_id, "problems": list(self.problems),
                "report": dict(self.report)}


@dataclass(frozen=True)
class ArchiveRecord:
    doc_id: int
    organisation: str
    archived_at: datetime
    archived_by: str
    digests: Digests
    record: Mapping[str, Any]
    reports: tuple[Mapping[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "organisation": self.organisation,
                "archived_at": self.archived_at.isoformat(), "archived_by": self.archived_by,
                **self.digests.to_dict(), "record": dict(self.record), "reports": [dict(r) for r in self.reports]}


@dataclass(frozen=True)
class LoadResult:
    """What `load_organisation` did."""

    organisation: Any       # directory.Organisation
    version: int
    created: bool
    changed: bool
    digest: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"organisation": self.organisation.name, "version": self.version, "created": self.created,
                "changed": self.changed, "digest": self.digest, "people": len(self.organisation.people),
                "notes": list(self.notes)}


@dataclass
class Guard:
    """Collects every problem of an operation; `raise_if_any` raises the first problem's error
    class with all messages (and the list in `problems`)."""

    problems: list[tuple[type[DocflowError], str]] = field(default_factory=list)

    def fail(self, error: type[DocflowError], message: str) -> None:
        self.problems.append((error, message))

    def require(self, condition: bool, error: type[DocflowError], message: str) -> bool:
        if not condition:
            self.fail(error, message)
        return condition

    def __bool__(self) -> bool:
        return not self.problems

    def raise_if_any(self, **data: Any) -> None:
        if not self.problems:
            return
        error = self.problems[0][0]
        messages = [m for _, m in self.problems]
        raise error("; ".join(messages), problems=messages, **data)
