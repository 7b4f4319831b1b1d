"""Tables of accounts, sessions, personal signing keys and signed decisions (migrations 400–402).

Secrets are never stored in the clear: a password only as its argon2id hash, a session token only
as its SHA-256, a personal private key only encrypted under the person's PIN (PBES2) and, while a
session has unlocked it, re-encrypted under a session key that only the session file holds.
Signed decisions are append-only (a trigger refuses UPDATE and DELETE).
"""
from __future__ import annotations

import sqlalchemy as sa

from ..store import UtcDateTime, add_column_if_missing, append_only, applications, metadata, register_migration

#: one row: this home's identity, so that a session file of one home is refused by another
home_identity = sa.Table(
    "home_identity", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("home_id", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("roles", sa.Text, nullable=False),                 # JSON list, sorted
    sa.Column("organisation", sa.Text),                          # people of organisation files
    sa.Column("id_number", sa.String(64)),                       # 一人一证 for the person certificate
    sa.Column("source", sa.String(16), nullable=False),          # admin | organisation
    sa.Column("password_hash", sa.Text),                         # $argon2id$…; NULL: no password yet
    sa.Column("password_set_at", UtcDateTime),
    sa.Column("must_change_password", sa.Boolean, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_failure_at", UtcDateTime),
    sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

account_keys = sa.Table(
    "account_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("public_key_der", sa.LargeBinary, nullable=False),
    sa.Column("public_key_fp", sa.String(64), nullable=False, unique=True),
    sa.Column("encrypted_key", sa.LargeBinary, nullable=False),  # PBES2 PKCS#8 PEM under the PIN
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id")),
    sa.Column("ca_name", sa.String(64)),
    sa.Column("cert_serial", sa.String(40)),
    sa.Column("state", sa.String(10), nullable=False),           # pending | active | retired
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("activated_at", UtcDateTime),
)
sa.Index("ix_account_keys_account", account_keys.c.account_id, account_keys.c.state)

account_sessions = sa.Table(
    "account_sessions", metadata,
    sa.Column("id", sa.String(32), primary_key=True),            # public id (audit), not the token
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),   # SHA-256 of the token
    sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),          # password
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("idle_seconds", sa.Integer, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),        # the absolute timeout
    sa.Column("key_id", sa.Integer, sa.ForeignKey("account_keys.id")),
    sa.Column("wrapped_key", sa.LargeBinary),                    # nonce ‖ SM4-GCM(session key, PKCS#8)
)
sa.Index("ix_account_sessions_account", account_sessions.c.account_id)

decisions = sa.Table(
    "decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("chain", sa.String(128), nullable=False),          # doc:17, application:5, certificate:CA:serial
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("record", sa.LargeBinary, nullable=False),         # the exact signed bytes (canonical JSON)
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("signature", sa.LargeBinary),                      # DER; NULL only for an RA bootstrap decision
    sa.Column("signer", sa.String(64), nullable=False),
    sa.Column("key_id", sa.Integer),
    sa.Column("ca_name", sa.String(64)),
    sa.Column("cert_serial", sa.String(40)),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("chain", "seq", name="uq_decisions_chain_seq"),
)
append_only(decisions)

register_migration(400, "accounts, sessions, personal signing keys",
                   (home_identity, accounts, account_keys, account_sessions))
register_migration(401, "signed decisions", (decisions,))
register_migration(402, "applications: the submitting account", (),
                   lambda conn: add_column_if_missing(conn, applications, "submitted_by"))
