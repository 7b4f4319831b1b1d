"""Migration 600: seals made before yinxin 0.2 carry a maker signature by the GM/T 0031 rule
(over SEQUENCE{SES_SealInfo, cert, signAlgID}) and an SVG picture.  Such a home is made here the
way the old code left it (the column dropped, the seal signed by the old rule with the CA's key,
schema version 600 removed, all with sqlite3), then opened: the migration marks the seal, which
cannot be exported or put on an OFD until `yinxin seal resign` has its maker re-sign it — after
which openssl verifies the maker's signature over SES_SealInfo, and the audit log says so."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from asn1crypto import core

from ca_helpers import assert_one_line_error
from pki.home import Home
from seal.appearance import SealSpec, draw_seal
from seal.ofd.sample import text_ofd
from seal.ses import build_seal_info, parse_seal, v4
from seal_support import CA_PASSWORD, ORG, CliWorld, audit_events, db_rows, openssl_verify_ses


def _old_rule_seal(home: Path, name: str) -> bytes:
    """The seal's SES_Seal as yinxin 0.1 signed it: SVG picture, maker signature over
    SEQUENCE{SES_SealInfo, cert, signAlgID}, with the CA key (opened through pki)."""
    from pki.ca import CertificateAuthority
    h = Home.open(home)
    try:
        authority = CertificateAuthority(h)
        ca = authority.get("sm2-root")
        key = authority.load_key(ca, CA_PASSWORD)
        (der,) = [r[0] for r in db_rows(home / "yinxin.db", "SELECT ses_der FROM seals WHERE name = ?", (name,))]
        data = parse_seal(der)
        info = build_seal_info(es_id=data.es_id, vendor=data.vendor, seal_type=data.seal_type, name=data.name,
                               certificates=data.certificates, created=data.created, valid_start=data.valid_start,
                               valid_end=data.valid_end, picture_type="svg",
                               picture=draw_seal(SealSpec("official", ORG)).svg().encode(), width_mm=42,
                               height_mm=42)
        alg = core.ObjectIdentifier("1.2.156.10197.1.501")
        to_sign = b"\x30" + _length(len(info.dump() + core.OctetString(ca.cert_der).dump() + alg.dump())) + \
            info.dump() + core.OctetString(ca.cert_der).dump() + alg.dump()
        signature = key.sign(to_sign, distid=ca.distid)
        return v4.SESeal({"e_seal_info": info, "cert": ca.cert_der, "sign_alg_id": alg.dotted,
                          "signed_value": signature}).dump()
    finally:
        h.store.dispose()


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    size = (n.bit_length() + 7) // 8
    return bytes([0x80 | size]) + n.to_bytes(size, "big")


def _make_pre_600(db: Path, name: str, old_der: bytes) -> None:
    con = sqlite3.connect(db)
    try:
        con.execute("UPDATE seals SET ses_der = ? WHERE name = ?", (old_der, name))
        con.execute("ALTER TABLE seals DROP COLUMN maker_rule")
        con.execute("DELETE FROM schema_version WHERE version = 600")
        con.commit()
    finally:
        con.close()


@pytest.fixture
def old_home(tmp_path) -> CliWorld:
    world = CliWorld(tmp_path / "home", tmp_path / "files")
    world.ok("ca", "init", "--name", "sm2-root", "--subject", "/C=CN/O=印信测试/CN=SM2 Root", "--algorithm", "sm2",
             "--session", world.session("ca-admin"))
    world.create_seal("bj-old", ca="sm2-root")
    world.create_seal("bj-new", ca="sm2-root")
    old = _old_rule_seal(world.home, "bj-old")
    _make_pre_600(world.db, "bj-old", old)
    world.old_der = old                                         # type: ignore[attr-defined]
    return world


def test_migration_marks_old_seals_and_resign_has_the_maker_sign_seal_info(old_home, tmp_path):
    world = old_home
    maker = db_rows(world.db, "SELECT cert_der FROM cas WHERE name = 'sm2-root'")[0][0]
    assert "Signature Verified Successfully" in openssl_verify_ses(world.old_der, maker, tmp_path / "v1",
                                                                  rule="gmt0031")
    # any command opens the home: migration 600 runs and marks the seal made before it
    listing = world.ok("seal", "list", "--json").json()["seals"]
    rules = {s["name"]: (s["maker_rule"], s["needs_resign"]) for s in listing}
    assert rules == {"bj-old": ("gmt0031", True), "bj-new": ("gbt38540", False)}
    assert (600,) in db_rows(world.db, "SELECT version FROM schema_version")
    # until re-signed: no export, no OFD seal (v4 verifiers would reject it), each said in one line
    out = world.files / "old.ses"
    assert_one_line_error(world.run("seal", "export", "bj-old", "--out", out), "GM/T 0031", "seal resign bj-old")
    assert not out.exists()
    doc = world.write("notice.ofd", text_ofd([[ORG]]))
    sealed = world.files / "notice-old.ofd"
    assert_one_line_error(world.stamp(doc, sealed, "bj-old", "--anchor", ORG), "seal resign bj-old")
    assert not sealed.exists()
    # the maker re-signs (CA password from $YINXIN_CA_PASSWORD), audited
    result = world.ok("seal", "resign", "--all", "--session", world.session("ca-admin"), "--json").json()
    assert result["seals"] == [{"seal": "bj-old", "resigned": True, "maker_rule": "gbt38540"},
                               {"seal": "bj-new", "resigned": False, "maker_rule": "gbt38540"}]
    world.ok("seal", "export", "bj-old", "--out", out)
    new = out.read_bytes()
    assert "Signature Verified Successfully" in openssl_verify_ses(new, maker, tmp_path / "v4")
    assert "Signature Verified Successfully" not in openssl_verify_ses(new, maker, tmp_path / "v4-old",
                                                                      rule="gmt0031")
    before, after = parse_seal(world.old_der), parse_seal(new)
    assert (after.es_id, after.name, after.certificates, after.valid_start, after.valid_end) == (
        before.es_id, before.name, before.certificates, before.valid_start, before.valid_end)
    assert before.picture_type == "svg" and after.picture_type == "png" and after.picture[:4] == b"\x89PNG"
    (event,) = audit_events(world.db, action="seal.resign")
    assert event["actor"] == "ca-admin" and event["target"] == "seal:bj-old"
    assert event["details"]["old_sha256"] == hashlib.sha256(world.old_der).hexdigest()
    assert event["result_digest"] == hashlib.sha256(new).hexdigest() and event["details"]["migration"] == 600
    world.ok("audit", "verify")
    assert world.stamp(doc, sealed, "bj-old", "--anchor", ORG).code == 0
    assert world.run("seal", "verify", sealed).code == 0


def test_a_tampered_old_seal_is_not_re_signed(old_home):
    world = old_home
    world.ok("seal", "list")                                    # migrates
    der = bytearray(world.old_der)
    at = der.index("北京".encode())
    der[at:at + 6] = "天津".encode()
    con = sqlite3.connect(world.db)
    con.execute("UPDATE seals SET ses_der = ? WHERE name = 'bj-old'", (bytes(der),))
    con.commit()
    con.close()
    rows = db_rows(world.db, "SELECT name, ses_der, maker_rule FROM seals ORDER BY name")
    events = audit_events(world.db)
    result = world.run("seal", "resign", "bj-old", "--session", world.session("ca-admin"))
    assert_one_line_error(result, "does not verify", "not re-signed")
    assert db_rows(world.db, "SELECT name, ses_der, maker_rule FROM seals ORDER BY name") == rows
    assert audit_events(world.db) == events


def test_only_a_ca_operator_re_signs(old_home):
    """The maker's key signs: a session without the CA operator's role (the custodian's) is refused
    in one line before the CA password is asked for, and nothing changes; so is no session."""
    world = old_home
    world.ok("seal", "list")                                    # migrates
    rows = db_rows(world.db, "SELECT name, ses_der, maker_rule FROM seals ORDER BY name")
    events = audit_events(world.db)
    custodian = world.run("seal", "resign", "bj-old", env={"YINXIN_CA_PASSWORD": None})
    assert_one_line_error(custodian, "wang does not hold the role ca_operator")
    assert custodian.code == 2
    nobody = world.run("seal", "resign", "--all", env={"YINXIN_SESSION": None})
    assert_one_line_error(nobody, "log in first")
    assert db_rows(world.db, "SELECT name, ses_der, maker_rule FROM seals ORDER BY name") == rows
    assert audit_events(world.db) == events
