"""The document flow: organisations, documents moving along their routes, sealing, sending, receiving.

Every operation has the same shape:

1. **Guard.**  Read the document, the organisation and the route, and run every
   check of the operation — who may act, the state, the opinion, the exact
   bytes' digests, and the cryptographic checks (stamping and verifying the
   seal happen here too, before anything is written).  All problems are
   collected and raised together; nothing has changed.
2. **Write.**  One transaction: the document row (only if its `revision` is still
   the one the guard read — otherwise `ChangedMeanwhile`), the pending list,
   new versions, the action log entry and the audit event.

So a refused operation leaves the document exactly as it was, and every action
is one audit event (actor, time, opinion, document digest) in the same
transaction as the change it records.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pki import audit
from pki.home import Home
from pki.store import to_json

import seal.store  # noqa: F401  (the seal tables' migration, so migrate() below creates them too)

from . import store as t
from .directory import (Organisation, Person, load_organisation_file, organisation_from_definition,
                        parse_organisation)
from .elements import (Digests, Elements, check_classification, china_date, chinese_date, CHINA_TIME)
from .errors import (AttachmentError, ChangedMeanwhile, DirectoryError, DocflowError, DocumentNotFound,
                     ElementError, FlowStateError, IntegrityFailure, NotAllowed, RouteError,
                     VerificationFailed)
from .model import (ArchiveRecord, Attachment, AttachmentInfo, Delivery, Document, Guard, LoadResult,
                    LogEntry, Receipt, TodoItem, Version)
from .routes import (COMPLETING_ACTION, KIND_TITLES, OUTGOING_KINDS, RETURNABLE_TYPES, Route, Step,
                     check_route_for, load_default_routes, parse_route)
from .verification import SealCheck, check_sealed

ACTIONS = ("approve", "return", "forward", "sign-off", "register")
OPEN_STATES = ("draft", "in_flow")


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


def _opinion(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def _check_pdf(data: bytes, what: str, guard: Guard) -> None:
    if not isinstance(data, (bytes, bytearray)) or not bytes(data[:1024]).lstrip().startswith(b"%PDF-"):
        guard.fail(ElementError, f"{what} is not a PDF file")
        return
    import pikepdf
    try:
        with pikepdf.open(io.BytesIO(bytes(data))) as pdf:
            if len(pdf.pages) < 1:
                guard.fail(ElementError, f"{what} has no pages")
    except pikepdf.PasswordError:
        guard.fail(ElementError, f"{what} is encrypted: official documents are sealed in the clear")
    except pikepdf.PdfError as exc:
        guard.fail(ElementError, f"{what} is not a readable PDF ({exc})")


class DocumentFlow:
    """The official-document flow of one yinxin home.

    `seal_service` is `seal.service.SealService(home)` unless given (tests and
    other systems may pass their own instance)."""

    def __init__(self, home: Home, *, seal_service: Any = None) -> None:
        self.home = home
        home.store.migrate()   # docflow's tables (migration 200) if the home was opened before import
        self._seal_service = seal_service

    @property
    def seal_service(self) -> Any:
        if self._seal_service is None:
            from seal.service import SealService
            self._seal_service = SealService(self.home)
        return self._seal_service

    # ================================================================ directory

    def default_routes(self) -> dict[str, Route]:
        return load_default_routes(self.home.profiles.directory)

    def load_organisation(self, path: str | Path, *, actor: str) -> LoadResult:
        """Load (or update) an organisation from its YAML file; audited."""
        org = load_organisation_file(path, self.default_routes())
        return self._store_organisation(org, actor=actor, source=str(path))

    def load_organisation_data(self, data: Mapping[str, Any], *, actor: str, source: str = "<data>",
                               base_dir: Path | None = None) -> LoadResult:
        org = parse_organisation(data, source=source, default_routes=self.default_routes(), base_dir=base_dir)
        return self._store_organisation(org, actor=actor, source=source)

    def _store_organisation(self, org: Organisation, *, actor: str, source: str) -> LoadResult:
        import hashlib
        definition = org.definition()
        canonical = to_json(definition)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        notes: list[str] = []
        guard = Guard()
        if org.seal:
            from seal.errors import SealNotFound
            from seal.records import SealRegistry
            try:
                record = SealRegistry(self.home).get(org.seal)
            except SealNotFound:
                notes.append(f"seal {org.seal} is not in this home yet: documents of {org.name} cannot be "
                             "sealed until it is created")
            else:
                guard.require(record.organisation == org.name, DirectoryError,
                              f"seal {org.seal} belongs to {record.organisation}, not to {org.name}")
        else:
            notes.append(f"{org.name} names no seal: its documents cannot be sealed or sent")
        ids = [p.id for p in org.people]
        with self.home.store.read() as conn:
            existing = conn.execute(sa.select(t.doc_organisations).where(
                t.doc_organisations.c.name == org.name)).mappings().first()
            org_id = existing["id"] if existing else None
            taken = conn.execute(sa.select(t.doc_people.c.person_id, t.doc_organisations.c.name)
                                 .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_people.c.org_id)
                                 .where(t.doc_people.c.person_id.in_(ids))).all()
            for pid, other in taken:
                guard.require(other == org.name, DirectoryError,
                              f"person id {pid!r} already belongs to {other}: a person id names one person "
                              "in the whole home")
            if existing is not None:
                self._check_reload(conn, existing["id"], org, guard)
        guard.raise_if_any(organisation=org.name, file=source)
        now = self.home.clock.now()
        changed = existing is None or existing["digest"] != digest
        version = 1 if existing is None else existing["version"] + (1 if changed else 0)
        with self.home.store.transaction() as conn:
            values = dict(code=org.code, seal=org.seal, definition=canonical, digest=digest, version=version,
                          loaded_at=now, loaded_by=actor)
            if existing is None:
                org_id = self.home.store.insert(conn, t.doc_organisations, name=org.name, **values)
            else:
                conn.execute(sa.update(t.doc_organisations).where(t.doc_organisations.c.id == org_id)
                             .values(**values))
                conn.execute(sa.delete(t.doc_people).where(t.doc_people.c.org_id == org_id))
            for pid in ids:
                conn.execute(t.doc_people.insert().values(person_id=pid, org_id=org_id))
            audit.append(conn, at=now, actor=actor, action="org.load", target=f"org:{org.name}",
                         details={"version": version, "created": existing is None, "changed": changed,
                                  "previous_digest": existing["digest"] if existing else None,
                                  "people": len(ids), "seal": org.seal, "file": source},
                         result_digest=digest)
        return LoadResult(organisation=org, version=version, created=existing is None, changed=changed,
                          digest=digest, notes=tuple(notes))

    def _check_reload(self, conn: Connection, org_id: int, org: Organisation, guard: Guard) -> None:
        """An update may not strand work: pending handlers and drafters of open documents stay."""
        pending = conn.execute(sa.select(t.doc_pending.c.doc_id, t.doc_pending.c.person_id)
                               .join(t.doc_documents, t.doc_documents.c.id == t.doc_pending.c.doc_id)
                               .where(t.doc_documents.c.org_id == org_id)).all()
        for doc_id, pid in pending:
            guard.require(org.has_person(pid), DirectoryError,
                          f"{pid} is removed but document {doc_id} waits on them")
        drafters = conn.execute(sa.select(t.doc_documents.c.id, t.doc_documents.c.drafter)
                                .where(t.doc_documents.c.org_id == org_id,
                                       t.doc_documents.c.state.in_(OPEN_STATES + ("sent",)))).all()
        for doc_id, pid in drafters:
            if pid is not None:
                guard.require(org.has_person(pid), DirectoryError,
                              f"{pid} is removed but drafted document {doc_id}, which is still open")

    def organisation(self, name: str) -> Organisation:
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(t.doc_organisations).where(
                t.doc_organisations.c.name == name)).mappings().first()
        if row is None:
            raise DirectoryError(f"no organisation named {name!r} (load it with yinxin org load)",
                                 organisation=name)
        return organisation_from_definition(json.loads(row["definition"]))

    def organisation_record(self, name: str) -> dict[str, Any]:
        """The organisation with its directory version, digest and load time."""
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(t.doc_organisations).where(
                t.doc_organisations.c.name == name)).mappings().first()
        if row is None:
            raise DirectoryError(f"no organisation named {name!r} (load it with yinxin org load)",
                                 organisation=name)
        org = organisation_from_definition(json.loads(row["definition"]))
        return {**org.to_dict(), "version": row["version"], "digest": row["digest"],
                "loaded_at": row["loaded_at"].isoformat(), "loaded_by": row["loaded_by"]}

    def organisations(self) -> list[Organisation]:
        with self.home.store.read() as conn:
            rows = conn.execute(sa.select(t.doc_organisations.c.definition)
                                .order_by(t.doc_organisations.c.id)).all()
        return [organisation_from_definition(json.loads(r[0])) for r in rows]

    def whois(self, user: str) -> tuple[Organisation, Person]:
        with self.home.store.read() as conn:
            return self._whois(conn, user)

    def _whois(self, conn: Connection, user: str) -> tuple[Organisation, Person]:
        row = conn.execute(sa.select(t.doc_organisations.c.definition)
                           .join(t.doc_people, t.doc_people.c.org_id == t.doc_organisations.c.id)
                           .where(t.doc_people.c.person_id == user)).first()
        if row is None:
            raise DirectoryError(f"{user!r} is nobody in the organisation directory", person=user)
        org = organisation_from_definition(json.loads(row[0]))
        return org, org.person(user)

    def _org_by_id(self, conn: Connection, org_id: int) -> Organisation:
        row = conn.execute(sa.select(t.doc_organisations.c.definition)
                           .where(t.doc_organisations.c.id == org_id)).first()
        return organisation_from_definition(json.loads(row[0]))

    def _org_id(self, conn: Connection, name: str) -> int | None:
        return conn.execute(sa.select(t.doc_organisations.c.id)
                            .where(t.doc_organisations.c.name == name)).scalar()

    # ================================================================ candidates

    def _candidates(self, org: Organisation, route: Route, step: Step, *, drafter: str | None,
                    step_state: Mapping[str, Any], signed_off_by: str | None = None,
                    reroute: bool = False) -> tuple[list[str], str | None]:
        """Who may act on `step` (in directory order), and the only-head exception if it applies.
        Raises RouteError when nobody may."""
        who = step.who
        exception = None
        if who.kind == "drafter":
            people = [drafter] if drafter else []
        elif who.kind == "department_head":
            person = org.person(drafter) if drafter else None
            if person is None or not person.department:
                raise RouteError(f"{drafter} belongs to no department, so nobody can do step {step.id} "
                                 f"({step.title})", step=step.id, person=drafter)
            heads = [p.id for p in org.heads(person.department)]
            if not heads:
                raise RouteError(f"department {person.department} has no head for step {step.id} ({step.title})",
                                 step=step.id, department=person.department)
            people = [h for h in heads if h != drafter]
            if not people:
                # the drafter is the only head: they review their own draft; the step is never skipped
                people, exception = [drafter], "only_head"
        elif who.kind == "handling_department":
            dept = step_state.get("handling_department")
            people = [p.id for p in org.heads(dept)] if dept else []
            if not people:
                raise RouteError(f"no handling department with a head for step {step.id}", step=step.id)
        else:
            people = [p.id for p in org.people if p.roles & set(who.roles)]
            if step.approval and drafter:
                people = [p for p in people if p != drafter]
            done = set(step_state.get("countersigned", ())) | set(step_state.get("read", ()))
            people = [p for p in people if p not in done]
            if reroute and signed_off_by in people:
                people = [signed_off_by]
        if not people:
            raise RouteError(f"nobody in {org.name} may act on step {step.id} ({step.title}) of this document "
                             f"({step.who.describe()}" + (", not the drafter" if step.approval else "") + ")",
                             step=step.id, organisation=org.name)
        return people, exception

    def _entry(self, org: Organisation, route: Route, step: Step, *, drafter: str | None,
               step_state: Mapping[str, Any], to: str | None, guard: Guard,
               signed_off_by: str | None = None, reroute: bool = False) -> tuple[list[str], str | None]:
        """The pending list when the document enters `step`; `to` narrows it to one named person."""
        try:
            people, exception = self._candidates(org, route, step, drafter=drafter, step_state=step_state,
                                                 signed_off_by=signed_off_by, reroute=reroute)
        except (RouteError, DirectoryError) as exc:
            guard.fail(RouteError, exc.message)
            return [], None
        if to is not None:
            if to not in people:
                names = ", ".join(people)
                guard.fail(NotAllowed, f"--to {to}: the next step {step.id} ({step.title}) is for {names}")
                return [], exception
            people = [to]
        return people, exception

    # ================================================================ reading

    def _read_doc(self, conn: Connection, doc_id: int) -> _Doc:
        row = conn.execute(sa.select(t.doc_documents).where(t.doc_documents.c.id == doc_id)).mappings().first()
        if row is None:
            raise DocumentNotFound(f"no document {doc_id}", doc=doc_id)
        org = self._org_by_id(conn, row["org_id"])
        route_data = json.loads(row["route"])
        source = route_data.pop("source", "") or f"route of document {doc_id}"
        route = parse_route(route_data, source)
        pending = tuple(r[0] for r in conn.execute(
            sa.select(t.doc_pending.c.person_id).where(t.doc_pending.c.doc_id == doc_id)
            .order_by(t.doc_pending.c.person_id)))
        order = {p.id: i for i, p in enumerate(org.people)}
        pending = tuple(sorted(pending, key=lambda p: order.get(p, 10**6)))
        return _Doc(row=dict(row), org=org, route=route, elements=Elements.from_dict(json.loads(row["elements"])),
                    step_state=json.loads(row["step_state"]), pending=pending)

    def _version_bytes(self, conn: Connection, doc_id: int, number: int) -> tuple[bytes, Digests, Mapping[str, Any]]:
        row = conn.execute(sa.select(t.doc_versions).where(t.doc_versions.c.doc_id == doc_id,
                                                           t.doc_versions.c.number == number)).mappings().first()
        if row is None:
            raise IntegrityFailure(f"document {doc_id} has lost version {number}", doc=doc_id, version=number)
        return bytes(row["pdf"]), Digests(row["sha256"], row["sm3"], row["size"]), row

    def _intact(self, conn: Connection, doc_id: int, number: int, guard: Guard,
                expect_sha256: str | None = None) -> bytes | None:
        """The bytes of a version if they still match every digest recorded for them."""
        try:
            data, recorded, _ = self._version_bytes(conn, doc_id, number)
        except IntegrityFailure as exc:
            guard.fail(IntegrityFailure, exc.message)
            return None
        if not recorded.matches(data):
            guard.fail(IntegrityFailure, f"version {number} of document {doc_id} no longer matches its recorded "
                                         "SHA-256/SM3 digests: the stored bytes were changed")
            return None
        if expect_sha256 is not None and recorded.sha256 != expect_sha256:
            guard.fail(IntegrityFailure, f"version {number} of document {doc_id} is not the version that was "
                                         "signed off or sealed (digest mismatch)")
            return None
        return data

    def _attachments_intact(self, conn: Connection, d: _Doc, guard: Guard) -> None:
        rows = conn.execute(sa.select(t.doc_attachments).where(t.doc_attachments.c.doc_id == d.id)).mappings().all()
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
        d = self._read_doc(conn, doc_id)
        versions = tuple(Version(number=r["number"], purpose=r["purpose"],
                                 digests=Digests(r["sha256"], r["sm3"], r["size"]),
                                 created_at=r["created_at"], created_by=r["created_by"])
                         for r in conn.execute(sa.select(t.doc_versions.c.number, t.doc_versions.c.purpose,
                                                         t.doc_versions.c.sha256, t.doc_versions.c.sm3,
                                                         t.doc_versions.c.size, t.doc_versions.c.created_at,
                                                         t.doc_versions.c.created_by)
                                               .where(t.doc_versions.c.doc_id == doc_id)
                                               .order_by(t.doc_versions.c.number)).mappings())
        attachments = tuple(AttachmentInfo(r["position"], r["name"], Digests(r["sha256"], r["sm3"], r["size"]))
                            for r in conn.execute(sa.select(t.doc_attachments.c.position, t.doc_attachments.c.name,
                                                            t.doc_attachments.c.sha256, t.doc_attachments.c.sm3,
                                                            t.doc_attachments.c.size)
                                                  .where(t.doc_attachments.c.doc_id == doc_id)
                                                  .order_by(t.doc_attachments.c.position)).mappings())
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
        rows = conn.execute(sa.select(t.doc_deliveries, t.doc_organisations.c.name.label("org_name"))
                            .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_deliveries.c.org_id)
                            .where(t.doc_deliveries.c.doc_id == doc_id)
                            .order_by(t.doc_deliveries.c.id)).mappings().all()
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
                         details=json.loads(r["details"]), audit_seq=r["audit_seq"]) for r in rows]

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
        deliveries a recipient returned (the sender's secretaries)."""
        with self.home.store.read() as conn:
            org, person = self._whois(conn, user)
            items: list[TodoItem] = []
            rows = conn.execute(sa.select(t.doc_pending.c.doc_id, t.doc_pending.c.since)
                                .where(t.doc_pending.c.person_id == user)
                                .order_by(t.doc_pending.c.since, t.doc_pending.c.doc_id)).all()
            for doc_id, since in rows:
                d = self._read_doc(conn, doc_id)
                step = d.step
                items.append(TodoItem(what="step", doc_id=doc_id, title=d.elements.title, kind=d.row["kind"],
                                      organisation=d.org.name, step=d.row["step"],
                                      step_title=step.title if step else "退回拟稿人", since=since))
            org_id = self._org_id(conn, org.name)
            if "receiver" in person.roles:
                for r in conn.execute(sa.select(t.doc_deliveries).where(
                        t.doc_deliveries.c.org_id == org_id,
                        t.doc_deliveries.c.state.in_(("delivered", "opened")))
                        .order_by(t.doc_deliveries.c.id)).mappings():
                    d = self._read_doc(conn, r["doc_id"])
                    items.append(TodoItem(what="inbox", doc_id=r["doc_id"], title=d.elements.title,
                                          kind=d.row["kind"], organisation=d.org.name, step=None,
                                          step_title="收文", since=r["sent_at"], delivery_id=r["id"],
                                          detail=r["state"]))
            if "secretary" in person.roles:
                for r in conn.execute(sa.select(t.doc_deliveries, t.doc_organisations.c.name.label("org_name"))
                                      .join(t.doc_documents, t.doc_documents.c.id == t.doc_deliveries.c.doc_id)
                                      .join(t.doc_organisations,
                                            t.doc_organisations.c.id == t.doc_deliveries.c.org_id)
                                      .where(t.doc_documents.c.org_id == org_id,
                                             t.doc_documents.c.state == "sent",
                                             t.doc_deliveries.c.state == "returned")
                                      .order_by(t.doc_deliveries.c.id)).mappings():
                    d = self._read_doc(conn, r["doc_id"])
                    if self._latest_delivery_state(conn, r["doc_id"], r["org_id"]) != "returned":
                        continue
                    items.append(TodoItem(what="returned", doc_id=r["doc_id"], title=d.elements.title,
                                          kind=d.row["kind"], organisation=r["org_name"], step=None,
                                          step_title="被退回", since=r["closed_at"], delivery_id=r["id"],
                                          detail=r["reason"]))
        return items

    def _latest_delivery_state(self, conn: Connection, doc_id: int, org_id: int) -> str | None:
        return conn.execute(sa.select(t.doc_deliveries.c.state).where(
            t.doc_deliveries.c.doc_id == doc_id, t.doc_deliveries.c.org_id == org_id)
            .order_by(t.doc_deliveries.c.id.desc()).limit(1)).scalar()

    # ================================================================ writing helpers

    def _update(self, conn: Connection, d: _Doc, now: datetime, **values: Any) -> None:
        result = conn.execute(sa.update(t.doc_documents).where(
            t.doc_documents.c.id == d.id, t.doc_documents.c.revision == d.row["revision"])
            .values(revision=d.row["revision"] + 1, updated_at=now, **values))
        if result.rowcount != 1:
            raise ChangedMeanwhile(f"document {d.id} changed while this operation was checked; look again "
                                   "(yinxin doc show) and retry", doc=d.id)

    @staticmethod
    def _set_pending(conn: Connection, doc_id: int, step: str | None, people: Iterable[str], now: datetime) -> None:
        conn.execute(sa.delete(t.doc_pending).where(t.doc_pending.c.doc_id == doc_id))
        for pid in dict.fromkeys(people):
            conn.execute(t.doc_pending.insert().values(doc_id=doc_id, person_id=pid, step=step or "", since=now))

    @staticmethod
    def _log(conn: Connection, doc_id: int, *, at: datetime, actor: str, step: str | None, action: str,
             org: str, opinion: str | None = None, version: int | None = None, digests: Digests | None = None,
             details: Mapping[str, Any] | None = None, audit_seq: int | None = None) -> int:
        """One action: the document's log entry and (unless `audit_seq` is given) its audit event."""
        seq = (conn.execute(sa.select(sa.func.max(t.doc_actions.c.seq))
                            .where(t.doc_actions.c.doc_id == doc_id)).scalar() or 0) + 1
        details = dict(details or {})
        if audit_seq is None:
            audit_seq = audit.append(
                conn, at=at, actor=actor, action=f"doc.{action}", target=f"doc:{doc_id}",
                details={"organisation": org, "step": step, "opinion": opinion, "version": version,
                         "sha256": digests.sha256 if digests else None, "sm3": digests.sm3 if digests else None,
                         **details},
                result_digest=digests.sha256 if digests else None)
        conn.execute(t.doc_actions.insert().values(
            doc_id=doc_id, seq=seq, at=at, actor=actor, step=step, action=action, opinion=opinion,
            version=version, sha256=digests.sha256 if digests else None, sm3=digests.sm3 if digests else None,
            details=to_json(details), audit_seq=audit_seq))
        return audit_seq

    def _add_version(self, conn: Connection, doc_id: int, number: int, purpose: str, data: bytes,
                     digests: Digests, now: datetime, actor: str) -> None:
        conn.execute(t.doc_versions.insert().values(
            doc_id=doc_id, number=number, purpose=purpose, pdf=data, sha256=digests.sha256, sm3=digests.sm3,
            size=digests.size, created_at=now, created_by=actor))

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

    # ================================================================ documents

    def new_document(self, *, kind: str, title: str, pdf: bytes, drafter: str,
                     attachments: Sequence[Attachment] = (), declared_attachments: Sequence[str] = (),
                     main_recipients: Sequence[str] = (), copy_to: Sequence[str] = (),
                     urgency: str | None = None, classification: str | None = None, note: str | None = None,
                     to: str | None = None) -> Document:
        """A drafted document, submitted to the first step of its kind's route.

        `to` names the department reviewer when several could review.  Refused: a
        classified document, a body that is not a PDF, an attachment that is the body
        itself, a declared attachment that is missing, a route that cannot work for
        this drafter."""
        if kind not in OUTGOING_KINDS:
            raise ElementError(f"kind {kind!r}: a drafted document is one of {', '.join(OUTGOING_KINDS)}",
                               field="kind", kind=kind)
        check_classification(classification)
        org, person = self.whois(drafter)
        elements = Elements(title=title, issuer=org.name, urgency=urgency, main_recipients=tuple(main_recipients),
                            copy_to=tuple(copy_to), attachments=tuple(declared_attachments), note=note)
        guard = Guard()
        pdf = bytes(pdf)
        _check_pdf(pdf, "the body", guard)
        body = Digests.of(pdf)
        stored_attachments = _check_attachments(attachments, body, elements.attachments, guard)
        route = org.route(kind)
        try:
            check_route_for(route, org)
        except RouteError as exc:
            guard.fail(RouteError, exc.message)
        step_state: dict[str, Any] = {}
        first = route.steps[0]
        pending, exception = self._entry(org, route, first, drafter=drafter, step_state={}, to=to, guard=guard)
        if exception:
            step_state["only_head"] = drafter
        # every approval step must have someone other than the drafter (the only-head review aside)
        for s in route.steps[1:]:
            if s.who.kind in ("roles",) and s.approval:
                try:
                    self._candidates(org, route, s, drafter=drafter, step_state={})
                except RouteError as exc:
                    guard.fail(RouteError, f"the {KIND_TITLES[kind]} route cannot work for a draft by {drafter}: "
                                           f"{exc.message}")
        guard.raise_if_any(drafter=drafter, kind=kind)
        now = self.home.clock.now()
        route_data = route.to_data() | {"source": route.source}
        with self.home.store.transaction() as conn:
            org_id = self._org_id(conn, org.name)
            doc_id = self.home.store.insert(
                conn, t.doc_documents, org_id=org_id, kind=kind, drafter=drafter, state="in_flow", step=first.id,
                step_state=to_json(step_state), route=to_json(route_data), elements=to_json(elements.to_dict()),
                current_version=1, revision=1, created_at=now, updated_at=now)
            self._add_version(conn, doc_id, 1, "draft", pdf, body, now, drafter)
            for pos, (att, digests) in enumerate(stored_attachments, 1):
                conn.execute(t.doc_attachments.insert().values(
                    doc_id=doc_id, position=pos, name=att.name, data=bytes(att.data), sha256=digests.sha256,
                    sm3=digests.sm3, size=digests.size))
            self._set_pending(conn, doc_id, first.id, pending, now)
            self._log(conn, doc_id, at=now, actor=drafter, step=None, action="new", org=org.name, version=1,
                      digests=body, details={"kind": kind, "title": elements.title, "route": route.name,
                                             "next": first.id, "pending": pending,
                                             "attachments": [{"name": a.name, "sha256": dg.sha256}
                                                             for a, dg in stored_attachments],
                                             **({"exception": "only_head", "note": "the drafter is the only "
                                                 "head of the department and reviews the draft"}
                                                if exception else {})})
            return self._document(conn, doc_id)

    # ---------------------------------------------------------------- act

    def act(self, doc_id: int, *, user: str, action: str, opinion: str | None = None,
            to: str | None = None) -> Document:
        """A step's action: approve | return | forward | sign-off | register.

        `to` names the next handler where the route leaves a choice (a leader to review,
        the next countersigning leader or reader, the handling department)."""
        if action not in ACTIONS:
            raise NotAllowed(f"unknown action {action!r} (one of: {', '.join(ACTIONS)})", action=action)
        opinion = _opinion(opinion)
        with self.home.store.read() as conn:
            d = self._read_doc(conn, doc_id)
            guard = Guard()
            actor_ok = self._check_actor(d, user, guard)
            plan = self._plan(conn, d, user, action, opinion, to, guard, actor_ok)
        guard.raise_if_any(doc=doc_id, user=user, action=action, step=d.row["step"])
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            org_id = d.row["org_id"]
            values = dict(plan["values"])
            elements = plan.get("elements")
            if plan.get("number_series"):
                series, fmt = plan["number_series"]
                year = china_date(now).year
                number = fmt(self._next_number(conn, org_id, series, year), year)
                elements = (elements or d.elements).with_(**{plan["number_field"]: number})
                if series == "outgoing":
                    values["doc_number"] = number
            if elements is not None:
                values["elements"] = to_json(elements.to_dict())
            self._update(conn, d, now, **values)
            self._set_pending(conn, doc_id, values.get("step", d.row["step"]), plan["pending"], now)
            version = d.row["current_version"]
            _, digests, _ = self._version_bytes(conn, doc_id, version)
            details = dict(plan["details"])
            if elements is not None and plan.get("number_series"):
                details[plan["number_field"]] = getattr(elements, plan["number_field"])
            self._log(conn, doc_id, at=now, actor=user, step=d.row["step"], action=action, org=d.org.name,
                      opinion=opinion, version=version, digests=digests,
                      details=details | {"to": to, "pending": plan["pending"]})
            return self._document(conn, doc_id)

    def _check_actor(self, d: _Doc, user: str, guard: Guard) -> bool:
        """The user may act on the document's current step at all (own draft, out of turn, role)."""
        if d.state not in OPEN_STATES:
            guard.fail(FlowStateError, f"document {d.id} is {d.state}: no step is waiting")
            return False
        if not d.org.has_person(user):
            guard.fail(NotAllowed, f"{user} is not a person of {d.org.name}, which handles document {d.id}")
            return False
        step = d.step
        exception = bool(step is not None and step.who.kind == "department_head"
                         and d.step_state.get("only_head") == user)
        if step is not None and step.approval and d.drafter == user and not exception:
            guard.fail(NotAllowed, f"{user} drafted document {d.id}: nobody approves their own draft")
            return False
        if user not in d.pending:
            waiting = ", ".join(d.org.person(p).label() for p in d.pending if d.org.has_person(p)) or "nobody"
            guard.fail(NotAllowed, f"out of turn: document {d.id} is {d.where()}, waiting for {waiting}, "
                                   f"not {user}")
            return False
        if step is not None and step.who.kind == "roles":
            person = d.org.person(user)
            if not person.roles & set(step.who.roles):
                guard.fail(NotAllowed, f"{user} no longer holds {step.who.describe()} in {d.org.name}")
                return False
        return True

    def _plan(self, conn: Connection, d: _Doc, user: str, action: str, opinion: str | None, to: str | None,
              guard: Guard, actor_ok: bool) -> dict[str, Any]:
        """Check the action against the step and work out the new state (nothing is written)."""
        plan: dict[str, Any] = {"values": {}, "pending": [], "details": {}}
        if not actor_ok:
            return plan
        org, route, step = d.org, d.route, d.step
        if d.row["step"] == "draft":
            if action != "forward":
                guard.fail(NotAllowed, f"document {d.id} was returned to its drafter: revise it (yinxin doc "
                                       "revise) and resubmit it with --action forward")
                return plan
            first = route.steps[0]
            pending, exception = self._entry(org, route, first, drafter=d.drafter, step_state={}, to=to,
                                             guard=guard)
            plan["values"] = {"state": "in_flow", "step": first.id,
                              "step_state": to_json({"only_head": d.drafter} if exception else {})}
            plan["pending"] = pending
            plan["details"] = {"resubmitted": True, "next": first.id,
                               **({"exception": "only_head"} if exception else {})}
            return plan
        assert step is not None
        if action == "return":
            if route.incoming or step.type not in RETURNABLE_TYPES:
                guard.fail(NotAllowed, f"step {step.id} ({step.title}) cannot return the document to a drafter")
                return plan
            guard.require(opinion is not None, NotAllowed, "returning a document needs an opinion (the reason)")
            elements = d.elements.with_(signer=None, date=None)
            plan["values"] = {"state": "draft", "step": "draft", "step_state": to_json({}),
                              "signed_off_version": None, "signed_off_by": None, "signed_off_sha256": None,
                              "sealed_version": None, "sealed_sha256": None}
            plan["elements"] = elements
            plan["pending"] = [d.drafter]
            plan["details"] = {"returned_to": d.drafter}
            return plan
        expected = COMPLETING_ACTION.get(step.type)
        forwarding = action == "forward" and (step.countersign or step.type in ("read", "distribute"))
        if step.type in ("seal", "send"):
            command = "yinxin doc seal" if step.type == "seal" else "yinxin doc send"
            guard.fail(NotAllowed, f"document {d.id} is at step {step.id} ({step.title}): use {command} "
                                   "(or --action return)")
            return plan
        if action != expected and not forwarding:
            allowed = [expected] + (["forward"] if step.countersign or step.type == "read" else []) + \
                      (["return"] if step.type in RETURNABLE_TYPES and not route.incoming else [])
            guard.fail(NotAllowed, f"step {step.id} ({step.title}) takes --action {' or '.join(allowed)}, "
                                   f"not {action}")
            return plan
        if step.opinion_required:
            guard.require(opinion is not None, NotAllowed, f"step {step.id} ({step.title}) needs a saved opinion "
                                                           "(--opinion): without one the step does not count")
        # integrity of what is being approved
        current = d.row["current_version"]
        data = self._intact(conn, d.id, current, guard)
        state = dict(d.step_state)
        details: dict[str, Any] = {}
        if step.who.kind == "department_head" and state.get("only_head") == user:
            details["exception"] = "only_head"
            details["note"] = "the drafter is the only head of the department and reviews the draft"
        elements = None
        # ---- steps that stay where they are (countersigning, reading in turn)
        if step.countersign and step.type == "review":
            state["countersigned"] = list(state.get("countersigned", [])) + [user]
            if action == "forward":
                if to is None:
                    guard.fail(NotAllowed, "forwarding to the next countersigning leader needs --to WHO")
                    return plan
                pending, _ = self._entry(org, route, step, drafter=d.drafter, step_state=state, to=to, guard=guard)
                plan["values"] = {"step_state": to_json(state)}
                plan["pending"] = pending
                plan["details"] = details | {"countersigned": state["countersigned"]}
                return plan
            details["countersigned"] = state["countersigned"]
        if step.type == "read":
            state["read"] = list(state.get("read", [])) + [user]
            try:
                remaining, _ = self._candidates(org, route, step, drafter=d.drafter, step_state=state)
            except RouteError:
                remaining = []
            details["read"] = state["read"]
            if remaining:
                if action == "forward" and to is None:
                    guard.fail(NotAllowed, "forwarding to the next reader needs --to WHO")
                    return plan
                pending, _ = self._entry(org, route, step, drafter=d.drafter, step_state=state, to=to, guard=guard)
                plan["values"] = {"step_state": to_json(state)}
                plan["pending"] = pending
                plan["details"] = details | {"remaining": remaining}
                return plan
            if action == "forward":
                guard.fail(NotAllowed, "every leader has read the document: nobody is left to forward it to "
                                       "(use --action approve)")
                return plan
        # ---- the step is complete: what it does, and the next step
        next_to = to
        if step.type == "sign_off":
            person = org.person(user)
            elements = d.elements.with_(signer=person.name, date=chinese_date(china_date(self.home.clock.now())))
            digests = Digests.of(data) if data is not None else None
            plan["values"].update(signed_off_version=current, signed_off_by=user,
                                  signed_off_sha256=digests.sha256 if digests else None)
            details.update(signer=person.name, signed_off_version=current)
        elif step.type == "register":
            if d.row["signed_off_version"] != current:
                guard.fail(FlowStateError, f"document {d.id} changed after sign-off: only the signed-off version "
                                           "is registered")
            self._attachments_intact(conn, d, guard)
            elements = d.elements.with_(printed_on=chinese_date(china_date(self.home.clock.now())))
            if d.row["doc_number"] is None:
                plan["number_series"] = ("outgoing", lambda n, y, code=org.code: f"{code}〔{y}〕{n}号")
                plan["number_field"] = "doc_number"
            else:
                details["doc_number"] = d.row["doc_number"]
                details["kept_number"] = True
        elif step.type == "check":
            guard.require(d.row["sealed_version"] == current, FlowStateError,
                          f"document {d.id} has no sealed current version to check")
        elif step.type == "sign_for":
            elements = d.elements.with_(signed_for_at=self.home.clock.now().astimezone(CHINA_TIME).isoformat(
                timespec="seconds"))
            plan["number_series"] = ("incoming", lambda n, y: f"收〔{y}〕{n}号")
            plan["number_field"] = "received_number"
        elif step.type == "distribute":
            dept = _department(org, to)
            if dept is None:
                guard.fail(NotAllowed, f"--to must name the handling department ({', '.join(org.departments)}) "
                                       "or a person in it")
                return plan
            state["handling_department"] = dept
            details["handling_department"] = dept
            next_to = None
        nxt = route.after(step.id)
        carried = {k: v for k, v in state.items() if k == "handling_department"}
        if nxt is None:
            plan["values"].update(state="done", step=None, step_state=to_json(carried))
            plan["pending"] = []
        else:
            pending, exception = self._entry(org, route, nxt, drafter=d.drafter, step_state=carried, to=next_to,
                                             guard=guard)
            if exception:
                carried["only_head"] = d.drafter
            plan["values"].update(step=nxt.id, step_state=to_json(carried))
            plan["pending"] = pending
            details["next"] = nxt.id
        plan["elements"] = elements if elements is not None else plan.get("elements")
        plan["details"] = details
        return plan

    # ---------------------------------------------------------------- revise

    def revise(self, doc_id: int, *, user: str, pdf: bytes, note: str | None = None) -> Document:
        """A new version of the body.  Before sign-off the document stays where it is; after
        sign-off the change is substantive and the document goes back to the signer."""
        pdf = bytes(pdf)
        with self.home.store.read() as conn:
            d = self._read_doc(conn, doc_id)
            guard = Guard()
            if d.row["kind"] not in OUTGOING_KINDS:
                guard.fail(FlowStateError, f"document {doc_id} is an incoming document: its bytes are what was "
                                           "received and are never revised")
            elif d.state not in OPEN_STATES:
                guard.fail(FlowStateError, f"document {doc_id} is {d.state}: it can no longer be revised")
            elif user not in d.pending:
                guard.fail(NotAllowed, f"{user} may not revise document {doc_id}: it is {d.where()}, "
                                       f"waiting for {', '.join(d.pending) or 'nobody'}")
            _check_pdf(pdf, "the new version", guard)
            new = Digests.of(pdf)
            current = d.row["current_version"]
            old = self._intact(conn, doc_id, current, guard)
            if old is not None and old == pdf:
                guard.fail(ElementError, f"the new version is byte for byte version {current}")
            for r in conn.execute(sa.select(t.doc_attachments.c.name, t.doc_attachments.c.sha256)
                                  .where(t.doc_attachments.c.doc_id == doc_id)):
                if r.sha256 == new.sha256:
                    guard.fail(AttachmentError, f"the new body is attachment {r.name}: the body is never an "
                                                "attachment")
            reroute = d.row["signed_off_version"] is not None
            sign_step = d.route.first_of("sign_off")
            pending = list(d.pending)
            if reroute and sign_step is not None and guard:
                pending, _ = self._entry(d.org, d.route, sign_step, drafter=d.drafter, step_state={}, to=None,
                                         guard=guard, signed_off_by=d.row["signed_off_by"], reroute=True)
        guard.raise_if_any(doc=doc_id, user=user)
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            number = current + 1
            self._add_version(conn, doc_id, number, "revision", pdf, new, now, user)
            values: dict[str, Any] = {"current_version": number}
            details: dict[str, Any] = {"previous_version": current, "note": _opinion(note)}
            if reroute:
                assert sign_step is not None
                values.update(state="in_flow", step=sign_step.id, step_state=to_json({}), signed_off_version=None,
                              signed_off_by=None, signed_off_sha256=None, sealed_version=None, sealed_sha256=None,
                              elements=to_json(d.elements.with_(signer=None, date=None).to_dict()))
                details.update(rerouted_to=sign_step.id, signer=d.row["signed_off_by"],
                               reason="substantive change after sign-off: the signer signs off again")
            self._update(conn, d, now, **values)
            if reroute:
                self._set_pending(conn, doc_id, sign_step.id, pending, now)
            self._log(conn, doc_id, at=now, actor=user, step=d.row["step"], action="revise", org=d.org.name,
                      opinion=_opinion(note), version=number, digests=new, details=details)
            return self._document(conn, doc_id)

    # ---------------------------------------------------------------- seal

    def seal(self, doc_id: int, *, user: str, seal: str, password: bytes, placement: Any = None,
             riding: bool = False) -> Document:
        """Seal the signed-off, registered document with the organisation's own seal.

        Every check runs first — the custodian's turn, sign-off and registration done,
        the exact signed-off bytes, the organisation's seal and its usability — then the
        seal is stamped and the stamped file verified (the seal, its organisation, and
        that it is the signed-off bytes plus the seal); only then is anything written.
        `placement` defaults to the organisation's name (GB/T 9704: the seal presses the
        signing organisation's name and the date, both slightly below its centre)."""
        from seal.errors import SealError
        from seal.pdf_placement import AnchorText
        from seal.records import SealRegistry
        with self.home.store.read() as conn:
            d = self._read_doc(conn, doc_id)
            guard = Guard()
            org = d.org
            step = d.step
            at_seal = d.state == "in_flow" and step is not None and step.type == "seal"
            if d.row["kind"] not in OUTGOING_KINDS:
                guard.fail(FlowStateError, f"document {doc_id} is an incoming document: it is not sealed here")
            else:
                guard.require(d.row["signed_off_version"] is not None, FlowStateError,
                              f"document {doc_id} is not signed off ({d.where()}): no blank sealing, a seal goes "
                              "only on a document whose approval is complete")
                guard.require(d.row["doc_number"] is not None, FlowStateError,
                              f"document {doc_id} is not registered (no 发文字号)")
                if not at_seal and d.row["signed_off_version"] is not None and d.row["doc_number"] is not None:
                    guard.fail(FlowStateError, f"document {doc_id} is not waiting to be sealed ({d.where()})")
            if at_seal:
                self._check_actor(d, user, guard)
            signed = None
            if d.row["signed_off_version"] is not None:
                guard.require(d.row["signed_off_version"] == d.row["current_version"], FlowStateError,
                              f"document {doc_id} changed after sign-off")
                signed = self._intact(conn, doc_id, d.row["signed_off_version"], guard,
                                      expect_sha256=d.row["signed_off_sha256"])
            self._attachments_intact(conn, d, guard)
            if not org.seal:
                guard.fail(FlowStateError, f"{org.name} names no seal in its directory file")
            elif seal != org.seal:
                guard.fail(NotAllowed, f"seal {seal} is not {org.name}'s seal ({org.seal})")
            person = org.person(user) if org.has_person(user) else None
            registry = SealRegistry(self.home)
            record = None
            try:
                record = registry.get(seal)
            except SealError as exc:
                guard.fail(FlowStateError, exc.message)
            if record is not None:
                guard.require(record.organisation == org.name, NotAllowed,
                              f"seal {seal} belongs to {record.organisation}, not to {org.name}")
                if person is not None:
                    guard.require(record.custodian in (person.id, person.name), NotAllowed,
                                  f"{user} is not the custodian of seal {seal} (its custodian is {record.custodian})")
                try:
                    registry.check_usable(record, self.home.clock.now())
                except SealError as exc:
                    guard.fail(FlowStateError, exc.message)
        guard.raise_if_any(doc=doc_id, user=user, seal=seal)
        assert signed is not None
        where = placement if placement is not None else AnchorText(org.name)
        reason = f"{d.elements.doc_number or ''} {d.elements.title}".strip()
        outcome = self.seal_service.stamp(seal, password, signed, placement=where, riding=riding, actor=user,
                                          reason=reason)
        sealed = bytes(outcome.pdf)
        check = check_sealed(self.seal_service, sealed, organisation=org.name, seal_name=org.seal, signed_off=signed)
        if not check.valid:
            raise VerificationFailed(f"the sealed document does not verify: {'; '.join(check.problems)}",
                                     doc=doc_id, problems=list(check.problems))
        digests = Digests.of(sealed)
        now = self.home.clock.now()
        nxt = d.route.after(step.id)
        with self.home.store.transaction() as conn:
            number = d.row["current_version"] + 1
            self._add_version(conn, doc_id, number, "sealed", sealed, digests, now, user)
            pending, _ = self._entry(org, d.route, nxt, drafter=d.drafter, step_state={}, to=None, guard=Guard())
            self._update(conn, d, now, current_version=number, sealed_version=number, sealed_sha256=digests.sha256,
                         step=nxt.id, step_state=to_json({}))
            self._set_pending(conn, doc_id, nxt.id, pending, now)
            self._record_verification(conn, doc_id, None, "seal", now, user, check)
            self._log(conn, doc_id, at=now, actor=user, step=step.id, action="seal", org=org.name, version=number,
                      digests=digests, details={"seal": seal, "field": getattr(outcome, "field_name", None),
                                                "placement": repr(where), "riding": riding,
                                                "signed_off_version": d.row["signed_off_version"],
                                                "signed_off_sha256": d.row["signed_off_sha256"], "next": nxt.id,
                                                "pending": pending})
            return self._document(conn, doc_id)

    @staticmethod
    def _record_verification(conn: Connection, doc_id: int, delivery_id: int | None, purpose: str, at: datetime,
                             actor: str, check: SealCheck) -> None:
        conn.execute(t.doc_verifications.insert().values(
            doc_id=doc_id, delivery_id=delivery_id, purpose=purpose, at=at, actor=actor, valid=check.valid,
            sha256=check.report["sha256"], report=to_json(check.to_dict())))

    # ---------------------------------------------------------------- send, open, recall, receive

    def send(self, doc_id: int, *, user: str, to: Sequence[str]) -> Document:
        """Send the sealed document to organisations; their receivers find it in their inbox.

        The seal is verified again on the exact outgoing bytes (chain, revocation, the
        seal's validity, nothing appended, the sending organisation's seal, the signed-off
        bytes unchanged underneath) and anything else is refused, naming the reason."""
        recipients = list(dict.fromkeys(n.strip() for n in to if n and n.strip()))
        with self.home.store.read() as conn:
            d = self._read_doc(conn, doc_id)
            org = d.org
            guard = Guard()
            step = d.step
            resend = d.state == "sent"
            if d.row["kind"] not in OUTGOING_KINDS:
                guard.fail(FlowStateError, f"document {doc_id} is an incoming document")
            elif resend:
                guard.require(org.has_person(user) and "secretary" in org.person(user).roles, NotAllowed,
                              f"{user} is not a secretary of {org.name}")
                for name in recipients:
                    oid = self._org_id(conn, name)
                    if oid is not None:
                        guard.require(self._latest_delivery_state(conn, doc_id, oid) in ("returned", "recalled"),
                                      FlowStateError, f"document {doc_id} was sent to {name} already")
            elif d.state != "in_flow" or step is None or step.type != "send":
                sealed = d.row["sealed_version"] is not None
                guard.fail(FlowStateError, f"document {doc_id} cannot be sent: "
                                           + ("the drafter has not checked the sealed document" if sealed else
                                              "it is not sealed (nothing unsealed is sent)") + f" ({d.where()})")
            else:
                self._check_actor(d, user, guard)
            if not recipients:
                guard.fail(ElementError, "send needs at least one recipient organisation (--to ORG)")
            for name in recipients:
                if name == org.name:
                    guard.fail(ElementError, f"{org.name} cannot send a document to itself")
                    continue
                try:
                    target = self.organisation(name)
                except DirectoryError as exc:
                    guard.fail(DirectoryError, exc.message)
                    continue
                guard.require(bool(target.with_role("receiver")), DirectoryError,
                              f"{name} has nobody with the receiver role to receive documents")
            sealed_bytes = None
            if d.row["sealed_version"] is None:
                if resend or (step is not None and step.type == "send"):
                    guard.fail(FlowStateError, f"document {doc_id} has no sealed version: nothing unsealed is sent")
            else:
                guard.require(d.row["sealed_version"] == d.row["current_version"], FlowStateError,
                              f"document {doc_id} changed after sealing")
                sealed_bytes = self._intact(conn, doc_id, d.row["sealed_version"], guard,
                                            expect_sha256=d.row["sealed_sha256"])
            signed = None
            if d.row["signed_off_version"] is None:
                guard.fail(FlowStateError, f"document {doc_id} is not signed off")
            else:
                signed = self._intact(conn, doc_id, d.row["signed_off_version"], guard,
                                      expect_sha256=d.row["signed_off_sha256"])
            self._attachments_intact(conn, d, guard)
            check = None
            if sealed_bytes is not None:
                check = check_sealed(self.seal_service, sealed_bytes, organisation=org.name, seal_name=org.seal,
                                     signed_off=signed)
                for problem in check.problems:
                    guard.fail(VerificationFailed, f"seal check: {problem}")
        guard.raise_if_any(doc=doc_id, user=user, to=recipients)
        assert check is not None and sealed_bytes is not None
        now = self.home.clock.now()
        digests = Digests.of(sealed_bytes)
        with self.home.store.transaction() as conn:
            delivery_ids = []
            for name in recipients:
                delivery_ids.append(self.home.store.insert(
                    conn, t.doc_deliveries, doc_id=doc_id, org_id=self._org_id(conn, name), state="delivered",
                    version=d.row["sealed_version"], sha256=digests.sha256, sent_at=now, sent_by=user))
            self._update(conn, d, now, state="sent", step=None)
            self._set_pending(conn, doc_id, None, [], now)
            self._record_verification(conn, doc_id, None, "send", now, user, check)
            self._log(conn, doc_id, at=now, actor=user, step=step.id if step else None, action="send",
                      org=org.name, version=d.row["sealed_version"], digests=digests,
                      details={"to": recipients, "deliveries": delivery_ids, "resend": resend})
            return self._document(conn, doc_id)

    def _recipient_delivery(self, conn: Connection, doc_id: int, user: str, guard: Guard,
                            states: Sequence[str]) -> tuple[Organisation, dict[str, Any] | None]:
        org, person = self._whois(conn, user)
        guard.require("receiver" in person.roles, NotAllowed,
                      f"{user} does not hold the receiver role in {org.name}")
        org_id = self._org_id(conn, org.name)
        row = conn.execute(sa.select(t.doc_deliveries).where(
            t.doc_deliveries.c.doc_id == doc_id, t.doc_deliveries.c.org_id == org_id)
            .order_by(t.doc_deliveries.c.id.desc()).limit(1)).mappings().first()
        if row is None:
            raise DocumentNotFound(f"document {doc_id} was not sent to {org.name}", doc=doc_id,
                                   organisation=org.name)
        if row["state"] not in states:
            guard.fail(FlowStateError, f"document {doc_id} was {row['state']} for {org.name}"
                       + (f": {row['reason']}" if row["reason"] else ""))
        return org, dict(row)

    def open(self, doc_id: int, *, user: str) -> bytes:
        """A receiver opens a delivered document (from then on the sender cannot recall it)."""
        with self.home.store.read() as conn:
            guard = Guard()
            org, delivery = self._recipient_delivery(conn, doc_id, user, guard, ("delivered", "opened", "received"))
            guard.raise_if_any(doc=doc_id, user=user)
            assert delivery is not None
            data = self._intact(conn, doc_id, delivery["version"], guard, expect_sha256=delivery["sha256"])
        guard.raise_if_any(doc=doc_id, user=user)
        assert data is not None
        if delivery["opened_at"] is None:
            now = self.home.clock.now()
            with self.home.store.transaction() as conn:
                result = conn.execute(sa.update(t.doc_deliveries).where(
                    t.doc_deliveries.c.id == delivery["id"], t.doc_deliveries.c.opened_at.is_(None),
                    t.doc_deliveries.c.state.in_(("delivered",))).values(state="opened", opened_at=now,
                                                                         opened_by=user))
                if result.rowcount != 1:
                    raise ChangedMeanwhile(f"the delivery of document {doc_id} changed meanwhile", doc=doc_id)
                self._log(conn, doc_id, at=now, actor=user, step=None, action="open", org=org.name,
                          version=delivery["version"], digests=Digests.of(data),
                          details={"delivery": delivery["id"], "recipient": org.name})
        return data

    def recall(self, doc_id: int, *, user: str) -> Document:
        """Take a sent document back while no recipient has opened it; it returns to the send step."""
        with self.home.store.read() as conn:
            d = self._read_doc(conn, doc_id)
            guard = Guard()
            guard.require(d.state == "sent", FlowStateError, f"document {doc_id} is {d.where()}, not sent")
            guard.require(d.org.has_person(user) and "secretary" in d.org.person(user).roles, NotAllowed,
                          f"{user} is not a secretary of {d.org.name}, the sender")
            deliveries = self._deliveries(conn, doc_id)
            live = [x for x in deliveries if x.state in ("delivered", "opened", "received")]
            for x in live:
                if x.state != "delivered":
                    when = x.opened_at or x.received_at
                    guard.fail(FlowStateError, f"{x.organisation} opened document {doc_id} at "
                                               f"{when.isoformat() if when else '?'}: it can no longer be recalled")
            guard.require(bool(live), FlowStateError, f"document {doc_id} has no delivery to recall")
            send_step = d.route.first_of("send")
            pending, _ = self._entry(d.org, d.route, send_step, drafter=d.drafter, step_state={}, to=None, guard=guard)
        guard.raise_if_any(doc=doc_id, user=user)
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            for x in live:
                result = conn.execute(sa.update(t.doc_deliveries).where(
                    t.doc_deliveries.c.id == x.id, t.doc_deliveries.c.state == "delivered",
                    t.doc_deliveries.c.opened_at.is_(None))
                    .values(state="recalled", closed_at=now, closed_by=user, reason="recalled by the sender"))
                if result.rowcount != 1:
                    raise ChangedMeanwhile(f"{x.organisation} opened document {doc_id} meanwhile: it can no longer "
                                           "be recalled", doc=doc_id)
            self._update(conn, d, now, state="in_flow", step=send_step.id, step_state=to_json({}))
            self._set_pending(conn, doc_id, send_step.id, pending, now)
            self._log(conn, doc_id, at=now, actor=user, step=None, action="recall", org=d.org.name,
                      version=d.row["current_version"], digests=None,
                      details={"recalled": [x.organisation for x in live], "deliveries": [x.id for x in live]})
            return self._document(conn, doc_id)

    def receive(self, doc_id: int, *, user: str) -> Receipt:
        """Receive a delivered document: verify it again (the exact bytes, the seal, that it is the
        sending organisation's seal, the attachments) before anything else.  Accepted: the receipt
        time is recorded and an incoming document enters the receiving organisation's 收文 route.
        Refused: the delivery is returned to the sender with the reasons (the Receipt says so)."""
        with self.home.store.read() as conn:
            guard = Guard()
            org, delivery = self._recipient_delivery(conn, doc_id, user, guard, ("delivered", "opened"))
            guard.raise_if_any(doc=doc_id, user=user)
            assert delivery is not None
            d = self._read_doc(conn, doc_id)
            sender = d.org
            problems: list[str] = []
            check_guard = Guard()
            data = self._intact(conn, doc_id, delivery["version"], check_guard, expect_sha256=delivery["sha256"])
            self._attachments_intact(conn, d, check_guard)
            problems += [m for _, m in check_guard.problems]
            check = None
            if data is not None:
                check = check_sealed(self.seal_service, data, organisation=sender.name, seal_name=sender.seal)
                problems += list(check.problems)
            route = org.route("incoming")
            entry_guard = Guard()
            first = route.steps[0]
            pending, _ = self._entry(org, route, first, drafter=None, step_state={}, to=None, guard=entry_guard)
            entry_guard.raise_if_any(doc=doc_id, organisation=org.name)
            attachments = conn.execute(sa.select(t.doc_attachments).where(t.doc_attachments.c.doc_id == doc_id)
                                       .order_by(t.doc_attachments.c.position)).mappings().all()
        now = self.home.clock.now()
        report = {"valid": not problems, "problems": problems, "sha256": delivery["sha256"],
                  "sender": sender.name, "recipient": org.name,
                  "seal_check": check.to_dict() if check is not None else None}
        verification = SealCheck(valid=not problems, problems=tuple(problems), report=report)
        with self.home.store.transaction() as conn:
            if problems:
                result = conn.execute(sa.update(t.doc_deliveries).where(
                    t.doc_deliveries.c.id == delivery["id"], t.doc_deliveries.c.state.in_(("delivered", "opened")))
                    .values(state="returned", closed_at=now, closed_by=user, reason="; ".join(problems),
                            opened_at=delivery["opened_at"] or now, opened_by=delivery["opened_by"] or user))
                if result.rowcount != 1:
                    raise ChangedMeanwhile(f"the delivery of document {doc_id} changed meanwhile", doc=doc_id)
                self._record_verification(conn, doc_id, delivery["id"], "receive", now, user, verification)
                self._log(conn, doc_id, at=now, actor=user, step=None, action="receive_refused", org=org.name,
                          version=delivery["version"], digests=Digests.of(data) if data is not None else None,
                          details={"delivery": delivery["id"], "recipient": org.name, "problems": problems,
                                   "returned_to": sender.name})
                return Receipt(accepted=False, doc_id=doc_id, delivery_id=delivery["id"], organisation=org.name,
                               at=now, incoming_doc_id=None, problems=tuple(problems), report=verification.report)
            assert data is not None
            digests = Digests.of(data)
            org_id = self._org_id(conn, org.name)
            elements = Elements(title=d.elements.title, issuer=sender.name, doc_number=d.elements.doc_number,
                                signer=d.elements.signer, date=d.elements.date, urgency=d.elements.urgency,
                                main_recipients=d.elements.main_recipients, copy_to=d.elements.copy_to,
                                attachments=d.elements.attachments, note=d.elements.note,
                                printed_on=d.elements.printed_on)
            route_data = route.to_data() | {"source": route.source}
            incoming_id = self.home.store.insert(
                conn, t.doc_documents, org_id=org_id, kind="incoming", drafter=None, state="in_flow",
                step=first.id, step_state=to_json({}), route=to_json(route_data), elements=to_json(elements.to_dict()),
                current_version=1, source_delivery_id=delivery["id"], revision=1, created_at=now, updated_at=now)
            self._add_version(conn, incoming_id, 1, "received", data, digests, now, user)
            for a in attachments:
                conn.execute(t.doc_attachments.insert().values(
                    doc_id=incoming_id, position=a["position"], name=a["name"], data=a["data"], sha256=a["sha256"],
                    sm3=a["sm3"], size=a["size"]))
            result = conn.execute(sa.update(t.doc_deliveries).where(
                t.doc_deliveries.c.id == delivery["id"], t.doc_deliveries.c.state.in_(("delivered", "opened")))
                .values(state="received", received_at=now, received_by=user, incoming_doc_id=incoming_id,
                        opened_at=delivery["opened_at"] or now, opened_by=delivery["opened_by"] or user))
            if result.rowcount != 1:
                raise ChangedMeanwhile(f"the delivery of document {doc_id} changed meanwhile", doc=doc_id)
            self._set_pending(conn, incoming_id, first.id, pending, now)
            self._record_verification(conn, doc_id, delivery["id"], "receive", now, user, verification)
            self._record_verification(conn, incoming_id, delivery["id"], "receive", now, user, verification)
            details = {"delivery": delivery["id"], "sender": sender.name, "recipient": org.name,
                       "source_doc": doc_id, "incoming_doc": incoming_id, "received_at": now.isoformat()}
            seq = self._log(conn, incoming_id, at=now, actor=user, step=None, action="receive", org=org.name,
                            version=1, digests=digests, details=details | {"pending": pending})
            self._log(conn, doc_id, at=now, actor=user, step=None, action="receive", org=org.name,
                      version=delivery["version"], digests=digests, details=details, audit_seq=seq)
        return Receipt(accepted=True, doc_id=doc_id, delivery_id=delivery["id"], organisation=org.name, at=now,
                       incoming_doc_id=incoming_id, problems=(), report=verification.report)

    # ---------------------------------------------------------------- archive

    def archive(self, doc_id: int, *, user: str) -> ArchiveRecord:
        """Archive a finished document (sent and received everywhere, or an incoming document
        closed) with its log and every verification report, plus one made now.  The archive is
        append-only."""
        with self.home.store.read() as conn:
            d = self._read_doc(conn, doc_id)
            guard = Guard()
            org = d.org
            guard.require(org.has_person(user) and "secretary" in org.person(user).roles, NotAllowed,
                          f"{user} is not a secretary of {org.name}")
            deliveries = self._deliveries(conn, doc_id)
            if d.row["kind"] in OUTGOING_KINDS:
                if d.state != "sent":
                    guard.fail(FlowStateError, f"document {doc_id} is {d.where()}: only a sent document is archived")
                else:
                    latest: dict[str, Delivery] = {}
                    for x in deliveries:
                        latest[x.organisation] = x
                    open_ = [x.organisation for x in latest.values() if x.state in ("delivered", "opened")]
                    guard.require(not open_, FlowStateError,
                                  f"document {doc_id} is not received yet by {', '.join(open_)}")
                    guard.require(any(x.state == "received" for x in latest.values()), FlowStateError,
                                  f"no recipient received document {doc_id}")
            else:
                guard.require(d.state == "done", FlowStateError,
                              f"document {doc_id} is {d.where()}: only a closed incoming document is archived")
            final = d.row["sealed_version"] or d.row["current_version"]
            data = self._intact(conn, doc_id, final, guard)
            self._attachments_intact(conn, d, guard)
            if data is not None and guard:
                issuer = d.org if d.row["kind"] in OUTGOING_KINDS else self.organisation(d.elements.issuer)
                check = check_sealed(self.seal_service, data, organisation=issuer.name, seal_name=issuer.seal)
        guard.raise_if_any(doc=doc_id, user=user)
        assert data is not None
        now = self.home.clock.now()
        digests = Digests.of(data)
        document = self.show(doc_id)
        log = [e.to_dict() for e in self.log(doc_id)]
        reports = self.verifications(doc_id) + [{"purpose": "archive", "at": now.isoformat(), "actor": user,
                                                 "valid": check.valid, "delivery_id": None,
                                                 "sha256": digests.sha256, "report": check.to_dict()}]
        record = {"document": document.to_dict(), "log": log, "final_version": final}
        with self.home.store.transaction() as conn:
            self._record_verification(conn, doc_id, None, "archive", now, user, check)
            conn.execute(t.doc_archive.insert().values(
                doc_id=doc_id, org_id=d.row["org_id"], archived_at=now, archived_by=user, pdf=data,
                sha256=digests.sha256, sm3=digests.sm3, record=to_json(record), reports=to_json(reports)))
            self._update(conn, d, now, state="archived", step=None)
            self._set_pending(conn, doc_id, None, [], now)
            self._log(conn, doc_id, at=now, actor=user, step=None, action="archive", org=org.name, version=final,
                      digests=digests, details={"seal_valid_now": check.valid, "reports": len(reports)})
        return ArchiveRecord(doc_id=doc_id, organisation=org.name, archived_at=now, archived_by=user,
                             digests=digests, record=record, reports=tuple(reports))

    def archived(self, doc_id: int) -> tuple[ArchiveRecord, bytes]:
        """The archive record of a document and its archived PDF."""
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(t.doc_archive, t.doc_organisations.c.name.label("org_name"))
                               .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_archive.c.org_id)
                               .where(t.doc_archive.c.doc_id == doc_id)).mappings().first()
        if row is None:
            raise DocumentNotFound(f"document {doc_id} is not archived", doc=doc_id)
        data = bytes(row["pdf"])
        digests = Digests(row["sha256"], row["sm3"], len(data))
        if not digests.matches(data):
            raise IntegrityFailure(f"the archived PDF of document {doc_id} no longer matches its digests",
                                   doc=doc_id)
        return (ArchiveRecord(doc_id=doc_id, organisation=row["org_name"], archived_at=row["archived_at"],
                              archived_by=row["archived_by"], digests=digests, record=json.loads(row["record"]),
                              reports=tuple(json.loads(row["reports"]))), data)


# ==================================================================== helpers

def _delivery(r: Mapping[str, Any]) -> Delivery:
    return Delivery(id=r["id"], doc_id=r["doc_id"], organisation=r["org_name"], state=r["state"],
                    version=r["version"], sha256=r["sha256"], sent_at=r["sent_at"], sent_by=r["sent_by"],
                    opened_at=r["opened_at"], opened_by=r["opened_by"], received_at=r["received_at"],
                    received_by=r["received_by"], incoming_doc_id=r["incoming_doc_id"], closed_at=r["closed_at"],
                    closed_by=r["closed_by"], reason=r["reason"])


def _attachment_matches(declared: str, name: str) -> bool:
    return declared == name or declared == Path(name).stem


def _department(org: Organisation, to: str | None) -> str | None:
    if to is None:
        return None
    if to in org.departments:
        return to if org.heads(to) else None
    if org.has_person(to):
        dept = org.person(to).department
        return dept if dept and org.heads(dept) else None
    return None


def _check_attachments(attachments: Sequence[Attachment], body: Digests, declared: Sequence[str],
                       guard: Guard) -> list[tuple[Attachment, Digests]]:
    out: list[tuple[Attachment, Digests]] = []
    seen: dict[str, str] = {}
    names: set[str] = set()
    for att in attachments:
        if not isinstance(att, Attachment):
            raise TypeError("attachments must be docflow.Attachment values")
        digests = Digests.of(bytes(att.data))
        if not att.data:
            guard.fail(AttachmentError, f"attachment {att.name} is empty")
        if digests.sha256 == body.sha256:
            guard.fail(AttachmentError, f"attachment {att.name} is the body itself: the body is never an attachment")
        if digests.sha256 in seen:
            guard.fail(AttachmentError, f"attachment {att.name} is the same file as {seen[digests.sha256]}")
        if att.name in names:
            guard.fail(AttachmentError, f"two attachments are named {att.name}")
        seen[digests.sha256] = att.name
        names.add(att.name)
        out.append((att, digests))
    for name in declared:
        if not any(_attachment_matches(name, a.name) for a in attachments):
            guard.fail(AttachmentError, f"declared attachment {name!r} is missing: a declared attachment is "
                                        "always attached")
    return out
