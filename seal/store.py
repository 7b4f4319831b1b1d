"""The seal tables, on the home's database (declared on pki.store's metadata).

Migrations: 100 the seals; 101 the vector picture as drawn at creation; 600 `maker_rule` — which rule the maker's signature in `ses_der`
follows.  Seals made before 600 were signed by the GM/T 0031 rule (SEQUENCE{SES_SealInfo, cert,
signAlgID}) although their structure is GB/T 38540 v4, whose verifiers expect a signature over
SES_SealInfo alone: the migration marks them `gmt0031`, and `yinxin seal resign` has their maker
re-sign them (audited), after which they are `gbt38540` like every new seal."""
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
    # gbt38540: the maker signed SES_SealInfo; gmt0031: made before migration 600, awaiting re-signing
    sa.Column("maker_rule", sa.String(16), nullable=False, server_default="gbt38540"),
)

register_migration(100, "electronic seals", (seals,))


def _add_drawing_column(conn: sa.engine.Connection) -> None:
    if "drawing" not in {c["name"] for c in sa.inspect(conn).get_columns("seals")}:
        conn.execute(sa.text("ALTER TABLE seals ADD COLUMN drawing " +
                             ("BYTEA" if conn.dialect.name == "postgresql" else "BLOB")))


register_migration(101, "seals keep their vector picture as drawn at creation", (), step=_add_drawing_column)


def _mark_legacy_seals(conn: sa.engine.Connection) -> None:
    """Migration 600: add `maker_rule` where the table predates it, and record for every seal
    which rule its maker's signature follows — found by verifying it with the public key of the
    CA that made it (no password needed); one that verifies by neither rule is marked gmt0031
    too, and `seal resign` will refuse it by name."""
    from pki.algorithms import public_key_from_spki
    from pki.store import cas

    from .ses import RULE_GBT38540, RULE_GMT0031, maker_rule

    columns = {c["name"] for c in sa.inspect(conn).get_columns("seals")}
    if "maker_rule" in columns:
        return                   # made by this version: the column came with the table, no old rows
    conn.exec_driver_sql("ALTER TABLE seals ADD COLUMN maker_rule VARCHAR(16) NOT NULL DEFAULT 'gbt38540'")
    makers = {r.name: r for r in conn.execute(sa.select(cas.c.name, cas.c.cert_der, cas.c.distid))}
    for row in conn.execute(sa.select(seals.c.id, seals.c.ca_name, seals.c.ses_der)).all():
        rule = None
        maker = makers.get(row.ca_name)
        if maker is not None:
            from asn1crypto import x509
            try:
                key = public_key_from_spki(x509.Certificate.load(maker.cert_der).public_key.dump())
                rule = maker_rule(row.ses_der, key, distid=maker.distid)
            except Exception:          # an unreadable record: to be re-signed, which checks it again
                rule = None
        conn.execute(sa.update(seals).where(seals.c.id == row.id)
                     .values(maker_rule=RULE_GBT38540 if rule == RULE_GBT38540 else RULE_GMT0031))


register_migration(600, "seals: the maker's signature rule (GB/T 38540 v4 vs GM/T 0031); older seals "
                        "marked for re-signing", (), _mark_legacy_seals)
