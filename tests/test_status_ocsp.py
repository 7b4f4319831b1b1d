"""OCSP end to end: `openssl ocsp -reqout` asks, `yinxin ca ocsp` answers offline, `openssl ocsp -respin
-VAfile` verifies and reads good / revoked (reason, time) / unknown; nonces; malformed and foreign requests."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp

from ca_helpers import (DISTID, PASSWORD, World, apply_and_issue, openssl, openssl_csr, wall_clock, yinxin)

CAS = {"rsa": "rsa2048", "ec": "ecdsa-p256", "sm2": "sm2", "other": "ecdsa-p256"}
ENV = {"YINXIN_CA_PASSWORD": PASSWORD.decode()}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("ocsp") / "home", tmp_path_factory.mktemp("ocsp-files"), wall_clock())
    for name, algorithm in CAS.items():
        w.init_ca(name, algorithm)
    return w


_count = iter(range(10_000))


def leaf(world: World, ca: str, name: str) -> tuple[str, Path]:
    stem = f"{ca}-{name}-{next(_count)}"
    subject = f"/O=印信测试/CN={stem}"
    _, csr = openssl_csr(world.files, "sm2" if ca == "sm2" else "ecdsa-p256", subject, stem=stem)
    issued = apply_and_issue(world, ca=ca, profile="organization", subject=subject, csr=csr.read_bytes())
    return issued.record.serial, world.write_cert(issued, stem)


def ask(world: World, ca: str, *targets: str | Path, extra: tuple[str, ...] = (), tag: str | None = None,
        issuer: str | None = None) -> tuple[Path, Path]:
    """openssl makes the request, yinxin answers it; returns (request, response) files."""
    tag = tag or f"q{next(_count)}"
    req, resp = world.files / f"{tag}.req.der", world.files / f"{tag}.resp.der"
    ids: list[str] = []
    for target in targets:
        ids += ["-cert", str(target)] if isinstance(target, Path) else ["-serial", f"0x{target}"]
    openssl("ocsp", "-issuer", world.ca_pem(issuer or ca), *extra, *ids, "-reqout", req)
    result = yinxin(world.home_dir, "ca", "ocsp", "--ca", ca, "--reqin", req, "--respout", resp, "--json", env=ENV)
    assert result.code == 0, result
    assert result.json()["out"] == str(resp)
    return req, resp


def read(world: World, ca: str, resp: Path, *targets: Path, req: Path | None = None,
         extra: tuple[str, ...] = ()) -> str:
    """`openssl ocsp -respin`: verify with the CA certificate as the trusted responder and print statuses."""
    args = ["ocsp", "-respin", resp, "-issuer", world.ca_pem(ca), "-VAfile", world.ca_pem(ca), *extra]
    for target in targets:
        args += ["-cert", target]
    args += ["-reqin", req] if req is not None else ["-no_nonce"]
    proc = openssl(*args, check=False)
    return (proc.stdout + proc.stderr).decode()


def openssl_time(at: datetime) -> str:
    return f"{at:%b} {at.day:2d} {at:%H:%M:%S %Y} GMT"


class Scenario:
    """Certificates of one CA in every state, asked about in ONE request (one `yinxin ca ocsp` run)."""

    UNKNOWN = "0123456789ABCDEF0123"

    def __init__(self, world: World, ca: str) -> None:
        self.world, self.ca = world, ca
        self.leaves = {name: leaf(world, ca, name) for name in ("good", "revoked", "held", "released")}
        self.revoked = world.authority.revoke(self.leaves["revoked"][0], reason="keyCompromise", actor=world.op)
        world.authority.hold(self.leaves["held"][0], actor=world.op)
        world.authority.hold(self.leaves["released"][0], actor=world.op)
        world.authority.release(self.leaves["released"][0], actor=world.op)
        # the ECDSA CA is asked with SHA-256 CertIDs, the RSA CA with OpenSSL's default SHA-1
        self.digest = ("-sha256",) if ca == "ec" else ()
        certs = [path for _, path in self.leaves.values()]
        self.req, self.resp = ask(world, ca, *certs, self.UNKNOWN, extra=self.digest, tag=f"scenario-{ca}")
        self.text = read(world, ca, self.resp, *certs, extra=(*self.digest, "-serial", f"0x{self.UNKNOWN}"))

    def status(self, name: str) -> str:
        """The lines openssl printed about one certificate."""
        marker = f"{self.leaves[name][1]}: "
        return self.text.split(marker, 1)[1].split("\n/", 1)[0].split("\n0x", 1)[0]


@pytest.fixture(scope="module")
def scenarios(world: World) -> dict[str, Scenario]:
    return {ca: Scenario(world, ca) for ca in ("rsa", "ec")}


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_response_verifies_against_the_ca(scenarios, ca: str) -> None:
    assert "Response verify OK" in scenarios[ca].text
    # and not against another CA's certificate
    s = scenarios[ca]
    other = "ec" if ca == "rsa" else "rsa"
    proc = openssl("ocsp", "-respin", s.resp, "-VAfile", s.world.ca_pem(other), "-no_nonce", check=False)
    assert "Response verify OK" not in (proc.stdout + proc.stderr).decode()


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_good(scenarios, ca: str) -> None:
    status = scenarios[ca].status("good")
    assert status.startswith("good\n") and "This Update:" in status and "Next Update:" in status


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_revoked_with_reason_and_time(scenarios, ca: str) -> None:
    s = scenarios[ca]
    status = s.status("revoked")
    assert status.startswith("revoked\n")
    assert "Reason: keyCompromise" in status
    assert f"Revocation Time: {openssl_time(s.revoked.revoked_at)}" in status


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_held_is_revoked_with_certificate_hold(scenarios, ca: str) -> None:
    status = scenarios[ca].status("held")
    assert status.startswith("revoked\n") and "Reason: certificateHold" in status


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_released_is_good_again(scenarios, ca: str) -> None:
    assert scenarios[ca].status("released").startswith("good\n")


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_unknown_serial(scenarios, ca: str) -> None:
    assert f"0x{Scenario.UNKNOWN}: unknown" in scenarios[ca].text


def test_cert_id_hash_algorithms(scenarios) -> None:
    for ca, digest in (("rsa", "sha1"), ("ec", "sha256")):
        text = openssl("ocsp", "-respin", scenarios[ca].resp, "-resp_text", "-noverify").stdout.decode()
        assert text.count(f"Hash Algorithm: {digest}") == 5


def test_nonce_is_echoed(world: World, scenarios) -> None:
    s = scenarios["ec"]
    request_text = openssl("ocsp", "-reqin", s.req, "-req_text").stdout.decode()
    response_text = openssl("ocsp", "-respin", s.resp, "-resp_text", "-noverify").stdout.decode()
    nonce = request_text.split("OCSP Nonce: \n")[1].split()[0]
    assert len(nonce) > 8 and response_text.split("OCSP Nonce: \n")[1].split()[0] == nonce
    # openssl checks the nonce against the request it sent …
    out = read(world, "ec", s.resp, req=s.req)
    assert "Response verify OK" in out and "Nonce Verify error" not in out
    # … and complains when the response answers another request
    other = world.files / "other.req"
    openssl("ocsp", "-issuer", world.ca_pem("ec"), "-cert", s.leaves["good"][1], "-reqout", other)
    assert "Nonce Verify error" in read(world, "ec", s.resp, req=other)


def test_no_nonce_in_request_none_in_response(world: World, scenarios) -> None:
    _, plain = ask(world, "ec", scenarios["ec"].leaves["good"][1], extra=("-no_nonce",))
    assert "OCSP Nonce" not in openssl("ocsp", "-respin", plain, "-resp_text", "-noverify").stdout.decode()


def test_sm2_response_signature_verifies_with_pkeyutl(world: World) -> None:
    serial, cert = leaf(world, "sm2", "sm2")
    world.authority.revoke(serial, reason="affiliationChanged", actor=world.op)
    _, resp = ask(world, "sm2", cert)
    basic = asn1_ocsp.OCSPResponse.load(resp.read_bytes())["response_bytes"]["response"].parsed
    assert basic["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    single = basic["tbs_response_data"]["responses"][0]
    assert single["cert_status"].name == "revoked"
    assert single["cert_status"].chosen["revocation_reason"].native == "affiliation_changed"
    tbs, sig, pub = world.files / "sm2-ocsp.tbs", world.files / "sm2-ocsp.sig", world.files / "sm2-ocsp.pub"
    tbs.write_bytes(basic["tbs_response_data"].dump())
    sig.write_bytes(basic["signature"].native)
    pub.write_bytes(openssl("x509", "-in", world.ca_pem("sm2"), "-noout", "-pubkey").stdout)
    proc = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
                   "-pkeyopt", f"distid:{DISTID}", "-in", tbs, "-sigfile", sig, check=False)
    assert "Signature Verified Successfully" in (proc.stdout + proc.stderr).decode()
    # openssl still reads the status (it cannot check an SM2 signature here without the ID)
    proc = openssl("ocsp", "-respin", resp, "-issuer", world.ca_pem("sm2"), "-cert", cert, "-noverify",
                   "-no_nonce", check=False)
    assert f"{cert}: revoked" in proc.stdout.decode()


def _well_formed_request(world: World) -> bytes:
    req = world.files / "wellformed.req"
    openssl("ocsp", "-issuer", world.ca_pem("ec"), "-serial", "0x1234567890", "-reqout", req)
    return req.read_bytes()


MALFORMED = {"garbage": lambda good: b"GET /ocsp HTTP/1.1\r\n\r\n", "empty": lambda good: b"",
             "truncated": lambda good: good[: len(good) // 2], "trailing-bytes": lambda good: good + b"\x00\x00"}


@pytest.mark.parametrize("vector", ["garbage", "truncated"])
def test_malformed_request_gets_malformed_request(world: World, vector: str) -> None:
    req = world.files / f"malformed-{vector}.der"
    req.write_bytes(MALFORMED[vector](_well_formed_request(world)))
    resp = world.files / f"malformed-{vector}.resp.der"
    result = yinxin(world.home_dir, "ca", "ocsp", "--ca", "ec", "--reqin", req, "--respout", resp, "--json",
                    env=ENV)
    assert result.code == 0 and result.json()["response_status"] == "malformed_request", result
    proc = openssl("ocsp", "-respin", resp, "-resp_text", "-noverify", check=False)
    assert "Responder Error: malformedrequest (1)" in (proc.stdout + proc.stderr).decode()


@pytest.mark.parametrize("vector", sorted(MALFORMED))
def test_malformed_requests_through_the_library(world: World, vector: str) -> None:
    from pki.status import respond_ocsp
    der = respond_ocsp(world.authority, world.authority.get("ec"), world.key("ec"),
                       MALFORMED[vector](_well_formed_request(world)))
    resp = world.files / f"lib-malformed-{vector}.der"
    resp.write_bytes(der)
    proc = openssl("ocsp", "-respin", resp, "-resp_text", "-noverify", check=False)
    assert "Responder Error: malformedrequest (1)" in (proc.stdout + proc.stderr).decode()


def test_foreign_issuer_is_unauthorized(world: World) -> None:
    _, cert = leaf(world, "other", "foreign")
    # a request about a certificate of CA "other", sent to CA "ec"
    _, resp = ask(world, "ec", cert, issuer="other")
    proc = openssl("ocsp", "-respin", resp, "-resp_text", "-noverify", check=False)
    assert "Responder Error: unauthorized (6)" in (proc.stdout + proc.stderr).decode()


def test_wrong_password_writes_no_response(world: World) -> None:
    _, cert = leaf(world, "ec", "nopass")
    req, resp = world.files / "nopass.req", world.files / "nopass.resp"
    openssl("ocsp", "-issuer", world.ca_pem("ec"), "-cert", cert, "-reqout", req)
    result = yinxin(world.home_dir, "ca", "ocsp", "--ca", "ec", "--reqin", req, "--respout", resp,
                    env={"YINXIN_CA_PASSWORD": "wrong"})
    assert result.code != 0 and result.err.startswith("yinxin: error: wrong password for the key of CA ec")
    assert not resp.exists()
