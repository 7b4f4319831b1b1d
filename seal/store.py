"""The seal tables, on the home's database (declared on pki.store's metadata, migration 100)."""
from __future__ import annotations

import sqlalchemy as sa

from pki.store import UtcDateTime, metadata, register_migration

seals = sa.Table(
    "seals", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("es_id", sa.String(64), nullable=False, unique=True),
    sa.Column("organisation", sa.Text, nullable=False),
    sa.Column("seal_type", sa.String(16), nullable=False),
    sa.Column("label", sa.Text, nullable=False),            # e.g. 合同专用章; the person's name for personal seals
    sa.Column("custodian", sa.String(128), nullable=False),
    sa.Column("ca_name", sa.String(64), nullable=False),
    sa.Column("cert_serial", sa.String(40), nullable=False),
    sa.Column("cert_der", sa.LargeBinary, nullable=False),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("key_pem", sa.LargeBinary, nullable=False),   # PBES2-encrypted under the seal password
    sa.Column("valid_from", UtcDateTime, nullable=False),
    sa.Column("valid_to", UtcDateTime, nullable=False),
    sa.Column("picture_kind", sa.String(8), nullable=False),   # vector | png
    sa.Column("picture_png", sa.LargeBinary),                  # the administrator's PNG, when given
    # the vector picture as drawn at creation (SealDrawing.to_bytes); NULL for seals made before 0.2
    sa.Column("drawing", sa.LargeBinary),
    sa.Column("width_mm", sa.Float, nullable=False),
    sa.Column("height_mm", sa.Float, nullable=False),
    sa.Column("ses_der", sa.LargeBinary, nullable=False),      # GB/T 38540 SES_Seal signed by the maker
    sa.Column("must_change_password", sa.Boolean, nullable=False),
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
)

register_migration(100, "electronic seals", (seals,))


def _add_drawing_column(conn: sa.engine.Connection) -> None:
    if "drawing" not in {c["name"] for c in sa.inspect(conn).get_columns("seals")}:
        conn.execute(sa.text("ALTER TABLE seals ADD COLUMN drawing " +
                             ("BYTEA" if conn.dialect.name == "postgresql" else "BLOB")))


register_migration(101, "seals keep their vector picture as drawn at creation", (), step=_add_drawing_column)
