"""The store on PostgreSQL: the same migrations and schema as on SQLite, every command with
`--database postgresql://…`, the single write lock, tampering caught by `audit verify`, and
`yinxin serve` answering from PostgreSQL.  PostgreSQL is started by scripts/pg.sh when the test
command did not (tests/pg_fixture.py).  psycopg and SQLAlchemy's inspector read the schema, not
pki.store."""
from __future__ import annotations

import threading
import time
from datetime import timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from pki.ca import CLOCK_SKEW_ALLOWANCE
from pki.clock import SystemClock
from pki.errors import StoreError
from pki.store import Store

from ca_helpers import (DISTID, PASSWORD, World, apply_and_issue, openssl, openssl_csr, openssl_out, sql,
                        wall_clock, yinxin, session_env)
from pg_fixture import PgDatabase, new_pg_database, pg_url, prepare_home_database  # noqa: F401 - fixture

ENV = {"YINXIN_CA_PASSWORD": PASSWORD.decode()}


def _all_migrations() -> None:
    import docflow.store  # noqa: F401 - registers its tables
    import pki.crl_source  # noqa: F401
    import pki.presign  # noqa: F401
    import seal.store  # noqa: F401


def _schema(engine: sa.engine.Engine) -> dict[str, dict]:
    inspector = sa.inspect(engine)
    out = {}
    for table in inspector.get_table_names():
        out[table] = {
            "columns": {c["name"]: (type(c["type"]).__name__, c["nullable"]) for c in inspector.get_columns(table)},
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            # PostgreSQL lists the index behind each unique constraint too: the constraints are compared above
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(table) if not i.get("duplicates_constraint")),
            "pk": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
        }
    return out


_SAME_TYPE = {("BLOB", "BYTEA"), ("DATETIME", "TIMESTAMP"), ("BOOLEAN", "BOOLEAN"), ("INTEGER", "INTEGER"),
              ("VARCHAR", "VARCHAR"), ("TEXT", "TEXT"), ("BIGINT", "BIGINT"), ("FLOAT", "DOUBLE_PRECISION"),
              ("FLOAT", "FLOAT"), ("NUMERIC", "NUMERIC"), ("SMALLINT", "SMALLINT"), ("JSON", "JSON"),
              ("DATE", "DATE")}


def test_same_migrations_and_schema_on_both_engines(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    _all_migrations()
    lite = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    pg = Store.open(new_pg_database("schema").url)
    assert lite.schema_versions() == pg.schema_versions() and {1, 100, 200, 300, 301} <= set(lite.schema_versions())
    a, b = _schema(lite.engine), _schema(pg.engine)
    assert set(a) == set(b)
    for table in a:
        assert a[table]["pk"] == b[table]["pk"], table
        assert a[table]["unique"] == b[table]["unique"], table
        assert a[table]["indexes"] == b[table]["indexes"], table
        assert set(a[table]["columns"]) == set(b[table]["columns"]), table
        for column, (lite_type, lite_null) in a[table]["columns"].items():
            pg_type, pg_null = b[table]["columns"][column]
            assert (lite_type, pg_type) in _SAME_TYPE, (table, column, lite_type, pg_type)
            assert lite_null == pg_null, (table, column)
    # the rules that are constraints: serial per CA, CRL number per CA, one active certificate per person
    assert ("ca_id", "serial") in b["certificates"]["unique"] and ("ca_id", "number") in b["crls"]["unique"]
    assert ("active_key",) in b["certificates"]["unique"]
    # a migration that ran is not run again
    assert Store.open(pg.engine.url.render_as_string(hide_password=False)).migrate() == max(pg.schema_versions())


def test_values_round_trip_on_postgresql(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    """Aware UTC datetimes, bytes and booleans come back as they went in (UtcDateTime, bytea, boolean)."""
    home_dir = tmp_path / "home"
    database = prepare_home_database(home_dir, backend_name="postgresql")
    w = World(home_dir, tmp_path / "files", wall_clock())
    w.init_ca("sm2", "sm2")
    issued = apply_and_issue(w, ca="sm2", profile="person", subject="/C=CN/O=T/CN=张三", id_number="11",
                             generate_key_out=tmp_path / "k.pem")
    record = w.authority.show(issued.record.serial)
    assert record.not_before == w.clock.now() - CLOCK_SKEW_ALLOWANCE and record.not_before.tzinfo == timezone.utc
    assert record.cert_der == issued.certificate.dump()
    assert w.authority.get("sm2").distid == DISTID.encode()
    assert isinstance(database, PgDatabase)
    with database.connect() as conn:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = %s AND table_name = 'certificates'",
                                  (database.schema,)).fetchall())
        key_generated = conn.execute("SELECT key_generated FROM applications").fetchone()[0]
    assert types["cert_der"] == "bytea" and types["not_before"] == "timestamp without time zone"
    assert key_generated is True


def test_url_forms_and_errors(pg_url: str) -> None:  # noqa: F811
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    assert Store.open(plain).dialect == "postgresql"
    assert Store.open(plain.replace("postgresql://", "postgres://")).dialect == "postgresql"
    with pytest.raises(StoreError) as exc:
        Store.open("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in exc.value.message and "\n" not in exc.value.message.strip()
    with pytest.raises(StoreError):
        Store.open("nonsense://x")


def test_every_command_with_database_option(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    """A whole CA session through the CLI with --database, and YINXIN_DATABASE; nothing goes to SQLite."""
    url = new_pg_database("cli").url.replace("postgresql+psycopg://", "postgresql://")
    home = tmp_path / "home"
    db = ["--database", url]
    pw = tmp_path / "pw"
    pw.write_text("key pass\n")

    acting: dict[str, str] = {}        # YINXIN_SESSION once logged in

    def ok(*args: object, env: dict | None = None) -> dict:
        result = yinxin(home, *db, "--json", *args, env={**ENV, **acting, **(env or {})})
        assert result.code == 0, result
        return result.json()

    # accounts and sessions through the CLI too: the first admin (also the CA operator), then bob,
    # an RA officer, with an initial password he changes at his first login
    phrases = {"admin": "cold river under the bridge", "bob-initial": "seven lanterns at dusk",
               "bob": "quiet orchard in spring"}
    secrets = {name: tmp_path / f"{name}.pw" for name in phrases}
    for name, path in secrets.items():
        path.write_text(phrases[name] + "\n")
    ok("account", "create", "admin", "--name", "Admin", "--roles", "admin,ca_operator,ra_officer",
       "--password-file", secrets["admin"])
    admin, bob = tmp_path / "admin.session", tmp_path / "bob.session"
    ok("login", "admin", "--password-file", secrets["admin"], "--session-out", admin)
    ok("account", "create", "bob", "--name", "Bob", "--roles", "ra_officer", "--password-file",
       secrets["bob-initial"], "--session", admin)
    ok("login", "bob", "--password-file", secrets["bob-initial"], "--new-password-file", secrets["bob"],
       "--session-out", bob)
    acting["YINXIN_SESSION"] = str(admin)
    ok("ca", "init", "--name", "root", "--subject", "/C=CN/O=T/CN=Root", "--algorithm", "ecdsa-p256",
       "--base-url", "http://pki.test")
    _, csr = openssl_csr(tmp_path, "ecdsa-p256", "/C=CN/O=T/CN=Alice", stem="alice")
    app = ok("ca", "apply", "--profile", "person", "--subject", "/C=CN/O=T/CN=Alice", "--applicant", "alice",
             "--id-number", "42", "--csr", csr)
    ok("ca", "approve", str(app["id"]), "--session", bob)
    issued = ok("ca", "issue", str(app["id"]), "--out", tmp_path / "alice.pem")
    serial = issued["serial"]
    assert "OK" in openssl_out("verify", "-CAfile", home / "cas" / "root" / "ca.pem", tmp_path / "alice.pem")
    app2 = ok("ca", "apply", "--profile", "organization", "--subject", "/C=CN/O=T/CN=Org", "--applicant", "alice",
              "--generate-key", "--key-out", tmp_path / "org.key", "--key-password-file", pw)
    ok("ca", "reject", str(app2["id"]), "--session", bob, "--reason", "no")
    ok("ca", "hold", serial)
    ok("ca", "release", serial)
    ok("ca", "revoke", serial, "--reason", "keyCompromise")
    ok("ca", "crl", "--out", tmp_path / "full.crl")
    ok("ca", "crl", "--delta", "--out", tmp_path / "delta.crl")
    crl_text = openssl_out("crl", "-inform", "DER", "-in", tmp_path / "full.crl", "-CAfile",
                           home / "cas" / "root" / "ca.pem", "-text")
    assert "verify OK" in crl_text and serial.upper() in crl_text.replace(":", "").upper()
    req, resp = tmp_path / "req.der", tmp_path / "resp.der"
    openssl("ocsp", "-issuer", home / "cas" / "root" / "ca.pem", "-cert", tmp_path / "alice.pem", "-reqout", req)
    ok("ca", "ocsp", "--reqin", req, "--respout", resp)
    answer = openssl("ocsp", "-respin", resp, "-no_nonce", "-issuer", home / "cas" / "root" / "ca.pem",
                     "-VAfile", home / "cas" / "root" / "ca.pem", "-cert", tmp_path / "alice.pem", check=False)
    assert b": revoked" in answer.stdout
    assert ok("ca", "show", serial)["status"] == "revoked"
    assert len(ok("ca", "list")) == 1 and ok("ca", "stats")["cas"]["root"] == {"revoked": 1}
    assert ok("ca", "check")["reserved"] == [] and len(ok("ca", "cas")) == 1
    ok("ca", "cert", "--out", tmp_path / "root.pem")
    # the environment variable works the same (no --database)
    verify = yinxin(home, "audit", "verify", env={"YINXIN_DATABASE": url})
    assert verify.code == 0 and "audit log OK" in verify.out, verify
    assert not list(home.glob("yinxin.db*"))


def test_writers_wait_for_the_write_lock(pg_url: str) -> None:  # noqa: F811
    """Two write transactions never overlap: the second waits (seen in pg_stat_activity) for the first."""
    database = new_pg_database("lock")
    store = Store.open(database.url)
    other = Store.open(database.url)
    entered = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with store.transaction() as conn:
            conn.execute(sa.text("CREATE TABLE t (n integer)"))
            entered.set()
            release.wait(60)
            order.append("first commits")

    def second() -> None:
        entered.wait(60)
        with other.transaction() as conn:
            order.append("second runs")
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))   # sees the first's table: it committed

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    with database.connect() as watcher:
        while not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND wait_event = 'advisory'").fetchone()[0]:
            assert time.monotonic() < deadline, "the second writer never waited"
            time.sleep(0.05)
    assert order == []
    release.set()
    for t in threads:
        t.join(60)
    assert order == ["first commits", "second runs"]
    # reads take no lock: a reader goes on while a writer holds it
    with store.transaction():
        with store.read() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1


def test_reads_run_outside_a_transaction_and_writes_inside_one(pg_url: str) -> None:  # noqa: F811
    """`Store.read()` on PostgreSQL: each statement commits by itself (READ COMMITTED gives each its own
    snapshot anyway), so the server sees an idle session, not one "idle in transaction"; reads have their
    own pool of such connections, and writes run in real transactions on the other (a failed one leaves
    nothing)."""
    database = new_pg_database("reads")
    store = Store.open(database.url)

    def state(pid: int) -> str:
        with database.connect() as watcher:
            return watcher.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]

    with store.read() as conn:
        conn.execute(sa.text("SELECT 1")).scalar()
        pid = conn.connection.dbapi_connection.info.backend_pid
        assert state(pid) == "idle"
    with store.read() as conn:
        assert conn.connection.dbapi_connection.info.backend_pid == pid      # the same pooled connection
    with store.transaction() as conn:
        conn.execute(sa.text("CREATE TABLE r (n integer)"))
        writer = conn.connection.dbapi_connection.info.backend_pid
        assert writer != pid and state(writer) == "idle in transaction" and state(pid) == "idle"
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            conn.execute(sa.text("INSERT INTO r VALUES (1)"))
            raise RuntimeError("refused")
    with store.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM r")).scalar() == 0
    # the write transaction is begun by yinxin (BEGIN and the write lock in one round trip, the driver in
    # autocommit): it holds the lock, commits what it wrote, and a failed statement rolls it all back
    with store.transaction() as conn:
        assert conn.connection.dbapi_connection.autocommit is True
        conn.execute(sa.text("INSERT INTO r VALUES (2)"))
        assert conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                    "AND pid = pg_backend_pid()")).scalar() == 1
        assert state(writer) == "idle in transaction"
    with pytest.raises(sa.exc.DataError):
        with store.transaction() as conn:
            conn.execute(sa.text("INSERT INTO r VALUES (3)"))
            conn.execute(sa.text("SELECT 1 / 0"))
    with store.read() as conn:
        assert [n for (n,) in conn.execute(sa.text("SELECT n FROM r ORDER BY n"))] == [2]
        assert conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar() == 0
    store.dispose()                                  # both pools: neither session is left on the server
    with database.connect() as watcher:
        deadline = time.monotonic() + 30
        while watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE pid IN (%s, %s)",
                              (pid, writer)).fetchone()[0]:
            assert time.monotonic() < deadline, "a pooled session outlived Store.dispose()"
            time.sleep(0.05)


def test_audit_tampering_is_named_on_postgresql(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    home_dir = tmp_path / "home"
    db = prepare_home_database(home_dir, backend_name="postgresql")
    w = World(home_dir, tmp_path / "files", wall_clock())
    w.init_ca("ec", "ecdsa-p256")
    for i in range(3):
        apply_and_issue(w, ca="ec", profile="organization", subject=f"/C=CN/O=T/CN=t{i}",
                        generate_key_out=tmp_path / f"t{i}.key")
    assert yinxin(home_dir, "audit", "verify").code == 0
    seq = sql(db, "SELECT min(seq) FROM audit_events WHERE action='application.approve'")[0][0]
    sql(db, "UPDATE audit_events SET actor='mallory' WHERE seq=?", (seq,))
    edited = yinxin(home_dir, "audit", "verify")
    assert edited.code != 0 and f"event {seq}" in edited.out + edited.err, edited
    sql(db, "UPDATE audit_events SET actor='bob' WHERE seq=?", (seq,))
    assert yinxin(home_dir, "audit", "verify").code == 0
    sql(db, "DELETE FROM audit_events WHERE seq=?", (seq + 1,))
    deleted = yinxin(home_dir, "audit", "verify")
    assert deleted.code != 0 and f"{seq + 1}" in deleted.out + deleted.err, deleted


def test_serve_from_postgresql(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    """`yinxin serve` on PostgreSQL answers OCSP, and a revocation by another process (another node
    on the same database) reaches its answers; its CRL verifies with OpenSSL."""
    from server_support import LiveServer, wait_for
    home_dir = tmp_path / "home"
    prepare_home_database(home_dir, backend_name="postgresql")
    w = World(home_dir, tmp_path / "files", SystemClock())
    w.init_ca("ec", "ecdsa-p256", base_url=None)
    issued = apply_and_issue(w, ca="ec", profile="organization", subject="/C=CN/O=T/CN=served",
                             generate_key_out=tmp_path / "s.key")
    cert = w.write_cert(issued, "served")
    pw = tmp_path / "ca-pw"
    pw.write_bytes(PASSWORD + b"\n")
    live = LiveServer(home_dir, args=("--workers", "1", "--ca-password-file", str(pw), "--poll-ms", "50",
                                      "--crl-debounce", "0.2", "--crl-full-min-age", "0")).start()
    try:
        def status() -> str:
            proc = openssl("ocsp", "-url", f"{live.url}/ocsp/ec", "-issuer", w.ca_pem("ec"), "-CAfile", w.ca_pem("ec"),
                           "-cert", cert, check=False)
            return (proc.stdout + proc.stderr).decode()
        assert f"{cert}: good" in status() and "Response verify OK" in status()
        assert yinxin(home_dir, "ca", "revoke", issued.record.serial, "--reason", "keyCompromise",
                      env=session_env(home_dir)).code == 0
        wait_for(lambda: f"{cert}: revoked" in status(), timeout=60)
        crl = tmp_path / "served.crl"

        def crl_lists_it() -> bool:
            from server_support import http_get
            got = http_get(f"{live.url}/crl/ec.crl")
            if got.status != 200:
                return False
            crl.write_bytes(got.body)
            text = openssl_out("crl", "-inform", "DER", "-in", crl, "-CAfile", w.ca_pem("ec"), "-text")
            return "verify OK" in text and issued.record.serial.upper() in text.replace(":", "").upper()
        wait_for(crl_lists_it, timeout=60)
    finally:
        assert live.stop() == 0, live.errors()
    assert "Traceback" not in live.errors(), live.errors()
    assert not list(home_dir.glob("yinxin.db*"))
