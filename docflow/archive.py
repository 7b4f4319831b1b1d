"""The archive of finished documents: append-only (no update or delete path in the code, and a
trigger in the database), each record with the document's log and every verification report.

With a timestamp authority (this home's TSA, or one named by ``tsa:`` in config.yaml; the caller
passes a `pki.tsa.Timestamper`) the archived file is made PAdES B-LTA: the validation data of
every signature and a document timestamp are appended to the sealed file, so that the seal can
be verified offline long after its certificate expired.  `renew_archives` adds a fresh document
timestamp (and fresh validation data) to archived files whose newest timestamp certificate nears
its end; each renewal is a new row (`doc_archive_renewals`), the archive row is never rewritten."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Sequence

import sqlalchemy as sa

from pki.errors import YinxinError

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

    def archive(self, doc_id: int, *, actor: "Actor", timestamper: Any = None) -> ArchiveRecord:
        """Archive a finished document (sent and received everywhere, or an incoming document
        closed) with its log and every verification report, plus one made now.  The archive is
        append-only.  With a `timestamper` the archived file is the sealed file made B-LTA
        (validation data and a document timestamp appended; the seal's bytes untouched)."""
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
        sealed_digests = Digests.of(data)
        archive_timestamp = None
        from seal.formats import OFD, detect_format
        if timestamper is not None and detect_format(data) == OFD:
            # OFD has no document timestamp (PAdES B-LTA is PDF's); an OFD seal proves its time by
            # the timestamp in its own SES_Signature, made when it was sealed
            timestamper = None
        if timestamper is not None:
            # B-LTA before anything is written: a TSA that cannot answer refuses the archive
            data, extended = self.seal_service.extend_bytes(data, timestamper=timestamper)
            lta = self.seal_service.verify(data)
            if lta.verdict != "valid":
                raise IntegrityFailure(f"document {doc_id}: the archived file with its archive timestamp does not "
                                       "verify: " + "; ".join(lta.problems), doc=doc_id)
            archive_timestamp = {"time": extended.timestamp_time.isoformat(), "tsa": extended.tsa_subject,
                                 "tsa_certificate_not_after": extended.timestamp_not_after.isoformat(),
                                 "tsa_name": getattr(timestamper, "name", None)}
        now = self.home.clock.now()
        digests = Digests.of(data)
        document = self.show(doc_id)
        log = [e.to_dict() for e in self.log(doc_id)]
        reports = self.verifications(doc_id) + [{"purpose": "archive", "at": now.isoformat(), "actor": user,
                                                 "valid": check.valid, "delivery_id": None,
                                                 "sha256": sealed_digests.sha256, "report": check.to_dict()}]
        if archive_timestamp is not None:
            reports.append({"purpose": "archive-lta", "at": now.isoformat(), "actor": user, "valid": True,
                            "delivery_id": None, "sha256": digests.sha256, "report": lta.to_dict()})
        record = {"document": document.to_dict(), "log": log, "final_version": final,
                  "sealed_sha256": sealed_digests.sha256, "archive_timestamp": archive_timestamp}
        with self.home.store.transaction() as conn:
            self._record_verification(conn, doc_id, None, "archive", now, user, check)
            conn.execute(t.doc_archive.insert().values(
                doc_id=doc_id, org_id=d.row["org_id"], archived_at=now, archived_by=user, pdf=data,
                sha256=digests.sha256, sm3=digests.sm3, record=to_json(record), reports=to_json(reports)))
            self._update(conn, d, now, state="archived", step=None)
            self._set_pending(conn, doc_id, None, [], now)
            self._log(conn, doc_id, at=now, actor=actor, signer=signer, step=None, action="archive", org=org.name,
                      version=final, signed={"seal_valid_now": check.valid, "reports": len(reports),
                                             "archive_timestamp": archive_timestamp},
                      digests=digests, details={"seal_valid_now": check.valid, "reports": len(reports),
                                                "archive_timestamp": archive_timestamp})
        return ArchiveRecord(doc_id=doc_id, organisation=org.name, archived_at=now, archived_by=user,
                             digests=digests, record=record, reports=tuple(reports))

    def archived(self, doc_id: int) -> tuple[ArchiveRecord, bytes]:
        """The archive record of a document and its archived PDF — the newest renewal of it, when
        its archive timestamp was renewed (`record["renewals"]` lists them)."""
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(t.doc_archive, t.doc_organisations.c.name.label("org_name"))
                               .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_archive.c.org_id)
                               .where(t.doc_archive.c.doc_id == doc_id)).mappings().first()
            renewals = conn.execute(sa.select(t.doc_archive_renewals).where(t.doc_archive_renewals.c.doc_id == doc_id)
                                    .order_by(t.doc_archive_renewals.c.seq)).mappings().all()
        if row is None:
            raise DocumentNotFound(f"document {doc_id} is not archived", doc=doc_id)
        data = bytes(row["pdf"])
        digests = Digests(row["sha256"], row["sm3"], len(data))
        if not digests.matches(data):
            raise IntegrityFailure(f"the archived PDF of document {doc_id} no longer matches its digests",
                                   doc=doc_id)
        record = json.loads(row["record"])
        if renewals:
            newest = renewals[-1]
            data = bytes(newest["pdf"])
            digests = Digests(newest["sha256"], newest["sm3"], len(data))
            if not digests.matches(data):
                raise IntegrityFailure(f"the renewed archive PDF of document {doc_id} no longer matches its digests",
                                       doc=doc_id)
            record["renewals"] = [{"seq": r["seq"], "renewed_at": r["renewed_at"].isoformat(),
                                   "renewed_by": r["renewed_by"], "sha256": r["sha256"],
                                   "timestamp": r["timestamp_time"].isoformat(), "tsa": r["tsa"],
                                   "tsa_certificate_not_after": r["timestamp_not_after"].isoformat()} for r in renewals]
        return (ArchiveRecord(doc_id=doc_id, organisation=row["org_name"], archived_at=row["archived_at"],
                              archived_by=row["archived_by"], digests=digests, record=record,
                              reports=tuple(json.loads(row["reports"]))), data)

    def renew_archives(self, *, actor: "Actor", timestamper: Any, within_days: int = 365,
                       doc_ids: Sequence[int] | None = None) -> list[Renewal]:
        """Renew the archive timestamps of the archived documents of the actor's organisations
        (where they are a secretary) whose newest document timestamp's certificate ends within
        `within_days` (or that have none): fresh validation data and a new document timestamp,
        stored as a new renewal row.  `doc_ids` limits the documents looked at.  Returns what was
        done with each document looked at; a document that cannot be renewed stops nothing.  Each
        renewal is the secretary's decision, signed with their certificate where the organisation
        signs "archive-renew" (SigningKeyError before anything is done when it cannot be)."""
        from seal.formats import OFD, detect_format
        from seal.pdf_timestamps import newest_archive_timestamp
        user = self._acting(actor)
        if within_days < 0:
            raise ValueError("within_days is not negative")
        with self.home.store.read() as conn:
            query = sa.select(t.doc_archive.c.doc_id, t.doc_organisations.c.name.label("org_name")).join(
                t.doc_organisations, t.doc_organisations.c.id == t.doc_archive.c.org_id).order_by(t.doc_archive.c.doc_id)
            if doc_ids is not None:
                query = query.where(t.doc_archive.c.doc_id.in_(list(doc_ids)))
            rows = conn.execute(query).all()
        found = {r.doc_id for r in rows}
        missing = [d for d in (doc_ids or ()) if d not in found]
        if missing:
            raise DocumentNotFound(f"document {missing[0]} is not archived", doc=missing[0])
        mine = []
        signers: dict[str, Any] = {}
        for r in rows:
            org = self.organisation(r.org_name)
            if org.has_person(user) and "secretary" in org.person(user).roles:
                mine.append(r)
                if org.name not in signers:
                    signers[org.name] = self._signer(actor, org, "archive-renew")
            elif doc_ids is not None:
                raise NotAllowed(f"{user} is not a secretary of {org.name}", doc=r.doc_id, user=user)
        now = self.home.clock.now()
        horizon = now + timedelta(days=within_days)
        results: list[Renewal] = []
        for r in mine:
            _record, data = self.archived(r.doc_id)
            if detect_format(data) == OFD:
                results.append(Renewal(r.doc_id, False, "an OFD: it has no document timestamp to renew (its seal's "
                                                        "own timestamp, if any, stays as made)", None, None))
                continue
            newest = newest_archive_timestamp(data)
            if newest is not None and newest.not_after > horizon:
                results.append(Renewal(r.doc_id, False, f"its archive timestamp's certificate holds until "
                                                        f"{newest.not_after:%Y-%m-%d}", newest.time, newest.not_after))
                continue
            try:
                renewed, extended = self.seal_service.extend_bytes(data, timestamper=timestamper)
            except YinxinError as exc:
                results.append(Renewal(r.doc_id, False, f"not renewed: {exc.message}",
                                       newest.time if newest else None, newest.not_after if newest else None))
                continue
            digests = Digests.of(renewed)
            with self.home.store.transaction() as conn:
                seq = (conn.execute(sa.select(sa.func.max(t.doc_archive_renewals.c.seq))
                                    .where(t.doc_archive_renewals.c.doc_id == r.doc_id)).scalar() or 0) + 1
                conn.execute(t.doc_archive_renewals.insert().values(
                    doc_id=r.doc_id, seq=seq, renewed_at=now, renewed_by=user, pdf=renewed, sha256=digests.sha256,
                    sm3=digests.sm3, timestamp_time=extended.timestamp_time,
                    timestamp_not_after=extended.timestamp_not_after,
                    tsa=getattr(timestamper, "name", None) or extended.tsa_subject))
                renewal = {"renewal": seq, "timestamp": extended.timestamp_time.isoformat(),
                           "tsa": extended.tsa_subject,
                           "previous_not_after": newest.not_after.isoformat() if newest else None}
                self._log(conn, r.doc_id, at=now, actor=actor, signer=signers[r.org_name], step=None,
                          action="archive-renew", org=r.org_name, digests=digests, signed=renewal, details=renewal)
            results.append(Renewal(r.doc_id, True, f"renewal {seq}", extended.timestamp_time,
                                   extended.timestamp_not_after))
        return results


@dataclass(frozen=True)
class Renewal:
    """What `renew_archives` did with one archived document."""

    doc_id: int
    renewed: bool
    detail: str
    timestamp: datetime | None          # the newest archive timestamp now
    not_after: datetime | None          # its certificate's end

    def to_dict(self) -> dict[str, Any]:
        return {"doc": self.doc_id, "renewed": self.renewed, "detail": self.detail,
                "timestamp": self.timestamp.isoformat() if self.timestamp else None,
                "tsa_certificate_not_after": self.not_after.isoformat() if self.not_after else None}

