"""CSRs made by `openssl req` are accepted (proof of possession); broken, malformed and mismatched
ones are refused with a clear error and leave the database exactly as it was."""
from __future__ import annotations

import pytest

from pki.errors import CertificateError, PolicyError

from ca_helpers import (VECTORS, World, apply_and_issue, corrupt_csr_signature, db_snapshot, openssl, openssl_csr,
                        openssl_out, wall_clock)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("csr") / "home", tmp_path_factory.mktemp("csr-files"), wall_clock())
    w.init_ca("rsa", "rsa2048")
    w.init_ca("sm2", "sm2")
    return w


CASES = [("rsa2048", "rsa", False), ("ecdsa-p256", "rsa", True), ("ecdsa-p384", "rsa", False),
         ("sm2", "sm2", False), ("sm2", "sm2", True)]


@pytest.mark.parametrize("algorithm,ca,der", CASES, ids=[f"{a}-{'der' if d else 'pem'}" for a, _, d in CASES])
def test_openssl_csr_accepted(world: World, algorithm: str, ca: str, der: bool) -> None:
    subject = f"/C=CN/O=印信测试/CN=csr {algorithm}"
    key, csr = openssl_csr(world.files, algorithm, subject, stem=f"ok-{algorithm}-{der}", der=der)
    issued = apply_and_issue(world, ca=ca, profile="organization", subject=subject, csr=csr.read_bytes())
    leaf = world.write_cert(issued, f"ok-{algorithm}-{der}")
    # the certificate carries the CSR's key: OpenSSL derives the same public key from the private key
    assert openssl_out("x509", "-in", leaf, "-noout", "-pubkey") == openssl_out("pkey", "-in", key, "-pubout")
    extra = ("-vfyopt", "distid:1234567812345678") if ca == "sm2" else ()
    assert f"{leaf}: OK" in openssl_out("verify", *extra, "-CAfile", world.ca_pem(ca), leaf)


@pytest.mark.parametrize("algorithm,ca", [("rsa2048", "rsa"), ("ecdsa-p256", "rsa"), ("sm2", "sm2")])
def test_broken_signature_refused_without_a_trace(world: World, algorithm: str, ca: str) -> None:
    subject = f"/C=CN/O=印信测试/CN=broken {algorithm}"
    _, csr = openssl_csr(world.files, algorithm, subject, stem=f"broken-{algorithm}")
    broken = corrupt_csr_signature(csr.read_bytes())
    (world.files / f"broken-{algorithm}-flipped.csr").write_bytes(broken)
    # OpenSSL agrees the request is broken (`req -verify` says so, though 3.0 exits 0 either way)
    extra = ("-vfyopt", "distid:1234567812345678") if algorithm == "sm2" else ()
    for path, verdict in ((csr, "verify OK"), (world.files / f"broken-{algorithm}-flipped.csr", "verify failure")):
        proc = openssl("req", "-in", path, "-verify", "-noout", *extra, check=False)
        assert verdict in (proc.stdout + proc.stderr).decode()
    before = db_snapshot(world.db_path())
    with pytest.raises(CertificateError, match="CSR signature does not verify") as info:
        world.ra.apply(ca=ca, profile="organization", subject=subject, actor=world.person("alice"), csr=broken)
    assert info.value.data["field"] == "csr"
    assert db_snapshot(world.db_path()) == before


def test_sm2_csr_signed_with_another_id_refused(world: World) -> None:
    """OpenSSL's default SM2 ID is empty; the CA checks proof of possession with its own ID."""
    subject = "/C=CN/O=印信测试/CN=empty id"
    _, csr = openssl_csr(world.files, "sm2", subject, stem="sm2-empty-id", sm2_distid=None)
    before = db_snapshot(world.db_path())
    with pytest.raises(CertificateError, match="CSR signature does not verify"):
        world.ra.apply(ca="sm2", profile="organization", subject=subject, actor=world.person("alice"),
                       csr=csr.read_bytes())
    assert db_snapshot(world.db_path()) == before
    # a CA configured with the empty ID accepts exactly that request
    world.init_ca("sm2-empty-id", "sm2", sm2_id=b"")
    issued = apply_and_issue(world, ca="sm2-empty-id", profile="organization", subject=subject,
                             csr=csr.read_bytes())
    leaf = world.write_cert(issued, "sm2-empty-id")
    ca_pem = world.ca_pem("sm2-empty-id")
    assert f"{leaf}: OK" in openssl_out("verify", "-vfyopt", "distid:", "-CAfile", ca_pem, leaf)


def test_mismatched_subject_refused(world: World) -> None:
    _, csr = openssl_csr(world.files, "ecdsa-p256", "/C=CN/O=印信测试/CN=Zhang San", stem="mismatch")
    before = db_snapshot(world.db_path())
    with pytest.raises(CertificateError, match="differs from the application's subject") as info:
        world.ra.apply(ca="rsa", profile="organization", subject="/C=CN/O=印信测试/CN=Li Si",
                       actor=world.person("alice"), csr=csr.read_bytes())
    assert "CN=Zhang San" in info.value.message and "CN=Li Si" in info.value.message
    assert db_snapshot(world.db_path()) == before


def test_subject_in_rfc4514_notation_matches_openssl_notation(world: World) -> None:
    _, csr = openssl_csr(world.files, "ecdsa-p256", "/C=CN/O=印信测试/CN=Wang Wu", stem="rfc4514")
    issued = apply_and_issue(world, ca="rsa", profile="organization", subject="CN=Wang Wu,O=印信测试,C=CN",
                             csr=csr.read_bytes())
    leaf = world.write_cert(issued, "rfc4514")
    subject = openssl_out("x509", "-in", leaf, "-noout", "-subject", "-nameopt", "utf8")
    assert subject == "subject=C=CN, O=印信测试, CN=Wang Wu\n"
    assert subject == openssl_out("req", "-in", csr, "-noout", "-subject", "-nameopt", "utf8")


MALFORMED = sorted(p.name for p in (VECTORS / "csr").glob("malformed-*"))


def test_malformed_vectors_exist() -> None:
    assert len(MALFORMED) >= 5


@pytest.mark.parametrize("vector", MALFORMED)
def test_malformed_csr_refused(world: World, vector: str) -> None:
    before = db_snapshot(world.db_path())
    with pytest.raises(CertificateError) as info:
        world.ra.apply(ca="rsa", profile="organization", subject="/O=x/CN=y", actor=world.person("alice"),
                       csr=(VECTORS / "csr" / vector).read_bytes())
    assert info.value.data["field"] == "csr"
    assert db_snapshot(world.db_path()) == before


def test_key_algorithm_outside_profile_refused(world: World) -> None:
    """The government profile allows rsa2048/rsa3072/ecdsa-p256/sm2, not P-384."""
    subject = "/C=CN/O=某某局/CN=某某局"
    _, csr = openssl_csr(world.files, "ecdsa-p384", subject, stem="gov-p384")
    before = db_snapshot(world.db_path())
    with pytest.raises(PolicyError, match="does not allow ecdsa-p384"):
        world.ra.apply(ca="rsa", profile="government", subject=subject, actor=world.person("alice"),
                       csr=csr.read_bytes())
    assert db_snapshot(world.db_path()) == before


def test_certificate_is_not_a_csr(world: World) -> None:
    with pytest.raises(CertificateError, match="expected PEM CERTIFICATE REQUEST, found CERTIFICATE"):
        world.ra.apply(ca="rsa", profile="organization", subject="/O=x/CN=y", actor=world.person("alice"),
                       csr=world.ca_pem("rsa").read_bytes())
