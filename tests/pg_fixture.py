"""Which database the tests run on, and a throw-away PostgreSQL server when they need one.

Backend selection (environment):

* ``YINXIN_TEST_DATABASE`` unset or ``sqlite`` — every home uses its own SQLite file (the default);
* ``YINXIN_TEST_DATABASE=postgresql`` — homes that tests prepare with `prepare_home_database` get a
  fresh PostgreSQL schema each, on the server below; ``YINXIN_TEST_DATABASE=postgresql://…`` names
  the server (a database the tests may create schemas in).

The PostgreSQL server: ``YINXIN_TEST_PG_URL`` (exported by ``scripts/pg.sh run`` / ``scripts/pg.sh
env``), else one started here with ``scripts/pg.sh start`` on first use and stopped when the test
process exits.  Tests that need PostgreSQL whatever the backend (tests/test_pg_*, the concurrency and
crash tests) use `pg_server_url()` / the `pg_url` fixture; they skip only when PostgreSQL cannot be
installed or started at all.

Each prepared home gets ``database: URL`` in its config.yaml, so the library (`Home.open`) and the
real `yinxin` command both use it, with no test passing URLs around.  A schema is selected through
the URL (``?options=-csearch_path=…``).  Reads for the tests' own checks (`PgDatabase.snapshot`,
`.sql`) go through psycopg directly, not through pki.store.
"""
from __future__ import annotations

import atexit
import os
import secrets
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import yaml

REPO = Path(__file__).resolve().parent.parent
PG_SCRIPT = REPO / "scripts" / "pg.sh"

_server: str | None = None
_server_error: str | None = None


class PostgresUnavailable(RuntimeError):
    pass


def backend() -> str:
    """'sqlite' or 'postgresql': the backend CA-core tests run on."""
    value = os.environ.get("YINXIN_TEST_DATABASE", "").strip()
    if not value or value == "sqlite":
        return "sqlite"
    if value.startswith(("postgresql", "postgres")):
        return "postgresql"
    raise RuntimeError(f"YINXIN_TEST_DATABASE={value!r}: use sqlite, postgresql or a postgresql:// URL")


def _driver_url(url: str) -> str:
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def pg_server_url() -> str:
    """The URL of a PostgreSQL database the tests may create schemas in (started on first use)."""
    global _server, _server_error
    if _server is not None:
        return _server
    if _server_error is not None:
        raise PostgresUnavailable(_server_error)
    explicit = os.environ.get("YINXIN_TEST_DATABASE", "").strip()
    if explicit.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        _server = _driver_url(explicit)
        return _server
    if os.environ.get("YINXIN_TEST_PG_URL"):
        _server = _driver_url(os.environ["YINXIN_TEST_PG_URL"])
        return _server
    proc = subprocess.run(["bash", str(PG_SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not proc.stdout.strip():
        _server_error = f"could not start PostgreSQL with scripts/pg.sh: {proc.stderr.strip()[-500:]}"
        raise PostgresUnavailable(_server_error)
    _server = proc.stdout.strip().splitlines()[-1]
    started = _server
    atexit.register(lambda: subprocess.run(["bash", str(PG_SCRIPT), "stop", started],
                                           capture_output=True, timeout=120))
    return _server


def _psycopg_conninfo(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (psycopg does not take the +driver scheme)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _connect(url: str) -> Any:
    import psycopg
    return psycopg.connect(_psycopg_conninfo(url), autocommit=True)


@dataclass(frozen=True)
class PgDatabase:
    """One schema on the test server: what a home's config.yaml points at."""

    server: str
    schema: str

    @property
    def url(self) -> str:
        separator = "&" if "?" in self.server else "?"
        return f"{self.server}{separator}options={quote(f'-csearch_path={self.schema}')}"

    def connect(self) -> Any:
        conn = _connect(self.server)
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement (written with SQLite's ? placeholders) straight through psycopg; times come
        back as the text SQLAlchemy stores in SQLite, so that tests read both engines alike."""
        with self.connect() as conn:
            cur = conn.execute(statement.replace("%", "%%").replace("?", "%s"), tuple(params))
            if cur.description is None:
                return []
            return [tuple(_as_sqlite(v) for v in row) for row in cur.fetchall()]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table of the schema."""
        with self.connect() as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE' ORDER BY table_name", (self.schema,))]
            return {t: sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                               for row in conn.execute(f'SELECT * FROM "{t}"').fetchall()), key=repr)
                    for t in tables}


def _as_sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def clone(database: Path | PgDatabase, home_dir: Path) -> Path | PgDatabase:
    """A consistent copy of a home's database for `home_dir` (a copy of the home's files is the
    caller's): SQLite's backup API, or a new schema with every table copied."""
    home_dir = Path(home_dir)
    if not isinstance(database, PgDatabase):
        import sqlite3
        source, target = sqlite3.connect(database), sqlite3.connect(home_dir / "yinxin.db")
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return home_dir / "yinxin.db"
    copy = new_pg_database("clone")
    with _connect(database.server) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_type = 'BASE TABLE'", (database.schema,))]
        with conn.transaction():
            for t in tables:
                conn.execute(f'CREATE TABLE "{copy.schema}"."{t}" (LIKE "{database.schema}"."{t}" '
                             "INCLUDING ALL)")
                conn.execute(f'INSERT INTO "{copy.schema}"."{t}" SELECT * FROM "{database.schema}"."{t}"')
    config = home_dir / "config.yaml"
    loaded = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}) if config.exists() else {}
    loaded["database"] = copy.url
    config.write_text(yaml.safe_dump(loaded, allow_unicode=True), encoding="utf-8")
    return copy


_created: list[tuple[str, str]] = []


def new_pg_database(label: str = "t") -> PgDatabase:
    """A fresh, empty schema on the test server."""
    server = pg_server_url()
    safe = "".join(c if c.isalnum() else "_" for c in label.lower())[:20]
    schema = f"{safe}_{os.getpid()}_{secrets.token_hex(4)}"
    with _connect(server) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    if not _created:
        atexit.register(_drop_created)
    _created.append((server, schema))
    return PgDatabase(server, schema)


def _drop_created() -> None:
    """Drop this process's schemas (the server may outlive the tests, e.g. a developer's own)."""
    try:
        for server, schema in _created:
            with _connect(server) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception:  # noqa: BLE001 - the server may be gone already (pg.sh stopped it)
        pass


def _configured_url(home_dir: Path) -> str | None:
    config = Path(home_dir) / "config.yaml"
    if not config.exists():
        return None
    return (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("database")


def database_of(home_dir: Path) -> Path | PgDatabase:
    """The database a home uses: its config.yaml's PostgreSQL schema or SQLite file, else yinxin.db."""
    url = _configured_url(home_dir)
    if url and "search_path%3D" in url:
        server, _, options = url.partition("?options=")
        schema = options.split("search_path%3D", 1)[1].split("&", 1)[0]
        return PgDatabase(server, schema)
    if url and url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return Path(home_dir) / "yinxin.db"


def prepare_home_database(home_dir: Path, *, backend_name: str | None = None,
                          label: str = "home") -> Path | PgDatabase:
    """Give a home directory the database of the selected backend (idempotent for a home).

    SQLite: nothing to do (the home's yinxin.db).  PostgreSQL: a fresh schema, written into the
    home's config.yaml as `database:`."""
    home_dir = Path(home_dir)
    if _configured_url(home_dir):
        return database_of(home_dir)
    chosen = backend_name or backend()
    if chosen == "sqlite" and backend_name is None:
        return database_of(home_dir)         # the default: nothing to write
    if chosen == "sqlite":                   # chosen explicitly: say so, whatever the test run's default
        database: Path | PgDatabase = home_dir.resolve() / "yinxin.db"
        url = f"sqlite:///{database}"
    else:
        database = new_pg_database(label)
        url = database.url
    home_dir.mkdir(parents=True, exist_ok=True)
    config = home_dir / "config.yaml"
    loaded = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}) if config.exists() else {}
    loaded["database"] = url
    config.write_text(yaml.safe_dump(loaded, allow_unicode=True), encoding="utf-8")
    return database


def snapshot(database: Path | PgDatabase) -> dict[str, list[tuple[Any, ...]]]:
    if isinstance(database, PgDatabase):
        return database.snapshot()
    import sqlite3
    con = sqlite3.connect(database)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def run_sql(database: Path | PgDatabase, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    if isinstance(database, PgDatabase):
        return database.sql(statement, params)
    import sqlite3
    con = sqlite3.connect(database, isolation_level=None)
    try:
        return con.execute(statement, params).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- pytest fixtures

try:
    import pytest
except ImportError:  # pragma: no cover - imported by tools outside pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    @pytest.fixture(scope="session")
    def pg_url() -> str:
        """A PostgreSQL database URL for tests that need PostgreSQL whatever the backend."""
        try:
            return pg_server_url()
        except PostgresUnavailable as exc:
            pytest.skip(str(exc))

    @pytest.fixture(params=["sqlite", "postgresql"])
    def backend_name(request: Any) -> str:
        """Both engines, for tests written once and run on each."""
        if request.param == "postgresql":
            try:
                pg_server_url()
            except PostgresUnavailable as exc:
                pytest.skip(str(exc))
        return request.param
