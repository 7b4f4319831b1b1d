"""A delegated OCSP responder (profile `ocsp`) configured with `yinxin ca responder` signs the status service's
OCSP responses; the CA key is not given to the server at all.  `openssl ocsp -url … -CAfile ca.pem` accepts the
responder (issued by the CA, OCSPSigning).  Without any key the server refuses to start, in one line."""
from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp

from ca_helpers import (PASSWORD, World, apply_and_issue, assert_one_line_error, openssl, openssl_csr, wall_clock,
                        yinxin, session_env)
from pki.status import generate_crl
from server_support import LiveServer, http_get, ocsp_url_get, presigned, wait_for

RESPONDER_PASSWORD = "responder-secret-1"


class Setup:
    def __init__(self, world: World) -> None:
        self.world = world
        world.init_ca("rsa", "rsa2048")
        self.leaves: dict[str, tuple[str, Path]] = {}
        for name in ("good", "revoked"):
            subject = f"/O=印信测试/CN={name}"
            _, csr = openssl_csr(world.files, "ecdsa-p256", subject, stem=name)
            issued = apply_and_issue(world, ca="rsa", profile="organization", subject=subject, csr=csr.read_bytes())
            self.leaves[name] = (issued.record.serial, world.write_cert(issued, name))
        world.authority.revoke(self.leaves["revoked"][0], reason="affiliationChanged", actor=world.op)
        self.key, csr = openssl_csr(world.files, "ecdsa-p256", "/O=印信测试/CN=OCSP Responder", stem="responder")
        responder = apply_and_issue(world, ca="rsa", profile="ocsp", subject="/O=印信测试/CN=OCSP Responder",
                                    csr=csr.read_bytes())
        self.responder_cert = world.write_cert(responder, "responder")
        self.responder_der = responder.certificate.dump()
        self.password_file = world.files / "responder-password"
        self.password_file.write_text(RESPONDER_PASSWORD + "\n")
        self.crl = generate_crl(world.authority, world.authority.get("rsa"), world.key("rsa"), actor=world.op)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    return Setup(World(tmp_path_factory.mktemp("resp") / "home", tmp_path_factory.mktemp("resp-files"),
                       wall_clock()))


def test_only_an_ocsp_signing_certificate_of_the_ca_is_accepted(setup: Setup) -> None:
    world = setup.world
    result = yinxin(world.home_dir, "ca", "responder", "--ca", "rsa", "--cert", setup.leaves["good"][1],
                    "--key", setup.key, "--responder-password-file", setup.password_file,
                    env=session_env(world.home_dir))
    assert_one_line_error(result, "OCSPSigning")
    result = yinxin(world.home_dir, "ca", "responder", "--ca", "rsa", "--show", env=session_env(world.home_dir))
    assert_one_line_error(result, "no delegated OCSP responder")


@pytest.fixture(scope="module")
def server(setup: Setup):  # type: ignore[no-untyped-def]
    world = setup.world
    result = yinxin(world.home_dir, "ca", "responder", "--ca", "rsa", "--cert", setup.responder_cert,
                    "--key", setup.key, "--responder-password-file", setup.password_file, "--json",
                    env=session_env(world.home_dir))
    assert result.code == 0, result
    assert result.json()["subject"] == "CN=OCSP Responder,O=印信测试"
    live = LiveServer(world.home_dir, args=("--workers", "1"), env={"YINXIN_OCSP_PASSWORD": RESPONDER_PASSWORD})
    live.start()
    assert live.info["cas"] == [{"ca": "rsa", "ocsp_signer": "delegated responder", "publishes_crls": False}]
    wait_for(lambda: ("rsa", setup.leaves["good"][0]) in presigned(world.db_path()))
    yield live
    assert live.stop() == 0, live.errors()


def test_responses_are_signed_by_the_responder_and_verify(setup: Setup, server: LiveServer) -> None:
    world = setup.world
    for name, expected in (("good", ": good"), ("revoked", ": revoked")):
        proc = openssl("ocsp", "-url", f"{server.url}/ocsp/rsa", "-issuer", world.ca_pem("rsa"),
                       "-cert", setup.leaves[name][1], "-CAfile", world.ca_pem("rsa"), check=False)
        out = (proc.stdout + proc.stderr).decode()
        assert "Response verify OK" in out and expected in out, out
    req = world.files / "responder-get.req"
    openssl("ocsp", "-issuer", world.ca_pem("rsa"), "-cert", setup.leaves["revoked"][1], "-no_nonce", "-reqout", req)
    got = http_get(ocsp_url_get(server.url, "rsa", req.read_bytes()))
    assert got.body == presigned(world.db_path())[("rsa", setup.leaves["revoked"][0])]
    basic = asn1_ocsp.OCSPResponse.load(got.body).basic_ocsp_response
    assert basic["certs"][0].dump() == setup.responder_der


def test_stored_crl_is_served_without_the_ca_key(setup: Setup, server: LiveServer) -> None:
    got = http_get(f"{server.url}/crl/rsa.crl")
    assert got.status == 200 and got.body == setup.crl.der


def test_serve_refuses_to_start_without_a_signing_key(setup: Setup) -> None:
    world = setup.world
    result = yinxin(world.home_dir, "serve", "--port", "0")        # no CA password, no responder password
    assert_one_line_error(result, "password")
    result = yinxin(world.home_dir, "serve", "--port", "0", env={"YINXIN_OCSP_PASSWORD": "wrong"})
    assert_one_line_error(result, "wrong password", "responder")
    result = yinxin(world.home_dir, "serve", "--port", "0", env={"YINXIN_CA_PASSWORD": "wrong"})
    assert_one_line_error(result, "wrong password", "CA rsa")
    assert PASSWORD.decode() != "wrong"
