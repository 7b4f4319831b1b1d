"""The registration authority: application states, separation of duties, one person one
certificate (一人一证) in code and as a database constraint, keys generated here, evidence."""
from __future__ import annotations

import hashlib
import stat
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pki.errors import Conflict, NotFound, PolicyError, StateError
from pki.store import certificates

from ca_helpers import (KEY_PASSWORD, PASSWORD, World, apply_and_issue, db_snapshot, fixed_clock, openssl,
                        openssl_out)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("ra") / "home", tmp_path_factory.mktemp("ra-files"), fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    w.init_ca("sm2", "sm2")
    return w


_ids = iter(range(110101199001010000, 110101199001019999))


def person_id() -> str:
    return str(next(_ids))


def apply_person(world: World, id_number: str, *, applicant: str = "alice", name: str = "张三"):  # type: ignore[no-untyped-def]
    out = world.files / f"key-{id_number}-{len(list(world.files.iterdir()))}.pem"
    return world.ra.apply(ca="ec", profile="person", subject=f"/C=CN/CN={name}", actor=world.person(applicant),
                          id_number=id_number, generate_key_out=out, key_password=KEY_PASSWORD)


def test_submitted_approved_issued(world: World) -> None:
    app = apply_person(world, person_id())
    assert app.state == "submitted" and app.decided_by is None and app.kind == "new"
    approved = world.ra.approve(app.id, actor=world.officer("bob"), comment="documents checked")
    assert (approved.state, approved.decided_by, approved.decision_comment) == ("approved", "bob",
                                                                                "documents checked")
    issued = world.authority.issue(app.id, password=PASSWORD, actor=world.op)
    after = world.ra.get(app.id)
    assert after.state == "issued" and after.issued_serial == issued.record.serial
    assert issued.record.application_id == app.id and issued.record.status == "issued"


def test_submitted_rejected_is_final(world: World) -> None:
    app = apply_person(world, person_id())
    with pytest.raises(PolicyError, match="needs a reason"):
        world.ra.reject(app.id, actor=world.officer("bob"), reason="  ")
    rejected = world.ra.reject(app.id, actor=world.officer("bob"), reason="ID card photo unreadable")
    assert rejected.state == "rejected" and rejected.decision_comment == "ID card photo unreadable"
    before = db_snapshot(world.db_path())
    with pytest.raises(StateError, match="is rejected"):
        world.ra.approve(app.id, actor=world.officer("carol"))
    with pytest.raises(StateError, match="is rejected"):
        world.authority.issue(app.id, password=PASSWORD, actor=world.op)
    assert db_snapshot(world.db_path()) == before


def test_approver_is_never_the_applicant(world: World) -> None:
    app = apply_person(world, person_id(), applicant="alice")
    before = db_snapshot(world.db_path())
    with pytest.raises(PolicyError, match="separation of duties") as info:
        world.ra.approve(app.id, actor=world.officer("alice"))
    assert info.value.data["application"] == app.id
    with pytest.raises(PolicyError, match="separation of duties"):
        world.ra.reject(app.id, actor=world.officer("alice"), reason="changed my mind")
    assert db_snapshot(world.db_path()) == before
    assert world.ra.approve(app.id, actor=world.officer("bob")).state == "approved"


def test_decisions_happen_once(world: World) -> None:
    app = apply_person(world, person_id())
    world.ra.approve(app.id, actor=world.officer("bob"))
    with pytest.raises(StateError, match="only a submitted application"):
        world.ra.approve(app.id, actor=world.officer("carol"))
    # an approved application not yet issued can be withdrawn; then nothing more is decided or issued
    assert world.ra.reject(app.id, actor=world.officer("carol"), reason="evidence withdrawn").state == "rejected"
    with pytest.raises(StateError, match="only a submitted or approved application"):
        world.ra.reject(app.id, actor=world.officer("dave"), reason="again")
    with pytest.raises(StateError, match="only an approved application is issued"):
        world.authority.issue(app.id, password=PASSWORD, actor=world.op)


def test_issuing_unapproved_or_issued_application_refused(world: World) -> None:
    app = apply_person(world, person_id())
    before = db_snapshot(world.db_path())
    with pytest.raises(StateError, match="only an approved application is issued") as info:
        world.authority.issue(app.id, password=PASSWORD, actor=world.op)
    assert info.value.data == {"application": app.id, "state": "submitted"}
    assert db_snapshot(world.db_path()) == before
    world.ra.approve(app.id, actor=world.officer("bob"))
    world.authority.issue(app.id, password=PASSWORD, actor=world.op)
    before = db_snapshot(world.db_path())
    with pytest.raises(StateError, match="is issued"):
        world.authority.issue(app.id, password=PASSWORD, actor=world.op)
    assert db_snapshot(world.db_path()) == before


def test_unknown_application(world: World) -> None:
    with pytest.raises(NotFound, match="no application 999999"):
        world.ra.approve(999999, actor=world.officer("bob"))


def test_one_person_one_certificate(world: World) -> None:
    id_number = person_id()
    first = apply_person(world, id_number)
    # a second application while the first is pending is refused, naming it
    with pytest.raises(Conflict, match=f"pending person application {first.id}"):
        apply_person(world, id_number, name="张三 second")
    world.ra.approve(first.id, actor=world.officer("bob"))
    issued = world.authority.issue(first.id, password=PASSWORD, actor=world.op)
    serial = issued.record.serial.upper()
    before = db_snapshot(world.db_path())
    # … and once issued, the message names the existing serial
    with pytest.raises(Conflict, match=f"serial {serial}") as info:
        apply_person(world, id_number)
    assert info.value.data["serial"] == serial and info.value.data["id_number"] == id_number
    assert db_snapshot(world.db_path()) == before
    # a held certificate is still active
    world.authority.hold(serial, actor=world.op)
    with pytest.raises(Conflict, match=serial):
        apply_person(world, id_number)
    # the rule is per usage: the same person may hold a seal certificate
    seal_key = world.files / f"seal-{id_number}.pem"
    world.ra.apply(ca="ec", profile="seal", subject="/C=CN/O=某单位/CN=某单位合同章", actor=world.person("alice"),
                   id_number=id_number, generate_key_out=seal_key, key_password=KEY_PASSWORD)
    # after revocation a new application is accepted and can be issued
    world.authority.revoke(serial, reason="keyCompromise", actor=world.op)
    again = apply_person(world, id_number)
    world.ra.approve(again.id, actor=world.officer("bob"))
    assert world.authority.issue(again.id, password=PASSWORD, actor=world.op).record.status == "issued"


def test_one_person_one_certificate_ends_with_expiry(tmp_path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    world.init_ca("ec", "ecdsa-p256")
    id_number = person_id()
    old = apply_and_issue(world, ca="ec", profile="person", subject="/CN=李四", id_number=id_number,
                          generate_key_out=world.files / "k1.pem")
    with pytest.raises(Conflict):
        apply_person(world, id_number)
    world.clock.set(old.record.not_after + timedelta(seconds=1))
    app = apply_person(world, id_number)
    world.ra.approve(app.id, actor=world.officer("bob"))
    assert world.authority.issue(app.id, password=PASSWORD, actor=world.op).record.status == "issued"


def test_one_active_certificate_is_a_database_constraint(world: World) -> None:
    """Bypass the RA: inserting a second active row for the same person and usage fails in the database."""
    id_number = person_id()
    issued = apply_and_issue(world, ca="ec", profile="person", subject="/CN=王五", id_number=id_number,
                             generate_key_out=world.files / f"k-{id_number}.pem")
    ca_id = world.authority.get("ec").id
    now = world.clock.now()
    with world.home.store.engine.connect() as conn:
        row = dict(conn.execute(sa.select(certificates).where(
            certificates.c.serial == issued.record.serial)).mappings().one())
    assert row["active_key"] == f"{id_number}|person"
    before = db_snapshot(world.db_path())
    with pytest.raises(IntegrityError, match="active_key"):
        with world.home.store.engine.begin() as conn:
            conn.execute(certificates.insert().values(
                ca_id=ca_id, serial="1234567890abcdef1", profile="person", subject="CN=王五",
                id_number=id_number, active_key=row["active_key"], public_key_fp="00" * 32,
                not_before=now, not_after=now + timedelta(days=1), status="issued", tbs_der=b"\x30\x00",
                status_changed_at=now, retention_years=5, created_at=now))
    assert db_snapshot(world.db_path()) == before


@pytest.mark.parametrize("algorithm", ["rsa2048", "ecdsa-p256", "sm2"])
def test_generated_key_is_encrypted_and_opens_in_openssl(world: World, algorithm: str) -> None:
    key_out = world.files / f"generated-{algorithm}.pem"
    issued = apply_and_issue(world, ca="ec", profile="organization", subject=f"/O=印信测试/CN=gen {algorithm}",
                             generate_key_out=key_out, key_algorithm=algorithm)
    assert stat.S_IMODE(key_out.stat().st_mode) == 0o600
    text = key_out.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    password_file = world.files / "key-password.txt"
    password_file.write_bytes(KEY_PASSWORD + b"\n")
    # OpenSSL opens it with the password only, and it is the key the certificate certifies
    public = openssl_out("pkey", "-in", key_out, "-passin", f"file:{password_file}", "-pubout")
    leaf = world.write_cert(issued, f"generated-{algorithm}")
    assert public == openssl_out("x509", "-in", leaf, "-noout", "-pubkey")
    wrong = world.files / "wrong-password.txt"
    wrong.write_bytes(b"not the password\n")
    assert openssl("pkey", "-in", key_out, "-passin", f"file:{wrong}", "-noout", check=False).returncode != 0
    app = world.ra.get(issued.record.application_id)
    assert app.key_generated


def test_generated_key_needs_a_password_and_a_free_path(world: World) -> None:
    before = db_snapshot(world.db_path())
    with pytest.raises(PolicyError, match="key password is needed"):
        world.ra.apply(ca="ec", profile="organization", subject="/O=x/CN=y", actor=world.person("alice"),
                       generate_key_out=world.files / "nopw.pem", key_password=None)
    assert not (world.files / "nopw.pem").exists()
    existing = world.files / "existing.pem"
    existing.write_text("precious")
    with pytest.raises(PolicyError, match="not overwriting"):
        world.ra.apply(ca="ec", profile="organization", subject="/O=x/CN=y", actor=world.person("alice"),
                       generate_key_out=existing, key_password=KEY_PASSWORD)
    assert existing.read_text() == "precious"
    assert db_snapshot(world.db_path()) == before


def test_refused_application_leaves_no_generated_key(world: World) -> None:
    """一人一证 refuses before a key is generated: no orphan key file for a refused application."""
    id_number = person_id()
    apply_and_issue(world, ca="ec", profile="person", subject="/CN=赵六", id_number=id_number,
                    generate_key_out=world.files / f"first-{id_number}.pem")
    second = world.files / f"second-{id_number}.pem"
    with pytest.raises(Conflict):
        world.ra.apply(ca="ec", profile="person", subject="/CN=赵六", actor=world.person("alice"), id_number=id_number,
                       generate_key_out=second, key_password=KEY_PASSWORD)
    assert not second.exists()


def test_evidence_is_stored_and_digested(world: World) -> None:
    scan = world.files / "身份证.jpg"
    scan.write_bytes(b"\xff\xd8\xff\xe0 pretend JPEG " * 100)
    letter = world.files / "letter.pdf"
    letter.write_bytes(b"%PDF-1.7 unit letter with seal")
    app = world.ra.apply(ca="ec", profile="organization", subject="/O=某单位/CN=某单位", actor=world.person("alice"),
                         generate_key_out=world.files / "ev.pem", key_password=KEY_PASSWORD,
                         evidence_files=[scan, letter])
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (scan, letter)}
    assert dict(app.evidence) == digests
    for name, digest in digests.items():
        stored = world.home_dir / "evidence" / digest
        assert stored.read_bytes() == (world.files / name).read_bytes()
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    # the audit event of the submission carries the digests too
    from ca_helpers import sql
    details = sql(world.db_path(), "SELECT details FROM audit_events WHERE action='application.submit' "
                                   "AND target=?", (f"application:{app.id}",))[0][0]
    assert all(d in details for d in digests.values())


def test_missing_evidence_file_refused(world: World) -> None:
    before = db_snapshot(world.db_path())
    with pytest.raises(PolicyError, match="cannot read evidence file"):
        world.ra.apply(ca="ec", profile="organization", subject="/O=x/CN=y", actor=world.person("alice"),
                       generate_key_out=world.files / "ev-missing.pem", key_password=KEY_PASSWORD,
                       evidence_files=[world.files / "does-not-exist.pdf"])
    assert db_snapshot(world.db_path()) == before
    assert not (world.files / "ev-missing.pem").exists()


def test_profile_rules_on_application(world: World) -> None:
    before = db_snapshot(world.db_path())
    cases = [
        (dict(profile="person", subject="/CN=x"), PolicyError, "requires an identity number"),
        (dict(profile="organization", subject="/CN=x"), PolicyError, "requires subject attribute(s) O"),
        (dict(profile="organization", subject="/O=x/CN=y", id_number="123"), PolicyError, "takes no identity"),
        (dict(profile="person", subject="/CN=x/UID=u", id_number="1"), PolicyError, "does not allow subject"),
        (dict(profile="subca", subject="/CN=x"), PolicyError, "is for CAs"),
        (dict(profile="nope", subject="/CN=x"), NotFound, "unknown profile 'nope'"),
        (dict(profile="person", subject="/CN=x", id_number="12-34"), PolicyError, "letters and digits"),
        (dict(profile="person", subject="/CN=x", id_number="1", ca="nope"), NotFound, "no CA named 'nope'"),
        (dict(profile="person", subject="/CN=x", id_number="1", applicant=" "), PolicyError, "needs an applicant"),
    ]
    for kwargs, error, message in cases:
        kwargs = {"ca": "ec", "actor": world.op, "applicant": "alice", **kwargs}   # filed by an RA officer
        out = world.files / "never-written.pem"
        with pytest.raises(error) as info:
            world.ra.apply(generate_key_out=out, key_password=KEY_PASSWORD, **kwargs)
        assert message in info.value.message, (kwargs, info.value.message)
        assert not out.exists()
    assert db_snapshot(world.db_path()) == before


def test_ca_may_be_left_out_only_when_unambiguous(tmp_path: Path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    with pytest.raises(NotFound, match="no CA yet"):
        world.ra.apply(ca=None, profile="organization", subject="/O=x/CN=y", actor=world.person("alice"),
                       generate_key_out=world.files / "a.pem", key_password=KEY_PASSWORD)
    world.init_ca("only", "ecdsa-p256")
    app = world.ra.apply(ca=None, profile="organization", subject="/O=x/CN=y", actor=world.person("alice"),
                         generate_key_out=world.files / "b.pem", key_password=KEY_PASSWORD)
    assert app.ca == "only"
    world.init_ca("second", "ecdsa-p256")
    with pytest.raises(PolicyError, match="several CAs"):
        world.ra.apply(ca=None, profile="organization", subject="/O=x/CN=y", actor=world.person("alice"),
                       generate_key_out=world.files / "c.pem", key_password=KEY_PASSWORD)
    # … unless the home's configuration names a default
    with (world.home_dir / "config.yaml").open("a", encoding="utf-8") as config:   # beside a database: line
        config.write("default_ca: second\n")
    configured = World(world.home_dir, world.files, world.clock)
    app = configured.ra.apply(ca=None, profile="organization", subject="/O=x/CN=y", actor=configured.person("alice"),
                              generate_key_out=world.files / "d.pem", key_password=KEY_PASSWORD)
    assert app.ca == "second" and configured.authority.get().name == "second"


@pytest.mark.parametrize("san", [("dns", "not a host!"), ("ip", "999.1.1.1"), ("email", "nobody"),
                                 ("uri", "no scheme"), ("dns", "")])
def test_invalid_subject_alt_name_refused_on_application(world: World, san: tuple[str, str]) -> None:
    """Refused when applying — not after approval, when the certificate would be built."""
    from pki.errors import CertificateError
    before = db_snapshot(world.db_path())
    with pytest.raises(CertificateError, match="subject alternative name") as info:
        world.ra.apply(ca="ec", profile="server", subject="/CN=www.yinxin.test", actor=world.person("alice"),
                       generate_key_out=world.files / "san.pem", key_password=KEY_PASSWORD, subject_alt_names=[san])
    assert info.value.data["field"] == "subject_alt_names"
    assert db_snapshot(world.db_path()) == before and not (world.files / "san.pem").exists()
