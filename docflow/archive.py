"""The archive of finished documents: append-only (no update or delete path in the code, and a
trigger in the database), each record with the document's log and every verification report."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pki.store import to_json

from . import store as t
from .elements import Digests
from .errors import DocumentNotFound, FlowStateError, IntegrityFailure, NotAllowed
from .model import ArchiveRecord, Delivery, Guard
from .routes import OUTGOING_KINDS
from .delivery import DeliveryMixin

if TYPE_CHECKING:
    from pki.accounts.actor import Actor


class ArchiveMixin(DeliveryMixin):
    """Archiving finished documents and reading the archive."""

    def archive(self, doc_id: int, *, actor: "Actor") -> ArchiveRecord:
        """Archive a finished document (sent and received everywhere, or an incoming document
        closed) with its log and every verification report, plus one made now.  The archive is
        append-only."""
        user = self._acting(actor)
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
                check = self._check_sealed(data, issuer.name, issuer.seal)
        guard.raise_if_any(doc=doc_id, user=user)
        signer = self._signer(actor, org, "archive")
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
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=None, action="archive", org=org.name,
                      version=final, signed={"seal_valid_now": check.valid, "reports": len(reports)},
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

