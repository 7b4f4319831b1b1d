"""The hash-chained audit log: `yinxin audit verify` passes after a session of operations, and fails —
naming the event — after an event is edited, deleted or reordered directly in SQLite, or a checkpoint
is forged.  Checkpoint signatures are checked independently with `openssl dgst`."""
from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pki import audit
from pki.status import generate_crl

from ca_helpers import (World, apply_and_issue, assert_one_line_error, fixed_clock, openssl, sql, yinxin)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """A session of operations: two CAs, issuance, a rejection, hold/release/revoke, renewals, CRLs."""
    w = World(tmp_path_factory.mktemp("audit") / "home", tmp_path_factory.mktemp("audit-files"), fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    w.init_ca("rsa", "rsa2048")
    serials = []
    for i in range(10):
        issued = apply_and_issue(w, ca="ec" if i % 2 else "rsa", profile="organization",
                                 subject=f"/O=印信测试/CN=audit {i}", generate_key_out=w.files / f"k{i}.pem")
        serials.append(issued.record.serial)
    app = w.ra.apply(ca="ec", profile="organization", subject="/O=印信测试/CN=rejected", actor=w.person("alice"),
                     generate_key_out=w.files / "rejected.pem", key_password=b"pw")
    w.ra.reject(app.id, actor=w.officer("bob"), reason="no evidence")
    w.authority.hold(serials[1], actor=w.op)
    w.authority.release(serials[1], actor=w.op)
    w.authority.hold(serials[3], actor=w.op)
    w.authority.revoke(serials[3], reason="keyCompromise", actor=w.op)
    w.authority.revoke(serials[0], reason="superseded", actor=w.op)
    for ca in ("ec", "rsa"):
        generate_crl(w.authority, w.authority.get(ca), w.key(ca), actor=w.op)
    return w


def events(world_or_home) -> list[tuple]:  # type: ignore[no-untyped-def]
    db = world_or_home / "yinxin.db" if isinstance(world_or_home, Path) else world_or_home.db_path()
    return sql(db, "SELECT seq, action, target FROM audit_events ORDER BY seq")


@pytest.fixture
def copy(world: World, tmp_path: Path) -> Path:
    """A copy of the home (CA files and a consistent snapshot of the database) to tamper with."""
    if not isinstance(world.db_path(), Path):
        pytest.skip("these tamper with the SQLite file; tests/test_pg_store.py tampers on PostgreSQL")
    home = tmp_path / "home"
    shutil.copytree(world.home_dir, home, ignore=shutil.ignore_patterns("yinxin.db*"))
    source, target = sqlite3.connect(world.db_path()), sqlite3.connect(home / "yinxin.db")
    source.backup(target)
    source.close(), target.close()
    return home


def verify_cli(home: Path):  # type: ignore[no-untyped-def]
    return yinxin(home, "audit", "verify")


def test_session_verifies(world: World) -> None:
    log = events(world)
    actions = {a for _, a, _ in log}
    assert {"ca.init", "application.submit", "application.approve", "application.reject", "certificate.signing",
            "certificate.signed", "certificate.issued", "certificate.hold", "certificate.release",
            "certificate.revoke", "crl.full"} <= actions
    assert len(log) > audit.CHECKPOINT_INTERVAL        # enough for a periodic checkpoint, not just ca.init's
    result = yinxin(world.home_dir, "audit", "verify", "--json")
    assert result.code == 0, result
    report = result.json()
    assert report["ok"] is True and report["events"] == len(log) and report["problems"] == []
    assert report["checkpoints"] >= 3


def test_every_operation_leaves_an_event(world: World) -> None:
    rows = sql(world.db_path(), "SELECT actor, action, target, at FROM audit_events WHERE action LIKE 'certificate.%'")
    assert all(actor and target and at for actor, _, target, at in rows)
    approvals = sql(world.db_path(), "SELECT actor FROM audit_events WHERE action='application.approve'")
    assert {a for (a,) in approvals} == {"bob"}


def test_edited_event_is_named(copy: Path) -> None:
    seq, action, target = events(copy)[12]
    sql(copy / "yinxin.db", "UPDATE audit_events SET details = replace(details, '}', ',\"x\":1}') WHERE seq=?", (seq,))
    line = assert_one_line_error(verify_cli(copy), "audit log does not verify")
    assert f"event {seq} ({action} {target}) was edited" in line


def test_edited_actor_is_named(copy: Path) -> None:
    seq = sql(copy / "yinxin.db", "SELECT min(seq) FROM audit_events WHERE action='application.approve'")[0][0]
    sql(copy / "yinxin.db", "UPDATE audit_events SET actor='alice' WHERE seq=?", (seq,))
    assert _library_verify(copy)[seq].startswith(f"event {seq} (application.approve")


def test_deleted_event_is_named(copy: Path) -> None:
    sql(copy / "yinxin.db", "DELETE FROM audit_events WHERE seq=20")
    assert "event(s) 20 deleted before event 21" in assert_one_line_error(verify_cli(copy))


def test_deleted_last_events_are_noticed(copy: Path) -> None:
    last = events(copy)[-1][0]
    sql(copy / "yinxin.db", "DELETE FROM audit_events WHERE seq>=?", (last - 1,))
    assert f"the log ends at event {last - 2} but {last} events were written" in _library_verify(copy)[last]


def test_swapped_events_are_named(copy: Path) -> None:
    db = copy / "yinxin.db"
    sql(db, "UPDATE audit_events SET seq=-1 WHERE seq=30")
    sql(db, "UPDATE audit_events SET seq=30 WHERE seq=31")
    sql(db, "UPDATE audit_events SET seq=31 WHERE seq=-1")
    result = yinxin(copy, "audit", "verify", "--json")
    assert result.code != 0
    problems = {p["seq"]: p["problem"] for p in result.json()["problems"]}
    assert set(problems) == {30, 31}
    assert problems[30].startswith("event 30 (") and "was written as event 31: events were reordered" in problems[30]
    assert problems[31].startswith("event 31 (") and "was written as event 30: events were reordered" in problems[31]
    line = assert_one_line_error(result)          # with --json, stderr still has the one-line message
    assert "event 30 (" in line and "event 31 (" in line


def test_rewritten_history_is_caught_by_the_signed_checkpoint(copy: Path) -> None:
    """Someone who edits an event and recomputes every later hash still cannot re-sign the checkpoints."""
    db = copy / "yinxin.db"
    target = 5
    sql(db, "UPDATE audit_events SET actor='mallory' WHERE seq=?", (target,))
    con = sqlite3.connect(db, isolation_level=None)
    rows = con.execute("SELECT seq, at, actor, action, target, details, result_digest FROM audit_events "
                       "ORDER BY seq").fetchall()
    prev = audit.GENESIS
    for seq, at, actor, action, tgt, details, digest in rows:
        when = datetime.fromisoformat(at).replace(tzinfo=timezone.utc)
        new_hash = audit._event_hash(seq, when, actor, action, tgt, details, digest, prev)
        con.execute("UPDATE audit_events SET prev_hash=?, hash=? WHERE seq=?", (prev, new_hash, seq))
        prev = new_hash
    con.execute("UPDATE audit_head SET last_hash=?", (prev,))
    con.close()
    problems = _library_verify(copy)
    assert not any("was edited" in p for p in problems.values())   # the chain itself is consistent again …
    assert problems and all("does not match the log (history rewritten)" in p   # … but the checkpoints are not
                            for p in problems.values())


def test_forged_checkpoint_signature(copy: Path) -> None:
    db = copy / "yinxin.db"
    seq, signature = sql(db, "SELECT seq, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")[0]
    forged = bytearray(signature)
    forged[len(forged) // 2] ^= 0x40
    sql(db, "UPDATE audit_checkpoints SET signature=? WHERE seq=?", (bytes(forged), seq))
    assert f"checkpoint at event {seq} has a bad signature" in assert_one_line_error(verify_cli(copy))


def test_checkpoint_by_unknown_ca(copy: Path) -> None:
    db = copy / "yinxin.db"
    seq = sql(db, "SELECT max(seq) FROM audit_checkpoints")[0][0]
    sql(db, "UPDATE audit_checkpoints SET ca_name='ghost' WHERE seq=?", (seq,))
    assert "signed by unknown CA ghost" in _library_verify(copy)[seq]


@pytest.mark.parametrize("ca,digest", [("ec", "sha256"), ("rsa", "sha256")])
def test_checkpoint_signatures_verify_with_openssl(world: World, tmp_path: Path, ca: str, digest: str) -> None:
    """A checkpoint signs 'yinxin-audit-checkpoint|seq|event hash|time|CA' with the CA key."""
    rows = sql(world.db_path(), "SELECT seq, event_hash, at, signature FROM audit_checkpoints WHERE ca_name=?", (ca,))
    assert rows
    pub = tmp_path / "pub.pem"
    pub.write_bytes(openssl("x509", "-in", world.ca_pem(ca), "-noout", "-pubkey").stdout)
    for seq, event_hash, at, signature in rows:
        assert sql(world.db_path(), "SELECT hash FROM audit_events WHERE seq=?", (seq,))[0][0] == event_hash
        when = datetime.fromisoformat(at).replace(tzinfo=timezone.utc)
        message = tmp_path / "msg"
        message.write_bytes(f"yinxin-audit-checkpoint|{seq}|{event_hash}|{when.isoformat()}|{ca}".encode())
        sig = tmp_path / "sig"
        sig.write_bytes(signature)
        proc = openssl("dgst", f"-{digest}", "-verify", pub, "-signature", sig, message, check=False)
        assert b"Verified OK" in proc.stdout, proc


def test_library_report_matches_cli(world: World) -> None:
    infos = {i.name: i for i in world.authority.cas()}
    report = audit.verify(world.home.store, lambda n: (infos[n].public_key(), infos[n].distid) if n in infos else None)
    assert report.ok and report.events == len(events(world))


def _library_verify(home: Path) -> dict[int, str]:
    from pki.ca import CertificateAuthority
    from pki.home import Home
    authority = CertificateAuthority(Home.open(home, clock=fixed_clock()))
    infos = {i.name: i for i in authority.cas()}
    report = audit.verify(authority.home.store,
                          lambda n: (infos[n].public_key(), infos[n].distid) if n in infos else None)
    return {p.seq: p.problem for p in report.problems}


def test_distant_swap_and_moved_then_edited(copy: Path) -> None:
    db = copy / "yinxin.db"
    sql(db, "UPDATE audit_events SET seq=-1 WHERE seq=25")
    sql(db, "UPDATE audit_events SET seq=25 WHERE seq=40")
    sql(db, "UPDATE audit_events SET seq=40 WHERE seq=-1")
    problems = _library_verify(copy)
    assert "written as event 40" in problems[25] and "written as event 25" in problems[40]
    # the moved events are named, not their neighbours whose links they broke
    assert set(problems) == {25, 40}
    sql(db, "UPDATE audit_events SET target='ec:0' WHERE seq=25")
    assert _library_verify(copy)[25].endswith("was edited")
