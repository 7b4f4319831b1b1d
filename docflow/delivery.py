"""Signing before sending: sealing bound to sign-off, sending, opening, recalling and receiving.

Sealing happens only on the exact signed-off bytes, with the organisation's own seal, by its
custodian; the stamped file is verified before it is stored.  `send` and `receive` verify the
seal again on the exact bytes that travel (`docflow.verification.check_sealed`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pki.store import to_json

from . import store as t
from .directory import Organisation
from .elements import Digests, Elements
from .errors import (ChangedMeanwhile, DirectoryError, DocumentNotFound, ElementError, FlowStateError,
                     NotAllowed, VerificationFailed)
from .model import Document, Guard, Receipt
from .routes import OUTGOING_KINDS
from .records import added_version
from .verification import SealCheck, check_sealed
from .steps import StepsMixin

if TYPE_CHECKING:
    from pki.accounts.actor import Actor


class DeliveryMixin(StepsMixin):
    """Seal, send, open, recall, receive."""

    def _check_sealed(self, pdf: bytes, organisation: str, seal_name: str | None, *,
                      signed_off: bytes | None = None, digests: Digests | None = None) -> SealCheck:
        from seal.records import SealRegistry
        return check_sealed(self.seal_service, pdf, organisation=organisation, seal_name=seal_name,
                            registry=SealRegistry(self.home), now=self.home.clock.now(), signed_off=signed_off,
                            digests=digests)

    def seal(self, doc_id: int, *, actor: "Actor", seal: str, password: bytes, placement: Any = None,
             riding: bool = False, riding_min_mm: float = 4.0) -> Document:
        """Seal the signed-off, registered document with the organisation's own seal.

        Every check runs first — the custodian's turn, sign-off and registration done,
        the exact signed-off bytes, the organisation's seal and its usability — then the
        seal is stamped and the stamped file verified (the seal, its organisation, and
        that it is the signed-off bytes plus the seal); only then is anything written.
        After typesetting registration the seal goes on the registered version (checked to be
        the signed-off content plus the registry's fields, docflow.typeset.registry.sealable)
        and `placement` defaults to the place its layout reserved; otherwise to the
        organisation's name (GB/T 9704: the seal presses the signing organisation's name and
        the date, both slightly below its centre)."""
        from seal.errors import SealError
        from seal.pdf_placement import AnchorText
        from seal.records import SealRegistry
        with self.home.store.read() as conn:
            user, key_row, d = self._acting_doc(actor, conn, doc_id)
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
            # the signed-off version, or its registered typesetting checked to be the signed-off
            # content plus the registry's fields (docflow.typeset.registry.sealable)
            from .typeset.registry import seal_base, sealable
            read, versions = self._versions(conn, doc_id, [n for n in (d.row["signed_off_version"], seal_base(d))
                                                           if n is not None])
            signed, place = sealable(self, conn, d, guard, read)
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
                    guard.require(record.custodian == person.id, NotAllowed,
                                  f"{user} is not the custodian of seal {seal} (its custodian is {record.custodian})")
                try:
                    registry.check_usable(record, self.home.clock.now())
                except SealError as exc:
                    guard.fail(FlowStateError, exc.message)
            guard.raise_if_any(doc=doc_id, user=user, seal=seal)
            signer = self._signer(actor, org, "seal", conn, key_row)   # before the stamp: a refusal leaves nothing
        assert signed is not None
        from seal.pdf_placement import AtPosition
        where = placement if placement is not None else \
            AtPosition(place.page, place.x_mm, place.y_mm) if place is not None else AnchorText(org.name)
        reason = f"{d.elements.doc_number or ''} {d.elements.title}".strip()
        outcome = self.seal_service.stamp(seal, password, signed, placement=where, riding=riding, actor=actor,
                                          riding_min_mm=riding_min_mm,
                                          reason=reason)
        sealed = bytes(outcome.pdf)
        check = self._check_sealed(sealed, org.name, org.seal, signed_off=signed)
        if not check.valid:
            raise VerificationFailed(f"the sealed document does not verify: {'; '.join(check.problems)}",
                                     doc=doc_id, problems=list(check.problems))
        digests = check.digests
        now = self.home.clock.now()
        nxt = d.route.after(step.id)
        with self.home.store.transaction() as conn:
            number = d.row["current_version"] + 1
            self._add_version(conn, doc_id, number, "sealed", sealed, digests, now, user)
            pending, _ = self._entry(org, d.route, nxt, drafter=d.drafter, step_state={}, to=None, guard=Guard())
            values = dict(current_version=number, sealed_version=number, sealed_sha256=digests.sha256,
                          step=nxt.id, step_state=to_json({}))
            self._update(conn, d, now, **values)
            self._set_pending(conn, doc_id, nxt.id, pending, now)
            self._record_verification(conn, doc_id, None, "seal", now, user, check)
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=step.id, action="seal", org=org.name,
                      version=number, digests=digests,
                      signed={"seal": seal, "signed_off_version": d.row["signed_off_version"],
                              "signed_off_sha256": d.row["signed_off_sha256"], "to": pending},
                      details={"seal": seal, "field": getattr(outcome, "field_name", None),
                                                "placement": repr(where), "riding": riding,
                                                "signed_off_version": d.row["signed_off_version"],
                                                "signed_off_sha256": d.row["signed_off_sha256"], "next": nxt.id,
                                                "pending": pending}, head=d.decision_head)
            return self._document_of(conn, self._written(d, now, values, pending),
                                     versions + (added_version(number, "sealed", digests, now, user),))

    def send(self, doc_id: int, *, actor: "Actor", to: Sequence[str]) -> Document:
        """Send the sealed document to organisations; their receivers find it in their inbox.

        The seal is verified again on the exact outgoing bytes (chain, revocation, the
        seal's validity, nothing appended, the sending organisation's seal, the signed-off
        bytes unchanged underneath) and anything else is refused, naming the reason."""
        recipients = list(dict.fromkeys(n.strip() for n in to if n and n.strip()))
        with self.home.store.read() as conn:
            user, key_row, d = self._acting_doc(actor, conn, doc_id)
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
                    if oid is None:
                        continue                      # unknown organisation: reported below
                    latest = self._latest_delivery_state(conn, doc_id, oid)
                    if latest is None:
                        guard.fail(FlowStateError, f"document {doc_id} is sent: it goes again only to a recipient "
                                                   f"that returned it, and {name} was not a recipient")
                    elif latest not in ("returned", "recalled"):
                        guard.fail(FlowStateError, f"document {doc_id} was sent to {name} already ({latest})")
            elif d.state != "in_flow" or step is None or step.type != "send":
                sealed = d.row["sealed_version"] is not None
                guard.fail(FlowStateError, f"document {doc_id} cannot be sent: "
                                           + ("the drafter has not checked the sealed document" if sealed else
                                              "it is not sealed (nothing unsealed is sent)") + f" ({d.where()})")
            else:
                self._check_actor(d, user, guard)
            if not recipients:
                guard.fail(ElementError, "send needs at least one recipient organisation (--to ORG)")
            recipient_ids: dict[str, int] = {}
            for name in recipients:
                if name == org.name:
                    guard.fail(ElementError, f"{org.name} cannot send a document to itself")
                    continue
                try:
                    target, recipient_ids[name] = self._organisation(conn, name)
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
            # the sealed version and what the seal went on (the signed-off version, or its registered
            # typesetting) in one statement
            from .typeset.registry import seal_base, sealable
            read, versions = self._versions(conn, doc_id, [n for n in (d.row["sealed_version"],
                                                                       d.row["signed_off_version"], seal_base(d))
                                                            if n is not None])
            sealed_digests = None
            if d.row["sealed_version"] is not None:
                sealed_bytes, sealed_digests = self._intact_version(conn, doc_id, d.row["sealed_version"], guard,
                                                                    expect_sha256=d.row["sealed_sha256"], read=read)
            signed = None
            if d.row["signed_off_version"] is None:
                guard.fail(FlowStateError, f"document {doc_id} is not signed off")
            else:
                signed, _ = sealable(self, conn, d, guard, read)
            self._attachments_intact(conn, d, guard)
            check = None
            if sealed_bytes is not None:
                check = self._check_sealed(sealed_bytes, org.name, org.seal, signed_off=signed,
                                           digests=sealed_digests)
                for problem in check.problems:
                    guard.fail(VerificationFailed, f"seal check: {problem}")
            guard.raise_if_any(doc=doc_id, user=user, to=recipients)
            signer = self._signer(actor, org, "send", conn, key_row)
        assert check is not None and sealed_bytes is not None
        now = self.home.clock.now()
        digests = check.digests                   # of the exact outgoing bytes, found intact above
        with self.home.store.transaction() as conn:
            delivery_ids = []
            for name in recipients:
                delivery_ids.append(self.home.store.insert(
                    conn, t.doc_deliveries, doc_id=doc_id, org_id=recipient_ids[name], state="delivered",
                    version=d.row["sealed_version"], sha256=digests.sha256, sent_at=now, sent_by=user))
            self._update(conn, d, now, state="sent", step=None)
            self._set_pending(conn, doc_id, None, [], now)
            sent = self._written(d, now, {"state": "sent", "step": None}, [], delivered=True)
            self._record_verification(conn, doc_id, None, "send", now, user, check)
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=step.id if step else None, action="send",
                      org=org.name, version=d.row["sealed_version"], digests=digests,
                      signed={"to": recipients, "resend": resend, "seal_valid": check.valid},
                      details={"to": recipients, "deliveries": delivery_ids, "resend": resend},
                      head=d.decision_head)
            return self._document_of(conn, sent, versions)

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

    def open(self, doc_id: int, *, actor: "Actor") -> bytes:
        """A receiver opens a delivered document (from then on the sender cannot recall it)."""
        user = self._acting(actor)
        with self.home.store.read() as conn:
            guard = Guard()
            org, delivery = self._recipient_delivery(conn, doc_id, user, guard, ("delivered", "opened", "received"))
            guard.raise_if_any(doc=doc_id, user=user)
            assert delivery is not None
            data = self._intact(conn, doc_id, delivery["version"], guard, expect_sha256=delivery["sha256"])
        guard.raise_if_any(doc=doc_id, user=user)
        assert data is not None
        if delivery["opened_at"] is None:
            signer = self._signer(actor, org, "open")
            now = self.home.clock.now()
            with self.home.store.transaction() as conn:
                result = conn.execute(sa.update(t.doc_deliveries).where(
                    t.doc_deliveries.c.id == delivery["id"], t.doc_deliveries.c.opened_at.is_(None),
                    t.doc_deliveries.c.state.in_(("delivered",))).values(state="opened", opened_at=now,
                                                                         opened_by=user))
                if result.rowcount != 1:
                    raise ChangedMeanwhile(f"the delivery of document {doc_id} changed meanwhile", doc=doc_id)
                self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=None, action="open", org=org.name,
                          signed={"delivery": delivery["id"], "recipient": org.name},
                          version=delivery["version"], digests=Digests.of(data),
                          details={"delivery": delivery["id"], "recipient": org.name})
        return data

    def recall(self, doc_id: int, *, actor: "Actor") -> Document:
        """Take a sent document back while no recipient has opened it; it returns to the send step."""
        user = self._acting(actor)
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
        signer = self._signer(actor, d.org, "recall")
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
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=None, action="recall", org=d.org.name,
                      signed={"recalled": [x.organisation for x in live]},
                      version=d.row["current_version"], digests=None,
                      details={"recalled": [x.organisation for x in live], "deliveries": [x.id for x in live]})
            return self._document(conn, doc_id)

    def receive(self, doc_id: int, *, actor: "Actor") -> Receipt:
        """Receive a delivered document: verify it again (the exact bytes, the seal, that it is the
        sending organisation's seal, the attachments) before anything else.  Accepted: the receipt
        time is recorded and an incoming document enters the receiving organisation's 收文 route.
        Refused: the delivery is returned to the sender with the reasons (the Receipt says so)."""
        user = self._acting(actor)
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
                check = self._check_sealed(data, sender.name, sender.seal)
                problems += list(check.problems)
            route = org.route("incoming")
            entry_guard = Guard()
            first = route.steps[0]
            pending, _ = self._entry(org, route, first, drafter=None, step_state={}, to=None, guard=entry_guard)
            entry_guard.raise_if_any(doc=doc_id, organisation=org.name)
            attachments = conn.execute(sa.select(t.doc_attachments).where(t.doc_attachments.c.doc_id == doc_id)
                                       .order_by(t.doc_attachments.c.position)).mappings().all()
        signer = self._signer(actor, org, "receive_refused" if problems else "receive")
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
                self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=None, action="receive_refused",
                          org=org.name, signed={"delivery": delivery["id"], "recipient": org.name,
                                                "problems": problems, "returned_to": sender.name},
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
            signed = {"delivery": delivery["id"], "sender": sender.name, "recipient": org.name, "source_doc": doc_id,
                      "incoming_doc": incoming_id, "seal_valid": True}
            seq = self._log(conn, incoming_id, at=now, actor=actor, signer=signer, step=None, action="receive",
                            org=org.name, version=1, digests=digests, details=details | {"pending": pending},
                            signed=signed | {"to": pending})
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=None, action="receive", org=org.name,
                      version=delivery["version"], digests=digests, details=details, audit_seq=seq, signed=signed)
        return Receipt(accepted=True, doc_id=doc_id, delivery_id=delivery["id"], organisation=org.name, at=now,
                       incoming_doc_id=incoming_id, problems=(), report=verification.report)

