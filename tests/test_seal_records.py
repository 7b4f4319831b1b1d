"""Seal records (seal.records.SealRegistry): creation of every seal type, the seal certificate and
the maker's SES_Seal judged by openssl, key protection (stored only encrypted), the password
rules (first-use change, failures counted and audited, lockout, unlock by another administrator),
usability (validity window, certificate status)."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from ca_helpers import VFY_DISTID, openssl
from pki.errors import NotFound, PolicyError, WrongPassword
from pki.x509 import certificate_to_pem
from seal.appearance import draw_seal
from seal.errors import (PasswordPolicyError, SealError, SealLocked, SealNotFound, SealPasswordError,
                         SealStateError)
from seal_support import (CA_PASSWORD, ORG, SEAL_INITIAL, SEAL_PASSWORD, WRONG_PASSWORD, audit_events,
                          cert_text, db_rows, files_containing, lib_world, openssl_verify_ses)

MAX_FAILURES = yaml.safe_load((Path(__file__).resolve().parent.parent / "policies" / "passwords.yaml")
                              .read_text(encoding="utf-8"))["max_failures"]
PNG_SIZE_MM = 38.0

# name, CA, type, label, expected label, diameter (mm; None: square personal seal)
TYPES = [
    ("bj-official", "sm2-root", "official", None, "", 42.0),
    ("bj-contract", "rsa-root", "contract", None, "合同专用章", 40.0),
    ("bj-finance", "ec-root", "finance", None, "财务专用章", 40.0),
    ("bj-archive", "sm2-seal-ca", "special", "档案专用章", "档案专用章", 40.0),
    ("zhang-san", "sm2-root", "personal", "张三", "张三", None),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = lib_world(tmp_path_factory.mktemp("seal-records") / "home")
    for name, ca, seal_type, label, _, _ in TYPES:
        w.make_seal(name, ca=ca, seal_type=seal_type, label=label, ready=False)
    w.tick(minutes=1)
    return w


def png_picture() -> bytes:
    from PIL import Image, ImageDraw
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((10, 10, 190, 190), outline=(230, 0, 0, 255), width=12)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def count(world, table: str) -> int:
    return db_rows(world.db, f"SELECT COUNT(*) FROM {table}")[0][0]


# --------------------------------------------------------------------------- creation

@pytest.mark.parametrize("name, ca, seal_type, label, expected_label, diameter", TYPES)
def test_every_seal_type_has_its_record_picture_and_window(world, name, ca, seal_type, label,
                                                           expected_label, diameter):
    record = world.registry.get(name)
    assert (record.seal_type, record.organisation, record.label, record.custodian, record.ca) == (
        seal_type, ORG, expected_label, "wang", ca)
    assert record.picture_kind == "vector" and record.picture_png is None
    if diameter is not None:
        assert (record.width_mm, record.height_mm) == (pytest.approx(diameter), pytest.approx(diameter))
    else:                                             # a personal seal is square
        assert record.width_mm == pytest.approx(record.height_mm) and 10 <= record.width_mm < 40
    drawing = record.drawing()
    assert drawing.width_pt == pytest.approx(record.width_mm * 72 / 25.4, abs=0.01)
    # the picture as drawn at creation is kept, exactly: stamping needs no font
    assert record.drawing_data is not None and drawing == draw_seal(record.spec())
    assert drawing.pdf_content() == draw_seal(record.spec()).pdf_content()
    cert = world.authority.show(record.cert_serial, ca=ca)
    assert cert.status == "issued" and cert.profile == "seal"
    assert record.valid_to - record.valid_from == timedelta(days=1095) or record.valid_to == cert.not_after
    assert record.valid_to <= cert.not_after
    assert record.must_change_password and record.failed_attempts == 0 and not record.locked
    assert record.created_by == "admin"
    created = audit_events(world.db, "seal.create", f"seal:{name}")
    assert len(created) == 1 and created[0]["details"]["certificate"] == record.cert_serial.upper()


@pytest.mark.parametrize("name, ca, seal_type, label, expected_label, diameter", TYPES)
def test_the_seal_certificate_comes_from_the_seal_profile(world, tmp_path, name, ca, seal_type, label,
                                                          expected_label, diameter):
    record = world.registry.get(name)
    text = cert_text(record.cert_der)
    assert "Digital Signature, Non Repudiation" in text
    assert "Certificate Sign" not in text and "CA:TRUE" not in text
    assert f"O = {ORG}" in text and f"CN = {ORG}{expected_label or '公章'}" in text
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(certificate_to_pem(record.certificate))
    distid = list(VFY_DISTID) if record.algorithm == "sm2" else []
    if ca == "sm2-seal-ca":   # OpenSSL 3.0 applies the SM2 ID to the end certificate only: check the last link
        assert f"{leaf}: OK" in openssl("verify", *distid, "-partial_chain", "-CAfile", world.ca_pem(ca),
                                        leaf).stdout.decode()
    else:
        assert f"{leaf}: OK" in openssl("verify", *distid, "-CAfile", world.ca_pem(ca), leaf).stdout.decode()


@pytest.mark.parametrize("name, ca, seal_type, label, expected_label, diameter", TYPES)
def test_the_makers_ses_seal_holds_the_record_and_openssl_verifies_it(world, tmp_path, name, ca, seal_type,
                                                                       label, expected_label, diameter):
    registry = world.registry
    record = registry.get(name)
    der = registry.export(name)
    assert der == record.ses_der
    data = registry.verify_ses(der)
    maker = world.authority.get(ca)
    assert registry.maker_ca(data).name == ca and data.maker_cert == maker.cert_der
    assert data.certificates == (record.cert_der,)
    assert data.seal_type == (2 if seal_type == "personal" else 1)
    assert data.name == (expected_label if seal_type == "personal" else ORG + expected_label)
    assert (data.valid_start, data.valid_end) == (record.valid_from, record.valid_to)
    assert data.picture_type == "png" and data.picture.startswith(b"\x89PNG\r\n\x1a\n")   # what OFD readers draw
    assert (data.width_mm, data.height_mm) == (round(record.width_mm), round(record.height_mm))
    verdict = openssl_verify_ses(der, maker.cert_der, tmp_path)
    assert "Verified OK" in verdict or "Signature Verified Successfully" in verdict, verdict


def test_a_png_picture_is_kept_and_sized(world):
    png = png_picture()
    record = world.registry.create(name="bj-png", organisation=ORG, seal_type="contract", custodian="wang",
                                   ca="rsa-root", password=SEAL_INITIAL, ca_password=CA_PASSWORD, operator="admin",
                                   approver="boss", picture_png=png, diameter_mm=PNG_SIZE_MM)
    assert record.picture_kind == "png" and record.picture_png == png
    assert record.width_mm == pytest.approx(PNG_SIZE_MM)
    assert record.drawing().width_pt == pytest.approx(PNG_SIZE_MM * 72 / 25.4, abs=0.01)
    data = world.registry.verify_ses(record.ses_der)
    assert (data.picture_type, data.picture, data.width_mm) == ("png", png, round(PNG_SIZE_MM))


BAD_CREATIONS = [
    (dict(name="bad name"), PolicyError, "letters, digits"),
    (dict(name="x" * 65), PolicyError, "at most 64"),
    (dict(name="bj-official"), SealError, "exists already"),
    (dict(seal_type="stamp"), PolicyError, "unknown seal type"),
    (dict(custodian="  "), PolicyError, "custodian"),
    (dict(seal_type="personal"), PolicyError, "needs --label"),
    (dict(password=b"123456"), PasswordPolicyError, "at least"),
    (dict(password=b"Password1!"), PasswordPolicyError, "default, trivial"),
    (dict(name="bj-new1", password=b"My-bj-new1-Pw!"), PasswordPolicyError, "seal's name"),
    (dict(valid_days=0), PolicyError, "at least one day"),
    (dict(approver="admin"), PolicyError, "separation of duties"),
    (dict(algorithm="rsa4096"), PolicyError, "does not allow rsa4096"),
    (dict(ca_password=b"not-the-ca-password"), WrongPassword, ""),
    (dict(ca="no-such-ca"), NotFound, "no-such-ca"),
]


@pytest.mark.parametrize("change, error, needle", BAD_CREATIONS)
def test_refused_creation_issues_no_certificate_and_stores_nothing(world, change, error, needle):
    before = {t: count(world, t) for t in ("seals", "certificates", "applications", "audit_events")}
    args = dict(name="bj-new", organisation=ORG, seal_type="official", custodian="wang", ca="sm2-root",
                password=SEAL_INITIAL, ca_password=CA_PASSWORD, operator="admin", approver="boss")
    args.update(change)
    with pytest.raises(error) as info:
        world.registry.create(**args)
    assert needle in info.value.message
    assert {t: count(world, t) for t in before} == before


# --------------------------------------------------------------------------- key protection

SCHEMES = {"sm2": ("sm4-cbc", "1.2.156.10197.1.401.2"), "rsa2048": ("aes-256-cbc", "hmacWithSHA256"),
           "ecdsa-p256": ("aes-256-cbc", "hmacWithSHA256")}


@pytest.mark.parametrize("name", [t[0] for t in TYPES])
def test_the_private_key_is_stored_only_pbes2_encrypted(world, tmp_path, name):
    (key_pem, algorithm), = db_rows(world.db, "SELECT key_pem, algorithm FROM seals WHERE name = ?", (name,))
    assert key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    (tmp_path / "key.pem").write_bytes(key_pem)
    parsed = openssl("asn1parse", "-in", tmp_path / "key.pem").stdout.decode()
    cipher, prf = SCHEMES[algorithm]
    assert ":PBES2" in parsed and ":PBKDF2" in parsed and cipher in parsed and prf in parsed, parsed
    if algorithm != "sm2":   # OpenSSL 3.0 has no HMAC-SM3 PRF for PBKDF2; for the others it is the judge
        pub = openssl("pkey", "-in", tmp_path / "key.pem", "-passin", f"pass:{SEAL_INITIAL.decode()}",
                      "-pubout").stdout
        record = world.registry.get(name)
        (tmp_path / "cert.pem").write_bytes(certificate_to_pem(record.certificate))
        assert pub == openssl("x509", "-in", tmp_path / "cert.pem", "-noout", "-pubkey").stdout
        assert openssl("pkey", "-in", tmp_path / "key.pem", "-passin", "pass:wrong", check=False).returncode != 0


def test_nothing_plain_anywhere_in_the_home(world):
    for marker in (b"BEGIN PRIVATE KEY", b"BEGIN RSA PRIVATE KEY", b"BEGIN EC PRIVATE KEY"):
        assert files_containing(world.path, marker) == []
    registry = world.registry
    for name, *_ in TYPES:
        password = SEAL_PASSWORD if not registry.get(name).must_change_password else SEAL_INITIAL
        plain = registry.open_key(name, password, actor="wang").to_pkcs8_der()
        assert files_containing(world.path, plain) == [], name
    assert all(b"key_pem" not in json.dumps(r.to_dict()).encode() and "PRIVATE" not in json.dumps(r.to_dict())
               for r in registry.list())


# --------------------------------------------------------------------------- passwords

def test_first_password_change(world):
    registry = world.registry
    name = "bj-official"
    assert registry.get(name).must_change_password
    with pytest.raises(PasswordPolicyError, match="differ from the old"):
        registry.change_password(name, SEAL_INITIAL, SEAL_INITIAL, actor="wang")
    with pytest.raises(PasswordPolicyError, match="at least"):
        registry.change_password(name, SEAL_INITIAL, b"123", actor="wang")
    assert registry.get(name).must_change_password
    registry.open_key(name, SEAL_INITIAL, actor="wang")                 # the old password still opens it
    with pytest.raises(SealPasswordError, match="failure 1 of"):
        registry.change_password(name, WRONG_PASSWORD, SEAL_PASSWORD, actor="wang")
    record = registry.change_password(name, SEAL_INITIAL, SEAL_PASSWORD, actor="wang")
    assert not record.must_change_password and record.failed_attempts == 0
    registry.open_key(name, SEAL_PASSWORD, actor="wang")
    with pytest.raises(SealPasswordError):
        registry.open_key(name, SEAL_INITIAL, actor="wang")
    registry.open_key(name, SEAL_PASSWORD, actor="wang")                 # resets the count
    events = audit_events(world.db, target=f"seal:{name}")
    assert [e["action"] for e in events].count("seal.passwd") == 1
    assert [e["details"]["purpose"] for e in events if e["action"] == "seal.password_failure"] == ["passwd", "stamp"]


def test_lockout_after_consecutive_failures_and_unlock_by_another_administrator(world):
    registry = world.registry
    name = "zhang-san"
    registry.change_password(name, SEAL_INITIAL, SEAL_PASSWORD, actor="wang")
    # failures are counted only while consecutive: a right password in between starts again
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(SealPasswordError):
            registry.open_key(name, WRONG_PASSWORD, actor="wang")
    registry.open_key(name, SEAL_PASSWORD, actor="wang")
    assert registry.get(name).failed_attempts == 0
    for n in range(1, MAX_FAILURES):
        with pytest.raises(SealPasswordError, match=f"failure {n} of {MAX_FAILURES}") as info:
            registry.open_key(name, WRONG_PASSWORD, actor="wang")
        assert info.value.data == {"seal": name, "failures": n}
    with pytest.raises(SealLocked, match=f"locked after {MAX_FAILURES} failures"):
        registry.open_key(name, WRONG_PASSWORD, actor="wang")
    record = registry.get(name)
    assert record.locked and record.failed_attempts == MAX_FAILURES
    with pytest.raises(SealLocked, match="an administrator must unlock it"):
        registry.open_key(name, SEAL_PASSWORD, actor="wang")             # even the right password
    with pytest.raises(SealLocked):
        registry.change_password(name, SEAL_PASSWORD, b"Another-Pw-2026#", actor="wang")
    assert registry.get(name).failed_attempts == MAX_FAILURES          # refusals while locked are not failures
    with pytest.raises(PolicyError, match="custodian"):
        registry.unlock(name, operator="wang")
    assert registry.get(name).locked
    record = registry.unlock(name, operator="admin2")
    assert not record.locked and record.failed_attempts == 0
    registry.open_key(name, SEAL_PASSWORD, actor="wang")
    failures = audit_events(world.db, "seal.password_failure", f"seal:{name}")
    assert [e["details"]["failures"] for e in failures] == list(range(1, MAX_FAILURES)) + list(
        range(1, MAX_FAILURES + 1))
    assert [e["details"]["locked"] for e in failures][-1] is True
    (unlock,) = audit_events(world.db, "seal.unlock", f"seal:{name}")
    assert unlock["actor"] == "admin2" and unlock["details"] == {"was_locked": True, "failures": MAX_FAILURES}
    assert world.audit_ok()


def test_unknown_seal(world):
    with pytest.raises(SealNotFound, match="no seal named 'nope'"):
        world.registry.get("nope")
    with pytest.raises(SealNotFound):
        world.registry.open_key("nope", SEAL_PASSWORD, actor="wang")


def test_list_and_find_by_certificate(world):
    registry = world.registry
    names = [r.name for r in registry.list()]
    assert names[:5] == [t[0] for t in TYPES]
    record = registry.get("bj-finance")
    assert registry.find_by_certificate(record.cert_der).name == "bj-finance"
    assert registry.find_by_certificate(b"\x30\x00") is None


# --------------------------------------------------------------------------- usability

def test_usable_only_inside_the_window_with_an_issued_certificate(world):
    registry = world.registry
    name = "bj-finance"
    with pytest.raises(SealStateError, match="initial password"):
        registry.check_usable(registry.get(name), world.clock.now())
    record = registry.change_password(name, SEAL_INITIAL, SEAL_PASSWORD, actor="wang")
    registry.check_usable(record, world.clock.now())
    with pytest.raises(SealStateError, match="valid from"):
        registry.check_usable(record, record.valid_from - timedelta(seconds=1))
    with pytest.raises(SealStateError, match="valid from"):
        registry.check_usable(record, record.valid_to + timedelta(seconds=1))
    world.authority.hold(record.cert_serial, ca=record.ca)
    with pytest.raises(SealStateError, match="is held") as info:
        registry.check_usable(record, world.clock.now())
    assert info.value.data["status"] == "held"
    world.authority.release(record.cert_serial, ca=record.ca)
    registry.check_usable(record, world.clock.now())


def test_a_seal_made_before_the_drawing_was_kept_is_drawn_again(world):
    """Seals of 0.1 homes have no stored drawing (migration 101 only adds the column)."""
    import sqlite3
    name = TYPES[0][0]
    kept = world.registry.get(name).drawing()
    with sqlite3.connect(world.db) as conn:
        conn.execute("UPDATE seals SET drawing = NULL WHERE name = ?", (name,))
    try:
        record = world.registry.get(name)
        assert record.drawing_data is None and record.drawing() == kept
    finally:
        with sqlite3.connect(world.db) as conn:
            conn.execute("UPDATE seals SET drawing = ? WHERE name = ?", (kept.to_bytes(), name))
