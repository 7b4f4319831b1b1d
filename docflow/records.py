"""Reading documents and writing their rows: the base the parts of `DocumentFlow` share.

Reads return frozen values (`Document`, `LogEntry`, `TodoItem`); the write helpers run
inside the one transaction of each operation (see `docflow.flow`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pki import audit
from pki.store import to_json

from . import store as t
from .directory import Organisation, organisation_from_text
from .elements import Digests, Elements
from .errors import AttachmentError, ChangedMeanwhile, DirectoryError, DocumentNotFound, IntegrityFailure
from .model import AttachmentInfo, Delivery, Document, Guard, LogEntry, TodoItem, Version
from .routes import Route, Step, parse_route
from .organisations import OrganisationsMixin
from .verification import SealCheck

if TYPE_CHECKING:
    from pki.accounts.actor import Actor
    from pki.accounts.decisions import Signer

#: what a list shows of a document: its id, kind, step, elements, route and organisation's name
_HEADS = (sa.select(t.doc_documents.c.id, t.doc_documents.c.kind, t.doc_documents.c.step, t.doc_documents.c.elements,
                    t.doc_documents.c.route, t.doc_organisations.c.name.label("org_name"))
          .select_from(t.doc_documents)
          .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_documents.c.org_id))
#: 待办's statements, built once (asked for on every page of the console and by API clients)
_WHOIS = (sa.select(t.doc_organisations.c.id, t.doc_organisations.c.definition)
          .join(t.doc_people, t.doc_people.c.org_id == t.doc_organisations.c.id)
          .where(t.doc_people.c.person_id == sa.bindparam("user")))
_TODO_STEPS = (_HEADS.add_columns(t.doc_pending.c.since)
               .join(t.doc_pending, t.doc_pending.c.doc_id == t.doc_documents.c.id)
               .where(t.doc_pending.c.person_id == sa.bindparam("user"))
               .order_by(t.doc_pending.c.since, t.doc_pending.c.doc_id))
_TODO_INBOX = (_HEADS.add_columns(t.doc_deliveries.c.id.label("delivery_id"), t.doc_deliveries.c.sent_at,
                                  t.doc_deliveries.c.state)
               .join(t.doc_deliveries, t.doc_deliveries.c.doc_id == t.doc_documents.c.id)
               .where(t.doc_deliveries.c.org_id == sa.bindparam("org_id"),
                      t.doc_deliveries.c.state.in_(("delivered", "opened")))
               .order_by(t.doc_deliveries.c.id))
_RECIPIENT = t.doc_organisations.alias("recipient")
_TODO_RETURNED = (sa.select(t.doc_deliveries, t.doc_documents.c.elements, t.doc_documents.c.kind,
                            _RECIPIENT.c.name.label("org_name"))
                  .join(t.doc_documents, t.doc_documents.c.id == t.doc_deliveries.c.doc_id)
                  .join(_RECIPIENT, _RECIPIENT.c.id == t.doc_deliveries.c.org_id)
                  .where(t.doc_documents.c.org_id == sa.bindparam("org_id"), t.doc_documents.c.state == "sent",
                         t.doc_deliveries.c.state == "returned")
                  .order_by(t.doc_deliveries.c.id))

#: a document's row with its organisation's definition (what every guard reads first)
_DOC_WITH_ORG = (sa.select(t.doc_documents, t.doc_organisations.c.definition.label("org_definition"))
                 .select_from(t.doc_documents)
                 .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_documents.c.org_id))

# The statements of every act, built once: building a statement (and its cache key) costs SQLAlchemy
# ~90 µs, running a built one ~40 µs on SQLite (bench: a document runs ~300 statements)
_DOC_BY_ID = _DOC_WITH_ORG.where(t.doc_documents.c.id == sa.bindparam("doc_id"))
_PENDING = (sa.select(t.doc_pending.c.person_id).where(t.doc_pending.c.doc_id == sa.bindparam("doc_id"))
            .order_by(t.doc_pending.c.person_id))
_VERSION = sa.select(t.doc_versions).where(t.doc_versions.c.doc_id == sa.bindparam("doc_id"),
                                           t.doc_versions.c.number == sa.bindparam("number"))
_ATTACHMENTS = sa.select(t.doc_attachments).where(t.doc_attachments.c.doc_id == sa.bindparam("doc_id"))
_VERSION_LIST = (sa.select(t.doc_versions.c.number, t.doc_versions.c.purpose, t.doc_versions.c.sha256,
                           t.doc_versions.c.sm3, t.doc_versions.c.size, t.doc_versions.c.created_at,
                           t.doc_versions.c.created_by)
                 .where(t.doc_versions.c.doc_id == sa.bindparam("doc_id")).order_by(t.doc_versions.c.number))
_ATTACHMENT_LIST = (sa.select(t.doc_attachments.c.position, t.doc_attachments.c.name, t.doc_attachments.c.sha256,
                              t.doc_attachments.c.sm3, t.doc_attachments.c.size)
                    .where(t.doc_attachments.c.doc_id == sa.bindparam("doc_id"))
                    .order_by(t.doc_attachments.c.position))
_DELIVERY_LIST = (sa.select(t.doc_deliveries, t.doc_organisations.c.name.label("org_name"))
                  .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_deliveries.c.org_id)
                  .where(t.doc_deliveries.c.doc_id == sa.bindparam("doc_id")).order_by(t.doc_deliveries.c.id))
# an UPDATE whose SET lists exactly the columns given at execution (SQLAlchemy compiles one per set of keys)
_DOC_UPDATE = sa.update(t.doc_documents).where(t.doc_documents.c.id == sa.bindparam("doc_id"),
                                               t.doc_documents.c.revision == sa.bindparam("old_revision"))
_PENDING_CLEAR = sa.delete(t.doc_pending).where(t.doc_pending.c.doc_id == sa.bindparam("doc_id"))
_PENDING_INSERT = t.doc_pending.insert()
_EARLIER_ACTIONS = t.doc_actions.alias("earlier")
#: an action is numbered one after its document's last in the insert itself (two acts on one document
#: are kept apart by the document row's update, its revision checked, earlier in the same transaction)
_ACTION_INSERT = t.doc_actions.insert().values(seq=sa.select(
    sa.func.coalesce(sa.func.max(_EARLIER_ACTIONS.c.seq), 0) + 1).where(
    _EARLIER_ACTIONS.c.doc_id == sa.bindparam("numbered_doc_id")).scalar_subquery())
_VERSION_INSERT = t.doc_versions.insert()
_VERIFICATION_INSERT = t.doc_verifications.insert()


def _in_directory_order(org: Organisation, people: Iterable[str]) -> tuple[str, ...]:
    """People in the order of the organisation's directory (strangers last, by id as given)."""
    order = {p.id: i for i, p in enumerate(org.people)}
    return tuple(sorted(people, key=lambda p: order.get(p, 10**6)))


@dataclass(frozen=True)
class _Doc:
    """A document as the guard reads it."""

    row: Mapping[str, Any]
    org: Organisation
    route: Route
    elements: Elements
    step_state: Mapping[str, Any]
    pending: tuple[str, ...]

    @property
    def id(self) -> int:
        return self.row["id"]

    @property
    def state(self) -> str:
        return self.row["state"]

    @property
    def drafter(self) -> str | None:
        return self.row["drafter"]

    @property
    def step(self) -> Step | None:
        sid = self.row["step"]
        return None if sid in (None, "draft") else self.route.step(sid)

    def where(self) -> str:
        if self.row["step"] == "draft":
            return "returned to its drafter"
        step = self.step
        return f"at step {step.id} ({step.title})" if step else f"{self.state}"


class RecordsMixin(OrganisationsMixin):
    """Reading and writing the document-flow tables of one home."""

    def _acting(self, actor: "Actor") -> str:
        """The acting person's id, once the actor is checked (genuine, this home, session alive,
        account enabled): the flow's own rules then decide what that person may do."""
        from pki.accounts.accounts import Accounts
        Accounts.of(self.home).require(actor)
        return actor.account_id

    def _signer(self, actor: "Actor", org: Organisation, action: str, conn: Connection | None = None) -> "Signer | None":
        """Who signs the decision `action` of a person of `org`: their own certificate, unless the
        organisation does not sign that action.  SigningKeyError (nothing changed) when it must be
        signed and cannot: no person certificate, or the session did not unlock the key.  `conn`:
        looked up in the guard's read transaction (else in one of its own)."""
        if not org.signs(action):
            return None
        from pki.accounts import decisions
        return decisions.signer_for(self.home, actor, conn=conn, what=f"{action} in {org.name}")

    def _read_doc(self, conn: Connection, doc_id: int) -> _Doc:
        """The document's row with its organisation's definition (one statement), and its pending list."""
        found = conn.execute(_DOC_BY_ID, {"doc_id": doc_id}).mappings().first()
        if found is None:
            raise DocumentNotFound(f"no document {doc_id}", doc=doc_id)
        row = dict(found)
        org = organisation_from_text(row.pop("org_definition"))
        route = _route(row["route"], f"route of document {doc_id}")
        pending = tuple(r[0] for r in conn.execute(_PENDING, {"doc_id": doc_id}))
        return _Doc(row=row, org=org, route=route, elements=Elements.from_dict(json.loads(row["elements"])),
                    step_state=json.loads(row["step_state"]), pending=_in_directory_order(org, pending))

    @staticmethod
    def _written(d: _Doc, now: datetime, values: Mapping[str, Any], pending: Iterable[str]) -> _Doc:
        """The document as `_update(conn, d, now, **values)` and `_set_pending(…, pending, …)` just
        left it, without reading it back: the row the guard read with the values written (the JSON
        columns as they were stored), and the pending list as `_read_doc` orders it."""
        row = {**d.row, **values, "revision": d.row["revision"] + 1, "updated_at": now.astimezone(timezone.utc)}
        elements = Elements.from_dict(json.loads(row["elements"])) if "elements" in values else d.elements
        step_state = json.loads(row["step_state"]) if "step_state" in values else d.step_state
        return _Doc(row=row, org=d.org, route=d.route, elements=elements, step_state=step_state,
                    pending=_in_directory_order(d.org, sorted(dict.fromkeys(pending))))

    def _version_bytes(self, conn: Connection, doc_id: int, number: int) -> tuple[bytes, Digests, Mapping[str, Any]]:
        row = conn.execute(_VERSION, {"doc_id": doc_id, "number": number}).mappings().first()
        if row is None:
            raise IntegrityFailure(f"document {doc_id} has lost version {number}", doc=doc_id, version=number)
        return bytes(row["pdf"]), Digests(row["sha256"], row["sm3"], row["size"]), row

    def _intact(self, conn: Connection, doc_id: int, number: int, guard: Guard,
                expect_sha256: str | None = None) -> bytes | None:
        """The bytes of a version if they still match every digest recorded for them."""
        return self._intact_version(conn, doc_id, number, guard, expect_sha256)[0]

    def _intact_version(self, conn: Connection, doc_id: int, number: int, guard: Guard,
                        expect_sha256: str | None = None) -> tuple[bytes | None, Digests | None]:
        """`_intact`, and the digests recorded for the version (which its bytes were just found to match)."""
        try:
            data, recorded, _ = self._version_bytes(conn, doc_id, number)
        except IntegrityFailure as exc:
            guard.fail(IntegrityFailure, exc.message)
            return None, None
        if not recorded.matches(data):
            guard.fail(IntegrityFailure, f"version {number} of document {doc_id} no longer matches its recorded "
                                         "SHA-256/SM3 digests: the stored bytes were changed")
            return None, None
        if expect_sha256 is not None and recorded.sha256 != expect_sha256:
            guard.fail(IntegrityFailure, f"version {number} of document {doc_id} is not the version that was "
                                         "signed off or sealed (digest mismatch)")
            return None, None
        return data, recorded

    def _attachments_intact(self, conn: Connection, d: _Doc, guard: Guard) -> None:
        rows = conn.execute(_ATTACHMENTS, {"doc_id": d.id}).mappings().all()
        names = []
        for r in rows:
            names.append(r["name"])
            if not Digests(r["sha256"], r["sm3"], r["size"]).matches(bytes(r["data"])):
                guard.fail(IntegrityFailure, f"attachment {r['name']} of document {d.id} no longer matches "
                                             "its digests")
        for declared in d.elements.attachments:
            if not any(_attachment_matches(declared, n) for n in names):
                guard.fail(AttachmentError, f"declared attachment {declared!r} is missing")

    def show(self, doc_id: int) -> Document:
        with self.home.store.read() as conn:
            return self._document(conn, doc_id)

    def _document(self, conn: Connection, doc_id: int) -> Document:
        return self._document_of(conn, self._read_doc(conn, doc_id))

    def _document_of(self, conn: Connection, d: _Doc) -> Document:
        """The `Document` of a document read (or just written, `_written`): its versions,
        attachments and deliveries read here."""
        doc_id = d.id
        versions = tuple(Version(number=r["number"], purpose=r["purpose"],
                                 digests=Digests(r["sha256"], r["sm3"], r["size"]),
                                 created_at=r["created_at"], created_by=r["created_by"])
                         for r in conn.execute(_VERSION_LIST, {"doc_id": doc_id}).mappings())
        attachments = tuple(AttachmentInfo(r["position"], r["name"], Digests(r["sha256"], r["sm3"], r["size"]))
                            for r in conn.execute(_ATTACHMENT_LIST, {"doc_id": doc_id}).mappings())
        step = d.step
        return Document(
            id=doc_id, organisation=d.org.name, kind=d.row["kind"], drafter=d.drafter, state=d.state,
            step=d.row["step"], step_title=step.title if step else ("退回拟稿人" if d.row["step"] == "draft" else None),
            pending=d.pending, elements=d.elements, current_version=d.row["current_version"], versions=versions,
            attachments=attachments, signed_off_version=d.row["signed_off_version"],
            signed_off_by=d.row["signed_off_by"], sealed_version=d.row["sealed_version"],
            deliveries=self._deliveries(conn, doc_id), source_delivery_id=d.row["source_delivery_id"],
            route_name=d.route.name, step_state=d.step_state, created_at=d.row["created_at"],
            updated_at=d.row["updated_at"])

    def _deliveries(self, conn: Connection, doc_id: int) -> tuple[Delivery, ...]:
        rows = conn.execute(_DELIVERY_LIST, {"doc_id": doc_id}).mappings().all()
        return tuple(_delivery(r) for r in rows)

    def pdf(self, doc_id: int, version: int | None = None) -> bytes:
        """The PDF of a version (default: the current one), checked against its digests."""
        with self.home.store.read() as conn:
            d = self._read_doc(conn, doc_id)
            guard = Guard()
            data = self._intact(conn, doc_id, version or d.row["current_version"], guard)
        guard.raise_if_any(doc=doc_id)
        assert data is not None
        return data

    def attachment(self, doc_id: int, position: int) -> tuple[str, bytes]:
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(t.doc_attachments).where(
                t.doc_attachments.c.doc_id == doc_id, t.doc_attachments.c.position == position)).mappings().first()
        if row is None:
            raise DocumentNotFound(f"document {doc_id} has no attachment {position}", doc=doc_id)
        data = bytes(row["data"])
        if not Digests(row["sha256"], row["sm3"], row["size"]).matches(data):
            raise IntegrityFailure(f"attachment {row['name']} no longer matches its digests", doc=doc_id)
        return row["name"], data

    def log(self, doc_id: int) -> list[LogEntry]:
        with self.home.store.read() as conn:
            self._read_doc(conn, doc_id)
            rows = conn.execute(sa.select(t.doc_actions).where(t.doc_actions.c.doc_id == doc_id)
                                .order_by(t.doc_actions.c.seq)).mappings().all()
        return [LogEntry(seq=r["seq"], at=r["at"], actor=r["actor"], step=r["step"], action=r["action"],
                         opinion=r["opinion"], version=r["version"], sha256=r["sha256"], sm3=r["sm3"],
                         details=json.loads(r["details"]), audit_seq=r["audit_seq"], decision_seq=r["decision_seq"])
                for r in rows]

    def verifications(self, doc_id: int) -> list[dict[str, Any]]:
        """Every verification report recorded for the document, oldest first."""
        with self.home.store.read() as conn:
            rows = conn.execute(sa.select(t.doc_verifications).where(t.doc_verifications.c.doc_id == doc_id)
                                .order_by(t.doc_verifications.c.id)).mappings().all()
        return [{"purpose": r["purpose"], "at": r["at"].isoformat(), "actor": r["actor"], "valid": r["valid"],
                 "delivery_id": r["delivery_id"], "sha256": r["sha256"], "report": json.loads(r["report"])}
                for r in rows]

    def todo(self, user: str) -> list[TodoItem]:
        """Steps waiting for `user`, deliveries in the inbox of their organisation (receivers), and
        deliveries a recipient returned (the sender's secretaries).  A few statements whatever the
        number of documents (the console's 待办 is asked for on every page)."""
        with self.home.store.read() as conn:
            found = conn.execute(_WHOIS, {"user": user}).first()
            if found is None:
                raise DirectoryError(f"{user!r} is nobody in the organisation directory", person=user)
            org_id = found.id
            person = organisation_from_text(found.definition).person(user)
            items: list[TodoItem] = []
            for r in conn.execute(_TODO_STEPS, {"user": user}):
                step = _route(r.route, f"route of document {r.id}").step(r.step) \
                    if r.step not in (None, "draft") else None
                items.append(TodoItem(what="step", doc_id=r.id, title=json.loads(r.elements)["title"], kind=r.kind,
                                      organisation=r.org_name, step=r.step,
                                      step_title=step.title if step else "退回拟稿人", since=r.since))
            if "receiver" in person.roles:
                for r in conn.execute(_TODO_INBOX, {"org_id": org_id}):
                    items.append(TodoItem(what="inbox", doc_id=r.id, title=json.loads(r.elements)["title"],
                                          kind=r.kind, organisation=r.org_name, step=None, step_title="收文",
                                          since=r.sent_at, delivery_id=r.delivery_id, detail=r.state))
            if "secretary" in person.roles:
                for r in conn.execute(_TODO_RETURNED, {"org_id": org_id}).mappings():
                    if self._latest_delivery_state(conn, r["doc_id"], r["org_id"]) != "returned":
                        continue
                    items.append(TodoItem(what="returned", doc_id=r["doc_id"], title=json.loads(r["elements"])["title"],
                                          kind=r["kind"], organisation=r["org_name"], step=None,
                                          step_title="被退回", since=r["closed_at"], delivery_id=r["id"],
                                          detail=r["reason"]))
        return items

    def _latest_delivery_state(self, conn: Connection, doc_id: int, org_id: int) -> str | None:
        return conn.execute(sa.select(t.doc_deliveries.c.state).where(
            t.doc_deliveries.c.doc_id == doc_id, t.doc_deliveries.c.org_id == org_id)
            .order_by(t.doc_deliveries.c.id.desc()).limit(1)).scalar()

    def _update(self, conn: Connection, d: _Doc, now: datetime, **values: Any) -> None:
        result = conn.execute(_DOC_UPDATE, {"doc_id": d.id, "old_revision": d.row["revision"],
                                            "revision": d.row["revision"] + 1, "updated_at": now, **values})
        if result.rowcount != 1:
            raise ChangedMeanwhile(f"document {d.id} changed while this operation was checked; look again "
                                   "(yinxin doc show) and retry", doc=d.id)

    @staticmethod
    def _set_pending(conn: Connection, doc_id: int, step: str | None, people: Iterable[str], now: datetime) -> None:
        conn.execute(_PENDING_CLEAR, {"doc_id": doc_id})
        rows = [{"doc_id": doc_id, "person_id": pid, "step": step or "", "since": now} for pid in dict.fromkeys(people)]
        if rows:
            conn.execute(_PENDING_INSERT, rows)

    def _log(self, conn: Connection, doc_id: int, *, at: datetime, actor: "Actor", signer: "Signer | None",
             step: str | None, action: str, org: str, opinion: str | None = None, version: int | None = None,
             digests: Digests | None = None, details: Mapping[str, Any] | None = None,
             audit_seq: int | None = None, signed: Mapping[str, Any] | None = None) -> int:
        """One action: the document's log entry, (unless `audit_seq` is given) its audit event, and —
        with a `signer` — its signed decision in the document's chain (`doc:ID`): the document, the
        organisation, step, action, opinion, the version's number and SHA-256/SM3 digests, and the
        `signed` extras (who is next, the seal, the recipients …)."""
        details = dict(details or {})
        decision_seq = None
        if signer is not None:
            from pki.accounts import decisions
            decision = decisions.append(conn, self.home, chain=f"doc:{doc_id}", actor=actor, signer=signer, at=at,
                                        fields=decision_fields(doc_id, org, step, action, opinion, version, digests,
                                                               signed))
            decision_seq = decision.seq
            details["decision"] = decision.seq
        if audit_seq is None:
            audit_seq = audit.append(
                conn, at=at, actor=actor.account_id, action=f"doc.{action}", target=f"doc:{doc_id}",
                details={"organisation": org, "step": step, "opinion": opinion, "version": version,
                         "sha256": digests.sha256 if digests else None, "sm3": digests.sm3 if digests else None,
                         **details},
                result_digest=digests.sha256 if digests else None)
        conn.execute(_ACTION_INSERT, {
            "doc_id": doc_id, "numbered_doc_id": doc_id, "at": at, "actor": actor.account_id, "step": step, "action": action,
            "opinion": opinion, "version": version, "sha256": digests.sha256 if digests else None,
            "sm3": digests.sm3 if digests else None, "details": to_json(details), "audit_seq": audit_seq,
            "decision_seq": decision_seq})
        return audit_seq

    def _add_version(self, conn: Connection, doc_id: int, number: int, purpose: str, data: bytes,
                     digests: Digests, now: datetime, actor: str) -> None:
        conn.execute(_VERSION_INSERT, {
            "doc_id": doc_id, "number": number, "purpose": purpose, "pdf": data, "sha256": digests.sha256,
            "sm3": digests.sm3, "size": digests.size, "created_at": now, "created_by": actor})

    def _next_number(self, conn: Connection, org_id: int, series: str, year: int) -> int:
        current = conn.execute(sa.select(t.doc_counters.c.last).where(
            t.doc_counters.c.org_id == org_id, t.doc_counters.c.series == series,
            t.doc_counters.c.year == year)).scalar()
        if current is None:
            conn.execute(t.doc_counters.insert().values(org_id=org_id, series=series, year=year, last=1))
            return 1
        conn.execute(sa.update(t.doc_counters).where(
            t.doc_counters.c.org_id == org_id, t.doc_counters.c.series == series, t.doc_counters.c.year == year,
            t.doc_counters.c.last == current).values(last=current + 1))
        return current + 1

    def _peek_number(self, conn: Connection, org_id: int, series: str, year: int) -> int:
        """The number `_next_number` would give now (read only)."""
        current = conn.execute(sa.select(t.doc_counters.c.last).where(
            t.doc_counters.c.org_id == org_id, t.doc_counters.c.series == series,
            t.doc_counters.c.year == year)).scalar()
        return (current or 0) + 1

    @staticmethod
    def _record_verification(conn: Connection, doc_id: int, delivery_id: int | None, purpose: str, at: datetime,
                             actor: str, check: SealCheck) -> None:
        conn.execute(_VERIFICATION_INSERT, {
            "doc_id": doc_id, "delivery_id": delivery_id, "purpose": purpose, "at": at, "actor": actor,
            "valid": check.valid, "sha256": check.report["sha256"], "report": to_json(check.to_dict())})


@lru_cache(maxsize=64)
def _route(text: str, fallback_source: str) -> Route:
    """A document's stored route, parsed once per distinct text (every operation reads it)."""
    data = json.loads(text)
    return parse_route(data, data.pop("source", "") or fallback_source)


def decision_fields(doc_id: int, org: str, step: str | None, action: str, opinion: str | None, version: int | None,
                    digests: Digests | None, signed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a document's signed decision says (pki.accounts.decisions adds chain, time, actor,
    certificate and the previous record's digest)."""
    return {"document": doc_id, "organisation": org, "step": step, "action": action, "opinion": opinion,
            "version": version, "sha256": digests.sha256 if digests else None,
            "sm3": digests.sm3 if digests else None, **dict(signed or {})}


def _delivery(r: Mapping[str, Any]) -> Delivery:
    return Delivery(id=r["id"], doc_id=r["doc_id"], organisation=r["org_name"], state=r["state"],
                    version=r["version"], sha256=r["sha256"], sent_at=r["sent_at"], sent_by=r["sent_by"],
                    opened_at=r["opened_at"], opened_by=r["opened_by"], received_at=r["received_at"],
                    received_by=r["received_by"], incoming_doc_id=r["incoming_doc_id"], closed_at=r["closed_at"],
                    closed_by=r["closed_by"], reason=r["reason"])


def _attachment_matches(declared: str, name: str) -> bool:
    return declared == name or declared == Path(name).stem
