"""The timestamp authority's tables (migration 500), declared on `pki.store.metadata`.

* `tsa_authorities`: one row per TSA of the home — its certificate (issued by a CA of the home
  with profile ``tsa``), the path of its encrypted key, policy, accuracy, SM2 ID.
* `tsa_tokens`: one row per token issued, written durably (committed) *before* the token
  leaves the TSA: serial (unique per TSA, a database constraint), genTime, the imprint, the
  nonce, the SHA-256 of the token, who asked.  `yinxin tsa stats` counts them; `tsa find`
  looks one up by serial.  The newest genTime is where a TSA's clock must not go back from.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..store import UtcDateTime, metadata, register_migration

tsa_authorities = sa.Table(
    "tsa_authorities", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("ca_id", sa.Integer, sa.ForeignKey("cas.id"), nullable=False),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("cert_serial", sa.String(40), nullable=False),
    sa.Column("cert_der", sa.LargeBinary, nullable=False),
    sa.Column("key_file", sa.Text, nullable=False),
    sa.Column("policy", sa.String(200), nullable=False),
    sa.Column("accuracy_ms", sa.Integer, nullable=False),
    sa.Column("distid", sa.LargeBinary),                    # SM2 only
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
)

tsa_tokens = sa.Table(
    "tsa_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tsa_id", sa.Integer, sa.ForeignKey("tsa_authorities.id"), nullable=False),
    sa.Column("serial", sa.String(40), nullable=False),      # hex, lower case
    sa.Column("gen_time", UtcDateTime, nullable=False),
    sa.Column("hash_algorithm", sa.String(16), nullable=False),
    sa.Column("imprint", sa.String(128), nullable=False),    # hex
    sa.Column("nonce", sa.String(80)),                       # hex
    sa.Column("token_sha256", sa.String(64), nullable=False),
    sa.Column("client", sa.String(64)),
    sa.UniqueConstraint("tsa_id", "serial", name="uq_tsa_tokens_serial"),
)
sa.Index("ix_tsa_tokens_gen_time", tsa_tokens.c.tsa_id, tsa_tokens.c.gen_time)

register_migration(500, "timestamp authority: TSAs and the tokens they issued", (tsa_authorities, tsa_tokens))
