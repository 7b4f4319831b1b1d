"""Full and delta CRLs: numbering, delta indicator, reasons, removeFromCRL; verified by
`openssl crl -CAfile`, `openssl verify -crl_check`, and for SM2 by `openssl pkeyutl` over the TBS."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl, pem

from pki.errors import StateError
from pki.status import generate_crl, latest_crl, latest_crls

from ca_helpers import (BASE_URL, DISTID, World, apply_and_issue, fixed_clock, openssl, openssl_csr, openssl_out,
                        wall_clock, op_for)

CAS = {"rsa": "rsa2048", "ec": "ecdsa-p384", "sm2": "sm2"}


class Scenario:
    """Per CA: a full CRL, revocations with reasons, a hold, deltas, a release."""

    def __init__(self, world: World, ca: str) -> None:
        self.world, self.ca = world, ca
        self.info = world.authority.get(ca)
        self.key = world.key(ca)
        self.leaves: dict[str, tuple[str, Path]] = {}
        leaf_alg = "sm2" if CAS[ca] == "sm2" else "ecdsa-p256"
        for name in ("good", "compromised", "superseded", "held", "late", "hold-released"):
            subject = f"/O=印信测试/CN={ca} {name}"
            _, csr = openssl_csr(world.files, leaf_alg, subject, stem=f"{ca}-{name}")
            issued = apply_and_issue(world, ca=ca, profile="organization", subject=subject, csr=csr.read_bytes())
            self.leaves[name] = (issued.record.serial, world.write_cert(issued, f"{ca}-{name}"))
        self.crls: dict[str, tuple[object, Path]] = {}
        self.crl("empty")                                            # number 1, no entries
        self.tick()
        self.revoke("compromised", "keyCompromise")
        self.revoke("superseded", "superseded")
        world.authority.hold(self.serial("held"), actor=world.op)
        world.authority.hold(self.serial("hold-released"), actor=world.op)
        self.tick()
        self.crl("full")                                             # number 2, four entries
        self.tick()
        self.revoke("late", "cessationOfOperation")
        world.authority.release(self.serial("hold-released"), actor=world.op)
        self.tick()
        self.crl("delta", delta=True)                                # number 3, base 2

    def tick(self) -> None:
        self.world.clock.advance(timedelta(seconds=5))

    def serial(self, name: str) -> str:
        return self.leaves[name][0]

    def revoke(self, name: str, reason: str) -> None:
        self.world.authority.revoke(self.serial(name), reason=reason, actor=op_for(self.world.authority.home))

    def crl(self, label: str, *, delta: bool = False) -> Path:
        result = generate_crl(self.world.authority, self.info, self.key, delta=delta,
                              actor=op_for(self.world.authority.home))
        der_path = self.world.files / f"{self.ca}-{label}.crl"
        der_path.write_bytes(result.der)
        self.world.files.joinpath(f"{self.ca}-{label}.crl.pem").write_bytes(pem.armor("X509 CRL", result.der))
        self.crls[label] = (result, der_path)
        return der_path

    def text(self, label: str) -> str:
        return openssl_out("crl", "-in", self.crls[label][1], "-inform", "DER", "-noout", "-text")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("crl") / "home", tmp_path_factory.mktemp("crl-files"), wall_clock())
    for name, algorithm in CAS.items():
        w.init_ca(name, algorithm)
    return w


@pytest.fixture(scope="module")
def scenarios(world: World) -> dict[str, Scenario]:
    return {ca: Scenario(world, ca) for ca in CAS}


def _serial_line(serial: str) -> str:
    return f"Serial Number: {serial.upper().zfill(len(serial) + len(serial) % 2)}"


@pytest.mark.parametrize("ca", CAS)
def test_numbers_increase_across_full_and_delta(scenarios, ca: str) -> None:
    s = scenarios[ca]
    assert [s.crls[k][0].number for k in ("empty", "full", "delta")] == [1, 2, 3]
    assert s.crls["delta"][0].delta_base == 2 and s.crls["full"][0].delta_base is None
    texts = {k: s.text(k) for k in ("empty", "full", "delta")}
    for label, number in (("empty", 1), ("full", 2), ("delta", 3)):
        assert f"X509v3 CRL Number: \n                {number}\n" in texts[label]
    assert "Delta CRL Indicator: critical\n                2\n" in texts["delta"]
    assert "Delta CRL Indicator" not in texts["full"]
    assert "No Revoked Certificates." in texts["empty"]
    # the full CRL tells relying parties where deltas are published (Freshest CRL)
    assert f"URI:{BASE_URL}/crl/{ca}-delta.crl" in texts["full"]
    assert latest_crl(s.world.authority, s.info) == s.crls["full"][1].read_bytes()
    assert latest_crl(s.world.authority, s.info, delta=True) == s.crls["delta"][1].read_bytes()


def test_latest_crls_of_all_cas_in_one_read_are_those_read_ca_by_ca(world: World, scenarios) -> None:
    authority = world.authority
    if "bare" not in {c.name for c in authority.cas()}:
        world.init_ca("bare", "ecdsa-p256")              # a CA that has published no CRL yet
    cas = authority.cas()
    one_by_one = []
    for info in cas:
        full, delta = latest_crl(authority, info), latest_crl(authority, info, delta=True)
        one_by_one += [full, *([delta] if delta else [])] if full else []
    assert latest_crls(authority, cas) == one_by_one
    assert one_by_one == [scenarios[c.name].crls[k][1].read_bytes() for c in cas if c.name in scenarios
                          for k in ("full", "delta")]
    assert latest_crls(authority, list(reversed(cas))) == [
        der for c in reversed(cas) if c.name in scenarios
        for der in (scenarios[c.name].crls["full"][1].read_bytes(), scenarios[c.name].crls["delta"][1].read_bytes())]
    assert latest_crls(authority, []) == []


@pytest.mark.parametrize("ca", CAS)
def test_full_crl_lists_revoked_and_held_with_reasons(scenarios, ca: str) -> None:
    s = scenarios[ca]
    crl = asn1_crl.CertificateList.load(s.crls["full"][1].read_bytes())   # asn1crypto parses independently
    listed = {f"{e['user_certificate'].native:x}": e.crl_reason_value.native if e.crl_reason_value else None
              for e in crl["tbs_cert_list"]["revoked_certificates"]}
    assert listed == {s.serial("compromised"): "key_compromise", s.serial("superseded"): "superseded",
                      s.serial("held"): "certificate_hold", s.serial("hold-released"): "certificate_hold"}
    text = s.text("full")
    for reason in ("Key Compromise", "Superseded", "Certificate Hold"):
        assert reason in text
    assert s.serial("good") not in {k for k in listed}


@pytest.mark.parametrize("ca", CAS)
def test_delta_lists_changes_and_remove_from_crl(scenarios, ca: str) -> None:
    s = scenarios[ca]
    crl = asn1_crl.CertificateList.load(s.crls["delta"][1].read_bytes())
    listed = {f"{e['user_certificate'].native:x}": e.crl_reason_value.native
              for e in crl["tbs_cert_list"]["revoked_certificates"]}
    assert listed == {s.serial("late"): "cessation_of_operation", s.serial("hold-released"): "remove_from_crl"}
    text = s.text("delta")
    assert "Remove From CRL" in text and "Cessation Of Operation" in text


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_openssl_crl_verifies_signature(world: World, scenarios, ca: str) -> None:
    s = scenarios[ca]
    for label in ("empty", "full", "delta"):
        proc = openssl("crl", "-in", s.crls[label][1], "-inform", "DER", "-CAfile", world.ca_pem(ca), "-noout")
        assert "verify OK" in (proc.stdout + proc.stderr).decode()
    other = "ec" if ca == "rsa" else "rsa"
    proc = openssl("crl", "-in", s.crls["full"][1], "-inform", "DER", "-CAfile", world.ca_pem(other), "-noout",
                   check=False)
    assert "verify OK" not in (proc.stdout + proc.stderr).decode()


def _pkeyutl_verify(world: World, tbs_der: bytes, signature: bytes, tag: str, distid: str = DISTID) -> str:
    """`openssl pkeyutl -verify -rawin -digest sm3` of an SM2 signature over a TBS, with the SM2 CA's key."""
    tbs, sig, pub = world.files / f"{tag}.tbs", world.files / f"{tag}.sig", world.files / "sm2.pub.pem"
    tbs.write_bytes(tbs_der)
    sig.write_bytes(signature)
    pub.write_bytes(openssl("x509", "-in", world.ca_pem("sm2"), "-noout", "-pubkey").stdout)
    proc = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
                   "-pkeyopt", f"distid:{distid}", "-in", tbs, "-sigfile", sig, check=False)
    return (proc.stdout + proc.stderr).decode()


def test_sm2_crls_verify_with_pkeyutl_over_the_tbs(world: World, scenarios) -> None:
    s = scenarios["sm2"]
    for label in ("empty", "full", "delta"):
        crl = asn1_crl.CertificateList.load(s.crls[label][1].read_bytes())
        assert crl["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"   # SM2-with-SM3
        tbs, signature = crl["tbs_cert_list"].dump(), crl["signature"].native
        assert "Signature Verified Successfully" in _pkeyutl_verify(world, tbs, signature, f"sm2-{label}")
    # the check can fail: another ID, or one flipped bit in the TBS
    assert "Signature Verification Failure" in _pkeyutl_verify(world, tbs, signature, "sm2-wrong-id",
                                                               distid="1234567812345679")
    flipped = bytearray(tbs)
    flipped[len(flipped) // 2] ^= 1
    assert "Signature Verification Failure" in _pkeyutl_verify(world, bytes(flipped), signature, "sm2-flipped")


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_openssl_verify_crl_check_reports_revoked(world: World, scenarios, ca: str) -> None:
    s = scenarios[ca]
    crl_pem = world.files / f"{ca}-full.crl.pem"
    # the scenario moved the CA's clock a few seconds past the real time: judge at the CA's time
    attime = str(int(world.clock.now().timestamp()))
    for name, expected in (("good", "OK"), ("compromised", "certificate revoked"), ("held", "certificate revoked"),
                           ("late", "OK")):
        leaf = s.leaves[name][1]
        proc = openssl("verify", "-attime", attime, "-crl_check", "-CRLfile", crl_pem, "-CAfile", world.ca_pem(ca),
                       leaf, check=False)
        out = (proc.stdout + proc.stderr).decode()
        if expected == "OK":
            assert proc.returncode == 0 and f"{leaf}: OK" in out, out
        else:
            assert proc.returncode != 0 and "error 23 at 0 depth lookup: certificate revoked" in out, out
    # with the delta CRL, OpenSSL also sees the revocation made after the full CRL
    leaf = s.leaves["late"][1]
    proc = openssl("verify", "-attime", attime, "-crl_check", "-use_deltas", "-CRLfile", crl_pem, "-CRLfile",
                   world.files / f"{ca}-delta.crl.pem", "-CAfile", world.ca_pem(ca), leaf, check=False)
    assert "certificate revoked" in (proc.stdout + proc.stderr).decode()


def test_delta_needs_a_full_crl_first(tmp_path: Path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    info = world.init_ca("ec", "ecdsa-p256")
    before = world.authority.get("ec")
    with pytest.raises(StateError, match="no full CRL yet"):
        generate_crl(world.authority, info, world.key("ec"), delta=True, actor=world.op)
    assert generate_crl(world.authority, before, world.key("ec"), actor=world.op).number == 1


def test_change_in_the_same_second_as_the_base_reaches_the_delta(tmp_path: Path) -> None:
    """X.509 times have whole seconds: a revocation in the base CRL's second must not fall between."""
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    info = world.init_ca("ec", "ecdsa-p256")
    key = world.key("ec")
    issued = apply_and_issue(world, ca="ec", profile="organization", subject="/O=x/CN=same second",
                             generate_key_out=world.files / "k.pem")
    base = generate_crl(world.authority, info, key, actor=world.op)
    assert base.entries == 0
    world.authority.revoke(issued.record.serial, reason="keyCompromise", actor=world.op)   # the clock has not moved
    delta = generate_crl(world.authority, info, key, delta=True, actor=world.op)
    entries = asn1_crl.CertificateList.load(delta.der)["tbs_cert_list"]["revoked_certificates"]
    assert [f"{e['user_certificate'].native:x}" for e in entries] == [issued.record.serial]


def test_expired_revoked_certificates_leave_the_crl(tmp_path: Path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    info = world.init_ca("ec", "ecdsa-p256")
    key = world.key("ec")
    issued = apply_and_issue(world, ca="ec", profile="organization", subject="/O=x/CN=expiring",
                             generate_key_out=world.files / "k.pem")
    world.authority.revoke(issued.record.serial, reason="superseded", actor=world.op)
    world.clock.set(issued.record.not_after + timedelta(days=1))
    assert generate_crl(world.authority, info, key, actor=world.op).entries == 1     # still listed once past expiry
    world.clock.set(issued.record.not_after + timedelta(days=30))
    assert generate_crl(world.authority, info, key, actor=world.op).entries == 0


def test_sub_ca_crl_is_signed_by_the_sub_ca(tmp_path: Path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", wall_clock())
    world.init_ca("root", "ecdsa-p256")
    sub = world.init_ca("sub", "ecdsa-p256", parent="root")
    crl = generate_crl(world.authority, sub, world.key("sub"), actor=world.op)
    path = world.files / "sub.crl"
    path.write_bytes(crl.der)
    proc = openssl("crl", "-in", path, "-inform", "DER", "-CAfile", world.ca_pem("sub"), "-noout")
    assert "verify OK" in (proc.stdout + proc.stderr).decode()
    # the root's CRL lists the sub-CA once it is revoked
    world.authority.revoke(sub.serial, reason="caCompromise", ca="root", actor=world.op)
    root_crl = generate_crl(world.authority, world.authority.get("root"), world.key("root"), actor=world.op)
    entries = asn1_crl.CertificateList.load(root_crl.der)["tbs_cert_list"]["revoked_certificates"]
    assert [(f"{e['user_certificate'].native:x}", e.crl_reason_value.native) for e in entries] == \
        [(sub.serial, "ca_compromise")]
