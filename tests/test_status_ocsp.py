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


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_good(world: World, ca: str) -> None:
    _, cert = leaf(world, ca, "good")
    _, resp = ask(world, ca, cert)
    out = read(world, ca, resp, cert)
    assert "Response verify OK" in out and f"{cert}: good" in out
    assert "This Update:" in out and "Next Update:" in out


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_revoked_with_reason_and_time(world: World, ca: str) -> None:
    serial, cert = leaf(world, ca, "revoked")
    record = world.authority.revoke(serial, reason="keyCompromise")
    _, resp = ask(world, ca, cert)
    out = read(world, ca, resp, cert)
    assert "Response verify OK" in out and f"{cert}: revoked" in out
    assert "Reason: keyCompromise" in out
    assert f"Revocation Time: {openssl_time(record.revoked_at)}" in out


def test_held_is_revoked_with_certificate_hold_then_good_again(world: World) -> None:
    serial, cert = leaf(world, "ec", "held")
    world.authority.hold(serial)
    _, resp = ask(world, "ec", cert)
    out = read(world, "ec", resp, cert)
    assert f"{cert}: revoked" in out and "Reason: certificateHold" in out
    world.authority.release(serial)
    _, resp = ask(world, "ec", cert)
    assert f"{cert}: good" in read(world, "ec", resp, cert)


def test_unknown_serial(world: World) -> None:
    _, resp = ask(world, "ec", "0123456789ABCDEF0123")
    proc = openssl("ocsp", "-respin", resp, "-VAfile", world.ca_pem("ec"), "-issuer", world.ca_pem("ec"),
                   "-serial", "0x0123456789ABCDEF0123", "-no_nonce", check=False)
    out = (proc.stdout + proc.stderr).decode()
    assert "Response verify OK" in out and "0x0123456789ABCDEF0123: unknown" in out


def test_several_certificates_in_one_request_and_sha256_cert_ids(world: World) -> None:
    good_serial, good = leaf(world, "rsa", "multi-good")
    bad_serial, bad = leaf(world, "rsa", "multi-bad")
    world.authority.revoke(bad_serial, reason="superseded")
    _, resp = ask(world, "rsa", good, bad, extra=("-sha256",))
    out = read(world, "rsa", resp, good, bad, extra=("-sha256",))
    # openssl matches the answers to the -cert options by CertID, so both must be found
    assert f"{good}: good" in out and f"{bad}: revoked" in out and "Reason: superseded" in out
    text = openssl("ocsp", "-respin", resp, "-resp_text", "-noverify").stdout.decode()
    assert "Hash Algorithm: sha256" in text


def test_nonce_is_echoed(world: World) -> None:
    _, cert = leaf(world, "ec", "nonce")
    req, resp = ask(world, "ec", cert)
    request_text = openssl("ocsp", "-reqin", req, "-req_text").stdout.decode()
    response_text = openssl("ocsp", "-respin", resp, "-resp_text", "-noverify").stdout.decode()
    nonce = request_text.split("OCSP Nonce: \n")[1].split()[0]
    assert len(nonce) > 8 and response_text.split("OCSP Nonce: \n")[1].split()[0] == nonce
    # openssl checks the nonce against the request it sent …
    out = read(world, "ec", resp, req=req)
    assert "Response verify OK" in out and "Nonce Verify error" not in out
    # … and complains when the response belongs to another request
    other_req, _ = ask(world, "ec", cert)
    assert "Nonce Verify error" in read(world, "ec", resp, req=other_req)
    # without a nonce in the request, none in the response
    _, plain = ask(world, "ec", cert, extra=("-no_nonce",))
    assert "OCSP Nonce" not in openssl("ocsp", "-respin", plain, "-resp_text", "-noverify").stdout.decode()


def test_sm2_response_signature_verifies_with_pkeyutl(world: World) -> None:
    serial, cert = leaf(world, "sm2", "sm2")
    world.authority.revoke(serial, reason="affiliationChanged")
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


@pytest.mark.parametrize("vector", ["garbage", "empty", "truncated", "trailing-bytes"])
def test_malformed_request_gets_malformed_request(world: World, vector: str) -> None:
    _, cert = leaf(world, "ec", "for-malformed") if vector == "truncated" else (None, None)
    req = world.files / f"malformed-{vector}.der"
    if vector in ("truncated", "trailing-bytes"):
        good_req = world.files / f"wellformed-{vector}.der"
        if cert is None:
            openssl("ocsp", "-issuer", world.ca_pem("ec"), "-serial", "0x1234567890", "-reqout", good_req)
        else:
            openssl("ocsp", "-issuer", world.ca_pem("ec"), "-cert", cert, "-reqout", good_req)
        data = good_req.read_bytes()
        req.write_bytes(data[: len(data) // 2] if vector == "truncated" else data + b"\x00\x00")
    else:
        req.write_bytes(b"" if vector == "empty" else b"GET /ocsp HTTP/1.1\r\n\r\n")
    resp = world.files / f"malformed-{vector}.resp.der"
    result = yinxin(world.home_dir, "ca", "ocsp", "--ca", "ec", "--reqin", req, "--respout", resp, "--json",
                    env=ENV)
    assert result.code == 0 and result.json()["response_status"] == "malformed_request", result
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
