"""The document-flow tables, on the home's database (declared on pki.store's metadata, migration 200).

Append-only tables — document versions, attachments, the action log, verification
reports and the archive — have no update or delete path in the code, and a
database trigger refuses UPDATE and DELETE on them (SQLite and PostgreSQL), so
that even a stray SQL statement cannot rewrite what was approved, sealed or archived.
"""
from __future__ import annotations

import sqlalchemy as sa

from pki.store import UtcDateTime, add_column_if_missing, append_only, metadata, register_migration

doc_organisations = sa.Table(
    "doc_organisations", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("seal", sa.String(64)),
    sa.Column("definition", sa.Text, nullable=False),        # JSON: Organisation.definition()
    sa.Column("digest", sa.String(64), nullable=False),      # SHA-256 of the canonical definition
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("loaded_at", UtcDateTime, nullable=False),
    sa.Column("loaded_by", sa.String(128), nullable=False),
)

# one row per person; a person id names one person in the whole home, so `--user WHO` is unambiguous
doc_people = sa.Table(
    "doc_people", metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("doc_organisations.id"), nullable=False),
)

doc_documents = sa.Table(
    "doc_documents", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("doc_organisations.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),        # upward | downward | parallel | incoming
    sa.Column("drafter", sa.String(64)),                     # NULL for incoming documents
    sa.Column("state", sa.String(16), nullable=False),       # draft | in_flow | sent | done | archived
    sa.Column("step", sa.String(40)),                        # current step id ('draft' when returned)
    sa.Column("step_state", sa.Text, nullable=False),        # JSON: countersigned/read lists, exceptions
    sa.Column("route", sa.Text, nullable=False),             # JSON: the route, fixed at creation
    sa.Column("elements", sa.Text, nullable=False),          # JSON: GB/T 9704 elements
    sa.Column("doc_number", sa.String(64)),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("signed_off_version", sa.Integer),
    sa.Column("signed_off_by", sa.String(64)),
    sa.Column("signed_off_sha256", sa.String(64)),
    sa.Column("sealed_version", sa.Integer),
    sa.Column("sealed_sha256", sa.String(64)),
    sa.Column("source_delivery_id", sa.Integer),             # incoming: the delivery it came from
    sa.Column("revision", sa.Integer, nullable=False),       # optimistic concurrency
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("org_id", "doc_number", name="uq_doc_documents_number"),
)

doc_versions = sa.Table(
    "doc_versions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),     # draft | revision | sealed | received
    sa.Column("pdf", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("sm3", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.UniqueConstraint("doc_id", "number", name="uq_doc_versions_number"),
)

doc_attachments = sa.Table(
    "doc_attachments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("sm3", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.UniqueConstraint("doc_id", "position", name="uq_doc_attachments_position"),
)

doc_pending = sa.Table(
    "doc_pending", metadata,
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), primary_key=True),
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("step", sa.String(40), nullable=False),
    sa.Column("since", UtcDateTime, nullable=False),
)

doc_actions = sa.Table(
    "doc_actions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("step", sa.String(40)),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("opinion", sa.Text),
    sa.Column("version", sa.Integer),
    sa.Column("sha256", sa.String(64)),
    sa.Column("sm3", sa.String(64)),
    sa.Column("details", sa.Text, nullable=False),           # JSON
    sa.Column("audit_seq", sa.Integer, nullable=False),
    # the action's signed decision: its number in the document's chain (`doc:ID`); migration 403
    sa.Column("decision_seq", sa.Integer),
    sa.UniqueConstraint("doc_id", "seq", name="uq_doc_actions_seq"),
)

doc_counters = sa.Table(
    "doc_counters", metadata,
    sa.Column("org_id", sa.Integer, sa.ForeignKey("doc_organisations.id"), primary_key=True),
    sa.Column("series", sa.String(16), primary_key=True),   # outgoing (发文) | incoming (收文)
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last", sa.Integer, nullable=False),
)

doc_deliveries = sa.Table(
    "doc_deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), nullable=False),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("doc_organisations.id"), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),      # delivered | opened | received | returned | recalled
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.Column("sent_by", sa.String(64), nullable=False),
    sa.Column("opened_at", UtcDateTime),
    sa.Column("opened_by", sa.String(64)),
    sa.Column("received_at", UtcDateTime),
    sa.Column("received_by", sa.String(64)),
    sa.Column("incoming_doc_id", sa.Integer),
    sa.Column("closed_at", UtcDateTime),                     # returned or recalled
    sa.Column("closed_by", sa.String(64)),
    sa.Column("reason", sa.Text),
)

doc_verifications = sa.Table(
    "doc_verifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), nullable=False),
    sa.Column("delivery_id", sa.Integer),
    sa.Column("purpose", sa.String(16), nullable=False),     # seal | send | receive | archive
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("valid", sa.Boolean, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("report", sa.Text, nullable=False),            # JSON: SealVerification.to_dict() + our checks
)

doc_archive = sa.Table(
    "doc_archive", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), nullable=False, unique=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("doc_organisations.id"), nullable=False),
    sa.Column("archived_at", UtcDateTime, nullable=False),
    sa.Column("archived_by", sa.String(64), nullable=False),
    sa.Column("pdf", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("sm3", sa.String(64), nullable=False),
    sa.Column("record", sa.Text, nullable=False),            # JSON: elements, log, attachments, deliveries
    sa.Column("reports", sa.Text, nullable=False),           # JSON: every verification report
)

# archive timestamp renewals (migration 510): the archived PDF with fresh validation data and a
# new document timestamp, appended — the archive row itself is never rewritten
doc_archive_renewals = sa.Table(
    "doc_archive_renewals", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("renewed_at", UtcDateTime, nullable=False),
    sa.Column("renewed_by", sa.String(64), nullable=False),
    sa.Column("pdf", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("sm3", sa.String(64), nullable=False),
    sa.Column("timestamp_time", UtcDateTime, nullable=False),       # genTime of the new document timestamp
    sa.Column("timestamp_not_after", UtcDateTime, nullable=False),  # its TSA certificate's notAfter
    sa.Column("tsa", sa.Text, nullable=False),                      # the TSA's name or URL
    sa.UniqueConstraint("doc_id", "seq", name="uq_doc_archive_renewals_seq"),
)

APPEND_ONLY = (doc_versions, doc_attachments, doc_actions, doc_verifications, doc_archive, doc_archive_renewals)


for _table in APPEND_ONLY:
    append_only(_table)

TABLES = (doc_organisations, doc_people, doc_documents, doc_versions, doc_attachments, doc_pending,
          doc_actions, doc_counters, doc_deliveries, doc_verifications, doc_archive)

register_migration(200, "document flow", TABLES)
register_migration(403, "signed decisions: document actions' decisions", (),
                   lambda conn: add_column_if_missing(conn, doc_actions, "decision_seq"))
register_migration(510, "document flow: archive timestamp renewals", (doc_archive_renewals,))

from .typeset import store as _typeset_store  # noqa: E402,F401  (migration 700, after the tables it refers to)
