"""The typeset versions' records (migration 700): how each typeset version of a document was made.

One row per version that docflow.typeset produced — the drafter's typeset draft, and the
registry's version with 发文字号, 签发人, 成文日期 and 印发日期 — holding the structured
source (NULL for a stamped finished PDF), the template's name and digest, the fields, and
the layout (pages, the seal places, the fields' boxes).  Append-only like the versions.
"""
from __future__ import annotations

import sqlalchemy as sa

from pki.store import UtcDateTime, metadata, register_migration

doc_typeset = sa.Table(
    "doc_typeset", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.Integer, sa.ForeignKey("doc_documents.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),      # draft | registered
    sa.Column("base_version", sa.Integer),                   # registered: the signed-off version it is made from
    sa.Column("template", sa.String(200), nullable=False),
    sa.Column("template_digest", sa.String(64), nullable=False),
    sa.Column("variant", sa.String(16), nullable=False),
    sa.Column("source", sa.Text),                            # the structured body; NULL: a stamped PDF
    sa.Column("fields", sa.Text, nullable=False),             # JSON: Fields
    sa.Column("layout", sa.Text, nullable=False),             # JSON: Layout
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("doc_id", "version", name="uq_doc_typeset_version"),
)


def _register() -> None:
    from ..store import _append_only
    _append_only(doc_typeset)
    register_migration(700, "typesetting: how each typeset version was made", (doc_typeset,))


_register()
