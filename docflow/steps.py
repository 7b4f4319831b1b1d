"""Documents moving along their routes: creation, the step actions, revisions.

Who may act on a step is worked out from the route and the directory (`_candidates`); `--to`
narrows it to one named person where the route leaves a choice.  Each operation runs its guard
(every check, all problems reported together) before its one transaction.
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pki.accounts.decisions import ChainHead
from pki.store import to_json

from . import store as t
from .directory import Organisation
from .elements import CHINA_TIME, Digests, Elements, check_classification, china_date, chinese_date
from .errors import (AttachmentError, DirectoryError, ElementError, FlowStateError, NotAllowed,
                     RouteError)
from .model import Attachment, Document, Guard
from .routes import (COMPLETING_ACTION, KIND_TITLES, OUTGOING_KINDS, RETURNABLE_TYPES, Route, Step,
                     check_route_for)
from .organisations import OPEN_STATES
from .records import RecordsMixin, _attachment_matches, _Doc, added_version

if TYPE_CHECKING:
    from pki.accounts.actor import Actor

ACTIONS = ("approve", "return", "forward", "sign-off", "register")


def _opinion(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def _check_pdf(data: bytes, what: str, guard: Guard) -> None:
    """The body is a readable PDF or OFD (told by content), within the reading bounds
    (seal.limits: a decompression bomb is refused here, before anyone anchors a seal on it)."""
    if isinstance(data, (bytes, bytearray)) and bytes(data[:4]) == b"PK\x03\x04":
        _check_ofd(bytes(data), what, guard)
        return
    if not isinstance(data, (bytes, bytearray)) or not bytes(data[:1024]).lstrip().startswith(b"%PDF-"):
        guard.fail(ElementError, f"{what} is not a PDF (nor an OFD) file")
        return
    from pyhanko.pdf_utils.reader import PdfFileReader
    from seal.pdf_bounds import check_pdf_bounds
    from seal.pdf_errors import PdfSealError
    try:
        reader = PdfFileReader(io.BytesIO(bytes(data)), strict=False)
        if not reader.encrypted:
            check_pdf_bounds(reader, page_content=True)
    except PdfSealError as exc:
        guard.fail(ElementError, f"{what}: {exc.message}")
        return
    except Exception:        # pikepdf below names what is wrong with a broken file
        pass
    import pikepdf
    try:
        with pikepdf.open(io.BytesIO(bytes(data))) as pdf:
            if len(pdf.pages) < 1:
                guard.fail(ElementError, f"{what} has no pages")
    except pikepdf.PasswordError:
        guard.fail(ElementError, f"{what} is encrypted: official documents are sealed in the clear")
    except pikepdf.PdfError as exc:
        guard.fail(ElementError, f"{what} is not a readable PDF ({exc})")


def _check_ofd(data: bytes, what: str, guard: Guard) -> None:
    from seal.errors import SealError
    from seal.ofd.document import pages_of
    from seal.ofd.package import OfdPackage
    try:
        with OfdPackage(data) as package:
            if not pages_of(package, package.doc_bodies()[0].doc_root):
                guard.fail(ElementError, f"{what} has no pages")
    except SealError as exc:
        guard.fail(ElementError, f"{what} is not a readable OFD ({exc.message})")


class StepsMixin(RecordsMixin):
    """Creating documents and acting on their steps."""

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

    def new_document(self, *, kind: str, title: str | None = None, pdf: bytes | None = None, actor: "Actor",
                     attachments: Sequence[Attachment] = (), declared_attachments: Sequence[str] = (),
                     main_recipients: Sequence[str] = (), copy_to: Sequence[str] = (),
                     urgency: str | None = None, classification: str | None = None, note: str | None = None,
                     to: str | None = None, body: str | None = None) -> Document:
        """A document drafted by `actor` (the drafter, 拟稿人), submitted to the first step of its
        kind's route.

        The body is a finished `pdf`, or structured text (`body`, see docflow.typeset.body)
        that is typeset on the organisation's red-header template; its front matter may
        give the title and the other elements.  `to` names the department reviewer when
        several could review.  Refused: a classified document, a body that is not a PDF
        or cannot be typeset, an attachment that is the body itself, a declared attachment
        that is missing, a route that cannot work for this drafter."""
        if kind not in OUTGOING_KINDS:
            raise ElementError(f"kind {kind!r}: a drafted document is one of {', '.join(OUTGOING_KINDS)}",
                               field="kind", kind=kind)
        with self.home.store.read() as conn:
            drafter, key_row = self._acting_keyed(actor, conn)
            check_classification(classification)
            org, person, org_id = self._whois_with_id(conn, drafter)
        typeset_row = None
        if (pdf is None) == (body is None):
            raise ValueError("give the body as a pdf or as structured text (body), one of the two")
        if body is not None:
            from .typeset.registry import draft
            made = draft(org, kind=kind, source=body, created=self.home.clock.now(), title=title,
                         main_recipients=main_recipients, copy_to=copy_to, note=note, urgency=urgency,
                         attachments=declared_attachments)
            m, pdf, typeset_row = made.manuscript, made.pdf, made.row
            title, main_recipients, copy_to, note, urgency = m.title, m.main_recipients, m.copy_to, m.note, m.urgency
            declared_attachments = m.attachments
        if title is None:
            raise ElementError("标题 (title) is required", field="title")
        elements = Elements(title=title, issuer=org.name, urgency=urgency, main_recipients=tuple(main_recipients),
                            copy_to=tuple(copy_to), attachments=tuple(declared_attachments), note=note)
        guard = Guard()
        pdf = bytes(pdf)
        _check_pdf(pdf, "the body", guard)
        body_digests = Digests.of(pdf)
        stored_attachments = _check_attachments(attachments, body_digests, elements.attachments, guard)
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
        signer = self._signer(actor, org, "new", key_row=key_row)
        now = self.home.clock.now()
        route_data = route.to_data() | {"source": route.source}
        with self.home.store.transaction() as conn:
            inserted = dict(org_id=org_id, kind=kind, drafter=drafter, state="in_flow", step=first.id,
                            step_state=to_json(step_state), route=to_json(route_data),
                            elements=to_json(elements.to_dict()), current_version=1, revision=1, created_at=now,
                            updated_at=now)
            doc_id = self.home.store.insert(conn, t.doc_documents, **inserted)
            self._add_version(conn, doc_id, 1, "draft", pdf, body_digests, now, drafter)
            if typeset_row is not None:
                from .typeset.registry import record
                record(conn, doc_id, 1, typeset_row)
            for pos, (att, digests) in enumerate(stored_attachments, 1):
                conn.execute(t.doc_attachments.insert().values(
                    doc_id=doc_id, position=pos, name=att.name, data=bytes(att.data), sha256=digests.sha256,
                    sm3=digests.sm3, size=digests.size))
            self._set_pending(conn, doc_id, first.id, pending, now, new=True)
            # a new document's decision chain is empty (a record already there is refused, not followed)
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=None, action="new", org=org.name,
                      head=ChainHead(0, ""),
                      version=1, signed={"kind": kind, "title": elements.title, "to": pending,
                                         "attachments": [{"name": a.name, "sha256": dg.sha256}
                                                         for a, dg in stored_attachments]},
                      digests=body_digests, details={"kind": kind, "title": elements.title, "route": route.name,
                                             "next": first.id, "pending": pending,
                                             "attachments": [{"name": a.name, "sha256": dg.sha256}
                                                             for a, dg in stored_attachments],
                                             **({"exception": "only_head", "note": "the drafter is the only "
                                                 "head of the department and reviews the draft"}
                                                if exception else {})})
            return self._document_of(conn, self._inserted(doc_id, inserted, org, pending, len(stored_attachments)),
                                     (added_version(1, "draft", body_digests, now, drafter),))

    def act(self, doc_id: int, *, actor: "Actor", action: str, opinion: str | None = None,
            to: str | None = None) -> Document:
        """A step's action: approve | return | forward | sign-off | register — a decision the actor
        signs with their own certificate (unless the organisation does not sign that action).

        `to` names the next handler where the route leaves a choice (a leader to review,
        the next countersigning leader or reader, the handling department)."""
        with self.home.store.read() as conn:
            user, key_row, d = self._acting_doc(actor, conn, doc_id, for_act=True)
            if action not in ACTIONS:
                raise NotAllowed(f"unknown action {action!r} (one of: {', '.join(ACTIONS)})", action=action)
            opinion = _opinion(opinion)
            guard = Guard()
            actor_ok = self._check_actor(d, user, guard)
            plan = self._plan(conn, d, user, action, opinion, to, guard, actor_ok)
            guard.raise_if_any(doc=doc_id, user=user, action=action, step=d.row["step"])
            signer = self._signer(actor, d.org, action, conn, key_row)
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
            # the digests of the version acted on: recorded for the bytes the guard found intact
            digests = plan.get("digests")
            if plan.get("typeset") is not None:     # the registry's typeset version (docflow.typeset)
                from .typeset.registry import write_registration
                version = d.row["current_version"] + 1
                pdf, _ = write_registration(conn, d, plan["typeset"], elements, version, now)
                digests = Digests.of(pdf)
                self._add_version(conn, doc_id, version, "typeset", pdf, digests, now, user)
                values["current_version"] = version
                if plan.get("versions") is not None:
                    plan["versions"] += (added_version(version, "typeset", digests, now, user),)
            self._update(conn, d, now, **values)
            self._set_pending(conn, doc_id, values.get("step", d.row["step"]), plan["pending"], now)
            version = values.get("current_version", d.row["current_version"])
            if digests is None:                     # a return or a resubmission: the guard read no bytes
                _, digests, _ = self._version_bytes(conn, doc_id, version)
            details = dict(plan["details"])
            if elements is not None and plan.get("number_series"):
                details[plan["number_field"]] = getattr(elements, plan["number_field"])
            signed: dict[str, Any] = {"to": plan["pending"]}
            if elements is not None and plan.get("number_series"):
                signed[plan["number_field"]] = getattr(elements, plan["number_field"])
            if action == "sign-off" and elements is not None:
                signed.update(signer_name=elements.signer, date=elements.date)
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=d.row["step"], action=action,
                      org=d.org.name, opinion=opinion, version=version, digests=digests,
                      details=details | {"to": to, "pending": plan["pending"]}, signed=signed,
                      head=d.decision_head)
            return self._document_of(conn, self._written(d, now, values, plan["pending"]), plan.get("versions"))

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
        data, plan["digests"], plan["versions"] = self._intact_current(conn, d, guard)
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
            fmt = (lambda n, y, code=org.code: f"{code}〔{y}〕{n}号")
            if d.row["doc_number"] is None:
                plan["number_series"] = ("outgoing", fmt)
                plan["number_field"] = "doc_number"
                year = china_date(self.home.clock.now()).year
                number = fmt(self._peek_number(conn, d.row["org_id"], "outgoing", year), year)
            else:
                number = d.row["doc_number"]
                details["doc_number"] = d.row["doc_number"]
                details["kept_number"] = True
            if guard and not (data is not None and bytes(data[:4]) == b"PK\x03\x04"):
                # an OFD body is not typeset (docflow.typeset lays out PDF): the registry's 发文字号
                # is an element of the record, and the seal goes over the organisation's name
                from .typeset.registry import prepare_registration
                plan["typeset"] = prepare_registration(conn, d, data, elements.with_(doc_number=number), number,
                                                       guard, self.home.clock.now())
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

    def revise(self, doc_id: int, *, actor: "Actor", pdf: bytes | None = None, note: str | None = None,
               body: str | None = None) -> Document:
        """A new version of the body (a PDF, or structured text typeset on the template), made by
        `actor`.  Before sign-off the document stays where it is; after sign-off the change is
        substantive and the document goes back to the signer."""
        user = self._acting(actor)
        typeset_row = None
        if (pdf is None) == (body is None):
            raise ValueError("give the new body as a pdf or as structured text (body), one of the two")
        if body is not None:
            from .typeset.registry import draft
            current = self.show(doc_id)
            e = current.elements
            made = draft(self.organisation(current.organisation), kind=current.kind, source=body,
                         created=self.home.clock.now(), title=e.title, main_recipients=e.main_recipients,
                         copy_to=e.copy_to, note=e.note, urgency=e.urgency, attachments=e.attachments)
            pdf, typeset_row = made.pdf, made.row
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
        signer = self._signer(actor, d.org, "revise")
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            number = current + 1
            self._add_version(conn, doc_id, number, "revision", pdf, new, now, user)
            if typeset_row is not None:
                from .typeset.registry import record
                record(conn, doc_id, number, typeset_row)
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
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=d.row["step"], action="revise",
                      org=d.org.name, opinion=_opinion(note), version=number, digests=new, details=details,
                      signed={"previous_version": current, "to": pending if reroute else None})
            return self._document(conn, doc_id)


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
