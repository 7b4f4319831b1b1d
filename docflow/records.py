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
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from pki import audit
from pki.accounts.decisions import KEY_UNREAD, ChainHead, chain_head_columns, chain_head_of
from pki.records import from_stored_time
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
# ~90 µs, running a built one ~40 µs on SQLite (bench: a document runs 174 statements on SQLite, 128 on PostgreSQL)
#: `_read_doc`'s one statement: the row, its organisation's definition, the people the current step
#: waits for (one string: SQLite's group_concat, PostgreSQL's string_agg), how many attachments and
#: deliveries the document has (`_document_of` reads neither list when there is none) and where its
#: decision chain ends (the act's signed record follows it: pki.accounts.decisions.append)
_PENDING_SEPARATOR = " "           # never in a person id (docflow.directory._PERSON_ID)
_DOC_BY_ID = _DOC_WITH_ORG.add_columns(
    sa.select(sa.func.aggregate_strings(t.doc_pending.c.person_id, _PENDING_SEPARATOR))
    .where(t.doc_pending.c.doc_id == t.doc_documents.c.id).scalar_subquery().label("pending_people"),
    sa.select(sa.func.count()).select_from(t.doc_attachments)
    .where(t.doc_attachments.c.doc_id == t.doc_documents.c.id).scalar_subquery().label("attachment_count"),
    sa.select(sa.func.count()).select_from(t.doc_deliveries)
    .where(t.doc_deliveries.c.doc_id == t.doc_documents.c.id).scalar_subquery().label("delivery_count"),
    *chain_head_columns(sa.bindparam("chain", type_=sa.String)),
).where(t.doc_documents.c.id == sa.bindparam("doc_id"))
#: `_acting_doc(…, for_act=True)`: also every version's number, purpose, digests, size, author and time
#: (one string per version, `_VERSION_FIELDS` apart: no field holds the separators) and the bytes of
#: the current version, which an act's guard checks and the act's decision names
_VERSION_FIELDS, _VERSION_SEPARATOR = "|", ";"
_LISTED_VERSIONS = t.doc_versions.alias("listed_versions")
_CURRENT_VERSION = t.doc_versions.alias("current_versions")


class _TimeText(FunctionElement):  # type: ignore[type-arg]
    """A stored time as ISO text ("2026-12-06 16:47:00.123456") on both engines: SQLite keeps it so;
    PostgreSQL's cast to text would follow the session's DateStyle."""
    type = sa.String()
    name = "time_text"
    inherit_cache = True


@compiles(_TimeText)
def _time_text(element: _TimeText, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS VARCHAR)"


@compiles(_TimeText, "postgresql")
def _time_text_postgresql(element: _TimeText, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD HH24:MI:SS.US')"


def _version_text() -> Any:
    """One version as text: its fields `_VERSION_FIELDS` apart (`_listed_versions` reads them back)."""
    v = _LISTED_VERSIONS.c
    fields = (sa.cast(v.number, sa.String), v.purpose, v.sha256, v.sm3, sa.cast(v.size, sa.String), v.created_by,
              _TimeText(v.created_at))
    text = fields[0]
    for field in fields[1:]:
        text = text + sa.literal(_VERSION_FIELDS) + field      # || on both engines
    return text


_DOC_FOR_ACT = _DOC_BY_ID.add_columns(
    sa.select(sa.func.aggregate_strings(_version_text(), _VERSION_SEPARATOR))
    .where(_LISTED_VERSIONS.c.doc_id == t.doc_documents.c.id).scalar_subquery().label("versions_listed"),
    sa.select(_CURRENT_VERSION.c.pdf).where(_CURRENT_VERSION.c.doc_id == t.doc_documents.c.id,
                                            _CURRENT_VERSION.c.number == t.doc_documents.c.current_version)
    .scalar_subquery().label("current_pdf"))


def _with_actor(statement: Any) -> Any:
    """`statement` (a document's row) with the acting account, its session and signing key as
    `Accounts.require` reads them (columns prefixed `actor_`, NULL when the account is gone): the
    guard's first two reads in one statement."""
    from pki.accounts.accounts import actor_now_and_key
    actor = actor_now_and_key()
    return (sa.select(*statement.selected_columns, *(c.label(f"actor_{c.name}") for c in actor.c))
            .select_from(t.doc_documents.join(t.doc_organisations, t.doc_organisations.c.id == t.doc_documents.c.org_id)
                         .outerjoin(actor, sa.true()))
            .where(t.doc_documents.c.id == sa.bindparam("doc_id")))


_DOC_BY_ID_ACTING = _with_actor(_DOC_BY_ID)
_DOC_FOR_ACT_ACTING = _with_actor(_DOC_FOR_ACT)
_VERSION = sa.select(t.doc_versions).where(t.doc_versions.c.doc_id == sa.bindparam("doc_id"),
                                           t.doc_versions.c.number == sa.bindparam("number"))
#: every version of a document with the bytes of those a guard checks: what `_document_of` lists and
#: what `_intact` reads, in one statement (`_versions`)
_VERSIONS_WITH_BYTES = (sa.select(t.doc_versions.c.number, t.doc_versions.c.purpose, t.doc_versions.c.sha256,
                                  t.doc_versions.c.sm3, t.doc_versions.c.size, t.doc_versions.c.created_at,
                                  t.doc_versions.c.created_by,
                                  sa.case((t.doc_versions.c.number.in_(sa.bindparam("numbers", expanding=True)),
                                           t.doc_versions.c.pdf), else_=sa.null()).label("pdf"))
                        .where(t.doc_versions.c.doc_id == sa.bindparam("doc_id")).order_by(t.doc_versions.c.number))
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


def _pending_replace() -> Any:
    """PostgreSQL: the pending list replaced in one statement — those no longer pending deleted (a
    data-modifying WITH), the others inserted or, when already pending, given the new step and time
    (the two sets are disjoint, so the insert never meets a row the delete removes)."""
    from sqlalchemy.dialects import postgresql as pg
    people = sa.bindparam("people", type_=pg.ARRAY(sa.String))
    cleared = (sa.delete(t.doc_pending)
               .where(t.doc_pending.c.doc_id == sa.bindparam("doc_id", type_=sa.Integer),
                      t.doc_pending.c.person_id != sa.all_(people))
               .returning(t.doc_pending.c.person_id).cte("cleared"))
    insert = pg.insert(t.doc_pending).from_select(
        ["doc_id", "person_id", "step", "since"],
        sa.select(sa.bindparam("doc_id", type_=sa.Integer), sa.func.unnest(people),
                  sa.bindparam("step", type_=t.doc_pending.c.step.type),
                  sa.bindparam("since", type_=t.doc_pending.c.since.type)))
    return insert.on_conflict_do_update(index_elements=[t.doc_pending.c.doc_id, t.doc_pending.c.person_id],
                                        set_={"step": insert.excluded.step, "since": insert.excluded.since}
                                        ).add_cte(cleared)


_PENDING_REPLACE = _pending_replace()
_EARLIER_ACTIONS = t.doc_actions.alias("earlier")
#: an action is numbered one after its document's last in the insert itself (two acts on one document
#: are kept apart by the document row's update, its revision checked, earlier in the same transaction)
_ACTION_INSERT = t.doc_actions.insert().values(seq=sa.select(
    sa.func.coalesce(sa.func.max(_EARLIER_ACTIONS.c.seq), 0) + 1).where(
    _EARLIER_ACTIONS.c.doc_id == sa.bindparam("numbered_doc_id")).scalar_subquery())
_VERSION_INSERT = t.doc_versions.insert()
_COUNTER_NEXT = (sa.update(t.doc_counters)
                 .where(t.doc_counters.c.org_id == sa.bindparam("counter_org"),
                        t.doc_counters.c.series == sa.bindparam("counter_series"),
                        t.doc_counters.c.year == sa.bindparam("counter_year"))
                 .values(last=t.doc_counters.c.last + 1).returning(t.doc_counters.c.last))
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
    #: how many attachments and deliveries the document had when read; None: unknown (an act added some)
    attachment_count: int | None = None
    delivery_count: int | None = None
    #: where the document's decision chain ended when read; None after a write
    decision_head: ChainHead | None = None
    #: read for an act (`_acting_doc(…, for_act=True)`): every version, and the current one's bytes
    versions: tuple[Version, ...] | None = None
    current_pdf: bytes | None = None

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

    def _acting(self, actor: "Actor", conn: Connection | None = None) -> str:
        """The acting person's id, once the actor is checked (genuine, this home, session alive,
        account enabled): the flow's own rules then decide what that person may do.  `conn`: checked
        in the guard's read transaction."""
        from pki.accounts.accounts import Accounts
        Accounts.of(self.home).require(actor, conn=conn)
        return actor.account_id

    def _acting_keyed(self, actor: "Actor", conn: Connection) -> tuple[str, Any]:
        """`_acting` in the guard's read transaction, the actor's signing key read in the same
        statement: pass it on to `_signer(…, key_row=…)`."""
        from pki.accounts.accounts import Accounts
        key_row = Accounts.of(self.home).require(actor, conn=conn, signing_key=True)
        return actor.account_id, key_row

    def _signer(self, actor: "Actor", org: Organisation, action: str, conn: Connection | None = None,
                key_row: Any = KEY_UNREAD) -> "Signer | None":
        """Who signs the decision `action` of a person of `org`: their own certificate, unless the
        organisation does not sign that action.  SigningKeyError (nothing changed) when it must be
        signed and cannot: no person certificate, or the session did not unlock the key.  `conn`:
        looked up in the guard's read transaction (else in one of its own); `key_row`: as
        `_acting_keyed` read it."""
        if not org.signs(action):
            return None
        from pki.accounts import decisions
        return decisions.signer_for(self.home, actor, conn=conn, what=f"{action} in {org.name}", key_row=key_row)

    def _read_doc(self, conn: Connection, doc_id: int) -> _Doc:
        """The document's row with its organisation's definition, its pending list, how many
        attachments and deliveries it has and where its decision chain ends: one statement."""
        found = conn.execute(_DOC_BY_ID, {"doc_id": doc_id, "chain": doc_chain(doc_id)}).mappings().first()
        if found is None:
            raise DocumentNotFound(f"no document {doc_id}", doc=doc_id)
        return self._doc_of_row(dict(found), doc_id, for_act=False)

    def _acting_doc(self, actor: "Actor", conn: Connection, doc_id: int, *, for_act: bool = False
                    ) -> tuple[str, Any, _Doc]:
        """`_acting_keyed` and then `_read_doc`, in one statement — `for_act`, also every version and
        the current one's bytes: the actor is judged first (a bad session is refused before anything
        about the document is said)."""
        from pki.accounts.accounts import Accounts, actor_now_parameters
        found = conn.execute(_DOC_FOR_ACT_ACTING if for_act else _DOC_BY_ID_ACTING,
                             {"doc_id": doc_id, "chain": doc_chain(doc_id), **actor_now_parameters(actor)}
                             ).mappings().first()
        if found is None:
            self._acting_keyed(actor, conn)
            raise DocumentNotFound(f"no document {doc_id}", doc=doc_id)
        row = dict(found)
        acting = {name[len("actor_"):]: row.pop(name) for name in list(row) if name.startswith("actor_")}
        key_row = Accounts.of(self.home).require(actor, conn=conn, signing_key=True,
                                                 read=None if acting["roles"] is None else acting)
        return actor.account_id, key_row, self._doc_of_row(row, doc_id, for_act)

    def _doc_of_row(self, row: dict[str, Any], doc_id: int, for_act: bool) -> _Doc:
        """The `_Doc` of a row `_DOC_BY_ID` (`_DOC_FOR_ACT`) read."""
        versions = current_pdf = None
        if for_act:
            versions, current_pdf = _listed_versions(row.pop("versions_listed")), row.pop("current_pdf")
        org = organisation_from_text(row.pop("org_definition"))
        route = _route(row["route"], f"route of document {doc_id}")
        joined = row.pop("pending_people")
        pending = joined.split(_PENDING_SEPARATOR) if joined else ()
        attachment_count, delivery_count = row.pop("attachment_count"), row.pop("delivery_count")
        head = chain_head_of(row.pop("chain_head_seq"), row.pop("chain_head_sha256"))
        return _Doc(row=row, org=org, route=route, elements=Elements.from_dict(json.loads(row["elements"])),
                    step_state=json.loads(row["step_state"]), pending=_in_directory_order(org, sorted(pending)),
                    attachment_count=attachment_count, delivery_count=delivery_count, decision_head=head,
                    versions=versions, current_pdf=None if current_pdf is None else bytes(current_pdf))

    @staticmethod
    def _written(d: _Doc, now: datetime, values: Mapping[str, Any], pending: Iterable[str], *,
                 delivered: bool = False) -> _Doc:
        """The document as `_update(conn, d, now, **values)` and `_set_pending(…, pending, …)` just
        left it, without reading it back: the row the guard read with the values written (the JSON
        columns as they were stored), and the pending list as `_read_doc` orders it.  `delivered`:
        the act added deliveries (their number is then unknown here)."""
        row = {**d.row, **values, "revision": d.row["revision"] + 1, "updated_at": now.astimezone(timezone.utc)}
        elements = Elements.from_dict(json.loads(row["elements"])) if "elements" in values else d.elements
        step_state = json.loads(row["step_state"]) if "step_state" in values else d.step_state
        return _Doc(row=row, org=d.org, route=d.route, elements=elements, step_state=step_state,
                    pending=_in_directory_order(d.org, sorted(dict.fromkeys(pending))),
                    attachment_count=d.attachment_count, delivery_count=None if delivered else d.delivery_count)

    @staticmethod
    def _inserted(doc_id: int, values: Mapping[str, Any], org: Organisation, pending: Iterable[str],
                  attachments: int) -> _Doc:
        """A document as the insert of `values` just left it, without reading it back (the columns not
        given are NULL; the times as a read returns them)."""
        row = {c.name: None for c in t.doc_documents.c} | dict(values) | {"id": doc_id}
        for name in ("created_at", "updated_at"):
            row[name] = row[name].astimezone(timezone.utc)
        return _Doc(row=row, org=org, route=_route(row["route"], f"route of document {doc_id}"),
                    elements=Elements.from_dict(json.loads(row["elements"])), step_state=json.loads(row["step_state"]),
                    pending=_in_directory_order(org, sorted(dict.fromkeys(pending))), attachment_count=attachments,
                    delivery_count=0)

    @staticmethod
    def _versions(conn: Connection, doc_id: int, numbers: Iterable[int]
                  ) -> tuple[dict[int, Mapping[str, Any]], tuple[Version, ...]]:
        """In one statement: the rows of versions `numbers`, bytes included (for `_intact(…, read=…)`;
        a lost one is absent), and every version of the document as `_document_of` lists them."""
        wanted = sorted(set(numbers))
        rows = conn.execute(_VERSIONS_WITH_BYTES, {"doc_id": doc_id, "numbers": wanted}).mappings().all()
        return {r["number"]: r for r in rows if r["number"] in wanted}, tuple(_version(r) for r in rows)

    def _version_bytes(self, conn: Connection, doc_id: int, number: int,
                       read: Mapping[int, Mapping[str, Any]] | None = None) -> tuple[bytes, Digests, Mapping[str, Any]]:
        row = read.get(number) if read is not None else \
            conn.execute(_VERSION, {"doc_id": doc_id, "number": number}).mappings().first()
        if row is None:
            raise IntegrityFailure(f"document {doc_id} has lost version {number}", doc=doc_id, version=number)
        return bytes(row["pdf"]), Digests(row["sha256"], row["sm3"], row["size"]), row

    def _intact(self, conn: Connection, doc_id: int, number: int, guard: Guard,
                expect_sha256: str | None = None, read: Mapping[int, Mapping[str, Any]] | None = None) -> bytes | None:
        """The bytes of a version if they still match every digest recorded for them.  `read`: the
        version's row among those `_versions` read (in the same transaction), else read here."""
        return self._intact_version(conn, doc_id, number, guard, expect_sha256, read)[0]

    def _intact_version(self, conn: Connection, doc_id: int, number: int, guard: Guard,
                        expect_sha256: str | None = None, read: Mapping[int, Mapping[str, Any]] | None = None
                        ) -> tuple[bytes | None, Digests | None]:
        """`_intact`, and the digests recorded for the version (which its bytes were just found to match)."""
        try:
            data, recorded, _ = self._version_bytes(conn, doc_id, number, read)
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

    def _intact_current(self, conn: Connection, d: _Doc, guard: Guard
                        ) -> tuple[bytes | None, Digests | None, tuple[Version, ...]]:
        """`_intact_version` of the current version, and every version as `_document_of` lists them,
        as `_acting_doc(…, for_act=True)` read them."""
        assert d.versions is not None, "the document was not read for an act"
        number = d.row["current_version"]
        read = {v.number: {"pdf": d.current_pdf, "sha256": v.digests.sha256, "sm3": v.digests.sm3,
                           "size": v.digests.size}
                for v in d.versions if v.number == number and d.current_pdf is not None}
        data, digests = self._intact_version(conn, d.id, number, guard, read=read)
        return data, digests, d.versions

    def _attachments_intact(self, conn: Connection, d: _Doc, guard: Guard) -> None:
        """The stored attachments still match their digests, and every declared one is there (none
        read when `_read_doc` counted none)."""
        rows = [] if d.attachment_count == 0 else conn.execute(_ATTACHMENTS, {"doc_id": d.id}).mappings().all()
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

    def _document_of(self, conn: Connection, d: _Doc, versions: tuple[Version, ...] | None = None) -> Document:
        """The `Document` of a document read (or just written, `_written`): its versions (unless
        given: as the guard listed them, and what the act added), attachments and deliveries read
        here — the attachments and deliveries only when the document has some (or their number is
        unknown)."""
        doc_id = d.id
        if versions is None:
            versions = tuple(_version(r) for r in conn.execute(_VERSION_LIST, {"doc_id": doc_id}).mappings())
        attachments = () if d.attachment_count == 0 else tuple(
            AttachmentInfo(r["position"], r["name"], Digests(r["sha256"], r["sm3"], r["size"]))
            for r in conn.execute(_ATTACHMENT_LIST, {"doc_id": doc_id}).mappings())
        step = d.step
        return Document(
            id=doc_id, organisation=d.org.name, kind=d.row["kind"], drafter=d.drafter, state=d.state,
            step=d.row["step"], step_title=step.title if step else ("退回拟稿人" if d.row["step"] == "draft" else None),
            pending=d.pending, elements=d.elements, current_version=d.row["current_version"], versions=versions,
            attachments=attachments, signed_off_version=d.row["signed_off_version"],
            signed_off_by=d.row["signed_off_by"], sealed_version=d.row["sealed_version"],
            deliveries=() if d.delivery_count == 0 else self._deliveries(conn, doc_id),
            source_delivery_id=d.row["source_delivery_id"],
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
    def _set_pending(conn: Connection, doc_id: int, step: str | None, people: Iterable[str], now: datetime, *,
                     new: bool = False) -> None:
        """The people the document now waits for (`new`: a document just inserted, none yet)."""
        if not new and conn.dialect.name == "postgresql":
            conn.execute(_PENDING_REPLACE, {"doc_id": doc_id, "people": list(dict.fromkeys(people)),
                                            "step": step or "", "since": now})
            return
        if not new:
            conn.execute(_PENDING_CLEAR, {"doc_id": doc_id})
        rows = [{"doc_id": doc_id, "person_id": pid, "step": step or "", "since": now} for pid in dict.fromkeys(people)]
        if rows:
            conn.execute(_PENDING_INSERT, rows)

    def _log(self, conn: Connection, doc_id: int, *, at: datetime, actor: "Actor", signer: "Signer | None",
             step: str | None, action: str, org: str, opinion: str | None = None, version: int | None = None,
             digests: Digests | None = None, details: Mapping[str, Any] | None = None,
             audit_seq: int | None = None, signed: Mapping[str, Any] | None = None,
             head: ChainHead | None = None) -> int:
        """One action: the document's log entry, (unless `audit_seq` is given) its audit event, and —
        with a `signer` — its signed decision in the document's chain (`doc:ID`): the document, the
        organisation, step, action, opinion, the version's number and SHA-256/SM3 digests, and the
        `signed` extras (who is next, the seal, the recipients …).  `head`: where the guard saw
        the chain end (`_Doc.decision_head`), for the one decision of an act."""
        details = dict(details or {})
        decision_seq = None
        if signer is not None:
            from pki.accounts import decisions
            decision = decisions.append(conn, self.home, chain=doc_chain(doc_id), actor=actor, signer=signer, at=at,
                                        fields=decision_fields(doc_id, org, step, action, opinion, version, digests,
                                                               signed), head=head)
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
        """The series' next number, taken inside the write transaction (one statement once the year's
        counter exists)."""
        taken = conn.execute(_COUNTER_NEXT, {"counter_org": org_id, "counter_series": series,
                                             "counter_year": year}).scalar()
        if taken is None:
            conn.execute(t.doc_counters.insert().values(org_id=org_id, series=series, year=year, last=1))
            return 1
        return taken

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


def _listed_versions(text: str | None) -> tuple[Version, ...]:
    """The versions `_DOC_FOR_ACT` listed as text, by number."""
    versions = []
    for item in text.split(_VERSION_SEPARATOR) if text else ():
        number, purpose, sha256, sm3, size, created_by, created_at = item.split(_VERSION_FIELDS)
        versions.append(Version(number=int(number), purpose=purpose, digests=Digests(sha256, sm3, int(size)),
                                created_at=from_stored_time(datetime.fromisoformat(created_at)), created_by=created_by))
    return tuple(sorted(versions, key=lambda v: v.number))


def _version(row: Mapping[str, Any]) -> Version:
    return Version(number=row["number"], purpose=row["purpose"],
                   digests=Digests(row["sha256"], row["sm3"], row["size"]), created_at=row["created_at"],
                   created_by=row["created_by"])


def added_version(number: int, purpose: str, digests: Digests, at: datetime, by: str) -> Version:
    """The `Version` a fresh read shows of the version `_add_version` just wrote."""
    return Version(number=number, purpose=purpose, digests=digests, created_at=at.astimezone(timezone.utc),
                   created_by=by)


def doc_chain(doc_id: int) -> str:
    """The name of a document's decision chain."""
    return f"doc:{doc_id}"


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
