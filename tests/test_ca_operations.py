"""CA operations: renew (same key, inside the window), re-key, hold → release → revoke and the
illegal transitions, unknown names, serial numbers, and the issuance cycle's store-before-sign."""
from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from sqlalchemy.exc import IntegrityError

from pki.ca import CLOCK_SKEW_ALLOWANCE
from pki.algorithms import PrivateKey, generate_key
from pki.errors import CertificateError, NotFound, PolicyError, StateError
from pki.store import certificates
from pki.x509 import build_csr, csr_to_pem, parse_name

from ca_helpers import (PASSWORD, DyingKey, PowerFailure, World, apply_and_issue, db_snapshot, fixed_clock,
                        openssl_out, sql)


def _csr(subject: str, algorithm: str = "ecdsa-p256") -> tuple[PrivateKey, bytes]:
    key = generate_key(algorithm)
    return key, csr_to_pem(build_csr(parse_name(subject), key))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("ops") / "home", tmp_path_factory.mktemp("ops-files"), fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    w.init_ca("rsa", "rsa2048")
    return w


def _issue(world: World, cn: str, *, ca: str = "ec", profile: str = "organization", **kw):  # type: ignore[no-untyped-def]
    subject = f"/O=印信测试/CN={cn}" if profile != "person" else f"/CN={cn}"
    _, csr = _csr(subject)
    return apply_and_issue(world, ca=ca, profile=profile, subject=subject, csr=csr, **kw)


def _attime(world: World) -> str:
    return str(int(world.clock.now().timestamp()))


# --------------------------------------------------------------------------- renew / re-key

def test_renew_inside_window_keeps_the_key(tmp_path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    world.init_ca("ec", "ecdsa-p256")
    old = _issue(world, "renew me", ca="ec")
    window = world.home.profiles.get("organization").renewal_window_days
    # one day before the window opens: refused, nothing changes
    world.clock.set(old.record.not_after - timedelta(days=window + 1))
    before = db_snapshot(world.db_path())
    with pytest.raises(StateError, match=f"renewal window {window} days") as info:
        world.authority.renew(old.record.serial, password=PASSWORD, actor=world.op)
    assert info.value.data["serial"] == old.record.serial.upper()
    assert db_snapshot(world.db_path()) == before
    # inside the window: a new certificate for the same key; the old one is superseded
    world.clock.set(old.record.not_after - timedelta(days=window - 1))
    new = world.authority.renew(old.record.serial.upper(), password=PASSWORD, actor=world.op)
    assert new.record.serial != old.record.serial
    assert new.record.public_key_fp == old.record.public_key_fp
    assert new.record.predecessor_serial == old.record.serial
    assert new.record.not_before == world.clock.now() - CLOCK_SKEW_ALLOWANCE
    superseded = world.authority.show(old.record.serial)
    assert (superseded.status, superseded.revocation_reason) == ("revoked", "superseded")
    assert world.ra.get(new.record.application_id).kind == "renew"
    # OpenSSL: same public key, and the new certificate verifies at the renewal time
    old_pem, new_pem = world.write_cert(old, "old"), world.write_cert(new, "new")
    assert openssl_out("x509", "-in", old_pem, "-noout", "-pubkey") == \
        openssl_out("x509", "-in", new_pem, "-noout", "-pubkey")
    assert f"{new_pem}: OK" in openssl_out("verify", "-attime", _attime(world), "-CAfile",
                                           world.ca_pem("ec"), new_pem)
    # a superseded certificate is not renewed again
    with pytest.raises(StateError, match="is revoked"):
        world.authority.renew(old.record.serial, password=PASSWORD, actor=world.op)


def test_renew_after_expiry_refused(tmp_path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    world.init_ca("ec", "ecdsa-p256")
    old = _issue(world, "expired", ca="ec")
    world.clock.set(old.record.not_after + timedelta(seconds=1))
    before = db_snapshot(world.db_path())
    with pytest.raises(StateError, match="expired"):
        world.authority.renew(old.record.serial, password=PASSWORD, actor=world.op)
    assert db_snapshot(world.db_path()) == before


def test_renewal_moves_the_one_person_slot(tmp_path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    world.init_ca("ec", "ecdsa-p256")
    old = _issue(world, "孙七", ca="ec", profile="person", id_number="110101199001010077")
    world.clock.set(old.record.not_after - timedelta(days=10))
    new = world.authority.renew(old.record.serial, password=PASSWORD, actor=world.op)
    assert new.record.id_number == "110101199001010077"
    from pki.errors import Conflict
    with pytest.raises(Conflict, match=f"serial {new.record.serial.upper()}"):
        _issue(world, "孙七", ca="ec", profile="person", id_number="110101199001010077")


def test_rekey_with_a_new_csr(world: World) -> None:
    old = _issue(world, "rekey me")
    new_key, new_csr = _csr("/O=印信测试/CN=rekey me")
    # re-keying is not bound to the renewal window (a key may be compromised at any time)
    new = world.authority.renew(old.record.serial, password=PASSWORD, csr=new_csr, actor=world.op)
    assert new.record.public_key_fp == new_key.public_key().fingerprint() != old.record.public_key_fp
    assert world.ra.get(new.record.application_id).kind == "rekey"
    assert world.authority.show(old.record.serial).revocation_reason == "superseded"
    pem = world.write_cert(new, "rekeyed")
    assert f"{pem}: OK" in openssl_out("verify", "-attime", _attime(world), "-CAfile", world.ca_pem("ec"), pem)


def test_rekey_refuses_same_key_and_broken_csr(world: World) -> None:
    key, csr = _csr("/O=印信测试/CN=same key")
    issued = apply_and_issue(world, ca="ec", profile="organization", subject="/O=印信测试/CN=same key", csr=csr)
    before = db_snapshot(world.db_path())
    with pytest.raises(PolicyError, match="current key"):
        world.authority.renew(issued.record.serial, password=PASSWORD, csr=csr, actor=world.op)
    with pytest.raises(CertificateError):
        world.authority.renew(issued.record.serial, password=PASSWORD, csr=b"-----BEGIN CERTIFICATE REQUEST-----\n",
                              actor=world.op)
    assert db_snapshot(world.db_path()) == before


def test_sub_ca_certificate_is_not_renewed_as_an_end_entity(tmp_path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    world.init_ca("root", "ecdsa-p256")
    sub = world.init_ca("sub", "ecdsa-p256", parent="root", days=100)
    record = world.authority.show(sub.serial, ca="root")
    assert record.profile == "subca" and record.status == "issued"
    world.clock.set(record.not_after - timedelta(days=10))          # inside the subca renewal window
    before = db_snapshot(world.db_path())
    _, csr = _csr("/C=CN/O=印信测试/CN=sub CA")
    for kwargs in ({}, {"csr": csr}):
        with pytest.raises(PolicyError, match="profile subca is for CA certificates"):
            world.authority.renew(sub.serial, password=PASSWORD, ca="root", **kwargs, actor=world.op)
    assert db_snapshot(world.db_path()) == before


# --------------------------------------------------------------------------- hold / release / revoke

def test_hold_release_revoke(world: World) -> None:
    serial = _issue(world, "hold me").record.serial
    held = world.authority.hold(serial, actor=world.officer("carol"))
    assert (held.status, held.revocation_reason, held.revoked_at) == ("held", "certificate_hold", world.clock.now())
    world.clock.advance(timedelta(hours=1))
    released = world.authority.release(serial, actor=world.op)
    assert (released.status, released.revocation_reason, released.revoked_at) == ("issued", None, None)
    assert released.released_at == world.clock.now()
    world.clock.advance(timedelta(hours=1))
    world.authority.hold(serial, actor=world.op)
    revoked = world.authority.revoke(serial, reason="key-compromise",
                                     actor=world.op)   # a held certificate can be revoked
    assert (revoked.status, revoked.revocation_reason) == ("revoked", "key_compromise")
    actions = [r[0] for r in sql(world.db_path(), "SELECT action FROM audit_events WHERE target=? ORDER BY seq",
                                 (f"ec:{serial}",))]
    assert actions[-5:] == ["certificate.issued", "certificate.hold", "certificate.release",
                            "certificate.hold", "certificate.revoke"]


ILLEGAL = [
    ("revoked", "release", "cannot release it"),
    ("revoked", "hold", "cannot hold it"),
    ("revoked", "revoke", "cannot revoke it"),
    ("issued", "release", "cannot release it"),
    ("held", "hold", "cannot hold it"),
]


@pytest.mark.parametrize("state,operation,message", ILLEGAL, ids=[f"{o}-{s}" for s, o, _ in ILLEGAL])
def test_illegal_transitions_change_nothing(world: World, state: str, operation: str, message: str) -> None:
    serial = _issue(world, f"{operation} {state}").record.serial
    if state in ("held", "revoked"):
        world.authority.hold(serial, actor=world.op)
    if state == "revoked":
        world.authority.revoke(serial, reason="superseded", actor=world.op)
    before = db_snapshot(world.db_path())
    kwargs = {"reason": "unspecified"} if operation == "revoke" else {}
    with pytest.raises(StateError, match=message) as info:
        getattr(world.authority, operation)(serial, actor=world.op, **kwargs)
    assert info.value.data == {"serial": serial.upper(), "status": state}
    assert db_snapshot(world.db_path()) == before


@pytest.mark.parametrize("reason,stored", [("keyCompromise", "key_compromise"), ("superseded", "superseded"),
                                           ("cessation_of_operation", "cessation_of_operation"),
                                           ("affiliationChanged", "affiliation_changed"),
                                           ("privilegeWithdrawn", "privilege_withdrawn"),
                                           ("unspecified", "unspecified")])
def test_revocation_reasons(world: World, reason: str, stored: str) -> None:
    serial = _issue(world, f"reason {reason}").record.serial
    assert world.authority.revoke(serial, reason=reason, actor=world.op).revocation_reason == stored


def test_unknown_names_are_clear_errors(world: World) -> None:
    serial = _issue(world, "known").record.serial
    before = db_snapshot(world.db_path())
    with pytest.raises(NotFound, match="no certificate with serial ABCDEF0123456789"):
        world.authority.hold("ab:cd:ef:01:23:45:67:89", actor=world.op)
    with pytest.raises(NotFound, match="in CA rsa"):
        world.authority.hold(serial, ca="rsa", actor=world.op)
    with pytest.raises(NotFound, match="no CA named 'nope'"):
        world.authority.get("nope")
    with pytest.raises(NotFound, match="unknown profile 'nope'"):
        world.home.profiles.get("nope")
    with pytest.raises(PolicyError, match="not a hexadecimal serial"):
        world.authority.revoke("xyz", reason="unspecified", actor=world.op)
    with pytest.raises(PolicyError, match="unknown revocation reason 'lost'"):
        world.authority.revoke(serial, reason="lost", actor=world.op)
    with pytest.raises(PolicyError, match="positive"):
        world.authority.show("0")
    assert db_snapshot(world.db_path()) == before
    # serials are found in any spelling: upper, lower, colons, 0x
    pretty = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
    for spelling in (serial.upper(), serial.lower(), "0x" + serial, pretty):
        assert world.authority.show(spelling).serial == serial


def test_wrong_ca_password_changes_nothing(world: World) -> None:
    _, csr = _csr("/O=印信测试/CN=wrong password")
    app = world.ra.apply(ca="ec", profile="organization", subject="/O=印信测试/CN=wrong password",
                         actor=world.person("alice"), csr=csr)
    world.ra.approve(app.id, actor=world.officer("bob"))
    before = db_snapshot(world.db_path())
    from pki.errors import WrongPassword
    with pytest.raises(WrongPassword, match="wrong password for the key of CA ec"):
        world.authority.issue(app.id, password=b"not it", actor=world.op)
    assert db_snapshot(world.db_path()) == before


# --------------------------------------------------------------------------- serial numbers

def test_serials_random_positive_64_bits_unique(world: World) -> None:
    issued = [_issue(world, f"serial {i}", ca="rsa") for i in range(12)]
    serials = []
    for index, item in enumerate(issued):
        pem = world.write_cert(item, f"serial-{index}")
        text = openssl_out("x509", "-in", pem, "-noout", "-serial")     # OpenSSL reads the INTEGER
        serials.append(int(text.strip().split("=")[1], 16))
        der_serial = asn1_x509.Certificate.load(item.certificate.dump())["tbs_certificate"]["serial_number"]
        assert len(der_serial.contents) <= 20 and der_serial.contents[0] < 0x80      # positive, ≤ 20 octets
    assert all(s >= 1 << 64 for s in serials)
    assert len(set(serials)) == len(serials)
    # 64+ bits of entropy: the bits vary in every position below the top of the range drawn
    varying = 0
    for bit in range(64):
        varying += len({(s >> bit) & 1 for s in serials}) == 2
    assert varying >= 56   # 12 random draws leave a given bit constant with probability 2^-11


def test_serial_unique_per_ca_is_a_database_constraint(world: World) -> None:
    record = _issue(world, "duplicate").record
    ca_id = world.authority.get("ec").id
    now = world.clock.now()
    before = db_snapshot(world.db_path())
    with pytest.raises(IntegrityError, match="certificates.ca_id, certificates.serial|uq_certificates_ca_serial"):
        with world.home.store.engine.begin() as conn:
            conn.execute(certificates.insert().values(
                ca_id=ca_id, serial=record.serial, profile="organization", subject="CN=copy",
                public_key_fp="00" * 32, not_before=now, not_after=now + timedelta(days=1), status="issued",
                tbs_der=b"\x30\x00", status_changed_at=now, retention_years=5, created_at=now))
    assert db_snapshot(world.db_path()) == before
    # the same serial under another CA is a different certificate
    other_ca_id = world.authority.get("rsa").id
    with world.home.store.engine.begin() as conn:
        conn.execute(certificates.insert().values(
            ca_id=other_ca_id, serial=record.serial, profile="organization",
            subject="CN=other CA", public_key_fp="00" * 32, not_before=now, not_after=now + timedelta(days=1),
            status="reserved", tbs_der=b"\x30\x00", status_changed_at=now, retention_years=5, created_at=now))


class ScriptedRandom:
    """The OS CSPRNG, except that the next 16-octet draws (serials) are taken from a script."""

    def __init__(self) -> None:
        self.script: list[bytes] = []

    def token_bytes(self, n: int) -> bytes:
        if n == 16 and self.script:
            return self.script.pop(0)
        return os.urandom(n)

    def randbelow(self, n: int) -> int:
        return int.from_bytes(os.urandom(32), "big") % n


def test_serial_collision_draws_again(tmp_path) -> None:
    from pki.ca import CertificateAuthority
    from pki.home import Home
    rand = ScriptedRandom()
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    world.home = Home.open(world.home_dir, clock=world.clock, rand=rand)
    world.authority = CertificateAuthority(world.home)
    world.init_ca("ec", "ecdsa-p256")
    same = bytes([0x5A]) * 16
    rand.script = [same]
    first = _issue(world, "first")
    rand.script = [same]
    second = _issue(world, "second")
    assert first.record.serial == f"{int.from_bytes(same, 'big') >> 1:x}"
    assert second.record.serial != first.record.serial
    # a draw below 2^64 is never used
    rand.script = [bytes(8) + b"\x01" * 8]
    third = _issue(world, "third")
    assert int(third.record.serial, 16) >= 1 << 64


# --------------------------------------------------------------------------- the issuance cycle

def test_tbs_stored_and_audited_before_signing(world: World) -> None:
    issued = _issue(world, "cycle")
    serial = issued.record.serial
    tbs_der = sql(world.db_path(), "SELECT tbs_der FROM certificates WHERE serial=?", (serial,))[0][0]
    assert tbs_der == issued.certificate["tbs_certificate"].dump()
    events = sql(world.db_path(), "SELECT seq, action, details, result_digest FROM audit_events "
                                  "WHERE target=? ORDER BY seq", (f"ec:{serial}",))
    assert [e[1] for e in events] == ["certificate.signing", "certificate.signed", "certificate.issued"]
    assert json.loads(events[0][2])["tbs_sha256"] == hashlib.sha256(tbs_der).hexdigest()
    assert events[1][3] == events[2][3] == hashlib.sha256(issued.certificate.dump()).hexdigest()


def test_crash_while_signing_leaves_a_revocable_reservation(tmp_path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    world.init_ca("ec", "ecdsa-p256")
    _, csr = _csr("/CN=周八")
    app = world.ra.apply(ca="ec", profile="person", subject="/CN=周八", actor=world.person("alice"),
                         id_number="110101199001010088", csr=csr)
    world.ra.approve(app.id, actor=world.officer("bob"))
    ca = world.authority.get("ec")
    with pytest.raises(PowerFailure):
        world.authority._issue(ca, DyingKey(world.key("ec")), world.ra.get(app.id),
                               world.home.profiles.get("person"), "operator")
    reserved = world.authority.check()
    assert len(reserved) == 1 and reserved[0].status == "reserved" and reserved[0].cert_der is None
    serial = reserved[0].serial
    assert sql(world.db_path(), "SELECT tbs_der IS NOT NULL FROM certificates WHERE serial=?", (serial,)) == [(1,)]
    assert world.ra.get(app.id).state == "approved"
    with pytest.raises(StateError, match="never recorded as issued"):
        world.authority.certificate_der(serial)
    # what may have been signed can be revoked, and then appears on the CRL
    revoked = world.authority.revoke(serial, reason="unspecified", actor=world.op)
    assert revoked.status == "revoked"
    assert world.authority.check() == []
    from pki.status import generate_crl
    crl = generate_crl(world.authority, ca, world.key("ec"), actor=world.op)
    assert crl.entries == 1
    # the serial is never reused, and the application can still be issued under a new one
    issued = world.authority.issue(app.id, password=PASSWORD, actor=world.op)
    assert issued.record.serial != serial


def test_issue_refused_once_ca_expired(tmp_path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    world.init_ca("short", "ecdsa-p256", days=30)
    _, csr = _csr("/O=印信测试/CN=late")
    app = world.ra.apply(ca="short", profile="organization", subject="/O=印信测试/CN=late", actor=world.person("a"),
                         csr=csr)
    world.ra.approve(app.id, actor=world.officer("b"))
    # a certificate never outlives its CA
    issued = world.authority.issue(app.id, password=PASSWORD, actor=world.op)
    ca_not_after = world.authority.get("short").certificate["tbs_certificate"]["validity"]["not_after"].native
    assert issued.record.not_after == ca_not_after
    world.clock.set(ca_not_after + timedelta(seconds=1))
    _, csr = _csr("/O=印信测试/CN=too late")
    app = world.ra.apply(ca="short", profile="organization", subject="/O=印信测试/CN=too late", actor=world.person("a"),
                         csr=csr)
    world.ra.approve(app.id, actor=world.officer("b"))
    with pytest.raises(StateError, match="has expired"):
        world.authority.issue(app.id, password=PASSWORD, actor=world.op)


def test_reads_do_not_wait_for_a_writer(world: World) -> None:
    """In WAL mode a reader sees the last committed state while a write transaction is open
    (a CLI `list`, or an OCSP lookup, never waits for issuance)."""
    serial = _issue(world, "reader").record.serial
    with world.home.store.transaction() as conn:
        conn.execute(certificates.update().where(certificates.c.serial == serial).values(subject="CN=uncommitted"))
        assert world.authority.show(serial).subject == "CN=reader,O=印信测试"
        assert [r.serial for r in world.authority.list(subject="CN=reader")] == [serial]
    assert world.authority.show(serial).subject == "CN=uncommitted"


def test_list_show_stats(world: World) -> None:
    serial = _issue(world, "listed unique name").record.serial
    listed = world.authority.list(subject="listed unique name")
    assert [r.serial for r in listed] == [serial]
    assert world.authority.show(serial).to_dict()["serial"] == serial.upper()
    stats = world.authority.stats()
    assert stats["cas"]["ec"]["issued"] >= 1 and stats["applications"]["issued"] >= 1
    with pytest.raises(PolicyError, match="unknown status"):
        world.authority.list(status="lost")
    assert {r.status for r in world.authority.list(status="revoked")} == {"revoked"}

