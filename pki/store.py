"""The only code that touches the database (SQLAlchemy Core).

SQLite in WAL mode is the embedded default (one file in the home
directory); PostgreSQL serves several nodes.  Every write runs in one
transaction (`Store.transaction()`), and write transactions are serialised
on every engine, so that code which reads, decides and then writes (the
one-person-one-certificate slot, the audit chain's head, CRL numbers, status
transitions) sees no other writer between its read and its write:

* SQLite: a write transaction starts with BEGIN IMMEDIATE (the database's
  single write lock), so two processes queue instead of failing on a lock
  upgrade;
* PostgreSQL: the transaction's BEGIN and a transaction-level advisory lock
  (`WRITE_LOCK_KEY`), the same single write lock, go to the server together
  (one round trip); under READ COMMITTED every later statement of the
  transaction sees all that committed before.

Reads (`Store.read()`) take no lock on either engine.  Signing happens
outside transactions, so CPU-bound work still runs in parallel.  Commits are
durable before the caller goes on (SQLite: synchronous=FULL; PostgreSQL's
default synchronous_commit): a reservation is on disk before its certificate
is signed.  Uniqueness rules (serial per CA, one active certificate per
person and usage, CRL number per CA) are database constraints as well as
checks in the calling code.  The store returns rows and raises StoreError /
Conflict; it never formats messages for people.

One reader besides: `pki.listing`, the read-only light path of `yinxin ca list` / `ca cas`, reads a
home's own SQLite file with the standard library's sqlite3 (opened read-only, current schema only)
so that a listing starts without SQLAlchemy; what both need lives in `pki.records`.
"""
from __future__ import annotations

import json
import operator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from .clock import SYSTEM_CLOCK
from .errors import Conflict, StoreError
from .records import SCHEMA_VERSION, from_stored_time, to_stored_time


class UtcDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on every engine."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return to_stored_time(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return from_stored_time(value)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

cas = sa.Table(
    "cas", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("cas.id")),
    sa.Column("serial", sa.String(40), nullable=False),
    sa.Column("cert_der", sa.LargeBinary, nullable=False),
    sa.Column("key_file", sa.Text, nullable=False),
    sa.Column("base_url", sa.Text),
    sa.Column("distid", sa.LargeBinary, nullable=False),
    sa.Column("next_crl_number", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

applications = sa.Table(
    "applications", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ca_id", sa.Integer, sa.ForeignKey("cas.id"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),          # new | renew | rekey
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("applicant", sa.String(128), nullable=False),
    # the account that submitted it, when not the applicant (an RA officer for a person); migration 402
    sa.Column("submitted_by", sa.String(128)),
    sa.Column("id_number", sa.String(64)),
    sa.Column("public_key_der", sa.LargeBinary, nullable=False),
    sa.Column("csr_der", sa.LargeBinary),
    sa.Column("key_generated", sa.Boolean, nullable=False),
    sa.Column("subject_alt_names", sa.Text, nullable=False, server_default="[]"),
    sa.Column("predecessor_serial", sa.String(40)),
    sa.Column("state", sa.String(12), nullable=False),         # submitted | approved | rejected | issued
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("decided_at", UtcDateTime),
    sa.Column("decision_comment", sa.Text),
    sa.Column("issued_serial", sa.String(40)),
)

evidence = sa.Table(
    "evidence", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("stored_path", sa.Text, nullable=False),
)

certificates = sa.Table(
    "certificates", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ca_id", sa.Integer, sa.ForeignKey("cas.id"), nullable=False),
    sa.Column("serial", sa.String(40), nullable=False),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id")),
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("id_number", sa.String(64)),
    # "<id_number>|<usage>" while the certificate is active, else NULL: 一人一证 as a constraint
    sa.Column("active_key", sa.String(200), unique=True),
    sa.Column("public_key_fp", sa.String(64), nullable=False),
    sa.Column("not_before", UtcDateTime, nullable=False),
    sa.Column("not_after", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),        # reserved | issued | held | revoked
    sa.Column("tbs_der", sa.LargeBinary, nullable=False),
    sa.Column("cert_der", sa.LargeBinary),
    sa.Column("revoked_at", UtcDateTime),
    sa.Column("revocation_reason", sa.String(32)),
    sa.Column("released_at", UtcDateTime),
    sa.Column("status_changed_at", UtcDateTime, nullable=False),
    sa.Column("predecessor_serial", sa.String(40)),
    sa.Column("retention_years", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("ca_id", "serial", name="uq_certificates_ca_serial"),
)
sa.Index("ix_certificates_status", certificates.c.ca_id, certificates.c.status)

crls = sa.Table(
    "crls", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ca_id", sa.Integer, sa.ForeignKey("cas.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("delta_base", sa.Integer),
    sa.Column("this_update", UtcDateTime, nullable=False),
    sa.Column("next_update", UtcDateTime, nullable=False),
    sa.Column("der", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("ca_id", "number", name="uq_crls_ca_number"),
)

audit_events = sa.Table(
    "audit_events", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("result_digest", sa.String(64)),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("event_hash", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("ca_name", sa.String(64), nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),
)

# Versioned migrations: (version, description, tables created by it, optional step run after the
# tables exist — for ALTER TABLE and the like).  A later version appends an entry; it never edits an
# earlier one.  Other packages (seal, docflow) add theirs through `register_migration`.  Blocks of
# numbers per part: 1 CA core, 100 seals, 200 document flow, 300 status service, 400 accounts and
# signed decisions, 500 timestamp authority and long-term validation, 600 OFD seals, 700
# typesetting, 800 web console and API.
Step = Callable[[Connection], None]
_MIGRATIONS: list[tuple[int, str, Sequence[sa.Table], Step | None]] = [
    (1, "CA core", (schema_version, cas, applications, evidence, certificates, crls,
                    audit_events, audit_head, audit_checkpoints), None),
]

#: SCHEMA_VERSION (kept in `pki.records`, which the light read path imports without SQLAlchemy) is
#: the newest schema version this code knows: the largest migration number of all packages.


def register_migration(version: int, description: str, tables: Sequence[sa.Table],
                       step: Step | None = None) -> None:
    """Add a migration for tables declared on `metadata` by another package; `step`, if given,
    runs in the same transaction after the tables are created."""
    if any(v == version for v, _, _, _ in _MIGRATIONS):
        if not any(v == version and t == tuple(tables) for v, _, t, _ in _MIGRATIONS):
            raise ValueError(f"migration {version} registered twice")
        return
    if version > SCHEMA_VERSION:
        raise ValueError(f"migration {version} is newer than SCHEMA_VERSION {SCHEMA_VERSION}: raise it")
    _MIGRATIONS.append((version, description, tuple(tables), step))
    _MIGRATIONS.sort(key=lambda m: m[0])


def add_column_if_missing(conn: Connection, table: sa.Table, column: str) -> None:
    """A migration step: ALTER TABLE … ADD COLUMN for a nullable column declared on `table` after the
    table's first migration (a database created since has it already)."""
    if column in {c["name"] for c in sa.inspect(conn).get_columns(table.name)}:
        return
    col = table.c[column]
    ddl = col.type.compile(dialect=conn.dialect)
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column)} {ddl}")


def append_only(table: sa.Table) -> None:
    """Database triggers refusing UPDATE and DELETE on `table` (SQLite and PostgreSQL), made when the
    table is created: even a stray SQL statement cannot rewrite what was recorded."""
    name = table.name
    for op in ("UPDATE", "DELETE"):
        sa.event.listen(table, "after_create", sa.DDL(
            f"CREATE TRIGGER {name}_no_{op.lower()} BEFORE {op} ON {name} "
            f"BEGIN SELECT RAISE(ABORT, '{name} is append-only'); END").execute_if(dialect="sqlite"))
    sa.event.listen(table, "after_create", sa.DDL(
        "CREATE OR REPLACE FUNCTION yinxin_append_only() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION '%% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql").execute_if(
        dialect="postgresql"))
    sa.event.listen(table, "after_create", sa.DDL(
        f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
        "FOR EACH ROW EXECUTE FUNCTION yinxin_append_only()").execute_if(dialect="postgresql"))


def sqlite_url(path: str) -> str:
    return f"sqlite:///{path}"


def _described_cursor(binary: bool = False) -> Any:
    from .pg_cursor import BinaryResultCursor, DescribedCursor   # psycopg is imported only for a PostgreSQL home
    return BinaryResultCursor if binary else DescribedCursor


#: the advisory lock every PostgreSQL write transaction takes first (b"yinxin" as an integer)
WRITE_LOCK_KEY = int.from_bytes(b"yinxin", "big")


def normalise_url(url: str) -> str:
    """`postgresql://…` (or `postgres://…`) means the psycopg 3 driver, the one yinxin ships with."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


@dataclass
class Store:
    engine: Engine
    #: PostgreSQL: the engine of `read()`, its connections in autocommit from the start (switching a
    #: pooled connection to autocommit and back cost ~70 µs a read); SQLite: None, `engine` reads
    reads: Engine | None = None

    @classmethod
    def open(cls, url: str) -> "Store":
        url = normalise_url(url)
        try:
            pg = sa.engine.make_url(url).get_backend_name() == "postgresql"
            # psycopg's descriptions of results made once per shape (pki.pg_cursor)
            options: dict[str, Any] = {"connect_args": {"cursor_factory": _described_cursor()}} if pg else {}
            # PostgreSQL: the driver in autocommit and the transaction begun by `_pg_begin` — its BEGIN
            # and its write lock in one round trip (psycopg's own BEGIN is a round trip of its own);
            # psycopg still sends COMMIT or ROLLBACK when a transaction is open
            engine = sa.create_engine(url, future=True, **({"isolation_level": "AUTOCOMMIT"} if pg else {}),
                                      **options)
            # reads: results in binary (a PDF as its bytes, not hex text: pki.pg_cursor)
            reads = sa.create_engine(url, future=True, isolation_level="AUTOCOMMIT",
                                     execution_options={"yinxin_read_only": True},
                                     connect_args={"cursor_factory": _described_cursor(binary=True)}) if pg else None
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot open database {_safe_url(url)!r}: {exc}", url=_safe_url(url)) from None
        if engine.dialect.name == "postgresql":
            @event.listens_for(engine, "begin")
            def _pg_begin(conn: Connection) -> None:
                if conn.get_execution_options().get("yinxin_read_only"):
                    conn.exec_driver_sql("BEGIN")
                else:      # no parameters: one simple-protocol message, both statements
                    conn.exec_driver_sql(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
        if engine.dialect.name == "sqlite":
            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None   # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA foreign_keys=ON")
                # FULL: each commit is on disk before it returns (NORMAL could lose the last
                # commits, e.g. a reservation whose certificate already left, on power loss)
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Connection) -> None:
                # writers take the write lock up front; readers (`read()`) must not, or every
                # `list`/`show`/OCSP lookup would wait for (and block) issuance in WAL mode
                if conn.get_execution_options().get("yinxin_read_only"):
                    conn.exec_driver_sql("BEGIN")
                else:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
        store = cls(engine, reads)
        try:
            store.migrate()
        except BaseException:
            store.dispose()
            raise
        return store

    def dispose(self) -> None:
        """Close every pooled connection (before a fork: no connection crosses it; when done with the store)."""
        self.engine.dispose()
        if self.reads is not None:
            self.reads.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of work: everything in it commits together or not at all."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError as exc:
            raise Conflict("the change violates a uniqueness rule", detail=str(exc.orig)) from None
        except OperationalError as exc:
            raise StoreError(f"database error: {_one_line(exc.orig)}", detail=str(exc.orig)) from None

    def migrate(self) -> int:
        """Apply the migrations the database has not seen; returns the schema version.  Refuses
        (StoreError, nothing written) a database whose schema is newer than this code."""
        wanted = {version for version, _, _, _ in _MIGRATIONS}
        try:
            # the common case, every migration applied: decided without the write lock, so that
            # opening a home never waits for (or holds up) a long write elsewhere
            with self.read() as conn:
                if sa.inspect(conn).has_table(schema_version.name):
                    done = {r.version for r in conn.execute(sa.select(schema_version.c.version))}
                    self._check_not_newer(done)
                    if wanted <= done:
                        return max(done)
        except OperationalError as exc:
            raise StoreError(f"database error: {_one_line(exc.orig)}", detail=str(exc.orig)) from None
        with self.transaction() as conn:
            schema_version.create(conn, checkfirst=True)
            done = {r.version for r in conn.execute(sa.select(schema_version.c.version))}
            self._check_not_newer(done)
            for version, _desc, tables, step in _MIGRATIONS:
                if version in done:
                    continue
                for table in tables:
                    table.create(conn, checkfirst=True)
                if step is not None:
                    step(conn)
                conn.execute(schema_version.insert().values(
                    version=version, applied_at=SYSTEM_CLOCK.now()))  # wall time of the migration itself
                done.add(version)
            return max(done)

    def _check_not_newer(self, done: set[int]) -> None:
        if done and max(done) > SCHEMA_VERSION:
            raise StoreError(
                f"the database {_safe_url(str(self.engine.url))} has schema version {max(done)}, made by a newer "
                f"yinxin; this yinxin knows up to {SCHEMA_VERSION}: upgrade yinxin (pip install -U yinxin) "
                "before using this home", schema=max(done), known=SCHEMA_VERSION)

    @classmethod
    def inspect_schema(cls, url: str) -> list[int] | None:
        """The schema versions applied to the database at `url`, without creating or migrating
        anything; None when it has no yinxin schema yet."""
        url = normalise_url(url)
        engine = sa.create_engine(url, future=True)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(schema_version.name):
                    return None
                return [r.version for r in conn.execute(sa.select(schema_version.c.version).order_by("version"))]
        finally:
            engine.dispose()

    def schema_versions(self) -> list[int]:
        with self.read() as conn:
            return [r.version for r in conn.execute(sa.select(schema_version.c.version).order_by("version"))]

    # ------------------------------------------------------------------ generic helpers

    @staticmethod
    def insert(conn: Connection, table: sa.Table, **values: Any) -> int:
        result = conn.execute(table.insert().values(**values))
        return result.inserted_primary_key[0]

    @staticmethod
    def one(conn: Connection, query: Any) -> Mapping[str, Any] | None:
        row = conn.execute(query).mappings().first()
        return dict(row) if row is not None else None

    @staticmethod
    def all(conn: Connection, query: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(query).mappings()]

    def read(self) -> Any:
        """A connection for reads outside a write transaction; takes no write lock.  On SQLite a
        snapshot (a deferred transaction in WAL mode).  On PostgreSQL each statement commits by itself:
        at READ COMMITTED every statement sees its own snapshot anyway, so a transaction around reads
        would only add a BEGIN and a ROLLBACK round trip (two of an act's ~20 on PostgreSQL)."""
        if self.reads is not None:
            return self.reads.connect()
        return self.engine.connect().execution_options(yinxin_read_only=True)


# --------------------------------------------------------------------------- many rows at once

@dataclass(frozen=True)
class _Compiled:
    """A statement compiled once for a dialect, with what turns a row into its parameters."""
    sql: str
    names: tuple[str, ...]                              # bind names, in the driver's order
    processors: tuple[Callable[[Any], Any] | None, ...]  # the columns' bind processors, same order
    positional: bool


_COMPILED: dict[tuple[Any, ...], _Compiled] = {}


def _compile(conn: Connection, key: tuple[Any, ...], statement: Callable[[], Any],
             types: Callable[[], Mapping[str, Any]]) -> _Compiled:
    """The statement `statement()` builds, compiled once per dialect and `key` (built only then,
    with its bind names' `types()`: making the statement objects cost more than the rows of a
    small batch)."""
    dialect = conn.dialect
    key = (dialect.name, dialect.paramstyle) + key
    compiled = _COMPILED.get(key)
    if compiled is None:
        done = statement().compile(dialect=dialect)
        names = tuple(done.positiontup) if done.positional else tuple(done.binds)
        typed = types()
        compiled = _COMPILED[key] = _Compiled(
            done.string, names,
            tuple(typed[name].dialect_impl(dialect).bind_processor(dialect) for name in names), done.positional)
    return compiled


def _insert_statement(table: sa.Table, columns: Sequence[str]) -> Any:
    return table.insert().values({c: sa.bindparam(c, type_=table.c[c].type) for c in columns})


_NOTHING = object()


def _reusing(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, whose last result is reused while the same object comes again (rows of a batch
    share their timestamps)."""
    last: list[Any] = [_NOTHING, None]

    def run(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]
    return run


def _parameters(compiled: _Compiled, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    names = compiled.names
    take = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    processed = [(i, _reusing(process)) for i, process in enumerate(compiled.processors) if process is not None]
    out: list[Any] = []
    for row in rows:
        values = take(row)
        if processed:
            values = list(values)
            for i, process in processed:
                values[i] = process(values[i])
        out.append(tuple(values) if compiled.positional else dict(zip(names, values)))
    return out


def _column_arrays(conn: Connection, table: sa.Table, columns: Sequence[str],
                   rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The rows turned column-wise, each value through its column's bind processor."""
    dialect = conn.dialect
    arrays: list[list[Any]] = []
    for i, column in enumerate(columns):
        process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        run = _reusing(process) if process is not None else None
        arrays.append([row[i] for row in rows] if run is None else [run(row[i]) for row in rows])
    return arrays


_UNNEST_SQL: dict[tuple[Any, ...], str] = {}


def _unnest_sql(conn: Connection, key: tuple[Any, ...], table: sa.Table, columns: Sequence[str],
                build: Callable[[str, str], str]) -> str:
    """PostgreSQL: a statement over `unnest(%s::type[], …) AS v(c0, c1, …)` — one parameter per
    column, whatever the number of rows — made once per shape."""
    sql = _UNNEST_SQL.get(key)
    if sql is None:
        dialect = conn.dialect
        arrays = ", ".join(f"%b::{table.c[c].type.compile(dialect=dialect)}[]" for c in columns)
        names = ", ".join(f"c{i}" for i in range(len(columns)))
        sql = _UNNEST_SQL[key] = build(dialect.identifier_preparer.format_table(table),
                                       f"unnest({arrays}) AS v({names})")
    return sql


def insert_many(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """`conn.execute(table.insert(), rows)` for rows that all name the same columns, without
    SQLAlchemy's per-row statement work: compiled once per dialect, the columns' own bind
    processors applied here.  SQLite: one driver executemany.  PostgreSQL: one INSERT … SELECT
    FROM unnest(arrays), since the server's per-statement work for each row cost more than the
    row (bulk issuance writes ~7 rows a certificate; tests compare the rows read back with those
    SQLAlchemy's own insert writes, on both engines)."""
    if not rows:
        return
    columns = tuple(rows[0])
    if conn.dialect.name == "postgresql":
        quote = conn.dialect.identifier_preparer.quote
        sql = _unnest_sql(conn, ("insert", table.name, columns), table, columns, lambda target, source: (
            f"INSERT INTO {target} ({', '.join(quote(c) for c in columns)}) "
            f"SELECT {', '.join(f'v.c{i}' for i in range(len(columns)))} FROM {source}"))
        conn.exec_driver_sql(sql, tuple(_column_arrays(conn, table, columns,
                                                       [tuple(row[c] for c in columns) for row in rows])))
        return
    compiled = _compile(conn, ("insert", table.name, columns), lambda: _insert_statement(table, columns),
                        lambda: {c: table.c[c].type for c in columns})
    conn.exec_driver_sql(compiled.sql, _parameters(compiled, rows))


class Appender:
    """Appends rows to one table, each call one committed (durable) transaction, from a connection
    it keeps: for a writer that commits small batches at a high rate (the status service's
    timestamp ledger).  On SQLite the transaction is driven on the driver's connection — BEGIN
    IMMEDIATE, one executemany, COMMIT — which costs a third of a `Store.transaction()` in CPU
    (SQLAlchemy's connection and transaction machinery per commit); on PostgreSQL it is an
    ordinary `Store.transaction()` with `insert_many` (the advisory write lock included).  Not
    thread-safe: one appender per thread.  Uniqueness violations raise `Conflict`, other
    database errors `StoreError`; a failed batch is rolled back."""

    def __init__(self, store: Store, table: sa.Table) -> None:
        self.store = store
        self.table = table
        self._conn: Connection | None = None

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if self.store.dialect != "sqlite":
            with self.store.transaction() as conn:
                insert_many(conn, self.table, rows)
            return
        if self._conn is None:
            self._conn = self.store.engine.connect()
        conn = self._conn
        columns = tuple(rows[0])
        table = self.table
        compiled = _compile(conn, ("insert", table.name, columns), lambda: _insert_statement(table, columns),
                            lambda: {c: table.c[c].type for c in columns})
        raw = conn.connection.dbapi_connection
        try:
            raw.execute("BEGIN IMMEDIATE")
            try:
                raw.executemany(compiled.sql, _parameters(compiled, rows))
                raw.execute("COMMIT")
            except BaseException:
                raw.execute("ROLLBACK")
                raise
        except Exception as exc:
            import sqlite3
            if isinstance(exc, sqlite3.IntegrityError):
                raise Conflict("the change violates a uniqueness rule", detail=str(exc)) from None
            if isinstance(exc, sqlite3.Error):
                self.close()
                raise StoreError(f"database error: {_one_line(exc)}", detail=str(exc)) from None
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def insert_many_returning_ids(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """`insert_many` for a table whose integer primary key `id` the database assigns; returns the
    new ids in the order of `rows`.  Only inside `Store.transaction()`, whose write lock keeps other
    writers out between choosing the ids and inserting them.  The ids are the ones the database
    would choose — PostgreSQL: drawn from the column's sequence; SQLite (a rowid table without
    AUTOINCREMENT): the largest id + 1, 2, … — and are inserted with the rows in one statement.
    (SQLAlchemy's INSERT … RETURNING for many rows ran one statement per row on SQLite and was one
    long statement psycopg parsed again every time on PostgreSQL.)"""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        ids = sorted(conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            (table.name, len(rows))).scalars())
    elif conn.dialect.name == "sqlite":
        last = conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
        ids = list(range(last + 1, last + 1 + len(rows)))
    else:                                           # pragma: no cover - the store supports two engines
        inserted = conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows).all()
        return [new_id for (new_id,) in inserted]
    insert_many(conn, table, [{"id": new_id, **row} for new_id, row in zip(ids, rows)])
    return ids


def update_many(conn: Connection, table: sa.Table,
                rows: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> int:
    """For every (match, change) pair: UPDATE `table` SET the columns of `change` WHERE each column
    of `match` equals its value.  The pairs all name the same columns, and no two pairs match the
    same row.  Returns the number of rows changed (as `insert_many`: SQLite one driver
    executemany, PostgreSQL one UPDATE … FROM unnest(arrays))."""
    if not rows:
        return 0
    where, values = tuple(rows[0][0]), tuple(rows[0][1])
    if conn.dialect.name == "postgresql":
        quote = conn.dialect.identifier_preparer.quote
        columns = where + values
        n = len(where)
        sql = _unnest_sql(conn, ("update", table.name, where, values), table, columns, lambda target, source: (
            f"UPDATE {target} AS t SET "
            + ", ".join(f"{quote(c)} = v.c{n + i}" for i, c in enumerate(values))
            + f" FROM {source} WHERE "
            + " AND ".join(f"t.{quote(c)} = v.c{i}" for i, c in enumerate(where))))
        arrays = _column_arrays(conn, table, columns,
                                [tuple(match[c] for c in where) + tuple(change[c] for c in values)
                                 for match, change in rows])
        return conn.exec_driver_sql(sql, tuple(arrays)).rowcount
    compiled = _compile(conn, ("update", table.name, where, values), lambda: sa.update(table).where(
        *(table.c[c] == sa.bindparam(f"w_{c}", type_=table.c[c].type) for c in where)).values(
        {c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in values}),
        lambda: {f"w_{c}": table.c[c].type for c in where} | {f"v_{c}": table.c[c].type for c in values})
    renamed = [{**{f"w_{c}": v for c, v in match.items()}, **{f"v_{c}": v for c, v in change.items()}}
               for match, change in rows]
    return conn.exec_driver_sql(compiled.sql, _parameters(compiled, renamed)).rowcount


def _one_line(error: Any) -> str:
    """A driver's message (psycopg's span lines) as one line."""
    return " ".join(str(error).split())


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def to_json(value: Any) -> str:
    return _JSON.encode(value)
