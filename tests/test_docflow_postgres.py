"""The document flow on PostgreSQL (the engine for several nodes): a whole upward document, sealed,
sent, received and archived, and the append-only triggers refusing UPDATE and DELETE.

A throw-away cluster is started with initdb/pg_ctl on a free local port (as the `postgres` user when
the tests run as root, since PostgreSQL refuses to run as root).  Skipped only when the PostgreSQL
server binaries or the psycopg driver are not installed."""
from __future__ import annotations

import os
from datetime import timedelta
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from docflow_support import (ORG, OTHER, SEAL_PASSWORD, UPWARD_TO_SEAL, Bureau, example_org, new_upward,
                             other_org, with_seals)

pytest.importorskip("psycopg")


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    # a directory the postgres user can reach (pytest's base temp directory is private to us)
    data = Path(tempfile.mkdtemp(prefix="yinxin-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *args: subprocess.run([*prefix, *map(str, args)], check=True, capture_output=True)  # noqa: E731
    run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    run(bindir / "pg_ctl", "-D", data, "-w", "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
        "-l", data / "server.log", "start")
    try:
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "yinxin")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/yinxin"
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "fast", "stop")
        shutil.rmtree(data, ignore_errors=True)


def conn_rows(home, sql: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa
    with home.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_whole_flow_and_append_only_archive_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from docflow import DocumentFlow
    from pki.accounts import decisions
    from pki.accounts.errors import DecisionChainMoved
    from pki.clock import FixedClock, SystemClock
    from pki.home import Home

    clock = FixedClock(SystemClock().now().replace(microsecond=0))
    # a server whose sessions write dates the SQL way (day first): nothing of yinxin's may depend on ISO
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("ALTER DATABASE yinxin SET DateStyle = 'SQL, DMY'")
    admin.dispose()
    home = Home.open(tmp_path / "home", database=postgres_url, clock=clock)
    with home.store.read() as conn:
        assert conn.exec_driver_sql("SHOW DateStyle").scalar() == "SQL, DMY"
    assert home.store.dialect == "postgresql"
    flow = DocumentFlow(home)
    b = Bureau(home=home, flow=flow, clock=clock, path=tmp_path / "home")
    flow.load_organisation_data(example_org(), actor=b.admin())
    flow.load_organisation_data(other_org(), actor=b.admin())
    with_seals(b, (ORG, "official-sm2", "wang"), (OTHER, "tianjin-sm2", "t_wang"))
    clock.advance(timedelta(microseconds=123456))    # versions' times with a fraction, read back as text
    doc = new_upward(b)                              # people get their certificates as they first act
    assert doc == flow.show(doc.id)
    for user, action, to in UPWARD_TO_SEAL:          # what each act returns is what a fresh read shows
        doc = flow.act(doc.id, actor=b.actor(user), action=action, opinion="同意", to=to)
        assert doc == flow.show(doc.id), (user, action)
    with home.store.read() as conn:
        stale = flow._read_doc(conn, doc.id).decision_head
    doc = flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD)
    assert doc == flow.show(doc.id)           # what an act returns is what a fresh read shows
    # a decision after a head another act has moved past: refused, nothing written (one statement)
    before = conn_rows(home, "SELECT count(*) FROM decisions")
    with pytest.raises(DecisionChainMoved):
        with home.store.transaction() as conn:
            decisions.append(conn, home, chain=f"doc:{doc.id}", actor=b.actor("wang"), at=clock.now(),
                             signer=decisions.signer_for(home, b.actor("wang")), fields={}, head=stale)
    assert conn_rows(home, "SELECT count(*) FROM decisions") == before
    flow.act(doc.id, actor=b.actor("sun"), action="approve")
    assert flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]) == flow.show(doc.id)
    assert flow.receive(doc.id, actor=b.actor("t_liu")).accepted
    record = flow.archive(doc.id, actor=b.actor("liu"))
    assert all(r["valid"] for r in record.reports)
    check = flow.verify_log(doc.id)                      # every decision signed, and verified on PostgreSQL
    assert check.ok and check.signed == len(flow.log(doc.id)) == 12, check.first_problem
    assert [e.seq for e in flow.log(doc.id)] == list(range(1, 13))
    # the audit head names the last event (written with it in one statement on PostgreSQL)
    assert conn_rows(home, "SELECT last_seq, last_hash FROM audit_head") == conn_rows(
        home, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
    # the pending list replaced in one statement: who stays gets the new step and time, who left goes
    pending_rows = f"SELECT person_id, step FROM doc_pending WHERE doc_id = {doc.id} ORDER BY person_id"
    for people, step in ((["liu", "sun"], "x"), (["sun", "wang"], "y"), (["wang"], "z"), ([], "")):
        clock.advance(timedelta(minutes=1))
        with home.store.transaction() as conn:
            flow._set_pending(conn, doc.id, step, people, clock.now())
        assert conn_rows(home, pending_rows) == [(p, step) for p in sorted(people)]
        assert conn_rows(home, f"SELECT count(*) FROM doc_pending WHERE doc_id = {doc.id} AND since <> "
                               f"'{clock.now().replace(tzinfo=None).isoformat()}'") == [(0,)]
    with home.store.engine.connect() as conn:
        for statement in ("UPDATE doc_archive SET archived_by = 'mallory'", "DELETE FROM doc_archive",
                          "UPDATE doc_versions SET pdf = '\\x00'", "DELETE FROM doc_actions",
                          "UPDATE decisions SET signer = 'mallory'", "DELETE FROM decisions"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                conn.execute(sa.text(statement))
            conn.rollback()
    home.store.dispose()
